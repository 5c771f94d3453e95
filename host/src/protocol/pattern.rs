//! Channel patterns, NATS style: `chat.*` matches one token in place of `*`,
//! `user.>` matches one or more trailing tokens. Used by `[[routes]]`.

use std::fmt;

use super::ChannelName;

/// A parsed channel pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPattern {
    text: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// `*`: exactly one token.
    One,
    /// `>`: one or more tokens; only last.
    Rest,
}

/// Why a pattern is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{pattern}` is not a channel pattern: {reason}")]
pub struct PatternError {
    pattern: String,
    reason: &'static str,
}

impl ChannelPattern {
    /// Parses `text`: dot-separated tokens, each a literal channel token, `*`
    /// or (last only) `>`.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let error = |reason| PatternError {
            pattern: text.to_owned(),
            reason,
        };
        let parts: Vec<&str> = text.split('.').collect();
        let mut tokens = Vec::with_capacity(parts.len());
        for (index, part) in parts.iter().enumerate() {
            let token = match *part {
                "*" => Token::One,
                ">" if index + 1 == parts.len() => Token::Rest,
                ">" => return Err(error("`>` may only be the last token")),
                literal => {
                    if super::channel::validate(literal).is_err() {
                        return Err(error(
                            "each token is `*`, `>` or 1+ characters of [A-Za-z0-9_-:@=+~]",
                        ));
                    }
                    Token::Literal(literal.to_owned())
                }
            };
            tokens.push(token);
        }
        Ok(Self {
            text: text.to_owned(),
            tokens,
        })
    }

    /// Whether `channel` matches.
    pub fn matches(&self, channel: &ChannelName) -> bool {
        let mut parts = channel.as_str().split('.');
        for token in &self.tokens {
            match token {
                Token::Rest => return parts.next().is_some(),
                Token::One => {
                    if parts.next().is_none() {
                        return false;
                    }
                }
                Token::Literal(literal) => {
                    if parts.next() != Some(literal.as_str()) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for ChannelPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, channel: &str) -> bool {
        let pattern = ChannelPattern::parse(pattern).expect("valid pattern");
        let channel = ChannelName::new(channel).expect("valid channel");
        pattern.matches(&channel)
    }

    #[test]
    fn star_is_exactly_one_token() {
        assert!(matches("chat.*", "chat.lobby"));
        assert!(!matches("chat.*", "chat"));
        assert!(!matches("chat.*", "chat.lobby.eu"));
        assert!(matches("*.lobby", "chat.lobby"));
    }

    #[test]
    fn rest_is_one_or_more_tokens() {
        assert!(matches("user.>", "user.42"));
        assert!(matches("user.>", "user.42.inbox"));
        assert!(!matches("user.>", "user"));
        assert!(matches(">", "anything.at.all"));
    }

    #[test]
    fn literals_match_exactly() {
        assert!(matches("news", "news"));
        assert!(!matches("news", "news.eu"));
        assert!(!matches("chat.lobby", "chat.lobbyx"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["", "chat..x", "a.>.b", "chat.l bby", "chat.*x"] {
            assert!(ChannelPattern::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
