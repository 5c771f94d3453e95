//! A session's token lifetime: when its identity expires (set by the auth
//! plugin, moved by a successful `refresh`) and the connect request a refresh
//! repeats to the auth plugin. Owns the deadline arithmetic; the transports
//! wait on [`Lifetime::expired`] and close with 4001 (WebSocket) or an
//! `event: expired` (SSE).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::plugin::hooks::ConnectRequest;

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub struct Lifetime {
    /// When the identity stops being valid, in milliseconds since the Unix
    /// epoch (the auth plugin's `expires-at-unix-ms`); `None` for never.
    pub expires_at_unix_ms: Option<u64>,
    /// The connect request the auth plugin admitted, with its token removed:
    /// a `refresh` repeats its path, query, headers and address with the new
    /// token. `None` when no auth plugin admitted the connection.
    pub request: Option<Arc<ConnectRequest>>,
}

impl Lifetime {
    /// The expiry in whole Unix seconds (rounded down, so a client that
    /// refreshes by then is in time), as sent in `welcome` and a refresh's
    /// result.
    pub fn expires_at_unix_s(&self) -> Option<u64> {
        self.expires_at_unix_ms.map(|ms| ms / 1000)
    }

    /// Resolves at the expiry; never when there is none. Re-created on each
    /// wait, so a refresh that moved the expiry is seen on the next one.
    pub async fn expired(&self) {
        match self.expires_at_unix_ms {
            Some(at) => {
                tokio::time::sleep(Duration::from_millis(at.saturating_sub(now_unix_ms()))).await
            }
            None => std::future::pending().await,
        }
    }
}

/// The gateway's time in milliseconds since the Unix epoch (0 before 1970).
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
