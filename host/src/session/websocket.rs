//! The WebSocket transport of a session: `welcome` first, then the reader
//! (client frames to requests) and the writer (outbox to socket, pings) side
//! by side until either ends; the close code reaches the client (see
//! [`CloseReason`]). Everything else a session does is shared with the SSE
//! transport and lives in the parent module.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::Instrument;

use super::{Accepted, Session, reader, socket, writer};

pub use socket::READ_BUFFER_BYTES;
use crate::close::CloseReason;
use crate::gateway::Gateway;
use crate::protocol::Frame;

/// Runs one session on an upgraded socket until it closes. `leftover` holds
/// bytes the HTTP layer read past the handshake; they are the first frames.
pub async fn run(
    socket: TcpStream,
    leftover: Vec<u8>,
    ws_config: WebSocketConfig,
    gateway: Arc<Gateway>,
    accepted: Accepted,
) {
    let close_grace = gateway.config.server.close_grace();
    // Boxed for the same reason as a request (see `reader`): opening awaits
    // the broker, and that future must not size the session's task.
    let mut session = Box::pin(Session::open(Arc::clone(&gateway), accepted)).await;
    let span = session.span();
    async move {
        let outbox = Arc::clone(&session.outbox);
        outbox.push(Frame::welcome(
            &session.conn,
            session.connection.identity.user.as_deref(),
            &gateway.node,
            session.login.expires_at_unix_s(),
        ));
        let (read_half, write_half) = socket.into_split();
        let read_side = socket::ReadSide::new(read_half, Arc::clone(&outbox));
        let mut ws = WebSocketStream::from_partially_read(
            read_side,
            leftover,
            Role::Server,
            Some(ws_config),
        )
        .await;
        let reason: CloseReason = {
            let reader = reader::run(&mut ws, &mut session);
            let writer = writer::run(write_half, &outbox, &gateway);
            tokio::pin!(reader, writer);
            tokio::select! {
                reason = &mut reader => {
                    outbox.close(reason);
                    let _ = tokio::time::timeout(close_grace, &mut writer).await;
                    reason
                }
                reason = &mut writer => {
                    // Give the client a moment to echo our close frame.
                    let _ = tokio::time::timeout(close_grace, &mut reader).await;
                    reason
                }
            }
        };
        session.close(reason);
    }
    .instrument(span)
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of what `f` returns (here: an async fn's future), without
    /// calling it.
    fn output_size<A, B, C, D, E, R>(_: impl FnOnce(A, B, C, D, E) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    #[test]
    fn footprint() {
        let run_future = output_size(run);
        eprintln!("session::run future: {run_future} B");
        eprintln!("Session: {} B", std::mem::size_of::<Session>());
        eprintln!(
            "WebSocketStream<ReadSide>: {} B",
            std::mem::size_of::<WebSocketStream<socket::ReadSide>>()
        );
        eprintln!("Outbox: {} B", std::mem::size_of::<crate::outbox::Outbox>());
    }
}
