//! Run streams: the v1 SSE reader, input-stream sends and
//! the append a task uses to write an output stream. Chunks are stored, so they survive a
//! restart, and a reader that reconnects with its `Last-Event-ID` resumes after it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use taskgate_api::runs::StreamWriteResponse;
use taskgate_api::ErrorBody;
use taskgate_core::ids::{EnvironmentId, RunFriendlyId, RunId};
use taskgate_core::scope::Resource;
use taskgate_store::Run;

use crate::auth::extract::{ApiAuth, SecretKeyAuth};
use crate::error::{ApiError, ApiResult};
use crate::routes::runs::readable_run;
use crate::state::AppState;
use taskgate_engine::watchers::{stream_key, Watch};

/// Keep-alive comment interval (upstream: 10 s).
const PING_INTERVAL: Duration = Duration::from_secs(10);
/// Inactivity after which the stream closes when the client names no timeout.
const DEFAULT_TIMEOUT_SECONDS: u64 = 60;
const MAX_TIMEOUT_SECONDS: u64 = 600;
/// Chunks read per query.
const READ_BATCH: u32 = 100;
/// Largest chunk a task may append, and largest input-stream record (upstream: 1 MiB).
const MAX_CHUNK_BYTES: usize = 1024 * 1024;

/// Where a reader is: after line `line` of chunk `seq` (`line = usize::MAX`: the whole chunk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    seq: i64,
    line: usize,
}

fn parse_last_event_id(v: &str) -> Option<Position> {
    let (seq, line) = v.split_once('-')?;
    Some(Position {
        seq: seq.parse().ok()?,
        line: line.parse().ok()?,
    })
}

fn plain(status: StatusCode, message: &str) -> Response {
    (status, message.to_string()).into_response()
}

struct Reader {
    state: AppState,
    run_id: RunId,
    stream_id: String,
    position: Position,
    queue: VecDeque<Event>,
    watch: Watch,
    idle: Duration,
}

impl Reader {
    /// The next event, or `None` when the stream has been idle for the timeout.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            // Mark the watch as seen before reading, so an append during the read wakes us.
            self.watch.rx.borrow_and_update();
            // A partly delivered chunk is read again; its delivered lines are skipped below.
            let after = if self.position.line == usize::MAX {
                self.position.seq
            } else {
                self.position.seq - 1
            };
            let chunks = match self
                .state
                .store
                .read_stream(&self.run_id, &self.stream_id, after, READ_BATCH)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "stream read failed; closing the stream");
                    return None;
                }
            };
            for c in chunks {
                for (i, line) in c.data.split('\n').enumerate() {
                    let seen = c.seq == self.position.seq && i <= self.position.line;
                    if seen || line.is_empty() {
                        continue;
                    }
                    self.queue
                        .push_back(Event::default().id(format!("{}-{i}", c.seq)).data(line));
                }
                self.position = Position {
                    seq: c.seq,
                    line: usize::MAX,
                };
            }
            if !self.queue.is_empty() {
                continue;
            }
            tokio::select! {
                changed = tokio::time::timeout(self.idle, self.watch.rx.changed()) => match changed {
                    Ok(Ok(())) => continue,
                    _ => return None,
                },
                // The server is stopping: end the stream; the client resumes from its last
                // event id.
                _ = self.state.engine.shutdown().wait() => return None,
            }
        }
    }
}

/// Reads a run's output stream as server-sent events.
#[utoipa::path(get, path = "/realtime/v1/streams/{runId}/{streamId}", tag = "realtime", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("runId" = String, Path), ("streamId" = String, Path), ("Timeout-Seconds" = Option<u64>, Header), ("Last-Event-ID" = Option<String>, Header)),
    responses((status = 200, content_type = "text/event-stream", description = "one event per line of each chunk"), (status = 400, description = "bad Timeout-Seconds"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn read_stream(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path((run_id, stream_id)): Path<(RunFriendlyId, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let idle = match headers
        .get("timeout-seconds")
        .map(|v| v.to_str().unwrap_or("").trim().parse::<u64>())
    {
        None => DEFAULT_TIMEOUT_SECONDS,
        Some(Ok(n)) if (1..=MAX_TIMEOUT_SECONDS).contains(&n) => n,
        Some(_) => {
            return Ok(plain(
                StatusCode::BAD_REQUEST,
                "Timeout-Seconds must be a number from 1 to 600",
            ))
        }
    };
    let run = readable_run(&state, &principal, &run_id).await?;
    let mut position = Position {
        seq: 0,
        line: usize::MAX,
    };
    if let Some(p) = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_last_event_id)
    {
        position = p;
    } else if headers
        .get("x-trigger-stream-start")
        .and_then(|v| v.to_str().ok())
        == Some("latest")
    {
        let existing = state
            .store
            .read_stream(&run.id, &stream_id, 0, u32::MAX)
            .await?;
        position.seq = existing.last().map(|c| c.seq).unwrap_or(0);
    }
    let watch = state
        .engine
        .watchers()
        .watch(stream_key(&run.id, &stream_id));
    let reader = Reader {
        state,
        run_id: run.id.clone(),
        stream_id,
        position,
        queue: VecDeque::new(),
        watch,
        idle: Duration::from_secs(idle),
    };
    let events = futures::stream::unfold(reader, |mut r| async move {
        r.next().await.map(|e| (Ok::<_, Infallible>(e), r))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(PING_INTERVAL).text("ping"))
        .into_response())
}

async fn writable_run(
    state: &AppState,
    env_id: &EnvironmentId,
    run_id: &RunFriendlyId,
) -> Result<Run, Response> {
    match state.store.get_run(env_id, run_id).await {
        Ok(Some(run)) => Ok(run),
        Ok(None) => Err((
            StatusCode::NOT_FOUND,
            Json(StreamWriteResponse {
                ok: false,
                error: Some("Run not found".into()),
                message: None,
            }),
        )
            .into_response()),
        Err(e) => Err(ApiError::from(e).into_response()),
    }
}

/// Sends a record to a run's input stream: `{"data": any}`.
#[utoipa::path(post, path = "/realtime/v1/streams/{runId}/input/{streamId}", tag = "realtime", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("runId" = String, Path), ("streamId" = String, Path)), request_body(content = Object, description = "{\"data\": any}"),
    responses((status = 200, body = StreamWriteResponse), (status = 400, body = StreamWriteResponse), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = StreamWriteResponse)))]
