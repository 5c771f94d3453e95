//! Tests for the frame reader: split and batched reads, the three length
//! encodings, reassembly, control frames, and what must be refused.

use super::*;

/// A server frame (unmasked).
fn frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![if fin { 0x80 | op } else { op }];
    match payload.len() {
        n if n < 126 => f.push(n as u8),
        n if n <= 0xFFFF => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Data(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    Close(Vec<u8>),
}

/// Parses everything complete so far.
fn drain(r: &mut FrameReader) -> Vec<Ev> {
    let mut out = Vec::new();
    while let Some(f) = r.next().expect("valid stream") {
        out.push(match f {
            Frame::Data(s) => Ev::Data(r.bytes(s).to_vec()),
            Frame::Ping(s) => Ev::Ping(r.bytes(s).to_vec()),
            Frame::Pong => Ev::Pong,
            Frame::Close(s) => Ev::Close(r.bytes(s).to_vec()),
        });
    }
    out
}

/// Feeds `chunks` one read at a time, as a socket would.
fn feed_in(r: &mut FrameReader, chunks: &[&[u8]]) -> Vec<Ev> {
    let mut out = Vec::new();
    for c in chunks {
        r.read_buf().extend_from_slice(c);
        out.extend(drain(r));
    }
    out
}

fn big(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// A stream with every kind of frame, and what it should yield.
fn stream() -> (Vec<u8>, Vec<Ev>) {
    let mut s = Vec::new();
    s.extend(frame(true, OP_TEXT, b"{\"channel\":\"a\",\"data\":1}"));
    s.extend(frame(true, OP_BINARY, b""));
    s.extend(frame(true, OP_PING, b"p1"));
    s.extend(frame(true, OP_BINARY, &big(300)));
    s.extend(frame(false, OP_TEXT, b"hel"));
    s.extend(frame(true, OP_PING, b""));
    s.extend(frame(false, OP_CONTINUATION, b"lo "));
    s.extend(frame(true, OP_PONG, b"x"));
    s.extend(frame(true, OP_CONTINUATION, b"world"));
    s.extend(frame(true, OP_TEXT, b"after"));
    s.extend(frame(true, OP_CLOSE, &[0x03, 0xE8, b'b', b'y', b'e']));
    let evs = vec![
        Ev::Data(b"{\"channel\":\"a\",\"data\":1}".to_vec()),
        Ev::Data(Vec::new()),
        Ev::Ping(b"p1".to_vec()),
        Ev::Data(big(300)),
        Ev::Ping(Vec::new()),
        Ev::Pong,
        Ev::Data(b"hello world".to_vec()),
        Ev::Data(b"after".to_vec()),
        Ev::Close(vec![0x03, 0xE8, b'b', b'y', b'e']),
    ];
    (s, evs)
}

#[test]
fn many_frames_in_one_read() {
    let (s, want) = stream();
    let mut r = FrameReader::new(4096);
    assert_eq!(feed_in(&mut r, &[&s]), want);
    assert!(r.unparsed().is_empty());
    assert!(!r.mid_message());
}

#[test]
fn split_at_every_byte_boundary() {
    let (s, want) = stream();
    for cut in 1..s.len() {
        let mut r = FrameReader::new(1024);
        assert_eq!(
            feed_in(&mut r, &[&s[..cut], &s[cut..]]),
            want,
            "cut at {cut}"
        );
    }
    for cut in 1..s.len() - 1 {
        let mut r = FrameReader::new(1024);
        let got = feed_in(&mut r, &[&s[..cut], &s[cut..cut + 1], &s[cut + 1..]]);
        assert_eq!(got, want, "one byte at {cut}");
    }
}

#[test]
fn one_byte_per_read() {
    let (s, want) = stream();
    let mut r = FrameReader::new(1024);
    let chunks: Vec<&[u8]> = s.chunks(1).collect();
    assert_eq!(feed_in(&mut r, &chunks), want);
    assert!(r.buf.capacity() <= 4096, "buffer stays small");
}

#[test]
fn sixteen_and_sixty_four_bit_lengths() {
    for n in [125, 126, 127, 1000, 0xFFFF, 0x1_0000, 200_000] {
        let f = frame(true, OP_BINARY, &big(n));
        let head = match n {
            0..=125 => 2,
            126..=0xFFFF => 4,
            _ => 10,
        };
        assert_eq!(f.len(), head + n);
        // Whole, and in reads of 4000 bytes (frames larger than the buffer).
        let mut r = FrameReader::new(4096);
        assert_eq!(feed_in(&mut r, &[&f]), vec![Ev::Data(big(n))], "{n}");
        let chunks: Vec<&[u8]> = f.chunks(4000).collect();
        let mut r = FrameReader::new(4096);
        assert_eq!(feed_in(&mut r, &chunks), vec![Ev::Data(big(n))], "{n}");
        // The grown buffer is given back once the frame is done.
        r.read_buf();
        assert!(r.buf.capacity() <= 4 * 4096);
    }
}

#[test]
fn fragments_reassemble_across_reads() {
    let mut s = Vec::new();
    s.extend(frame(false, OP_BINARY, &big(5000)[..2000]));
    s.extend(frame(false, OP_CONTINUATION, &big(5000)[2000..2001]));
    s.extend(frame(true, OP_PING, b"mid"));
    s.extend(frame(true, OP_CONTINUATION, &big(5000)[2001..]));
    s.extend(frame(false, OP_TEXT, b"a"));
    s.extend(frame(true, OP_CONTINUATION, b"b"));
    let want = vec![
        Ev::Ping(b"mid".to_vec()),
        Ev::Data(big(5000)),
        Ev::Data(b"ab".to_vec()),
    ];
    let mut r = FrameReader::new(1024);
    let chunks: Vec<&[u8]> = s.chunks(700).collect();
    assert_eq!(feed_in(&mut r, &chunks), want);
    assert!(!r.mid_message());
    let mut r = FrameReader::new(1024);
    r.read_buf().extend(frame(false, OP_TEXT, b"x"));
    assert_eq!(drain(&mut r), vec![]);
    assert!(r.mid_message());
}

#[test]
fn ping_payload_is_handed_out_for_the_pong() {
    let mut r = FrameReader::new(1024);
    r.read_buf().extend(frame(true, OP_PING, &big(125)));
    let Some(Frame::Ping(s)) = r.next().expect("valid") else {
        panic!("expected a ping");
    };
    assert_eq!(r.bytes(s), &big(125)[..]);
    // The pong the client sends: masked, same payload.
    let mut out = Vec::new();
    encode(&mut out, OP_PONG, r.bytes(s), [1, 2, 3, 4]);
    assert_eq!(&out[..6], &[0x8A, 0x80 | 125, 1, 2, 3, 4]);
    let unmasked: Vec<u8> = out[6..]
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ [1, 2, 3, 4][i % 4])
        .collect();
    assert_eq!(unmasked, big(125));
}

#[test]
fn encodes_client_lengths() {
    for (n, head) in [(0, 6), (125, 6), (126, 8), (0xFFFF, 8), (0x1_0000, 14)] {
        let mut out = Vec::new();
        encode(&mut out, OP_BINARY, &big(n), [9, 8, 7, 6]);
        assert_eq!(out.len(), head + n, "{n}");
        assert_eq!(out[0], 0x82);
        assert_eq!(out[1] & 0x80, 0x80, "mask bit");
    }
}

fn error_of(bytes: &[u8]) -> String {
    let mut r = FrameReader::new(1024);
    r.read_buf().extend_from_slice(bytes);
    loop {
        match r.next() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("no error for {bytes:02x?}"),
            Err(e) => return e.to_string(),
        }
    }
}

