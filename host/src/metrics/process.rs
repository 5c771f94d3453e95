//! The process's own figures, read from `/proc/self` at each scrape under
//! the names every Prometheus client library uses (`process_*`, no
//! `ferrygate_` prefix), so that stock dashboards and alerts on memory, CPU
//! and descriptors work unchanged: an operator sizing `max_connections`
//! watches `process_open_fds` against `process_max_fds`.
//!
//! Linux only: elsewhere, or when `/proc` cannot be read, a figure is left
//! out of the scrape rather than reported as 0. Owns no state and counts
//! nothing of the gateway (that is the parent module).

use std::fs;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second of the CPU times in `/proc/self/stat`: `USER_HZ`,
/// which Linux fixes at 100 for user space on every architecture it exposes
/// `/proc` times on (what `sysconf(_SC_CLK_TCK)` answers).
const USER_HZ: f64 = 100.0;

/// See the module docs.
#[derive(Debug, Default)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(seconds) = cpu_seconds() {
            let counter = ConstCounter::new(seconds);
            let metric = encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time the process used, in seconds",
                None,
                counter.metric_type(),
            )?;
            counter.encode(metric)?;
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory (VmRSS), in bytes",
                resident_bytes(),
            ),
            (
                "process_open_fds",
                "Open file descriptors (sockets included)",
                open_fds(),
            ),
            (
                "process_max_fds",
                "The soft limit on open file descriptors (RLIMIT_NOFILE)",
                max_fds(),
            ),
        ];
        for (name, help, value) in gauges {
            let Some(value) = value else { continue };
            let gauge = ConstGauge::new(value);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

/// `utime + stime` of `/proc/self/stat`, in seconds.
fn cpu_seconds() -> Option<f64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // count fields from the last `)`. utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// `VmRSS` of `/proc/self/status` (kB there), in bytes.
fn resident_bytes() -> Option<i64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Entries of `/proc/self/fd` (the listing's own descriptor included).
fn open_fds() -> Option<i64> {
    let count = fs::read_dir("/proc/self/fd").ok()?.count();
    i64::try_from(count).ok()
}

/// The soft `Max open files` of `/proc/self/limits`; absent when unlimited.
fn max_fds() -> Option<i64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let file = fs::File::open("/proc/self/stat").expect("open");
        let before = open_fds().expect("fd count");
        drop(file);
        assert!(
            before >= 4,
            "stdin, stdout, stderr and the open file: {before}"
        );
        assert!(resident_bytes().expect("rss") > 1 << 20);
        assert!(max_fds().expect("limit") >= before);
        assert!(cpu_seconds().expect("cpu") >= 0.0);
    }
}
