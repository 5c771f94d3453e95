//! Unit tests of the envelope codec, the size limit and the subject names; they test
//! the parent module's behaviour and own nothing else.

use super::*;

#[test]
fn raw_payloads_and_envelopes() {
    let raw = decode(br#"{"text":"hi"}"#, 100).expect("raw object");
    assert_eq!(raw.data, r#"{"text":"hi"}"#);
    assert_eq!(raw.node, None);
    assert_eq!(decode(b" 42 ", 100).expect("number").data, "42");
    let wrapped = encode("abc", r#"[1,2]"#);
    let decoded = decode(wrapped.as_bytes(), 100).expect("envelope");
    assert_eq!(decoded.data, "[1,2]");
    assert_eq!(decoded.node.as_deref(), Some("abc"));
}

/// Found by the `envelope` fuzz target: a `null` payload (which clients
/// may publish) was wrapped, then refused as `bad_envelope` by every receiver.
#[test]
fn a_null_payload_survives_the_envelope() {
    let wrapped = encode("abc", "null");
    let decoded = decode(wrapped.as_bytes(), 100).expect("envelope of null");
    assert_eq!(decoded.data, "null");
    assert_eq!(decoded.node.as_deref(), Some("abc"));
    assert_eq!(
        decode(br#"{"ferrygate":1,"node":"abc"}"#, 100),
        Err(Malformed::BadEnvelope)
    );
}

#[test]
fn the_size_limit_is_exactly_what_decode_accepts() {
    let node = "k3j2h1g0f9";
    let limit = SizeLimit::new(node, 300);
    let fits = format!("\"{}\"", "x".repeat(limit.max_data() - 2));
    assert_eq!(encode(node, &fits).len(), 300);
    assert!(limit.check(&fits).is_ok());
    assert!(decode(encode(node, &fits).as_bytes(), 300).is_ok());
    let over = format!("\"{}\"", "x".repeat(limit.max_data() - 1));
    assert!(matches!(
        limit.check(&over),
        Err(BrokerError::TooLarge { size, .. }) if size == over.len()
    ));
    assert_eq!(
        decode(encode(node, &over).as_bytes(), 300),
        Err(Malformed::Oversize)
    );
}

#[test]
fn malformed_payloads_are_named() {
    assert_eq!(decode(b"not json", 100), Err(Malformed::NotJson));
    assert_eq!(decode(&[0xff, 0xfe], 100), Err(Malformed::NotJson));
    assert_eq!(decode(b"[1,2,3]", 3), Err(Malformed::Oversize));
    assert_eq!(
        decode(br#"{"ferrygate":2,"data":1}"#, 100),
        Err(Malformed::BadEnvelope)
    );
    assert_eq!(
        decode(br#"{"ferrygate":1}"#, 100),
        Err(Malformed::BadEnvelope)
    );
    assert_eq!(
        decode(br#"{"ferrygate":1,"offset":3,"epoch":"a b","data":1}"#, 100),
        Err(Malformed::BadEnvelope)
    );
    assert_eq!(
        decode(br#"{"ferrygate":1,"offset":3,"data":1}"#, 100),
        Err(Malformed::BadEnvelope)
    );
    // A numeric `ferrygate` makes an envelope: its other fields must be
    // right, or it is dropped (never delivered whole as a payload).
    for envelope in [
        r#"{"ferrygate":1,"offset":-1,"epoch":"e1","data":1}"#,
        r#"{"ferrygate":1,"offset":1.5,"epoch":"e1","data":1}"#,
        r#"{"ferrygate":1,"offset":3,"epoch":7,"data":1}"#,
        r#"{"ferrygate":1,"node":5,"data":1}"#,
        r#"{"ferrygate":1,"presence":true,"data":1}"#,
        r#"{"ferrygate":-1,"data":1}"#,
        r#"{"ferrygate":1.5,"data":1}"#,
        r#"{"ferrygate":1e0,"data":1}"#,
    ] {
        assert_eq!(
            decode(envelope.as_bytes(), 100),
            Err(Malformed::BadEnvelope),
            "{envelope}"
        );
    }
    // A `ferrygate` that is not a number: a payload like any other.
    let raw = r#"{"ferrygate":"1","data":1}"#;
    assert_eq!(decode(raw.as_bytes(), 100).expect("a payload").data, raw);
    let kept = decode(br#"{"ferrygate":1,"offset":3,"epoch":"e1","data":1}"#, 100);
    assert_eq!(kept.expect("kept").at, Some((3, "e1".to_owned())));
}

#[test]
fn batch_records_unpack_and_are_checked() {
    let record = br#"{"ferrygate":1,"node":"n","offset":4,"epoch":"e1","batch":[1,"b",null]}"#;
    let decoded = decode(record, 100).expect("batch record");
    assert_eq!(decoded.at, Some((4, "e1".to_owned())));
    assert_eq!((decoded.data, decoded.more), ("1", vec![r#""b""#, "null"]));
    // Each message is bound by max_bytes, the record by MAX_RECORD_BYTES.
    assert!(decode(record, 4).is_ok());
    let big = br#"{"ferrygate":1,"offset":4,"epoch":"e1","batch":["long"]}"#;
    assert_eq!(decode(big, 5), Err(Malformed::Oversize));
    for bad in [
        &br#"{"ferrygate":1,"batch":[1,2]}"#[..],
        br#"{"ferrygate":1,"offset":0,"epoch":"e1","batch":[1]}"#,
        br#"{"ferrygate":1,"offset":1,"epoch":"e1","batch":[]}"#,
        br#"{"ferrygate":1,"offset":1,"epoch":"e1","batch":[1],"data":1}"#,
        br#"{"ferrygate":1,"offset":1,"epoch":"e1","batch":[1],"presence":"join"}"#,
        // A batch of the wrong type is a broken envelope, not a payload.
        br#"{"ferrygate":1,"offset":1,"epoch":"e1","batch":5}"#,
        br#"{"ferrygate":1,"offset":1,"epoch":"e1","batch":{"a":1}}"#,
    ] {
        assert_eq!(decode(bad, 100), Err(Malformed::BadEnvelope), "{bad:?}");
    }
}

#[test]
fn user_tokens_round_trip_and_stay_one_token() {
    for user in ["alice", "a.b@example.com", "x y*>%", "ünï"] {
        let token = user_token(user);
        assert!(!token.contains(['.', '*', '>', ' ', ':']), "{token}");
        assert_eq!(user_from_token(&token).as_deref(), Some(user));
    }
    assert_eq!(user_from_token("%zz"), None);
}

#[test]
fn conn_ids_are_checked() {
    assert!(is_conn_id("k3j2h1g0f9.1a"));
    assert!(!is_conn_id("k3j2h1g0f9-1a"));
    assert!(!is_conn_id("a.b.c"));
    assert!(!is_conn_id("a.*"));
    assert!(!is_conn_id(".1"));
}

#[test]
fn presence_events_carry_only_the_user_and_conn() {
    use crate::presence::{EventKind, event_data};
    let sent = encode_presence("n1", EventKind::Leave, &event_data("al\"ice", Some("n1.4")));
    let decoded = decode(sent.as_bytes(), 1000).expect("the gateway's own event");
    assert_eq!(decoded.presence, Some(EventKind::Leave));
    let anonymous_conn = encode_presence("n1", EventKind::Join, &event_data("bob", None));
    assert!(decode(anonymous_conn.as_bytes(), 1000).is_ok());
    for data in [
        r#""x""#,
        "null",
        r#"{"user":5}"#,
        r#"{"conn":"n1.4"}"#,
        r#"{"user":"u","conn":3}"#,
        r#"{"user":"u","role":"admin"}"#,
    ] {
        let sent = encode_presence("n1", EventKind::Join, data);
        assert_eq!(
            decode(sent.as_bytes(), 1000),
            Err(Malformed::BadEnvelope),
            "{data}"
        );
    }
}
