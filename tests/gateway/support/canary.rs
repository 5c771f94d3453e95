//! The suite-wide secret check. Every secret the tests configure (the API
//! key, broker passwords, plugin signing keys) contains [`CANARY`], and no
//! log line and no response may. The helpers check it themselves, so every
//! test is covered without asking: `support::http` (every HTTP response),
//! `Client` (every frame), `binary::spawn_and_wait_for_address` (every line
//! a spawned `ferrygate` logs), the log of the in-process gateway
//! ([`check_logs`], installed by `TestGateway::start`), and the output of
//! the `check`/`serve` runs that read it whole ([`assert_clean`]).

use std::io::Write;

/// Part of every secret in the tests; never to be seen outside them.
pub const CANARY: &str = "c4nary-9f2e";

/// Fails the test if `text` (read from `what`) holds the canary.
pub fn assert_clean(text: &str, what: &str) {
    assert!(
        !text.contains(CANARY),
        "a secret leaked into {what}: {text}"
    );
}

/// As [`assert_clean`], for text seen off the test's own thread (a log
/// reader, a tracing writer), where a panic would go unnoticed: a leak
/// aborts the test process, which fails the test.
pub fn abort_if_leaked(text: &str, what: &str) {
    if text.contains(CANARY) {
        let _ = writeln!(std::io::stderr(), "A SECRET LEAKED into {what}: {text}");
        std::process::abort();
    }
}

/// Sends this process's `tracing` output (the in-process gateway's log, at
/// `info` or `RUST_LOG`) through the canary check to the captured test
/// output. Once per process; later calls do nothing.
pub fn check_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(|| CheckedLog)
        .try_init();
}

/// One log event, checked, then printed where the test runner captures it.
struct CheckedLog;

impl Write for CheckedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        abort_if_leaked(&text, "the in-process gateway's log");
        eprint!("{text}");
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
