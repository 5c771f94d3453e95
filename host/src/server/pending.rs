//! The bound on HTTP connections that are not (yet) sessions: every accepted
//! socket counts from `accept` until it is upgraded to a WebSocket, admitted
//! as an SSE stream, or closed, keep-alive API connections included.
//!
//! Beyond `[server] max_pending_connections` the accept loop answers a fixed
//! `503` itself, without HTTP parsing, and closes: a flood of half-open or
//! slow clients holds at most that many descriptors (each for at most
//! `request_head_timeout_ms` per request head, an idle keep-alive wait
//! included), so sessions and the broker's reconnects always find one.
//! Sessions are bounded separately (`max_connections`). Knows nothing of
//! routes or sessions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a refused connection is sent: complete, so any HTTP client reads a
/// clean 503 and retries later.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 84\r\n\r\n{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections awaiting a request\"}}";

/// How long a refused socket is kept to read what the client sent before
/// closing (closing with unread bytes would reset the connection and could
/// destroy the 503 before the client reads it).
pub const REFUSAL_LINGER: Duration = Duration::from_millis(500);

/// Largest number of request bytes read and discarded from a refused socket.
const REFUSAL_READ_BYTES: usize = 16 * 1024;

/// The count and its bound; shared by the accept loop and every slot.
#[derive(Debug)]
pub struct PendingLimit {
    open: Arc<AtomicUsize>,
    max: usize,
}

/// One counted connection; frees its place when dropped or released.
/// Cloned handles (request extensions) share one place.
#[derive(Debug, Clone)]
pub struct PendingSlot(Arc<Place>);

#[derive(Debug)]
struct Place {
    open: Arc<AtomicUsize>,
    released: AtomicBool,
}

impl PendingLimit {
    /// At most `max` connections pending at once.
    pub fn new(max: usize) -> Self {
        Self {
            open: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// A place for one more connection, or `None` at the bound.
    pub fn take(&self) -> Option<PendingSlot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        Some(PendingSlot(Arc::new(Place {
            open: Arc::clone(&self.open),
            released: AtomicBool::new(false),
        })))
    }

    /// Connections counted now.
    pub fn len(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Whether none is counted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl PendingSlot {
    /// Stops counting this connection (it became a session); idempotent.
    pub fn release(&self) {
        if !self.0.released.swap(true, Ordering::AcqRel) {
            self.0.open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if !*self.released.get_mut() {
            self.open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Answers `503` on `stream` and closes it, after reading (and discarding)
/// what the client sends for at most [`REFUSAL_LINGER`].
pub async fn refuse(mut stream: TcpStream) {
    // A fresh socket's send buffer is empty, so the short answer fits in one
    // write, but only once the reactor has seen the socket writable: a
    // socket just handed to a worker runtime has no readiness yet, and
    // `try_write` would refuse it without trying (the client then saw a bare
    // close instead of the 503).
    let written = tokio::time::timeout(REFUSAL_LINGER, stream.write_all(REFUSAL)).await;
    if !matches!(written, Ok(Ok(()))) {
        return;
    }
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 1024];
    let mut read = 0;
    let drain = async {
        while read < REFUSAL_READ_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    };
    let _ = tokio::time::timeout(REFUSAL_LINGER, drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_and_freed_once() {
        let limit = PendingLimit::new(2);
        let a = limit.take().expect("first");
        let b = limit.take().expect("second");
        assert!(limit.take().is_none());
        let a2 = a.clone();
        a.release();
        a2.release();
        drop(a);
        drop(a2);
        assert_eq!(limit.len(), 1);
        drop(b);
        assert!(limit.is_empty());
        assert!(limit.take().is_some());
    }

    #[test]
    fn the_refusal_is_a_complete_response() {
        let text = std::str::from_utf8(REFUSAL).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(json["error"]["code"], "unavailable");
    }
}
