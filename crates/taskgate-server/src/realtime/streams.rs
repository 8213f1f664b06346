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
use taskgate_engine::watchers::{run_key, stream_key, Watch};

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
    /// The run's changes: the stream ends once the run has finished and everything written
    /// before is read.
    run_watch: Watch,
    environment_id: EnvironmentId,
    run_friendly_id: RunFriendlyId,
    drained_after_finish: bool,
    idle: Duration,
    /// Records in S2's SSE form (a run's input-stream tail, which the SDK reads only so), not
    /// one event per line.
    v2: bool,
}

impl Reader {
    /// Whether the run has finished (marking the run's watch as seen first, so a change
    /// after this read wakes the reader).
    async fn run_finished(&mut self) -> bool {
        self.run_watch.rx.borrow_and_update();
        match self
            .state
            .store
            .get_run(&self.environment_id, &self.run_friendly_id)
            .await
        {
            Ok(Some(run)) => run.status.is_final(),
            Ok(None) => true,
            Err(e) => {
                tracing::warn!(error = %e, "stream reader could not read its run; it keeps reading");
                false
            }
        }
    }

    /// The next event, or `None` when the stream has been idle for the timeout or its run
    /// has finished and everything it wrote is read.
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
                if self.v2 {
                    // S2 numbers a stream's records from 0.
                    let record = json!({ "records": [{
                        "seq_num": c.seq - 1, "body": c.data,
                        "timestamp": taskgate_core::time::to_millis(c.created_at), "headers": [],
                    }] });
                    self.queue.push_back(
                        Event::default()
                            .event("batch")
                            .id((c.seq - 1).to_string())
                            .data(record.to_string()),
                    );
                    self.position = Position {
                        seq: c.seq,
                        line: usize::MAX,
                    };
                    continue;
                }
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
            // Nothing new. A run that has finished writes no more: once a read after seeing
            // it finished finds nothing either, the stream ends (rather than idling out).
            if self.run_finished().await {
                if self.drained_after_finish {
                    return None;
                }
                self.drained_after_finish = true;
                continue;
            }
            tokio::select! {
                changed = tokio::time::timeout(self.idle, self.watch.rx.changed()) => match changed {
                    Ok(Ok(())) => continue,
                    _ => return None,
                },
                Ok(()) = self.run_watch.rx.changed() => continue,
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
    open_stream(state, &principal, &run_id, stream_id, &headers, false).await
}

/// The task side of a run's input stream (`inputStream.on()`, `.once()`, `.peek()`): its
/// records as S2's SSE batches (`X-Stream-Version: v2`), each record's body the
/// `{"data": …}` that was sent, numbered from 0; `Last-Event-ID` is the last number seen.
/// It ends when the run finishes.
#[utoipa::path(get, path = "/realtime/v1/streams/{runId}/input/{streamId}", tag = "realtime", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("runId" = String, Path), ("streamId" = String, Path), ("Timeout-Seconds" = Option<u64>, Header), ("Last-Event-ID" = Option<String>, Header)),
    responses((status = 200, content_type = "text/event-stream", description = "`batch` events of `{records: [{seq_num, body, timestamp, headers}]}`"),
              (status = 400, description = "bad Timeout-Seconds"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn read_input_stream(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path((run_id, stream_id)): Path<(RunFriendlyId, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = format!("$trigger.input:{stream_id}");
    let mut resp = open_stream(state, &principal, &run_id, key, &headers, true).await?;
    if resp.status() == StatusCode::OK {
        resp.headers_mut().insert(
            "x-stream-version",
            axum::http::HeaderValue::from_static("v2"),
        );
    }
    Ok(resp)
}

async fn open_stream(
    state: AppState,
    principal: &taskgate_auth::EnvPrincipal,
    run_id: &RunFriendlyId,
    stream_id: String,
    headers: &HeaderMap,
    v2: bool,
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
    let run = readable_run(&state, principal, run_id).await?;
    let mut position = Position {
        seq: 0,
        line: usize::MAX,
    };
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    if let Some(p) = last_event_id.and_then(|v| {
        if v2 {
            v.trim().parse::<i64>().ok().map(|n| Position {
                seq: n.saturating_add(1),
                line: usize::MAX,
            })
        } else {
            parse_last_event_id(v)
        }
    }) {
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
    let run_watch = state.engine.watchers().watch(run_key(&run.id));
    let reader = Reader {
        state,
        run_id: run.id.clone(),
        stream_id,
        position,
        queue: VecDeque::new(),
        watch,
        run_watch,
        environment_id: run.environment_id.clone(),
        run_friendly_id: run.friendly_id.clone(),
        drained_after_finish: false,
        idle: Duration::from_secs(idle),
        v2,
    };
    let events = futures::stream::unfold(reader, |mut r| async move {
        r.next().await.map(|e| (Ok::<_, Infallible>(e), r))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(PING_INTERVAL).text("ping"))
        .into_response())
}

fn write_refusal(status: StatusCode, error: Option<&str>, message: Option<&str>) -> Response {
    (
        status,
        Json(StreamWriteResponse {
            ok: false,
            error: error.map(str::to_string),
            message: message.map(str::to_string),
        }),
    )
        .into_response()
}

/// Ancestors followed at most to find a run's root (trees are far shallower).
const MAX_TREE_DEPTH: usize = 64;

/// The run a task writes to: `self` (the run), `parent` (the run that triggered it) or `root`
/// (the first run of its tree); 404 when the run has no such run, as upstream.
async fn writable_run(
    state: &AppState,
    env_id: &EnvironmentId,
    run_id: &RunFriendlyId,
    target: &str,
) -> Result<Run, Response> {
    if !matches!(target, "self" | "parent" | "root") {
        return Err(write_refusal(
            StatusCode::BAD_REQUEST,
            None,
            Some("target must be self, parent or root"),
        ));
    }
    let run = match state.store.get_run(env_id, run_id).await {
        Ok(Some(run)) => run,
        Ok(None) => {
            return Err(write_refusal(
                StatusCode::NOT_FOUND,
                Some("Run not found"),
                None,
            ))
        }
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    let no_target = || write_refusal(StatusCode::NOT_FOUND, Some("Target not found"), None);
    let parent_of = |run: Run| async move {
        match &run.parent_run_id {
            None => Ok(None),
            Some(id) => state
                .store
                .run_by_id(env_id, id)
                .await
                .map_err(|e| ApiError::from(e).into_response()),
        }
    };
    match target {
        "self" => Ok(run),
        "parent" => parent_of(run).await?.ok_or_else(no_target),
        _ => {
            let mut current = parent_of(run).await?.ok_or_else(no_target)?;
            for _ in 0..MAX_TREE_DEPTH {
                if current.parent_run_id.is_none() {
                    return Ok(current);
                }
                match parent_of(current.clone()).await? {
                    Some(up) => current = up,
                    None => return Ok(current),
                }
            }
            Ok(current)
        }
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
    let run = match writable_run(&state, &principal.env.environment.id, &run_id, "self").await {
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
    if let Err(e) = state
        .store
        .append_stream_chunk(
            &run.id,
            &format!("$trigger.input:{stream_id}"),
            &record,
            state.now(),
        )
        .await
    {
        return ApiError::from(e).into_response();
    }
    // A run waiting for this stream (`inputStream.wait()`) continues with the record.
    match state
        .engine
        .input_stream_record_sent(&run.id, &stream_id, &data)
        .await
    {
        Ok(_) => Json(StreamWriteResponse::stored()).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Appends one part to a run's output stream (what a task's `streams.append` sends). `target`
/// is `self`, `parent` (the run that triggered it) or `root` (the first run of its tree).
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
    let run = match writable_run(&state, &principal.env.environment.id, &run_id, &target).await {
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

/// Longest a streaming writer's request may be, in bytes (its lines are stored as they come).
const MAX_INGEST_BYTES: usize = 128 * 1024 * 1024;
/// A streaming writer's lines are stored together once this many have come…
const INGEST_BATCH_LINES: usize = 500;
/// …or this many bytes…
const INGEST_BATCH_BYTES: usize = 256 * 1024;
/// …or the first of them has waited this long, so readers see a slow writer's lines promptly.
const INGEST_FLUSH: Duration = Duration::from_millis(50);
/// Longest `X-Client-Id`.
const MAX_CLIENT_ID_BYTES: usize = 128;

/// Creates a run's output stream before a task pipes to it (`streams.pipe`, `streams.writer`,
/// `metadata.stream`, a defined stream's `.pipe()`). The answer `{"version":"v1"}` without
/// S2 credentials sends the SDK to its streaming writer over this same URL (`POST`), and
/// readers read it as every other stream.
#[utoipa::path(put, path = "/realtime/v1/streams/{runId}/{target}/{streamId}", tag = "realtime", security(("secretKey" = [])),
    params(("runId" = String, Path), ("target" = String, Path, description = "self, parent or root"), ("streamId" = String, Path)),
    responses((status = 200, body = Object, description = "{\"version\": \"v1\"}"), (status = 400, body = StreamWriteResponse),
              (status = 401, body = ErrorBody), (status = 404, body = StreamWriteResponse)))]
pub async fn create_stream(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path((run_id, target, _stream_id)): Path<(RunFriendlyId, String, String)>,
) -> Response {
    match writable_run(&state, &principal.env.environment.id, &run_id, &target).await {
        Ok(_) => Json(json!({ "version": "v1" })).into_response(),
        Err(resp) => resp,
    }
}

/// Where a streaming writer of the stream got to: `X-Last-Chunk-Index` (absent before its
/// first line), which it resumes after when its connection drops.
#[utoipa::path(head, path = "/realtime/v1/streams/{runId}/{target}/{streamId}", tag = "realtime", security(("secretKey" = [])),
    params(("runId" = String, Path), ("target" = String, Path), ("streamId" = String, Path), ("X-Client-Id" = String, Header)),
    responses((status = 200, description = "`X-Last-Chunk-Index` when the writer has sent lines"), (status = 400, description = "target is not self, parent or root"),
              (status = 401, body = ErrorBody), (status = 404, description = "no such run or target")))]
pub async fn probe_stream(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path((run_id, target, stream_id)): Path<(RunFriendlyId, String, String)>,
    headers: HeaderMap,
) -> Response {
    let run = match writable_run(&state, &principal.env.environment.id, &run_id, &target).await {
        Ok(r) => r,
        Err(resp) => return resp.status().into_response(),
    };
    let Some(client) = client_id(&headers) else {
        return StatusCode::OK.into_response();
    };
    match state
        .store
        .stream_writer_index(&run.id, &stream_id, &client)
        .await
    {
        Ok(Some(last)) => {
            (StatusCode::OK, [("x-last-chunk-index", last.to_string())]).into_response()
        }
        Ok(None) => StatusCode::OK.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn client_id(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("x-client-id")?.to_str().ok()?.trim();
    (!v.is_empty() && v.len() <= MAX_CLIENT_ID_BYTES).then(|| v.to_string())
}

/// A task's streaming writer: the body is one JSON value per line, line `n` of the request
/// being chunk `X-Resume-From-Chunk + n` of this writer (`X-Client-Id`). Lines are stored in
/// batches as they arrive (readers see them at once); lines the writer had sent before it
/// resumed are left out. Each line is at most 1 MiB, a request at most 128 MiB.
#[utoipa::path(post, path = "/realtime/v1/streams/{runId}/{target}/{streamId}", tag = "realtime", security(("secretKey" = [])),
    params(("runId" = String, Path), ("target" = String, Path, description = "self, parent or root"), ("streamId" = String, Path),
           ("X-Client-Id" = Option<String>, Header), ("X-Resume-From-Chunk" = Option<i64>, Header)),
    request_body(content = String, content_type = "application/json", description = "newline-delimited JSON, streamed"),
    responses((status = 200, body = StreamWriteResponse), (status = 400, body = StreamWriteResponse), (status = 401, body = ErrorBody),
              (status = 404, body = StreamWriteResponse), (status = 413, body = StreamWriteResponse)))]
pub async fn ingest_stream(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Path((run_id, target, stream_id)): Path<(RunFriendlyId, String, String)>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let first = match headers
        .get("x-resume-from-chunk")
        .map(|v| v.to_str().unwrap_or("").trim().parse::<i64>())
    {
        None => 0,
        Some(Ok(n)) if (0..1 << 40).contains(&n) => n,
        Some(_) => {
            return write_refusal(
                StatusCode::BAD_REQUEST,
                None,
                Some("X-Resume-From-Chunk must be a chunk index from 0"),
            )
        }
    };
    let run = match writable_run(&state, &principal.env.environment.id, &run_id, &target).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if run.status.is_final() {
        return write_refusal(
            StatusCode::BAD_REQUEST,
            None,
            Some("Cannot write to a stream of a completed run"),
        );
    }
    // A writer that names itself can resume; one that does not gets an id of its own.
    let client = client_id(&headers).unwrap_or_else(taskgate_core::ids::new_id);
    let mut ingest = Ingest {
        state: &state,
        run: &run,
        stream_id: &stream_id,
        client: &client,
        next_index: first,
        pending: Vec::new(),
        pending_bytes: 0,
    };
    match ingest.run(body).await {
        Ok(()) => Json(StreamWriteResponse::stored()).into_response(),
        Err(resp) => resp,
    }
}

/// One streaming writer's request, being stored.
struct Ingest<'a> {
    state: &'a AppState,
    run: &'a Run,
    stream_id: &'a str,
    client: &'a str,
    /// The index of the first pending line.
    next_index: i64,
    pending: Vec<String>,
    pending_bytes: usize,
}

impl Ingest<'_> {
    async fn run(&mut self, body: axum::body::Body) -> Result<(), Response> {
        use futures::StreamExt;
        let mut frames = body.into_data_stream();
        let mut partial: Vec<u8> = Vec::new();
        let mut total = 0usize;
        let mut flush_at: Option<tokio::time::Instant> = None;
        loop {
            let next = match flush_at {
                Some(at) => match tokio::time::timeout_at(at, frames.next()).await {
                    Ok(frame) => frame,
                    Err(_) => {
                        self.flush().await?;
                        flush_at = None;
                        continue;
                    }
                },
                None => frames.next().await,
            };
            let Some(frame) = next else { break };
            let bytes = frame.map_err(|e| {
                write_refusal(
                    StatusCode::BAD_REQUEST,
                    None,
                    Some(&format!("Cannot read the stream: {e}")),
                )
            })?;
            total += bytes.len();
            if total > MAX_INGEST_BYTES {
                self.flush().await?;
                return Err(write_refusal(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    None,
                    Some("A streaming request may be at most 128 MiB; the writer resumes with a new one"),
                ));
            }
            partial.extend_from_slice(&bytes);
            while let Some(at) = partial.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = partial.drain(..=at).collect();
                self.push(&line[..line.len() - 1])
                    .map_err(|(status, m)| write_refusal(status, None, Some(m)))?;
            }
            if partial.len() > MAX_CHUNK_BYTES {
                self.flush().await?;
                return Err(write_refusal(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    None,
                    Some("A stream chunk may be at most 1 MiB"),
                ));
            }
            if self.pending.len() >= INGEST_BATCH_LINES || self.pending_bytes >= INGEST_BATCH_BYTES
            {
                self.flush().await?;
                flush_at = None;
            } else if !self.pending.is_empty() && flush_at.is_none() {
                flush_at = Some(tokio::time::Instant::now() + INGEST_FLUSH);
            }
        }
        // A last line without its newline.
        if !partial.is_empty() {
            let line = std::mem::take(&mut partial);
            self.push(&line)
                .map_err(|(status, m)| write_refusal(status, None, Some(m)))?;
        }
        self.flush().await
    }

    /// Adds one line to the pending batch; the refusal is its status and message.
    fn push(&mut self, line: &[u8]) -> Result<(), (StatusCode, &'static str)> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > MAX_CHUNK_BYTES {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                "A stream chunk may be at most 1 MiB",
            ));
        }
        let Ok(text) = std::str::from_utf8(line) else {
            return Err((StatusCode::BAD_REQUEST, "Stream chunks must be UTF-8 text"));
        };
        // A blank line still counts as one of the writer's lines (readers skip it).
        self.pending_bytes += text.len();
        self.pending.push(text.to_string());
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Response> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let lines = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let first = self.next_index;
        self.next_index += i64::try_from(lines.len()).unwrap_or(i64::MAX);
        self.state
            .store
            .append_stream_lines(
                &self.run.id,
                self.stream_id,
                self.client,
                first,
                &lines,
                self.state.now(),
            )
            .await
            .map(|_| ())
            .map_err(|e| ApiError::from(e).into_response())
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
