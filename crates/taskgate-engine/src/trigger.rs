//! What a trigger becomes: the options the SDK sends, checked and turned into a run (every
//! duration range-checked, tags deduplicated, a development run given its default TTL), the
//! queue's size limit, the request key that makes a retried call return the run its first
//! attempt made, and the trigger itself.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use taskgate_core::engine::{RunState, DEFAULT_DEV_TTL, MAX_TASK_RUN_ATTEMPTS};
use taskgate_core::env::EnvType;
use taskgate_core::hash::sha256_hex;
use taskgate_core::ids::{EnvironmentId, RunFriendlyId};
use taskgate_core::run::{
    parse_debounce_duration, parse_delay, parse_idempotency_ttl, parse_ttl, DEFAULT_IDEMPOTENCY_TTL,
};
use taskgate_store::{
    ConflictKind, Debounce, Environment, Idempotency, NewTrigger, ParentWait, RequestKey, Run,
    StoreError, Triggered,
};

use crate::{Engine, Error, Result};

/// Most tags a run may carry (upstream's `MAX_TAGS_PER_RUN`).
pub const MAX_TAGS: usize = 10;
/// A tag's longest length (upstream's limit).
const MAX_TAG_LEN: usize = 128;
/// The trigger body the SDK sends; unknown options are accepted and ignored.
#[derive(Debug, Default, Deserialize)]
pub struct TriggerBody {
    #[serde(default)]
    pub payload: Option<Value>,
    #[serde(default)]
    pub options: TriggerOptions,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerOptions {
    pub payload_type: Option<String>,
    pub idempotency_key: Option<String>,
    #[serde(rename = "idempotencyKeyTTL")]
    pub idempotency_key_ttl: Option<String>,
    pub idempotency_key_options: Option<IdempotencyKeyOptions>,
    pub tags: Option<Value>,
    pub delay: Option<Value>,
    pub ttl: Option<Value>,
    pub queue: Option<QueueOption>,
    pub concurrency_key: Option<Value>,
    pub max_attempts: Option<i64>,
    pub metadata: Option<Value>,
    pub metadata_type: Option<String>,
    pub machine: Option<String>,
    pub test: Option<bool>,
    /// The run whose task triggers this one (`ctx.run.id`), and whether it waits for it.
    pub parent_run_id: Option<String>,
    pub resume_parent_on_completion: Option<bool>,
    /// The worker version a trigger from inside a run is locked to (`ctx.worker.version`):
    /// its task and queue must exist there.
    pub lock_to_version: Option<String>,
    /// Collapses triggers of the task with the same key into one delayed run.
    pub debounce: Option<DebounceOption>,
}

/// The `debounce` option as the SDK sends it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DebounceOption {
    pub key: Option<String>,
    pub delay: Option<String>,
    pub mode: Option<String>,
    pub max_delay: Option<String>,
}

/// Longest debounce key (upstream's).
const MAX_DEBOUNCE_KEY_LEN: usize = 512;

impl DebounceOption {
    /// The debounce this option asks for, checked (400 naming the field).
    pub fn checked(&self) -> Result<Debounce> {
        let invalid = |m: String| Error::Invalid(m);
        let key = self.key.clone().unwrap_or_default();
        if key.is_empty() || key.chars().count() > MAX_DEBOUNCE_KEY_LEN {
            return Err(invalid(format!(
                "debounce.key must be 1 to {MAX_DEBOUNCE_KEY_LEN} characters"
            )));
        }
        let delay = self
            .delay
            .as_deref()
            .ok_or_else(|| invalid("debounce.delay is required".into()))
            .and_then(|d| parse_debounce_duration("delay", d).map_err(invalid))?;
        let max_delay = self
            .max_delay
            .as_deref()
            .map(|d| parse_debounce_duration("maxDelay", d).map_err(invalid))
            .transpose()?;
        let trailing = match self.mode.as_deref() {
            None | Some("leading") => false,
            Some("trailing") => true,
            Some(other) => {
                return Err(invalid(format!(
                    "debounce.mode must be \"leading\" or \"trailing\", not {other:?}"
                )))
            }
        };
        Ok(Debounce {
            key,
            delay,
            max_delay,
            trailing,
        })
    }
}

/// A trigger from inside a run: the run that made it, and whether that run waits for the
/// result (`triggerAndWait`, `batchTriggerAndWait`).
#[derive(Debug, Clone)]
pub struct ParentRequest {
    pub run: RunFriendlyId,
    pub wait: bool,
}

