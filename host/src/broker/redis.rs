//! The Redis broker (fred): fan-out across instances on channels
//! `<prefix>:ch:<channel>`, `<prefix>:user:<user>`, `<prefix>:conn:<node>.<n>`,
//! rpc by a reply-channel scheme (`redis/rpc.rs`, `docs/brokers.md`). With `cluster = true`, channel
//! and user traffic uses sharded pub/sub (SPUBLISH/SSUBSCRIBE).
//!
//! Two connections: one for commands (PUBLISH), one in subscribe mode. Owns
//! both clients and the reader of the subscriber's messages. While a
//! connection is down or unresponsive (a PING on each, [`Health`]), publishes
//! are refused `unavailable` (direct messages reach local sockets only);
//! after a reconnect every wanted subscription is made again. Presence
//! lives in hashes and sorted sets (`redis/presence.rs`); the broker's side
//! of an rpc is `redis/rpc.rs`'s, of history `redis/kept.rs`'s.

mod connect;
mod history;
mod kept;
mod presence;
mod publisher;
mod reader;
mod rpc;
mod subscriptions;

use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{Client, ClientLike, Value};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::envelope::SizeLimit;
use super::health::Health;
use super::inbound::Inbound;
use super::interest::{self, Interest, Topic};
use super::{Broker, BrokerError, Caller, RpcError, Target, envelope, startup};
use crate::config::{BrokerConfig, HistoryConfig};
use crate::history::{HistoryRead, Position};
use crate::metrics::{MessageKind, Metrics, PublishFailure};
use crate::protocol::ChannelName;

use publisher::{Outgoing, Publisher};
use subscriptions::RedisSubscriptions;

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
    publisher: Publisher,
    health: Arc<Health>,
    limit: SizeLimit,
    /// `[broker] timeout_ms`.
    timeout: Duration,
    history: history::RedisHistory,
    presence: Arc<presence::RedisPresence>,
}

impl RedisBroker {
    /// Connects both clients (in the background, retrying forever), starts
    /// the reader, and waits up to `connect_timeout_ms` for the connection;
    /// fails then only when `on_unreachable = "fail"`. `max_bytes` is what
    /// receivers accept (`[server] max_frame_bytes`).
    pub async fn start(
        config: &BrokerConfig,
        node: Arc<str>,
        inbound: Inbound,
        metrics: Arc<Metrics>,
        max_bytes: usize,
    ) -> Result<Self, BrokerError> {
        let commands = connect::client(config, false)?;
        let publisher = Publisher::spawn(commands.clone(), Arc::clone(&metrics), config.timeout());
        let subscriber = connect::client(config, true)?;
        let prefix = config.prefix.clone();
        let pending = Arc::new(rpc::Pending::default());
        let (interest, work) = Interest::new(config.timeout());
        reader::spawn_reader(
            &subscriber,
            &prefix,
            &node,
            inbound.clone(),
            Arc::clone(&pending),
            Arc::clone(&metrics),
        );
        reader::spawn_reconnect_watch(
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
            RedisSubscriptions::new(
                subscriber.clone(),
                prefix.clone(),
                config.cluster,
                config.timeout(),
            ),
            metrics.broker.subscriptions.clone(),
        ));
        let health = {
            let both = [commands.clone(), subscriber.clone()];
            let state = both.clone();
            Health::watch(
                "Redis",
                config.probing(),
                Arc::clone(&metrics),
                move || state.iter().all(ClientLike::is_connected),
                move || {
                    let both = both.clone();
                    async move {
                        for client in &both {
                            client
                                .ping::<Value>(None)
                                .await
                                .map_err(|e| BrokerError::Unavailable(format!("redis: {e}")))?;
                        }
                        Ok(())
                    }
                },
            )
        };
        let (commands_for_presence, node_for_presence) = (commands.clone(), Arc::clone(&node));
        let broker = Self {
            limit: SizeLimit::new(&node, max_bytes),
            health,
            timeout: config.timeout(),
            commands,
            subscriber,
            node,
            prefix,
            sharded: config.cluster,
            interest,
            inbound,
            metrics,
            pending,
            publisher,
            history: history::RedisHistory::new(config.prefix.clone()),
            presence: Arc::new(presence::RedisPresence::new(
                commands_for_presence,
                config.prefix.clone(),
                node_for_presence,
                config.cluster,
                config.timeout(),
            )),
        };
        startup::await_first_connection(config, "Redis", || broker.is_connected()).await?;
        Ok(broker)
    }
}

fn unavailable() -> BrokerError {
    BrokerError::Unavailable("Redis is disconnected or not answering".to_owned())
}

impl Broker for RedisBroker {
    fn publish<'a>(
        &'a self,
        channel: &'a ChannelName,
        data: &'a str,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        async move {
            self.fits(data)?;
            if !self.is_connected() {
                self.metrics
                    .broker
                    .publish_failed(PublishFailure::Disconnected);
                return Err(unavailable());
            }
            let name = subscriptions::channel(&self.prefix, &Topic::Channel(channel.clone()));
            self.publisher
                .publish(Outgoing {
                    channel: name,
                    payload: envelope::encode(&self.node, data),
                    sharded: self.sharded,
                    kind: MessageKind::Channel,
                })
                .await
        }
        .boxed()
    }

    fn publish_kept_batch<'a>(
        &'a self,
        channel: &'a ChannelName,
        data: &'a [String],
        policy: &'a HistoryConfig,
    ) -> BoxFuture<'a, Vec<Result<Position, BrokerError>>> {
        async move {
            let kept = self.keep(channel, data, policy).await;
            crate::history::appender::spread(kept, data.len())
        }
        .boxed()
    }

    fn history<'a>(
        &'a self,
        channel: &'a ChannelName,
        policy: &'a HistoryConfig,
        after: Option<u64>,
        max: usize,
    ) -> BoxFuture<'a, Result<HistoryRead, BrokerError>> {
        self.read_kept(channel, policy, after, max).boxed()
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
            self.fits(data)?;
            if !self.is_connected() {
                self.metrics
                    .broker
                    .publish_failed(PublishFailure::Disconnected);
                return Ok(Some(self.inbound.send_locally(target, data)));
            }
            self.publisher
                .publish(Outgoing {
                    channel: name,
                    payload: envelope::encode(&self.node, data),
                    sharded,
                    kind,
                })
                .await?;
            Ok(None)
        }
        .boxed()
    }

    fn request<'a>(
        &'a self,
        method: &'a ChannelName,
        data: &'a str,
        caller: Caller<'a>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<String, RpcError>> {
        self.call(method, data, caller, timeout).boxed()
    }

    fn presence(&self) -> Arc<dyn crate::presence::PresenceStore> {
        Arc::clone(&self.presence) as Arc<dyn crate::presence::PresenceStore>
    }

    fn is_connected(&self) -> bool {
        self.commands.is_connected()
            && self.subscriber.is_connected()
            && self.health.is_responsive()
    }

    fn fits(&self, data: &str) -> Result<(), BrokerError> {
        self.limit.check(data).inspect_err(|_| {
            self.metrics.broker.publish_failed(PublishFailure::TooLarge);
        })
    }

    fn flush(&self, limit: Duration) -> BoxFuture<'_, ()> {
        async move {
            if let Err(error) = self.publisher.flush(limit).await {
                tracing::warn!(%error, "Redis flush at shutdown did not complete");
            }
        }
        .boxed()
    }

    fn interest(&self) -> Option<&Interest> {
        Some(&self.interest)
    }
}
