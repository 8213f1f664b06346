//! Logging and metrics: `tracing` with JSON or pretty output (`TASKGATE_LOG_FORMAT`,
//! `RUST_LOG`), a request span carrying the matched route, and Prometheus counters.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `json` (default when not a terminal) or `pretty`.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let format = std::env::var("TASKGATE_LOG_FORMAT").unwrap_or_else(|_| "pretty".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = if format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
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
pub async fn track_requests(mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = method_label(req.method());
    let log = Arc::new(RequestLog::default());
    req.extensions_mut().insert(log.clone());
    let span = tracing::info_span!("request", http.method = method, http.route = %route, http.status = tracing::field::Empty);
    let start = Instant::now();
    let resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    span.record("http.status", status);
    let elapsed = start.elapsed();
    let credential = log.credential.lock().take();
    let (kind, id) = match &credential {
        Some((kind, id)) => (*kind, id.as_str()),
        None => ("none", ""),
    };
    tracing::info!(
        parent: &span,
        http.method = method,
        http.route = %route,
        http.status = status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        credential.kind = kind,
        credential.id = id,
        "request"
    );
    let status = status.to_string();
    metrics::counter!("taskgate_http_requests_total", "method" => method, "route" => route.clone(), "status" => status.clone()).increment(1);
    metrics::histogram!("taskgate_http_request_duration_seconds", "method" => method, "route" => route, "status" => status).record(elapsed.as_secs_f64());
    resp
}

/// Gives a 405 the JSON error body every other refusal has, naming the allowed methods.
pub async fn json_method_not_allowed(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
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
