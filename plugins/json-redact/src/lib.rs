//! Transform plugin `json-redact`: removes (`remove`) or masks (`mask`, with
//! `mask_with`, default `"***"`) the payload fields named by JSON pointers
//! (RFC 6901, such as `/user/ssn` or `/items/0/card`). A pointer that names
//! nothing is skipped; a payload that is not an object or array, or that no
//! pointer touches, passes unchanged, byte for byte. A changed payload is
//! re-serialized with its object keys in sorted order (serde_json's `Value`).
//!
//! ```toml
//! config = { remove = ["/card", "/user/ssn"], mask = ["/email"], mask_with = "***" }
//! ```

use ferrygate_sdk::serde_json::Value;
use ferrygate_sdk::{Message, Outcome, Result, Transform};
use serde::Deserialize;

mod pointer;

use pointer::Pointer;

struct JsonRedact;

/// The plugin's `config` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Fields to delete.
    #[serde(default)]
    remove: Vec<Pointer>,
    /// Fields whose value is replaced by `mask_with`.
    #[serde(default)]
    mask: Vec<Pointer>,
    /// The replacement for masked values.
    #[serde(default = "default_mask")]
    mask_with: String,
}

fn default_mask() -> String {
    "***".to_owned()
}

impl Transform for JsonRedact {
    type Config = Config;

    fn transform(config: &Config, message: Message) -> Result<Outcome> {
        let mut payload = message.json()?;
        if !(payload.is_object() || payload.is_array()) {
            return Ok(Outcome::Keep(message.data));
        }
        let mut changed = false;
        for pointer in &config.remove {
            changed |= pointer.remove(&mut payload);
        }
        for pointer in &config.mask {
            changed |= pointer.replace(&mut payload, Value::String(config.mask_with.clone()));
        }
        // Untouched payloads keep their exact text (no re-serialization).
        Ok(if changed {
            Outcome::keep_json(&payload)
        } else {
            Outcome::Keep(message.data)
        })
    }
}

ferrygate_sdk::export_transform!(JsonRedact);

#[cfg(test)]
mod tests;
