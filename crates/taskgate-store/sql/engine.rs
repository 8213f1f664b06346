//! The run engine's storage: registered workers, the queue's dequeue, environment variables,
//! run log records and development presence.
//!
//! Compiled into both backends (`#[path]` modules of `taskgate-store-sqlite` and
//! `taskgate-store-postgres`) against their `backend` module: see `README.md` beside this file.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};
use taskgate_core::engine::{transition, Event, RetrySettings};
use taskgate_core::ids::{new_queue_friendly_id, EnvironmentId, RunId};
use taskgate_core::time::to_millis;
use taskgate_store::*;

use crate::backend::*;
use crate::count;
use crate::error::map_err;
use crate::rows::{s, s_opt, ts};
use crate::runs::{run, RUN_COLS};

pub(crate) const WORKER_COLS: &str =
    "w.id, w.friendly_id, w.runtime_environment_id, w.version, w.content_hash, w.sdk_version,
    w.cli_version, w.runtime, w.runtime_version, w.created_at, w.deployment_id";
const TASK_COLS: &str =
    "t.slug, t.file_path, t.export_name, t.retry_config, t.queue_name, t.machine,
    t.max_duration_seconds, t.ttl, t.payload_schema, t.description, t.trigger_source, t.schedule";

pub(crate) fn worker(row: &DbRow) -> StoreResult<Worker> {
    Ok(Worker {
        id: s(row, "id")?,
        friendly_id: s(row, "friendly_id")?,
        environment_id: s(row, "runtime_environment_id")?,
        version: s(row, "version")?,
        content_hash: s(row, "content_hash")?,
        sdk_version: s_opt(row, "sdk_version")?,
        cli_version: s_opt(row, "cli_version")?,
        runtime: s_opt(row, "runtime")?,
        runtime_version: s_opt(row, "runtime_version")?,
        created_at: ts(row, "created_at")?,
        deployment_id: s_opt(row, "deployment_id")?,
    })
}

fn task(row: &DbRow) -> StoreResult<WorkerTask> {
    Ok(WorkerTask {
        slug: s(row, "slug")?,
        file_path: s(row, "file_path")?,
        export_name: s_opt(row, "export_name")?,
        retry_config: s_opt(row, "retry_config")?,
        queue_name: s_opt(row, "queue_name")?,
        machine: s_opt(row, "machine")?,
        max_duration_seconds: row.try_get("max_duration_seconds").map_err(map_err)?,
        ttl: s_opt(row, "ttl")?,
        payload_schema: s_opt(row, "payload_schema")?,
        description: s_opt(row, "description")?,
        trigger_source: s_opt(row, "trigger_source")?,
        // A declaration this version cannot read is no schedule (it was valid when stored).
        schedule: s_opt::<String>(row, "schedule")?.and_then(|j| serde_json::from_str(&j).ok()),
    })
}

/// Nanoseconds since the epoch, the precision log records keep (until the year 2262; later
/// times are clamped).
fn to_nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// The queue a queued run belongs to, in SQL: the one it names, else its task's in the
/// dequeuing worker (a named queue), else `task/<id>`.
pub(crate) fn push_queue_of(q: &mut QueryBuilder<'_, Db>, tasks: &[WorkerTask]) {
    let named: Vec<&WorkerTask> = tasks.iter().filter(|t| t.queue_name.is_some()).collect();
    q.push("COALESCE(r.queue, ");
    if named.is_empty() {
        q.push("'task/' || r.task_identifier)");
        return;
    }
    q.push("CASE r.task_identifier");
    for t in named {
        q.push(" WHEN ").push_bind(t.slug.clone());
        q.push(" THEN ")
            .push_bind(t.queue_name.clone().unwrap_or_default());
    }
    q.push(" ELSE 'task/' || r.task_identifier END)");
}

