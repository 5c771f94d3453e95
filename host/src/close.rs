//! Why a session ends, and the WebSocket close code the client sees for it.
//!
//! One place maps every reason to its RFC 6455 code (SPEC 3), with no wildcard
//! arm, so that adding a reason forces a decision about what the client is told.

/// The reasons the gateway ends a WebSocket session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The gateway is draining for a restart or deploy: reconnect elsewhere.
    Draining,
    /// The client could not keep up: its outbound queue overflowed.
    SlowConsumer,
    /// A client message was over `max_frame_bytes`.
    TooLarge,
    /// The client broke the WebSocket protocol (bad framing, unmasked frame, ...).
    ProtocolViolation,
    /// A text frame was not valid UTF-8.
    InvalidUtf8,
    /// Nothing, not even a pong, arrived within the idle timeout.
    IdleTimeout,
    /// The client sent a close frame or went away.
    ClientClosed,
    /// The identity's expiry passed without a successful `refresh`.
    TokenExpired,
}

impl CloseReason {
    /// The close code sent to the client.
    pub const fn code(self) -> u16 {
        match self {
            Self::Draining => 1012,
            Self::SlowConsumer => 1013,
            Self::TooLarge => 1009,
            Self::ProtocolViolation => 1002,
            Self::InvalidUtf8 => 1007,
            Self::IdleTimeout => 1001,
            Self::ClientClosed => 1000,
            Self::TokenExpired => 4001,
        }
    }

    /// The short reason text in the close frame and the metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Draining => "draining",
            Self::SlowConsumer => "slow_consumer",
            Self::TooLarge => "too_large",
            Self::ProtocolViolation => "protocol_violation",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::IdleTimeout => "idle_timeout",
            Self::ClientClosed => "client_closed",
            Self::TokenExpired => "token_expired",
        }
    }

    /// The reason text of the close frame: [`CloseReason::as_str`], except
    /// for a drain, whose text is the reconnect hint `{"reconnect_in_ms":N}`
    /// with N drawn uniformly from `[0, drain)` (so that the clients of a
    /// drained instance reconnect spread over the drain period, on top of the
    /// closes themselves being spread over it), and for an expiry (`token
    /// expired`, SPEC 3).
    pub fn close_text(self, drain: std::time::Duration) -> std::borrow::Cow<'static, str> {
        match self {
            Self::Draining => {
                format!(r#"{{"reconnect_in_ms":{}}}"#, reconnect_hint_ms(drain)).into()
            }
            Self::TokenExpired => "token expired".into(),
            other => other.as_str().into(),
        }
    }

    /// Whether frames still queued are thrown away rather than sent first.
    /// A slow consumer cannot take them; everyone else gets what was queued
    /// (for a client that closed, that includes the echo of its close frame).
    pub const fn discards_pending(self) -> bool {
        match self {
            Self::SlowConsumer => true,
            Self::ClientClosed
            | Self::Draining
            | Self::TooLarge
            | Self::ProtocolViolation
            | Self::InvalidUtf8
            | Self::IdleTimeout
            | Self::TokenExpired => false,
        }
    }

    /// Whether the gateway sends a close frame (a client that closed already got its echo).
    pub const fn sends_close_frame(self) -> bool {
        !matches!(self, Self::ClientClosed)
    }
}

/// The drain hint: a wait in milliseconds drawn uniformly from `[0, drain)`
/// (0 for a zero drain period), told to a client closed by a drain.
pub fn reconnect_hint_ms(drain: std::time::Duration) -> u64 {
    let spread = u64::try_from(drain.as_millis()).unwrap_or(u64::MAX);
    if spread == 0 {
        0
    } else {
        rand::random_range(0..spread)
    }
}
