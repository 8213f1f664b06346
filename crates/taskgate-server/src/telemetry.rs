//! Logging and metrics: `tracing` with JSON or pretty output (`TASKGATE_LOG_FORMAT`,
//! `RUST_LOG`), a request span carrying the matched route, and Prometheus counters.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{header, Method, StatusCode};
use axum::response::IntoResponse;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `json` (default when not a terminal) or `pretty`.
pub fn init_logging() -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) => EnvFilter::try_new(&spec)
            .map_err(|e| anyhow::anyhow!("RUST_LOG: {spec:?} is not a log filter: {e}"))?,
        Err(_) => EnvFilter::new("info"),
    };
    let format = std::env::var("TASKGATE_LOG_FORMAT").unwrap_or_else(|_| "pretty".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = match format.as_str() {
        "json" => builder.json().flatten_event(true).try_init(),
        "pretty" => builder.fmt_fields(escaped_fields()).try_init(),
        other => anyhow::bail!("TASKGATE_LOG_FORMAT: expected pretty or json, got {other:?}"),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
    Ok(())
}

/// Logs a panic as one error line (where, and its message cut and escaped), instead of the
/// default hook's stderr dump and backtrace; the request that panicked is answered 500 by
/// [`panic_response`].
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        metrics::counter!("taskgate_panics_total").increment(1);
        tracing::error!(
            panic = %loggable(&message, MAX_LOGGED_FIELD),
            location = %location,
            "panic (a request being served when it happened was answered 500)"
        );
    }));
}

/// What a request whose handler panicked is answered: a plain 500.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    crate::error::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        .into_response()
}

/// Longest field value a log line carries; the rest is cut and counted.
const MAX_LOGGED_FIELD: usize = 256;
/// Longest message a log line carries.
const MAX_LOGGED_MESSAGE: usize = 1024;

/// The pretty format's field writer: every value is cut to a bounded length and has control
/// and bidirectional-override characters escaped, so a client-chosen value (a task id with a
/// newline, a 5,000-character name) can neither forge a line nor flood one. The JSON format
/// escapes by construction; values that reach it are bounded where they are accepted.
fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = format!("{value:?}");
        if field.name() == "message" {
            write!(w, "{}", loggable(&text, MAX_LOGGED_MESSAGE))
        } else {
            write!(w, "{field}={}", loggable(&text, MAX_LOGGED_FIELD))
        }
    })
    .delimited(" ")
}

/// `text` with control and bidi-override characters escaped, cut after `max` characters.
pub fn loggable(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    let risky =
        |c: char| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    let long = text.chars().nth(max).is_some();
    if !long && !text.chars().any(risky) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max * 2) + 32);
    for c in text.chars().take(max) {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if risky(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    if long {
        let rest = text.chars().count() - max;
        out.push_str(&format!("…({rest} more characters)"));
    }
    std::borrow::Cow::Owned(out)
}

/// Installs the Prometheus recorder once per process; later calls get the same handle.
pub fn init_metrics() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .ok()?
                // A dequeue's wake is sub-millisecond when all is well: finer buckets there.
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(
                        "taskgate_dequeue_wake_seconds".into(),
                    ),
                    &[
                        0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005,
                        0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25,
                    ],
                )
                .ok()?
                // The same fine buckets for a worker's run:notify after a commit.
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(
                        "taskgate_run_notify_seconds".into(),
                    ),
                    &[
                        0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005,
                        0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25,
                    ],
                )
                .ok()?
                .install_recorder()
                .ok()?;
            Some(handle)
        })
        .clone()
}

