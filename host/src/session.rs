//! One client's WebSocket session, from `welcome` to close.
//!
//! A session is one task running two halves side by side: the `reader` parses
//! client frames and acts on them (subscribe, publish, ...), the `writer`
//! drains the session's [`Outbox`] to the socket in batches and sends pings.
//! Replies and pushes share the outbox, so a client sees them in the order
//! they happened. When either half ends, the other is told why and the close
//! code reaches the client (see [`CloseReason`](crate::close::CloseReason)).
//!
//! A session touches the hub and the broker only through their APIs, and
//! cleans up every subscription it made when it ends, however it ends.

mod presence;
mod rate;
mod reader;
mod recover;
mod requests;
mod rpc;
mod socket;
mod subscriptions;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::Instrument;

use crate::connections::{ConnId, Slot, UserId};
use crate::gateway::Gateway;
use crate::hub::Subscriber;
use crate::outbox::Outbox;
use crate::plugin::{Connection, Identity};
use crate::protocol::Frame;

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
}

/// Runs one session on an upgraded socket until it closes. `leftover` holds
/// bytes the HTTP layer read past the handshake; they are the first frames.
pub async fn run(
    socket: TcpStream,
    leftover: Vec<u8>,
    ws_config: WebSocketConfig,
    gateway: Arc<Gateway>,
    accepted: Accepted,
) {
    let outbox = Arc::new(Outbox::new(gateway.config.server.max_queued_bytes));
    let close_grace = gateway.config.server.close_grace();
    let user = accepted.identity.user.as_deref().map(UserId::from);
    let registration = accepted.slot.register(user.clone(), Arc::clone(&outbox));
    let conn = registration.conn().clone();
    if let Some(user) = &user {
        gateway.broker.user_online(user);
    }
    let span = tracing::info_span!(
        "conn",
        id = %conn,
        remote = %accepted.remote,
        user = accepted.identity.user.as_deref().unwrap_or("-"),
    );
    async move {
        gateway.metrics.connections.inc();
        gateway.metrics.connections_opened.inc();
        tracing::debug!("session open");
        outbox.push(Frame::welcome(
            &conn,
            accepted.identity.user.as_deref(),
            &gateway.node,
        ));

        let (read_half, write_half) = socket.into_split();
        let read_side = socket::ReadSide::new(read_half, Arc::clone(&outbox));
        let mut ws = WebSocketStream::from_partially_read(
            read_side,
            leftover,
            Role::Server,
            Some(ws_config),
        )
        .await;
        let mut session = Session::new(
            Arc::clone(&gateway),
            conn,
            accepted.identity,
            Arc::clone(&outbox),
        );
        let reason = {
            let reader = reader::run(&mut ws, &mut session);
            let writer = writer::run(write_half, &outbox, &gateway);
            tokio::pin!(reader, writer);
            tokio::select! {
                reason = &mut reader => {
                    outbox.close(reason);
                    let _ = tokio::time::timeout(close_grace, &mut writer).await;
                    reason
                }
                reason = &mut writer => {
                    // Give the client a moment to echo our close frame.
                    let _ = tokio::time::timeout(close_grace, &mut reader).await;
                    reason
                }
            }
        };
        session.leave_all();
        drop(registration);
        if let Some(user) = &user {
            gateway.broker.user_offline(user);
        }
        gateway.metrics.connections.dec();
        gateway.metrics.disconnected(reason);
        tracing::debug!(
            reason = reason.as_str(),
            code = reason.code(),
            "session closed"
        );
    }
    .instrument(span)
    .await;
}

/// The reader's state: what this connection is subscribed to and its budgets.
struct Session {
    gateway: Arc<Gateway>,
    conn: ConnId,
    /// The connection as plugins see it: its id and identity.
    connection: Connection,
    outbox: Arc<Outbox>,
    subscriptions: Subscriptions,
    requests: TokenBucket,
    publishes: TokenBucket,
    /// The rpcs awaiting an answer, bounded.
    rpcs: rpc::InFlight,
}

impl Session {
    fn new(gateway: Arc<Gateway>, conn: ConnId, identity: Identity, outbox: Arc<Outbox>) -> Self {
        let config = &gateway.config.server;
        let requests = TokenBucket::new(config.request_rate);
        let publishes = TokenBucket::new(config.publish_rate);
        let rpcs = rpc::InFlight::new(config.max_inflight_rpc_per_connection);
        let connection = Connection {
            id: conn.to_string(),
            identity,
        };
        Self {
            gateway,
            conn,
            connection,
            outbox,
            subscriptions: Subscriptions::default(),
            requests,
            publishes,
            rpcs,
        }
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
        // A session future dropped mid-way (runtime shutdown) still leaves the hub clean.
        self.leave_all();
    }
}
