//! Test-only transform that reads the wall clock and random bytes (through
//! std's `SystemTime` and `HashMap` seeding), so its component imports
//! `wasi:clocks/wall-clock` and `wasi:random/random`, which the gateway does
//! not grant: loading it must fail, naming the import.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use ferrygate_sdk::{Message, NoConfig, Outcome, Result, Transform};

struct Ungranted;

impl Transform for Ungranted {
    type Config = NoConfig;

    fn transform(_: &NoConfig, message: Message) -> Result<Outcome> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis());
        // A `HashMap` seeds its hasher from the host's randomness.
        let mut seen = HashMap::new();
        seen.insert(message.channel, now_ms);
        Ok(Outcome::Keep(format!(
            "{{\"now_ms\":{now_ms},\"keys\":{}}}",
            seen.len()
        )))
    }
}

ferrygate_sdk::export_transform!(Ungranted);
