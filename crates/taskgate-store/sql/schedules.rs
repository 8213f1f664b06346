//! Schedules, the claim of their fires, and the sync of declarative ones.
//!
//! Compiled into both backends (`#[path]` modules of `taskgate-store-sqlite` and
//! `taskgate-store-postgres`) against their `backend` module: see `README.md` beside this file.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use taskgate_core::env::EnvType;
use taskgate_core::ids::{
    new_id, new_schedule_friendly_id, EnvironmentId, RunFriendlyId, ScheduleFriendlyId, ScheduleId,
};
use taskgate_core::time::{from_millis, to_millis};
use taskgate_store::*;

use crate::backend::*;
use crate::count;
use crate::error::map_err;
use crate::rows::{s, s_opt, ts, ts_opt};

const SCHEDULE_COLS: &str = "s.id, s.friendly_id, s.runtime_environment_id, s.kind,
    s.task_identifier, s.expression, s.timezone, s.time_window, s.deduplication_key,
    s.external_id, s.active, s.next_at, s.due_at, s.pending_at, s.last_at, s.last_run_id,
    s.created_at, s.updated_at";

/// The schedule's environment type, as a column of a query over `task_schedules s` (a
/// subquery rather than a join, so that a claim's row locks stay on the schedules).
const ENV_TYPE: &str =
    "(SELECT e.type FROM runtime_environments e WHERE e.id = s.runtime_environment_id) AS env_type";

