//! The NATS broker (async-nats): fan-out across instances on subjects
//! `<prefix>.ch.<channel>`, `<prefix>.user.<user>`, `<prefix>.conn.<node>.<n>`,
//! and rpc as NATS request/reply on `<prefix>.rpc.<method>`.
//!
//! Owns the client and the translation between the [`Broker`] trait and NATS.
//! Which subjects are subscribed follows local interest ([`interest`]); what
//! arrives is checked and delivered by [`Inbound`]. While the connection is
//! down or unresponsive ([`Health`], probed by a server round trip,
//! `probe`), publishes are refused `unavailable` (direct messages reach
//! local sockets only), never put into async-nats' reconnect buffer.
//! Presence lives in a JetStream key-value bucket (`nats/presence.rs`);
//! sending and history appends are `nats/publish.rs`'s, the check that the
//! server has JetStream `nats/jetstream.rs`'s. See `docs/architecture.md`,
//! "Broker layer".

mod connect;
mod history;
mod jetstream;
mod presence;
mod probe;
mod publish;
mod subscriptions;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, HeaderMap, RequestErrorKind};
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

use probe::Probe;
use subscriptions::NatsSubscriptions;

/// See the module docs.
#[derive(Debug)]
pub struct NatsBroker {
    client: Client,
    node: Arc<str>,
    prefix: String,
    interest: Arc<Interest>,
    inbound: Inbound,
    metrics: Arc<Metrics>,
    probe: Arc<Probe>,
    health: Arc<Health>,
    limit: SizeLimit,
    /// `[broker] timeout_ms`.
    timeout: Duration,
    presence: Arc<presence::NatsPresence>,
    history: history::NatsHistory,
}

impl NatsBroker {
    /// Connects (in the background, retrying forever) and subscribes to this
    /// node's connection and probe subjects. Waits up to `connect_timeout_ms`
    /// for the first connection; fails then only when `on_unreachable =
    /// "fail"`. `max_bytes` is what receivers accept (`[server] max_frame_bytes`).
    pub async fn start(
        config: &BrokerConfig,
        base_dir: &Path,
        node: Arc<str>,
        inbound: Inbound,
        metrics: Arc<Metrics>,
        max_bytes: usize,
    ) -> Result<Self, BrokerError> {
        let servers = connect::servers(config)?;
        let options = connect::options(config, base_dir, &node, Arc::clone(&metrics)).await?;
        let client = options
            .connect(servers.clone())
            .await
            .map_err(|e| BrokerError::Unavailable(format!("nats: {e}")))?;
        let prefix = config.prefix.clone();
        // Connection-targeted messages: one wildcard per node, so an instance
        // receives only those for its own connections.
        let conns = format!("{prefix}.conn.{node}.*");
        let reader =
            subscriptions::read(&client, &prefix, conns.clone(), &conns, inbound.clone()).await?;
        drop(reader); // Detached: it lives as long as the client.
        let probe = Probe::start(client.clone(), &prefix, &node).await?;
        let (interest, work) = Interest::new(config.timeout());
        let subscriptions = NatsSubscriptions::new(
            client.clone(),
            prefix.clone(),
            inbound.clone(),
            Arc::clone(&probe),
            config.timeout(),
        );
        tokio::spawn(interest::reconcile(
            Arc::clone(&interest),
            work,
            subscriptions,
            metrics.broker.subscriptions.clone(),
        ));
        let probing = config.probing();
        let health = {
            let (state, pinger) = (client.clone(), Arc::downgrade(&probe));
            Health::watch(
                "NATS",
                probing,
                Arc::clone(&metrics),
                move || state.connection_state() == State::Connected,
                move || {
                    let probe = pinger.upgrade();
                    async move {
                        match probe {
                            Some(probe) => probe.round_trip(probing.timeout).await,
                            None => Ok(()),
                        }
                    }
                },
            )
        };
        let presence = Arc::new(presence::NatsPresence::new(
            client.clone(),
            prefix.clone(),
            Arc::clone(&node),
            config.timeout(),
        ));
        let history = history::NatsHistory::new(
            async_nats::jetstream::new(client.clone()),
            &prefix,
            Arc::clone(&node),
            max_bytes,
            config.timeout(),
        );
        let broker = Self {
            history,
            client,
            presence,
            limit: SizeLimit::new(&node, max_bytes),
            node,
            prefix,
            interest,
            inbound,
            metrics,
            probe,
            health,
            timeout: config.timeout(),
        };
        startup::await_first_connection(config, "NATS", || broker.is_connected()).await?;
        broker.check_max_payload(max_bytes);
        Ok(broker)
    }

    /// Watches whether the server has JetStream, which the routes whose
    /// channel patterns are `routes` (history, presence) need: said in the
    /// log, `/metrics` and `/readyz` from the start (see `nats/jetstream.rs`).
    pub fn watch_jetstream(&self, routes: Vec<String>) {
        jetstream::watch(
            self.client.clone(),
            routes,
            Arc::clone(&self.metrics),
            Arc::downgrade(&self.probe),
            self.timeout,
        );
    }

