//! Command-line interface (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Load and benchmark tool for ferrygate (and for NATS's WebSocket listener as a baseline).
#[derive(Debug, Parser)]
#[command(name = "ferrygate-load", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Hard limit for the whole run, in seconds.
    #[arg(long, global = true, default_value_t = 300)]
    pub max_secs: u64,
    /// Runtime threads: 1 is a current-thread runtime (pin with `taskset -c N`).
    #[arg(long, global = true, default_value_t = 1)]
    pub threads: usize,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open many idle connections and measure the server's memory per connection.
    Conns(ConnsArgs),
    /// One publisher, many subscribers on one channel: step through publish rates.
    Fanout(FanoutArgs),
    /// Short-lived clients, one after another: connect, subscribe, publish,
    /// receive, disconnect; samples the server's memory as it goes (soak).
    Churn(ChurnArgs),
    /// A reconnect storm on channels with history: clients subscribed on one
    /// instance reconnect to another with `since` and must recover exactly.
    Recover(RecoverArgs),
    /// The cost of presence: members (each its own user) join one channel,
    /// presence queries are timed with all of them in, then all leave;
    /// broker operations per join, leave and heartbeat.
    Presence(PresenceArgs),
}

/// Which server protocol to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// ferrygate's JSON protocol on `GET /ws`.
    Ferrygate,
    /// NATS protocol over NATS's WebSocket listener.
    Nats,
}

/// The publisher's transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishVia {
    /// The target's WebSocket protocol.
    Ws,
    /// ferrygate's HTTP API, pipelined on one keep-alive connection.
    Http,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ferrygate => "ferrygate",
            Self::Nats => "nats",
        })
    }
}

/// Options shared by every subcommand.
#[derive(Debug, Args)]
pub struct Common {
    /// Server protocol.
    #[arg(long, value_enum, default_value_t = Target::Ferrygate)]
    pub target: Target,
    /// WebSocket URL [default: ws://127.0.0.1:8080/ws for ferrygate,
    /// ws://127.0.0.1:9222 for nats]. A token can go in the query (`?token=T`).
    #[arg(long)]
    pub url: Option<String>,
    /// Source addresses to bind, round-robin: `127.0.0.1,127.0.0.2` or
    /// `127.0.0.1-127.0.0.8` or `127.0.0.1-8` (each has ~28k ephemeral ports).
    #[arg(long)]
    pub sources: Option<String>,
    /// Server process id, for its memory (`VmRSS`) and CPU (`/proc/PID/stat`).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Connection attempts (TCP + upgrade + handshake) in flight at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// Time limit for one connection's connect and handshake, in seconds.
    #[arg(long, default_value_t = 10)]
    pub connect_timeout_secs: u64,
    /// Give every connection its own user (ferrygate only): an HS256 JWT
    /// signed with this secret in `?token=`, `sub` = `<user-prefix><n>`
    /// (connection n; the publisher is `<user-prefix>publisher`), for a
    /// gateway running the `jwt-auth` plugin with the same `hs256_secret`.
    #[arg(long, env = "FERRYGATE_LOAD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// User id prefix of `--jwt-secret` tokens.
    #[arg(long, default_value = "user-")]
    pub user_prefix: String,
    /// `iss` of `--jwt-secret` tokens.
    #[arg(long)]
    pub jwt_issuer: Option<String>,
    /// `aud` of `--jwt-secret` tokens.
    #[arg(long)]
    pub jwt_audience: Option<String>,
}

impl Common {
    pub fn url(&self) -> String {
        self.url.clone().unwrap_or_else(|| match self.target {
            Target::Ferrygate => "ws://127.0.0.1:8080/ws".into(),
            Target::Nats => "ws://127.0.0.1:9222".into(),
        })
    }

    /// The token signer of `--jwt-secret`, if given.
    pub fn tokens(&self) -> Option<std::sync::Arc<crate::token::Tokens>> {
        self.jwt_secret.as_deref().map(|secret| {
            std::sync::Arc::new(crate::token::Tokens::new(
                secret,
                &self.user_prefix,
                self.jwt_issuer.clone(),
                self.jwt_audience.clone(),
            ))
        })
    }
}

