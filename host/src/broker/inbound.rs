//! Delivery of messages that arrive from the broker to this instance's clients.
//!
//! Every payload is checked here ([`envelope::decode`]) before any client sees
//! it; a malformed one is counted by reason and dropped. Which runtime does
//! it is [`super::lanes`]' choice: with worker runtimes, a channel's messages
//! are always handled on the same worker, never on the accepting thread.
//! Owns no connection to the broker and never publishes.

use std::sync::Arc;

use super::envelope;
use super::lanes::Lanes;
use crate::connections::Connections;
use crate::hub::Hub;
use crate::metrics::{Malformed, MessageKind, Metrics};
use crate::protocol::{ChannelName, Frame};

/// Where a broker message goes, parsed from its subject or channel name.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Subscribers of a channel.
    Channel(ChannelName),
    /// Every local connection of a user.
    User(String),
    /// One local connection.
    Conn(String),
}

impl Route {
    /// Parses the part after `<prefix><sep>`: `ch<sep>C`, `user<sep>U`,
    /// `conn<sep>ID`; `None` for anything else.
    pub fn parse(rest: &str, separator: char) -> Option<Self> {
        let (kind, name) = rest.split_once(separator)?;
        match kind {
            "ch" => ChannelName::new(name).ok().map(Self::Channel),
            "user" => envelope::user_from_token(name).map(Self::User),
            "conn" => envelope::is_conn_id(name).then(|| Self::Conn(name.to_owned())),
            _ => None,
        }
    }

    /// What picks the lane: the channel name, user or connection id.
    pub fn key(&self) -> &str {
        match self {
            Self::Channel(channel) => channel.as_str(),
            Self::User(user) => user.as_str(),
            Self::Conn(conn) => conn.as_str(),
        }
    }
}

/// Hands broker messages to the hub or to connections.
#[derive(Debug, Clone)]
pub struct Inbound {
    hub: Arc<Hub>,
    connections: Arc<Connections>,
    metrics: Arc<Metrics>,
    max_bytes: usize,
    lanes: Lanes,
}

impl Inbound {
    /// Delivers into `hub` and `connections`, refusing payloads over `max_bytes`.
    pub fn new(
        hub: Arc<Hub>,
        connections: Arc<Connections>,
        metrics: Arc<Metrics>,
        max_bytes: usize,
    ) -> Self {
        Self {
            hub,
            connections,
            metrics,
            max_bytes,
            lanes: Lanes::default(),
        }
    }

    /// The same, delivering on `runtimes` (one lane each, see
    /// [`super::lanes`]) instead of on the caller's runtime; empty: inline.
    pub fn on_workers(self, runtimes: &[tokio::runtime::Handle]) -> Self {
        // The lanes' consumers deliver inline: they already run on their lane.
        let lanes = Lanes::on(runtimes, &self);
        Self { lanes, ..self }
    }

    /// Runs a reader `task` for messages routed by `key` (a channel name,
    /// user or connection id) on that key's lane.
    pub fn spawn_on_lane<F>(&self, key: &str, task: F) -> tokio::task::JoinHandle<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.lanes.spawn(key, task)
    }

    /// Delivers one message on its route's lane ([`Inbound::deliver`] runs
    /// there), in the order of the calls for one route; waits while that
    /// lane's queue is full.
    pub async fn dispatch(&self, route: Option<Route>, payload: bytes::Bytes) {
        self.lanes.send(self, route, payload).await;
    }

    /// Delivers one message whose subject or channel was parsed as `route`
    /// (`None`: it could not be).
    pub fn deliver(&self, route: Option<Route>, payload: &[u8]) {
        let broker = &self.metrics.broker;
        let Some(route) = route else {
            broker.malformed(Malformed::BadSubject);
            return;
        };
        let decoded = match envelope::decode(payload, self.max_bytes) {
            Ok(decoded) => decoded,
            Err(why) => {
                broker.malformed(why);
                return;
            }
        };
        match route {
            Route::Channel(channel) => {
                broker.received(MessageKind::Channel);
                if let Some(kind) = decoded.presence {
                    let frame = crate::presence::event_frame(&channel, kind, decoded.data);
                    self.hub.deliver_frame(&channel, &frame);
                    return;
                }
                match decoded.at {
                    None => {
                        self.hub.deliver(&channel, decoded.data);
                    }
                    // Offset 0 is a position marker (a NATS history's), never a message.
                    Some((0, _)) => {}
                    // A batch record's messages go one by one, at consecutive offsets.
                    Some((first, epoch)) => {
                        let epoch: Arc<str> = epoch.into();
                        let all = std::iter::once(decoded.data).chain(decoded.more);
                        for (offset, data) in (first..).zip(all) {
                            let frame = Frame::push_at(&channel, data, offset, &epoch);
                            let at = crate::history::Position {
                                epoch: Arc::clone(&epoch),
                                offset,
                            };
                            self.hub.deliver_at(&channel, &at, &frame);
                        }
                    }
                }
            }
            Route::User(user) => {
                broker.received(MessageKind::User);
                let frame = Frame::message(decoded.data);
                let delivered = self
                    .connections
                    .send_to_user(&user, |outbox| self.hub.push(outbox, frame.clone()));
                self.metrics.direct_delivered.inc_by(delivered as u64);
            }
            Route::Conn(conn) => {
                broker.received(MessageKind::Conn);
                let frame = Frame::message(decoded.data);
                if self
                    .connections
                    .send_to_conn(&conn, |outbox| self.hub.push(outbox, frame))
                {
                    self.metrics.direct_delivered.inc();
                }
            }
        }
    }

    /// Delivers a direct message to local sockets only; returns how many took it.
    pub fn send_locally(&self, target: &super::Target, data: &str) -> usize {
        let frame = Frame::message(data);
        let push = |outbox: &crate::outbox::Outbox| self.hub.push(outbox, frame.clone());
        let delivered = match target {
            super::Target::Conn(conn) => usize::from(self.connections.send_to_conn(conn, push)),
            super::Target::User(user) => self.connections.send_to_user(user, push),
        };
        self.metrics.direct_delivered.inc_by(delivered as u64);
        delivered
    }

    /// Checks an rpc reply the way any broker payload is checked.
    pub fn check_reply<'a>(&self, payload: &'a [u8]) -> Result<&'a str, Malformed> {
        let result = envelope::decode(payload, self.max_bytes).map(|d| d.data);
        match result {
            Ok(_) => self.metrics.broker.received(MessageKind::Rpc),
            Err(why) => self.metrics.broker.malformed(why),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_for_both_separators() {
        let channel = ChannelName::new("chat.lobby").expect("valid");
        assert_eq!(
            Route::parse("ch.chat.lobby", '.'),
            Some(Route::Channel(channel.clone()))
        );
        assert_eq!(
            Route::parse("ch:chat.lobby", ':'),
            Some(Route::Channel(channel))
        );
        assert_eq!(
            Route::parse("user.a%40b", '.'),
            Some(Route::User("a@b".to_owned()))
        );
        assert_eq!(
            Route::parse("conn:abc.1f", ':'),
            Some(Route::Conn("abc.1f".to_owned()))
        );
        assert_eq!(Route::parse("conn.abc-1f", '.'), None);
        assert_eq!(Route::parse("other.x", '.'), None);
        assert_eq!(Route::parse("ch.bad*name", '.'), None);
    }
}
