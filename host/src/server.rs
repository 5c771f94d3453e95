//! The listener: accepts TCP connections, serves HTTP/1.1 on each (with
//! upgrades), and drains the gateway when told to shut down.
//!
//! `run(listener, gateway, shutdown)` is the whole server: tests call it on a
//! port-0 listener with a future of their own as the shutdown signal.
//! Connections that are not sessions yet are bounded by `server::pending`.

pub mod pending;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};
use tower::ServiceExt;

use crate::close::CloseReason;
use crate::gateway::Gateway;
use crate::http::{self, RemoteAddr};
use crate::workers::Workers;

/// Longest pause after a failed accept (for instance, out of file descriptors).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Pending connections the kernel queues before `accept`: enough for a burst
/// of reconnects after another instance drained (the OS default is 128).
const LISTEN_BACKLOG: u32 = 4096;

/// Binds the gateway's listener with a backlog sized for reconnect storms.
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves until `shutdown` resolves, then drains: readiness turns 503, every
/// session is closed with 1012, spread over `drain_ms`, and `run` returns once
/// they are gone (or `close_grace_ms` after the drain period at the latest).
pub async fn run(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    workers: Workers,
    shutdown: impl Future<Output = ()>,
) {
    let accept = tokio::spawn(accept_loop(listener, Arc::clone(&gateway), workers));
    shutdown.await;
    drain(&gateway).await;
    accept.abort();
}

/// Flips readiness, refuses new upgrades, closes every session, removes this
/// instance's presence entries, then waits
/// (at most `[broker] timeout_ms`) until the broker has every acknowledged publish.
pub async fn drain(gateway: &Gateway) {
    let server = &gateway.config.server;
    gateway.begin_drain();
    tracing::info!(
        sessions = gateway.connections.len(),
        period_ms = server.drain_ms,
        "draining: closing every session with 1012"
    );
    gateway
        .connections
        .close_all(
            CloseReason::Draining,
            server.drain_period(),
            server.close_grace(),
        )
        .await;
    // Presence entries go now, not when they would expire.
    gateway.presence.drain(&gateway.plugins.current()).await;
    // What was acknowledged must reach the broker before the process exits.
    gateway.broker.flush(gateway.config.broker.timeout()).await;
    tracing::info!(remaining = gateway.connections.len(), "drain complete");
}

async fn accept_loop(listener: TcpListener, gateway: Arc<Gateway>, workers: Workers) {
    let router = http::router(Arc::clone(&gateway));
    let server = &gateway.config.server;
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(server.request_head_timeout_ms))
        .max_buf_size(server.max_request_head_bytes);
    let limit = pending::PendingLimit::new(server.max_pending_connections);
    let mut backoff = Duration::from_millis(5);
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => {
                backoff = Duration::from_millis(5);
                accepted
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Some(slot) = limit.take() else {
            gateway
                .metrics
                .upgrade_refused(crate::metrics::UpgradeRefusal::Pending);
            workers.spawn(stream, pending::refuse);
            continue;
        };
        let router = router.clone();
        let http = http.clone();
        workers.spawn(stream, move |stream| async move {
            let connection = http.serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(tower::service_fn(
                    move |mut request: hyper::Request<hyper::body::Incoming>| {
                        let extensions = request.extensions_mut();
                        extensions.insert(RemoteAddr(remote));
                        // So that an SSE stream, which stays HTTP, stops counting.
                        extensions.insert(slot.clone());
                        router.clone().oneshot(request)
                    },
                )),
            );
            // Ends when the client leaves, a request head times out (an
            // idle keep-alive wait included), or the socket is upgraded.
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(%remote, error = %e, "http connection ended with an error");
            }
        });
    }
}
