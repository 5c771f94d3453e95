//! One client's session, from admission to close, whatever carries it.
//!
//! A session owns what a client has on this instance: its registration in
//! [`Connections`](crate::connections::Connections) (so `max_connections`,
//! direct messages and the drain see it), its [`Outbox`], its subscriptions,
//! its budgets and its token lifetime. Transports are small adapters around
//! it: [`websocket`] reads requests from a socket and writes the outbox to
//! it; the SSE stream (`crate::http::sse`) subscribes once and turns the
//! outbox into events. Replies and pushes share the outbox, so a client sees
//! them in the order they happened.
//!
//! A session touches the hub and the broker only through their APIs, and
//! cleans up every subscription it made when it ends, however it ends.

mod lifetime;
mod pipeline;
mod presence;
mod rate;
mod reader;
mod recover;
mod refresh;
mod requests;
mod rpc;
mod socket;
mod subscriptions;
pub mod websocket;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::close::CloseReason;
use crate::connections::{ConnId, Registration, Slot, UserId};
use crate::gateway::Gateway;
use crate::hub::Subscriber;
use crate::outbox::Next;
use crate::outbox::Outbox;
use crate::plugin::{Connection, Identity};
use crate::protocol::{ChannelName, Frame, RequestId, Since};

pub use lifetime::{Lifetime, now_unix_ms};
pub use pipeline::MAX_INFLIGHT_PUBLISHES;
pub use websocket::run;

use rate::TokenBucket;
use subscriptions::Subscriptions;

/// Everything a session needs from its surroundings.
#[derive(Debug)]
pub struct Accepted {
    /// Admission, reserved before the upgrade.
    pub slot: Slot,
    /// The peer's address.
    pub remote: SocketAddr,
    /// Who the auth plugin says the client is.
    pub identity: Identity,
    /// Until when, and the request to repeat on a `refresh`.
    pub lifetime: Lifetime,
}

/// See the module docs.
pub struct Session {
    gateway: Arc<Gateway>,
    conn: ConnId,
    /// The connection as plugins see it: its id and identity.
    connection: Connection,
    login: Lifetime,
    outbox: Arc<Outbox>,
    subscriptions: Subscriptions,
    requests: TokenBucket,
    publishes: TokenBucket,
    refreshes: TokenBucket,
    /// The rpcs awaiting an answer, bounded.
    rpcs: rpc::InFlight,
    /// The publishes awaiting the history store, bounded.
    pipeline: pipeline::Publishes,
    remote: SocketAddr,
    /// `None` once the session is closed.
    registration: Option<Registration>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("conn", &self.conn)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Registers the admitted client (counted in `/metrics` and in
    /// `max_connections` until [`Session::close`]) with an empty outbox.
    /// Resolves once the broker confirmed the subscription to the user's
    /// subject (at most `[broker] timeout_ms`), so that the transport's
    /// `welcome` follows it: a backend that sends to a user it saw connect
    /// does not race the subscription. Without a confirmation the session
    /// still opens: direct messages are at most once, and the subscription
    /// is retried with the broker.
    pub async fn open(gateway: Arc<Gateway>, accepted: Accepted) -> Self {
        let config = &gateway.config.server;
        let outbox = Arc::new(Outbox::new(config.max_queued_bytes));
        let user = accepted.identity.user.as_deref().map(UserId::from);
        let registration = accepted.slot.register(user.clone(), Arc::clone(&outbox));
        let conn = registration.conn().clone();
        if let Some(user) = &user
            && let Err(error) = gateway.broker.user_online(user).await
        {
            tracing::debug!(%conn, "{error}");
        }
        gateway.metrics.connections.inc();
        gateway.metrics.connections_opened.inc();
        let requests = TokenBucket::new(config.request_rate);
        let publishes = TokenBucket::new(config.publish_rate);
        let rpcs = rpc::InFlight::new(config.max_inflight_rpc_per_connection);
        let connection = Connection {
            id: conn.to_string(),
            identity: accepted.identity,
        };
        tracing::debug!(conn = %conn, remote = %accepted.remote, "session open");
        Self {
            gateway,
            conn,
            connection,
            login: accepted.lifetime,
            outbox,
            subscriptions: Subscriptions::default(),
            requests,
            publishes,
            refreshes: TokenBucket::new(refresh::REFRESH_RATE),
            rpcs,
            pipeline: pipeline::Publishes::default(),
            remote: accepted.remote,
            registration: Some(registration),
        }
    }

    /// The connection id, as sent in `welcome`.
    pub fn conn(&self) -> &ConnId {
        &self.conn
    }

    /// The session's outbound queue, which its transport drains.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// The token lifetime: expiry and the request a refresh repeats.
    pub fn lifetime(&self) -> &Lifetime {
        &self.login
    }

    /// Subscribes to each of `channels` as `subscribe` requests with ids 0,
    /// 1, ... from the client would (the same route decisions, limits and
    /// recovery), for a receive-only transport; returns every frame queued
    /// meanwhile, in order: each request's reply (acks and errors are queued
    /// before the subscribe returns) and the pushes that followed.
    pub async fn subscribe_all(
        &mut self,
        channels: Vec<(ChannelName, Option<Since>)>,
    ) -> Vec<Frame> {
        for (index, (channel, since)) in channels.into_iter().enumerate() {
            self.subscribe(RequestId::number(index), channel, since)
                .await;
        }
        let mut frames = Vec::new();
        while let Some(Next::Frames) =
            futures_util::FutureExt::now_or_never(self.outbox.next(&mut frames, usize::MAX))
        {
        }
        frames
    }

    /// Leaves every channel, deregisters and counts the close; only the first
    /// call acts.
    pub fn close(&mut self, reason: CloseReason) {
        let Some(registration) = self.registration.take() else {
            return;
        };
        self.leave_all();
        drop(registration);
        if let Some(user) = &self.connection.identity.user {
            self.gateway.broker.user_offline(user);
        }
        self.gateway.metrics.connections.dec();
        self.gateway.metrics.disconnected(reason);
        tracing::debug!(
            conn = %self.conn,
            reason = reason.as_str(),
            code = reason.code(),
            "session closed"
        );
    }

    fn subscriber(&self) -> Subscriber {
        Subscriber {
            conn: self.conn.clone(),
            outbox: Arc::clone(&self.outbox),
        }
    }

    /// Queues a reply frame for the client.
    fn reply(&self, frame: Frame) {
        self.gateway.hub.push(&self.outbox, frame);
    }

    fn leave_all(&mut self) {
        let joined = self.subscriptions.clear();
        let user = self.connection.identity.user.as_deref();
        for channel in &joined {
            self.gateway.hub.unsubscribe(channel, &self.conn);
            self.gateway.broker.leave(channel);
            self.gateway.presence.leave(channel, user, &self.conn);
        }
        self.gateway
            .metrics
            .subscriptions
            .dec_by(joined.len() as i64);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A session future dropped mid-way (runtime shutdown) still leaves the
        // hub and the registry clean.
        self.close(CloseReason::ClientClosed);
    }
}
