//! `seen-by`, Rust: the transform every language's `ferrygate plugin new
//! --kind transform` writes, kept here so that the benchmarks compare the
//! same work in Rust, JavaScript (`../seen-by-js`) and Python
//! (`../seen-by-py`): drops a payload whose text contains
//! `config.drop_word`; otherwise parses it and, when it is an object, adds
//! `"seen_by": "seen_by"` and serialises it again.

use ferrygate_sdk::{Message, Outcome, Result, Transform};
use serde::Deserialize;

struct SeenBy;

/// The plugin's `config` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// A payload containing this text is dropped.
    #[serde(default)]
    drop_word: Option<String>,
}

impl Transform for SeenBy {
    type Config = Config;

    fn transform(config: &Config, message: Message) -> Result<Outcome> {
        if let Some(word) = &config.drop_word
            && message.data.contains(word.as_str())
        {
            return Ok(Outcome::Drop);
        }
        let mut payload = message.json()?;
        match payload.as_object_mut() {
            Some(object) => {
                object.insert("seen_by".into(), "seen_by".into());
                Ok(Outcome::keep_json(&payload))
            }
            None => Ok(Outcome::Keep(message.data)),
        }
    }
}

ferrygate_sdk::export_transform!(SeenBy);
