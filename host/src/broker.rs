//! The message bus between gateway instances: the [`Broker`] trait.
//!
//! Every publish, whatever its source (a client, `/v1/publish`, later a backend
//! on the broker itself), goes *through* the broker and comes back to each
//! instance's [`Hub`](crate::hub::Hub) from it. The publishing instance does not
//! deliver to its own clients on the side, so there is one path, one order per
//! channel, and no double delivery. Implementations: [`memory`] (one instance,
//! in process), [`nats`] and [`redis`]; the shared parts of the last two are
//! [`interest`] (which subscriptions an instance wants), [`envelope`] (what
//! travels), [`inbound`] (delivery of what arrives) and [`lanes`] (which
//! worker delivers it).

pub mod envelope;
pub mod health;
pub mod inbound;
pub mod interest;
pub mod lanes;
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
use crate::protocol::{ChannelName, ErrorCode};
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

/// Who makes an rpc, told to the backend: NATS headers `Ferrygate-User`
/// (absent when anonymous) and `Ferrygate-Conn`, Redis envelope keys `user`
/// and `conn` (see `docs/brokers.md`, "rpc"). The node id is the broker's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller<'a> {
    /// The user id the auth plugin gave the connection; `None` when anonymous.
    /// The auth hook admits no whitespace or control characters in it, so it
    /// is a safe header value.
    pub user: Option<&'a str>,
    /// The connection id, as sent in `welcome` (`NODE.N`).
    pub conn: &'a str,
}

/// Why the broker could not take a message.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The broker connection is down, or the broker did not answer in time
    /// (`[broker] timeout_ms`); nothing was acknowledged.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The message would be larger than what receivers accept
    /// ([`envelope::SizeLimit`]); nothing was sent.
    #[error("message too large: {size} bytes of data, at most {limit} fit in a broker message")]
    TooLarge {
        /// Bytes of the JSON text refused.
        size: usize,
        /// The largest JSON text that fits, in bytes.
        limit: usize,
    },
    /// An answer came back that no client may be sent (not JSON, oversize).
    #[error("the service answered with a malformed reply ({0})")]
    BadReply(&'static str),
}

