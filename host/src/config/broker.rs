//! `[broker]`: which message bus connects gateway instances, and how to reach it.
//!
//! Owns the keys, their defaults, `${ENV}` expansion of the secret ones and
//! their validation. It does not connect to anything: the broker layer
//! (`crate::broker`) reads this value.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::env::{self, Environment};
use super::{Redactor, Secret};

/// `[broker]` with its defaults; each key is documented in `docs/configuration.md`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Which implementation carries messages.
    pub kind: BrokerKind,
    /// Servers to connect to; several are seeds of one cluster.
    pub urls: Vec<String>,
    /// Prefix of every broker subject or channel the gateway uses.
    pub prefix: String,
    /// What to do when the broker cannot be reached at start.
    pub on_unreachable: OnUnreachable,
    /// How long start-up waits for the first connection.
    pub connect_timeout_ms: u64,
    /// How long an `rpc` waits for its answer before replying `timeout`.
    pub rpc_timeout_ms: u64,
    /// Longest a publish, subscribe or liveness probe waits for the broker
    /// before the request is answered `unavailable` (at most `MAX_TIMEOUT_MS`).
    pub timeout_ms: u64,
    /// Pause between two liveness probes (at most `MAX_LIVENESS_INTERVAL_MS`).
    pub liveness_interval_ms: u64,
    /// User name (NATS user/password auth, Redis ACL user).
    pub username: Option<String>,
    /// Password (NATS user/password auth, Redis `AUTH`).
    pub password: Option<Secret>,
    /// NATS token authentication.
    pub token: Option<Secret>,
    /// NATS credentials file (JWT + NKey seed), relative to the manifest's folder.
    pub credentials_file: Option<PathBuf>,
    /// Require TLS even when the URL scheme does not say so (NATS).
    pub tls: bool,
    /// PEM file of extra root certificates to trust (NATS), relative to the manifest's folder.
    pub tls_ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (NATS); needs `tls_key_file`.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file` (NATS).
    pub tls_key_file: Option<PathBuf>,
    /// Redis Cluster: `urls` are seed nodes and channels use sharded pub/sub.
    pub cluster: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            kind: BrokerKind::Memory,
            urls: Vec::new(),
            prefix: "ferrygate".to_owned(),
            on_unreachable: OnUnreachable::Fail,
            connect_timeout_ms: 5_000,
            rpc_timeout_ms: 5_000,
            timeout_ms: 2_000,
            liveness_interval_ms: 1_000,
            username: None,
            password: None,
            token: None,
            credentials_file: None,
            tls: false,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            cluster: false,
        }
    }
}

/// The broker implementations the gateway knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerKind {
    /// In-process delivery: a single instance, nothing leaves the process.
    Memory,
    /// NATS (async-nats), a server or a cluster.
    Nats,
    /// Redis (fred), a server or a Redis Cluster with sharded pub/sub.
    Redis,
}

/// What `serve` does when the broker cannot be reached within `connect_timeout_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnUnreachable {
    /// Exit with an error naming the broker.
    Fail,
    /// Serve local clients, report not ready, and keep reconnecting.
    Degraded,
}

/// Upper bound of `timeout_ms`: a client waiting longer than a minute for an
/// answer to a publish or subscribe has long given up.
pub const MAX_TIMEOUT_MS: u64 = 60_000;

/// Upper bound of `liveness_interval_ms`: a hung broker must be noticed within
/// about a minute; the lower bound, 100 ms, keeps probes cheap.
pub const MAX_LIVENESS_INTERVAL_MS: u64 = 60_000;

/// A `[broker]` key whose value is wrong.
#[derive(Debug)]
pub(super) struct InvalidKey {
    pub key: &'static str,
    pub reason: String,
}

