//! Client protocol v1: the JSON text frames exchanged on `/ws` (SPEC 3).
//!
//! Owns the wire format only: parsing a client frame into a [`Request`],
//! validating channel names, and writing every server frame (welcome, replies,
//! pushes, direct messages). It knows nothing of sessions, the hub or brokers,
//! so the format can be tested and changed in one place.

mod channel;
mod frame;
mod pattern;
mod request;

pub use channel::{ChannelError, ChannelName, MAX_CHANNEL_BYTES};
pub use frame::Frame;
pub use pattern::{ChannelPattern, PatternError};
pub use request::{Request, RequestId, Since, parse_request};

use std::fmt;

/// The error codes of protocol v1, as they appear on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Not JSON, not an object, unknown op, missing or wrong-typed field.
    BadRequest,
    /// A policy refused the request.
    Forbidden,
    /// The target (subscription, connection, method) does not exist.
    NotFound,
    /// A payload over a configured size.
    TooLarge,
    /// The connection went over its request or publish rate.
    RateLimited,
    /// The broker or a backend is down, or no responder exists.
    Unavailable,
    /// A backend did not answer in time.
    Timeout,
    /// A plugin failed while deciding.
    PluginError,
}

impl ErrorCode {
    /// The code as written in error replies and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::TooLarge => "too_large",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::PluginError => "plugin_error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request that cannot be served, with the code and message the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    /// Wire error code.
    pub code: ErrorCode,
    /// Human-readable reason, safe to show to the client.
    pub message: String,
}

impl ProtocolError {
    /// A new error reply.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A `bad_request` error.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
}
