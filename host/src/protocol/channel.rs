//! Channel names: what a client may subscribe and publish to.
//!
//! A name is 1 to 200 bytes of dot-separated tokens; each token is non-empty
//! and made of ASCII letters, digits and `_ - : @ = + ~`. The rules keep every
//! name usable unchanged as a NATS subject token sequence and a Redis channel,
//! free of wildcards (`*`, `>`), and safe to write into JSON without escaping.

use std::fmt;
use std::sync::Arc;

/// Longest channel name, in bytes; leaves room for the broker prefix.
pub const MAX_CHANNEL_BYTES: usize = 200;

/// A validated channel name; cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(Arc<str>);

/// Why a string is not a channel name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The empty string.
    #[error("channel name is empty")]
    Empty,
    /// Longer than [`MAX_CHANNEL_BYTES`].
    #[error("channel name is longer than {MAX_CHANNEL_BYTES} bytes")]
    TooLong,
    /// Leading, trailing or doubled dot.
    #[error("channel name has an empty token (leading, trailing or double `.`)")]
    EmptyToken,
    /// A character outside the allowed set.
    #[error("channel name contains {0:?}; allowed: letters, digits, `.` and `_-:@=+~`")]
    BadCharacter(char),
}

impl ChannelName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, ChannelError> {
        validate(name)?;
        Ok(Self(Arc::from(name)))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks `name` against the channel rules without allocating.
pub fn validate(name: &str) -> Result<(), ChannelError> {
    if name.is_empty() {
        return Err(ChannelError::Empty);
    }
    if name.len() > MAX_CHANNEL_BYTES {
        return Err(ChannelError::TooLong);
    }
    if let Some(bad) = name.chars().find(|c| !is_name_char(*c)) {
        return Err(ChannelError::BadCharacter(bad));
    }
    if name.split('.').any(str::is_empty) {
        return Err(ChannelError::EmptyToken);
    }
    Ok(())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@' | '=' | '+' | '~')
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_typical_names() {
        for name in [
            "chat",
            "chat.lobby",
            "user.42",
            "room:7.v2",
            "a-b_c@d=e+f~g",
        ] {
            assert!(ChannelName::new(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_what_would_break_a_broker_or_json() {
        assert_eq!(validate(""), Err(ChannelError::Empty));
        assert_eq!(validate("a..b"), Err(ChannelError::EmptyToken));
        assert_eq!(validate(".a"), Err(ChannelError::EmptyToken));
        assert_eq!(validate("a."), Err(ChannelError::EmptyToken));
        assert_eq!(validate("chat.*"), Err(ChannelError::BadCharacter('*')));
        assert_eq!(validate("chat.>"), Err(ChannelError::BadCharacter('>')));
        assert_eq!(validate("a b"), Err(ChannelError::BadCharacter(' ')));
        assert_eq!(validate("a\"b"), Err(ChannelError::BadCharacter('"')));
        assert_eq!(validate("é"), Err(ChannelError::BadCharacter('é')));
        assert_eq!(validate(&"x".repeat(201)), Err(ChannelError::TooLong));
        assert!(validate(&"x".repeat(200)).is_ok());
    }
}
