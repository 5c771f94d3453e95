//! `{{name}}`: a transform plugin. Adds `"seen_by": "{{name}}"` to object
//! payloads, and drops a payload whose text contains `config.drop_word`.

use ferrygate_sdk::{Message, Outcome, Result, Transform};
use serde::Deserialize;

struct Plugin;

/// The plugin's `config` table in the manifest.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// A payload containing this text is dropped.
    #[serde(default)]
    drop_word: Option<String>,
}

impl Transform for Plugin {
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
                object.insert("seen_by".into(), "{{name}}".into());
                Ok(Outcome::keep_json(&payload))
            }
            None => Ok(Outcome::Keep(message.data)),
        }
    }
}

ferrygate_sdk::export_transform!(Plugin);
