//! Timing presence queries (SPEC §3 op `presence`, §4 `GET /v1/presence`):
//! one page, and every page by `next_cursor`, each checked for the expected
//! member count (and, when paging, each user exactly once).

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::httpget::HttpGet;
use crate::wsconn::WsConn;
use crate::wsframe::OP_TEXT;

/// Who answers a query.
#[derive(Debug)]
pub enum Asker<'a> {
    /// The client op on a WebSocket.
    Op(&'a mut WsConn, Duration),
    /// `GET /v1/presence/{channel}` with the API key.
    Http(&'a mut HttpGet, &'a str),
}

impl Asker<'_> {
    /// One page: the `result` object.
    pub async fn page(
        &mut self,
        id: u64,
        channel: &str,
        limit: Option<usize>,
        cursor: Option<&str>,
    ) -> Result<Value> {
        match self {
            Self::Op(conn, timeout) => {
                let mut request = json!({"op": "presence", "id": id, "channel": channel});
                if let Some(limit) = limit {
                    request["limit"] = limit.into();
                }
                if let Some(cursor) = cursor {
                    request["cursor"] = cursor.into();
                }
                conn.send(OP_TEXT, request.to_string().as_bytes()).await?;
                let deadline = Instant::now() + *timeout;
                loop {
                    let data = conn.next_data(deadline).await?;
                    let reply: Value = serde_json::from_slice(data).context("non-JSON frame")?;
                    if reply["id"] != id {
                        continue;
                    }
                    if reply["ok"] != true {
                        bail!("presence op refused: {reply}");
                    }
                    return Ok(reply["result"].clone());
                }
            }
            Self::Http(http, key) => {
                let mut path = format!("/v1/presence/{channel}");
                let mut sep = '?';
                if let Some(limit) = limit {
                    path.push_str(&format!("{sep}limit={limit}"));
                    sep = '&';
                }
                if let Some(cursor) = cursor {
                    path.push_str(&format!("{sep}cursor={cursor}"));
                }
                let (status, body) = http.get(&path, Some(key)).await?;
                if status != 200 {
                    bail!(
                        "GET {path}: HTTP {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                serde_json::from_slice(&body).context("presence answer is not JSON")
            }
        }
    }

    /// `connections` of the first page, or `None` when the channel has no
    /// presence (404 / `not_found`).
    pub async fn connections(&mut self, id: u64, channel: &str) -> Result<Option<u64>> {
        match self.page(id, channel, Some(1), None).await {
            Ok(page) => Ok(page["connections"].as_u64()),
            Err(e)
                if format!("{e:#}").contains("404") || format!("{e:#}").contains("not_found") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// Timings of one kind of query, milliseconds.
#[derive(Debug, Serialize)]
pub struct Timing {
    /// `op` or `http`, `first page` or `all pages by N`.
    pub what: String,
    pub runs: usize,
    pub pages_per_run: usize,
    pub users_seen: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub max_ms: f64,
}

/// Runs the first-page query `runs` times.
pub async fn first_page(
    asker: &mut Asker<'_>,
    label: &str,
    channel: &str,
    runs: usize,
) -> Result<Timing> {
    let mut times = Vec::with_capacity(runs);
    let mut users_seen = 0;
    for run in 0..runs {
        let started = Instant::now();
        let page = asker.page(1000 + run as u64, channel, None, None).await?;
        times.push(started.elapsed());
        users_seen = page["users"].as_array().map_or(0, Vec::len);
    }
    Ok(summarise(
        format!("{label}, first page (default limit)"),
        times,
        1,
        users_seen,
    ))
}

/// Pages through the whole channel `runs` times with `limit` users a page;
/// fails unless each run sees exactly `expected` distinct users, each once.
pub async fn all_pages(
    asker: &mut Asker<'_>,
    label: &str,
    channel: &str,
    limit: usize,
    runs: usize,
    expected: usize,
) -> Result<Timing> {
    let mut times = Vec::with_capacity(runs);
    let mut pages = 0;
    for run in 0..runs {
        let started = Instant::now();
        let mut seen = HashSet::with_capacity(expected);
        let mut cursor: Option<String> = None;
        pages = 0;
        loop {
            let id = 100_000 + (run * 10_000 + pages) as u64;
            let page = asker
                .page(id, channel, Some(limit), cursor.as_deref())
                .await?;
            pages += 1;
            for user in page["users"].as_array().into_iter().flatten() {
                let name = user["user"].as_str().unwrap_or_default().to_owned();
                if !seen.insert(name.clone()) {
                    bail!("{label}: user {name:?} on two pages");
                }
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        times.push(started.elapsed());
        if seen.len() != expected {
            bail!(
                "{label}: paging saw {} users, expected {expected}",
                seen.len()
            );
        }
    }
    Ok(summarise(
        format!("{label}, all pages by {limit}"),
        times,
        pages,
        expected,
    ))
}

fn summarise(what: String, mut times: Vec<Duration>, pages: usize, users_seen: usize) -> Timing {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let at = |q: f64| {
        let rank = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len().max(1));
        times.get(rank - 1).copied().map_or(0.0, ms)
    };
    let mean = times.iter().map(|&d| ms(d)).sum::<f64>() / times.len().max(1) as f64;
    Timing {
        what,
        runs: times.len(),
        pages_per_run: pages,
        users_seen,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        mean_ms: mean,
        max_ms: times.last().copied().map_or(0.0, ms),
    }
}
