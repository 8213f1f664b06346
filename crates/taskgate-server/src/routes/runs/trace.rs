//! A run's trace and its spans, for the CLI's MCP server (`get_run_details`,
//! `get_span_details`), built from what taskgate records of a run: the run's own span, one
//! span per attempt under it, the spans the task process exported under their parents (the
//! process's own `Attempt N` span is taskgate's attempt span), and each log record as a span
//! under its attempt (or under the run when it names none). The run's and attempts' span ids
//! are derived from the run, and the process's are its own, so two reads of one run agree and
//! a span id from one read finds its span in the next.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use taskgate_api::trace::*;
use taskgate_api::ErrorBody;
use taskgate_core::engine::{AttemptOutcome, RunStatus};
use taskgate_core::hash::sha256_hex;
use taskgate_core::ids::RunFriendlyId;

use taskgate_store::{Attempt, Run, RunLog, RunSpan, Worker, WorkerTask};

use super::readable_run;
use crate::auth::extract::ApiAuth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use taskgate_engine::packets::decode_packet;

/// Log records a trace shows at most (the oldest); the run's span says when there were more.
/// A record is at most 32 KiB with its attributes, so a trace never passes 32 MiB.
const MAX_TRACE_LOGS: u32 = 1000;
/// Spans of the task process a trace shows at most (the earliest).
const MAX_TRACE_SPANS: u32 = 1000;
/// How deep the process's spans may nest under an attempt before deeper ones are left out.
const MAX_SPAN_DEPTH: usize = 64;

/// What a trace is built from.
pub struct TraceSource<'a> {
    pub run: &'a Run,
    pub attempts: &'a [Attempt],
    pub logs: &'a [RunLog],
    /// The spans the task process exported.
    pub spans: &'a [RunSpan],
    /// The worker the run is locked to, and its task, when it has started.
    pub worker: Option<(&'a Worker, Option<&'a WorkerTask>)>,
    /// Whether there were more log records than `logs` holds.
    pub logs_truncated: bool,
    /// Where an open span ends for now.
    pub now: DateTime<Utc>,
}

fn span_id(run: &Run, part: &str) -> String {
    sha256_hex(&format!("taskgate:span:{}:{part}", run.id))[..16].to_string()
}

fn trace_id(run: &Run) -> String {
    sha256_hex(&format!("taskgate:trace:{}", run.id))[..32].to_string()
}

fn nanos(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_nanoseconds().unwrap_or(i64::MAX).max(0)
}

/// An error as an OpenTelemetry exception event.
fn exception(error: &Value, time: DateTime<Utc>) -> Value {
    let sample = taskgate_core::errors::sample(error);
    json!({
        "name": "exception",
        "time": time,
        "properties": {"exception": {
            "type": sample.error_type,
            "message": sample.error_message,
            "stacktrace": sample.stack,
        }},
    })
}

/// The level a log severity shows as.
fn level(severity: &str) -> String {
    match severity.to_ascii_lowercase().as_str() {
        "trace" => "TRACE",
        "debug" => "DEBUG",
        "warn" | "warning" => "WARN",
        "error" | "fatal" => "ERROR",
        "info" => "INFO",
        _ => "LOG",
    }
    .into()
}

fn log_span(src: &TraceSource, parent: &str, log: &RunLog) -> TraceSpan {
    let mut properties = log
        .attributes
        .as_deref()
        .and_then(|a| serde_json::from_str::<Map<String, Value>>(a).ok())
        .unwrap_or_default();
    properties.insert("severity".into(), Value::String(log.severity.clone()));
    let level = level(&log.severity);
    TraceSpan {
        id: span_id(src.run, &format!("log:{}", log.seq)),
        parent_id: Some(parent.to_string()),
        run_id: src.run.friendly_id.to_string(),
        data: TraceSpanData {
            message: log.message.clone(),
            task_slug: None,
            task_path: None,
            events: vec![],
            start_time: log.time,
            duration: 0,
            is_error: level == "ERROR",
            is_partial: false,
            is_cancelled: false,
            level,
            worker_version: None,
            queue_name: None,
            machine_preset: None,
            properties,
            output: None,
        },
        children: vec![],
    }
}

