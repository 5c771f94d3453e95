//! Token lifetime: `expires_at` in `welcome`, 4001 at expiry (and
//! `event: expired` on SSE), `refresh` that extends it, refreshes refused
//! without changing anything (another user, garbage, expired), a refresh that
//! narrows the claims and loses a subscription with an `unsubscribed` push,
//! a refresh storm rate limited; and the drain hint of 1012.

use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::plugin_auth::{SECRET, hs256};
use crate::support::plugins::section;
use crate::support::sse::Stream;
use crate::support::{Client, PATIENCE, TestGateway};

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A token for `sub` that expires `in_s` seconds from now, with `channels`.
fn token(sub: &str, in_s: u64, channels: &[&str]) -> String {
    let claims = json!({
        "sub": sub, "iss": "ferrygate-tests", "aud": "chat",
        "exp": now_s() + in_s, "channels": channels,
    });
    hs256(&claims, SECRET)
}

/// jwt-auth, and channel-acl granting the channels the token's `channels`
/// claim lists.
async fn gateway() -> TestGateway {
    let auth = section(
        "auth",
        "auth",
        "jwt_auth",
        &format!(
            "config = {{ hs256_secret = \"{SECRET}\", issuer = \"ferrygate-tests\", audience = \"chat\", channels_claim = \"channels\" }}"
        ),
    );
    let acl = section(
        "acl",
        "route",
        "channel_acl",
        r#"config = { channels_claim = "channels" }"#,
    );
    TestGateway::start(&format!(
        "{auth}{acl}[[routes]]\nchannels = \"team.>\"\nroute = \"acl\"\n"
    ))
    .await
}

async fn connect(gateway: &TestGateway, token: &str) -> Client {
    Client::connect(&format!("{}?token={token}", gateway.ws_url())).await
}

async fn refresh(client: &mut Client, token: &str) -> Value {
    client.request(json!({"op":"refresh","token":token})).await
}

#[tokio::test]
async fn an_expired_token_closes_with_4001_unless_refreshed() {
    let gateway = gateway().await;
    let short = token("alice", 2, &["team.a"]);
    let mut lapsing = connect(&gateway, &short).await;
    let mut refreshed = connect(&gateway, &short).await;
    let exp = lapsing.welcome["expires_at"].as_u64().expect("expires_at");
    assert!(exp >= now_s() && exp <= now_s() + 2, "{}", lapsing.welcome);
    let reply = refresh(&mut refreshed, &token("alice", 300, &["team.a"])).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let extended = reply["result"]["expires_at"].as_u64().expect("new expiry");
    assert!(extended >= now_s() + 290, "{reply}");
    // The SSE stream of the same token ends too.
    let path = format!("/sse?channel=team.a&token={short}");
    let mut stream = Stream::open(gateway.addr, &path, &[]).await;
    assert_eq!(stream.status, 200, "{}", stream.body);

    assert_eq!(lapsing.close_code().await, 4001);
    let expired = stream.next_event().await.expect("expired event");
    assert_eq!(expired.event.as_deref(), Some("expired"), "{expired:?}");
    assert!(stream.next().await.is_none(), "the stream ends");
    let reply = refreshed.request(json!({"op":"ping"})).await;
    assert_eq!(reply["ok"], true, "the refreshed connection lives on");
    assert_eq!(
        gateway
            .metric("ferrygate_disconnects_total{reason=\"token_expired\"}")
            .await,
        2.0
    );
    assert_eq!(
        gateway
            .metric("ferrygate_refreshes_total{outcome=\"ok\"}")
            .await,
        1.0
    );
    gateway.stop().await;
}

