//! Test-only hostile transform: allocates 1 MiB blocks (each touched) until
//! an allocation fails, so the gateway's per-instance memory cap must stop it.

use ferrygate_sdk::{Message, NoConfig, Outcome, Result, Transform};

struct MemoryBomb;

const BLOCK_BYTES: usize = 1 << 20;

impl Transform for MemoryBomb {
    type Config = NoConfig;

    fn transform(_: &NoConfig, _: Message) -> Result<Outcome> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // Non-zero fill so every page is written, not just reserved.
            hoard.push(std::hint::black_box(vec![1u8; BLOCK_BYTES]));
        }
    }
}

ferrygate_sdk::export_transform!(MemoryBomb);