impl BrokerConfig {
    /// Start-up wait for the first connection.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// Deadline of one `rpc`.
    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.rpc_timeout_ms)
    }

    /// The URLs for a log line or an error: `urls_or_default` with each
    /// password shown as `[redacted]`, joined by `, `.
    pub fn urls_for_log(&self) -> String {
        let urls: Vec<String> = self
            .urls_or_default()
            .iter()
            .map(|url| super::redact::url(url))
            .collect();
        urls.join(", ")
    }

    /// Every secret of this table: `password`, `token` and the password (or
    /// token) inside each URL; for scrubbing client library errors.
    pub fn secrets(&self) -> Redactor {
        let mut secrets = Redactor::default();
        for secret in [&self.password, &self.token].into_iter().flatten() {
            secrets.add(secret.expose());
        }
        for url in &self.urls {
            let start = url.find("://").map_or(0, |i| i + 3);
            let authority = url[start..]
                .split(['/', '?', '#'])
                .next()
                .unwrap_or_default();
            if let Some((userinfo, _)) = authority.rsplit_once('@') {
                secrets.add(
                    userinfo
                        .split_once(':')
                        .map_or(userinfo, |(_, password)| password),
                );
            }
        }
        secrets
    }

    /// Longest wait for the broker on a publish, subscribe or liveness probe.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Liveness probing of the networked brokers.
    pub fn probing(&self) -> crate::broker::health::Probing {
        crate::broker::health::Probing {
            interval: Duration::from_millis(self.liveness_interval_ms),
            timeout: self.timeout(),
        }
    }

    /// The configured URLs, or the broker's conventional local address.
    pub fn urls_or_default(&self) -> Vec<String> {
        if !self.urls.is_empty() {
            return self.urls.clone();
        }
        let default = match self.kind {
            BrokerKind::Memory => return Vec::new(),
            BrokerKind::Nats => "nats://127.0.0.1:4222",
            BrokerKind::Redis => "redis://127.0.0.1:6379",
        };
        vec![default.to_owned()]
    }

    pub(super) fn expand_env(
        &mut self,
        env: &dyn Environment,
    ) -> Result<(), (&'static str, String)> {
        for (key, secret) in [("password", &mut self.password), ("token", &mut self.token)] {
            if let Some(secret) = secret {
                let value = env::expand(secret.expose(), env).map_err(|e| (key, e.to_string()))?;
                secret.replace(value);
            }
        }
        Ok(())
    }

    pub(super) fn validate(&self) -> Result<(), InvalidKey> {
        let invalid = |key, reason: &str| {
            Err(InvalidKey {
                key,
                reason: reason.to_owned(),
            })
        };
        let prefix_ok = !self.prefix.is_empty()
            && self.prefix.len() <= 64
            && self.prefix.split('.').all(|t| {
                !t.is_empty()
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
            });
        if !prefix_ok {
            return invalid(
                "prefix",
                "must be 1 to 64 characters of dot-separated tokens of letters, digits, `_` and `-`",
            );
        }
        if self.rpc_timeout_ms == 0 || self.rpc_timeout_ms > 600_000 {
            return invalid("rpc_timeout_ms", "must be between 1 and 600000");
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return invalid(
                "timeout_ms",
                &format!("must be between 1 and {MAX_TIMEOUT_MS}"),
            );
        }
        if !(100..=MAX_LIVENESS_INTERVAL_MS).contains(&self.liveness_interval_ms) {
            return invalid(
                "liveness_interval_ms",
                &format!("must be between 100 and {MAX_LIVENESS_INTERVAL_MS}"),
            );
        }
        if self.connect_timeout_ms == 0 || self.connect_timeout_ms > 600_000 {
            return invalid(
                "connect_timeout_ms",
                "must be between 1 and 600000 (ten minutes)",
            );
        }
        if self.kind == BrokerKind::Memory && !self.urls.is_empty() {
            return invalid("urls", "is meaningless with kind = \"memory\"");
        }
        let scheme_ok = |url: &str| match self.kind {
            BrokerKind::Memory => true,
            BrokerKind::Nats => {
                ["nats://", "tls://", "ws://", "wss://"]
                    .iter()
                    .any(|s| url.starts_with(s))
                    || !url.contains("://")
            }
            BrokerKind::Redis => ["redis://", "rediss://", "valkey://", "valkeys://"]
                .iter()
                .any(|s| url.starts_with(s)),
        };
        if let Some(url) = self.urls.iter().find(|u| !scheme_ok(u)) {
            return invalid(
                "urls",
                &format!("{url:?} is not a {:?} URL", self.kind).to_lowercase(),
            );
        }
        if self.kind == BrokerKind::Nats
            && let Some(url) = self.urls.iter().find(|u| super::redact::url(u) != **u)
        {
            return invalid(
                "urls",
                &format!(
                    "{:?} carries credentials, which the NATS client ignores: put them in `username` and `password` (or `token`), where `${{VAR}}` keeps them out of the file",
                    super::redact::url(url)
                ),
            );
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return invalid(
                "tls_cert_file",
                "and `tls_key_file` go together (mutual TLS needs both)",
            );
        }
        let nats_only = [
            ("token", self.token.is_some()),
            ("credentials_file", self.credentials_file.is_some()),
            ("tls", self.tls),
            ("tls_ca_file", self.tls_ca_file.is_some()),
            ("tls_cert_file", self.tls_cert_file.is_some()),
            ("tls_key_file", self.tls_key_file.is_some()),
        ];
        if self.kind != BrokerKind::Nats
            && let Some((key, _)) = nats_only.iter().find(|(_, set)| *set)
        {
            return invalid(
                key,
                "applies to kind = \"nats\" only (Redis takes TLS from a rediss:// URL)",
            );
        }
        if self.username.is_some() && self.password.is_none() {
            return invalid("username", "needs `password` too");
        }
        if self.kind == BrokerKind::Memory && self.password.is_some() {
            return invalid("password", "is meaningless with kind = \"memory\"");
        }
        if self.cluster && self.kind != BrokerKind::Redis {
            return invalid(
                "cluster",
                "applies to kind = \"redis\" only (a NATS cluster needs only several `urls`)",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
