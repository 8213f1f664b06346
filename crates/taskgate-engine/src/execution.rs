//! What a task process is told about its run: the execution payload, its machine, the latest
//! snapshot in the CLI's shape, and the environment variables it starts with.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use taskgate_api::engine::*;
use taskgate_core::env::EnvType;
use taskgate_core::ids::EnvironmentId;
use taskgate_store::{EnvironmentAuth, Run, Worker, WorkerTask};

use crate::{Engine, Error, Result};

/// A run's latest snapshot in the CLI's shape.
pub fn snapshot(run: &Run) -> ExecutionSnapshot {
    ExecutionSnapshot {
        id: run.snapshot_id.to_string(),
        friendly_id: run.snapshot_id.to_string(),
        execution_status: run.execution_status.as_str().to_string(),
        description: run.snapshot_description.clone(),
        created_at: run.snapshot_at,
    }
}

/// A run's latest state as a worker reads it: the snapshot, and when it continues a wait, the
/// waitpoints it hands the process (and the batch they came from).
pub fn execution_data(run: &Run) -> RunExecutionData {
    let completed_waitpoints = run
        .completed_waitpoints
        .as_deref()
        .and_then(|w| serde_json::from_str::<Vec<Value>>(w).ok())
        .unwrap_or_default();
    RunExecutionData {
        version: "1".into(),
        snapshot: snapshot(run),
        run: run_ref(run),
        batch: run.snapshot_batch_id.as_ref().map(|b| FriendlyRef {
            id: b.to_string(),
            friendly_id: b.to_string(),
        }),
        completed_waitpoints,
    }
}

/// A run as the engine routes name it. Ids are friendly ids: the CLI uses them in paths.
pub fn run_ref(run: &Run) -> RunRef {
    RunRef {
        id: run.friendly_id.to_string(),
        friendly_id: run.friendly_id.to_string(),
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
pub fn queue_name(run: &Run, task: &WorkerTask) -> String {
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
            id: run.friendly_id.to_string(),
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
            realtime_streams_version: "v2".into(),
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
            id: e.id.to_string(),
            slug: e.slug.clone(),
            env_type: env_type_name(e.env_type).to_string(),
            branch_name: e.branch_name.clone(),
        },
        organization: ExecutionOrganization {
            id: e.organization_id.to_string(),
            slug: env.organization_slug.clone(),
            name: env.organization_title.clone(),
        },
        project: ExecutionProject {
            id: e.project_id.to_string(),
            external_ref: env.project_ref.clone(),
            slug: env.project_slug.clone(),
            name: env.project_name.clone(),
        },
        machine: machine(run, Some(task)),
        batch: run.batch_id.clone().map(|id| IdRef { id: id.to_string() }),
    }
}

impl Engine {
    /// An environment's variables merged over its parent's, opened: `name → (value, secret)`.
    pub async fn resolved_env_vars(
        &self,
        env: &EnvironmentAuth,
    ) -> Result<BTreeMap<String, (String, bool)>> {
        let mut out = BTreeMap::new();
        let mut sources = Vec::new();
        if let Some(parent) = &env.environment.parent_environment_id {
            sources.push(parent.clone());
        }
        sources.push(env.environment.id.clone());
        for env_id in sources {
            for v in self.workers.env_vars(&*self.store, &env_id).await?.iter() {
                let value = self
                    .vault
                    .open_env_var(&env_id, &v.key, &v.value_sealed)
                    .map_err(|e| Error::Internal(e.to_string()))?;
                out.insert(
                    v.key.clone(),
                    (
                        secrecy::ExposeSecret::expose_secret(&value).to_string(),
                        v.is_secret,
                    ),
                );
            }
        }
        Ok(out)
    }

    /// The environment variables a task process gets: the environment's own (opened, secrets
    /// included), then the platform's, which win: where the API (`base`, the public URL) and
    /// the OTLP collector are.
    pub async fn task_env_vars(
        &self,
        base: &str,
        env: &EnvironmentAuth,
    ) -> Result<BTreeMap<String, String>> {
        let mut vars: BTreeMap<String, String> = self
            .resolved_env_vars(env)
            .await?
            .into_iter()
            .map(|(k, (v, _))| (k, v))
            .collect();
        vars.extend(self.platform_env_vars(base, &env.environment.id));
        Ok(vars)
    }

    /// The environment's secret key, opened: what a deployed run's processes authenticate
    /// with (as a development CLI's do with its own).
    pub fn environment_secret_key(&self, env: &EnvironmentAuth) -> Result<secrecy::SecretString> {
        self.vault
            .open_secret(&env.environment.api_key_sealed)
            .map_err(|e| Error::Internal(format!("cannot open the environment's key: {e}")))
    }

    /// The platform's variables: where the API and the OTLP collector are.
    pub fn platform_env_vars(
        &self,
        base: &str,
        environment_id: &EnvironmentId,
    ) -> [(String, String); 4] {
        let otel = self.otlp_endpoint(base, environment_id);
        [
            ("TRIGGER_API_URL".into(), base.to_string()),
            ("TRIGGER_STREAM_URL".into(), base.to_string()),
            ("TRIGGER_OTEL_EXPORTER_OTLP_ENDPOINT".into(), otel.clone()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), otel),
        ]
    }
}
