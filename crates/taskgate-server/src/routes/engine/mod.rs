//! The `/engine/v1/dev/*` routes that `trigger.dev dev` runs against: its settings, the
//! long-poll dequeue, an attempt's start, heartbeat and completion, the latest snapshot,
//! debug logs, presence and disconnect. Handlers authenticate the environment's secret key,
//! hand the event to the store (which applies the engine's state machine in one
//! transaction) and present the result in the CLI's shapes.
//!
//! The CLI posts JSON without a JSON content type (`text/plain;charset=UTF-8`), so bodies are
//! read as bytes and parsed whatever their content type.

pub mod attempts;
pub mod dequeue;
pub mod presence;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use taskgate_api::engine::*;
use taskgate_core::env::EnvType;
use taskgate_store::{EnvironmentAuth, Run, Worker, WorkerTask};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Largest body an engine route reads (a completion carries the run's output, so the payload
/// limit applies there; the rest are small).
pub const MAX_ENGINE_BODY_BYTES: usize = 64 * 1024;

/// Parses a JSON body whatever its content type; an empty body is the type's default.
pub fn lenient_body<T: DeserializeOwned + Default>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid_body(e.to_string()))
}

/// Parses a required JSON body whatever its content type.
pub fn required_body<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("Request body is empty"));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid_body(e.to_string()))
}

/// The run a route names, missing or another environment's: 404, not retried.
pub fn run_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Run not found").should_retry(false)
}

/// A run's latest snapshot in the CLI's shape.
pub fn snapshot(run: &Run) -> ExecutionSnapshot {
    ExecutionSnapshot {
        id: run.snapshot_id.clone(),
        friendly_id: run.snapshot_id.clone(),
        execution_status: run.execution_status.as_str().to_string(),
        description: run.snapshot_description.clone(),
        created_at: run.snapshot_at,
    }
}

/// A run as the engine routes name it. Ids are friendly ids: the CLI uses them in paths.
pub fn run_ref(run: &Run) -> RunRef {
    RunRef {
        id: run.friendly_id.clone(),
        friendly_id: run.friendly_id.clone(),
        status: run.status.as_str().to_string(),
        attempt_number: (run.attempt_number > 0).then_some(run.attempt_number),
    }
}

/// The SDK's machine presets (vCPU, GB), by name.
const MACHINES: &[(&str, f64, f64)] = &[
    ("micro", 0.25, 0.25),
    ("small-1x", 0.5, 0.5),
    ("small-2x", 1.0, 1.0),
    ("medium-1x", 1.0, 2.0),
    ("medium-2x", 2.0, 4.0),
    ("large-1x", 4.0, 8.0),
    ("large-2x", 8.0, 16.0),
];
/// A run with no machine setting gets the SDK's default.
const DEFAULT_MACHINE: &str = "small-1x";

/// The machine a run executes on: the trigger's `machine`, else the task's (a preset name, or
/// `{preset}`), else `small-1x`. Unknown names fall back to the default: the CLI refuses any
/// name outside its list. Self-hosted compute costs nothing here.
pub fn machine(run: &Run, task: Option<&WorkerTask>) -> MachinePreset {
    let from_task =
        task.and_then(|t| t.machine.as_deref()).and_then(|m| {
            match serde_json::from_str::<Value>(m) {
                Ok(Value::String(s)) => Some(s),
                Ok(Value::Object(o)) => o.get("preset").and_then(Value::as_str).map(str::to_string),
                _ => Some(m.to_string()),
            }
        });
    let wanted = run.machine.clone().or(from_task);
    let (name, cpu, memory) = MACHINES
        .iter()
        .find(|(n, _, _)| Some(*n) == wanted.as_deref())
        .or_else(|| MACHINES.iter().find(|(n, _, _)| *n == DEFAULT_MACHINE))
        .copied()
        .unwrap_or((DEFAULT_MACHINE, 0.5, 0.5));
    MachinePreset {
        name: name.to_string(),
        cpu,
        memory,
        cents_per_ms: 0.0,
    }
}

