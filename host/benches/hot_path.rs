//! Micro-benchmarks of the per-message hot path: parsing a client publish and
//! fanning one message out to many local subscribers.
//!
//! `cargo bench -p ferrygate --bench hot_path`; figures in docs/benchmarks.md.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ferrygate::connections::ConnId;
use ferrygate::hub::{Hub, Subscriber};
use ferrygate::metrics::Metrics;
use ferrygate::outbox::Outbox;
use ferrygate::protocol::{ChannelName, parse_request};

fn parse(c: &mut Criterion) {
    let payload = "x".repeat(64);
    let text = format!(
        r#"{{"op":"publish","id":17,"channel":"chat.lobby","data":{{"text":"{payload}"}}}}"#
    );
    let mut group = c.benchmark_group("parse_request");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("publish_100B", |b| {
        b.iter(|| {
            let (id, request) = parse_request(black_box(&text));
            black_box((id, request.is_ok()))
        });
    });
    group.finish();
}

fn fanout(c: &mut Criterion) {
    let channel = ChannelName::new("bench").expect("valid channel");
    let data = format!(r#"{{"t":1234567890,"s":42,"p":"{}"}}"#, "x".repeat(64));
    let mut group = c.benchmark_group("hub_deliver");
    for subscribers in [1usize, 100, 1000] {
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_function(format!("{subscribers}_subscribers"), |b| {
            // By reference, so that dropping the hub and its queued frames is
            // not part of the measurement.
            b.iter_batched_ref(
                || {
                    let hub = Hub::new(Arc::new(Metrics::new()));
                    for n in 0..subscribers {
                        let subscriber = Subscriber {
                            conn: ConnId::from(format!("c{n}")),
                            outbox: Arc::new(Outbox::new(1 << 20)),
                        };
                        hub.subscribe(&channel, subscriber, None);
                    }
                    hub
                },
                |hub| black_box(hub.deliver(&channel, &data)),
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, parse, fanout);
criterion_main!(benches);
