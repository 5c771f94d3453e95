//! Benchmark payload: `{"t":<ns>,"s":<seq>,"p":"xxx…"}`, padded to a fixed size.
//!
//! `t` is nanoseconds since a process-wide [`Instant`] (publisher and subscribers
//! live in the same process, so the clock is shared); `s` is a sequence number,
//! global over the whole run. The scanner reads both without a JSON parser: it
//! takes a fast path when the payload starts as we wrote it, and otherwise looks
//! the two keys up anywhere (a gateway may re-serialise the object and reorder keys).

use std::sync::OnceLock;
use std::time::Instant;

use bytes::{BufMut, BytesMut};

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Starts the process clock; call once early so later calls are cheap.
pub fn init_clock() {
    let _ = EPOCH.get_or_init(Instant::now);
}

/// Nanoseconds since the process clock started.
pub fn now_ns() -> u64 {
    let epoch = EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Appends a payload of at least `size` bytes (exactly `size` when `size` is
/// larger than the unpadded object).
pub fn encode(buf: &mut BytesMut, t_ns: u64, seq: u64, size: usize) {
    let mut digits = [0u8; 20];
    let t = fmt_u64(t_ns, &mut digits);
    let t_len = t.len();
    buf.put_slice(b"{\"t\":");
    buf.put_slice(t);
    buf.put_slice(b",\"s\":");
    let s = fmt_u64(seq, &mut digits);
    let s_len = s.len();
    buf.put_slice(s);
    buf.put_slice(b",\"p\":\"");
    // {"t": + t + ,"s": + s + ,"p":" + pad + "}
    let fixed = 5 + t_len + 5 + s_len + 6 + 2;
    let pad = size.saturating_sub(fixed);
    buf.put_bytes(b'x', pad);
    buf.put_slice(b"\"}");
}

/// Appends the decimal digits of `v`.
pub fn put_u64(buf: &mut BytesMut, v: u64) {
    let mut digits = [0u8; 20];
    buf.put_slice(fmt_u64(v, &mut digits));
}

fn fmt_u64(mut v: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &out[i..]
}

/// Reads `(t, s)` from a payload, or `None` when either is missing.
pub fn scan(data: &[u8]) -> Option<(u64, u64)> {
    if let Some(rest) = data.strip_prefix(b"{\"t\":") {
        let (t, used) = digits(rest)?;
        if let Some(after) = rest[used..].strip_prefix(b",\"s\":") {
            let (s, _) = digits(after)?;
            return Some((t, s));
        }
    }
    Some((key(data, b"\"t\"")?, key(data, b"\"s\"")?))
}

/// Value of the unsigned integer that follows `name` and a colon.
fn key(data: &[u8], name: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find(data, name)?;
    let rest = skip_ws(&data[at + name.len()..]);
    let rest = skip_ws(rest.strip_prefix(b":")?);
    digits(rest).map(|(v, _)| v)
}

fn skip_ws(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r' | b'\n', tail @ ..] = s {
        s = tail;
    }
    s
}

/// Parses leading ASCII digits; returns the value and how many bytes it used.
fn digits(s: &[u8]) -> Option<(u64, usize)> {
    let n = s.iter().take(21).take_while(|b| b.is_ascii_digit()).count();
    if n == 0 || n > 20 {
        return None;
    }
    if n < 20 {
        // Up to 19 digits cannot overflow a u64.
        let v = s[..n]
            .iter()
            .fold(0u64, |v, &b| v * 10 + u64::from(b - b'0'));
        return Some((v, n));
    }
    let mut v: u64 = 0;
    for &b in &s[..n] {
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some((v, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(t: u64, s: u64, size: usize) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode(&mut b, t, s, size);
        b.to_vec()
    }

    #[test]
    fn encodes_to_requested_size_and_valid_json() {
        for size in [0, 10, 40, 100, 1000] {
            let p = enc(123_456_789, 42, size);
            assert!(p.len() >= size);
            if size >= 40 {
                assert_eq!(p.len(), size);
            }
            let v: serde_json::Value = serde_json::from_slice(&p).expect("valid json");
            assert_eq!(v["t"], 123_456_789);
            assert_eq!(v["s"], 42);
        }
    }

    #[test]
    fn scans_fast_path() {
        let p = enc(u64::MAX, 0, 100);
        assert_eq!(scan(&p), Some((u64::MAX, 0)));
        let p = enc(0, 987_654_321, 10);
        assert_eq!(scan(&p), Some((0, 987_654_321)));
    }

    #[test]
    fn scans_reordered_and_spaced_keys() {
        assert_eq!(scan(br#"{"p":"xx","s":7,"t":99}"#), Some((99, 7)));
        assert_eq!(scan(br#"{ "s" : 7 , "t" :	99 }"#), Some((99, 7)));
    }

    #[test]
    fn rejects_missing_or_bad_values() {
        assert_eq!(scan(br#"{"t":1}"#), None);
        assert_eq!(scan(br#"{"t":"1","s":2}"#), None);
        assert_eq!(scan(br#"{"t":99999999999999999999999,"s":2}"#), None);
        assert_eq!(scan(b""), None);
        assert_eq!(scan(b"{\"t\":"), None);
        assert_eq!(scan(br#"{"t":184467440737095516150,"s":2}"#), None);
        assert_eq!(scan(br#"{"t":18446744073709551616,"s":2}"#), None);
    }
}
