//! Test-only hostile transform: answers every message with a JSON string of
//! exactly `size` bytes (default 8 MiB), to test the gateway's output bounds.

use ferrygate_sdk::{Message, Outcome, Result, Transform};
use serde::Deserialize;

struct HugeOutput;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The payload size in bytes, quotes included (at least 2).
    #[serde(default = "default_size")]
    size: usize,
}

fn default_size() -> usize {
    8 << 20
}

impl Transform for HugeOutput {
    type Config = Config;

    fn transform(config: &Config, _: Message) -> Result<Outcome> {
        let body = config.size.saturating_sub(2);
        let mut payload = String::with_capacity(body + 2);
        payload.push('"');
        payload.extend(std::iter::repeat_n('x', body));
        payload.push('"');
        Ok(Outcome::Keep(payload))
    }
}

ferrygate_sdk::export_transform!(HugeOutput);
