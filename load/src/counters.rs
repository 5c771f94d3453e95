//! Counters read from outside a run, so that a benchmark can report work per
//! operation: Redis's `INFO commandstats` (calls per command, commands run
//! inside Lua scripts included), nats-server's monitoring port (`/varz`
//! `in_msgs`/`out_msgs`, `/jsz` JetStream API calls) and the gateway's own
//! `/metrics` (series by prefix). Reads only; changes nothing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::httpget::HttpGet;

/// Counter name -> value at one moment.
pub type Snapshot = BTreeMap<String, u64>;

/// Time limit for one read.
const TIMEOUT: Duration = Duration::from_secs(5);

/// `cmdstat_<cmd>` calls as `redis.<cmd>`, and `redis.all` their sum
/// (the `INFO` this reader sends is left out).
pub async fn redis(addr: SocketAddr) -> Result<Snapshot> {
    let text = tokio::time::timeout(TIMEOUT, redis_info(addr))
        .await
        .map_err(|_| anyhow!("INFO commandstats from {addr}: timed out"))??;
    let mut out = Snapshot::new();
    for line in text.lines() {
        let Some((name, fields)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        if name == "info" {
            continue; // this reader's own INFO
        }
        let calls = fields
            .split(',')
            .find_map(|f| f.strip_prefix("calls="))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        *out.entry("redis.all".to_owned()).or_default() += calls;
        out.insert(format!("redis.{name}"), calls);
    }
    Ok(out)
}

async fn redis_info(addr: SocketAddr) -> Result<String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect to redis at {addr}"))?;
    stream.write_all(b"INFO commandstats\r\n").await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("redis closed the connection");
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = memchr::memmem::find(&buf, b"\r\n") else {
            continue;
        };
        let Some(length) = buf.strip_prefix(b"$") else {
            bail!(
                "unexpected reply {:?}",
                String::from_utf8_lossy(&buf[..end])
            );
        };
        let length: usize = String::from_utf8_lossy(&length[..end - 1])
            .parse()
            .context("bad bulk length")?;
        if buf.len() >= end + 2 + length {
            return Ok(String::from_utf8_lossy(&buf[end + 2..end + 2 + length]).into_owned());
        }
    }
}

/// `nats.in_msgs`, `nats.out_msgs` (`/varz`) and `nats.js_api` (`/jsz`
/// `api.total`) from nats-server's monitoring port.
pub async fn nats(monitor: SocketAddr) -> Result<Snapshot> {
    let mut http = HttpGet::new(monitor, TIMEOUT);
    let mut out = Snapshot::new();
    let varz = json(&mut http, "/varz").await?;
    for key in ["in_msgs", "out_msgs"] {
        out.insert(format!("nats.{key}"), varz[key].as_u64().unwrap_or(0));
    }
    let jsz = json(&mut http, "/jsz").await?;
    out.insert(
        "nats.js_api".to_owned(),
        jsz.pointer("/api/total")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    );
    Ok(out)
}

async fn json(http: &mut HttpGet, path: &str) -> Result<Value> {
    let (status, body) = http.get(path, None).await?;
    if status != 200 {
        bail!("GET {path}: HTTP {status}");
    }
    serde_json::from_slice(&body).with_context(|| format!("GET {path}: not JSON"))
}

/// The gateway's `/metrics` series whose names start with one of `prefixes`
/// (labels kept in the key), values truncated to whole numbers.
pub async fn gateway(http: &mut HttpGet, key: &str, prefixes: &[&str]) -> Result<Snapshot> {
    let (status, body) = http.get("/metrics", Some(key)).await?;
    if status != 200 {
        bail!("GET /metrics: HTTP {status}");
    }
    let mut out = Snapshot::new();
    for line in String::from_utf8_lossy(&body).lines() {
        if line.starts_with('#') || !prefixes.iter().any(|p| line.starts_with(p)) {
            continue;
        }
        if let Some((name, value)) = line.rsplit_once(' ')
            && let Ok(value) = value.parse::<f64>()
        {
            out.insert(name.to_owned(), value as u64);
        }
    }
    Ok(out)
}

/// `after - before` for every counter that moved.
pub fn delta(before: &Snapshot, after: &Snapshot) -> Snapshot {
    after
        .iter()
        .filter_map(|(name, &value)| {
            let moved = value.saturating_sub(before.get(name).copied().unwrap_or(0));
            (moved > 0).then(|| (name.clone(), moved))
        })
        .collect()
}