impl TriggerOptions {
    /// The parent these options name, if any.
    pub fn parent(&self) -> Option<ParentRequest> {
        self.parent_run_id
            .as_ref()
            .filter(|p| !p.is_empty())
            .map(|p| ParentRequest {
                run: p.as_str().into(),
                wait: self.resume_parent_on_completion.unwrap_or(false),
            })
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct IdempotencyKeyOptions {
    pub key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct QueueOption {
    pub name: Option<String>,
}

fn validation(msg: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("Validation error: {msg}"))
}

/// A trigger's (or `tags.add`'s) `tags`: a string or an array of them, each 1 to 128
/// characters, at most [`MAX_TAGS`], duplicates dropped.
pub fn tags(v: Option<&Value>) -> Result<Vec<String>> {
    let list: Vec<String> = match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| validation("tags must be strings"))
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(validation("tags must be a string or an array of strings")),
    };
    if list.len() > MAX_TAGS {
        return Err(validation(format!(
            "a run can have at most {MAX_TAGS} tags"
        )));
    }
    if let Some(t) = list
        .iter()
        .find(|t| t.is_empty() || t.chars().count() > MAX_TAG_LEN)
    {
        return Err(validation(format!(
            "tag {t:?} must be 1 to {MAX_TAG_LEN} characters"
        )));
    }
    let mut unique = Vec::new();
    for t in list {
        if !unique.contains(&t) {
            unique.push(t);
        }
    }
    Ok(unique)
}

impl Engine {
    /// The run a trigger body describes, and its idempotency, before it is stored. Every
    /// duration is range-checked (400 naming the field); a development run without a TTL gets
    /// [`DEFAULT_DEV_TTL`].
    pub fn build_run(
        &self,
        env: &Environment,
        task_id: &str,
        body: TriggerBody,
        idempotency_header: Option<(&str, Option<&str>)>,
    ) -> Result<(Run, Option<Idempotency>)> {
        let now = self.now();
        let o = body.options;
        let (payload, payload_type) = match body.payload {
            None | Some(Value::Null) => (
                None,
                o.payload_type.unwrap_or_else(|| "application/json".into()),
            ),
            Some(Value::String(s)) => (
                Some(s),
                o.payload_type.unwrap_or_else(|| "application/json".into()),
            ),
            Some(other) => (Some(other.to_string()), "application/json".to_string()),
        };
        // An offloaded payload is the path the SDK uploaded it to.
        if payload_type == crate::packets::STORE_TYPE {
            crate::packets::check_packet_path(payload.as_deref().unwrap_or_default())?;
        }
        let limit = self.settings.max_payload_bytes;
        if payload.as_ref().is_some_and(|p| p.len() > limit) {
            return Err(Error::PayloadTooLarge(limit));
        }
        let (key, key_ttl) = match idempotency_header {
            Some((k, ttl)) => (Some(k.to_string()), ttl.map(str::to_string)),
            None => (o.idempotency_key.clone(), o.idempotency_key_ttl.clone()),
        };
        let key_ttl = match key_ttl.as_deref() {
            Some(t) => parse_idempotency_ttl(t).map_err(validation)?,
            None => None,
        };
        let idempotency = key.filter(|k| !k.is_empty()).map(|k| Idempotency {
            key: k,
            user_key: o.idempotency_key_options.and_then(|x| x.key),
            expires_at: now + key_ttl.unwrap_or(DEFAULT_IDEMPOTENCY_TTL),
        });
        // A debounced run waits out its debounce delay (which later triggers push back).
        let delay_until = match (&o.debounce, &o.delay) {
            (Some(d), _) => Some(now + d.checked()?.delay),
            (None, Some(d)) => parse_delay(d, now).map_err(validation)?,
            (None, None) => None,
        };
        let development = env.env_type == EnvType::Development;
        let (ttl_text, ttl) = match &o.ttl {
            Some(t) => (
                Some(
                    t.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| t.to_string()),
                ),
                parse_ttl(t).map_err(validation)?,
            ),
            None if development => (Some("10m".to_string()), Some(DEFAULT_DEV_TTL)),
            None => (None, None),
        };
        let metadata = match o.metadata {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
        };
        let concurrency_key = match o.concurrency_key {
            Some(Value::String(s)) => Some(s),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let max_attempts = match o.max_attempts {
            None => None,
            Some(n) if (1..=i64::from(MAX_TASK_RUN_ATTEMPTS)).contains(&n) => Some(n),
            Some(_) => {
                return Err(validation(format!(
                    "maxAttempts must be from 1 to {MAX_TASK_RUN_ATTEMPTS}"
                )))
            }
        };
        let run_state = RunState::triggered(now, delay_until, ttl.map(|d| now + d), development);
        let run = Run {
            payload,
            payload_type,
            tags: tags(o.tags.as_ref())?,
            metadata_type: metadata
                .as_ref()
                .map(|_| o.metadata_type.unwrap_or_else(|| "application/json".into())),
            metadata,
            queue: o.queue.and_then(|q| q.name),
            concurrency_key,
            max_attempts,
            machine: o.machine,
            ttl: ttl_text,
            delay_until,
            is_test: o.test.unwrap_or(false),
            ..Run::triggered(&env.id, task_id, &run_state, now)
        };
        Ok((run, idempotency))
    }

