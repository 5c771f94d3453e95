//! Efficiency of a fan-out step: the CPU-seconds that named server processes
//! (`--cpu-pid NAME=PID`, e.g. two gateways and their broker) and this load
//! tool spent over a step, per million deliveries. Owns the per-step CPU
//! window and its summary table; does not decide whether a step is sustained
//! (`report::shortfall`) nor pace the publisher.

use std::time::Instant;

use anyhow::{Result, anyhow};
use serde::Serialize;

use crate::procfs::{self, TICKS_PER_SEC};
use crate::report::Step;

/// A server process to account: a label for the tables and its pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPid {
    pub name: String,
    pub pid: u32,
}

/// Parses `NAME=PID` (the value of `--cpu-pid`).
pub fn parse_named_pid(s: &str) -> Result<NamedPid> {
    let (name, pid) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("expected NAME=PID, got {s:?}"))?;
    if name.is_empty() {
        return Err(anyhow!("empty name in {s:?}"));
    }
    let pid = pid.parse().map_err(|e| anyhow!("bad pid in {s:?}: {e}"))?;
    Ok(NamedPid {
        name: name.to_owned(),
        pid,
    })
}

/// CPU used over one step: each named process and this load tool, in
/// CPU-seconds (`utime + stime` deltas, 10 ms resolution), and the
/// deliveries (unique messages received by all subscribers) in the window.
#[derive(Debug, Clone, Serialize)]
pub struct StepCpu {
    /// Wall-clock length of the window, seconds (publishing plus the grace
    /// until the last delivery arrived).
    pub window_secs: f64,
    pub deliveries: u64,
    /// `(name, CPU-seconds)` per `--cpu-pid`, in the order given.
    pub servers: Vec<(String, f64)>,
    /// Sum of `servers`.
    pub server_secs: f64,
    /// Server CPU-seconds per million deliveries; `None` with no delivery.
    pub server_secs_per_million: Option<f64>,
    /// This load tool's CPU-seconds over the window.
    pub load_secs: f64,
}

/// The CPU clocks at the start of a step.
#[derive(Debug)]
pub struct CpuWindow {
    at: Instant,
    servers: Vec<(NamedPid, u64)>,
    load: u64,
}

impl CpuWindow {
    /// Reads every process's CPU time now; fails when one has gone.
    pub fn start(pids: &[NamedPid]) -> Result<Self> {
        let servers = pids
            .iter()
            .map(|p| Ok((p.clone(), procfs::cpu_ticks(Some(p.pid))?)))
            .collect::<Result<_>>()?;
        Ok(Self {
            at: Instant::now(),
            servers,
            load: procfs::cpu_ticks(None)?,
        })
    }

    /// Closes the window: CPU-seconds since [`CpuWindow::start`].
    pub fn finish(&self, deliveries: u64) -> Result<StepCpu> {
        let secs = |t0: u64, t1: u64| t1.saturating_sub(t0) as f64 / TICKS_PER_SEC;
        let servers: Vec<(String, f64)> = self
            .servers
            .iter()
            .map(|(p, t0)| Ok((p.name.clone(), secs(*t0, procfs::cpu_ticks(Some(p.pid))?))))
            .collect::<Result<_>>()?;
        let server_secs = servers.iter().map(|(_, s)| s).sum::<f64>();
        Ok(StepCpu {
            window_secs: self.at.elapsed().as_secs_f64(),
            deliveries,
            server_secs,
            server_secs_per_million: (deliveries > 0)
                .then(|| server_secs / deliveries as f64 * 1e6),
            servers,
            load_secs: secs(self.load, procfs::cpu_ticks(None)?),
        })
    }
}

/// Whether a step counts for the efficiency figure: the full rate published
/// and every message delivered exactly once, in order. Latency is not a
/// condition (reported beside it): on a shared machine p99 moves with the
/// neighbours, CPU-seconds per delivery much less.
pub fn counts(s: &Step) -> bool {
    s.achieved_rate >= 0.97 * s.target_rate as f64
        && s.loss == 0
        && s.duplicates == 0
        && s.out_of_order == 0
        && s.expected > 0
}

/// Prints the efficiency table of a run's steps (those with CPU figures).
pub fn print_summary(steps: &[Step]) {
    let rows: Vec<(&Step, &StepCpu)> = steps
        .iter()
        .filter_map(|s| s.cpu.as_ref().map(|c| (s, c)))
        .collect();
    let Some((_, first)) = rows.first() else {
        return;
    };
    let names: Vec<&str> = first.servers.iter().map(|(n, _)| n.as_str()).collect();
    println!();
    println!(
        "efficiency: server CPU-seconds per million deliveries (each part, then the sum); \
         load tool CPU-s per million and its share of a core"
    );
    let mut header = format!("{:>8} {:>11} {:>7}", "pub/s", "deliveries", "p99ms");
    for n in &names {
        header.push_str(&format!(" {n:>12}"));
    }
    header.push_str(&format!(
        " {:>9} {:>9} {:>6}  counts",
        "servers", "load", "load%"
    ));
    println!("{header}");
    for (s, c) in rows {
        let per_m = |secs: f64| {
            if c.deliveries == 0 {
                "-".to_owned()
            } else {
                format!("{:.3}", secs / c.deliveries as f64 * 1e6)
            }
        };
        let mut line = format!(
            "{:>8} {:>11} {:>7.1}",
            s.target_rate, c.deliveries, s.latency.p99_ms
        );
        for (_, secs) in &c.servers {
            line.push_str(&format!(" {:>12}", per_m(*secs)));
        }
        line.push_str(&format!(
            " {:>9} {:>9} {:>6.0}  {}",
            per_m(c.server_secs),
            per_m(c.load_secs),
            c.load_secs / c.window_secs.max(1e-9) * 100.0,
            if counts(s) { "yes" } else { "NO" }
        ));
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_named_pids() {
        assert_eq!(
            parse_named_pid("gateway-a=1234").expect("valid"),
            NamedPid {
                name: "gateway-a".into(),
                pid: 1234
            }
        );
        assert!(parse_named_pid("1234").is_err());
        assert!(parse_named_pid("=1234").is_err());
        assert!(parse_named_pid("a=x").is_err());
    }

    #[test]
    fn window_on_this_process() {
        let me = NamedPid {
            name: "me".into(),
            pid: std::process::id(),
        };
        let w = CpuWindow::start(&[me]).expect("start");
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 50 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        let c = w.finish(1_000_000).expect("finish");
        assert!(x > 0);
        assert_eq!(c.servers.len(), 1);
        assert!(c.server_secs >= 0.0 && c.server_secs < 5.0);
        assert_eq!(c.server_secs_per_million, Some(c.server_secs));
        assert!(c.window_secs >= 0.05);
        assert!(
            w.finish(0)
                .expect("finish")
                .server_secs_per_million
                .is_none()
        );
    }
}
