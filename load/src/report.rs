//! Fan-out results: one row per step, the human-readable table and the JSON file.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::Target;
use crate::stats::Latency;

/// One rate step.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub target_rate: u64,
    pub secs: f64,
    pub sent: u64,
    pub achieved_rate: f64,
    /// Replies `ok` / errors received for this step's publishes (ferrygate).
    pub acked_ok: u64,
    pub pub_errors: u64,
    pub rate_limited: u64,
    pub expected: u64,
    pub received: u64,
    pub delivered_per_sec: f64,
    /// Expected minus unique deliveries (after the grace period).
    pub loss: i64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub unparsable: u64,
    pub disconnected: u64,
    pub latency: Latency,
    pub server_cpu_pct: Option<f64>,
    pub load_cpu_pct: Option<f64>,
    /// Every process on the machine (100 = one core); well above server + load
    /// means other work competed with the benchmark.
    pub machine_cpu_pct: Option<f64>,
    /// CPU-seconds of the `--cpu-pid` processes and of the load tool over
    /// the step, with the step's deliveries.
    pub cpu: Option<crate::efficiency::StepCpu>,
    pub sustained: bool,
}

/// The whole run.
#[derive(Debug, Serialize)]
pub struct Run {
    pub target: Target,
    pub url: String,
    pub subscribers: usize,
    pub subscribers_failed: usize,
    pub payload_bytes: usize,
    pub step_secs: u64,
    pub p99_limit_ms: f64,
    pub steps: Vec<Step>,
    /// Highest target rate whose step was sustained.
    pub max_sustained_rate: Option<u64>,
    pub max_sustained_delivered_per_sec: Option<f64>,
    pub stopped_because: Option<String>,
    /// Why subscriber connections ended during the run, with counts.
    pub subscriber_disconnects: Vec<(String, u64)>,
}

pub fn print_header() {
    println!(
        "{:>8} {:>9} {:>11} {:>8} {:>8} {:>8} {:>9} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7}  ok",
        "target",
        "pub/s",
        "deliv/s",
        "p50ms",
        "p99ms",
        "maxms",
        "loss",
        "dup",
        "ooo",
        "errs",
        "srv%",
        "load%",
        "host%"
    );
}

pub fn print_row(s: &Step) {
    let pct = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.0}"));
    println!(
        "{:>8} {:>9.0} {:>11.0} {:>8.2} {:>8.2} {:>8.1} {:>9} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7}  {}",
        s.target_rate,
        s.achieved_rate,
        s.delivered_per_sec,
        s.latency.p50_ms,
        s.latency.p99_ms,
        s.latency.max_ms,
        s.loss,
        s.duplicates,
        s.out_of_order,
        s.pub_errors,
        pct(s.server_cpu_pct),
        pct(s.load_cpu_pct),
        pct(s.machine_cpu_pct),
        if s.sustained { "yes" } else { "NO" }
    );
}

/// Why a step is not sustained, or `None` when it is.
pub fn shortfall(s: &Step, p99_limit_ms: f64) -> Option<String> {
    let mut why = Vec::new();
    if s.achieved_rate < 0.97 * s.target_rate as f64 {
        why.push(format!(
            "published {:.0}/s < 97% of target",
            s.achieved_rate
        ));
    }
    if s.loss != 0 {
        why.push(format!("loss {}", s.loss));
    }
    if s.latency.p99_ms > p99_limit_ms {
        why.push(format!(
            "p99 {:.1} ms > {p99_limit_ms} ms",
            s.latency.p99_ms
        ));
    }
    if s.latency.count == 0 && s.expected > 0 {
        why.push("nothing delivered".into());
    }
    (!why.is_empty()).then(|| why.join(", "))
}

pub fn print_summary(run: &Run) {
    println!();
    match (run.max_sustained_rate, run.max_sustained_delivered_per_sec) {
        (Some(r), Some(d)) => println!(
            "highest sustained step: {r} msg/s published, {d:.0} msg/s delivered to {} subscribers",
            run.subscribers
        ),
        _ => println!("no step was sustained"),
    }
    if let Some(why) = &run.stopped_because {
        println!("stopped: {why}");
    }
}

pub fn write_json(path: &Path, run: &Run) -> Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(run)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("results written to {}", path.display());
    Ok(())
}
