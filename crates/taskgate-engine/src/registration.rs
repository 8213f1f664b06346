//! A worker's manifest (what `trigger.dev dev` posts after each build), validated and
//! registered as its environment's current worker.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;
use taskgate_api::engine::{BackgroundWorkerMetadata, TaskManifest};
use taskgate_core::ids::{new_id, new_worker_friendly_id};
use taskgate_core::ids::{DeploymentId, EnvironmentId};
use taskgate_core::schedule;
use taskgate_store::{DeclaredSchedule, NewWorker, QueueLimit, Worker, WorkerTask};

use crate::{Engine, Error, Result};

/// Most tasks one worker may register.
const MAX_TASKS: usize = 5000;
/// Longest task id and file path accepted.
const MAX_TASK_ID_LEN: usize = 128;
const MAX_PATH_LEN: usize = 1024;
/// Largest JSON value (retry settings, payload schema…) kept per task.
const MAX_TASK_JSON_BYTES: usize = 64 * 1024;
/// Largest registration body: the manifest carries the project's source files.
pub const MAX_REGISTRATION_BYTES: usize = 32 * 1024 * 1024;

/// A JSON value kept as text, if it is not absurdly large.
fn json_text(field: &str, v: Option<&serde_json::Value>) -> Result<Option<String>> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let text = v.to_string();
    if text.len() > MAX_TASK_JSON_BYTES {
        return Err(Error::InvalidBody(format!(
            "{field} must be at most {MAX_TASK_JSON_BYTES} bytes of JSON"
        )));
    }
    Ok(Some(text))
}

/// A task of a manifest as stored, validated.
fn worker_task(t: &TaskManifest) -> Result<WorkerTask> {
    if t.id.is_empty() || t.id.len() > MAX_TASK_ID_LEN || t.id.chars().any(char::is_control) {
        return Err(Error::InvalidBody(format!(
            "task ids must be 1 to {MAX_TASK_ID_LEN} characters without control characters"
        )));
    }
    if t.file_path.len() > MAX_PATH_LEN {
        return Err(Error::InvalidBody(format!(
            "task {}: filePath must be at most {MAX_PATH_LEN} characters",
            t.id
        )));
    }
    let queue_name = t
        .queue
        .as_ref()
        .and_then(|q| q.get("name"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_string);
    let max_duration = t
        .max_duration
        .filter(|d| d.is_finite() && *d > 0.0)
        .map(|d| d.min(f64::from(u32::MAX)) as i64);
    Ok(WorkerTask {
        slug: t.id.clone(),
        file_path: t.file_path.clone(),
        export_name: t.export_name.clone(),
        retry_config: json_text("retry", t.retry.as_ref())?,
        queue_name,
        machine: json_text("machine", t.machine.as_ref())?,
        max_duration_seconds: max_duration,
        ttl: t.ttl.as_ref().and_then(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }),
        payload_schema: json_text("payloadSchema", t.payload_schema.as_ref())?,
        description: t.description.clone(),
        trigger_source: t.trigger_source.clone(),
        schedule: declared_schedule(t)?,
    })
}

/// Environment types a declared schedule may name.
const ENV_TYPES: [&str; 4] = ["PRODUCTION", "STAGING", "PREVIEW", "DEVELOPMENT"];

/// A task's declared `cron` (`schedule` in the manifest), checked as the API checks an
/// imperative schedule: a valid five-field expression, an IANA time zone, a window.
fn declared_schedule(t: &TaskManifest) -> Result<Option<DeclaredSchedule>> {
    let Some(s) = t.schedule.as_ref().filter(|s| !s.is_null()) else {
        return Ok(None);
    };
    let bad = |why: String| Error::InvalidBody(format!("task {:?}: {why}", t.id));
    // The SDK sends `cron` as the pattern; an object form is read as well.
    let cron_field = s.get("cron");
    let field = |name: &str| {
        cron_field
            .and_then(|c| c.get(name))
            .or_else(|| s.get(name))
            .filter(|v| !v.is_null())
    };
    let cron = match cron_field {
        Some(Value::String(c)) => c.clone(),
        Some(Value::Object(o)) => match o.get("pattern") {
            Some(Value::String(p)) => p.clone(),
            _ => return Err(bad("schedule.cron.pattern must be a string".into())),
        },
        _ => return Err(bad("schedule.cron must be a string".into())),
    };
    let timezone = match field("timezone") {
        None => schedule::UTC.to_string(),
        Some(Value::String(z)) => z.clone(),
        Some(_) => return Err(bad("schedule.timezone must be a string".into())),
    };
    let parsed = schedule::CronSchedule::parse(&cron, &timezone).map_err(|e| bad(e.to_string()))?;
    let environments = match field("environments") {
        None => None,
        Some(Value::Array(items)) => {
            let mut envs = Vec::new();
            for e in items {
                match e.as_str() {
                    Some(name) if ENV_TYPES.contains(&name) => envs.push(name.to_string()),
                    _ => {
                        return Err(bad(format!(
                            "schedule.environments must name {}",
                            ENV_TYPES.join(", ")
                        )))
                    }
                }
            }
            Some(envs)
        }
        Some(_) => return Err(bad("schedule.environments must be an array".into())),
    };
    let window = match field("window") {
        None => None,
        Some(Value::String(w)) => {
            schedule::Window::parse(w).map_err(|e| bad(e.to_string()))?;
            Some(w.trim().to_string())
        }
        Some(_) => return Err(bad("schedule.window must be a string".into())),
    };
    Ok(Some(DeclaredSchedule {
        cron: parsed.expression().to_string(),
        timezone: parsed.timezone().to_string(),
        environments,
        window,
    }))
}