impl BrokerError {
    /// What a client is told: `too_large` for [`BrokerError::TooLarge`],
    /// else `unavailable` (HTTP: 413 and 503).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooLarge { .. } => ErrorCode::TooLarge,
            Self::Unavailable(_) | Self::BadReply(_) => ErrorCode::Unavailable,
        }
    }
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
    /// Delivers `data` (JSON text) to every subscriber of `channel` on every
    /// instance. Fails, sending nothing, with [`BrokerError::TooLarge`] for
    /// data a receiver would drop, and [`BrokerError::Unavailable`] while the
    /// broker is disconnected or unresponsive, or when it does not take the
    /// message within `[broker] timeout_ms`.
    fn publish<'a>(
        &'a self,
        channel: &'a ChannelName,
        data: &'a str,
    ) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Keeps `data` (JSON text) in `channel`'s history under `policy`, then
    /// delivers it as [`Broker::publish`] does, its pushes carrying the
    /// assigned offset and the epoch. Resolves once the store holds it; a
    /// store that cannot take it is [`BrokerError::Unavailable`], never a
    /// message acknowledged and lost. A batch of one through
    /// [`Broker::publish_kept_batch`], with the same outcome and errors.
    fn publish_kept<'a>(
        &'a self,
        channel: &'a ChannelName,
        data: &'a str,
        policy: &'a HistoryConfig,
    ) -> BoxFuture<'a, Result<Position, BrokerError>> {
        async move {
            let one = [data.to_owned()];
            let mut kept = self.publish_kept_batch(channel, &one, policy).await;
            kept.pop().unwrap_or_else(|| {
                Err(BrokerError::Unavailable(
                    "the broker answered no outcome for the message".to_owned(),
                ))
            })
        }
        .boxed()
    }

    /// Keeps each of `data` (JSON texts, in order) as `channel`'s next
    /// messages, with consecutive offsets, and delivers them as
    /// [`Broker::publish_kept`] says for one; resolves with each message's
    /// outcome, in order (as many as `data`). A broker that stores them in
    /// one step fails them all together (none kept, none delivered). The
    /// default: this broker keeps no history, every message is refused
    /// [`BrokerError::Unavailable`].
    fn publish_kept_batch<'a>(
        &'a self,
        channel: &'a ChannelName,
        data: &'a [String],
        policy: &'a HistoryConfig,
    ) -> BoxFuture<'a, Vec<Result<Position, BrokerError>>> {
        let _ = (channel, policy);
        let refused = data
            .iter()
            .map(|_| {
                Err(BrokerError::Unavailable(
                    "this broker keeps no history".to_owned(),
                ))
            })
            .collect();
        futures_util::future::ready(refused).boxed()
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

    /// Asks the service behind `method` for `caller` and waits up to
    /// `timeout` for its answer (JSON text).
    fn request<'a>(
        &'a self,
        method: &'a ChannelName,
        data: &'a str,
        caller: Caller<'a>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<String, RpcError>>;

    /// This broker's presence store (see [`crate::presence`]).
    fn presence(&self) -> std::sync::Arc<dyn crate::presence::PresenceStore>;

    /// Whether messages can currently cross instances (`/readyz` reports it).
    fn is_connected(&self) -> bool;

    /// Whether `data` (JSON text) is small enough to be published or sent:
    /// [`BrokerError::TooLarge`] when a receiver would drop it. Lets a caller
    /// that publishes one payload to several channels refuse it before the first.
    fn fits(&self, data: &str) -> Result<(), BrokerError>;

    /// Waits, at most `limit`, until what was acknowledged so far has reached
    /// the broker (shutdown calls it after the drain). No-op by default.
    fn flush(&self, limit: Duration) -> BoxFuture<'_, ()> {
        let _ = limit;
        futures_util::future::ready(()).boxed()
    }

    /// One more local subscriber of `channel`. Resolves `Ok` once messages of
    /// the channel published from now on will reach this instance (the broker
    /// confirmed the subscription); [`BrokerError::Unavailable`] when the
    /// broker is away or did not confirm within `[broker] timeout_ms`. The
    /// interest is held either way: the caller [`leave`](Self::leave)s on error.
    fn join<'a>(&'a self, channel: &'a ChannelName) -> BoxFuture<'a, Result<(), BrokerError>> {
        async move {
            let Some(interest) = self.interest() else {
                return Ok(());
            };
            let topic = Topic::Channel(channel.clone());
            interest.acquire(topic.clone());
            match interest.wait_active(&topic, || self.is_connected()).await {
                Ok(()) => Ok(()),
                Err(why) => Err(BrokerError::Unavailable(format!(
                    "the subscription to {channel} was not confirmed: {why}"
                ))),
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

    /// One more local connection of `user`. Resolves `Ok` once messages to
    /// the user sent from now on will reach this instance (the broker
    /// confirmed the user's subject), so that the session can send its
    /// `welcome` after it: a backend that sends to a user it saw connect
    /// does not race the subscription. [`BrokerError::Unavailable`] when the
    /// broker is away or did not confirm within `[broker] timeout_ms`; the
    /// interest is held either way (the subscription is retried with the
    /// broker), and the caller calls [`user_offline`](Self::user_offline)
    /// when the connection ends.
    fn user_online<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        async move {
            let Some(interest) = self.interest() else {
                return Ok(());
            };
            let topic = Topic::User(user.into());
            interest.acquire(topic.clone());
            interest
                .wait_active(&topic, || self.is_connected())
                .await
                .map_err(|why| {
                    BrokerError::Unavailable(format!(
                        "the subscription to the user's messages was not confirmed: {why}"
                    ))
                })
        }
        .boxed()
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
