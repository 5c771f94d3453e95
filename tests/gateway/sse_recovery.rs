//! `GET /sse` recovering with `Last-Event-ID`: no `id:` the stream sends
//! names a position past what the client has received, so a stream cut at
//! any event (even before its replay) asks for the rest again. Found by
//! trying the feature from the docs: the first id of a recovering stream
//! used to name the newest offset before the replay that leads to it.

use std::collections::HashMap;

use serde_json::json;

use crate::support::TestGateway;
use crate::support::sse::Stream;

const MANIFEST: &str = "[[routes]]\nchannels = \"hist.*\"\nhistory = { size = 100, ttl_s = 60 }\n";

/// The offsets an SSE id names, by channel: `E:N` (the one channel) or
/// `C/E:N,...`.
fn positions(id: &str, channels: &[&str]) -> HashMap<String, u64> {
    let offset = |at: &str| -> u64 {
        let (_, n) = at.rsplit_once(':').expect("epoch:offset");
        n.parse().expect("an offset")
    };
    if let [one] = channels
        && !id.contains('/')
    {
        return HashMap::from([((*one).to_owned(), offset(id))]);
    }
    id.split(',')
        .map(|part| {
            let (channel, at) = part.split_once('/').expect("channel/epoch:offset");
            (channel.to_owned(), offset(at))
        })
        .collect()
}

#[tokio::test]
async fn a_recovering_sse_stream_never_names_a_position_before_it_is_delivered() {
    let gateway = TestGateway::start(MANIFEST).await;
    for channels in [&["hist.one"][..], &["hist.a", "hist.b"][..]] {
        let query: Vec<String> = channels.iter().map(|c| format!("channel={c}")).collect();
        let path = format!("/sse?{}", query.join("&"));
        let publish = async |round: u64| {
            for channel in channels {
                let body = json!({"channel": channel, "data": {"round": round}});
                let (status, _) = gateway.api("/v1/publish", &body).await;
                assert_eq!(status, 200);
            }
        };
        let mut first = Stream::open(gateway.addr, &path, &[]).await;
        assert_eq!(first.status, 200);
        publish(1).await;
        publish(2).await;
        let mut last_id = String::new();
        for _ in 0..2 * channels.len() {
            let event = first.next_event().await.expect("a push");
            last_id = event.id.expect("history pushes carry an id");
        }
        drop(first);
        // Missed while away: two more per channel.
        publish(3).await;
        publish(4).await;

        let mut held = positions(&last_id, channels);
        assert!(held.values().all(|&n| n == 2), "{last_id}: {held:?}");
        let mut again = Stream::open(gateway.addr, &path, &[("Last-Event-ID", &last_id)]).await;
        assert_eq!(again.status, 200);
        let mut replayed = 0;
        let mut recoveries = 0;
        while replayed < 2 * channels.len() {
            let event = again.next().await.expect("the stream goes on");
            if event.event.as_deref() == Some("recovery") {
                assert_eq!(event.json()["recovered"], true, "{event:?}");
                assert_eq!(event.json()["offset"], 4, "{event:?}");
                recoveries += 1;
            } else if !event.data.is_empty() {
                let push = event.json();
                let channel = push["channel"].as_str().expect("a channel push");
                let offset = push["offset"].as_u64().expect("a history push");
                assert_eq!(offset, held[channel] + 1, "in order, none lost: {push}");
                held.insert(channel.to_owned(), offset);
                replayed += 1;
            }
            // The id a browser records with this event: never ahead of
            // what it has been given.
            if let Some(id) = &event.id {
                for (channel, named) in positions(id, channels) {
                    assert!(
                        named <= held[&channel],
                        "id {id} names {channel} at {named}, the client holds {}",
                        held[&channel]
                    );
                }
            }
        }
        assert_eq!(recoveries, channels.len());
        assert!(held.values().all(|&n| n == 4), "{held:?}");
    }
    gateway.stop().await;
}