/// What the credential extractors learn about the caller, for the access log: filled in while
/// the handler runs, read when the response goes out.
#[derive(Default)]
pub struct RequestLog {
    credential: parking_lot::Mutex<Option<(&'static str, String)>>,
}

impl RequestLog {
    /// Records the credential that authenticated the request: its kind and an id that names
    /// it without revealing it (an environment, a token's id).
    pub fn note_credential(parts: &axum::http::request::Parts, kind: &'static str, id: &str) {
        if let Some(log) = parts.extensions.get::<Arc<RequestLog>>() {
            *log.credential.lock() = Some((kind, id.to_string()));
        }
    }
}

/// The method as a metric label and log field: the standard methods by name, anything else
/// (a client can send any token as a method) as `OTHER`, so labels stay bounded.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Every response, matched or not: `taskgate_http_requests_total` and
/// `taskgate_http_request_duration_seconds` by method, route template (never the raw path,
/// which holds ids; `unmatched` for anything no route serves) and status, and one access-log
/// line at info with the latency and, once authenticated, the credential's kind and id.
///
/// A [`tower::Layer`] rather than a `from_fn` middleware, so that a request does not pay for
/// boxing the route and its future once more.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrackRequestsLayer;

impl<S> tower::Layer<S> for TrackRequestsLayer {
    type Service = TrackRequests<S>;

    fn layer(&self, inner: S) -> TrackRequests<S> {
        TrackRequests { inner }
    }
}

/// The service of [`TrackRequestsLayer`].
#[derive(Clone, Debug)]
pub struct TrackRequests<S> {
    inner: S,
}

impl<S, B> tower::Service<Request> for TrackRequests<S>
where
    S: tower::Service<Request, Response = axum::http::Response<B>>,
{
    type Response = axum::http::Response<B>;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let start = Instant::now();
        let route = req.extensions().get::<MatchedPath>().cloned();
        let method = method_label(req.method());
        let log = Arc::new(RequestLog::default());
        req.extensions_mut().insert(log.clone());
        let route_label = route.as_ref().map_or("unmatched", MatchedPath::as_str);
        // An unmatched request's path (never its query, which may carry credentials) is what
        // an operator needs to tell a client's mistake from a route taskgate lacks.
        let unmatched_path = route.is_none().then(|| truncate_path(req.uri().path()));
        let span = tracing::info_span!("request", http.method = method, http.route = %route_label, http.status = tracing::field::Empty);
        TrackedFuture {
            inner: self.inner.call(req).instrument(span),
            route,
            unmatched_path,
            method,
            log,
            start,
        }
    }
}

pin_project_lite::pin_project! {
    /// The route's answer, counted and logged when it is ready.
    pub struct TrackedFuture<F> {
        #[pin]
        inner: tracing::instrument::Instrumented<F>,
        route: Option<MatchedPath>,
        unmatched_path: Option<String>,
        method: &'static str,
        log: Arc<RequestLog>,
        start: Instant,
    }
}

impl<F, B, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<axum::http::Response<B>, E>>,
{
    type Output = Result<axum::http::Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let result = ready!(this.inner.as_mut().poll(cx));
        let Ok(resp) = &result else {
            return Poll::Ready(result);
        };
        let span = this.inner.span();
        let route = this.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        let method = *this.method;
        let status = resp.status().as_u16();
        span.record("http.status", status);
        let elapsed = this.start.elapsed();
        let credential = this.log.credential.lock().take();
        let (kind, id) = match &credential {
            Some((kind, id)) => (*kind, id.as_str()),
            None => ("none", ""),
        };
        match this.unmatched_path {
            None => tracing::info!(
                parent: span,
                http.method = method,
                http.route = %route,
                http.status = status,
                latency_ms = elapsed.as_secs_f64() * 1000.0,
                credential.kind = kind,
                credential.id = id,
                "request"
            ),
            Some(path) => tracing::info!(
                parent: span,
                http.method = method,
                http.route = %route,
                http.path = %path,
                http.status = status,
                latency_ms = elapsed.as_secs_f64() * 1000.0,
                credential.kind = kind,
                credential.id = id,
                "request"
            ),
        }
        RequestMetrics::with(method, route, status, |m| {
            m.count.increment(1);
            m.duration.record(elapsed.as_secs_f64());
        });
        Poll::Ready(result)
    }
}

/// Longest unmatched path logged, in bytes (cut at a character boundary).
const MAX_LOGGED_PATH: usize = 256;

fn truncate_path(path: &str) -> String {
    let mut end = path.len().min(MAX_LOGGED_PATH);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    path[..end].to_string()
}

