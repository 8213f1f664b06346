//! Accepting connections: HTTP/1.1 with the timeouts a server left running on the internet
//! needs, and a shutdown that ends streams at once, drains other requests within a deadline
//! and gives up on a second signal.
//!
//! Each connection is watched for two things while no request is in flight:
//! - a request's head must be complete within `--header-read-timeout-seconds` of its first
//!   byte (a client trickling headers is cut off);
//! - a connection with no request and no byte of the next for
//!   `--keepalive-timeout-seconds` is closed.
//!
//! Request bodies and whole requests have their own deadlines, applied in the router
//! ([`crate::deadline`]).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::Service;

use crate::state::AppState;

/// How often an idle connection is checked against its timeouts.
const IDLE_CHECK: Duration = Duration::from_millis(250);
/// Largest request head (request line and headers) a connection buffers; beyond it the
/// client gets 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// What a connection is doing, as its watchdog sees it.
struct Activity {
    in_flight: AtomicUsize,
    times: Mutex<Times>,
}

struct Times {
    /// When the last request ended (or the connection opened).
    last_end: Instant,
    /// When the first byte of the next request's head arrived, while none is in flight.
    head_started: Option<Instant>,
}

/// Why a connection's watchdog closes it.
enum Verdict {
    Keep,
    HeadTooSlow,
    Idle,
}

impl Activity {
    fn new() -> Self {
        Activity {
            in_flight: AtomicUsize::new(0),
            times: Mutex::new(Times {
                last_end: Instant::now(),
                head_started: None,
            }),
        }
    }

    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let mut t = self.times.lock();
            if t.head_started.is_none() {
                t.head_started = Some(Instant::now());
            }
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.times.lock().head_started = None;
    }

    fn verdict(&self, header_read: Duration, keepalive: Duration) -> Verdict {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Verdict::Keep;
        }
        let t = self.times.lock();
        match t.head_started {
            Some(at) if at.elapsed() >= header_read => Verdict::HeadTooSlow,
            Some(_) => Verdict::Keep,
            None if t.last_end.elapsed() >= keepalive => Verdict::Idle,
            None => Verdict::Keep,
        }
    }
}

/// Ends a request's span of activity on its connection when dropped (the response sent, or
/// the request abandoned).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.times.lock().last_end = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection's socket, telling its [`Activity`] when bytes arrive.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_read();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; then ends streams, stops accepting,
/// and waits up to `--shutdown-timeout-seconds` for requests in flight. `second` resolving
/// during that wait (a second Ctrl-C) ends it at once.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    state: AppState,
    shutdown: impl Future<Output = ()>,
    second: impl Future<Output = ()>,
) {
    let timeouts = state.config.server.timeouts;
    let (closing_tx, closing) = watch::channel(false);
    let open = Arc::new(AtomicUsize::new(0));
    let drained = Arc::new(tokio::sync::Notify::new());
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's own head timer would start while a connection waits for its next request,
    // making it an idle timeout too; the watchdog below times heads from their first byte.
    builder
        .header_read_timeout(None)
        .max_header_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let activity = Arc::new(Activity::new());
        let svc = {
            let activity = activity.clone();
            let app = app.clone();
            tower::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                activity.request_started();
                let guard = InFlight(activity.clone());
                let mut app = app.clone();
                // Where the request came from, for limits kept per client address.
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                async move {
                    let resp = app.call(req.map(axum::body::Body::new)).await;
                    drop(guard);
                    resp
                }
            })
        };
        let io = Watched {
            inner: stream,
            activity: activity.clone(),
        };
        let conn = builder
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(svc))
            .with_upgrades();
        let (mut closing, open, drained) = (closing.clone(), open.clone(), drained.clone());
        open.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            tokio::pin!(conn);
            let mut check = tokio::time::interval(IDLE_CHECK);
            let mut ending = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = check.tick(), if !ending => {
                        match activity.verdict(timeouts.header_read, timeouts.keepalive) {
                            Verdict::Keep => {}
                            Verdict::Idle => {
                                ending = true;
                                conn.as_mut().graceful_shutdown();
                            }
                            Verdict::HeadTooSlow => {
                                metrics::counter!("taskgate_connections_cut_total", "reason" => "header_read_timeout").increment(1);
                                tracing::debug!("closing a connection whose request head was not complete in time");
                                break;
                            }
                        }
                    }
                    _ = closing.changed(), if !ending => {
                        ending = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            if open.fetch_sub(1, Ordering::AcqRel) == 1 {
                drained.notify_waiters();
            }
        });
    }
    drop(listener);
    tracing::info!(
        connections = open.load(Ordering::Acquire),
        deadline_seconds = timeouts.shutdown.as_secs(),
        "shutting down: streams end now, other requests may finish until the deadline"
    );
    state.engine.shutdown().trigger();
    let _ = closing_tx.send(true);
    let all_closed = async {
        while open.load(Ordering::Acquire) > 0 {
            let notified = drained.notified();
            if open.load(Ordering::Acquire) == 0 {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    };
    tokio::select! {
        _ = all_closed => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(timeouts.shutdown) => tracing::warn!(
            connections = open.load(Ordering::Acquire),
            "the shutdown deadline passed with requests in flight; they are cut off"
        ),
        _ = second => tracing::warn!("second signal: exiting without waiting"),
    }
}

/// Never resolves: for `serve` callers with no second signal.
pub async fn never() {
    std::future::pending::<Infallible>().await;
}
