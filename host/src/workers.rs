//! The runtimes that serve connections: one single-threaded tokio runtime per
//! core, each on its own OS thread, fed round-robin by the accept loop.
//!
//! Why not one multi-threaded runtime: a publish to a channel with thousands
//! of subscribers wakes thousands of session tasks at once. A multi-threaded
//! worker keeps only 256 of them in its local queue and moves the rest to a
//! shared global queue that it checks only now and then, so some sessions wait
//! much longer than others. Per-core current-thread runtimes keep one FIFO
//! queue each, and every woken session is served in turn. Measured with 1,000
//! subscribers at 2,500 msg/s on one core: p99 15-18 ms instead of 52-68 ms
//! (docs/benchmarks.md).
//!
//! A session stays on the runtime that accepted it; the hub, outboxes and
//! metrics are shared and thread-safe, so a publish on one runtime wakes
//! sessions on all of them. The broker's tasks run on these runtimes too
//! (see `broker::lanes`), never on the thread that accepts.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpStream;
use tokio::runtime::Handle;

/// Where accepted connections are served. See the module docs.
#[derive(Debug)]
pub struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

impl Workers {
    /// Serves connections on the caller's runtime (tests, embedding).
    pub fn current() -> Self {
        Self {
            handles: Vec::new(),
            next: AtomicUsize::new(0),
        }
    }

    /// Starts `count` runtimes (0: one per available core), each on its own thread.
    pub fn start(count: usize) -> std::io::Result<Self> {
        let count = match count {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let mut handles = Vec::with_capacity(count);
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            std::thread::Builder::new()
                .name(format!("ferrygate-worker-{index}"))
                // The runtime lives as long as the process; sessions still
                // open when `main` returns end with it.
                .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
        }
        Ok(Self {
            handles,
            next: AtomicUsize::new(0),
        })
    }

    /// How many runtimes serve connections (0 means the caller's runtime).
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether connections are served on the caller's runtime.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// The worker runtimes, in order (empty: the caller's runtime serves).
    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }

    /// Serves `stream` with `serve` on the next runtime.
    pub fn spawn<F, Fut>(&self, stream: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if self.handles.is_empty() {
            tokio::spawn(serve(stream));
            return;
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        // A socket is registered with one runtime's reactor: move it over as
        // a plain std socket and register it again where it will be polled.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "cannot hand an accepted socket to a worker");
                return;
            }
        };
        self.handles[index].spawn(async move {
            match TcpStream::from_std(stream) {
                Ok(stream) => serve(stream).await,
                Err(e) => tracing::warn!(error = %e, "cannot register an accepted socket"),
            }
        });
    }
}