fn attempt_span(
    src: &TraceSource,
    root: &str,
    attempt: &Attempt,
    placed: &mut HashMap<String, Vec<TraceSpan>>,
) -> TraceSpan {
    let id = span_id(src.run, &format!("attempt:{}", attempt.number));
    let error = attempt
        .error
        .as_ref()
        .and_then(|e| serde_json::to_value(e).ok());
    let end = attempt.completed_at.unwrap_or(src.now);
    let mut properties = Map::new();
    properties.insert("attemptNumber".into(), json!(attempt.number));
    properties.insert("status".into(), json!(attempt.status.as_str()));
    let mut children: Vec<TraceSpan> = src
        .logs
        .iter()
        .filter(|l| l.attempt_number == Some(attempt.number))
        .map(|l| log_span(src, &id, l))
        .collect();
    children.extend(placed.remove(&id).unwrap_or_default());
    children.sort_by_key(|s| s.data.start_time);
    TraceSpan {
        id,
        parent_id: Some(root.to_string()),
        run_id: src.run.friendly_id.to_string(),
        data: TraceSpanData {
            message: format!("Attempt {}", attempt.number),
            task_slug: None,
            task_path: None,
            events: error.iter().map(|e| exception(e, end)).collect(),
            start_time: attempt.started_at,
            duration: nanos(attempt.started_at, end),
            is_error: attempt.status == AttemptOutcome::Failed,
            is_partial: attempt.status == AttemptOutcome::Executing,
            is_cancelled: attempt.status == AttemptOutcome::Canceled,
            level: if attempt.status == AttemptOutcome::Failed {
                "ERROR"
            } else {
                "TRACE"
            }
            .into(),
            worker_version: None,
            queue_name: None,
            machine_preset: None,
            properties,
            output: None,
        },
        children,
    }
}

/// The task process's spans as trace spans, by the id of the span in taskgate's tree they
/// hang under: the process's `Attempt N` span stands for taskgate's attempt span; a span
/// whose parent the process did not send hangs under its attempt, or the run.
fn place_process_spans(src: &TraceSource, root: &str) -> HashMap<String, Vec<TraceSpan>> {
    let attempt_id = |n: i64| span_id(src.run, &format!("attempt:{n}"));
    let attempts: HashSet<i64> = src.attempts.iter().map(|a| a.number).collect();
    // The process's attempt spans, as taskgate's.
    let mut alias: HashMap<&str, String> = HashMap::new();
    for s in src.spans {
        if let Some(n) = s.attempt_number.filter(|n| attempts.contains(n)) {
            if s.name == format!("Attempt {n}") {
                alias.insert(&s.span_id, attempt_id(n));
            }
        }
    }
    let sent: HashSet<&str> = src.spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut by_parent: HashMap<String, Vec<&RunSpan>> = HashMap::new();
    for s in src.spans {
        if alias.contains_key(s.span_id.as_str()) {
            continue;
        }
        let parent = match s.parent_span_id.as_deref() {
            Some(p) if alias.contains_key(p) => alias[p].clone(),
            Some(p) if sent.contains(p) => p.to_string(),
            _ => match s.attempt_number.filter(|n| attempts.contains(n)) {
                Some(n) => attempt_id(n),
                None => root.to_string(),
            },
        };
        by_parent.entry(parent).or_default().push(s);
    }
    let mut placed = HashMap::new();
    for anchor in
        std::iter::once(root.to_string()).chain(src.attempts.iter().map(|a| attempt_id(a.number)))
    {
        let spans = process_subtree(src, &anchor, &by_parent, 0);
        if !spans.is_empty() {
            placed.insert(anchor, spans);
        }
    }
    placed
}

