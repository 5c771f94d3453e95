//! The WebSocket transport of a session: `welcome` first, then the reader
//! (client frames to requests) and the writer (outbox to socket, pings) side
//! by side until either ends; the close code reaches the client (see
//! [`CloseReason`]). Owns the session's task and its one timer; the reading
//! and writing state machines are `reader` and `writer`. Everything else a
//! session does is shared with the SSE transport and lives in the parent
//! module.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::reader::{Read, Reader};
use super::writer::Writer;
use super::{Accepted, Session, socket};

use crate::close::CloseReason;
use crate::gateway::Gateway;
use crate::plugin::store::for_connection;
use crate::protocol::Frame;
pub use socket::READ_BUFFER_BYTES;

/// Runs one session on an upgraded socket until it closes. `leftover` holds
/// bytes the HTTP layer read past the handshake; they are the first frames.
///
/// Memory: an idle session is its task and the `Connection` it polls, so
/// both are kept small (docs/benchmarks.md section 1). An async fn's future
/// keeps every argument and every local whose scope spans an `.await`, for
/// as long as it lives, moved out or not; so opening (which awaits the
/// broker) is boxed and freed once open, the connection is one boxed struct
/// polled by hand, and only a request's future, boxed too, exists while it
/// runs.
pub async fn run(
    socket: TcpStream,
    leftover: Vec<u8>,
    gateway: Arc<Gateway>,
    accepted: Box<Accepted>,
) {
    let connection = Box::pin(open(socket, leftover, gateway, accepted)).await;
    serve(connection).await;
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

/// A session and its socket's two halves: everything an open WebSocket
/// session holds while it waits.
pub(super) struct Connection {
    session: Session,
    reader: Reader,
    writer: Writer,
    /// Requests read since the writer was last polled.
    unflushed: u8,
}

/// Most requests read in a row before the writer gets a turn: replies to a
/// pipelining client go out in batches of up to this many.
const MAX_UNFLUSHED_REQUESTS: u8 = 16;

/// What wakes the session up.
enum Event {
    Request(Utf8Bytes),
    /// The reading side ended (the client left, broke the protocol, went
    /// silent, its token expired).
    ReaderEnded(CloseReason),
    /// The writing side ended (a close was sent, or the socket failed).
    WriterEnded(CloseReason),
}

/// Registers the session, queues `welcome` and wraps the socket.
async fn open(
    socket: TcpStream,
    leftover: Vec<u8>,
    gateway: Arc<Gateway>,
    accepted: Box<Accepted>,
) -> Box<Connection> {
    let session = Session::open(Arc::clone(&gateway), *accepted).await;
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
    let idle_timeout = gateway.config.server.idle_timeout();
    let reader = Reader::new(ws, idle_timeout, &session.login);
    let writer = Writer::new(write_half, outbox, gateway);
    Box::new(Connection {
        session,
        reader,
        writer,
        unflushed: 0,
    })
}

/// Reads and writes until either side ends, then the close: after the
/// reader ended, the writer gets `close_grace_ms` to flush and send the
/// close frame; after the writer sent a close, the reader gets as long to
/// see the client's echo.
async fn serve(mut conn: Box<Connection>) {
    // The one timer of the session: idle timeout, token expiry, ping, close deadline.
    let mut timer = std::pin::pin!(tokio::time::sleep_until(conn.deadline()));
    let reason = loop {
        match poll_fn(|cx| conn.poll_event(cx, timer.as_mut())).await {
            Event::Request(text) => {
                if let Some(reason) = conn.request(&text, timer.as_mut()).await {
                    conn.drain_reader(timer.as_mut()).await;
                    break reason;
                }
            }
            Event::ReaderEnded(reason) => {
                conn.session.outbox.close(reason);
                poll_fn(|cx| conn.writer.poll_timed(cx, timer.as_mut())).await;
                break reason;
            }
            Event::WriterEnded(reason) => {
                conn.drain_reader(timer.as_mut()).await;
                break reason;
            }
        }
    };
    conn.session.close(reason);
}

impl Connection {
    /// The earliest of the reader's and the writer's deadlines.
    fn deadline(&self) -> Instant {
        self.reader.deadline().min(self.writer.deadline())
    }

    /// Waits for the next thing to do; writes and pings meanwhile.
    fn poll_event(&mut self, cx: &mut Context<'_>, mut timer: Pin<&mut Sleep>) -> Poll<Event> {
        loop {
            if timer.as_mut().poll(cx).is_ready() {
                let now = Instant::now();
                if let Some(reason) = self.reader.timed_out(now) {
                    return Poll::Ready(Event::ReaderEnded(reason));
                }
                if let Some(reason) = self.writer.tick(now) {
                    return Poll::Ready(Event::WriterEnded(reason));
                }
                timer.as_mut().reset(self.deadline());
                continue;
            }
            // Requests first, replies written once the client's input is
            // drained (or every MAX_UNFLUSHED_REQUESTS): a client that
            // pipelines gets its replies in a few writes, not one syscall
            // each (which also ended its turn on the thread sooner and made
            // every subscriber's batch smaller).
            let read_first = self.unflushed < MAX_UNFLUSHED_REQUESTS;
            if read_first && let Poll::Ready(event) = self.poll_read(cx) {
                return Poll::Ready(event);
            }
            self.unflushed = 0;
            if let Poll::Ready(reason) = self.writer.poll_write(cx) {
                return Poll::Ready(Event::WriterEnded(reason));
            }
            if !read_first && let Poll::Ready(event) = self.poll_read(cx) {
                return Poll::Ready(event);
            }
            // A deadline that moved earlier (a close began) re-arms the timer.
            let deadline = self.deadline();
            if deadline < timer.deadline() {
                timer.as_mut().reset(deadline);
                continue;
            }
            return Poll::Pending;
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        self.reader
            .poll_read(cx, &self.session)
            .map(|read| match read {
                Read::Text(text) => {
                    self.unflushed += 1;
                    Event::Request(text)
                }
                Read::End(reason) => Event::ReaderEnded(reason),
            })
    }

    /// Handles one request while the writer keeps writing (and pinging);
    /// `Some(reason)` if the writer ended meanwhile. The request's future
    /// is boxed: it is large (a route or rpc plugin call, a broker publish)
    /// and lives only while the request does. What plugins log meanwhile
    /// names the connection.
    async fn request(&mut self, text: &str, mut timer: Pin<&mut Sleep>) -> Option<CloseReason> {
        let conn = Arc::clone(&self.session.conn);
        let expires = self.session.login.expires_at_unix_ms;
        let mut request = Box::pin(for_connection(conn, self.session.handle_text(text)));
        let writer = &mut self.writer;
        let mut ended = None;
        poll_fn(|cx| {
            if request.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            // The request waits (a broker, a plugin): write meanwhile.
            if ended.is_none()
                && let Poll::Ready(reason) = writer.poll_timed(cx, timer.as_mut())
            {
                ended = Some(reason);
            }
            Poll::Pending
        })
        .await;
        drop(request);
        self.reader.heard_now();
        if self.session.login.expires_at_unix_ms != expires {
            self.reader.expiry_moved(&self.session.login);
        }
        ended
    }

    /// After the writer ended: reads (and drops) what the client still
    /// sends, its close echo, for at most `close_grace_ms`.
    async fn drain_reader(&mut self, mut timer: Pin<&mut Sleep>) {
        let grace = self.session.gateway.config.server.close_grace();
        timer.as_mut().reset(Instant::now() + grace);
        poll_fn(|cx| {
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            self.reader.poll_drain(cx)
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The size of what `f` returns (an async fn's future), without calling it.
    fn output_size1<A, R>(_: impl FnOnce(A) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    fn output_size4<A, B, C, D, R>(_: impl FnOnce(A, B, C, D) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// What an idle session holds, printed (`--no-capture`) for the
    /// breakdown in docs/benchmarks.md section 1: its task's future
    /// (`run`, waiting in `serve`) and the boxed [`Connection`]. The bounds
    /// catch a large future (a request's, the broker's) moving back inline.
    #[test]
    fn an_idle_session_stays_small() {
        let run_future = output_size4(run);
        let connection = std::mem::size_of::<Connection>();
        eprintln!("session::run future (the task): {run_future} B");
        eprintln!("  serve future: {} B", output_size1(serve));
        eprintln!("Connection (boxed): {connection} B");
        eprintln!("  Session: {} B", std::mem::size_of::<Session>());
        eprintln!("  Reader: {} B", std::mem::size_of::<Reader>());
        eprintln!(
            "    WebSocketStream<ReadSide>: {} B",
            std::mem::size_of::<WebSocketStream<socket::ReadSide>>()
        );
        eprintln!("  Writer: {} B", std::mem::size_of::<Writer>());
        eprintln!("tokio Sleep: {} B", std::mem::size_of::<Sleep>());
        eprintln!(
            "open future (boxed, freed once open): {} B",
            output_size4(open)
        );
        assert!(run_future <= 768, "session task future {run_future} B");
        assert!(connection <= 1280, "connection {connection} B");
    }
}