/// The two metrics of one method, route and status.
///
/// Each thread looks them up in the recorder once and keeps them: building a metric's key
/// (its labels allocated) and finding it in the recorder's registry cost more than the rest
/// of a request's bookkeeping. The set is bounded: the method is one of eight labels, the
/// route a template or `unmatched`, the status one of those the server answers.
struct RequestMetrics {
    count: metrics::Counter,
    duration: metrics::Histogram,
}

/// Per route template: the metrics of each (method, status) it has answered.
type MetricsByRoute = std::collections::HashMap<
    Box<str>,
    Vec<(&'static str, u16, RequestMetrics)>,
    foldhash::fast::RandomState,
>;

thread_local! {
    static REQUEST_METRICS: std::cell::RefCell<MetricsByRoute> = Default::default();
}

impl RequestMetrics {
    fn new(method: &'static str, route: &str, status: u16) -> Self {
        let route = route.to_string();
        let status = status.to_string();
        RequestMetrics {
            count: metrics::counter!("taskgate_http_requests_total", "method" => method, "route" => route.clone(), "status" => status.clone()),
            duration: metrics::histogram!("taskgate_http_request_duration_seconds", "method" => method, "route" => route, "status" => status),
        }
    }

    fn with(method: &'static str, route: &str, status: u16, f: impl FnOnce(&RequestMetrics)) {
        REQUEST_METRICS.with_borrow_mut(|by_route| {
            // The common case, one lookup: this thread has used these handles before.
            let known = by_route
                .get(route)
                .and_then(|known| known.iter().find(|(m, s, _)| *m == method && *s == status));
            if let Some((_, _, metrics)) = known {
                return f(metrics);
            }
            let metrics = RequestMetrics::new(method, route, status);
            f(&metrics);
            by_route
                .entry(route.into())
                .or_default()
                .push((method, status, metrics));
        });
    }
}

/// Gives a 405 the JSON error body every other refusal has, naming the allowed methods.
pub fn json_method_not_allowed(resp: Response) -> Response {
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
        method_not_allowed(resp)
    } else {
        resp
    }
}

/// A 405 with `{"error": "Method Not Allowed: use …", "allowed": [...]}` from its `Allow`
/// header.
fn method_not_allowed(resp: Response) -> Response {
    let allowed: Vec<String> = resp
        .headers()
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let message = if allowed.is_empty() {
        "Method Not Allowed".to_string()
    } else {
        format!("Method Not Allowed: use {}", allowed.join(", "))
    };
    let mut out = crate::error::ApiError::new(StatusCode::METHOD_NOT_ALLOWED, message)
        .with("allowed", allowed)
        .into_response();
    if let Some(allow) = resp.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::loggable;

    #[test]
    fn control_characters_cannot_forge_a_line() {
        let forged = "t\nINFO taskgate: admin token rotated\r\u{1b}[2J";
        let out = loggable(forged, 256);
        assert!(!out.contains('\n') && !out.contains('\r') && !out.contains('\u{1b}'));
        assert_eq!(out, "t\\nINFO taskgate: admin token rotated\\r\\u{1b}[2J");
    }

    #[test]
    fn bidi_overrides_are_escaped() {
        assert_eq!(loggable("a\u{202E}b", 10), "a\\u{202e}b");
    }

    #[test]
    fn long_values_are_cut_and_counted() {
        let id = "x".repeat(5000);
        let out = loggable(&id, 256);
        assert_eq!(out, format!("{}…(4744 more characters)", "x".repeat(256)));
    }

    /// The pretty format as installed: a forged newline in a field stays on the event's line.
    #[test]
    fn the_pretty_format_writes_one_line_per_event() {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(super::escaped_fields())
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let task = "t\n2026-01-01T00:00:00Z  INFO taskgate: admin logged in";
            tracing::info!(task = %task, debug = ?task, "run triggered");
        });
        let out = String::from_utf8(buffer.0.lock().clone()).unwrap_or_default();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains(r"task=t\n2026"), "{out}");
    }

    #[test]
    fn plain_values_are_untouched() {
        assert!(matches!(
            loggable("run_1234", 256),
            std::borrow::Cow::Borrowed("run_1234")
        ));
    }
}
