//! Schedules: what the SDK's `schedules.*`, the dashboard's schedules page and the CLI do
//! with them. Each checks its input as upstream does (a bad cron or time zone, or a task that
//! is not a scheduled task of the environment's current version, is 422), makes one store
//! call, and wakes this node's schedule loop when the change brings a fire sooner.

use taskgate_core::ids::{EnvironmentId, ScheduleFriendlyId};
use taskgate_core::schedule::{CronSchedule, Window, UTC};
use taskgate_core::Problem;
use taskgate_store::{Environment, NewSchedule, Schedule, ScheduleDefinition, ScheduleKind};

use crate::{Result, UseCases};

/// Longest deduplication key, external id and task id accepted.
const MAX_KEY_LEN: usize = 256;
const MAX_TASK_LEN: usize = 128;
/// Largest page of a listing.
pub const MAX_PER_PAGE: u32 = 100;

/// What a schedule fires and when, as a client asks for it.
#[derive(Debug, Clone)]
pub struct Definition {
    pub task: String,
    pub cron: String,
    pub timezone: Option<String>,
    pub window: Option<String>,
    pub external_id: Option<String>,
}

/// A definition, checked and normalized (the expression trimmed, the zone's IANA name).
async fn check(uc: &UseCases, env: &Environment, d: Definition) -> Result<ScheduleDefinition> {
    if d.task.is_empty() || d.task.len() > MAX_TASK_LEN {
        return Err(Problem::invalid_body(format!(
            "task must be 1 to {MAX_TASK_LEN} characters"
        )));
    }
    if d.external_id
        .as_ref()
        .is_some_and(|e| e.len() > MAX_KEY_LEN)
    {
        return Err(Problem::invalid_body(format!(
            "externalId must be at most {MAX_KEY_LEN} characters"
        )));
    }
    let window = match d.window.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(w) => {
            Window::parse(w).map_err(|e| Problem::invalid_body(e.to_string()))?;
            Some(w.to_string())
        }
    };
    let timezone = d
        .timezone
        .filter(|z| !z.is_empty())
        .unwrap_or_else(|| UTC.to_string());
    let cron = CronSchedule::parse(&d.cron, &timezone)
        .map_err(|e| Problem::unprocessable(e.to_string()))?;
    let tasks = uc.engine.current_tasks(env).await?.unwrap_or_default();
    match tasks.iter().find(|t| t.slug == d.task) {
        None => {
            return Err(Problem::unprocessable(format!(
                "Task with identifier {} not found in the environment's current version",
                d.task
            )))
        }
        Some(t) if !is_scheduled(t.trigger_source.as_deref()) => {
            return Err(Problem::unprocessable(format!(
                "Task with identifier {} is not a scheduled task: define it with schedules.task()",
                d.task
            )))
        }
        Some(_) => {}
    }
    Ok(ScheduleDefinition {
        task: d.task,
        expression: cron.expression().to_string(),
        timezone: cron.timezone().to_string(),
        window,
        external_id: d.external_id.filter(|e| !e.is_empty()),
    })
}

/// Whether a task's trigger source is a schedule's (`schedule`, as the SDK writes it, or
/// upstream's stored `SCHEDULED`).
fn is_scheduled(source: Option<&str>) -> bool {
    source
        .is_some_and(|s| s.eq_ignore_ascii_case("schedule") || s.eq_ignore_ascii_case("scheduled"))
}

/// Creates an imperative schedule, or updates the environment's one with the same key
/// (`false`).
pub async fn upsert(
    uc: &UseCases,
    env: &Environment,
    deduplication_key: &str,
    d: Definition,
) -> Result<(Schedule, bool)> {
    if deduplication_key.is_empty() || deduplication_key.len() > MAX_KEY_LEN {
        return Err(Problem::invalid_body(format!(
            "deduplicationKey must be 1 to {MAX_KEY_LEN} characters"
        )));
    }
    let definition = check(uc, env, d).await?;
    let (s, created) = uc
        .store
        .upsert_schedule(
            NewSchedule {
                environment_id: env.id.clone(),
                deduplication_key: deduplication_key.to_string(),
                definition,
            },
            uc.now(),
        )
        .await?;
    uc.engine.schedule_set(s.due_at);
    tracing::info!(schedule.id = %s.friendly_id, env.id = %env.id, task = %s.task, cron = %s.expression, created, "schedule saved");
    Ok((s, created))
}

/// A schedule of the environment.
pub async fn get(
    uc: &UseCases,
    environment_id: &EnvironmentId,
    id: &ScheduleFriendlyId,
) -> Result<Schedule> {
    uc.store
        .get_schedule(environment_id, id)
        .await?
        .ok_or_else(|| Problem::not_found("Schedule not found"))
}

/// Refuses a change to a declarative schedule (upstream's words for an update).
fn imperative_only(s: &Schedule, what: &str) -> Result<()> {
    if s.kind == ScheduleKind::Declarative {
        return Err(Problem::unprocessable(format!(
            "Cannot {what} a declarative schedule: change the cron of task {} in your code",
            s.task
        )));
    }
    Ok(())
}

/// Updates an imperative schedule.
pub async fn update(
    uc: &UseCases,
    env: &Environment,
    id: &ScheduleFriendlyId,
    d: Definition,
) -> Result<Schedule> {
    imperative_only(&get(uc, &env.id, id).await?, "update")?;
    let definition = check(uc, env, d).await?;
    let s = uc
        .store
        .update_schedule(&env.id, id, definition, uc.now())
        .await?
        .ok_or_else(|| Problem::not_found("Schedule not found"))?;
    uc.engine.schedule_set(s.due_at);
    Ok(s)
}

/// Deletes an imperative schedule.
pub async fn delete(
    uc: &UseCases,
    environment_id: &EnvironmentId,
    id: &ScheduleFriendlyId,
) -> Result<()> {
    imperative_only(&get(uc, environment_id, id).await?, "delete")?;
    if !uc.store.delete_schedule(environment_id, id).await? {
        return Err(Problem::not_found("Schedule not found"));
    }
    tracing::info!(schedule.id = %id, env.id = %environment_id, "schedule deleted");
    Ok(())
}

/// Activates or deactivates a schedule (declarative ones too: the switch is the user's).
pub async fn set_active(
    uc: &UseCases,
    environment_id: &EnvironmentId,
    id: &ScheduleFriendlyId,
    active: bool,
) -> Result<Schedule> {
    let s = uc
        .store
        .set_schedule_active(environment_id, id, active, uc.now())
        .await?
        .ok_or_else(|| Problem::not_found("Schedule not found"))?;
    uc.engine.schedule_set(s.due_at);
    tracing::info!(schedule.id = %id, env.id = %environment_id, active, "schedule switched");
    Ok(s)
}

/// One page (from 1) of the environment's schedules, and how many there are.
pub async fn list(
    uc: &UseCases,
    environment_id: &EnvironmentId,
    page: u64,
    per_page: u32,
) -> Result<(Vec<Schedule>, u64)> {
    let per_page = per_page.clamp(1, MAX_PER_PAGE);
    let offset = page.saturating_sub(1).saturating_mul(u64::from(per_page));
    Ok(uc
        .store
        .list_schedules(environment_id, offset, per_page)
        .await?)
}
