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

    /// Whether every channel this pattern matches is also matched by
    /// `other` (`chat.lobby` and `chat.*` are covered by `chat.*`, and all
    /// three by `>`; `chat.*` is not covered by `chat.lobby`).
    pub fn covered_by(&self, other: &ChannelPattern) -> bool {
        for (index, theirs) in other.tokens.iter().enumerate() {
            let Some(mine) = self.tokens.get(index) else {
                return false;
            };
            match (mine, theirs) {
                // `>` takes one or more tokens: mine has at least one left.
                (_, Token::Rest) => return true,
                (Token::Rest, _) => return false,
                (_, Token::One) => {}
                (Token::One, Token::Literal(_)) => return false,
                (Token::Literal(a), Token::Literal(b)) if a != b => return false,
                (Token::Literal(_), Token::Literal(_)) => {}
            }
        }
        self.tokens.len() == other.tokens.len()
    }

    /// Whether some channel matches both patterns (`chat.*` and `*.lobby`
    /// both match `chat.lobby`; `chat.*` and `news` share none).
    pub fn overlaps(&self, other: &ChannelPattern) -> bool {
        for (index, mine) in self.tokens.iter().enumerate() {
            let Some(theirs) = other.tokens.get(index) else {
                return false;
            };
            match (mine, theirs) {
                // Each side has a token here, and `>` can take whatever
                // the other side has from here on.
                (Token::Rest, _) | (_, Token::Rest) => return true,
                (Token::Literal(a), Token::Literal(b)) if a != b => return false,
                _ => {}
            }
        }
        self.tokens.len() == other.tokens.len()
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

    fn pattern(text: &str) -> ChannelPattern {
        ChannelPattern::parse(text).expect("valid pattern")
    }

    #[test]
    fn coverage_is_containment_of_the_matched_channels() {
        let covered = |a: &str, b: &str| pattern(a).covered_by(&pattern(b));
        assert!(covered("chat.lobby", "chat.*"));
        assert!(covered("chat.*", "chat.*"));
        assert!(covered("chat.*", ">"));
        assert!(covered("chat.>", "chat.>"));
        assert!(covered("chat.a.>", "chat.>"));
        assert!(covered("chat.*.x", "chat.>"));
        assert!(!covered("chat.*", "chat.lobby"));
        assert!(!covered("chat.>", "chat.*"));
        assert!(!covered("chat", "chat.>"));
        assert!(!covered("chat.*", "news.*"));
        assert!(!covered("chat.*.x", "chat.*"));
    }

    #[test]
    fn overlap_is_a_shared_channel() {
        let overlap = |a: &str, b: &str| {
            let (a, b) = (pattern(a), pattern(b));
            assert_eq!(a.overlaps(&b), b.overlaps(&a), "not symmetric");
            a.overlaps(&b)
        };
        assert!(overlap("chat.*", "*.lobby"));
        assert!(overlap("chat.*", ">"));
        assert!(overlap("chat.>", "chat.a.b"));
        assert!(overlap("chat.lobby", "chat.lobby"));
        assert!(!overlap("chat.*", "news"));
        assert!(!overlap("chat.*", "chat"));
        assert!(!overlap("chat.*", "chat.a.b"));
        assert!(!overlap("chat.>", "chat"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["", "chat..x", "a.>.b", "chat.l bby", "chat.*x"] {
            assert!(ChannelPattern::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
