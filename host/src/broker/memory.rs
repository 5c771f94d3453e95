//! The in-process broker: a single instance, where publishing is delivering.
//! It refuses what the networked brokers would, by the same
//! [`SizeLimit`], so a payload accepted here is accepted on NATS and Redis too.
//! Channels with history keep it in a [`MemoryHistory`], swept every
//! [`SWEEP_EVERY`] by a task that ends
//! with the broker. Presence lives in a [`MemoryPresence`].

mod presence;

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{self, BoxFuture};

use super::envelope::SizeLimit;
use super::{Broker, BrokerError, Caller, RpcError, Target};
use crate::config::HistoryConfig;
use crate::connections::Connections;
use crate::history::memory::{MemoryHistory, SWEEP_EVERY};
use crate::history::{HistoryRead, Position};
use crate::hub::Hub;
use crate::metrics::{Metrics, PublishFailure};
use crate::presence::PresenceStore;
use crate::protocol::{ChannelName, Frame};

pub use presence::MemoryPresence;

/// Delivers straight into this process's hub and sessions.
#[derive(Debug)]
pub struct MemoryBroker {
    hub: Arc<Hub>,
    connections: Arc<Connections>,
    metrics: Arc<Metrics>,
    limit: SizeLimit,
    history: Arc<MemoryHistory>,
    presence: Arc<MemoryPresence>,
}

impl MemoryBroker {
    /// A broker that delivers into `hub` and `connections`, refusing data
    /// over `limit`. Must be called within a tokio runtime: it spawns the
    /// history sweep.
    pub fn new(
        hub: Arc<Hub>,
        connections: Arc<Connections>,
        metrics: Arc<Metrics>,
        limit: SizeLimit,
    ) -> Self {
        let history = Arc::new(MemoryHistory::new());
        tokio::spawn(sweep(Arc::downgrade(&history), Arc::clone(&metrics)));
        let presence = Arc::new(MemoryPresence::new(Arc::clone(&hub)));
        Self {
            hub,
            connections,
            presence,
            metrics,
            limit,
            history,
        }
    }
}

/// Sweeps `history` until the broker that owns it is gone.
async fn sweep(history: Weak<MemoryHistory>, metrics: Arc<Metrics>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(history) = history.upgrade() else {
            return;
        };
        let (channels, bytes) = history.sweep();
        metrics.history.channels.set(channels as i64);
        metrics.history.bytes.set(bytes as i64);
    }
}

impl Broker for MemoryBroker {
    fn publish<'a>(
        &'a self,
        channel: &'a ChannelName,
        data: &'a str,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        let result = self.fits(data).map(|()| {
            self.hub.deliver(channel, data);
        });
        future::ready(result).boxed()
    }

    fn publish_kept_batch<'a>(
        &'a self,
        channel: &'a ChannelName,
        data: &'a [String],
        policy: &'a HistoryConfig,
    ) -> BoxFuture<'a, Vec<Result<Position, BrokerError>>> {
        let kept = data
            .iter()
            .map(|one| {
                self.limit.check_kept(one)?;
                let kept = self.history.append(channel, one, policy, |at, frame| {
                    self.hub.deliver_at(channel, at, frame);
                });
                kept.map_err(|full| BrokerError::Unavailable(full.to_string()))
            })
            .collect();
        future::ready(kept).boxed()
    }

    fn history<'a>(
        &'a self,
        channel: &'a ChannelName,
        policy: &'a HistoryConfig,
        after: Option<u64>,
        max: usize,
    ) -> BoxFuture<'a, Result<HistoryRead, BrokerError>> {
        future::ready(Ok(self.history.read(channel, policy, after, max))).boxed()
    }

    fn send<'a>(
        &'a self,
        target: &'a Target,
        data: &'a str,
    ) -> BoxFuture<'a, Result<Option<usize>, BrokerError>> {
        if let Err(error) = self.fits(data) {
            return future::ready(Err(error)).boxed();
        }
        let frame = Frame::message(data);
        let push = |outbox: &crate::outbox::Outbox| self.hub.push(outbox, frame.clone());
        let delivered = match target {
            Target::Conn(conn) => usize::from(self.connections.send_to_conn(conn, push)),
            Target::User(user) => self.connections.send_to_user(user, push),
        };
        self.metrics.direct_delivered.inc_by(delivered as u64);
        future::ready(Ok(Some(delivered))).boxed()
    }

    fn request<'a>(
        &'a self,
        method: &'a ChannelName,
        _data: &'a str,
        _caller: Caller<'a>,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<String, RpcError>> {
        // One process has no backend services attached: nobody can answer.
        future::ready(Err(RpcError::NoResponders(method.clone()))).boxed()
    }

    fn is_connected(&self) -> bool {
        true
    }

    fn presence(&self) -> Arc<dyn PresenceStore> {
        Arc::clone(&self.presence) as Arc<dyn PresenceStore>
    }

    fn fits(&self, data: &str) -> Result<(), BrokerError> {
        self.limit.check(data).inspect_err(|_| {
            self.metrics.broker.publish_failed(PublishFailure::TooLarge);
        })
    }
}
