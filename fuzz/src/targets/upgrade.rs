//! Target `upgrade`: raw bytes sent to a real gateway's listener as an HTTP
//! request, so that they go through hyper's head parser, the `/ws` handshake
//! checks, the origin allow-list, admission, token extraction and the jwt-auth
//! plugin; bytes after a head that upgrades reach the new session as
//! WebSocket frames.
//!
//! The gateway runs in this process (started once, on 127.0.0.1 port 0, with
//! `plugins/dist/jwt_auth.wasm`: `cargo xtask build-plugins` makes it). Each
//! input is one TCP connection: the bytes are written and the first answer is
//! read (the write side is shut when no more answer can come without it).
//! Invariants: the gateway answers with an
//! HTTP/1.1 status line or closes, within [`PATIENCE`]; a `101` carries
//! `Sec-WebSocket-Accept` and answers a GET that asked for `websocket`; no
//! task of the gateway panics (the drivers see panics on any thread).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ferrygate::config::Config;
use ferrygate::gateway::Gateway;
use ferrygate::workers::Workers;

/// Longest the gateway may take to answer and close one input's connection.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The HS256 secret of the jwt-auth plugin; the seeds carry tokens signed with it.
const JWT_SECRET: &str = "fuzz-secret-0123456789abcdef0123";

/// HTTP and handshake grammar.
pub(super) const DICTIONARY: &[&str] = &[
    "GET ",
    "POST ",
    " HTTP/1.1\r\n",
    " HTTP/1.0\r\n",
    "\r\n",
    "\r\n\r\n",
    "\n",
    ": ",
    ",",
    "/ws",
    "/ws?token=",
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/publish",
    "%",
    "%00",
    "?",
    "#",
    "Host: a\r\n",
    "Connection: Upgrade\r\n",
    "Connection: keep-alive, upgrade\r\n",
    "Upgrade: websocket\r\n",
    "Sec-WebSocket-Version: 13\r\n",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    "Sec-WebSocket-Protocol: ferrygate.v1, bearer.",
    "Origin: https://app.example\r\n",
    "Origin: null\r\n",
    "Authorization: Bearer ",
    "Authorization: bearer ",
    "Content-Length: 5\r\n",
    "Content-Length: 18446744073709551616\r\n",
    "Transfer-Encoding: chunked\r\n",
    "0\r\n\r\n",
    "\u{80}",
    "\u{0}",
    "\u{7f}",
    "\u{81}\u{85}abcd",
    "\u{88}\u{80}abcd",
];

/// How long the gateway may stay silent after a whole request head before the
/// write side is shut: it may be waiting for a body the input does not hold.
const QUIET: Duration = Duration::from_secs(1);

/// Sends `data` to the fuzzing gateway and checks its answer.
pub fn upgrade(data: &[u8]) {
    let addr = gateway();
    let mut stream = match TcpStream::connect(addr) {
        Ok(stream) => stream,
        Err(e) => panic!("the gateway no longer accepts connections: {e}"),
    };
    let _ = stream.set_write_timeout(Some(PATIENCE));
    // The gateway may answer and close before reading everything: a failed
    // write is an answer too, read below.
    let _ = stream.write_all(data);
    // hyper drops a request whose connection reads EOF before the answer is
    // ready (its default is no half-close), so the write side stays open
    // while an answer can come: shut only when the head cannot be complete,
    // or after QUIET without a byte.
    let head_complete = find(data, b"\r\n\r\n").is_some() || find(data, b"\n\n").is_some();
    let mut shut = !head_complete;
    if shut {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let wait = if shut { PATIENCE } else { QUIET };
        let _ = stream.set_read_timeout(Some(wait));
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buffer[..n]);
                if !shut && first_answer_complete(&answer) {
                    if !answer.starts_with(b"HTTP/1.1 101") {
                        break;
                    }
                    // A session: let it read the frames after the head, then
                    // the end of input, and read what it answers until it
                    // closes, so that anything it does goes with this input.
                    let _ = stream.shutdown(Shutdown::Write);
                    shut = true;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                assert!(
                    !shut,
                    "no end of the answer within {PATIENCE:?}: {answer:?}"
                );
                let _ = stream.shutdown(Shutdown::Write);
                shut = true;
            }
            // A reset after an error answer is a close.
            Err(_) => break,
        }
        assert!(
            started.elapsed() < PATIENCE * 2,
            "the answer never ends: {answer:?}"
        );
    }
    check_answer(data, &answer);
}

