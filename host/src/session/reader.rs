//! The reading half of a session: client frames in, the idle timeout and
//! the token's expiry, close classified.
//!
//! [`Reader`] is polled by the session's connection future
//! (`super::websocket`), which hands each text frame to
//! [`Session::handle_text`]. It owns the WebSocket stream and the two
//! deadlines that end a session from the reading side; it does not write.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use super::socket::ReadSide;
use super::{Lifetime, Session, now_unix_ms};
use crate::close::CloseReason;
use crate::protocol::{ErrorCode, Frame, ProtocolError, parse_request};

/// What the reading side has for the session.
#[derive(Debug)]
pub(super) enum Read {
    /// A request to handle.
    Text(Utf8Bytes),
    /// The client left, broke the protocol, went silent or its token expired.
    End(CloseReason),
}

/// See the module docs.
pub(super) struct Reader {
    ws: WebSocketStream<ReadSide>,
    idle_timeout: Duration,
    /// When the client last sent a frame, or its last request was answered:
    /// the idle timeout counts from here.
    heard: Instant,
    /// The token's expiry on the runtime's clock; `None` for never.
    expires: Option<Instant>,
}

impl Reader {
    pub(super) fn new(
        ws: WebSocketStream<ReadSide>,
        idle_timeout: Duration,
        login: &Lifetime,
    ) -> Self {
        let mut reader = Self {
            ws,
            idle_timeout,
            heard: Instant::now(),
            expires: None,
        };
        reader.expiry_moved(login);
        reader
    }

    /// Restarts the idle timeout: after a request (its handling does not count as silence).
    pub(super) fn heard_now(&mut self) {
        self.heard = Instant::now();
    }

    /// Takes a new expiry (a `refresh` moves it).
    pub(super) fn expiry_moved(&mut self, login: &Lifetime) {
        self.expires = login
            .expires_at_unix_ms
            .map(|at| Instant::now() + Duration::from_millis(at.saturating_sub(now_unix_ms())));
    }

    /// When [`Reader::timed_out`] may next say yes.
    pub(super) fn deadline(&self) -> Instant {
        let idle = self.heard + self.idle_timeout;
        self.expires.map_or(idle, |at| at.min(idle))
    }

    /// Whether the session ends at `now`: the token expired, or the client was silent too long.
    pub(super) fn timed_out(&self, now: Instant) -> Option<CloseReason> {
        if self.expires.is_some_and(|at| now >= at) {
            return Some(CloseReason::TokenExpired);
        }
        (now >= self.heard + self.idle_timeout).then_some(CloseReason::IdleTimeout)
    }

    /// The next text frame or the end; answers binary frames with an error
    /// (through `session`) and swallows control frames, which tungstenite
    /// answers itself. Any frame proves the peer alive.
    pub(super) fn poll_read(&mut self, cx: &mut Context<'_>, session: &Session) -> Poll<Read> {
        loop {
            let message = match std::task::ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                None => return Poll::Ready(Read::End(CloseReason::ClientClosed)),
                Some(Err(error)) => return Poll::Ready(Read::End(classify(&error))),
                Some(Ok(message)) => message,
            };
            self.heard = Instant::now();
            match message {
                Message::Text(text) => return Poll::Ready(Read::Text(text)),
                Message::Binary(_) => session.refuse(
                    None,
                    ProtocolError::bad_request(
                        "binary frames are not supported; send JSON text frames",
                    ),
                ),
                // tungstenite answers pings itself.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                // tungstenite queues its echo of the close and writes it (into
                // the outbox) on the next read, which then reports the end.
                Message::Close(_) => {}
            }
        }
    }

    /// Reads and drops frames until the stream ends: after the writer sent
    /// the close, so the client can echo it. Requests are no longer handled.
    pub(super) fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match std::task::ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                None | Some(Err(_)) => return Poll::Ready(()),
                Some(Ok(_)) => {}
            }
        }
    }
}

/// Maps a read error to what the client is told (SPEC 3 close codes).
fn classify(error: &tungstenite::Error) -> CloseReason {
    use tungstenite::Error;
    use tungstenite::error::ProtocolError;
    match error {
        // A peer that just drops the TCP connection went away; it broke nothing.
        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => CloseReason::ClientClosed,
        Error::Capacity(_) => CloseReason::TooLarge,
        Error::Utf8(_) => CloseReason::InvalidUtf8,
        Error::Protocol(_)
        | Error::AttackAttempt
        | Error::Url(_)
        | Error::Http(_)
        | Error::HttpFormat(_) => CloseReason::ProtocolViolation,
        Error::ConnectionClosed
        | Error::AlreadyClosed
        | Error::Io(_)
        | Error::Tls(_)
        | Error::WriteBufferFull(_) => CloseReason::ClientClosed,
    }
}

impl Session {
    /// Handles one request frame: rate limit, parse, dispatch.
    pub(super) async fn handle_text(&mut self, text: &str) {
        if !self.requests.try_take(Instant::now()) {
            let (id, _) = parse_request(text);
            self.refuse(
                id.as_ref(),
                ProtocolError::new(ErrorCode::RateLimited, "request rate exceeded"),
            );
            return;
        }
        let (id, request) = parse_request(text);
        match (id, request) {
            (Some(id), Ok(request)) => self.dispatch(id, request).await,
            (id, Err(error)) => self.refuse(id.as_ref(), error),
            (None, Ok(_)) => self.refuse(None, ProtocolError::bad_request("missing field `id`")),
        }
    }

    /// Answers a request with an error reply, counting it.
    pub(super) fn refuse(&self, id: Option<&crate::protocol::RequestId>, error: ProtocolError) {
        self.gateway.metrics.request_error(error.code);
        self.reply(Frame::error(id, &error));
    }
}
