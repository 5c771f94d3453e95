//! Recording a plugin's calls from live traffic, for `ferrygate plugin test`:
//! one JSON line per call with what the plugin was asked (a connect
//! request, a subscribe, a publish or rpc with its payload) and what the
//! gateway made of its answer. Opt-in per plugin (`record = { path, max_mib }`
//! in its manifest entry), off by default, and bounded: once the file holds
//! `max_mib`, further calls are not recorded (counted in the log once).
//!
//! A recording holds what clients sent, tokens and payloads included: the
//! file is created with mode 0600 and is meant for debugging, not for
//! production traffic. Writes are synchronous appends of one line under a
//! lock, a cost a debugging session accepts.
//!
//! Owns the line format (shared with `authoring::replay`) and the writer; it
//! never calls a plugin.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::hooks::{Action, AuthOutcome, ConnectRequest, Routed, Transformed};
use super::instance::CallError;
use crate::plugin::bindings::{Connection, Identity};

/// The connection a call was made for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conn {
    /// The gateway's connection id.
    pub id: String,
    /// The signed-in user, if any.
    #[serde(default)]
    pub user: Option<String>,
    /// The auth plugin's claims (a JSON object).
    #[serde(default = "empty_object")]
    pub claims: Value,
}

fn empty_object() -> Value {
    json!({})
}

impl Conn {
    /// From the WIT record.
    pub fn of(connection: &Connection) -> Self {
        Self {
            id: connection.id.clone(),
            user: connection.identity.user.clone(),
            claims: serde_json::from_str(&connection.identity.claims).unwrap_or_else(|_| json!({})),
        }
    }

    /// To the WIT record.
    pub fn to_wit(&self) -> Connection {
        Connection {
            id: self.id.clone(),
            identity: Identity {
                user: self.user.clone(),
                claims: self.claims.to_string(),
            },
        }
    }
}

/// What a plugin was asked: one line of a recording, and of the input of
/// `ferrygate plugin test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Input {
    /// A connection attempt (auth plugins).
    Connect {
        /// The request path, such as `/ws`.
        #[serde(default)]
        path: String,
        /// The query string without `?`.
        #[serde(default)]
        query: String,
        /// Request headers, names in lower case.
        #[serde(default)]
        headers: Vec<(String, String)>,
        /// The peer, `ip:port`.
        #[serde(default)]
        remote_address: String,
        /// The client's token, if any.
        #[serde(default)]
        token: Option<String>,
        /// The gateway's clock at the attempt, ms since the Unix epoch.
        #[serde(default)]
        now_unix_ms: u64,
        /// The decision the live gateway made, if recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        live: Option<Value>,
    },
    /// A subscribe (route plugins).
    Subscribe {
        /// The channel asked for.
        channel: String,
        /// Who asked.
        connection: Conn,
        /// The decision the live gateway made, if recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        live: Option<Value>,
    },
    /// A publish (route plugins: the decision; transforms: the payload out).
    Publish {
        /// The channel.
        channel: String,
        /// Who published (`None`: the HTTP API).
        #[serde(default)]
        connection: Option<Conn>,
        /// The payload, any JSON value.
        data: Value,
        /// The decision the live gateway made, if recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        live: Option<Value>,
    },
    /// An rpc (route plugins, which see it as a publish on the method).
    Rpc {
        /// The method.
        channel: String,
        /// Who called.
        connection: Conn,
        /// The rpc's data.
        data: Value,
        /// The decision the live gateway made, if recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        live: Option<Value>,
    },
}

impl Input {
    /// The recorded decision, if the line has one.
    pub fn live(&self) -> Option<&Value> {
        match self {
            Self::Connect { live, .. }
            | Self::Subscribe { live, .. }
            | Self::Publish { live, .. }
            | Self::Rpc { live, .. } => live.as_ref(),
        }
    }
}

