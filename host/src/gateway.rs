//! The shared core of one running gateway: configuration, hub, sessions,
//! broker and metrics, plus the readiness state that drain flips.
//!
//! Built once at start and shared (`Arc<Gateway>`) by the HTTP handlers and
//! every session. It wires the parts together and owns no socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::broker::{Broker, MemoryBroker};
use crate::config::{BrokerKind, Config};
use crate::connections::Connections;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::plugin::{LivePlugins, StartError};

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
    /// The plugins in use now.
    pub plugins: LivePlugins,
    draining: AtomicBool,
}

impl Gateway {
    /// Builds a gateway from `config` with a fresh random node id, loading
    /// every plugin the manifest declares.
    pub async fn start(config: Config) -> Result<Arc<Self>, StartError> {
        let metrics = Arc::new(Metrics::new());
        let plugins = LivePlugins::start(&config, &metrics.plugins).await?;
        Ok(Self::with_plugins(config, metrics, plugins))
    }

    fn with_plugins(config: Config, metrics: Arc<Metrics>, plugins: LivePlugins) -> Arc<Self> {
        let node: Arc<str> = new_node_id().into();
        let hub = Arc::new(Hub::new(Arc::clone(&metrics)));
        let connections = Arc::new(Connections::new(
            config.server.max_connections,
            Arc::clone(&node),
        ));
        let broker: Arc<dyn Broker> = match config.broker.kind {
            BrokerKind::Memory => Arc::new(MemoryBroker::new(
                Arc::clone(&hub),
                Arc::clone(&connections),
                Arc::clone(&metrics),
            )),
        };
        Arc::new(Self {
            config,
            node,
            metrics,
            hub,
            connections,
            broker,
            plugins,
            draining: AtomicBool::new(false),
        })
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
