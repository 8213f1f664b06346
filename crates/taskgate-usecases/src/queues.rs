//! Queues: what the SDK's `queues.*` and the dashboard's queues page read and do. A queue is
//! named by its id (`queue_…`), or by type and name as upstream: `task` and a task id for a
//! task's own queue, `custom` and the name of a shared `queue()`. Runs are counted in the
//! queues of the environment's current version.

use taskgate_core::ids::UserId;
use taskgate_core::Problem;
use taskgate_store::{Environment, QueueChange, QueueInfo, QueueRef, WorkerTask};

use crate::{Result, UseCases};

/// Largest page of a listing.
pub const MAX_PER_PAGE: u32 = 100;
/// Largest limit an override sets (upstream's bound).
pub const MAX_OVERRIDE: u32 = 100_000;
/// Longest queue name or id accepted.
const MAX_NAME_LEN: usize = 512;

/// How a caller names a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueName {
    /// `queue_…`.
    Id(String),
    /// A task's own queue, by task id (`task/` in front is accepted and dropped).
    Task(String),
    /// A shared queue, by its name.
    Custom(String),
}

impl QueueName {
    /// From upstream's `type` (`id`, `task` or `custom`) and the path's value.
    pub fn parse(kind: &str, value: &str) -> Result<QueueName> {
        if value.is_empty() || value.len() > MAX_NAME_LEN || value.chars().any(char::is_control) {
            return Err(Problem::invalid_body(format!(
                "A queue is named by 1 to {MAX_NAME_LEN} characters without control characters"
            )));
        }
        match kind {
            "id" => Ok(QueueName::Id(value.to_string())),
            "task" => Ok(QueueName::Task(
                value.strip_prefix("task/").unwrap_or(value).to_string(),
            )),
            "custom" => Ok(QueueName::Custom(value.to_string())),
            _ => Err(Problem::invalid_body(
                "type must be one of id, task or custom",
            )),
        }
    }
}

/// A [`QueueRef`] that owns its text: the store's name for a [`QueueName`].
enum OwnedRef {
    Id(String),
    Name(String),
}

impl OwnedRef {
    fn of(name: &QueueName) -> OwnedRef {
        match name {
            QueueName::Id(id) => OwnedRef::Id(id.clone()),
            QueueName::Task(task) => OwnedRef::Name(format!("task/{task}")),
            QueueName::Custom(name) => OwnedRef::Name(name.clone()),
        }
    }

    fn as_ref(&self) -> QueueRef<'_> {
        match self {
            OwnedRef::Id(s) => QueueRef::Id(s),
            OwnedRef::Name(s) => QueueRef::Name(s),
        }
    }
}

fn not_found() -> Problem {
    Problem::not_found("queue-not-found")
}

/// The current version's tasks, which say the queue of a run that names none.
async fn tasks(uc: &UseCases, env: &Environment) -> Result<Vec<WorkerTask>> {
    Ok(uc.engine.current_tasks(env).await?.unwrap_or_default())
}

/// One page (from 1) of the environment's queues by name, and how many it has.
pub async fn list(
    uc: &UseCases,
    env: &Environment,
    page: u64,
    per_page: u32,
) -> Result<(Vec<QueueInfo>, u64)> {
    let per_page = per_page.clamp(1, MAX_PER_PAGE);
    let offset = page.saturating_sub(1).saturating_mul(u64::from(per_page));
    let tasks = tasks(uc, env).await?;
    Ok(uc
        .store
        .list_queues(&env.id, &tasks, offset, per_page)
        .await?)
}

/// A queue of the environment (404 `queue-not-found`, upstream's code).
pub async fn get(uc: &UseCases, env: &Environment, name: &QueueName) -> Result<QueueInfo> {
    let tasks = tasks(uc, env).await?;
    uc.store
        .get_queue(&env.id, &tasks, OwnedRef::of(name).as_ref())
        .await?
        .ok_or_else(not_found)
}

async fn change(
    uc: &UseCases,
    env: &Environment,
    name: &QueueName,
    change: QueueChange,
) -> Result<QueueInfo> {
    let tasks = tasks(uc, env).await?;
    let q = uc
        .store
        .change_queue(
            &env.id,
            &tasks,
            OwnedRef::of(name).as_ref(),
            change.clone(),
            uc.now(),
        )
        .await?
        .ok_or_else(not_found)?;
    tracing::info!(env.id = %env.id, queue = %q.name, queue.id = %q.friendly_id, change = ?change, "queue changed");
    Ok(q)
}

/// Pauses a queue (no run of it starts until resumed; executing ones finish), or resumes it.
pub async fn set_paused(
    uc: &UseCases,
    env: &Environment,
    name: &QueueName,
    paused: bool,
) -> Result<QueueInfo> {
    let c = if paused {
        QueueChange::Pause
    } else {
        QueueChange::Resume
    };
    change(uc, env, name, c).await
}

/// Sets the queue's limit until it is reset, whatever later versions declare.
pub async fn override_limit(
    uc: &UseCases,
    env: &Environment,
    name: &QueueName,
    limit: u32,
    by: Option<UserId>,
) -> Result<QueueInfo> {
    if limit > MAX_OVERRIDE {
        return Err(Problem::invalid_body(format!(
            "concurrencyLimit must be an integer from 0 to {MAX_OVERRIDE}"
        )));
    }
    change(uc, env, name, QueueChange::Override { limit, by }).await
}

/// Ends an override: the limit the current version declares holds again (400 when there is
/// none, upstream's words).
pub async fn reset_limit(uc: &UseCases, env: &Environment, name: &QueueName) -> Result<QueueInfo> {
    if get(uc, env, name).await?.overridden_at.is_none() {
        return Err(Problem::invalid("Queue is not overridden"));
    }
    change(uc, env, name, QueueChange::Reset).await
}
