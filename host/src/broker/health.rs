//! Active broker liveness, shared by the networked brokers: a probe (one
//! server round trip, supplied by the broker) every `[broker]
//! liveness_interval_ms`, each allowed `[broker] timeout_ms`. A broker that
//! stays connected but stops answering (a hung server, a network path that
//! silently drops traffic) is thereby reported unresponsive: `/readyz`
//! answers 503 and publishes, sends, rpc and subscribes fail `unavailable`
//! at once instead of waiting on it. The next probe that succeeds clears it.
//!
//! Owns the responsive flag and the probing task; knows no client library
//! and never publishes anything itself.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use super::BrokerError;
use crate::metrics::Metrics;

/// Whether the broker answered its last liveness probe. See the module docs.
#[derive(Debug)]
pub struct Health {
    responsive: AtomicBool,
}

/// When and how long to probe (from `[broker]`).
#[derive(Debug, Clone, Copy)]
pub struct Probing {
    /// Pause between two probes (`liveness_interval_ms`).
    pub interval: Duration,
    /// Longest one probe may take (`timeout_ms`).
    pub timeout: Duration,
}

impl Health {
    /// Starts the probing task for a broker called `name` (for the log).
    /// `probe` makes one round trip to the broker; `connected` says whether
    /// the client library holds a connection (a failed probe while it does
    /// not is a disconnect, counted elsewhere, not a liveness failure). The
    /// task ends once the returned value is dropped.
    pub fn watch<P, F>(
        name: &'static str,
        probing: Probing,
        metrics: Arc<Metrics>,
        connected: impl Fn() -> bool + Send + 'static,
        probe: P,
    ) -> Arc<Self>
    where
        P: Fn() -> F + Send + 'static,
        F: Future<Output = Result<(), BrokerError>> + Send + 'static,
    {
        let health = Arc::new(Self {
            responsive: AtomicBool::new(true),
        });
        let weak = Arc::downgrade(&health);
        tokio::spawn(run(name, weak, probing, metrics, connected, probe));
        health
    }

    /// False from a probe that failed on a connected broker until one succeeds.
    pub fn is_responsive(&self) -> bool {
        self.responsive.load(Ordering::Acquire)
    }
}

async fn run<P, F>(
    name: &'static str,
    health: Weak<Health>,
    probing: Probing,
    metrics: Arc<Metrics>,
    connected: impl Fn() -> bool,
    probe: P,
) where
    P: Fn() -> F,
    F: Future<Output = Result<(), BrokerError>>,
{
    let mut ticks = tokio::time::interval(probing.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if !connected() {
            // Nothing to learn: the library's own state already says so.
            continue;
        }
        let answered = match tokio::time::timeout(probing.timeout, probe()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {:?}", probing.timeout)),
        };
        let Some(health) = health.upgrade() else {
            return;
        };
        match answered {
            Ok(()) => {
                if !health.responsive.swap(true, Ordering::AcqRel) {
                    tracing::info!("{name} answers liveness probes again");
                }
            }
            // Still connected (a drop during the probe is a disconnect, not a hang).
            Err(why) if connected() => {
                metrics.broker.liveness_failures.inc();
                if health.responsive.swap(false, Ordering::AcqRel) {
                    tracing::warn!(%why, "{name} is connected but does not answer: reporting it unavailable");
                }
            }
            Err(_) => {}
        }
    }
}