    /// Says in the log when a development run has no `trigger.dev dev` to run it, since the run
    /// will only wait (and expire after its TTL). Best effort: a failed check is not an error.
    async fn warn_if_no_dev_worker(&self, run: &Run) {
        let connected = self
            .workers
            .dev_connected(&*self.store, &run.environment_id, self.now())
            .await
            .unwrap_or(true);
        if !connected {
            tracing::info!(
                run.id = %run.friendly_id,
                env.id = %run.environment_id,
                ttl = ?run.ttl,
                "run queued in a development environment with no trigger.dev dev connected: it runs when one connects, and expires after its TTL otherwise"
            );
        }
    }

    /// Says in the log (once per environment per 10 minutes) that a deployed environment's
    /// runs wait because no version is deployed and promoted there.
    async fn warn_if_undeployed(&self, run: &Run) {
        let deployed = self
            .workers
            .deployed(&*self.store, &run.environment_id)
            .await
            .unwrap_or(true);
        if !deployed && self.workers.warn_undeployed(&run.environment_id) {
            tracing::warn!(
                run.id = %run.friendly_id,
                env.id = %run.environment_id,
                "runs are queued in an environment with no deployed version: they run once `trigger.dev deploy` deploys one (and it is promoted)"
            );
        }
    }

    /// Refuses `adding` more runs when the environment's queue is at the configured limit (422,
    /// upstream's words; the SDK does not retry it).
    pub async fn check_queue_size(
        &self,
        environment_id: &EnvironmentId,
        task_id: &str,
        adding: u64,
    ) -> Result<()> {
        let Some(max) = self.settings.max_queue_size else {
            return Ok(());
        };
        let queued = self.store.queue_length(environment_id, max).await?;
        if queued.saturating_add(adding) > max {
            let what = if adding == 1 {
                task_id.to_string()
            } else {
                format!("{adding} tasks")
            };
            return Err(Error::QueueFull(format!(
                "Cannot trigger {what} as the queue size limit for this environment has been reached. The maximum size is {max}"
            )));
        }
        Ok(())
    }

    /// Refuses a trigger locked to a worker version (`lockToVersion`, which the SDK sends from
    /// inside a run) that does not have the task, or the queue the trigger names (422,
    /// upstream's words). A queue some worker of the environment declared passes too: shared
    /// queues are kept per environment, not per version.
    pub async fn check_locked_version(
        &self,
        environment_id: &EnvironmentId,
        task_id: &str,
        options: &TriggerOptions,
    ) -> Result<()> {
        let Some(version) = options.lock_to_version.as_deref().filter(|v| !v.is_empty()) else {
            return Ok(());
        };
        let Some((_, tasks)) = self
            .store
            .worker_by_version(environment_id, version)
            .await?
        else {
            return Err(Error::Unprocessable(format!(
                "Cannot trigger {task_id}: the locked version '{version}' does not exist in this environment"
            )));
        };
        let Some(task) = tasks.iter().find(|t| t.slug == task_id) else {
            return Err(Error::Unprocessable(format!(
                "Task '{task_id}' not found on locked version '{version}'"
            )));
        };
        let Some(queue) = options.queue.as_ref().and_then(|q| q.name.as_deref()) else {
            return Ok(());
        };
        let of_version = tasks
            .iter()
            .any(|t| t.queue_name.as_deref() == Some(queue) || format!("task/{}", t.slug) == queue)
            || task.queue_name.as_deref() == Some(queue);
        if of_version || self.store.queue_declared(environment_id, queue).await? {
            return Ok(());
        }
        Err(Error::Unprocessable(format!(
            "Specified queue '{queue}' not found or not associated with locked version '{version}'."
        )))
    }

