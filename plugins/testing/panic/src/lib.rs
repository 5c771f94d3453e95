//! Test-only hostile transform: panics on every message, so the SDK's panic
//! hook logs the message and the call traps.

use ferrygate_sdk::{Message, NoConfig, Outcome, Result, Transform};

struct Panic;

impl Transform for Panic {
    type Config = NoConfig;

    fn transform(_: &NoConfig, message: Message) -> Result<Outcome> {
        panic!(
            "test plugin panics on purpose (channel {})",
            message.channel
        );
    }
}

ferrygate_sdk::export_transform!(Panic);
