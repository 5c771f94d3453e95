//! Tests for the NATS stream parser: batched, split and malformed input.

use super::*;

fn collect(p: &mut Parser) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(ev) = p.next_event().expect("valid stream") {
        out.push(match ev {
            Event::Msg { subject, payload } => format!(
                "MSG {} {}",
                String::from_utf8_lossy(subject),
                String::from_utf8_lossy(payload)
            ),
            Event::Ping => "PING".into(),
            Event::Pong => "PONG".into(),
            Event::Ok => "+OK".into(),
            Event::Err(e) => format!("ERR {}", String::from_utf8_lossy(e)),
            Event::Info(i) => format!("INFO {}", String::from_utf8_lossy(i)),
        });
    }
    out
}

const STREAM: &[u8] = b"INFO {\"server_id\":\"x\"}\r\n+OK\r\nPING\r\nMSG bench 1 5\r\nhello\r\nMSG bench 1 reply.to 7\r\nab\r\ncde\r\nHMSG bench 1 12 15\r\nNATS/1.0\r\n\r\nabc\r\nPONG\r\n-ERR 'Slow Consumer'\r\n";

fn expected() -> Vec<String> {
    vec![
        "INFO {\"server_id\":\"x\"}".into(),
        "+OK".into(),
        "PING".into(),
        "MSG bench hello".into(),
        "MSG bench ab\r\ncde".into(),
        "MSG bench abc".into(),
        "PONG".into(),
        "ERR 'Slow Consumer'".into(),
    ]
}

#[test]
fn batched_in_one_frame() {
    let mut p = Parser::default();
    p.feed(STREAM);
    assert_eq!(collect(&mut p), expected());
    assert_eq!(p.next_event().expect("ok"), None);
}

#[test]
fn split_at_every_position() {
    for cut in 1..STREAM.len() {
        let mut p = Parser::default();
        p.feed(&STREAM[..cut]);
        let mut got = collect(&mut p);
        p.feed(&STREAM[cut..]);
        got.extend(collect(&mut p));
        assert_eq!(got, expected(), "cut at {cut}");
    }
}

#[test]
fn one_byte_per_frame() {
    let mut p = Parser::default();
    let mut got = Vec::new();
    for b in STREAM {
        p.feed(std::slice::from_ref(b));
        got.extend(collect(&mut p));
    }
    assert_eq!(got, expected());
    assert!(p.buf.len() < 64, "buffer compacts as it goes");
}

#[test]
fn lowercase_ops_and_tabs() {
    let mut p = Parser::default();
    p.feed(b"msg\tfoo.bar\t9\t2\r\nhi\r\nping\r\n");
    assert_eq!(collect(&mut p), vec!["MSG foo.bar hi", "PING"]);
}

#[test]
fn empty_payload() {
    let mut p = Parser::default();
    p.feed(b"MSG a 1 0\r\n\r\n");
    assert_eq!(collect(&mut p), vec!["MSG a "]);
}

#[test]
fn rejects_garbage() {
    for bad in [
        &b"HELLO world\r\n"[..],
        b"MSG a 1 x\r\n",
        b"MSG a 1 3\r\nabcde\r\n",
        b"MSG a\r\n",
        b"MSG a 1 99999999999\r\n",
        b"HMSG a 1 9 3\r\nabc\r\n",
        b"MSG a 1 2 3 4 5\r\n",
    ] {
        let mut p = Parser::default();
        p.feed(bad);
        assert!(
            p.next_event().is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn rejects_endless_line() {
    let mut p = Parser::default();
    p.feed(&vec![b'A'; MAX_LINE + 1]);
    assert!(p.next_event().is_err());
}

#[test]
fn encodes_pub() {
    let mut b = BytesMut::new();
    encode_pub(&mut b, "bench", b"xyz");
    encode_pub(&mut b, "bench", b"");
    assert_eq!(&b[..], b"PUB bench 3\r\nxyz\r\nPUB bench 0\r\n\r\n");
}
