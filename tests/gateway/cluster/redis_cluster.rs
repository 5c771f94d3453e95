//! A real three-node Redis Cluster (no replicas) on loopback, made with
//! `redis-cli --cluster create`, for the sharded pub/sub test.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::drain::TempDir;
use crate::support::PATIENCE;

/// Three `redis-server --cluster-enabled yes` processes forming one cluster.
pub struct RedisCluster {
    pub ports: Vec<u16>,
    children: Vec<Child>,
    _dir: TempDir,
}

/// A port whose cluster bus port (+10000) is free too.
fn cluster_port(taken: &[u16]) -> u16 {
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let start = 20_000 + (std::process::id() % 9_000) as u16;
    (start..start + 5_000)
        .find(|&p| !taken.contains(&p) && free(p) && free(p + 10_000))
        .expect("a free port pair for a cluster node")
}

impl RedisCluster {
    pub fn start() -> Self {
        let dir = TempDir::new("redis-cluster");
        let mut ports = Vec::new();
        let mut children = Vec::new();
        for _ in 0..3 {
            let port = cluster_port(&ports);
            let node_dir = dir.0.join(port.to_string());
            std::fs::create_dir_all(&node_dir).expect("node dir");
            let child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ])
                .args(["--save", "", "--appendonly", "no"])
                .current_dir(&node_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server (install it, or run `cargo xtask test`)");
            children.push(child);
            ports.push(port);
        }
        let cluster = Self {
            ports,
            children,
            _dir: dir,
        };
        for port in &cluster.ports {
            cluster.wait_until(*port, "PING", "PONG");
        }
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let status = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run redis-cli");
        assert!(status.success(), "redis-cli --cluster create failed");
        for port in &cluster.ports {
            cluster.wait_until(*port, "CLUSTER INFO", "cluster_state:ok");
        }
        cluster
    }

    pub fn urls(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("\"redis://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Subscribers of `channel` over all nodes, by `PUBSUB SHARDNUMSUB`
    /// (`sharded`) or `PUBSUB NUMSUB`.
    pub fn subscribers(&self, channel: &str, sharded: bool) -> i64 {
        let command = if sharded { "SHARDNUMSUB" } else { "NUMSUB" };
        self.ports
            .iter()
            .map(|port| {
                let output = Command::new("redis-cli")
                    .args(["-p", &port.to_string(), "PUBSUB", command, channel])
                    .output()
                    .expect("run redis-cli");
                String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .nth(1)
                    .and_then(|n| n.trim().parse::<i64>().ok())
                    .unwrap_or(0)
            })
            .sum()
    }

    fn wait_until(&self, port: u16, command: &str, expected: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let output = Command::new("redis-cli")
                .args(["-p", &port.to_string()])
                .args(command.split(' '))
                .output()
                .expect("run redis-cli");
            if String::from_utf8_lossy(&output.stdout).contains(expected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {port}: no {expected:?} in time"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
