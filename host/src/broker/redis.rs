//! The Redis broker (fred): fan-out across instances on channels
//! `<prefix>:ch:<channel>`, `<prefix>:user:<user>`, `<prefix>:conn:<node>.<n>`,
//! rpc by a reply-channel scheme (`redis/rpc.rs`, `docs/brokers.md`). With `cluster = true`, channel
//! and user traffic uses sharded pub/sub (SPUBLISH/SSUBSCRIBE).
//!
//! Two connections: one for commands (PUBLISH), one in subscribe mode. Owns
//! both clients and the reader of the subscriber's messages. While the
//! connection is down, channel publishes reach local subscribers only (and are
//! counted); after a reconnect every wanted subscription is made again.

mod connect;
mod rpc;
mod subscriptions;

use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{Client, ClientLike, EventInterface, PubsubInterface};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::inbound::{Inbound, Route};
use super::interest::{self, Interest, Topic};
use super::{Broker, BrokerError, RpcError, Target, envelope};
use crate::config::{BrokerConfig, OnUnreachable};
use crate::metrics::{MessageKind, Metrics, PublishFailure};
use crate::protocol::ChannelName;

use subscriptions::RedisSubscriptions;

/// Longest a `subscribe` reply waits for the broker to confirm the subscription.
const JOIN_WAIT: Duration = Duration::from_secs(2);

/// See the module docs.
#[derive(Debug)]
pub struct RedisBroker {
    commands: Client,
    subscriber: Client,
    node: Arc<str>,
    prefix: String,
    sharded: bool,
    interest: Arc<Interest>,
    inbound: Inbound,
    metrics: Arc<Metrics>,
    pending: Arc<rpc::Pending>,
}

impl RedisBroker {
    /// Connects both clients (in the background, retrying forever), starts
    /// the reader, and waits up to `connect_timeout_ms` for the connection;
    /// fails then only when `on_unreachable = "fail"`.
    pub async fn start(
        config: &BrokerConfig,
        node: Arc<str>,
        inbound: Inbound,
        metrics: Arc<Metrics>,
    ) -> Result<Self, BrokerError> {
        let commands = connect::client(config)?;
        let subscriber = connect::client(config)?;
        let prefix = config.prefix.clone();
        let pending = Arc::new(rpc::Pending::default());
        let (interest, work) = Interest::new();
        spawn_reader(
            &subscriber,
            &prefix,
            &node,
            inbound.clone(),
            Arc::clone(&pending),
            Arc::clone(&metrics),
        );
        spawn_reconnect_watch(
            &subscriber,
            &prefix,
            &node,
            Arc::clone(&interest),
            Arc::clone(&metrics),
        );
        drop(commands.connect());
        drop(subscriber.connect());
        tokio::spawn(interest::reconcile(
            Arc::clone(&interest),
            work,
            RedisSubscriptions::new(subscriber.clone(), prefix.clone(), config.cluster),
            metrics.broker.subscriptions.clone(),
        ));
        let broker = Self {
            commands,
            subscriber,
            node,
            prefix,
            sharded: config.cluster,
            interest,
            inbound,
            metrics,
            pending,
        };
        broker.await_first_connection(config).await?;
        Ok(broker)
    }

    async fn await_first_connection(&self, config: &BrokerConfig) -> Result<(), BrokerError> {
        let deadline = tokio::time::Instant::now() + config.connect_timeout();
        while !self.is_connected() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if self.is_connected() {
            return Ok(());
        }
        let urls = config.urls_or_default().join(", ");
        match config.on_unreachable {
            OnUnreachable::Fail => Err(BrokerError::Unavailable(format!(
                "cannot reach Redis at {urls} within {:?} (set [broker] on_unreachable = \"degraded\" to start anyway)",
                config.connect_timeout()
            ))),
            OnUnreachable::Degraded => {
                tracing::warn!(%urls, "Redis unreachable: serving local clients only, retrying in the background");
                Ok(())
            }
        }
    }

    /// PUBLISH (or SPUBLISH when `sharded`) of `payload`; how many subscribers took it.
    async fn publish_raw(
        &self,
        channel: String,
        payload: String,
        sharded: bool,
    ) -> Result<i64, BrokerError> {
        let result = if sharded {
            self.commands.spublish::<i64, _, _>(channel, payload).await
        } else {
            self.commands.publish::<i64, _, _>(channel, payload).await
        };
        result.map_err(|e| {
            self.metrics.broker.publish_failed(PublishFailure::Error);
            BrokerError::Unavailable(format!("redis: {e}"))
        })
    }
}

