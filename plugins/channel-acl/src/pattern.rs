//! Channel patterns (NATS style: tokens split on `.`, `*` matches one token,
//! `>` the rest, at least one) with a `{user}` token that marks the channel's
//! owner, and templates (`chat.{1}.eu`) that build a channel from a match.

use serde::Deserialize;

/// A checked channel pattern, such as `chat.*`, `user.{user}.>` or `lobby`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Pattern {
    text: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// `*`: one token, captured.
    One,
    /// `>`: one or more trailing tokens, captured joined with `.`.
    Rest,
    /// `{user}`: one token, the channel's owner.
    Owner,
}

/// What a pattern matched.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Captures {
    /// What `*` and `>` matched, in order; `{1}` in a template is the first.
    pub wildcards: Vec<String>,
    /// What `{user}` matched.
    pub owner: Option<String>,
}

impl TryFrom<String> for Pattern {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let mut tokens = Vec::new();
        let count = text.split('.').count();
        for (index, token) in text.split('.').enumerate() {
            tokens.push(match token {
                "" => return Err(format!("channel pattern {text:?} has an empty token")),
                "*" => Token::One,
                ">" if index + 1 == count => Token::Rest,
                ">" => return Err(format!("channel pattern {text:?} has '>' before its end")),
                "{user}" if tokens.contains(&Token::Owner) => {
                    return Err(format!("channel pattern {text:?} has '{{user}}' twice"));
                }
                "{user}" => Token::Owner,
                literal if literal.contains(['*', '>', '{', '}']) => {
                    return Err(format!(
                        "channel pattern {text:?} has a wildcard inside a token"
                    ));
                }
                literal => Token::Literal(literal.to_owned()),
            });
        }
        Ok(Self { text, tokens })
    }
}

impl Pattern {
    /// Parses a pattern (used for patterns read from claims at call time).
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::try_from(text.to_owned())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// How many wildcards (`*`, `>`) a template may refer to.
    pub fn wildcard_count(&self) -> usize {
        self.tokens
            .iter()
            .filter(|token| matches!(token, Token::One | Token::Rest))
            .count()
    }

    /// Whether the pattern has a `{user}` token.
    pub fn has_owner(&self) -> bool {
        self.tokens.contains(&Token::Owner)
    }

    /// Matches `channel`, returning what the wildcards matched.
    pub fn captures(&self, channel: &str) -> Option<Captures> {
        let mut captures = Captures::default();
        let mut rest = channel.split('.');
        for (index, token) in self.tokens.iter().enumerate() {
            if let Token::Rest = token {
                let tail: Vec<&str> = rest.by_ref().collect();
                if tail.is_empty() || tail.iter().any(|t| t.is_empty()) {
                    return None;
                }
                captures.wildcards.push(tail.join("."));
                debug_assert_eq!(index + 1, self.tokens.len(), "'>' is last");
                return Some(captures);
            }
            let part = rest.next().filter(|part| !part.is_empty())?;
            match token {
                Token::Literal(literal) if literal == part => {}
                Token::Literal(_) => return None,
                Token::One => captures.wildcards.push(part.to_owned()),
                Token::Owner => captures.owner = Some(part.to_owned()),
                Token::Rest => {}
            }
        }
        rest.next().is_none().then_some(captures)
    }

    /// Whether `channel` matches.
    pub fn matches(&self, channel: &str) -> bool {
        self.captures(channel).is_some()
    }
}

/// A channel template: text with `{N}` (the Nth wildcard's match, from 1)
/// and `{user}` (the requesting user's id).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Wildcard(usize),
    User,
}

impl TryFrom<String> for Template {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text.as_str();
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(format!("template {text:?} has an unclosed '{{'"));
            };
            parts.push(match &rest[open + 1..open + close] {
                "user" => Part::User,
                number => match number.parse::<usize>() {
                    Ok(index) if index >= 1 => Part::Wildcard(index),
                    _ => return Err(format!("template {text:?}: {{{number}}} is neither {{user}} nor {{1}}, {{2}}, ...")),
                },
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { text, parts })
    }
}

impl Template {
    /// The highest `{N}` used, which the rule's pattern must provide.
    pub fn highest_wildcard(&self) -> usize {
        self.parts
            .iter()
            .filter_map(|part| match part {
                Part::Wildcard(index) => Some(*index),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Builds the channel; `Err` names what is missing.
    pub fn render(&self, captures: &Captures, user: Option<&str>) -> Result<String, String> {
        let mut channel = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => channel.push_str(text),
                Part::Wildcard(index) => match captures.wildcards.get(index - 1) {
                    Some(value) => channel.push_str(value),
                    None => return Err(format!("{} has no wildcard {{{index}}}", self.text)),
                },
                Part::User => match user {
                    Some(user) => channel.push_str(user),
                    None => return Err(format!("{} needs a signed-in user", self.text)),
                },
            }
        }
        Ok(channel)
    }
}

#[cfg(test)]
mod tests;