    /// Warns when the server takes less than receivers accept: such messages
    /// are then refused `too_large` by async-nats before they are sent.
    fn check_max_payload(&self, max_bytes: usize) {
        if !self.is_connected() {
            return;
        }
        let max_payload = self.client.server_info().max_payload;
        if max_payload < max_bytes {
            tracing::warn!(
                max_payload,
                max_frame_bytes = max_bytes,
                "the NATS server's max_payload is below [server] max_frame_bytes: larger publishes are refused too_large"
            );
        }
    }

    fn target_subject(&self, target: &Target) -> Option<String> {
        match target {
            Target::Conn(conn) => {
                envelope::is_conn_id(conn).then(|| format!("{}.conn.{conn}", self.prefix))
            }
            Target::User(user) => Some(subscriptions::subject(
                &self.prefix,
                &Topic::User(user.as_str().into()),
            )),
        }
    }
}

fn unavailable() -> BrokerError {
    BrokerError::Unavailable("NATS is disconnected or not answering".to_owned())
}

impl Broker for NatsBroker {
    fn publish<'a>(
        &'a self,
        channel: &'a ChannelName,
        data: &'a str,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        async move {
            self.admit(data)?;
            let subject = subscriptions::subject(&self.prefix, &Topic::Channel(channel.clone()));
            self.publish_envelope(subject, data, MessageKind::Channel)
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
        self.keep_batch(channel, data, policy).boxed()
    }

    fn history<'a>(
        &'a self,
        channel: &'a ChannelName,
        policy: &'a HistoryConfig,
        after: Option<u64>,
        max: usize,
    ) -> BoxFuture<'a, Result<HistoryRead, BrokerError>> {
        async move {
            if !self.is_connected() {
                return Err(unavailable());
            }
            // Each JetStream request of the read is bounded by `timeout`.
            self.history.read(channel, policy, after, max).await
        }
        .boxed()
    }

    fn send<'a>(
        &'a self,
        target: &'a Target,
        data: &'a str,
    ) -> BoxFuture<'a, Result<Option<usize>, BrokerError>> {
        async move {
            let Some(subject) = self.target_subject(target) else {
                return Ok(Some(0));
            };
            self.fits(data)?;
            if !self.is_connected() {
                self.metrics
                    .broker
                    .publish_failed(PublishFailure::Disconnected);
                return Ok(Some(self.inbound.send_locally(target, data)));
            }
            let kind = match target {
                Target::Conn(_) => MessageKind::Conn,
                Target::User(_) => MessageKind::User,
            };
            self.publish_envelope(subject, data, kind).await?;
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
        async move {
            if !self.is_connected() {
                return Err(unavailable().into());
            }
            let mut headers = HeaderMap::new();
            headers.insert("Ferrygate-Node", &*self.node);
            headers.insert("Ferrygate-Conn", caller.conn);
            if let Some(user) = caller.user {
                headers.insert("Ferrygate-User", user);
            }
            let request = async_nats::Request::new()
                .payload(data.to_owned().into())
                .headers(headers)
                .timeout(Some(timeout));
            let subject = format!("{}.rpc.{method}", self.prefix);
            self.metrics.broker.sent(MessageKind::Rpc);
            let reply = self
                .client
                .send_request(subject, request)
                .await
                .map_err(|e| match e.kind() {
                    RequestErrorKind::NoResponders => RpcError::NoResponders(method.clone()),
                    RequestErrorKind::TimedOut => RpcError::Timeout(timeout),
                    RequestErrorKind::Other => BrokerError::Unavailable(e.to_string()).into(),
                })?;
            self.inbound
                .check_reply(&reply.payload)
                .map(str::to_owned)
                .map_err(|why| BrokerError::BadReply(why.as_str()).into())
        }
        .boxed()
    }

    fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected && self.health.is_responsive()
    }

    fn presence(&self) -> Arc<dyn crate::presence::PresenceStore> {
        Arc::clone(&self.presence) as Arc<dyn crate::presence::PresenceStore>
    }

    fn fits(&self, data: &str) -> Result<(), BrokerError> {
        self.limit.check(data).inspect_err(|_| {
            self.metrics.broker.publish_failed(PublishFailure::TooLarge);
        })
    }

    /// One probe round trip: every PUB sent before it has reached the server.
    fn flush(&self, limit: Duration) -> BoxFuture<'_, ()> {
        async move {
            if let Err(error) = self.probe.round_trip(limit).await {
                tracing::warn!(%error, "NATS flush at shutdown did not complete");
            }
        }
        .boxed()
    }

    fn interest(&self) -> Option<&Interest> {
        Some(&self.interest)
    }
}
