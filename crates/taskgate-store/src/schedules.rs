//! Schedules and their fires.
//!
//! A schedule belongs to one environment. Declarative ones are made and removed with the
//! worker that declares them (a development CLI's registration, a deployment's promotion), in
//! the same transaction; imperative ones come from the API. Each keeps the nominal time of
//! its next fire and when it is due (that time spread by its window), indexed, so a node finds
//! what is due without reading the others.
//!
//! A fire is claimed before its run is triggered: the claim moves the schedule to its next
//! time and leaves the fire pending, leased to the node that claimed it. The node triggers the
//! run (with a request key made from the schedule and the nominal time, so a second trigger of
//! the same fire returns the first run) and then completes the fire. If the node dies in
//! between, the lease runs out and another node takes the fire over: nothing is lost and
//! nothing runs twice.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use taskgate_core::env::EnvType;
use taskgate_core::ids::{EnvironmentId, RunFriendlyId, ScheduleFriendlyId, ScheduleId};
use taskgate_core::schedule::{window_phase, CronSchedule, Window};

use crate::error::StoreResult;

/// Where a schedule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleKind {
    /// From a task's `cron` in a worker's manifest; only a new worker changes it.
    Declarative,
    /// From the API (`schedules.create`).
    Imperative,
}

impl ScheduleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleKind::Declarative => "DECLARATIVE",
            ScheduleKind::Imperative => "IMPERATIVE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "DECLARATIVE" => Some(ScheduleKind::Declarative),
            "IMPERATIVE" => Some(ScheduleKind::Imperative),
            _ => None,
        }
    }
}

/// A task's `cron` as a worker declares it, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredSchedule {
    pub cron: String,
    pub timezone: String,
    /// The environment types it fires in (`PRODUCTION`, `STAGING`, `PREVIEW`,
    /// `DEVELOPMENT`); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
}

impl DeclaredSchedule {
    /// Whether it fires in an environment of this type.
    pub fn fires_in(&self, env_type: EnvType) -> bool {
        self.environments
            .as_ref()
            .is_none_or(|envs| envs.iter().any(|e| e == env_type.as_str()))
    }
}

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub id: ScheduleId,
    /// `sched_…`, what clients name it by.
    pub friendly_id: ScheduleFriendlyId,
    pub environment_id: EnvironmentId,
    pub kind: ScheduleKind,
    /// The task it triggers.
    pub task: String,
    pub expression: String,
    pub timezone: String,
    pub window: Option<String>,
    /// Unique within the environment and kind: the client's key, or a declarative
    /// schedule's task.
    pub deduplication_key: String,
    pub external_id: Option<String>,
    pub active: bool,
    /// The nominal time of its next fire (`None` while inactive).
    pub next_at: Option<DateTime<Utc>>,
    /// When that fire runs: `next_at` spread by the window.
    pub due_at: Option<DateTime<Utc>>,
    /// The nominal time of its last fire, and that fire's run (none when it was skipped).
    pub last_at: Option<DateTime<Utc>>,
    pub last_run: Option<RunFriendlyId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// When a schedule next fires after `after`: its next nominal time and when that is due.
/// `None` for an expression or zone that does not parse (refused before it is stored).
pub fn next_fire(
    environment_id: &str,
    deduplication_key: &str,
    expression: &str,
    timezone: &str,
    window: Option<&str>,
    after: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let cron = CronSchedule::parse(expression, timezone).ok()?;
    let next = cron.next_after(after)?;
    let due = match window.and_then(|w| Window::parse(w).ok()) {
        Some(w) => w.effective(
            next,
            cron.next_after(next),
            window_phase(environment_id, deduplication_key),
        ),
        None => next,
    };
    Some((next, due))
}

/// What a schedule fires and when: what a creation or an update sets.
#[derive(Debug, Clone)]
pub struct ScheduleDefinition {
    pub task: String,
    pub expression: String,
    pub timezone: String,
    pub window: Option<String>,
    pub external_id: Option<String>,
}

/// An imperative schedule to create, or to update in place when the environment has one with
/// the same deduplication key.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    pub environment_id: EnvironmentId,
    pub deduplication_key: String,
    pub definition: ScheduleDefinition,
}

/// A fire claimed by this node: its schedule (already moved to its next time) and the
/// nominal time it fires for.
#[derive(Debug, Clone)]
pub struct ScheduleFire {
    pub schedule: Schedule,
    pub env_type: EnvType,
    pub nominal: DateTime<Utc>,
    /// The nominal time of the fire before this one.
    pub last_at: Option<DateTime<Utc>>,
}

/// Schedules, their fires, and the declarative ones' sync.
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Creates an imperative schedule, or updates the environment's one with the same
    /// deduplication key (`false`). An update to a different expression, zone or window
    /// moves its next fire.
    async fn upsert_schedule(
        &self,
        schedule: NewSchedule,
        now: DateTime<Utc>,
    ) -> StoreResult<(Schedule, bool)>;
    /// A schedule of the environment by friendly id.
    async fn get_schedule(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &ScheduleFriendlyId,
    ) -> StoreResult<Option<Schedule>>;
    /// One page of the environment's schedules, oldest first, and how many it has.
    async fn list_schedules(
        &self,
        environment_id: &EnvironmentId,
        offset: u64,
        limit: u32,
    ) -> StoreResult<(Vec<Schedule>, u64)>;
    /// Updates an imperative schedule; `None` when the environment has no such imperative
    /// schedule.
    async fn update_schedule(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &ScheduleFriendlyId,
        definition: ScheduleDefinition,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Schedule>>;
    /// Deletes an imperative schedule; false when the environment has no such imperative
    /// schedule.
    async fn delete_schedule(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &ScheduleFriendlyId,
    ) -> StoreResult<bool>;
    /// Activates (its next fire is the first time after `now`) or deactivates a schedule.
    async fn set_schedule_active(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &ScheduleFriendlyId,
        active: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Schedule>>;
    /// Claims up to `limit` fires due at `now`, each leased to the caller for `lease`: active
    /// schedules whose time has come, and fires whose lease ran out before they completed.
    /// A schedule that missed several times (no node was running) fires once, for the first
    /// time it missed, and moves to its first time after `now`. Several nodes may call it at
    /// once: each fire is handed to one.
    async fn claim_schedule_fires(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: chrono::Duration,
    ) -> StoreResult<Vec<ScheduleFire>>;
    /// Ends a claimed fire with the run it triggered (`None`: skipped). A fire that is no
    /// longer pending (taken over, or its schedule deleted) is left alone.
    async fn complete_schedule_fire(
        &self,
        schedule_id: &ScheduleId,
        nominal: DateTime<Utc>,
        run: Option<&RunFriendlyId>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// When the next fire is due or a pending fire's lease runs out, if ever.
    async fn next_schedule_due(&self) -> StoreResult<Option<DateTime<Utc>>>;
}
