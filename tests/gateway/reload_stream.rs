//! Swaps under a steady stream: many subscribers receive numbered messages
//! through the stamp transform while its file is replaced (or the previous
//! set is rolled back); nobody is disconnected, nothing is lost, duplicated
//! or reordered, and the stamp changes once, at the swap.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::hot::{Hot, bytes_of, version_of};
use crate::support::{Client, PATIENCE};

const CHANNEL: &str = "feed.numbers";

/// One stream of `total` publishes on one connection, `per_tick` every 10 ms,
/// to `subscribers` clients.
struct Stream {
    sent: Arc<AtomicU64>,
    publisher: JoinHandle<()>,
    subscribers: Vec<JoinHandle<Vec<(u64, String)>>>,
}

impl Stream {
    async fn start(hot: &Hot, subscribers: usize, total: u64, per_tick: u64) -> Self {
        let mut readers = Vec::new();
        for _ in 0..subscribers {
            let mut client = Client::connect(&hot.ws_url()).await;
            client.subscribe(CHANNEL).await;
            readers.push(tokio::spawn(receive(client, total)));
        }
        let publisher = Client::connect(&hot.ws_url()).await;
        let sent = Arc::new(AtomicU64::new(0));
        let publisher = tokio::spawn(publish(publisher, total, per_tick, Arc::clone(&sent)));
        Self {
            sent,
            publisher,
            subscribers: readers,
        }
    }

    /// Waits until at least `n` messages were sent.
    async fn sent_at_least(&self, n: u64) {
        while self.sent.load(Ordering::Acquire) < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Checks what every subscriber received: `0..total` in order, each
    /// message stamped exactly once, `before` up to one point and `after`
    /// from there on, and `after` for every message sent from `done` on.
    async fn check(self, total: u64, before: &str, after: &str, done: u64) {
        tokio::time::timeout(Duration::from_secs(60), self.publisher)
            .await
            .expect("publisher finishes")
            .expect("publisher task");
        for (index, reader) in self.subscribers.into_iter().enumerate() {
            let got = reader.await.expect("subscriber task");
            let numbers: Vec<u64> = got.iter().map(|(n, _)| *n).collect();
            assert!(
                numbers.iter().copied().eq(0..total),
                "subscriber {index}: numbers out of order or missing"
            );
            let switch = got
                .iter()
                .position(|(_, stamp)| stamp == after)
                .unwrap_or(got.len());
            assert!(
                switch > 0,
                "subscriber {index}: the swap happened before the stream started"
            );
            assert!(
                got[..switch].iter().all(|(_, s)| s == before),
                "subscriber {index}: unexpected stamp before the swap"
            );
            assert!(
                got[switch..].iter().all(|(_, s)| s == after),
                "subscriber {index}: `{before}` after `{after}`"
            );
            assert!(
                (switch as u64) <= done,
                "subscriber {index}: message {switch} still had `{before}` though the swap was reported done before message {done} was sent"
            );
        }
    }
}

/// Sends `{"n": i}` for `i` in `0..total`, `per_tick` per 10 ms, and checks
/// every reply is ok.
async fn publish(client: Client, total: u64, per_tick: u64, sent: Arc<AtomicU64>) {
    let (mut sink, mut replies) = client.ws.split();
    let checker = tokio::spawn(async move {
        let mut ok = 0;
        while ok < total {
            let frame = tokio::time::timeout(PATIENCE, replies.next())
                .await
                .expect("a reply in time")
                .expect("publisher stays open")
                .expect("valid frame");
            let Message::Text(text) = frame else { continue };
            let reply: Value = serde_json::from_str(text.as_str()).expect("JSON");
            assert_eq!(reply["ok"], true, "{reply}");
            ok += 1;
        }
    });
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut n = 0;
    while n < total {
        tick.tick().await;
        for _ in 0..per_tick.min(total - n) {
            let text =
                format!(r#"{{"op":"publish","id":{n},"channel":"{CHANNEL}","data":{{"n":{n}}}}}"#);
            sink.send(Message::text(text)).await.expect("publish");
            n += 1;
            sent.store(n, Ordering::Release);
        }
    }
    checker.await.expect("reply checker");
}

/// Reads `total` messages: each number with its one stamp.
async fn receive(client: Client, total: u64) -> Vec<(u64, String)> {
    let mut ws = client.ws;
    let mut got = Vec::with_capacity(total as usize);
    while (got.len() as u64) < total {
        let frame = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a message in time")
            .expect("connection stays open")
            .expect("valid frame");
        let text = match frame {
            Message::Text(text) => text,
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("connection closed or odd frame: {other:?}"),
        };
        assert_eq!(
            text.matches("\"stamp\"").count(),
            1,
            "not exactly one stamp: {text}"
        );
        let frame: Value = serde_json::from_str(text.as_str()).expect("JSON");
        let n = frame["data"]["n"].as_u64().expect("a number");
        let stamp = frame["data"]["stamp"].as_str().expect("a stamp").to_owned();
        got.push((n, stamp));
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_the_wasm_under_a_stream_to_200_clients_loses_nothing() {
    let hot = Hot::start("reload-stream");
    let v2 = version_of(&bytes_of("stamp_v2"));
    // 3,000 messages at 1,000 a second to 200 subscribers.
    let total = 3_000;
    let stream = Stream::start(&hot, 200, total, 10).await;
    stream.sent_at_least(total / 3).await;
    hot.replace_stamp(&bytes_of("stamp_v2"));
    hot.wait_for("stamp", "v2", |p| p["version"] == v2).await;
    let done = stream.sent.load(Ordering::Acquire);
    assert!(
        done < total,
        "the swap took the whole stream: raise `total`"
    );
    stream.check(total, "v1", "v2", done).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_brings_the_previous_version_back_without_loss() {
    let hot = Hot::start("reload-rollback");
    let v1 = version_of(&bytes_of("stamp_v1"));
    let v2 = version_of(&bytes_of("stamp_v2"));
    hot.replace_stamp(&bytes_of("stamp_v2"));
    hot.wait_for("stamp", "v2", |p| p["version"] == v2).await;

    let total = 2_000;
    let stream = Stream::start(&hot, 20, total, 10).await;
    stream.sent_at_least(total / 3).await;
    let (status, outcome) = hot.reload(r#"{"rollback": true}"#).await;
    let done = stream.sent.load(Ordering::Acquire);
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["action"], "rollback", "{outcome}");
    assert_eq!(outcome["replaced"][0]["from"], v2, "{outcome}");
    assert_eq!(outcome["replaced"][0]["to"], v1, "{outcome}");
    assert_eq!(hot.plugin("stamp").await["version"], v1);
    stream.check(total, "v2", "v1", done).await;
}
