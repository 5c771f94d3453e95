//! The shared core of one running gateway: configuration, hub, sessions,
//! broker and metrics, plus the readiness state that drain flips.
//!
//! Built once at start and shared (`Arc<Gateway>`) by the HTTP handlers and
//! every session. It wires the parts together and owns no socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::broker::inbound::Inbound;
use crate::broker::{Broker, BrokerError, MemoryBroker, NatsBroker};
use crate::config::{BrokerKind, Config};
use crate::connections::Connections;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::plugin::{LivePlugins, Outcome, Reloader, StartError};
use crate::presence::Presence;
use crate::workers::Workers;

/// See the module docs.
#[derive(Debug)]
pub struct Gateway {
    /// The manifest this gateway runs with.
    pub config: Config,
    /// This instance's id: in `welcome`, in connection ids, in logs.
    pub node: Arc<str>,
    /// Every metric.
    pub metrics: Arc<Metrics>,
    /// Local channel subscriptions.
    pub hub: Arc<Hub>,
    /// Local sessions.
    pub connections: Arc<Connections>,
    /// The bus every publish goes through.
    pub broker: Arc<dyn Broker>,
    /// Every history append of this instance, queued per channel in order
    /// and batched (`crate::history::appender`).
    pub appender: Arc<crate::history::Appender>,
    /// Who is in which presence channel (this instance's side).
    pub presence: Arc<Presence>,
    /// The plugins in use now.
    pub plugins: LivePlugins,
    /// Rebuilds `plugins` from the manifest file (hot reload).
    pub reloader: Reloader,
    draining: AtomicBool,
}

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A plugin failed to load (a manifest problem: `EX_CONFIG`).
    #[error(transparent)]
    Plugins(#[from] StartError),
    /// The broker could not be used.
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// The parts a broker is built from.
#[derive(Clone)]
struct Parts {
    node: Arc<str>,
    metrics: Arc<Metrics>,
    hub: Arc<Hub>,
    connections: Arc<Connections>,
}

impl Gateway {
    /// Builds a gateway from `config` with a fresh random node id: loads
    /// every plugin the manifest declares and connects to the broker
    /// `[broker] kind` names. Fails when a plugin does not load, or when the
    /// broker is unreachable and the manifest says `on_unreachable = "fail"`.
    pub async fn start(config: Config) -> Result<Arc<Self>, GatewayError> {
        Self::start_from(config, None).await
    }

    /// As [`Gateway::start`], for a `config` read from the file `manifest`,
    /// which reloads read again.
    pub async fn start_from(
        config: Config,
        manifest: Option<std::path::PathBuf>,
    ) -> Result<Arc<Self>, GatewayError> {
        Self::start_on(config, manifest, &Workers::current()).await
    }

    /// As [`Gateway::start_from`], with the broker on `workers`: its client
    /// connections and background tasks run on the first worker, and what
    /// arrives from it is decoded and fanned out on every worker, each
    /// channel always on the same one (`broker::lanes`). Nothing of the
    /// broker then runs on the caller's runtime, which accepts connections
    /// and reloads. With no workers, everything runs on the caller's runtime.
    pub async fn start_on(
        config: Config,
        manifest: Option<std::path::PathBuf>,
        workers: &Workers,
    ) -> Result<Arc<Self>, GatewayError> {
        let parts = Parts::new(&config);
        let plugins = LivePlugins::start(&config, &parts.metrics.plugins).await?;
        let inbound = Inbound::new(
            Arc::clone(&parts.hub),
            Arc::clone(&parts.connections),
            Arc::clone(&parts.metrics),
            config.server.max_frame_bytes,
        );
        // The memory broker delivers on the publisher's own worker already.
        let inbound = match config.broker.kind {
            BrokerKind::Memory => inbound,
            BrokerKind::Nats | BrokerKind::Redis => inbound.on_workers(workers.handles()),
        };
        let (config, broker) = match workers.handles().first() {
            None => {
                let broker = parts.broker(&config, inbound).await;
                (config, broker)
            }
            Some(runtime) => {
                // Every task the broker spawns (client connections, the
                // reconcile task, readers) lands on the runtime it starts on.
                let owned = parts.clone();
                let started = runtime.spawn(async move {
                    let broker = owned.broker(&config, inbound).await;
                    (config, broker)
                });
                started.await.map_err(|e| {
                    BrokerError::Unavailable(format!("the broker did not start: {e}"))
                })?
            }
        };
        let broker = broker?;
        let presence = Arc::new(Presence::new(broker.presence(), Arc::clone(&parts.metrics)));
        let appender =
            crate::history::Appender::new(Arc::clone(&broker), Arc::clone(&parts.metrics));
        let gateway = Arc::new(Self {
            config,
            node: parts.node,
            metrics: parts.metrics,
            hub: parts.hub,
            connections: parts.connections,
            broker,
            appender,
            presence,
            plugins,
            reloader: Reloader::new(manifest),
            draining: AtomicBool::new(false),
        });
        tokio::spawn(crate::presence::tracker::heartbeat(Arc::downgrade(
            &gateway,
        )));
        Ok(gateway)
    }

    /// Reloads the plugins and routes from the manifest (see
    /// [`crate::plugin::reload`]); `trigger` is for the log.
    pub async fn reload(&self, trigger: &str) -> Outcome {
        tracing::info!(trigger, "reloading plugins and routes");
        self.reloader
            .reload(&self.plugins, &self.config, &self.metrics.plugins)
            .await
    }

    /// Swaps the plugin set before the last reload back in.
    pub async fn roll_back(&self) -> Outcome {
        self.reloader
            .roll_back(&self.plugins, &self.metrics.plugins)
            .await
    }

    /// Whether `/readyz` answers 200: not draining and the broker is reachable.
    pub fn is_ready(&self) -> bool {
        !self.is_draining() && self.broker.is_connected()
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Marks the gateway as draining: readiness fails and upgrades are refused.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Release);
    }
}

