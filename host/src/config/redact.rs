//! Keeping secrets out of log lines and API answers.
//!
//! [`Secret`](super::Secret) already hides a value in `Debug`. This module
//! handles the text that is built from secrets without knowing it: a
//! client library's error that echoes a URL with `user:password@`, a
//! plugin's `init` error that quotes its config. [`Redactor`] replaces each
//! known secret in such a text by `[redacted]`; [`url`] hides the password
//! in a broker URL. Owns no I/O: callers decide where the text goes.

use std::borrow::Cow;
use std::fmt;

/// What a redacted secret reads as.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are not searched for: replacing a two-letter
/// value everywhere would garble the message, and it is no secret worth the
/// name.
const MIN_SECRET_CHARS: usize = 4;

/// Words in a plugin config key that mark its value as a secret even when
/// it is written literally (not as `${VAR}`).
const SECRET_KEY_WORDS: [&str; 7] = [
    "secret",
    "password",
    "passwd",
    "token",
    "key",
    "credential",
    "private",
];

/// Strings to hide, longest first (so a secret that contains another is
/// hidden whole). `Debug` shows only how many.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// Adds `secret` (ignored when shorter than 4 characters).
    pub fn add(&mut self, secret: &str) {
        if secret.chars().count() >= MIN_SECRET_CHARS && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_owned());
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Adds every secret of `other`.
    pub fn extend(&mut self, other: &Self) {
        for secret in &other.secrets {
            self.add(secret);
        }
    }

    /// Adds every string inside `value` (objects and arrays included).
    pub(super) fn add_strings(&mut self, value: &serde_json::Value) {
        match value {
            serde_json::Value::String(text) => self.add(text),
            serde_json::Value::Array(items) => items.iter().for_each(|v| self.add_strings(v)),
            serde_json::Value::Object(map) => map.values().for_each(|v| self.add_strings(v)),
            serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {
            }
        }
    }

    /// Adds the values of a plugin `config` whose key names a secret
    /// (`hs256_secret`, `api_token`, `private_key_pem`, ...), at any depth.
    pub(super) fn add_secret_keys(&mut self, config: &serde_json::Map<String, serde_json::Value>) {
        for (key, value) in config {
            let key = key.to_ascii_lowercase();
            if SECRET_KEY_WORDS.iter().any(|word| key.contains(word)) {
                self.add_strings(value);
            } else if let serde_json::Value::Object(inner) = value {
                self.add_secret_keys(inner);
            } else if let serde_json::Value::Array(items) = value {
                for item in items {
                    if let serde_json::Value::Object(inner) = item {
                        self.add_secret_keys(inner);
                    }
                }
            }
        }
    }

    /// `text` with every secret replaced by `[redacted]`.
    pub fn apply<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
        out
    }
}

/// `url` with the password of its `user:password@` part (or a bare
/// `token@`) replaced by `[redacted]`; the rest (scheme, host, port) stays
/// readable for the log.
pub fn url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let Some(at) = url[start..authority_end].rfind('@').map(|i| start + i) else {
        return url.to_owned();
    };
    let userinfo = &url[start..at];
    let hidden = match userinfo.split_once(':') {
        Some((user, _password)) => format!("{user}:{REDACTED}"),
        None => REDACTED.to_owned(),
    };
    format!("{}{hidden}{}", &url[..start], &url[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_host_and_user_but_not_the_password() {
        assert_eq!(
            url("nats://gw:s3cret@127.0.0.1:4222"),
            "nats://gw:[redacted]@127.0.0.1:4222"
        );
        assert_eq!(url("redis://:pw@h:6379/0"), "redis://:[redacted]@h:6379/0");
        assert_eq!(url("nats://tok3n@h:4222"), "nats://[redacted]@h:4222");
        assert_eq!(url("u:p@h:4222"), "u:[redacted]@h:4222");
        assert_eq!(url("nats://h:4222/x@y"), "nats://h:4222/x@y");
        assert_eq!(url("redis://h:6379"), "redis://h:6379");
    }

    #[test]
    fn secrets_are_replaced_longest_first_and_short_ones_ignored() {
        let mut redactor = Redactor::default();
        redactor.add("abc");
        redactor.add("s3cret");
        redactor.add("s3cret-and-more");
        assert_eq!(
            redactor.apply("a s3cret-and-more, a s3cret, abc"),
            "a [redacted], a [redacted], abc"
        );
        assert!(matches!(redactor.apply("nothing here"), Cow::Borrowed(_)));
        assert_eq!(format!("{redactor:?}"), "Redactor(2 secrets)");
    }

    #[test]
    fn secret_named_keys_are_found_at_any_depth() {
        let config: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"hs256_secret":"sig-0123","issuer":"example","nested":{"api_token":["t-4567"]},
                "list":[{"private_key":"pk-8901"}]}"#,
        )
        .expect("json");
        let mut redactor = Redactor::default();
        redactor.add_secret_keys(&config);
        let text = "sig-0123 example t-4567 pk-8901";
        assert_eq!(
            redactor.apply(text),
            "[redacted] example [redacted] [redacted]"
        );
    }
}
