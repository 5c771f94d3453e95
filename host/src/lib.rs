//! ferrygate: a WebSocket gateway that fans messages out across instances
//! through a broker, with business logic in WebAssembly components.
//!
//! # Layout
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | the manifest: parsing, `${ENV}` expansion, validation, errors with line and key |
//! | [`server`] | the listener, HTTP/1.1 per connection, graceful drain |
//! | [`workers`] | one single-threaded runtime per core serving connections |
//! | [`http`] | routes: `/ws` upgrade, `/healthz`, `/readyz`, `/metrics`, `/v1/*` |
//! | [`session`] | one WebSocket client: reader, writer, request handling, limits |
//! | [`protocol`] | the client wire format: requests, frames, channel names, error codes |
//! | [`outbox`] | a connection's bounded outbound queue |
//! | [`hub`] | local fan-out: channel → subscribers |
//! | [`connections`] | live sessions by id and user; admission; drain |
//! | [`broker`] | the bus between instances: `memory`, `nats`, `redis`; interest tracking, envelope |
//! | [`history`] | history and recovery: positions, the in-process store, what a `since` gets |
//! | [`gateway`] | wiring of the above into one shared value |
//! | [`metrics`] | Prometheus counters and gauges |
//! | [`close`] | close reasons and their WebSocket codes |
//! | [`watch`] | reload triggers: manifest and plugin file changes, SIGHUP |
//! | [`logging`] | log lines on stderr, with the manifest's secrets scrubbed |
//!
//! A message travels: socket → [`session`] (parse, rate limit) → [`broker`] →
//! [`hub`] (frame built once) → each subscriber's [`outbox`] → its session's
//! writer → socket. See `docs/architecture.md`.

pub mod authoring;
pub mod broker;
pub mod close;
pub mod config;
pub mod connections;
pub mod gateway;
pub mod history;
pub mod http;
pub mod hub;
pub mod logging;
pub mod metrics;
pub mod outbox;
pub mod plugin;
pub mod presence;
pub mod protocol;
pub mod server;
pub mod session;
pub mod signal;
pub mod watch;
pub mod workers;