impl Parts {
    /// Connects to the broker `[broker] kind` names, delivering into `inbound`.
    async fn broker(
        &self,
        config: &Config,
        inbound: Inbound,
    ) -> Result<Arc<dyn Broker>, BrokerError> {
        let node = Arc::clone(&self.node);
        let metrics = Arc::clone(&self.metrics);
        // What receivers accept is also what publishers may send (`SizeLimit`).
        let max_bytes = config.server.max_frame_bytes;
        Ok(match config.broker.kind {
            BrokerKind::Memory => self.memory_broker(max_bytes),
            BrokerKind::Nats => {
                let broker = NatsBroker::start(
                    &config.broker,
                    &config.base_dir,
                    node,
                    inbound,
                    metrics,
                    max_bytes,
                )
                .await?;
                // History and presence live in JetStream on NATS.
                let needs_jetstream = config
                    .routes
                    .iter()
                    .filter(|route| route.history.is_some() || route.presence)
                    .flat_map(|route| route.channels.iter().map(ToString::to_string))
                    .collect();
                broker.watch_jetstream(needs_jetstream);
                Arc::new(broker)
            }
            BrokerKind::Redis => Arc::new(
                crate::broker::RedisBroker::start(
                    &config.broker,
                    node,
                    inbound,
                    metrics,
                    max_bytes,
                )
                .await?,
            ),
        })
    }

    fn memory_broker(&self, max_bytes: usize) -> Arc<dyn Broker> {
        // In process, instances are never apart.
        self.metrics.broker.connected.set(1);
        Arc::new(MemoryBroker::new(
            Arc::clone(&self.hub),
            Arc::clone(&self.connections),
            Arc::clone(&self.metrics),
            crate::broker::envelope::SizeLimit::new(&self.node, max_bytes),
        ))
    }

    fn new(config: &Config) -> Self {
        let node: Arc<str> = new_node_id().into();
        let metrics = Arc::new(Metrics::new());
        let hub = Arc::new(Hub::new(Arc::clone(&metrics)));
        let connections = Arc::new(Connections::new(
            config.server.max_connections,
            Arc::clone(&node),
        ));
        Self {
            node,
            metrics,
            hub,
            connections,
        }
    }
}

/// Ten lowercase base-36 characters from a random 64-bit number: short enough
/// for logs, valid inside a NATS subject token.
fn new_node_id() -> String {
    let mut n: u64 = rand::random();
    let mut id = String::with_capacity(10);
    for _ in 0..10 {
        let digit = (n % 36) as u32;
        id.push(char::from_digit(digit, 36).unwrap_or('0'));
        n /= 36;
    }
    id
}