/// Whether `answer` holds a whole first response: a `101` head, or a head and
/// the body its `Content-Length` or chunked encoding announces.
fn first_answer_complete(answer: &[u8]) -> bool {
    let Some(head_end) = find(answer, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&answer[..head_end]).to_ascii_lowercase();
    let body = &answer[head_end + 4..];
    if head.starts_with("http/1.1 101") {
        return true;
    }
    if head.contains("\r\ntransfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    let length = head
        .split("\r\n")
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|n| n.trim().parse::<usize>().ok());
    length.is_some_and(|n| body.len() >= n)
}

fn check_answer(request: &[u8], answer: &[u8]) {
    if answer.is_empty() {
        return;
    }
    let head_end = find(answer, b"\r\n\r\n").unwrap_or(answer.len());
    let head = String::from_utf8_lossy(&answer[..head_end]);
    let status: u16 = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP/1.1 status line: {head:?}"));
    if status == 101 {
        let lower = head.to_ascii_lowercase();
        assert!(
            lower.contains("\r\nsec-websocket-accept: "),
            "101 without Sec-WebSocket-Accept: {head:?}"
        );
        let asked = String::from_utf8_lossy(request).to_ascii_lowercase();
        assert!(
            asked.contains("get ") && asked.contains("websocket"),
            "101 for a request that is no GET upgrade to websocket"
        );
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The address of the gateway this process fuzzes, started on first use.
fn gateway() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("fuzz-gateway".to_owned())
            .spawn(move || serve(&tx));
        if let Err(e) = spawned {
            panic!("cannot start the gateway thread: {e}");
        }
        match rx.recv() {
            Ok(Ok(addr)) => addr,
            Ok(Err(e)) => panic!("the fuzzing gateway does not start: {e}"),
            Err(_) => panic!("the fuzzing gateway thread died while starting"),
        }
    })
}

/// Runs the gateway for the rest of the process; sends its address or why not.
fn serve(started: &std::sync::mpsc::Sender<Result<SocketAddr, String>>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = started.send(Err(format!("no runtime: {e}")));
            return;
        }
    };
    runtime.block_on(async {
        let setup = async {
            let config = Config::parse(&manifest()?, &HashMap::<String, String>::new())
                .map_err(|e| e.to_string())?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| e.to_string())?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            let gateway = Gateway::start(config).await.map_err(|e| e.to_string())?;
            let workers = Workers::start(1).map_err(|e| e.to_string())?;
            Ok::<_, String>((listener, addr, gateway, workers))
        };
        match setup.await {
            Ok((listener, addr, gateway, workers)) => {
                let _ = started.send(Ok(addr));
                ferrygate::server::run(listener, gateway, workers, std::future::pending()).await;
            }
            Err(e) => {
                let _ = started.send(Err(e));
            }
        }
    });
}

fn manifest() -> Result<String, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .ok_or("no workspace root")?;
    let plugin = root.join("plugins/dist/jwt_auth.wasm");
    if !plugin.is_file() {
        return Err(format!(
            "{} is missing: run `cargo xtask build-plugins`",
            plugin.display()
        ));
    }
    let cache = root.join("target/fuzz-wasm-cache");
    Ok(format!(
        r#"[server]
listen = "127.0.0.1:0"
api_key = "fuzz-api-key-0123456789"
allowed_origins = ["https://app.example"]
max_connections = 64
close_grace_ms = 50
drain_ms = 100
request_head_timeout_ms = 2000

[plugins.auth]
kind = "auth"
path = {plugin:?}
config = {{ hs256_secret = "{JWT_SECRET}", require_exp = false }}

[wasm]
cache_dir = {cache:?}
"#,
        plugin = plugin.display().to_string(),
        cache = cache.display().to_string(),
    ))
}
