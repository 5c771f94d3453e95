//! The WebSocket transport of a session: `welcome` first, then the reader
//! (client frames to requests) and the writer (outbox to socket, pings) side
//! by side until either ends; the close code reaches the client (see
//! [`CloseReason`]). Everything else a session does is shared with the SSE
//! transport and lives in the parent module.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::Instrument;

use super::{Accepted, Session, reader, socket, writer};

use crate::close::CloseReason;
use crate::gateway::Gateway;
use crate::outbox::Outbox;
use crate::protocol::Frame;
pub use socket::READ_BUFFER_BYTES;

/// Runs one session on an upgraded socket until it closes. `leftover` holds
/// bytes the HTTP layer read past the handshake; they are the first frames.
///
/// An async fn's future keeps every argument, and every local whose scope
/// spans an `.await`, for as long as it lives, moved out or not: so the
/// admission comes boxed, the setup's locals die in a block before the long
/// wait, and `serve` takes only what the session keeps (the idle-memory
/// breakdown is in docs/benchmarks.md section 1).
pub async fn run(
    socket: TcpStream,
    leftover: Vec<u8>,
    gateway: Arc<Gateway>,
    accepted: Box<Accepted>,
) {
    let serving = {
        // Boxed for the same reason as a request (see `reader`): opening
        // awaits the broker, and that future must not size the session's task.
        let session = Box::pin(Session::open(Arc::clone(&gateway), *accepted)).await;
        let outbox = Arc::clone(&session.outbox);
        outbox.push(Frame::welcome(
            &session.conn,
            session.connection.identity.user.as_deref(),
            &gateway.node,
            session.login.expires_at_unix_s(),
        ));
        let (read_half, write_half) = socket.into_split();
        let ws = WebSocketStream::from_partially_read(
            socket::ReadSide::new(read_half, Arc::clone(&outbox)),
            leftover,
            Role::Server,
            Some(ws_config(&gateway)),
        )
        .await;
        let span = session.span();
        serve(session, ws, write_half, outbox, gateway).instrument(span)
    };
    serving.await;
}

/// tungstenite's settings: a small read buffer ([`READ_BUFFER_BYTES`]) and
/// the manifest's frame limit.
fn ws_config(gateway: &Gateway) -> WebSocketConfig {
    let max_frame_bytes = gateway.config.server.max_frame_bytes;
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(max_frame_bytes))
        .max_frame_size(Some(max_frame_bytes))
}

/// The reader and the writer side by side until either ends, then the close.
async fn serve(
    mut session: Session,
    mut ws: WebSocketStream<socket::ReadSide>,
    write_half: OwnedWriteHalf,
    outbox: Arc<Outbox>,
    gateway: Arc<Gateway>,
) {
    let close_grace = gateway.config.server.close_grace();
    let reason: CloseReason = {
        // `pin!` on the call itself: pinning a named future (`tokio::pin!`)
        // moves it, and the moved-from original keeps its space in this future.
        let mut reader = std::pin::pin!(reader::run(&mut ws, &mut session));
        let mut writer = std::pin::pin!(writer::run(write_half, &outbox, &gateway));
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

#[cfg(test)]
mod tests {
    use super::*;

    // The size of what `f` returns (an async fn's future), without calling it.
    fn output_size2<A, B, R>(_: impl FnOnce(A, B) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    fn output_size3<A, B, C, R>(_: impl FnOnce(A, B, C) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    fn output_size4<A, B, C, D, R>(_: impl FnOnce(A, B, C, D) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    fn output_size5<A, B, C, D, E, R>(_: impl FnOnce(A, B, C, D, E) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// What an idle session's task holds, printed (`--no-capture`) for the
    /// breakdown in docs/benchmarks.md section 1; the bounds catch a large
    /// future (a request's, the broker's) moving back inline. Sizes are of
    /// the test build, which lays futures out like the release build does
    /// but does not shrink them further.
    #[test]
    fn an_idle_session_task_stays_small() {
        let run_future = output_size4(run);
        let reader_future = output_size2(reader::run::<&mut WebSocketStream<socket::ReadSide>>);
        let writer_future = output_size3(writer::run);
        eprintln!("session::run future: {run_future} B");
        eprintln!("  serve future: {} B", output_size5(serve));
        eprintln!("  reader future: {reader_future} B");
        eprintln!("  writer future: {writer_future} B");
        eprintln!("  Session: {} B", std::mem::size_of::<Session>());
        eprintln!(
            "  WebSocketStream<ReadSide>: {} B",
            std::mem::size_of::<WebSocketStream<socket::ReadSide>>()
        );
        eprintln!(
            "  tokio Sleep: {} B",
            std::mem::size_of::<tokio::time::Sleep>()
        );
        eprintln!(
            "Session::open future (boxed): {} B",
            output_size2(Session::open)
        );
        eprintln!(
            "Outbox (own allocation): {} B",
            std::mem::size_of::<Outbox>()
        );
        assert!(reader_future <= 512, "reader future {reader_future} B");
        assert!(writer_future <= 512, "writer future {writer_future} B");
        assert!(
            run_future <= 3 * 1024 + 512,
            "session future {run_future} B"
        );
    }
}
