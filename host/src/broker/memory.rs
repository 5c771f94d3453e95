//! The in-process broker: a single instance, where publishing is delivering.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{self, BoxFuture};

use super::{Broker, BrokerError, Caller, RpcError, Target};
use crate::connections::Connections;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::protocol::{ChannelName, Frame};

/// Delivers straight into this process's hub and sessions.
#[derive(Debug)]
pub struct MemoryBroker {
    hub: Arc<Hub>,
    connections: Arc<Connections>,
    metrics: Arc<Metrics>,
}

impl MemoryBroker {
    /// A broker that delivers into `hub` and `connections`.
    pub fn new(hub: Arc<Hub>, connections: Arc<Connections>, metrics: Arc<Metrics>) -> Self {
        Self {
            hub,
            connections,
            metrics,
        }
    }
}

impl Broker for MemoryBroker {
    fn publish<'a>(
        &'a self,
        channel: &'a ChannelName,
        data: &'a str,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.hub.deliver(channel, data);
        future::ready(Ok(())).boxed()
    }

    fn send<'a>(
        &'a self,
        target: &'a Target,
        data: &'a str,
    ) -> BoxFuture<'a, Result<Option<usize>, BrokerError>> {
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
}
