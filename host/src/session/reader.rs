//! The reading half of a session: frames in, requests handled, close classified.

use futures_util::{Stream, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};

use super::Session;
use crate::close::CloseReason;
use crate::protocol::{ErrorCode, Frame, ProtocolError, parse_request};

/// Reads until the client leaves, breaks the protocol or goes silent; returns why.
pub(super) async fn run<S>(mut stream: S, session: &mut Session) -> CloseReason
where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    let idle_timeout = session.gateway.config.server.idle_timeout();
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(idle_timeout, stream.next()) => next,
            () = session.login.expired() => return CloseReason::TokenExpired,
        };
        let message = match next {
            Err(_elapsed) => return CloseReason::IdleTimeout,
            Ok(None) => return CloseReason::ClientClosed,
            Ok(Some(Err(error))) => return classify(&error),
            Ok(Some(Ok(message))) => message,
        };
        match message {
            // Boxed: the future of a request (a route or rpc plugin call,
            // a broker publish) is large and lives only while the request
            // does; inline, it would be part of every idle session's task.
            Message::Text(text) => Box::pin(session.handle_text(text.as_str())).await,
            Message::Binary(_) => session.refuse(
                None,
                ProtocolError::bad_request(
                    "binary frames are not supported; send JSON text frames",
                ),
            ),
            // tungstenite answers pings itself; any frame proves the peer is alive.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            // tungstenite queues its echo of the close and writes it (into the
            // outbox) on the next read, which then reports the end of stream.
            Message::Close(_) => {}
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
    async fn handle_text(&mut self, text: &str) {
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