/// Delivers what the subscriber connection receives.
fn spawn_reader(
    subscriber: &Client,
    prefix: &str,
    node: &str,
    inbound: Inbound,
    pending: Arc<rpc::Pending>,
    metrics: Arc<Metrics>,
) {
    let mut messages = subscriber.message_rx();
    let strip = format!("{prefix}:");
    let replies = format!("{prefix}:reply:{node}:");
    tokio::spawn(async move {
        loop {
            let message = match messages.recv().await {
                Ok(message) => message,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(lost)) => {
                    tracing::warn!(lost, "redis reader fell behind; messages lost");
                    metrics.frames_dropped.inc_by(lost);
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let Some(payload) = message.value.as_bytes().map(bytes::Bytes::copy_from_slice) else {
                metrics.broker.malformed(crate::metrics::Malformed::NotJson);
                continue;
            };
            let name: &str = &message.channel;
            if let Some(suffix) = name.strip_prefix(replies.as_str()) {
                pending.answer(suffix, payload);
                continue;
            }
            let route = name
                .strip_prefix(strip.as_str())
                .and_then(|rest| Route::parse(rest, ':'));
            inbound.deliver(route, &payload);
        }
    });
}

/// Keeps the connected gauge and reconnect count, and after each (re)connect
/// re-makes this node's pattern subscriptions and asks for every wanted one
/// again. fred announces reconnects, but a flap can also be seen only as a
/// state change, so both trigger the (idempotent) resubscribe.
fn spawn_reconnect_watch(
    subscriber: &Client,
    prefix: &str,
    node: &str,
    interest: Arc<Interest>,
    metrics: Arc<Metrics>,
) {
    let patterns = vec![
        format!("{prefix}:conn:{node}.*"),
        format!("{prefix}:reply:{node}:*"),
    ];
    let client = subscriber.clone();
    let mut reconnects = subscriber.reconnect_rx();
    tokio::spawn(async move {
        let mut was_connected = false;
        let mut ever_connected = false;
        loop {
            let announced = tokio::select! {
                event = reconnects.recv() => event.is_ok(),
                () = tokio::time::sleep(Duration::from_millis(100)) => false,
            };
            let connected = client.is_connected();
            metrics.broker.connected.set(i64::from(connected));
            if connected && (announced || !was_connected) {
                if ever_connected && !was_connected {
                    metrics.broker.reconnects.inc();
                }
                ever_connected = true;
                if let Err(e) = client.psubscribe(patterns.clone()).await {
                    tracing::warn!(error = %e, "redis psubscribe failed");
                }
                interest.resubscribe();
                tracing::info!("redis connected");
            } else if !connected && was_connected {
                tracing::warn!("redis connection lost; reconnecting");
            }
            was_connected = connected;
        }
    });
}

impl Broker for RedisBroker {
    fn publish<'a>(
        &'a self,
        channel: &'a ChannelName,
        data: &'a str,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        async move {
            if !self.is_connected() {
                self.metrics
                    .broker
                    .publish_failed(PublishFailure::Disconnected);
                self.inbound.deliver_locally(channel, data);
                return Ok(());
            }
            let name = subscriptions::channel(&self.prefix, &Topic::Channel(channel.clone()));
            self.publish_raw(name, envelope::encode(&self.node, data), self.sharded)
                .await?;
            self.metrics.broker.sent(MessageKind::Channel);
            Ok(())
        }
        .boxed()
    }

    fn send<'a>(
        &'a self,
        target: &'a Target,
        data: &'a str,
    ) -> BoxFuture<'a, Result<Option<usize>, BrokerError>> {
        async move {
            let (name, sharded, kind) = match target {
                Target::Conn(conn) if envelope::is_conn_id(conn) => (
                    format!("{}:conn:{conn}", self.prefix),
                    false,
                    MessageKind::Conn,
                ),
                Target::Conn(_) => return Ok(Some(0)),
                Target::User(user) => (
                    subscriptions::channel(&self.prefix, &Topic::User(user.as_str().into())),
                    self.sharded,
                    MessageKind::User,
                ),
            };
            if !self.is_connected() {
                self.metrics
                    .broker
                    .publish_failed(PublishFailure::Disconnected);
                return Ok(Some(self.inbound.send_locally(target, data)));
            }
            self.publish_raw(name, envelope::encode(&self.node, data), sharded)
                .await?;
            self.metrics.broker.sent(kind);
            Ok(None)
        }
        .boxed()
    }

    fn request<'a>(
        &'a self,
        method: &'a ChannelName,
        data: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<String, RpcError>> {
        async move {
            if !self.is_connected() {
                return Err(BrokerError::Unavailable("Redis is not connected".to_owned()).into());
            }
            let ticket = self.pending.open();
            let reply_to = format!("{}:reply:{}:{}", self.prefix, self.node, ticket.id);
            let channel = format!("{}:rpc:{method}", self.prefix);
            self.metrics.broker.sent(MessageKind::Rpc);
            let takers = self
                .publish_raw(channel, rpc::request(&self.node, &reply_to, data), false)
                .await?;
            if takers == 0 {
                return Err(RpcError::NoResponders(method.clone()));
            }
            let mut ticket = ticket;
            match tokio::time::timeout(timeout, &mut ticket.reply).await {
                Ok(Ok(payload)) => self
                    .inbound
                    .check_reply(&payload)
                    .map(str::to_owned)
                    .map_err(|why| BrokerError::BadReply(why.as_str()).into()),
                Ok(Err(_)) | Err(_) => Err(RpcError::Timeout(timeout)),
            }
        }
        .boxed()
    }

    fn is_connected(&self) -> bool {
        self.commands.is_connected() && self.subscriber.is_connected()
    }

    fn join<'a>(&'a self, channel: &'a ChannelName) -> BoxFuture<'a, ()> {
        async move {
            let topic = Topic::Channel(channel.clone());
            self.interest.acquire(topic.clone());
            self.interest
                .wait_active(&topic, JOIN_WAIT, || self.is_connected())
                .await;
        }
        .boxed()
    }

    fn leave(&self, channel: &ChannelName) {
        self.interest.release(&Topic::Channel(channel.clone()));
    }

    fn user_online(&self, user: &str) {
        self.interest.acquire(Topic::User(user.into()));
    }

    fn user_offline(&self, user: &str) {
        self.interest.release(&Topic::User(user.into()));
    }
}
