//! JSON pointers (RFC 6901) as config values: checked when the config is
//! parsed, then used to remove or replace the value they name.

use ferrygate_sdk::serde_json::Value;
use serde::Deserialize;

/// A non-empty JSON pointer: `/a/b`, with `~1` for `/` and `~0` for `~`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Pointer {
    /// The pointer to the parent of the target, as given (still escaped).
    parent: String,
    /// The target's key in its parent, unescaped.
    key: String,
}

impl TryFrom<String> for Pointer {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        // The whole document (`""`) cannot be removed or masked.
        if !text.starts_with('/') {
            return Err(format!("JSON pointer {text:?} must start with '/'"));
        }
        let split = text.rfind('/').unwrap_or(0);
        let escaped_key = &text[split + 1..];
        if escaped_key
            .replace("~0", "")
            .replace("~1", "")
            .contains('~')
        {
            return Err(format!(
                "JSON pointer {text:?} has a '~' not followed by 0 or 1"
            ));
        }
        Ok(Self {
            parent: text[..split].to_owned(),
            key: escaped_key.replace("~1", "/").replace("~0", "~"),
        })
    }
}

impl Pointer {
    /// Deletes the target; `true` if there was one.
    pub fn remove(&self, document: &mut Value) -> bool {
        match document.pointer_mut(&self.parent) {
            Some(Value::Object(map)) => map.remove(&self.key).is_some(),
            Some(Value::Array(items)) => match self.index(items.len()) {
                Some(index) => {
                    items.remove(index);
                    true
                }
                None => false,
            },
            _ => false,
        }
    }

    /// Replaces the target with `value`; `true` if there was one.
    pub fn replace(&self, document: &mut Value, value: Value) -> bool {
        match document.pointer_mut(&self.parent) {
            Some(Value::Object(map)) => match map.get_mut(&self.key) {
                Some(slot) => {
                    *slot = value;
                    true
                }
                None => false,
            },
            Some(Value::Array(items)) => match self.index(items.len()) {
                Some(index) => {
                    items[index] = value;
                    true
                }
                None => false,
            },
            _ => false,
        }
    }

    /// The key as an array index below `len`; RFC 6901 forbids leading zeros.
    fn index(&self, len: usize) -> Option<usize> {
        if self.key.len() > 1 && self.key.starts_with('0') {
            return None;
        }
        self.key.parse().ok().filter(|&index| index < len)
    }
}
