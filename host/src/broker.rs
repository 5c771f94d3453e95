//! The message bus between gateway instances: the [`Broker`] trait.
//!
//! Every publish, whatever its source (a client, `/v1/publish`, later a backend
//! on the broker itself), goes *through* the broker and comes back to each
//! instance's [`Hub`](crate::hub::Hub) from it. The publishing instance does not
//! deliver to its own clients on the side, so there is one path, one order per
//! channel, and no double delivery. Implementations: [`memory`] (one instance,
//! in process) today; NATS and Redis behind the same trait.

pub mod memory;

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::protocol::ChannelName;

pub use memory::MemoryBroker;

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
}