#[tokio::test]
async fn a_refresh_for_another_user_or_with_a_bad_token_is_forbidden_and_changes_nothing() {
    let gateway = gateway().await;
    let mut alice = connect(&gateway, &token("alice", 300, &["team.a"])).await;
    alice.subscribe("team.a").await;
    let expired = hs256(
        &json!({"sub":"alice","iss":"ferrygate-tests","aud":"chat","exp": now_s() - 10}),
        SECRET,
    );
    for (n, bad) in [
        token("bob", 300, &["team.a"]),
        "not.a.token".to_owned(),
        expired,
        token("alice", 300, &["team.a"]).replace('.', "x"),
    ]
    .into_iter()
    .enumerate()
    {
        if n == 3 {
            // Past the burst of 3: wait for the refresh budget to refill.
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
        let reply = refresh(&mut alice, &bad).await;
        assert_eq!(reply["error"]["code"], "forbidden", "{reply}");
    }
    let reply = alice.request(json!({"op":"refresh"})).await;
    assert_eq!(reply["error"]["code"], "bad_request", "{reply}");
    // Still alice, still subscribed, still the old expiry.
    alice.publish("team.a", json!("still here")).await;
    assert_eq!(alice.recv().await["data"], "still here");
    assert_eq!(
        gateway
            .metric("ferrygate_refreshes_total{outcome=\"forbidden\"}")
            .await,
        4.0
    );
    gateway.stop().await;
}

#[tokio::test]
async fn a_refresh_that_narrows_the_claims_removes_the_subscriptions_it_no_longer_allows() {
    let gateway = gateway().await;
    let mut alice = connect(&gateway, &token("alice", 300, &["team.a", "team.b"])).await;
    alice.subscribe("team.a").await;
    alice.subscribe("team.b").await;
    let reply = refresh(&mut alice, &token("alice", 300, &["team.a"])).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let pushed = alice.recv().await;
    assert_eq!(pushed["op"], "unsubscribed", "{pushed}");
    assert_eq!(pushed["channel"], "team.b");
    assert!(pushed["reason"].as_str().is_some_and(|r| !r.is_empty()));
    for channel in ["team.b", "team.a"] {
        let (status, _) = gateway
            .api("/v1/publish", &json!({"channel":channel,"data":channel}))
            .await;
        assert_eq!(status, 200);
    }
    assert_eq!(alice.recv().await["channel"], "team.a", "team.b is gone");
    let reply = alice
        .request(json!({"op":"subscribe","channel":"team.b"}))
        .await;
    assert_eq!(reply["error"]["code"], "forbidden", "{reply}");
    assert_eq!(
        gateway.metric("ferrygate_refresh_unsubscribed_total").await,
        1.0
    );
    gateway.stop().await;
}

#[tokio::test]
async fn a_refresh_storm_is_rate_limited() {
    let gateway = gateway().await;
    let fresh = token("alice", 300, &[]);
    let mut alice = connect(&gateway, &fresh).await;
    let mut limited = 0;
    for _ in 0..10 {
        let reply = refresh(&mut alice, &fresh).await;
        if reply["error"]["code"] == "rate_limited" {
            limited += 1;
        } else {
            assert_eq!(reply["ok"], true, "{reply}");
        }
    }
    assert!(limited >= 6, "{limited} of 10 limited");
    assert_eq!(alice.request(json!({"op":"ping"})).await["ok"], true);
    gateway.stop().await;
}

#[tokio::test]
async fn a_drain_tells_each_client_when_to_reconnect_spread_over_the_drain() {
    let gateway = TestGateway::start("drain_ms = 2000\nclose_grace_ms = 3000\n").await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(gateway.client().await);
    }
    let stopping = tokio::spawn(gateway.stop());
    let mut hints = Vec::new();
    for client in &mut clients {
        let frame = loop {
            match tokio::time::timeout(PATIENCE, client.ws.next())
                .await
                .expect("a close in time")
            {
                Some(Ok(Message::Close(Some(frame)))) => break frame,
                Some(Ok(_)) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        };
        assert_eq!(u16::from(frame.code), 1012);
        let hint: Value = serde_json::from_str(&frame.reason).expect("a JSON reason");
        let wait = hint["reconnect_in_ms"].as_u64().expect("reconnect_in_ms");
        assert!(wait < 2000, "{hint}");
        hints.push(wait);
    }
    stopping.await.expect("stopped");
    hints.sort_unstable();
    hints.dedup();
    assert!(hints.len() >= 10, "spread out: {hints:?}");
}
