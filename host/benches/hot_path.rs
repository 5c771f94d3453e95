//! Micro-benchmarks of the per-message hot path: parsing a client publish,
//! fanning one message out to many local subscribers, and every subscriber
//! of one channel leaving at once (a drain, a network blip).
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

/// A hub whose `channel` has `subscribers` members; also returns their ids.
fn crowded_hub(channel: &ChannelName, subscribers: usize) -> (Hub, Vec<ConnId>) {
    let hub = Hub::new(Arc::new(Metrics::new()));
    let conns: Vec<ConnId> = (0..subscribers)
        .map(|n| ConnId::from(format!("c{n}")))
        .collect();
    for conn in &conns {
        let subscriber = Subscriber {
            conn: conn.clone(),
            outbox: Arc::new(Outbox::new(1 << 20)),
        };
        hub.subscribe(channel, subscriber, None);
    }
    (hub, conns)
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
                || crowded_hub(&channel, subscribers).0,
                |hub| black_box(hub.deliver(&channel, &data)),
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

/// Every member of one channel unsubscribes, in join order: the cost of a
/// mass disconnect per member (constant per member when leaving is O(1)).
fn mass_unsubscribe(c: &mut Criterion) {
    let channel = ChannelName::new("bench").expect("valid channel");
    let mut group = c.benchmark_group("hub_unsubscribe_all");
    group.sample_size(10);
    for subscribers in [1_000usize, 20_000] {
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_function(format!("{subscribers}_subscribers"), |b| {
            b.iter_batched_ref(
                || crowded_hub(&channel, subscribers),
                |(hub, conns)| {
                    for conn in conns.iter() {
                        black_box(hub.unsubscribe(&channel, conn));
                    }
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, parse, fanout, mass_unsubscribe);
criterion_main!(benches);
