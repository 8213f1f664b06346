//! Queues as administrators see and steer them: each queue's runs (running and queued), its
//! limit (declared by the worker, or overridden), and pause.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use taskgate_core::ids::{EnvironmentId, QueueFriendlyId, UserId};

use crate::engine::WorkerTask;
use crate::error::StoreResult;

/// A queue of an environment, with its runs counted now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    pub friendly_id: QueueFriendlyId,
    /// `task/<task id>` for a task's own queue; else the name a shared `queue()` declared.
    pub name: String,
    /// The limit in force: the declared one, or the override while one holds.
    pub concurrency_limit: Option<u32>,
    /// What the worker declared last.
    pub declared_limit: Option<u32>,
    /// When an administrator overrode the limit; `None` while the declared one holds.
    pub overridden_at: Option<DateTime<Utc>>,
    /// Who overrode it (a user's name or email), when a person did.
    pub overridden_by: Option<String>,
    /// A paused queue gives no run to a dequeue; runs already executing finish.
    pub paused: bool,
    /// Runs of the queue holding a slot (starting, executing, or cancelling).
    pub running: u64,
    /// Runs of the queue waiting to be dequeued (including retries waiting out their delay).
    pub queued: u64,
}

impl QueueInfo {
    /// Whether this is a task's own queue (`task/<id>`) rather than a shared one.
    pub fn is_task_queue(&self) -> bool {
        self.name.starts_with("task/")
    }
}

/// How a caller names a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueRef<'a> {
    Id(&'a str),
    /// The queue's stored name (`task/<id>` for a task's own).
    Name(&'a str),
}

/// What an administrator does to a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueChange {
    Pause,
    Resume,
    /// The limit in force becomes `limit` until reset, whatever later workers declare.
    Override {
        limit: u32,
        by: Option<UserId>,
    },
    /// The declared limit holds again.
    Reset,
}

/// Queues: listing, reading and steering them. Queued runs whose task declares a shared
/// queue are counted in it by the `tasks` of the environment's current worker (a run names its
/// queue only once dequeued, unless its trigger named one).
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// One page of the environment's queues by name, and how many it has.
    async fn list_queues(
        &self,
        environment_id: &EnvironmentId,
        tasks: &[WorkerTask],
        offset: u64,
        limit: u32,
    ) -> StoreResult<(Vec<QueueInfo>, u64)>;
    /// A queue of the environment.
    async fn get_queue(
        &self,
        environment_id: &EnvironmentId,
        tasks: &[WorkerTask],
        queue: QueueRef<'_>,
    ) -> StoreResult<Option<QueueInfo>>;
    /// Applies `change` to a queue of the environment and answers it as it is then (`None`
    /// when it has no such queue). A resume or a higher limit wakes the environment's
    /// dequeues on every node.
    async fn change_queue(
        &self,
        environment_id: &EnvironmentId,
        tasks: &[WorkerTask],
        queue: QueueRef<'_>,
        change: QueueChange,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<QueueInfo>>;
}