pub async fn send_input_stream(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path((run_id, stream_id)): Path<(RunFriendlyId, String)>,
    body: Bytes,
) -> Response {
    if let Err(e) = principal.authorize("write", &[Resource::with_id("inputStreams", &run_id)]) {
        return crate::error::ApiError::from(e).into_response();
    }
    let bad = || {
        (
            StatusCode::BAD_REQUEST,
            Json(StreamWriteResponse {
                ok: false,
                error: Some("Invalid request body".into()),
                message: None,
            }),
        )
            .into_response()
    };
    if body.len() > MAX_CHUNK_BYTES {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(StreamWriteResponse {
                ok: false,
                error: Some("Request body too large".into()),
                message: None,
            }),
        )
            .into_response();
    }
    let data = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(mut o)) if o.contains_key("data") => {
            o.remove("data").unwrap_or(Value::Null)
        }
        _ => return bad(),
    };
    let run = match writable_run(&state, &principal.env.environment.id, &run_id).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if run.status.is_final() {
        return (
            StatusCode::BAD_REQUEST,
            Json(StreamWriteResponse {
                ok: false,
                error: Some("Cannot send to input stream on a completed run".into()),
                message: None,
            }),
        )
            .into_response();
    }
    let record = json!({ "data": data }).to_string();
    match state
        .store
        .append_stream_chunk(
            &run.id,
            &format!("$trigger.input:{stream_id}"),
            &record,
            state.now(),
        )
        .await
    {
        Ok(_) => Json(StreamWriteResponse::stored()).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Appends one part to a run's output stream (what a task's `streams.append` sends). `target`
/// is `self`, `parent` or `root`; taskgate runs have no parents, so all three name the run.
#[utoipa::path(post, path = "/realtime/v1/streams/{runId}/{target}/{streamId}/append", tag = "realtime", security(("secretKey" = [])),
    params(("runId" = String, Path), ("target" = String, Path, description = "self, parent or root"), ("streamId" = String, Path)),
    request_body(content = String, description = "the part, as text"),
    responses((status = 200, body = StreamWriteResponse), (status = 400, body = StreamWriteResponse), (status = 401, body = ErrorBody), (status = 404, body = StreamWriteResponse)))]
pub async fn append_to_stream(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path((run_id, target, stream_id)): Path<(RunFriendlyId, String, String)>,
    body: Bytes,
) -> Response {
    if !matches!(target.as_str(), "self" | "parent" | "root") {
        return (
            StatusCode::BAD_REQUEST,
            Json(StreamWriteResponse {
                ok: false,
                error: None,
                message: Some("target must be self, parent or root".into()),
            }),
        )
            .into_response();
    }
    if body.len() > MAX_CHUNK_BYTES {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(StreamWriteResponse {
                ok: false,
                error: None,
                message: Some("Request body too large".into()),
            }),
        )
            .into_response();
    }
    let Ok(part) = std::str::from_utf8(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(StreamWriteResponse {
                ok: false,
                error: None,
                message: Some("Stream parts must be UTF-8 text".into()),
            }),
        )
            .into_response();
    };
    let run = match writable_run(&state, &principal.env.environment.id, &run_id).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if run.status.is_final() {
        return (
            StatusCode::BAD_REQUEST,
            Json(StreamWriteResponse {
                ok: false,
                error: None,
                message: Some("Cannot append to a stream of a completed run".into()),
            }),
        )
            .into_response();
    }
    match state
        .store
        .append_stream_chunk(&run.id, &stream_id, part, state.now())
        .await
    {
        Ok(_) => Json(StreamWriteResponse::stored()).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_ids_parse() {
        assert_eq!(
            parse_last_event_id("3-1"),
            Some(Position { seq: 3, line: 1 })
        );
        assert_eq!(parse_last_event_id("x"), None);
        assert_eq!(parse_last_event_id("1-x"), None);
    }
}
