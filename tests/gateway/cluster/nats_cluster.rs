//! A real three-node NATS cluster on loopback: `nats-server` processes joined
//! by `--routes`, each with a monitoring port, so a test can wait for the
//! routes (`/routez`), find the node a gateway is connected to (`/connz`, by
//! the connection name `ferrygate-<node id>`) and kill that node.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{BrokerServer, Kind, free_port};
use crate::drain::TempDir;
use crate::support::{PATIENCE, http};

/// One `nats-server` of the cluster.
struct Node {
    port: u16,
    monitor_port: u16,
    child: Option<Child>,
}

/// See the module docs. Every node is killed when this drops.
pub struct NatsCluster {
    nodes: Vec<Node>,
    _dir: TempDir,
}

impl NatsCluster {
    /// Starts `n` nodes, each routed to every other, and waits until every
    /// node has its `n - 1` routes.
    pub async fn start(n: usize) -> Self {
        let dir = TempDir::new("nats-cluster");
        let cluster_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for (i, cluster_port) in cluster_ports.iter().enumerate() {
            let (port, monitor_port) = (free_port(), free_port());
            let routes: Vec<String> = cluster_ports
                .iter()
                .filter(|p| *p != cluster_port)
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect();
            let child = Command::new("nats-server")
                .args(["-a", "127.0.0.1", "-p", &port.to_string()])
                .args(["-m", &monitor_port.to_string()])
                .args(["--server_name", &format!("node{i}")])
                .args(["--cluster_name", "ferrygate-test"])
                .args(["--cluster", &format!("nats://127.0.0.1:{cluster_port}")])
                .args(["--routes", &routes.join(",")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nats-server (install it, or run `cargo xtask test`)");
            nodes.push(Node {
                port,
                monitor_port,
                child: Some(child),
            });
        }
        let cluster = Self { nodes, _dir: dir };
        for node in &cluster.nodes {
            let deadline = Instant::now() + PATIENCE;
            for port in [node.port, node.monitor_port] {
                while TcpStream::connect(("127.0.0.1", port)).is_err() {
                    assert!(Instant::now() < deadline, "port {port} never listened");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        for i in 0..n {
            let deadline = Instant::now() + PATIENCE;
            loop {
                let routes = cluster.monitor(i, "/routez").await;
                if routes["num_routes"].as_u64() == Some(n as u64 - 1) {
                    break;
                }
                assert!(Instant::now() < deadline, "node{i}: routes {routes}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        cluster
    }

    /// The client URL of node `i`.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].port)
    }

    /// A handle on node `i` for the backend helpers ([`Backend`](super::backend::Backend));
    /// dropping it leaves the node running.
    pub fn node(&self, i: usize) -> BrokerServer {
        BrokerServer {
            kind: Kind::Nats,
            port: self.nodes[i].port,
            args: Vec::new(),
            scheme: "nats",
            child: None,
            dir: TempDir::new("nats-node"),
        }
    }

    /// Every node's URL as a TOML array, starting with node `first`.
    pub fn urls_from(&self, first: usize) -> String {
        let urls: Vec<String> = (0..self.nodes.len())
            .map(|k| format!("\"{}\"", self.url((first + k) % self.nodes.len())))
            .collect();
        format!("[{}]", urls.join(", "))
    }

    /// The live node whose clients include the connection named `name`.
    pub async fn node_of(&self, name: &str) -> Option<usize> {
        for i in 0..self.nodes.len() {
            if self.nodes[i].child.is_none() {
                continue;
            }
            let connz = self.monitor(i, "/connz?limit=1024").await;
            let connections = connz["connections"].as_array().cloned().unwrap_or_default();
            if connections.iter().any(|c| c["name"] == name) {
                return Some(i);
            }
        }
        None
    }

    /// Waits until the connection named `name` is on a live node; returns it.
    pub async fn wait_node_of(&self, name: &str) -> usize {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(i) = self.node_of(name).await {
                return i;
            }
            assert!(Instant::now() < deadline, "{name} is on no live node");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills node `i` (SIGKILL: no goodbye to its clients or routes).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn monitor(&self, i: usize, path: &str) -> Value {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.nodes[i].monitor_port));
        let (status, body) = http(addr, "GET", path, &[], "").await;
        assert_eq!(status, 200, "node{i} {path}: {body}");
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