/// The decision of an auth call, as recorded and printed.
pub fn auth_decision(result: &Result<AuthOutcome, CallError>) -> Value {
    match result {
        Ok(AuthOutcome::Allow(admission)) => json!({"allow": {
            "user": admission.identity.user,
            "claims": serde_json::from_str::<Value>(&admission.identity.claims).unwrap_or(Value::Null),
            "expires_at_unix_ms": admission.expires_at_unix_ms,
        }}),
        Ok(AuthOutcome::Deny { status, reason }) => {
            json!({"deny": {"status": status, "reason": reason}})
        }
        Err(error) => failed(error),
    }
}

/// The decision of a route call, as recorded and printed.
pub fn route_decision(result: &Result<Routed, CallError>) -> Value {
    match result {
        Ok(Routed::Allow) => json!("allow"),
        Ok(Routed::Deny(reason)) => json!({ "deny": reason }),
        Ok(Routed::Channels(channels)) => {
            json!({"channels": channels.iter().map(|c| c.as_str()).collect::<Vec<_>>()})
        }
        Ok(Routed::Rpc(method)) => json!({"rpc": method.as_str()}),
        Ok(Routed::Drop) => json!("drop"),
        Err(error) => failed(error),
    }
}

/// The outcome of a transform call, as recorded and printed.
pub fn transform_decision(result: &Result<Transformed, CallError>) -> Value {
    match result {
        Ok(Transformed::Keep(data)) => {
            json!({"keep": serde_json::from_str::<Value>(data).unwrap_or(Value::Null)})
        }
        Ok(Transformed::Drop) => json!("drop"),
        Err(error) => failed(error),
    }
}

fn failed(error: &CallError) -> Value {
    json!({"error": format!("{:?}", error.cause)})
}

/// The recorded form of a connect request.
pub fn connect_input(request: &ConnectRequest, live: Value) -> Input {
    Input::Connect {
        path: request.path.clone(),
        query: request.query.clone(),
        headers: request.headers.clone(),
        remote_address: request.remote_address.clone(),
        token: request.token.clone(),
        now_unix_ms: request.now_unix_ms,
        live: Some(live),
    }
}

/// The recorded form of a route request.
pub fn route_input(
    action: Action,
    channel: &str,
    connection: &Connection,
    data: Option<&str>,
    live: Value,
) -> Input {
    let data = data.map_or(Value::Null, |d| {
        serde_json::from_str(d).unwrap_or(Value::Null)
    });
    let (channel, connection) = (channel.to_owned(), Conn::of(connection));
    match action {
        Action::Subscribe => Input::Subscribe {
            channel,
            connection,
            live: Some(live),
        },
        Action::Publish => Input::Publish {
            channel,
            connection: Some(connection),
            data,
            live: Some(live),
        },
        Action::Rpc => Input::Rpc {
            channel,
            connection,
            data,
            live: Some(live),
        },
    }
}

/// Appends recorded calls to one file, up to a size.
#[derive(Debug)]
pub struct Recorder {
    file: Mutex<(std::fs::File, u64)>,
    max_bytes: u64,
    full: AtomicBool,
}

impl Recorder {
    /// Opens `path` for appending (mode 0600 when created), recording until
    /// the file holds `max_bytes`.
    pub fn open(path: &Path, max_bytes: u64) -> std::io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            file: Mutex::new((file, size)),
            max_bytes,
            full: AtomicBool::new(false),
        })
    }

    /// Appends one line; drops it when it would pass the size bound.
    pub fn write(&self, plugin: &str, input: &Input) {
        if self.full.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut line) = serde_json::to_vec(input) else {
            return;
        };
        line.push(b'\n');
        let mut guard = self.file.lock();
        let (file, size) = &mut *guard;
        if *size + line.len() as u64 > self.max_bytes {
            self.full.store(true, Ordering::Relaxed);
            tracing::warn!(
                plugin,
                max_bytes = self.max_bytes,
                "the recording is full: later calls are not recorded"
            );
            return;
        }
        match file.write_all(&line) {
            Ok(()) => *size += line.len() as u64,
            Err(error) => {
                self.full.store(true, Ordering::Relaxed);
                tracing::warn!(plugin, %error, "cannot write the recording: recording stopped");
            }
        }
    }
}
