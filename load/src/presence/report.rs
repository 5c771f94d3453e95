//! What `presence` reports: the figures of each phase, per connection, as
//! printed and as written to `--json`. Formats only; measures nothing.

use serde::Serialize;

use super::query::Timing;
use crate::counters::Snapshot;

/// Figures of one phase (join or leave).
#[derive(Debug, Serialize)]
pub struct Phase {
    /// Connections that joined (left).
    pub count: usize,
    pub failed: usize,
    /// Connect + subscribe (or close) of all of them.
    pub secs: f64,
    pub per_sec: f64,
    /// From the end of the phase until presence showed all of them (or
    /// none of them): the gateway acks a subscribe before it writes presence.
    pub settle_ms: Option<f64>,
    pub gateway_cpu_us_each: Option<f64>,
    pub broker_cpu_us_each: Option<f64>,
    /// Broker counters moved over the phase and its settling, per connection.
    pub broker_ops_each: Vec<(String, f64)>,
    pub gateway_series_each: Vec<(String, f64)>,
}

/// One run: the channel, whether its route had presence, every phase.
#[derive(Debug, Serialize)]
pub struct PresenceRun {
    pub channel: String,
    pub presence: bool,
    pub join: Phase,
    /// Broker counters per heartbeat over `--idle-secs` with every member in.
    pub heartbeat: Option<(u64, Vec<(String, f64)>)>,
    pub queries: Vec<Timing>,
    pub leave: Phase,
}

/// Each counter of `delta` divided by `n`.
pub fn per(delta: &Snapshot, n: usize) -> Vec<(String, f64)> {
    delta
        .iter()
        .map(|(name, &v)| (name.clone(), v as f64 / n.max(1) as f64))
        .collect()
}

/// Prints the run, phase by phase.
pub fn print(run: &PresenceRun) {
    print_phase("join (connect + subscribe)", &run.join);
    if let Some((beats, ops)) = &run.heartbeat {
        println!("idle: {beats} heartbeats");
        for (counter, each) in ops {
            println!("  {counter}: {each:.2} per heartbeat");
        }
    }
    for q in &run.queries {
        println!(
            "query {}: {} runs x {} pages, {} users: p50 {:.2} ms, p99 {:.2} ms, mean {:.2} ms, max {:.2} ms",
            q.what, q.runs, q.pages_per_run, q.users_seen, q.p50_ms, q.p99_ms, q.mean_ms, q.max_ms
        );
    }
    print_phase("leave (close)", &run.leave);
}

fn print_phase(name: &str, phase: &Phase) {
    println!(
        "{name}: {} in {:.2} s = {:.0}/s; presence settled after {}; CPU per connection: gateway {}, broker {}",
        phase.count,
        phase.secs,
        phase.per_sec,
        phase
            .settle_ms
            .map_or("-".into(), |ms| format!("{ms:.0} ms")),
        phase
            .gateway_cpu_us_each
            .map_or("-".into(), |us| format!("{us:.0} us")),
        phase
            .broker_cpu_us_each
            .map_or("-".into(), |us| format!("{us:.0} us")),
    );
    for (counter, each) in phase
        .broker_ops_each
        .iter()
        .chain(&phase.gateway_series_each)
    {
        println!("  {counter}: {each:.3} per connection");
    }
}
