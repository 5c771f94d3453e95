//! End-to-end tests of the gateway: the real server on a port-0 listener (or
//! the real binary), driven over real sockets by stock WebSocket and HTTP clients.

mod support;

mod bad_input;
mod broker_acked;
mod broker_lanes;
mod broker_stall;
mod cli;
mod cluster;
mod cluster_auth;
mod cluster_nats;
mod cluster_nats_failover;
mod cluster_redis;
mod cluster_start;
mod cluster_users;
mod configmap;
mod drain;
mod fail_closed;
mod fail_closed_routes;
mod fanout;
mod history;
mod history_nats;
mod history_pipeline;
mod history_redis;
mod hot;
mod http_api;
mod http_interop;
mod limits;
mod pending;
mod plugin_auth;
mod plugin_author;
mod plugin_check;
mod plugin_docs;
mod plugin_functions;
mod plugin_langs;
mod plugin_limits;
mod plugin_route;
mod presence;
mod reload;
mod reload_stream;
mod rpc;
mod secrets;
mod session;
mod sse;
mod sse_recovery;
mod token_lifetime;