/// The process's spans under `parent`, each with its own.
fn process_subtree(
    src: &TraceSource,
    parent: &str,
    by_parent: &HashMap<String, Vec<&RunSpan>>,
    depth: usize,
) -> Vec<TraceSpan> {
    if depth >= MAX_SPAN_DEPTH {
        return Vec::new();
    }
    let Some(spans) = by_parent.get(parent) else {
        return Vec::new();
    };
    spans
        .iter()
        .map(|s| TraceSpan {
            id: s.span_id.clone(),
            parent_id: Some(parent.to_string()),
            run_id: src.run.friendly_id.to_string(),
            data: TraceSpanData {
                message: s.name.clone(),
                task_slug: None,
                task_path: None,
                events: vec![],
                start_time: s.start,
                duration: nanos(s.start, s.end),
                is_error: s.is_error,
                is_partial: false,
                is_cancelled: false,
                level: if s.is_error { "ERROR" } else { "TRACE" }.into(),
                worker_version: None,
                queue_name: None,
                machine_preset: None,
                properties: s
                    .attributes
                    .as_deref()
                    .and_then(|a| serde_json::from_str(a).ok())
                    .unwrap_or_default(),
                output: None,
            },
            children: process_subtree(src, &s.span_id, by_parent, depth + 1),
        })
        .collect()
}

/// The run's trace.
pub fn build_trace(src: &TraceSource) -> RunTrace {
    let run = src.run;
    let root = span_id(run, "run");
    let end = run.completed_at.or(run.expired_at).unwrap_or(src.now);
    let error = run
        .error
        .as_deref()
        .and_then(|e| serde_json::from_str::<Value>(e).ok());
    let is_error = run.status.is_error_outcome();
    let mut properties = Map::new();
    properties.insert("status".into(), json!(run.status.api_status()));
    if !run.tags.is_empty() {
        properties.insert("tags".into(), json!(run.tags));
    }
    if run.attempt_number > 0 {
        properties.insert("attempts".into(), json!(run.attempt_number));
    }
    if let Some(batch) = &run.batch_id {
        properties.insert("batchId".into(), json!(batch));
    }
    if src.logs_truncated {
        properties.insert(
            "taskgate.logsShown".into(),
            json!(format!("the first {} log records", src.logs.len())),
        );
    }
    let mut placed = place_process_spans(src, &root);
    let mut children: Vec<TraceSpan> = src
        .attempts
        .iter()
        .map(|a| attempt_span(src, &root, a, &mut placed))
        .collect();
    children.extend(placed.remove(&root).unwrap_or_default());
    children.extend(
        src.logs
            .iter()
            .filter(|l| {
                l.attempt_number
                    .is_none_or(|n| !src.attempts.iter().any(|a| a.number == n))
            })
            .map(|l| log_span(src, &root, l)),
    );
    children.sort_by_key(|s| s.data.start_time);
    let (worker, task) = src.worker.unzip();
    let task = task.flatten();
    let root_span = TraceSpan {
        id: root,
        parent_id: None,
        run_id: run.friendly_id.to_string(),
        data: TraceSpanData {
            message: run.task_identifier.clone(),
            task_slug: Some(run.task_identifier.clone()),
            task_path: task.map(|t| t.file_path.clone()),
            events: error.iter().map(|e| exception(e, end)).collect(),
            start_time: run.created_at,
            duration: nanos(run.created_at, end),
            is_error,
            is_partial: !run.status.is_final(),
            is_cancelled: run.status == RunStatus::Canceled,
            level: if is_error { "ERROR" } else { "TRACE" }.into(),
            worker_version: worker
                .map(|w| w.version.clone())
                .or_else(|| run.task_version.clone()),
            queue_name: run.queue.clone(),
            machine_preset: run
                .machine
                .clone()
                .or_else(|| task.and_then(|t| t.machine.clone())),
            properties,
            output: (run.status == RunStatus::CompletedSuccessfully)
                .then(|| decode_packet(run.output.as_deref(), run.output_type.as_deref()))
                .flatten(),
        },
        children,
    };
    RunTrace {
        trace_id: trace_id(run),
        root_span,
    }
}

