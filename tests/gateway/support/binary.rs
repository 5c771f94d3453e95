//! Starting the real `ferrygate` binary and learning its address from its log.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;

use std::time::Duration;

/// Longest a `serve` may take to log its address: a start compiles every
/// plugin whose artifact is not cached yet, which in a debug build on a busy
/// 2-core machine (a cold CI run, tests in parallel) can pass `PATIENCE`.
const START_PATIENCE: Duration = Duration::from_secs(60);

/// Spawns `command` (a `ferrygate serve`), echoes its log (shown by the test
/// runner when a test fails), checks every line for the secret canary, and
/// waits for the `ws://ADDR/ws` line it logs once listening.
pub fn spawn_and_wait_for_address(command: Command) -> (Child, SocketAddr) {
    let (child, addr, _lines) = spawn_with_log(command);
    (child, addr)
}

/// [`spawn_and_wait_for_address`], and every log line from the start as
/// well, for a test that looks for what the gateway said.
pub fn spawn_with_log(mut command: Command) -> (Child, SocketAddr, Receiver<String>) {
    let mut child = command
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start ferrygate");
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Keeps draining the pipe for the life of the process.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("gateway: {line}");
            super::canary::abort_if_leaked(&line, "a ferrygate log line");
            if let Some(rest) = line.split("ws://").nth(1) {
                let _ = tx.send(rest.split('/').next().unwrap_or_default().to_owned());
            }
            let _ = lines_tx.send(line);
        }
    });
    let addr = rx
        .recv_timeout(START_PATIENCE)
        .expect("the binary logs its address")
        .parse()
        .expect("a socket address");
    (child, addr, lines)
}
