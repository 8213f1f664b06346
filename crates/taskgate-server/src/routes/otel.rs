//! The OTLP/HTTP sinks task processes export to: traces, logs and metrics, as JSON or
//! protobuf. Log records that name a run become that run's log view and spans that name a run
//! join its trace; metrics are accepted and counted (answering is what keeps the worker from
//! waiting on its exporter).
//!
//! Exporters send no credentials, so the endpoint a worker is given carries one:
//! `<public url>/otel/<environment id>.<mac>`, the mac an HMAC of the environment id under the
//! server's session secret. Records are stored only under a valid credential, and only for
//! runs of that environment; the plain `/otel/v1/*` paths answer but store nothing.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use serde_json::{json, Value};
use taskgate_engine::otlp::{json_logs, json_spans, proto, run_log, run_span};
use taskgate_store::{NewRunLog, NewRunSpan};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Largest export accepted.
pub const MAX_OTLP_BYTES: usize = 8 * 1024 * 1024;
/// `{}`: what OTLP/HTTP exporters expect on success.
fn accepted() -> Json<Value> {
    Json(json!({}))
}

fn is_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-protobuf"))
}

/// Logs under a credential: stored for the environment's runs.
#[utoipa::path(post, path = "/otel/{credential}/v1/logs", tag = "engine", security(()),
    params(("credential" = String, Path, description = "environment id and mac, as given to the worker")),
    request_body(content = Object, description = "OTLP ExportLogsServiceRequest, JSON or protobuf"),
    responses((status = 200, body = Object), (status = 400, body = taskgate_api::ErrorBody), (status = 401, body = taskgate_api::ErrorBody)))]
pub async fn export_logs(
    State(state): State<AppState>,
    Path(credential): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let env_id = state
        .engine
        .verify_otlp_credential(&credential)
        .ok_or_else(|| ApiError::unauthorized("Invalid OTLP endpoint credential"))?;
    let records = if is_protobuf(&headers) {
        proto::logs(&body)?
    } else {
        json_logs(&body)?
    };
    let logs: Vec<NewRunLog> = records.into_iter().filter_map(run_log).collect();
    let stored = state.store.append_run_logs(&env_id, &logs).await?;
    metrics::counter!("taskgate_otlp_log_records_total", "outcome" => "stored").increment(stored);
    metrics::counter!("taskgate_otlp_log_records_total", "outcome" => "dropped")
        .increment((logs.len() as u64).saturating_sub(stored));
    Ok(accepted())
}

/// Spans and metrics under a credential: spans naming a run of the environment are stored
/// for its trace; metrics are counted.
#[utoipa::path(post, path = "/otel/{credential}/v1/{signal}", tag = "engine", security(()),
    params(("credential" = String, Path), ("signal" = String, Path, description = "traces or metrics")),
    request_body(content = Object, description = "OTLP export request, JSON or protobuf"),
    responses((status = 200, body = Object), (status = 400, body = taskgate_api::ErrorBody), (status = 401, body = taskgate_api::ErrorBody),
              (status = 404, body = taskgate_api::ErrorBody)))]
pub async fn export_signal(
    State(state): State<AppState>,
    Path((credential, signal)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let env_id = state
        .engine
        .verify_otlp_credential(&credential)
        .ok_or_else(|| ApiError::unauthorized("Invalid OTLP endpoint credential"))?;
    count_signal(&signal)?;
    if signal == "traces" {
        let records = if is_protobuf(&headers) {
            proto::spans(&body)?
        } else {
            json_spans(&body)?
        };
        let spans: Vec<NewRunSpan> = records.into_iter().filter_map(run_span).collect();
        let stored = state.store.append_run_spans(&env_id, &spans).await?;
        metrics::counter!("taskgate_otlp_spans_total", "outcome" => "stored").increment(stored);
    }
    Ok(accepted())
}

/// The plain collector paths (`/otel/v1/{traces,logs,metrics}`): answered, nothing stored,
/// since nothing says whose the records are.
#[utoipa::path(post, path = "/otel/v1/{signal}", tag = "engine", security(()),
    params(("signal" = String, Path, description = "traces, logs or metrics")),
    responses((status = 200, body = Object), (status = 404, body = taskgate_api::ErrorBody)))]
pub async fn export_anonymous(Path(signal): Path<String>) -> ApiResult<Json<Value>> {
    count_signal(&signal)?;
    Ok(accepted())
}

fn count_signal(signal: &str) -> ApiResult<()> {
    let signal = match signal {
        "traces" => "traces",
        "metrics" => "metrics",
        "logs" => "logs",
        _ => return Err(ApiError::not_found("Not found")),
    };
    metrics::counter!("taskgate_otlp_exports_total", "signal" => signal).increment(1);
    Ok(())
}
