//! Process figures from `/proc`: resident memory (`VmRSS`) and CPU time
//! (`utime + stime` of all threads, from `/proc/PID/stat`).

use std::time::Instant;

use anyhow::{Context, Result, anyhow};

/// Clock ticks per second for `/proc/PID/stat` times (`USER_HZ`, 100 on Linux).
pub const TICKS_PER_SEC: f64 = 100.0;

/// `VmRSS` of a process in bytes; `pid` `None` is this process.
pub fn rss_bytes(pid: Option<u32>) -> Result<u64> {
    let path = proc_path(pid, "status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_rss(&text).ok_or_else(|| anyhow!("no VmRSS in {path}"))
}

fn parse_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// CPU time used so far, in clock ticks; `pid` `None` is this process.
pub fn cpu_ticks(pid: Option<u32>) -> Result<u64> {
    let path = proc_path(pid, "stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat_ticks(&text).ok_or_else(|| anyhow!("cannot parse {path}"))
}

fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // Fields from 3 (state) on: utime is field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn proc_path(pid: Option<u32>, file: &str) -> String {
    match pid {
        Some(p) => format!("/proc/{p}/{file}"),
        None => format!("/proc/self/{file}"),
    }
}

/// Measures a process's CPU use between [`CpuSampler::start`] and [`CpuSampler::percent`].
#[derive(Debug, Clone, Copy)]
pub struct CpuSampler {
    pid: Option<u32>,
    ticks: u64,
    at: Instant,
}

impl CpuSampler {
    pub fn start(pid: Option<u32>) -> Result<Self> {
        Ok(Self {
            pid,
            ticks: cpu_ticks(pid)?,
            at: Instant::now(),
        })
    }

    /// CPU % since start (100 = one core busy).
    pub fn percent(&self) -> Result<f64> {
        let ticks = cpu_ticks(self.pid)?;
        let secs = self.at.elapsed().as_secs_f64();
        if secs <= 0.0 {
            return Ok(0.0);
        }
        Ok(ticks.saturating_sub(self.ticks) as f64 / TICKS_PER_SEC / secs * 100.0)
    }
}

/// Busy and total jiffies of the whole machine (first line of `/proc/stat`).
fn machine_ticks() -> Result<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_machine(&text).ok_or_else(|| anyhow!("cannot parse /proc/stat"))
}

fn parse_machine(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Measures the whole machine's CPU use (100 = one core busy), to spot other
/// work competing with a benchmark.
#[derive(Debug, Clone, Copy)]
pub struct MachineSampler {
    busy: u64,
    total: u64,
    cores: usize,
}

impl MachineSampler {
    pub fn start() -> Result<Self> {
        let (busy, total) = machine_ticks()?;
        // Not `available_parallelism`: that follows this process's affinity (taskset).
        let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        let cores = text
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count()
            .max(1);
        Ok(Self { busy, total, cores })
    }

    pub fn percent(&self) -> Result<f64> {
        let (busy, total) = machine_ticks()?;
        let dt = total.saturating_sub(self.total);
        if dt == 0 {
            return Ok(0.0);
        }
        Ok(busy.saturating_sub(self.busy) as f64 / dt as f64 * 100.0 * self.cores as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_name() {
        let stat = "1234 (a b) c) S 1 1 1 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 1 2 3";
        assert_eq!(parse_stat_ticks(stat), Some(325));
    }

    #[test]
    fn parses_rss() {
        assert_eq!(
            parse_rss("Name:\tx\nVmRSS:\t   2048 kB\nVmData: 1 kB\n"),
            Some(2048 * 1024)
        );
        assert_eq!(parse_rss("Name:\tx\n"), None);
    }

    #[test]
    fn parses_machine_line() {
        let stat = "cpu  100 0 50 800 50 0 10 0 0 0\ncpu0 1 2 3\n";
        assert_eq!(parse_machine(stat), Some((160, 1010)));
        assert!(MachineSampler::start().is_ok());
    }

    #[test]
    fn reads_own_process() {
        assert!(rss_bytes(None).expect("rss") > 0);
        let s = CpuSampler::start(None).expect("cpu");
        assert!(s.percent().expect("cpu") >= 0.0);
    }
}
