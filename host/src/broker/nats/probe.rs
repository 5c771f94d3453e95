//! A real server round trip on NATS: this instance publishes a token on its
//! own subject `<prefix>.probe.<node>`, to which it is subscribed, and waits
//! for it to come back.
//!
//! The server handles one client's protocol in order, so a probe that came
//! back proves that the server has processed everything this client sent
//! before it: a SUB is then in force, a PUB is then on its way to the
//! subscribers. (async-nats' `flush` only writes the client's buffer to the
//! socket and proves neither.) Used to confirm subscriptions, as the liveness
//! probe, and by the shutdown flush. Owns only the probe subject and its
//! waiting table.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::Client;
use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::broker::BrokerError;

/// See the module docs.
#[derive(Debug)]
pub struct Probe {
    client: Client,
    subject: String,
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<()>>>,
}

impl Probe {
    /// Subscribes `<prefix>.probe.<node>` and starts the task that answers
    /// returning probes; it ends when the probe is dropped.
    pub async fn start(client: Client, prefix: &str, node: &str) -> Result<Arc<Self>, BrokerError> {
        let subject = format!("{prefix}.probe.{node}");
        let mut returns = client
            .subscribe(subject.clone())
            .await
            .map_err(|e| BrokerError::Unavailable(format!("nats probe subscribe: {e}")))?;
        let probe = Arc::new(Self {
            client,
            subject,
            next: AtomicU64::new(0),
            waiting: Mutex::new(HashMap::new()),
        });
        let weak: Weak<Self> = Arc::downgrade(&probe);
        tokio::spawn(async move {
            while let Some(message) = returns.next().await {
                let Some(probe) = weak.upgrade() else {
                    return;
                };
                // Anything not a number we sent (someone else publishing here) is ignored.
                let token = std::str::from_utf8(&message.payload)
                    .ok()
                    .and_then(|text| text.parse::<u64>().ok());
                if let Some(tx) = token.and_then(|t| probe.waiting.lock().remove(&t)) {
                    let _ = tx.send(());
                }
            }
        });
        Ok(probe)
    }

    /// One round trip, at most `limit`: `Ok` once the server has processed
    /// everything sent on this connection before the call.
    pub async fn round_trip(&self, limit: Duration) -> Result<(), BrokerError> {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().insert(token, tx);
        let result = tokio::time::timeout(limit, async {
            self.client
                .publish(self.subject.clone(), token.to_string().into())
                .await
                .map_err(|e| BrokerError::Unavailable(format!("nats probe: {e}")))?;
            rx.await
                .map_err(|_| BrokerError::Unavailable("nats probe abandoned".to_owned()))
        })
        .await;
        self.waiting.lock().remove(&token);
        match result {
            Ok(answered) => answered,
            Err(_) => Err(BrokerError::Unavailable(format!(
                "NATS did not answer within {limit:?}"
            ))),
        }
    }
}