/// The span `id` of `trace`, if it has it.
pub fn find_span<'a>(span: &'a TraceSpan, id: &str) -> Option<&'a TraceSpan> {
    if span.id == id {
        return Some(span);
    }
    span.children.iter().find_map(|c| find_span(c, id))
}

/// What a span was built from.
fn entity_type(run: &Run, attempts: &[Attempt], spans: &[RunSpan], id: &str) -> &'static str {
    if id == span_id(run, "run") {
        "run"
    } else if attempts
        .iter()
        .any(|a| id == span_id(run, &format!("attempt:{}", a.number)))
    {
        "attempt"
    } else if spans.iter().any(|s| s.span_id == id) {
        "span"
    } else {
        "log"
    }
}

/// Reads what the trace of `run` is built from, and builds it.
async fn load_trace(
    state: &AppState,
    run: &Run,
) -> ApiResult<(RunTrace, Vec<Attempt>, Vec<RunSpan>)> {
    let attempts = state.store.list_attempts(run).await?;
    let mut logs = state
        .store
        .list_run_logs(&run.id, None, MAX_TRACE_LOGS + 1)
        .await?;
    let logs_truncated = logs.len() > MAX_TRACE_LOGS as usize;
    logs.truncate(MAX_TRACE_LOGS as usize);
    let spans = state.store.list_run_spans(&run.id, MAX_TRACE_SPANS).await?;
    let worker = match &run.worker_id {
        Some(id) => state.store.get_worker(&run.environment_id, id).await?,
        None => None,
    };
    let worker_ref = worker
        .as_ref()
        .map(|(w, tasks)| (w, tasks.iter().find(|t| t.slug == run.task_identifier)));
    let trace = build_trace(&TraceSource {
        run,
        attempts: &attempts,
        logs: &logs,
        spans: &spans,
        worker: worker_ref,
        logs_truncated,
        now: state.now(),
    });
    Ok((trace, attempts, spans))
}