/// Serialises the environment's dequeues and registrations (a row lock on PostgreSQL; the
/// single writer connection already does it on SQLite).
pub(crate) async fn lock_environment(
    conn: &mut DbConn,
    environment_id: &EnvironmentId,
) -> StoreResult<()> {
    count("lock_environment");
    sqlx::query(&format!(
        "SELECT id FROM runtime_environments WHERE id = $1{FOR_UPDATE}"
    ))
    .bind(environment_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?
    .ok_or(StoreError::NotFound)?;
    Ok(())
}

pub(crate) async fn tasks_of(conn: &mut DbConn, worker_id: &str) -> StoreResult<Vec<WorkerTask>> {
    count("worker_tasks");
    let rows = sqlx::query(&format!(
        "SELECT {TASK_COLS} FROM background_worker_tasks t WHERE t.worker_id = $1 ORDER BY t.slug"
    ))
    .bind(worker_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)?;
    rows.iter().map(task).collect()
}

/// The next version of an environment's workers on the day of `now`: `YYYYMMDD.N`.
pub(crate) fn next_version(existing: &[String], now: DateTime<Utc>) -> String {
    let day = now.format("%Y%m%d").to_string();
    let highest = existing
        .iter()
        .filter_map(|v| v.strip_prefix(&day)?.strip_prefix('.')?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    format!("{day}.{}", highest + 1)
}

impl Backend {
    /// The environment's worker matching `clause` (on `w`, with `$2` bound to `value`), with
    /// its tasks.
    async fn worker_where(
        &self,
        environment_id: &EnvironmentId,
        clause: &str,
        value: &str,
    ) -> StoreResult<Option<(Worker, Vec<WorkerTask>)>> {
        let mut conn = self.reader.acquire().await.map_err(map_err)?;
        let row = sqlx::query(&format!(
            "SELECT {WORKER_COLS} FROM background_workers w
             WHERE w.runtime_environment_id = $1 AND {clause}"
        ))
        .bind(environment_id)
        .bind(value)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
        match row {
            Some(row) => {
                let w = worker(&row)?;
                let tasks = tasks_of(&mut conn, &w.id).await?;
                Ok(Some((w, tasks)))
            }
            None => Ok(None),
        }
    }
}

#[async_trait]
impl EngineStore for Backend {
    async fn register_worker(&self, w: NewWorker, now: DateTime<Utc>) -> StoreResult<Worker> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        lock_environment(&mut tx, &w.environment_id).await?;
        // A deployment's worker takes the deployment's version; another takes the next.
        let version = match &w.deployment_id {
            Some(id) => {
                count("deployment_version");
                let row: Option<(String, String)> = sqlx::query_as(
                    "SELECT version, status FROM deployments WHERE id = $1 AND runtime_environment_id = $2",
                )
                .bind(id)
                .bind(&w.environment_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
                match row {
                    Some((version, status)) if status == "BUILDING" => version,
                    Some(_) => return Err(StoreError::conflict(ConflictKind::DeploymentIndexed)),
                    None => return Err(StoreError::NotFound),
                }
            }
            None => {
                let versions =
                    crate::deploys::versions_of_day(&mut tx, &w.environment_id, now).await?;
                next_version(&versions, now)
            }
        };
        let registered = Worker {
            id: w.id.clone(),
            friendly_id: w.friendly_id.clone(),
            environment_id: w.environment_id.clone(),
            version,
            content_hash: w.content_hash.clone(),
            sdk_version: w.sdk_version.clone(),
            cli_version: w.cli_version.clone(),
            runtime: w.runtime.clone(),
            runtime_version: w.runtime_version.clone(),
            created_at: now,
            deployment_id: w.deployment_id.clone(),
        };
        count("insert_worker");
        sqlx::query(
            "INSERT INTO background_workers (id, friendly_id, runtime_environment_id, version, content_hash,
                 sdk_version, cli_version, runtime, runtime_version, created_at, deployment_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&registered.id)
        .bind(&registered.friendly_id)
        .bind(&registered.environment_id)
        .bind(&registered.version)
        .bind(&registered.content_hash)
        .bind(registered.sdk_version.as_deref())
        .bind(registered.cli_version.as_deref())
        .bind(registered.runtime.as_deref())
        .bind(registered.runtime_version.as_deref())
        .bind(to_millis(now))
        .bind(registered.deployment_id.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        for t in &w.tasks {
            count("insert_worker_task");
            sqlx::query(
                "INSERT INTO background_worker_tasks (worker_id, slug, file_path, export_name, retry_config,
                     queue_name, machine, max_duration_seconds, ttl, payload_schema, description, trigger_source,
                     schedule)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(&registered.id)
            .bind(&t.slug)
            .bind(&t.file_path)
            .bind(t.export_name.as_deref())
            .bind(t.retry_config.as_deref())
            .bind(t.queue_name.as_deref())
            .bind(t.machine.as_deref())
            .bind(t.max_duration_seconds)
            .bind(t.ttl.as_deref())
            .bind(t.payload_schema.as_deref())
            .bind(t.description.as_deref())
            .bind(t.trigger_source.as_deref())
            .bind(
                t.schedule
                    .as_ref()
                    .and_then(|d| serde_json::to_string(d).ok()),
            )
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        for q in &w.queues {
            count("upsert_queue");
            sqlx::query(
                // An administrator's override outlives registrations: only the declared
                // limit follows the new worker then.
                "INSERT INTO task_queues (runtime_environment_id, name, concurrency_limit,
                     declared_limit, friendly_id, updated_at)
                 VALUES ($1, $2, $3, $3, $4, $5)
                 ON CONFLICT (runtime_environment_id, name) DO UPDATE
                 SET declared_limit = excluded.declared_limit,
                     concurrency_limit = CASE WHEN task_queues.overridden_at IS NULL
                         THEN excluded.concurrency_limit ELSE task_queues.concurrency_limit END,
                     friendly_id = COALESCE(task_queues.friendly_id, excluded.friendly_id),
                     updated_at = excluded.updated_at",
            )
            .bind(&w.environment_id)
            .bind(&q.name)
            .bind(q.concurrency_limit.map(i64::from))
            .bind(new_queue_friendly_id())
            .bind(to_millis(now))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        if w.deployment_id.is_none() {
            // A development CLI's build is current at once: its schedules are the
            // environment's now. A deployment's wait for its promotion.
            crate::schedules::sync_declarative(&mut tx, &w.environment_id, &w.tasks, now).await?;
        }
        if let Some(id) = &w.deployment_id {
            count("deployment_deployed");
            sqlx::query(
                "UPDATE deployments SET status = 'DEPLOYED', worker_id = $2, deployed_at = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(&registered.id)
            .bind(to_millis(now))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            crate::alerts::enqueue_alerts(
                &mut tx,
                &w.environment_id,
                ALERT_DEPLOYMENT_SUCCESS,
                alert_event::DEPLOYMENT_SUCCEEDED,
                id,
                None,
                now,
            )
            .await?;
        }
        // Runs of tasks this worker knows may now be dequeueable: wake the queue's waiters.
        let event = ChangeEvent::Queue {
            environment_id: w.environment_id.to_string(),
        };
        self.commit_and_publish(tx, vec![event]).await?;
        Ok(registered)
    }

    async fn get_worker(
        &self,
        environment_id: &EnvironmentId,
        id_or_friendly_id: &str,
    ) -> StoreResult<Option<(Worker, Vec<WorkerTask>)>> {
        count("get_worker");
        self.worker_where(
            environment_id,
            "(w.friendly_id = $2 OR w.id = $2)",
            id_or_friendly_id,
        )
        .await
    }

    async fn worker_by_version(
        &self,
        environment_id: &EnvironmentId,
        version: &str,
    ) -> StoreResult<Option<(Worker, Vec<WorkerTask>)>> {
        count("worker_by_version");
        self.worker_where(environment_id, "w.version = $2", version)
            .await
    }

    async fn queue_declared(
        &self,
        environment_id: &EnvironmentId,
        name: &str,
    ) -> StoreResult<bool> {
        count("queue_declared");
        let found: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM task_queues WHERE runtime_environment_id = $1 AND name = $2",
        )
        .bind(environment_id)
        .bind(name)
        .fetch_one(&self.reader)
        .await
        .map_err(map_err)?;
        Ok(found > 0)
    }

    async fn current_worker(
        &self,
        environment_id: &EnvironmentId,
    ) -> StoreResult<Option<(Worker, Vec<WorkerTask>)>> {
        let mut conn = self.reader.acquire().await.map_err(map_err)?;
        count("current_worker");
        // The promoted deployment's worker where the environment runs deployments; else the
        // newest (a development CLI's latest build). Two registrations in the same
        // millisecond are told apart by their version (`YYYYMMDD.N`: within a day, a longer
        // N is a larger one).
        let row = sqlx::query(&format!(
            "SELECT {WORKER_COLS} FROM runtime_environments e
             JOIN deployments d ON d.id = e.current_deployment_id
             JOIN background_workers w ON w.id = d.worker_id
             WHERE e.id = $1"
        ))
        .bind(environment_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
        let row = match row {
            Some(row) => Some(row),
            None => sqlx::query(&format!(
                "SELECT {WORKER_COLS} FROM background_workers w
                 WHERE w.runtime_environment_id = $1 AND w.deployment_id IS NULL
                 ORDER BY w.created_at DESC, LENGTH(w.version) DESC, w.version DESC LIMIT 1"
            ))
            .bind(environment_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(map_err)?,
        };
        match row {
            Some(row) => {
                let w = worker(&row)?;
                let tasks = tasks_of(&mut conn, &w.id).await?;
                Ok(Some((w, tasks)))
            }
            None => Ok(None),
        }
    }

    async fn dequeue_run(
        &self,
        environment_id: &EnvironmentId,
        worker: &Worker,
        tasks: &[WorkerTask],
        limits: DequeueLimits,
        now: DateTime<Utc>,
    ) -> StoreResult<DequeueOutcome> {
        if worker.environment_id != *environment_id {
            return Err(StoreError::NotFound);
        }
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        // Dequeues of one environment are serialised, so its limits hold across nodes.
        if let Err(e) = lock_environment(&mut tx, environment_id).await {
            tx.rollback().await.map_err(map_err)?;
            return Err(e);
        }
        // The runs holding slots, by queue and concurrency key, with their queue's limit; and
        // queues whose limit is zero or that are paused (nothing of them runs).
        count("held_slots");
        let groups: Vec<(String, Option<String>, i64, Option<i64>)> = sqlx::query_as(
            "SELECT g.q, g.k, g.n, tq.concurrency_limit FROM (
                 SELECT COALESCE(r.queue, 'task/' || r.task_identifier) AS q,
                        COALESCE(r.concurrency_key, '') AS k, COUNT(*) AS n
                 FROM task_runs r WHERE r.runtime_environment_id = $1
                   AND r.execution_status IN ('PENDING_EXECUTING', 'EXECUTING', 'PENDING_CANCEL')
                 GROUP BY COALESCE(r.queue, 'task/' || r.task_identifier), COALESCE(r.concurrency_key, '')
             ) g LEFT JOIN task_queues tq ON tq.runtime_environment_id = $1 AND tq.name = g.q
             UNION ALL
             SELECT z.name, NULL, 0, 0 FROM task_queues z
             WHERE z.runtime_environment_id = $1 AND (z.concurrency_limit = 0 OR z.paused)",
        )
        .bind(environment_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let held: i64 = groups.iter().map(|(_, _, n, _)| n).sum();
        if held >= i64::from(limits.concurrency) {
            tx.rollback().await.map_err(map_err)?;
            return Ok(DequeueOutcome::AtCapacity);
        }
        if tasks.is_empty() {
            tx.rollback().await.map_err(map_err)?;
            return Ok(DequeueOutcome::Empty {
                next_available_at: None,
            });
        }
        // A queue (or one concurrency key of it) at its limit gives none of its runs now.
        let full: Vec<(String, Option<String>)> = groups
            .into_iter()
            .filter(|(_, _, n, limit)| limit.is_some_and(|l| *n >= l))
            .map(|(q, k, _, _)| (q, k))
            .collect();
        let in_tasks = |q: &mut QueryBuilder<'_, Db>| {
            // A deployed version keeps the runs it started (a queued retry runs on the version
            // of its first attempt); a development CLI takes its environment's runs whatever
            // build they started on.
            if worker.deployment_id.is_some() {
                q.push(" AND (r.worker_id IS NULL OR r.worker_id = ")
                    .push_bind(worker.id.to_string())
                    .push(")");
            }
            q.push(" AND r.task_identifier IN (");
            let mut sep = q.separated(", ");
            for t in tasks {
                sep.push_bind(t.slug.clone());
            }
            q.push(")");
            for (name, key) in &full {
                q.push(" AND NOT (");
                push_queue_of(q, tasks);
                q.push(" = ").push_bind(name.clone());
                if let Some(key) = key {
                    q.push(" AND COALESCE(r.concurrency_key, '') = ")
                        .push_bind(key.clone());
                }
                q.push(")");
            }
        };
        count("dequeue_candidate");
        let mut q: QueryBuilder<Db> = QueryBuilder::new(format!(
            "SELECT {RUN_COLS} FROM task_runs r
             WHERE r.execution_status = 'QUEUED' AND r.status IN ('PENDING', 'RETRYING_AFTER_FAILURE')
               AND r.runtime_environment_id = "
        ));
        q.push_bind(environment_id);
        q.push(" AND r.available_at <= ").push_bind(to_millis(now));
        in_tasks(&mut q);
        q.push(format!(
            " ORDER BY r.available_at, r.id LIMIT 1{FOR_UPDATE_SKIP_LOCKED}"
        ));
        let candidate = q.build().fetch_optional(&mut *tx).await.map_err(map_err)?;
        let Some(row) = candidate else {
            count("dequeue_next_available");
            let mut q: QueryBuilder<Db> = QueryBuilder::new(
                "SELECT MIN(r.available_at) FROM task_runs r
                 WHERE r.execution_status = 'QUEUED' AND r.status IN ('PENDING', 'RETRYING_AFTER_FAILURE')
                   AND r.runtime_environment_id = ",
            );
            q.push_bind(environment_id);
            in_tasks(&mut q);
            let next: Option<i64> = q
                .build()
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?
                .try_get(0)
                .map_err(map_err)?;
            tx.rollback().await.map_err(map_err)?;
            return Ok(DequeueOutcome::Empty {
                next_available_at: next.map(taskgate_core::time::from_millis),
            });
        };
        let mut r = run(&row)?;
        let t = tasks
            .iter()
            .find(|t| t.slug == r.task_identifier)
            .cloned()
            .ok_or_else(|| {
                StoreError::Other(format!("no task {} in the worker", r.task_identifier))
            })?;
        let event = Event::Dequeue {
            max_attempts: None,
            retry: t
                .retry_config
                .as_deref()
                .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
                .and_then(|v| RetrySettings::from_json(&v)),
            max_duration_seconds: t.max_duration_seconds.and_then(|s| u32::try_from(s).ok()),
        };
        let transition = transition(&r.state(), &event, now)
            .map_err(|e| StoreError::Other(format!("dequeue of run {}: {e}", r.id)))?;
        r.worker_id = Some(worker.id.clone());
        r.task_version = Some(worker.version.clone());
        // The run holds its task's queue from now on (a trigger may have named its own).
        r.queue = r.queue.take().or_else(|| t.queue_name.clone());
        let event = self
            .commit_transition(&mut tx, &mut r, &transition, now)
            .await?;
        self.commit_local(tx, event.into_iter().collect()).await?;
        Ok(DequeueOutcome::Taken(Box::new(Dequeued {
            run: r,
            worker: worker.clone(),
            task: t,
        })))
    }

    async fn queue_length(&self, environment_id: &EnvironmentId, up_to: u64) -> StoreResult<u64> {
        count("queue_length");
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM (SELECT 1 FROM task_runs WHERE runtime_environment_id = $1
                 AND execution_status IN ('QUEUED', 'DELAYED') LIMIT $2) q",
        )
        .bind(environment_id)
        .bind(i64::try_from(up_to).unwrap_or(i64::MAX))
        .fetch_one(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn set_env_vars(
        &self,
        environment_id: &EnvironmentId,
        vars: &[NewEnvVar],
        overwrite: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let conflict = if overwrite {
            "DO UPDATE SET value_sealed = excluded.value_sealed, is_secret = excluded.is_secret,
                 updated_at = excluded.updated_at"
        } else {
            "DO NOTHING"
        };
        let mut written = 0;
        for v in vars {
            count("set_env_var");
            written += sqlx::query(&format!(
                "INSERT INTO environment_variables (runtime_environment_id, key, value_sealed, is_secret, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $5)
                 ON CONFLICT (runtime_environment_id, key) {conflict}"
            ))
            .bind(environment_id)
            .bind(&v.key)
            .bind(&v.value_sealed)
            .bind(v.is_secret)
            .bind(to_millis(now))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        }
        let event = ChangeEvent::EnvVars {
            environment_id: environment_id.to_string(),
        };
        self.commit_and_publish(tx, vec![event]).await?;
        Ok(written)
    }

    async fn list_env_vars(&self, environment_id: &EnvironmentId) -> StoreResult<Vec<EnvVar>> {
        count("list_env_vars");
        let rows = sqlx::query(
            "SELECT key, value_sealed, is_secret, created_at, updated_at FROM environment_variables
             WHERE runtime_environment_id = $1 ORDER BY key",
        )
        .bind(environment_id)
        .fetch_all(&self.writer)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(EnvVar {
                    key: s(r, "key")?,
                    value_sealed: s(r, "value_sealed")?,
                    is_secret: r.try_get("is_secret").map_err(map_err)?,
                    created_at: ts(r, "created_at")?,
                    updated_at: ts(r, "updated_at")?,
                })
            })
            .collect()
    }

    async fn delete_env_var(&self, environment_id: &EnvironmentId, key: &str) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("delete_env_var");
        let done = sqlx::query(
            "DELETE FROM environment_variables WHERE runtime_environment_id = $1 AND key = $2",
        )
        .bind(environment_id)
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let event = ChangeEvent::EnvVars {
            environment_id: environment_id.to_string(),
        };
        self.commit_and_publish(tx, vec![event]).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn append_run_logs(
        &self,
        environment_id: &EnvironmentId,
        logs: &[NewRunLog],
    ) -> StoreResult<u64> {
        if logs.is_empty() {
            return Ok(0);
        }
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let mut stored = 0;
        for log in logs {
            count("append_run_log");
            stored += sqlx::query(
                "INSERT INTO task_run_logs (run_id, attempt_number, time_unix_nano, severity, message, attributes)
                 SELECT r.id, $3, $4, $5, $6, $7 FROM task_runs r
                 WHERE r.runtime_environment_id = $1 AND r.friendly_id = $2",
            )
            .bind(environment_id)
            .bind(&log.run_friendly_id)
            .bind(log.attempt_number)
            .bind(to_nanos(log.time))
            .bind(&log.severity)
            .bind(&log.message)
            .bind(log.attributes.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        }
        tx.commit().await.map_err(map_err)?;
        Ok(stored)
    }

    async fn append_run_spans(
        &self,
        environment_id: &EnvironmentId,
        spans: &[NewRunSpan],
    ) -> StoreResult<u64> {
        if spans.is_empty() {
            return Ok(0);
        }
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let mut stored = 0;
        for new in spans {
            count("append_run_span");
            let span = &new.span;
            stored += sqlx::query(
                "INSERT INTO task_run_spans (run_id, span_id, parent_span_id, attempt_number, name,
                     start_unix_nano, end_unix_nano, is_error, attributes)
                 SELECT r.id, $3, $4, $5, $6, $7, $8, $9, $10 FROM task_runs r
                 WHERE r.runtime_environment_id = $1 AND r.friendly_id = $2
                 ON CONFLICT (run_id, span_id) DO UPDATE SET
                     parent_span_id = excluded.parent_span_id, attempt_number = excluded.attempt_number,
                     name = excluded.name, start_unix_nano = excluded.start_unix_nano,
                     end_unix_nano = excluded.end_unix_nano, is_error = excluded.is_error,
                     attributes = excluded.attributes",
            )
            .bind(environment_id)
            .bind(&new.run_friendly_id)
            .bind(&span.span_id)
            .bind(span.parent_span_id.as_deref())
            .bind(span.attempt_number)
            .bind(&span.name)
            .bind(to_nanos(span.start))
            .bind(to_nanos(span.end))
            .bind(span.is_error)
            .bind(span.attributes.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        }
        tx.commit().await.map_err(map_err)?;
        Ok(stored)
    }

    async fn list_run_spans(&self, run_id: &RunId, limit: u32) -> StoreResult<Vec<RunSpan>> {
        count("list_run_spans");
        let rows = sqlx::query(
            "SELECT span_id, parent_span_id, attempt_number, name, start_unix_nano, end_unix_nano,
                    is_error, attributes
             FROM task_run_spans WHERE run_id = $1 ORDER BY start_unix_nano, span_id LIMIT $2",
        )
        .bind(run_id)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let nanos = |col: &str| -> StoreResult<DateTime<Utc>> {
                    Ok(DateTime::from_timestamp_nanos(
                        r.try_get(col).map_err(map_err)?,
                    ))
                };
                Ok(RunSpan {
                    span_id: s(r, "span_id")?,
                    parent_span_id: s_opt(r, "parent_span_id")?,
                    attempt_number: r.try_get("attempt_number").map_err(map_err)?,
                    name: s(r, "name")?,
                    start: nanos("start_unix_nano")?,
                    end: nanos("end_unix_nano")?,
                    is_error: r.try_get("is_error").map_err(map_err)?,
                    attributes: s_opt(r, "attributes")?,
                })
            })
            .collect()
    }

    async fn list_run_logs(
        &self,
        run_id: &RunId,
        after: Option<(DateTime<Utc>, i64)>,
        limit: u32,
    ) -> StoreResult<Vec<RunLog>> {
        count("list_run_logs");
        let (after_ns, after_seq) = after.map_or((i64::MIN, i64::MIN), |(t, s)| (to_nanos(t), s));
        let rows = sqlx::query(
            "SELECT seq, attempt_number, time_unix_nano, severity, message, attributes FROM task_run_logs
             WHERE run_id = $1 AND (time_unix_nano > $2 OR (time_unix_nano = $2 AND seq > $3))
             ORDER BY time_unix_nano, seq LIMIT $4",
        )
        .bind(run_id)
        .bind(after_ns)
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(RunLog {
                    seq: r.try_get("seq").map_err(map_err)?,
                    attempt_number: r.try_get("attempt_number").map_err(map_err)?,
                    time: DateTime::from_timestamp_nanos(
                        r.try_get("time_unix_nano").map_err(map_err)?,
                    ),
                    severity: s(r, "severity")?,
                    message: s(r, "message")?,
                    attributes: s_opt(r, "attributes")?,
                })
            })
            .collect()
    }

    async fn touch_dev_presence(
        &self,
        environment_id: &EnvironmentId,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        count("touch_dev_presence");
        sqlx::query(
            "INSERT INTO dev_presence (runtime_environment_id, last_seen_at) VALUES ($1, $2)
             ON CONFLICT (runtime_environment_id) DO UPDATE SET last_seen_at = excluded.last_seen_at",
        )
        .bind(environment_id)
        .bind(to_millis(now))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn dev_presence(
        &self,
        environment_id: &EnvironmentId,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        count("dev_presence");
        let row =
            sqlx::query("SELECT last_seen_at FROM dev_presence WHERE runtime_environment_id = $1")
                .bind(environment_id)
                .fetch_optional(&self.writer)
                .await
                .map_err(map_err)?;
        row.as_ref().map(|r| ts(r, "last_seen_at")).transpose()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::next_version;

    #[test]
    fn versions_count_up_within_a_day() {
        let day = chrono::Utc
            .with_ymd_and_hms(2026, 11, 27, 9, 0, 0)
            .single()
            .unwrap_or_default();
        assert_eq!(next_version(&[], day), "20261127.1");
        let seen = [
            "20261127.1".to_string(),
            "20261127.9".into(),
            "20261126.40".into(),
        ];
        assert_eq!(next_version(&seen, day), "20261127.10");
    }
}