#[test]
fn refuses_bad_frames() {
    let masked = [0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
    assert!(error_of(&masked).contains("masked"));
    assert!(error_of(&[0xC1, 0x00]).contains("reserved bits"));
    assert!(error_of(&[0x83, 0x00]).contains("reserved opcode"));
    assert!(error_of(&[0x09, 0x00]).contains("control frame"));
    let mut long_ping = vec![0x89, 126, 0, 126];
    long_ping.extend(big(126));
    assert!(error_of(&long_ping).contains("control frame"));
    let huge = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
    assert!(error_of(&huge).contains("limit"));
    assert!(error_of(&frame(true, OP_CONTINUATION, b"x")).contains("continuation"));
    let mut two = frame(false, OP_TEXT, b"a");
    two.extend(frame(true, OP_TEXT, b"b"));
    assert!(error_of(&two).contains("inside a fragmented"));
}

#[test]
fn upgrade_leftovers_are_kept() {
    let mut r = FrameReader::new(1024);
    r.read_buf().extend_from_slice(b"HTTP/1.1 101 OK\r\n\r\n");
    r.read_buf().extend(frame(true, OP_TEXT, b"welcome"));
    r.skip(19);
    assert_eq!(drain(&mut r), vec![Ev::Data(b"welcome".to_vec())]);
}

#[test]
fn close_reasons() {
    assert_eq!(close_reason(&[0x03, 0xE8, b'o', b'k']), "closed 1000 ok");
    assert_eq!(close_reason(&[]), "close frame without code");
}
