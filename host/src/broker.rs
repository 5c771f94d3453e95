//! The message bus between gateway instances: the [`Broker`] trait.
//!
//! Every publish, whatever its source (a client, `/v1/publish`, later a backend
//! on the broker itself), goes *through* the broker and comes back to each
//! instance's [`Hub`](crate::hub::Hub) from it. The publishing instance does not
//! deliver to its own clients on the side, so there is one path, one order per
//! channel, and no double delivery. Implementations: [`memory`] (one instance,
//! in process), [`nats`] and [`redis`]; the shared parts of the last two are
//! [`interest`] (which subscriptions an instance wants), [`envelope`] (what
//! travels) and [`inbound`] (delivery of what arrives).

pub mod envelope;
pub mod inbound;
pub mod interest;
pub mod memory;
pub mod nats;
pub mod redis;
mod startup;

use std::fmt;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use crate::config::HistoryConfig;
use crate::history::{HistoryRead, Position};
use crate::protocol::ChannelName;
use interest::{Interest, Topic};

pub use memory::MemoryBroker;
pub use nats::NatsBroker;
pub use redis::RedisBroker;

/// Who a direct message is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One connection, by id.
    Conn(String),
    /// Every connection of one user.
    User(String),
}

/// Why the broker could not take a message.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The broker connection is down; nothing was sent.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// An answer came back that no client may be sent (not JSON, oversize).
    #[error("the service answered with a malformed reply ({0})")]
    BadReply(&'static str),
}

/// Why an rpc got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Nobody serves this method.
    #[error("no service answers `{0}`")]
    NoResponders(ChannelName),
    /// The service did not answer within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The broker is down.
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// A message bus. Methods return boxed futures so that the gateway holds one
/// `Arc<dyn Broker>` chosen at start from `[broker] kind`.
pub trait Broker: Send + Sync + fmt::Debug {
    /// Delivers `data` (JSON text) to every subscriber of `channel` on every instance.
    fn publish<'a>(
        &'a self,
        channel: &'a ChannelName,
        data: &'a str,
    ) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Keeps `data` (JSON text) in `channel`'s history under `policy`, then
    /// delivers it as [`Broker::publish`] does, its pushes carrying the
    /// assigned offset and the epoch. Resolves once the store holds it; a
    /// store that cannot take it is [`BrokerError::Unavailable`], never a
    /// message acknowledged and lost. The default: this broker keeps no history.
    fn publish_kept<'a>(
        &'a self,
        channel: &'a ChannelName,
        data: &'a str,
        policy: &'a HistoryConfig,
    ) -> BoxFuture<'a, Result<Position, BrokerError>> {
        let _ = (channel, data, policy);
        futures_util::future::ready(Err(BrokerError::Unavailable(
            "this broker keeps no history".to_owned(),
        )))
        .boxed()
    }

    /// One consistent read of `channel`'s history: its position and, with
    /// `after`, up to `max` kept messages after that offset. The default:
    /// this broker keeps no history.
    fn history<'a>(
        &'a self,
        channel: &'a ChannelName,
        policy: &'a HistoryConfig,
        after: Option<u64>,
        max: usize,
    ) -> BoxFuture<'a, Result<HistoryRead, BrokerError>> {
        let _ = (channel, policy, after, max);
        futures_util::future::ready(Err(BrokerError::Unavailable(
            "this broker keeps no history".to_owned(),
        )))
        .boxed()
    }

    /// Delivers `data` (JSON text) to the target's sockets wherever they are
    /// connected; returns how many sockets took it when that is known.
    fn send<'a>(
        &'a self,
        target: &'a Target,
        data: &'a str,
    ) -> BoxFuture<'a, Result<Option<usize>, BrokerError>>;

    /// Asks the service behind `method` and waits up to `timeout` for its answer (JSON text).
    fn request<'a>(
        &'a self,
        method: &'a ChannelName,
        data: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<String, RpcError>>;

    /// Whether messages can currently cross instances (`/readyz` reports it).
    fn is_connected(&self) -> bool;

    /// One more local subscriber of `channel`. Resolves once messages of the
    /// channel published from now on will reach this instance, or, while the
    /// broker is away, at once (the subscription follows on reconnect).
    fn join<'a>(&'a self, channel: &'a ChannelName) -> BoxFuture<'a, ()> {
        async move {
            if let Some(interest) = self.interest() {
                let topic = Topic::Channel(channel.clone());
                interest.acquire(topic.clone());
                interest
                    .wait_active(&topic, JOIN_WAIT, || self.is_connected())
                    .await;
            }
        }
        .boxed()
    }

    /// One local subscriber of `channel` fewer.
    fn leave(&self, channel: &ChannelName) {
        if let Some(interest) = self.interest() {
            interest.release(&Topic::Channel(channel.clone()));
        }
    }

    /// One more local connection of `user`.
    fn user_online(&self, user: &str) {
        if let Some(interest) = self.interest() {
            interest.acquire(Topic::User(user.into()));
        }
    }

    /// One local connection of `user` fewer.
    fn user_offline(&self, user: &str) {
        if let Some(interest) = self.interest() {
            interest.release(&Topic::User(user.into()));
        }
    }

    /// What this broker subscribes to for the local clients; `None` (the
    /// default) for a broker that needs no subscriptions, such as `memory`.
    fn interest(&self) -> Option<&Interest> {
        None
    }
}

/// Longest a `subscribe` reply waits for the broker to confirm the subscription.
const JOIN_WAIT: Duration = Duration::from_secs(2);
