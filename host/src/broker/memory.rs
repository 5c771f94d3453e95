//! The in-process broker: a single instance, where publishing is delivering.
//! It refuses what the networked brokers would, by the same
//! [`SizeLimit`], so a payload accepted here is accepted on NATS and Redis too.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{self, BoxFuture};

use super::envelope::SizeLimit;
use super::{Broker, BrokerError, Caller, RpcError, Target};
use crate::connections::Connections;
use crate::hub::Hub;
use crate::metrics::{Metrics, PublishFailure};
use crate::protocol::{ChannelName, Frame};

/// Delivers straight into this process's hub and sessions.
#[derive(Debug)]
pub struct MemoryBroker {
    hub: Arc<Hub>,
    connections: Arc<Connections>,
    metrics: Arc<Metrics>,
    limit: SizeLimit,
}

impl MemoryBroker {
    /// A broker that delivers into `hub` and `connections`, refusing data over `limit`.
    pub fn new(
        hub: Arc<Hub>,
        connections: Arc<Connections>,
        metrics: Arc<Metrics>,
        limit: SizeLimit,
    ) -> Self {
        Self {
            hub,
            connections,
            metrics,
            limit,
        }
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

    fn fits(&self, data: &str) -> Result<(), BrokerError> {
        self.limit.check(data).inspect_err(|_| {
            self.metrics.broker.publish_failed(PublishFailure::TooLarge);
        })
    }
}
