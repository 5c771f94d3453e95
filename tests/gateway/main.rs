//! End-to-end tests of the gateway: the real server on a port-0 listener (or
//! the real binary), driven over real sockets by stock WebSocket and HTTP clients.

mod support;

mod bad_input;
mod cli;
mod cluster;
mod cluster_auth;
mod cluster_nats;
mod cluster_redis;
mod cluster_start;
mod cluster_users;
mod drain;
mod fanout;
mod hot;
mod http_api;
mod limits;
mod plugin_auth;
mod plugin_check;
mod plugin_langs;
mod plugin_limits;
mod plugin_route;
mod reload;
mod reload_stream;
mod session;
