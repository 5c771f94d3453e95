//! Target `envelope`: one message as it arrives from the broker (its subject
//! and its payload) through what `broker::inbound` does with it: parse the
//! subject into a route, check and unwrap the envelope, deliver to a live
//! local subscriber.
//!
//! Input layout: byte 0 picks the subject separator (bit 0: `.` for NATS, `:`
//! for Redis) and the size limit (bit 1: 64 KiB, or the byte's own value);
//! then the subject after the prefix, up to the first `\n`; then the payload.

use std::sync::{Arc, OnceLock};

use ferrygate::broker::envelope;
use ferrygate::broker::inbound::{Inbound, Route};
use ferrygate::connections::Connections;
use ferrygate::hub::{Hub, Subscriber};
use ferrygate::metrics::Metrics;
use ferrygate::outbox::Outbox;

use super::assert_json;

/// Subjects and envelopes.
pub(super) const DICTIONARY: &[&str] = &[
    "ch.",
    "ch:",
    "user.",
    "user:",
    "conn.",
    "conn:",
    "%",
    "%2E",
    "%zz",
    "\n",
    "{",
    "}",
    "\"",
    ":",
    ",",
    "\"ferrygate\"",
    "\"node\"",
    "\"data\"",
    "1",
    "2",
    "18446744073709551616",
    "-1",
    "null",
    "[]",
    "{\"ferrygate\":1,\"node\":\"n\",\"data\":",
    "\\u0000",
    "\u{ff}",
];

/// The size limit when byte 0 does not pick a small one (the default `max_frame_bytes`).
const LIMIT_BYTES: usize = 64 * 1024;

struct World {
    hub: Arc<Hub>,
    connections: Arc<Connections>,
    metrics: Arc<Metrics>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let metrics = Arc::new(Metrics::new());
        World {
            hub: Arc::new(Hub::new(Arc::clone(&metrics))),
            connections: Arc::new(Connections::new(16, Arc::from("fuzznode"))),
            metrics,
        }
    })
}

/// Runs one broker message; see the module docs for the layout.
pub fn envelope(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let separator = if control & 1 == 0 { '.' } else { ':' };
    let max_bytes = if control & 2 == 0 {
        LIMIT_BYTES
    } else {
        usize::from(control)
    };
    let (subject, payload) = match rest.iter().position(|&b| b == b'\n') {
        Some(newline) => (&rest[..newline], &rest[newline + 1..]),
        None => (rest, &[][..]),
    };
    let decoded = envelope::decode(payload, max_bytes);
    if let Ok(decoded) = &decoded {
        assert!(
            payload.len() <= max_bytes,
            "an oversize payload was accepted"
        );
        assert_json("decoded broker data", decoded.data);
        let wrapped = envelope::encode("fuzznode", decoded.data);
        assert_json("an envelope", &wrapped);
        let again = envelope::decode(wrapped.as_bytes(), usize::MAX)
            .unwrap_or_else(|e| panic!("our own envelope is refused ({e:?}): {wrapped:?}"));
        assert_eq!(again.data, decoded.data, "the envelope does not round-trip");
        assert_eq!(again.node.as_deref(), Some("fuzznode"));
    }
    let Ok(subject) = std::str::from_utf8(subject) else {
        return;
    };
    let token = envelope::user_token(subject);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'%'),
        "user token {token:?} may split a subject"
    );
    assert_eq!(
        envelope::user_from_token(&token).as_deref(),
        Some(subject),
        "user token does not round-trip"
    );
    deliver(
        Route::parse(subject, separator),
        payload,
        max_bytes,
        decoded.is_ok(),
    );
}

/// Delivers through a real `Inbound` to one registered, subscribed connection
/// and checks that it received exactly when the payload was valid.
fn deliver(route: Option<Route>, payload: &[u8], max_bytes: usize, valid: bool) {
    let world = world();
    let inbound = Inbound::new(
        Arc::clone(&world.hub),
        Arc::clone(&world.connections),
        Arc::clone(&world.metrics),
        max_bytes,
    );
    let outbox = Arc::new(Outbox::new(1 << 20));
    let Some(slot) = world.connections.reserve() else {
        panic!("a connection slot leaked");
    };
    let user = match &route {
        Some(Route::User(user)) => Some(Arc::from(user.as_str())),
        _ => None,
    };
    let registration = slot.register(user, Arc::clone(&outbox));
    let conn = registration.conn().clone();
    let channel = match &route {
        Some(Route::Channel(channel)) => {
            let subscriber = Subscriber {
                conn: conn.clone(),
                outbox: Arc::clone(&outbox),
            };
            world.hub.subscribe(channel, subscriber, None);
            Some(channel.clone())
        }
        _ => None,
    };
    let addressed = match &route {
        Some(Route::Channel(_) | Route::User(_)) => true,
        Some(Route::Conn(target)) => **target == *conn,
        None => false,
    };
    inbound.deliver(route, payload);
    let received = outbox.queued_bytes() > 0;
    if let Some(channel) = &channel {
        world.hub.unsubscribe(channel, &conn);
    }
    drop(registration);
    assert_eq!(
        received,
        addressed && valid,
        "delivered {received} for a message addressed {addressed} and valid {valid}"
    );
    let reply = inbound.check_reply(payload);
    assert_eq!(
        reply.is_ok(),
        valid,
        "an rpc reply is judged unlike a message"
    );
}