fn schedule(row: &DbRow) -> StoreResult<Schedule> {
    let kind: String = s(row, "kind")?;
    Ok(Schedule {
        id: s(row, "id")?,
        friendly_id: s(row, "friendly_id")?,
        environment_id: s(row, "runtime_environment_id")?,
        kind: ScheduleKind::parse(&kind)
            .ok_or_else(|| StoreError::Other(format!("corrupt schedule kind {kind:?}")))?,
        task: s(row, "task_identifier")?,
        expression: s(row, "expression")?,
        timezone: s(row, "timezone")?,
        window: s_opt(row, "time_window")?,
        deduplication_key: s(row, "deduplication_key")?,
        external_id: s_opt(row, "external_id")?,
        active: row.try_get("active").map_err(map_err)?,
        next_at: ts_opt(row, "next_at")?,
        due_at: ts_opt(row, "due_at")?,
        last_at: ts_opt(row, "last_at")?,
        last_run: s_opt(row, "last_run_id")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

/// The next fire of a schedule defined by these columns, after `after`: (`next_at`,
/// `due_at`) in epoch milliseconds.
fn next_millis(
    environment_id: &str,
    key: &str,
    expression: &str,
    timezone: &str,
    window: Option<&str>,
    after: DateTime<Utc>,
) -> (Option<i64>, Option<i64>) {
    match next_fire(environment_id, key, expression, timezone, window, after) {
        Some((next, due)) => (Some(to_millis(next)), Some(to_millis(due))),
        None => (None, None),
    }
}

async fn schedule_by(
    conn: &mut DbConn,
    environment_id: &EnvironmentId,
    friendly_id: &str,
    lock: &str,
) -> StoreResult<Option<Schedule>> {
    count("get_schedule");
    let row = sqlx::query(&format!(
        "SELECT {SCHEDULE_COLS} FROM task_schedules s
         WHERE s.runtime_environment_id = $1 AND s.friendly_id = $2{lock}"
    ))
    .bind(environment_id)
    .bind(friendly_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?;
    row.as_ref().map(schedule).transpose()
}

/// Sets what a schedule fires and when, from `now`; a schedule already moving on the same
/// times keeps its next one.
async fn redefine(
    conn: &mut DbConn,
    current: &Schedule,
    d: &ScheduleDefinition,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let (task, expression, timezone) = (&d.task, &d.expression, &d.timezone);
    let (window, external_id) = (d.window.as_deref(), d.external_id.as_deref());
    let same_time = current.expression == *expression
        && current.timezone == *timezone
        && current.window.as_deref() == window;
    count("update_schedule");
    if same_time {
        sqlx::query(
            "UPDATE task_schedules SET task_identifier = $2, external_id = $3, updated_at = $4
             WHERE id = $1",
        )
        .bind(&current.id)
        .bind(task)
        .bind(external_id)
        .bind(to_millis(now))
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        return Ok(());
    }
    let (next_at, due_at) = if current.active {
        next_millis(
            &current.environment_id,
            &current.deduplication_key,
            expression,
            timezone,
            window,
            now,
        )
    } else {
        (None, None)
    };
    // A pending fire keeps due_at clear until it completes, which recomputes it.
    sqlx::query(
        "UPDATE task_schedules SET task_identifier = $2, expression = $3, timezone = $4,
             time_window = $5, external_id = $6, next_at = $7,
             due_at = CASE WHEN pending_at IS NULL THEN $8 ELSE NULL END, updated_at = $9
         WHERE id = $1",
    )
    .bind(&current.id)
    .bind(task)
    .bind(expression)
    .bind(timezone)
    .bind(window)
    .bind(external_id)
    .bind(next_at)
    .bind(due_at)
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn insert(
    conn: &mut DbConn,
    environment_id: &EnvironmentId,
    kind: ScheduleKind,
    key: &str,
    d: &ScheduleDefinition,
    now: DateTime<Utc>,
) -> StoreResult<ScheduleFriendlyId> {
    let (task, expression, timezone) = (&d.task, &d.expression, &d.timezone);
    let (window, external_id) = (d.window.as_deref(), d.external_id.as_deref());
    let friendly_id: ScheduleFriendlyId = new_schedule_friendly_id().into();
    let (next_at, due_at) = next_millis(environment_id, key, expression, timezone, window, now);
    count("insert_schedule");
    sqlx::query(
        "INSERT INTO task_schedules (id, friendly_id, runtime_environment_id, kind, task_identifier,
             expression, timezone, time_window, deduplication_key, external_id, active, next_at,
             due_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, TRUE, $11, $12, $13, $13)",
    )
    .bind(new_id())
    .bind(&friendly_id)
    .bind(environment_id)
    .bind(kind.as_str())
    .bind(task)
    .bind(expression)
    .bind(timezone)
    .bind(window)
    .bind(key)
    .bind(external_id)
    .bind(next_at)
    .bind(due_at)
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(friendly_id)
}

/// Makes the environment's declarative schedules those of `tasks` (the worker it now runs):
/// new ones created, changed ones redefined, those whose task lost its `cron` (or no longer
/// fires in this environment's type) removed. Part of the transaction that makes the worker
/// current.
pub(crate) async fn sync_declarative(
    conn: &mut DbConn,
    environment_id: &EnvironmentId,
    tasks: &[WorkerTask],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    count("environment_type");
    let (env_type,): (String,) =
        sqlx::query_as("SELECT type FROM runtime_environments WHERE id = $1")
            .bind(environment_id)
            .fetch_one(&mut *conn)
            .await
            .map_err(map_err)?;
    let env_type = EnvType::parse_db(&env_type).unwrap_or(EnvType::Production);
    count("declarative_schedules");
    let rows = sqlx::query(&format!(
        "SELECT {SCHEDULE_COLS} FROM task_schedules s
         WHERE s.runtime_environment_id = $1 AND s.kind = 'DECLARATIVE'{FOR_UPDATE}"
    ))
    .bind(environment_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)?;
    let existing = rows.iter().map(schedule).collect::<StoreResult<Vec<_>>>()?;
    let declared: Vec<(&WorkerTask, &DeclaredSchedule)> = tasks
        .iter()
        .filter_map(|t| t.schedule.as_ref().map(|d| (t, d)))
        .filter(|(_, d)| d.fires_in(env_type))
        .collect();
    for old in &existing {
        if !declared
            .iter()
            .any(|(t, _)| t.slug == old.deduplication_key)
        {
            count("delete_schedule");
            sqlx::query("DELETE FROM task_schedules WHERE id = $1")
                .bind(&old.id)
                .execute(&mut *conn)
                .await
                .map_err(map_err)?;
        }
    }
    for (task, d) in declared {
        let definition = ScheduleDefinition {
            task: task.slug.clone(),
            expression: d.cron.clone(),
            timezone: d.timezone.clone(),
            window: d.window.clone(),
            external_id: None,
        };
        match existing.iter().find(|s| s.deduplication_key == task.slug) {
            Some(current) => redefine(conn, current, &definition, now).await?,
            None => {
                let kind = ScheduleKind::Declarative;
                insert(conn, environment_id, kind, &task.slug, &definition, now).await?;
            }
        }
    }
    Ok(())
}

/// Claims fires from rows of `sql` (which selects schedules and their environment's type),
/// moving each schedule on.
async fn claim_rows(
    conn: &mut DbConn,
    sql: &str,
    now: DateTime<Utc>,
    limit: u32,
    lease: chrono::Duration,
) -> StoreResult<Vec<ScheduleFire>> {
    let rows = sqlx::query(sql)
        .bind(to_millis(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
    let mut fires = Vec::with_capacity(rows.len());
    for row in &rows {
        let sched = schedule(row)?;
        let env_type: String = s(row, "env_type")?;
        let pending: Option<i64> = row.try_get("pending_at").map_err(map_err)?;
        let nominal = match pending.map(from_millis).or(sched.next_at) {
            Some(t) => t,
            None => continue,
        };
        // The next fire: the first time after both this one and now, so a schedule that
        // missed many times fires once.
        let (next_at, _) = next_millis(
            &sched.environment_id,
            &sched.deduplication_key,
            &sched.expression,
            &sched.timezone,
            sched.window.as_deref(),
            nominal.max(now),
        );
        count("claim_schedule_fire");
        sqlx::query(
            "UPDATE task_schedules SET pending_at = $2, pending_until = $3, next_at = $4,
                 due_at = NULL
             WHERE id = $1",
        )
        .bind(&sched.id)
        .bind(to_millis(nominal))
        .bind(to_millis(now + lease))
        .bind(if pending.is_some() {
            sched.next_at.map(to_millis)
        } else {
            next_at
        })
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        fires.push(ScheduleFire {
            last_at: sched.last_at,
            env_type: EnvType::parse_db(&env_type).unwrap_or(EnvType::Production),
            nominal,
            schedule: Schedule {
                next_at: if pending.is_some() {
                    sched.next_at
                } else {
                    next_at.map(from_millis)
                },
                due_at: None,
                ..sched
            },
        });
    }
    Ok(fires)
}

#[async_trait]
impl ScheduleStore for Backend {
    async fn upsert_schedule(
        &self,
        n: NewSchedule,
        now: DateTime<Utc>,
    ) -> StoreResult<(Schedule, bool)> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("schedule_by_key");
        let row = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLS} FROM task_schedules s
             WHERE s.runtime_environment_id = $1 AND s.kind = 'IMPERATIVE'
               AND s.deduplication_key = $2{FOR_UPDATE}"
        ))
        .bind(&n.environment_id)
        .bind(&n.deduplication_key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let existing = row.as_ref().map(schedule).transpose()?;
        let (friendly_id, created) = match existing {
            Some(current) => {
                redefine(&mut tx, &current, &n.definition, now).await?;
                (current.friendly_id, false)
            }
            None => {
                let kind = ScheduleKind::Imperative;
                let key = &n.deduplication_key;
                let id = insert(&mut tx, &n.environment_id, kind, key, &n.definition, now).await?;
                (id, true)
            }
        };
        let stored = schedule_by(&mut tx, &n.environment_id, &friendly_id, "")
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await.map_err(map_err)?;
        Ok((stored, created))
    }

    async fn get_schedule(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &ScheduleFriendlyId,
    ) -> StoreResult<Option<Schedule>> {
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        schedule_by(&mut conn, environment_id, friendly_id, "").await
    }

    async fn list_schedules(
        &self,
        environment_id: &EnvironmentId,
        offset: u64,
        limit: u32,
    ) -> StoreResult<(Vec<Schedule>, u64)> {
        let mut conn = self.reader.acquire().await.map_err(map_err)?;
        count("list_schedules");
        let rows = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLS} FROM task_schedules s WHERE s.runtime_environment_id = $1
             ORDER BY s.created_at, s.id LIMIT $2 OFFSET $3"
        ))
        .bind(environment_id)
        .bind(i64::from(limit))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
        count("count_schedules");
        let (total,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM task_schedules WHERE runtime_environment_id = $1")
                .bind(environment_id)
                .fetch_one(&mut *conn)
                .await
                .map_err(map_err)?;
        let list = rows.iter().map(schedule).collect::<StoreResult<Vec<_>>>()?;
        Ok((list, u64::try_from(total).unwrap_or(0)))
    }

    async fn update_schedule(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &ScheduleFriendlyId,
        definition: ScheduleDefinition,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Schedule>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let Some(current) = schedule_by(&mut tx, environment_id, friendly_id, FOR_UPDATE).await?
        else {
            return Ok(None);
        };
        if current.kind != ScheduleKind::Imperative {
            return Ok(None);
        }
        redefine(&mut tx, &current, &definition, now).await?;
        let stored = schedule_by(&mut tx, environment_id, friendly_id, "").await?;
        tx.commit().await.map_err(map_err)?;
        Ok(stored)
    }

    async fn delete_schedule(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &ScheduleFriendlyId,
    ) -> StoreResult<bool> {
        count("delete_schedule");
        let done = sqlx::query(
            "DELETE FROM task_schedules
             WHERE runtime_environment_id = $1 AND friendly_id = $2 AND kind = 'IMPERATIVE'",
        )
        .bind(environment_id)
        .bind(friendly_id)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_schedule_active(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &ScheduleFriendlyId,
        active: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Schedule>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let Some(current) = schedule_by(&mut tx, environment_id, friendly_id, FOR_UPDATE).await?
        else {
            return Ok(None);
        };
        if current.active != active {
            let (next_at, due_at) = if active {
                next_millis(
                    environment_id,
                    &current.deduplication_key,
                    &current.expression,
                    &current.timezone,
                    current.window.as_deref(),
                    now,
                )
            } else {
                (None, None)
            };
            count("set_schedule_active");
            sqlx::query(
                "UPDATE task_schedules SET active = $2, next_at = $3,
                     due_at = CASE WHEN pending_at IS NULL THEN $4 ELSE NULL END, updated_at = $5
                 WHERE id = $1",
            )
            .bind(&current.id)
            .bind(active)
            .bind(next_at)
            .bind(due_at)
            .bind(to_millis(now))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        let stored = schedule_by(&mut tx, environment_id, friendly_id, "").await?;
        tx.commit().await.map_err(map_err)?;
        Ok(stored)
    }

    async fn claim_schedule_fires(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: chrono::Duration,
    ) -> StoreResult<Vec<ScheduleFire>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        // Fires whose node stopped before completing them first, then what is due.
        count("schedule_fires_abandoned");
        let mut fires = claim_rows(
            &mut tx,
            &format!(
                "SELECT {SCHEDULE_COLS}, {ENV_TYPE} FROM task_schedules s
                 WHERE s.pending_until <= $1 ORDER BY s.pending_until LIMIT $2{FOR_UPDATE_SKIP_LOCKED}"
            ),
            now,
            limit,
            lease,
        )
        .await?;
        let room = limit.saturating_sub(fires.len() as u32);
        if room > 0 {
            count("schedule_fires_due");
            fires.extend(
                claim_rows(
                    &mut tx,
                    &format!(
                        "SELECT {SCHEDULE_COLS}, {ENV_TYPE} FROM task_schedules s
                         WHERE s.due_at <= $1 ORDER BY s.due_at LIMIT $2{FOR_UPDATE_SKIP_LOCKED}"
                    ),
                    now,
                    room,
                    lease,
                )
                .await?,
            );
        }
        tx.commit().await.map_err(map_err)?;
        Ok(fires)
    }

    async fn complete_schedule_fire(
        &self,
        schedule_id: &ScheduleId,
        nominal: DateTime<Utc>,
        run: Option<&RunFriendlyId>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("pending_schedule_fire");
        let row = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLS} FROM task_schedules s
             WHERE s.id = $1 AND s.pending_at = $2{FOR_UPDATE}"
        ))
        .bind(schedule_id)
        .bind(to_millis(nominal))
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some(sched) = row.as_ref().map(schedule).transpose()? else {
            return Ok(());
        };
        // When the next fire is due, from its nominal time (kept by the claim).
        let due_at = match (sched.active, sched.next_at) {
            (true, Some(next)) => next_fire(
                &sched.environment_id,
                &sched.deduplication_key,
                &sched.expression,
                &sched.timezone,
                sched.window.as_deref(),
                next - chrono::Duration::milliseconds(1),
            )
            .map(|(_, due)| to_millis(due)),
            _ => None,
        };
        count("complete_schedule_fire");
        sqlx::query(
            "UPDATE task_schedules SET pending_at = NULL, pending_until = NULL, last_at = $2,
                 last_run_id = COALESCE($3, last_run_id), due_at = $4, updated_at = $5
             WHERE id = $1",
        )
        .bind(schedule_id)
        .bind(to_millis(nominal))
        .bind(run)
        .bind(due_at)
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn next_schedule_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        count("next_schedule_due");
        let (due, pending): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT MIN(due_at) FROM task_schedules WHERE due_at IS NOT NULL),
                    (SELECT MIN(pending_until) FROM task_schedules WHERE pending_until IS NOT NULL)",
        )
        .fetch_one(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(match (due, pending) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(from_millis))
    }
}