/// A run's trace: the run, its attempts and its log records, as a tree of spans.
#[utoipa::path(get, path = "/api/v1/runs/{runId}/trace", tag = "runs", security(("secretKey" = []), ("publicAccessToken" = [])), params(("runId" = String, Path)),
    responses((status = 200, body = RunTraceResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn retrieve_run_trace(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(run_id): Path<RunFriendlyId>,
) -> ApiResult<Json<RunTraceResponse>> {
    let run = readable_run(&state, &principal, &run_id).await?;
    let (trace, _, _) = load_trace(&state, &run).await?;
    Ok(Json(RunTraceResponse { trace }))
}

/// One span of a run's trace, by the id the trace gave it.
#[utoipa::path(get, path = "/api/v1/runs/{runId}/spans/{spanId}", tag = "runs", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("runId" = String, Path), ("spanId" = String, Path)),
    responses((status = 200, body = SpanDetailResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn retrieve_span(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path((run_id, span_id)): Path<(RunFriendlyId, String)>,
) -> ApiResult<Json<SpanDetailResponse>> {
    let run = readable_run(&state, &principal, &run_id).await?;
    let (trace, attempts, spans) = load_trace(&state, &run).await?;
    let span = find_span(&trace.root_span, &span_id)
        .ok_or_else(|| ApiError::not_found("Span not found").should_retry(false))?;
    let d = &span.data;
    Ok(Json(SpanDetailResponse {
        span_id: span.id.clone(),
        parent_id: span.parent_id.clone(),
        run_id: span.run_id.clone(),
        message: d.message.clone(),
        is_error: d.is_error,
        is_partial: d.is_partial,
        is_cancelled: d.is_cancelled,
        level: d.level.clone(),
        start_time: d.start_time,
        duration_ms: d.duration as f64 / 1_000_000.0,
        properties: d.properties.clone(),
        events: d.events.clone(),
        entity_type: entity_type(&run, &attempts, &spans, &span.id).into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use taskgate_core::engine::{ExecutionStatus, RunState};
    use taskgate_core::task_error::TaskRunError;
    use taskgate_store::RunSpan;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn run(status: RunStatus) -> Run {
        let created = at("2026-11-28T10:00:00Z");
        let state = RunState::triggered(created, None, None, true);
        let mut run = Run::triggered(&"env".into(), "email/send", &state, created);
        run.status = status;
        run.execution_status = ExecutionStatus::Finished;
        run.attempt_number = 2;
        run.completed_at = status.is_final().then(|| created + Duration::seconds(3));
        run
    }

    fn attempt(number: i64, status: AttemptOutcome, start: &str, ms: i64) -> Attempt {
        let started_at = at(start);
        Attempt {
            number,
            status,
            worker_id: None,
            started_at,
            completed_at: (status != AttemptOutcome::Executing)
                .then(|| started_at + Duration::milliseconds(ms)),
            error: (status == AttemptOutcome::Failed)
                .then(|| TaskRunError::String { raw: "boom".into() }),
        }
    }

    fn log(seq: i64, attempt: Option<i64>, time: &str, severity: &str) -> RunLog {
        RunLog {
            seq,
            attempt_number: attempt,
            time: at(time),
            severity: severity.into(),
            message: format!("line {seq}"),
            attributes: None,
        }
    }

    fn source<'a>(run: &'a Run, attempts: &'a [Attempt], logs: &'a [RunLog]) -> TraceSource<'a> {
        TraceSource {
            run,
            attempts,
            logs,
            spans: &[],
            worker: None,
            logs_truncated: false,
            now: at("2026-11-28T10:05:00Z"),
        }
    }

    #[test]
    fn attempts_hang_under_the_run_and_logs_under_their_attempt() {
        let run = run(RunStatus::CompletedSuccessfully);
        let attempts = [
            attempt(1, AttemptOutcome::Failed, "2026-11-28T10:00:01Z", 200),
            attempt(2, AttemptOutcome::Completed, "2026-11-28T10:00:02Z", 300),
        ];
        let logs = [
            log(1, Some(1), "2026-11-28T10:00:01.1Z", "error"),
            log(2, Some(2), "2026-11-28T10:00:02.1Z", "info"),
            log(3, None, "2026-11-28T10:00:00.5Z", "warn"),
        ];
        let trace = build_trace(&source(&run, &attempts, &logs));
        let root = &trace.root_span;
        assert_eq!(root.data.message, "email/send");
        assert!(!root.data.is_partial && !root.data.is_error);
        let kids: Vec<&str> = root
            .children
            .iter()
            .map(|c| c.data.message.as_str())
            .collect();
        assert_eq!(kids, ["line 3", "Attempt 1", "Attempt 2"], "in time order");
        let first = &root.children[1];
        assert!(first.data.is_error);
        assert_eq!(first.data.duration, 200_000_000, "nanoseconds");
        assert_eq!(
            first.data.events[0]["properties"]["exception"]["message"],
            "boom"
        );
        assert_eq!(first.children[0].data.level, "ERROR");
        assert_eq!(root.children[2].children[0].data.level, "INFO");
        assert_eq!(root.children[0].data.level, "WARN");
        assert_eq!(
            first.children[0].parent_id.as_deref(),
            Some(first.id.as_str())
        );
    }

    fn process_span(
        id: &str,
        parent: Option<&str>,
        attempt: Option<i64>,
        name: &str,
        at: &str,
    ) -> RunSpan {
        RunSpan {
            span_id: id.repeat(16),
            parent_span_id: parent.map(|p| p.repeat(16)),
            attempt_number: attempt,
            name: name.into(),
            start: self::at(at),
            end: self::at(at) + Duration::milliseconds(10),
            is_error: name == "boom",
            attributes: Some("{\"http.url\":\"https://example.com\"}".into()),
        }
    }

    #[test]
    fn the_process_spans_nest_under_their_attempt_and_parents() {
        let run = run(RunStatus::CompletedSuccessfully);
        let attempts = [attempt(
            1,
            AttemptOutcome::Completed,
            "2026-11-28T10:00:01Z",
            900,
        )];
        let spans = [
            process_span("a", None, Some(1), "Attempt 1", "2026-11-28T10:00:01Z"),
            process_span("b", Some("a"), Some(1), "run()", "2026-11-28T10:00:01.1Z"),
            process_span("c", Some("b"), Some(1), "boom", "2026-11-28T10:00:01.2Z"),
            process_span("d", Some("e"), Some(1), "orphan", "2026-11-28T10:00:01.3Z"),
            process_span("f", None, None, "outside", "2026-11-28T10:00:00.5Z"),
        ];
        let mut src = source(&run, &attempts, &[]);
        src.spans = &spans;
        let trace = build_trace(&src);
        let root = &trace.root_span;
        let names = |s: &TraceSpan| -> Vec<String> {
            s.children.iter().map(|c| c.data.message.clone()).collect()
        };
        assert_eq!(
            names(root),
            ["outside", "Attempt 1"],
            "the process's attempt span is taskgate's"
        );
        let attempt = &root.children[1];
        assert_eq!(names(attempt), ["run()", "orphan"]);
        let run_fn = &attempt.children[0];
        assert_eq!(run_fn.id, "b".repeat(16), "the process's own span id");
        assert_eq!(run_fn.parent_id.as_deref(), Some(attempt.id.as_str()));
        assert_eq!(names(run_fn), ["boom"]);
        assert!(run_fn.children[0].data.is_error);
        assert_eq!(run_fn.data.duration, 10_000_000);
        assert_eq!(run_fn.data.properties["http.url"], "https://example.com");
        assert_eq!(entity_type(&run, &attempts, &spans, &run_fn.id), "span");
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let run = run(RunStatus::CompletedWithErrors);
        let attempts = [attempt(
            1,
            AttemptOutcome::Failed,
            "2026-11-28T10:00:01Z",
            5,
        )];
        let logs = [log(1, Some(1), "2026-11-28T10:00:01Z", "log")];
        let a = build_trace(&source(&run, &attempts, &logs));
        let b = build_trace(&source(&run, &attempts, &logs));
        assert_eq!(a, b);
        assert_eq!(a.trace_id.len(), 32);
        let ids = [
            &a.root_span.id,
            &a.root_span.children[0].id,
            &a.root_span.children[0].children[0].id,
        ];
        assert!(ids.iter().all(|i| i.len() == 16));
        assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
        let found = find_span(&a.root_span, ids[2]).map(|s| s.data.message.as_str());
        assert_eq!(found, Some("line 1"));
        assert_eq!(entity_type(&run, &attempts, &[], ids[1]), "attempt");
        assert_eq!(entity_type(&run, &attempts, &[], ids[0]), "run");
    }

    #[test]
    fn an_open_run_is_partial_up_to_now_and_a_canceled_one_says_so() {
        let mut open = run(RunStatus::Executing);
        open.completed_at = None;
        let attempts = [attempt(
            1,
            AttemptOutcome::Executing,
            "2026-11-28T10:04:00Z",
            0,
        )];
        let trace = build_trace(&source(&open, &attempts, &[]));
        assert!(trace.root_span.data.is_partial);
        assert_eq!(
            trace.root_span.data.duration, 300_000_000_000,
            "five minutes"
        );
        assert!(trace.root_span.children[0].data.is_partial);
        assert_eq!(trace.root_span.children[0].data.duration, 60_000_000_000);

        let canceled = run(RunStatus::Canceled);
        let trace = build_trace(&source(&canceled, &[], &[]));
        assert!(trace.root_span.data.is_cancelled && !trace.root_span.data.is_error);
    }
}
