//! Token lifetime and SSE metrics: refreshes by outcome, subscriptions a
//! refresh removed, and the SSE streams open and opened
//! (`ferrygate_refreshes`, `ferrygate_refresh_unsubscribed`,
//! `ferrygate_sse_streams`, `ferrygate_sse_streams_opened`). SSE streams are
//! also counted in `ferrygate_connections`, like WebSocket sessions.
//!
//! Outcomes come from [`RefreshOutcome`], never from client input.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// How a `refresh` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Accepted: the lifetime and claims were replaced.
    Ok,
    /// The auth plugin refused the token, or it named another user.
    Forbidden,
    /// Over the per-connection refresh rate.
    RateLimited,
    /// The auth plugin failed, or no auth plugin admitted the connection.
    Failed,
}

impl RefreshOutcome {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Forbidden => "forbidden",
            Self::RateLimited => "rate_limited",
            Self::Failed => "failed",
        }
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct SessionMetrics {
    refreshes: Family<Outcome, Counter>,
    /// Subscriptions removed (with an `unsubscribed` push) because the route
    /// plugin no longer allowed them after a refresh.
    pub refresh_unsubscribed: Counter,
    /// Open SSE streams.
    pub sse_streams: Gauge,
    /// SSE streams opened since start.
    pub sse_opened: Counter,
}

impl SessionMetrics {
    /// Registers every series under `registry`.
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "refreshes",
            "Token refreshes, by outcome",
            self.refreshes.clone(),
        );
        registry.register(
            "refresh_unsubscribed",
            "Subscriptions removed because a refreshed identity no longer allows them",
            self.refresh_unsubscribed.clone(),
        );
        registry.register("sse_streams", "Open SSE streams", self.sse_streams.clone());
        registry.register(
            "sse_streams_opened",
            "SSE streams opened",
            self.sse_opened.clone(),
        );
    }

    /// Counts a refresh that ended with `outcome`.
    pub fn refresh(&self, outcome: RefreshOutcome) {
        self.refreshes
            .get_or_create(&Outcome {
                outcome: outcome.as_str(),
            })
            .inc();
    }
}