#[derive(Debug, Args)]
pub struct ConnsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections to open.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Seconds to wait after the last connection before reading the server's RSS.
    #[arg(long, default_value_t = 5)]
    pub settle_secs: u64,
    /// Seconds to keep the connections open after measuring.
    #[arg(long, default_value_t = 0)]
    pub hold_secs: u64,
    /// WebSocket read buffer per connection on this side, bytes.
    #[arg(long, default_value_t = 4096)]
    pub read_buffer: usize,
    /// Subscribe each connection to this channel (NATS: this subject) once it
    /// is open, then stay idle; without it the connections stay unsubscribed.
    #[arg(long)]
    pub subscribe: Option<String>,
    /// Write results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,
    /// Subscriber connections.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Spread the subscribers evenly over these WebSocket URLs (several
    /// gateway instances on one broker); the publisher still uses `--url`.
    #[arg(long, value_delimiter = ',')]
    pub subscriber_urls: Vec<String>,
    /// Channel (ferrygate) or subject (nats) to use.
    #[arg(long, default_value = "bench")]
    pub channel: String,
    /// Size of each published payload, bytes.
    #[arg(long, default_value_t = 100)]
    pub payload_bytes: usize,
    /// Target publish rates (messages/s), one step each, in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,2000,5000,10000,20000,50000"
    )]
    pub rates: Vec<u64>,
    /// Seconds per step.
    #[arg(long, default_value_t = 5)]
    pub step_secs: u64,
    /// Seconds to wait after a step for late messages before counting loss.
    #[arg(long, default_value_t = 2.0)]
    pub grace_secs: f64,
    /// Publisher pacing tick, milliseconds.
    #[arg(long, default_value_t = 1)]
    pub tick_ms: u64,
    /// p99 latency limit for a sustained step, milliseconds.
    #[arg(long, default_value_t = 50.0)]
    pub p99_limit_ms: f64,
    /// Keep stepping after a step that is not sustained.
    #[arg(long)]
    pub no_stop: bool,
    /// How the publisher publishes (ferrygate only): `ws` frames or `POST /v1/publish`.
    #[arg(long, value_enum, default_value_t = PublishVia::Ws)]
    pub publish_via: PublishVia,
    /// API key for `--publish-via http`.
    #[arg(long, env = "FERRYGATE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Subscribers send their own keepalive (WebSocket ping / NATS `PING`) this
    /// often, in seconds; 0: never (they only answer the server's pings).
    #[arg(long, default_value_t = 0.0)]
    pub client_ping_secs: f64,
    /// WebSocket read buffer per subscriber, bytes.
    #[arg(long, default_value_t = 32 * 1024)]
    pub read_buffer: usize,
    /// `NAME=PID` (repeatable): a server process whose CPU-seconds per step
    /// count toward the efficiency table (CPU-s per million deliveries).
    #[arg(long = "cpu-pid", value_parser = crate::efficiency::parse_named_pid)]
    pub cpu_pids: Vec<crate::efficiency::NamedPid>,
    /// Write results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ChurnArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connect/subscribe/publish/disconnect cycles in all.
    #[arg(long, default_value_t = 10_000)]
    pub cycles: u64,
    /// Clients cycling at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Cycles use channels `<channel>.0` to `<channel>.<channels - 1>`, in turn.
    #[arg(long, default_value = "soak")]
    pub channel: String,
    /// Distinct channels.
    #[arg(long, default_value_t = 64)]
    pub channels: u64,
    /// Print a sample (cycles, server RSS) every this many cycles.
    #[arg(long, default_value_t = 10_000)]
    pub sample_every: u64,
    /// Write results (every sample) as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    #[command(flatten)]
    pub common: Common,
    /// Instance B, where the clients reconnect and the missed messages are published.
    #[arg(long)]
    pub reconnect_url: String,
    /// Clients in the storm.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Clients use channels `<channel>.0` to `<channel>.<channels - 1>`, in turn
    /// (their route must keep history).
    #[arg(long, default_value = "storm")]
    pub channel: String,
    /// Distinct channels.
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    /// Messages each channel gets while the clients are away.
    #[arg(long, default_value_t = 100)]
    pub missed: u64,
    /// Broker process id, for its CPU during the storm.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PresenceArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections to join, each its own user (needs `--jwt-secret`).
    #[arg(long, default_value_t = 10_000)]
    pub members: usize,
    /// The channel (its route sets `presence = true`, or not for the baseline).
    #[arg(long, default_value = "presence.bench")]
    pub channel: String,
    /// API key, for `GET /v1/presence` and `/metrics`.
    #[arg(long, env = "FERRYGATE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Runs of each first-page query (op and HTTP); a quarter as many runs
    /// (at least one) page through the whole channel.
    #[arg(long, default_value_t = 20)]
    pub queries: usize,
    /// Users per page when paging through the whole channel.
    #[arg(long, default_value_t = 1000)]
    pub page_limit: usize,
    /// Seconds to stay idle with every member in, counting broker operations
    /// per heartbeat (0: skip).
    #[arg(long, default_value_t = 0)]
    pub idle_secs: u64,
    /// Redis server (`host:port`), for `INFO commandstats` around each phase.
    #[arg(long)]
    pub redis: Option<std::net::SocketAddr>,
    /// nats-server's monitoring port (`host:port`, `-m`), for `/varz` and `/jsz`.
    #[arg(long)]
    pub nats_monitor: Option<std::net::SocketAddr>,
    /// Broker process id, for its CPU per join.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}