/// The environment type as the SDK spells it.
pub fn env_type_name(t: EnvType) -> &'static str {
    match t {
        EnvType::Production => "PRODUCTION",
        EnvType::Staging => "STAGING",
        EnvType::Development => "DEVELOPMENT",
        EnvType::Preview => "PREVIEW",
    }
}

/// The queue a run's execution names: the trigger's, else the task's, else `task/<id>`.
fn queue_name(run: &Run, task: &WorkerTask) -> String {
    run.queue
        .clone()
        .or_else(|| task.queue_name.clone())
        .unwrap_or_else(|| format!("task/{}", run.task_identifier))
}

/// Decodes stored metadata for `ctx.run.metadata` (JSON objects only).
fn metadata_object(run: &Run) -> Option<Map<String, Value>> {
    let data = run.metadata.as_deref()?;
    if run.metadata_type.as_deref().unwrap_or("application/json") != "application/json" {
        return None;
    }
    match serde_json::from_str(data) {
        Ok(Value::Object(o)) => Some(o),
        _ => None,
    }
}

/// What an attempt's task process is told about itself (`TaskRunExecution`).
pub fn execution(
    env: &EnvironmentAuth,
    run: &Run,
    worker: &Worker,
    task: &WorkerTask,
) -> TaskRunExecution {
    let e = &env.environment;
    TaskRunExecution {
        attempt: ExecutionAttempt {
            number: run.attempt_number,
            started_at: run.snapshot_at,
        },
        run: ExecutionRun {
            id: run.friendly_id.clone(),
            payload: run.payload.clone().unwrap_or_default(),
            payload_type: run.payload_type.clone(),
            tags: run.tags.clone(),
            created_at: run.created_at,
            is_test: run.is_test,
            is_replay: run.is_replay,
            started_at: run.started_at.unwrap_or(run.snapshot_at),
            max_attempts: run.max_attempts,
            version: Some(worker.version.clone()),
            trace_context: Map::new(),
            max_duration: run.max_duration_seconds,
            metadata: metadata_object(run),
            idempotency_key: run.idempotency_key_user.clone(),
        },
        task: ExecutionTask {
            id: task.slug.clone(),
            file_path: task.file_path.clone(),
            export_name: task.export_name.clone(),
        },
        queue: ExecutionQueue {
            id: format!("queue_{}", run.task_identifier),
            name: queue_name(run, task),
        },
        environment: ExecutionEnvironment {
            id: e.id.clone(),
            slug: e.slug.clone(),
            env_type: env_type_name(e.env_type).to_string(),
            branch_name: e.branch_name.clone(),
        },
        organization: ExecutionOrganization {
            id: e.organization_id.clone(),
            slug: env.organization_slug.clone(),
            name: env.organization_title.clone(),
        },
        project: ExecutionProject {
            id: e.project_id.clone(),
            external_ref: env.project_ref.clone(),
            slug: env.project_slug.clone(),
            name: env.project_name.clone(),
        },
        machine: machine(run, Some(task)),
        batch: run.batch_id.clone().map(|id| IdRef { id }),
    }
}

/// The environment variables a task process gets: the environment's own (opened), then the
/// platform's, which win: where the API and the OTLP collector are.
pub async fn env_vars(
    state: &AppState,
    base: &str,
    env: &EnvironmentAuth,
) -> ApiResult<BTreeMap<String, String>> {
    let mut vars: BTreeMap<String, String> = crate::routes::envvars::resolved(state, env)
        .await?
        .into_iter()
        .map(|(k, (v, _))| (k, v))
        .collect();
    let otel = crate::routes::otel::endpoint(state, base, &env.environment.id);
    vars.insert("TRIGGER_API_URL".into(), base.to_string());
    vars.insert("TRIGGER_STREAM_URL".into(), base.to_string());
    vars.insert("TRIGGER_OTEL_EXPORTER_OTLP_ENDPOINT".into(), otel.clone());
    vars.insert("OTEL_EXPORTER_OTLP_ENDPOINT".into(), otel);
    Ok(vars)
}