/// Most runs a queue's limit may name (a larger one is no limit below the environment's).
const MAX_QUEUE_LIMIT: u64 = 100_000;
/// Longest queue name accepted.
const MAX_QUEUE_NAME_LEN: usize = 128;

/// A queue's `{name?, concurrencyLimit?}` as a manifest gives it.
fn queue_limit(v: &serde_json::Value) -> Option<u32> {
    v.get("concurrencyLimit")
        .and_then(serde_json::Value::as_u64)
        .map(|n| n.min(MAX_QUEUE_LIMIT) as u32)
}

/// Every queue a manifest declares, once each: shared queues first (their definition wins,
/// as the SDK keeps the first), then each task's own (`task/<id>` unless it names one).
fn queues(m: &BackgroundWorkerMetadata) -> Result<Vec<QueueLimit>> {
    let mut out: Vec<QueueLimit> = Vec::new();
    let mut add = |name: String, limit: Option<u32>| -> Result<()> {
        if name.is_empty() || name.len() > MAX_QUEUE_NAME_LEN || name.chars().any(char::is_control)
        {
            return Err(Error::InvalidBody(format!(
                "queue names must be 1 to {MAX_QUEUE_NAME_LEN} characters without control characters"
            )));
        }
        match out.iter_mut().find(|q| q.name == name) {
            Some(q) => {
                q.concurrency_limit = q.concurrency_limit.or(limit);
            }
            None => out.push(QueueLimit {
                name,
                concurrency_limit: limit,
            }),
        }
        Ok(())
    };
    for q in m.queues.iter().flatten() {
        if let Some(name) = q.get("name").and_then(serde_json::Value::as_str) {
            add(name.to_string(), queue_limit(q))?;
        }
    }
    for t in &m.tasks {
        let named = t
            .queue
            .as_ref()
            .and_then(|q| q.get("name"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string);
        let limit = t.queue.as_ref().and_then(queue_limit);
        add(named.unwrap_or_else(|| format!("task/{}", t.id)), limit)?;
    }
    Ok(out)
}

/// Refuses a manifest that defines a task id twice, naming where (upstream's words).
fn no_duplicate_ids(tasks: &[TaskManifest]) -> Result<()> {
    for t in tasks {
        taskgate_core::text::check_task_id(&t.id)
            .map_err(|e| Error::InvalidBody(format!("task {:?}: {e}", t.id)))?;
    }
    let mut seen = HashSet::new();
    let mut duplicates = Vec::new();
    for t in tasks {
        if !seen.insert(t.id.as_str()) && !duplicates.contains(&t.id.as_str()) {
            duplicates.push(t.id.as_str());
        }
    }
    if duplicates.is_empty() {
        return Ok(());
    }
    let details: Vec<String> = duplicates
        .iter()
        .map(|id| {
            let files: Vec<&str> = tasks
                .iter()
                .filter(|t| t.id == *id)
                .map(|t| t.file_path.as_str())
                .collect();
            format!("\"{id}\" (defined in {})", files.join(", "))
        })
        .collect();
    Err(Error::Invalid(format!(
        "Duplicate task ids detected: {}. Each task must have a unique id across all task types (including scheduled tasks). Please rename one of them.",
        details.join("; ")
    )))
}

impl Engine {
    /// Registers a build of a project's tasks: a development CLI's becomes the environment's
    /// current worker; a deployment's (`deployment`) gets the deployment's version and is run
    /// once the deployment is promoted.
    pub async fn register_worker(
        &self,
        environment_id: &EnvironmentId,
        m: BackgroundWorkerMetadata,
        deployment: Option<DeploymentId>,
    ) -> Result<Worker> {
        if m.tasks.len() > MAX_TASKS {
            return Err(Error::InvalidBody(format!(
                "a worker may register at most {MAX_TASKS} tasks"
            )));
        }
        no_duplicate_ids(&m.tasks)?;
        let tasks = m
            .tasks
            .iter()
            .map(worker_task)
            .collect::<Result<Vec<_>>>()?;
        let queues = queues(&m)?;
        let worker = self
            .store
            .register_worker(
                NewWorker {
                    id: new_id().into(),
                    friendly_id: new_worker_friendly_id().into(),
                    environment_id: environment_id.clone(),
                    content_hash: m.content_hash.clone(),
                    sdk_version: m.package_version,
                    cli_version: m.cli_package_version,
                    runtime: m.runtime,
                    runtime_version: m.runtime_version,
                    tasks: tasks.clone(),
                    queues,
                    deployment_id: deployment,
                },
                self.now(),
            )
            .await?;
        tracing::info!(env.id = %environment_id, worker.id = %worker.friendly_id, worker.version = %worker.version, tasks = tasks.len(), "worker registered");
        self.workers.remember(Arc::new((worker.clone(), tasks)));
        Ok(worker)
    }
}