    /// The parent a trigger names, checked: a run of the same environment that has not
    /// finished (upstream's words when it has).
    pub async fn parent_run(
        &self,
        environment_id: &EnvironmentId,
        what: &str,
        parent: &ParentRequest,
    ) -> Result<Run> {
        let run = self
            .store
            .get_run(environment_id, &parent.run)
            .await?
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "Cannot trigger {what} as the parent run {} does not exist",
                    parent.run
                ))
            })?;
        if run.status.is_final() {
            return Err(Error::Invalid(format!(
                "Cannot trigger {what} as the parent run has a status of {}",
                run.status.api_status()
            )));
        }
        Ok(run)
    }

    /// Triggers a run: `run` as [`Engine::build_run`] made it, after the queue's size check,
    /// with its idempotency, a one-time token's marker (spent by this trigger) and the
    /// request's own key. A trigger from inside a run names it as `parent`; when the parent
    /// waits, it is blocked on the run (made, or found by its idempotency key) before this
    /// returns, and continues at once if that run has already finished.
    pub async fn trigger(
        &self,
        mut run: Run,
        idempotency: Option<Idempotency>,
        one_time_use: Option<String>,
        request_key: Option<RequestKey>,
        parent: Option<ParentRequest>,
        debounce: Option<Debounce>,
    ) -> Result<Triggered> {
        let task_id = run.task_identifier.clone();
        self.check_queue_size(&run.environment_id, &task_id, 1)
            .await?;
        let mut wait = None;
        if let Some(p) = &parent {
            let parent_run = self.parent_run(&run.environment_id, &task_id, p).await?;
            run.parent_run_id = Some(parent_run.id.clone());
            run.resume_parent_on_completion = p.wait;
            if p.wait {
                wait = Some(ParentWait {
                    parent_run_id: parent_run.id,
                    batch: None,
                });
            }
        }
        let trigger = NewTrigger {
            run,
            idempotency,
            one_time_use,
            request_key,
            wait,
            debounce,
        };
        let triggered = match self.store.trigger(trigger, self.now()).await {
            Ok(t) => t,
            Err(StoreError::Conflict {
                kind: ConflictKind::OneTimeUseToken,
            }) => {
                return Err(Error::Unprocessable(format!(
                "Cannot trigger {task_id} with a one-time use token as it has already been used."
            )))
            }
            Err(StoreError::Conflict {
                kind: ConflictKind::ParentRun,
            }) => return Err(parent_not_waiting(&task_id, parent.as_ref())),
            Err(e) => return Err(e.into()),
        };
        tracing::info!(run.id = %triggered.run.friendly_id, task = ?task_id, env.id = %triggered.run.environment_id, cached = triggered.cached, "run triggered");
        if !triggered.cached {
            if triggered.run.is_development {
                self.warn_if_no_dev_worker(&triggered.run).await;
            } else {
                self.warn_if_undeployed(&triggered.run).await;
            }
        }
        Ok(triggered)
    }
}

/// The answer when a parent cannot wait: it is not executing an attempt (or would wait for
/// itself).
pub(crate) fn parent_not_waiting(what: &str, parent: Option<&ParentRequest>) -> Error {
    let parent = parent.map(|p| p.run.to_string()).unwrap_or_default();
    Error::Invalid(format!(
        "Cannot trigger {what} and wait for it: the parent run {parent} is not executing an attempt that can wait"
    ))
}

/// The header SDK clients send with a fresh value per logical call, reused across its retries.
pub const REQUEST_KEY_HEADER: &str = "x-trigger-request-idempotency-key";
/// Longest request key accepted (the SDK sends a 36-character UUID).
const MAX_REQUEST_KEY_LEN: usize = 256;
/// How long a retry gets the run its first attempt created. The SDK's retries of one call
/// span about 10 s.
const REQUEST_KEY_WINDOW: chrono::Duration = chrono::Duration::hours(1);

/// The request key of a trigger, scoped to its environment and task
/// (SHA-256 over the JSON `[key, envId, taskId]`, as upstream). An empty header is no key.
pub fn request_key(
    header: Option<&str>,
    environment_id: &EnvironmentId,
    task_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<RequestKey>> {
    let Some(key) = header.filter(|k| !k.is_empty()) else {
        return Ok(None);
    };
    if key.len() > MAX_REQUEST_KEY_LEN {
        return Err(Error::Invalid(format!(
            "{REQUEST_KEY_HEADER} must be at most {MAX_REQUEST_KEY_LEN} characters"
        )));
    }
    Ok(Some(RequestKey {
        hash: sha256_hex(&json!([key, environment_id, task_id]).to_string()),
        expires_at: now + REQUEST_KEY_WINDOW,
    }))
}
