//! Test-only hostile transform: loops forever, so the gateway's per-call time
//! limit (epoch deadline) must cut it.

use ferrygate_sdk::{Message, NoConfig, Outcome, Result, Transform};

struct Spin;

impl Transform for Spin {
    type Config = NoConfig;

    fn transform(_: &NoConfig, _: Message) -> Result<Outcome> {
        let mut turns: u64 = 0;
        loop {
            // `black_box` keeps the optimizer from proving the loop useless.
            turns = std::hint::black_box(turns.wrapping_add(1));
        }
    }
}

ferrygate_sdk::export_transform!(Spin);
