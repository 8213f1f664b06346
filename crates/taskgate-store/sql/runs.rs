//! Runs, batches and streams.
//!
//! Compiled into both backends (`#[path]` modules of `taskgate-store-sqlite` and
//! `taskgate-store-postgres`) against their `backend` module: see `README.md` beside this file.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};
use taskgate_core::engine::{
    transition, AttemptChange, AttemptOutcome, EngineError, Event, ExecutionStatus, RunStatus,
    Transition,
};
use taskgate_core::ids::{
    new_snapshot_friendly_id, BatchFriendlyId, BatchId, EnvironmentId, RunFriendlyId, RunId,
};
use taskgate_core::task_error::TaskRunError;
use taskgate_core::time::{from_millis, to_millis};
use taskgate_store::*;

use crate::backend::*;
use crate::count;
use crate::error::map_err;
use crate::rows::{s, s_opt, ts, ts_opt};

/// With a tag filter matching fewer tagged runs than this (in any environment), a run list is
/// read from the tags' index and sorted rather than walked in creation order.
const TAG_DRIVEN_RUNS: i64 = 2_000;

pub(crate) const RUN_COLS: &str = "r.id, r.friendly_id, r.runtime_environment_id, r.task_identifier, r.status, r.payload, r.payload_type,
    r.output, r.output_type, r.error, r.tags, r.metadata, r.metadata_type, r.idempotency_key, r.idempotency_key_user,
    r.idempotency_key_expires_at, r.queue, r.concurrency_key, r.max_attempts, r.machine, r.ttl, r.ttl_expires_at,
    r.delay_until, r.batch_id, r.is_test, r.schedule_id, r.created_at, r.updated_at, r.started_at, r.completed_at, r.expired_at, r.version,
    r.execution_status, r.snapshot_id, r.snapshot_description, r.snapshot_at, r.attempt_number, r.attempt_started_at, r.heartbeat_at,
    r.available_at, r.worker_id, r.task_version, r.max_duration_seconds, r.retry_config, r.is_development, r.is_replay,
    r.parent_run_id, r.resume_parent_on_completion, r.completed_waitpoints, r.snapshot_batch_id";

/// A status column's value, refusing anything the engine does not know.
fn status_col<T>(row: &DbRow, col: &str, parse: fn(&str) -> Option<T>) -> StoreResult<T> {
    let v: String = s(row, col)?;
    parse(&v).ok_or_else(|| StoreError::Other(format!("corrupt {col}: {v:?}")))
}

pub(crate) fn run(row: &DbRow) -> StoreResult<Run> {
    let tags: String = s(row, "tags")?;
    Ok(Run {
        id: s(row, "id")?,
        friendly_id: s(row, "friendly_id")?,
        environment_id: s(row, "runtime_environment_id")?,
        task_identifier: s(row, "task_identifier")?,
        status: status_col(row, "status", RunStatus::parse)?,
        execution_status: status_col(row, "execution_status", ExecutionStatus::parse)?,
        snapshot_id: s(row, "snapshot_id")?,
        snapshot_description: s(row, "snapshot_description")?,
        snapshot_at: ts(row, "snapshot_at")?,
        attempt_number: row.try_get("attempt_number").map_err(map_err)?,
        attempt_started_at: ts_opt(row, "attempt_started_at")?,
        heartbeat_at: ts_opt(row, "heartbeat_at")?,
        available_at: ts_opt(row, "available_at")?,
        worker_id: s_opt(row, "worker_id")?,
        task_version: s_opt(row, "task_version")?,
        max_duration_seconds: row.try_get("max_duration_seconds").map_err(map_err)?,
        retry_config: s_opt(row, "retry_config")?,
        is_development: row.try_get("is_development").map_err(map_err)?,
        is_replay: row.try_get("is_replay").map_err(map_err)?,
        payload: s_opt(row, "payload")?,
        payload_type: s(row, "payload_type")?,
        output: s_opt(row, "output")?,
        output_type: s_opt(row, "output_type")?,
        error: s_opt(row, "error")?,
        tags: serde_json::from_str(&tags)
            .map_err(|e| StoreError::Other(format!("corrupt tags: {e}")))?,
        metadata: s_opt(row, "metadata")?,
        metadata_type: s_opt(row, "metadata_type")?,
        idempotency_key: s_opt(row, "idempotency_key")?,
        idempotency_key_user: s_opt(row, "idempotency_key_user")?,
        idempotency_key_expires_at: ts_opt(row, "idempotency_key_expires_at")?,
        queue: s_opt(row, "queue")?,
        concurrency_key: s_opt(row, "concurrency_key")?,
        max_attempts: row.try_get("max_attempts").map_err(map_err)?,
        machine: s_opt(row, "machine")?,
        ttl: s_opt(row, "ttl")?,
        ttl_expires_at: ts_opt(row, "ttl_expires_at")?,
        delay_until: ts_opt(row, "delay_until")?,
        batch_id: s_opt(row, "batch_id")?,
        parent_run_id: s_opt(row, "parent_run_id")?,
        resume_parent_on_completion: row
            .try_get("resume_parent_on_completion")
            .map_err(map_err)?,
        completed_waitpoints: s_opt(row, "completed_waitpoints")?,
        snapshot_batch_id: s_opt(row, "snapshot_batch_id")?,
        is_test: row.try_get("is_test").map_err(map_err)?,
        schedule_id: s_opt(row, "schedule_id")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        started_at: ts_opt(row, "started_at")?,
        completed_at: ts_opt(row, "completed_at")?,
        expired_at: ts_opt(row, "expired_at")?,
        version: row.try_get("version").map_err(map_err)?,
    })
}

fn batch(row: &DbRow) -> StoreResult<Batch> {
    Ok(Batch {
        id: s(row, "id")?,
        friendly_id: s(row, "friendly_id")?,
        environment_id: s(row, "runtime_environment_id")?,
        run_count: row.try_get("run_count").map_err(map_err)?,
        idempotency_key: s_opt(row, "idempotency_key")?,
        created_at: ts(row, "created_at")?,
        sealed: row.try_get("sealed").map_err(map_err)?,
        parent_run_id: s_opt(row, "parent_run_id")?,
        resume_parent_on_completion: row
            .try_get("resume_parent_on_completion")
            .map_err(map_err)?,
    })
}

/// `statement`, and when `notify` is given, `pg_notify` of it in the same statement (one round
/// trip): PostgreSQL tells other nodes of a write as it makes it.
fn with_notify(statement: &str, notify: &Option<(String, String)>, next_param: usize) -> String {
    match notify {
        Some(_) => format!(
            "WITH w AS ({statement} RETURNING id) SELECT pg_notify(${next_param}, ${}) FROM w",
            next_param + 1
        ),
        None => statement.to_string(),
    }
}

/// The run of `environment_id`'s `task` holding idempotency key `key`, if any.
async fn idempotent_run(
    conn: &mut DbConn,
    environment_id: &str,
    task: &str,
    key: &str,
) -> StoreResult<Option<Run>> {
    count("find_idempotent_run");
    let row = sqlx::query(&format!(
        "SELECT {RUN_COLS} FROM task_runs r
         WHERE r.runtime_environment_id = $1 AND r.task_identifier = $2 AND r.idempotency_key = $3"
    ))
    .bind(environment_id)
    .bind(task)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?;
    row.as_ref().map(run).transpose()
}

/// Inserts a run (and its tags), sending `notify` with it.
async fn insert_run(
    conn: &mut DbConn,
    r: &Run,
    notify: Option<(String, String)>,
) -> StoreResult<()> {
    count("insert_run");
    let tags = serde_json::to_string(&r.tags).map_err(|e| StoreError::Other(e.to_string()))?;
    let sql = with_notify(
        "INSERT INTO task_runs (id, friendly_id, runtime_environment_id, task_identifier, status, payload, payload_type,
             output, output_type, error, tags, metadata, metadata_type, idempotency_key, idempotency_key_user,
             idempotency_key_expires_at, queue, concurrency_key, max_attempts, machine, ttl, ttl_expires_at,
             delay_until, batch_id, is_test, created_at, updated_at, started_at, completed_at, expired_at, version,
             execution_status, snapshot_id, snapshot_description, snapshot_at, attempt_number, heartbeat_at,
             available_at, due_at, worker_id, task_version, max_duration_seconds, retry_config, is_development, is_replay,
             attempt_started_at, parent_run_id, resume_parent_on_completion, schedule_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
                 $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37, $38, $39, $40, $41, $42,
                 $43, $44, $45, $46, $47, $48, $49)",
        &notify,
        50,
    );
    let mut q = sqlx::query(&sql)
        .bind(&r.id)
        .bind(&r.friendly_id)
        .bind(&r.environment_id)
        .bind(&r.task_identifier)
        .bind(r.status.as_str())
        .bind(r.payload.as_deref())
        .bind(&r.payload_type)
        .bind(r.output.as_deref())
        .bind(r.output_type.as_deref())
        .bind(r.error.as_deref())
        .bind(tags)
        .bind(r.metadata.as_deref())
        .bind(r.metadata_type.as_deref())
        .bind(r.idempotency_key.as_deref())
        .bind(r.idempotency_key_user.as_deref())
        .bind(r.idempotency_key_expires_at.map(to_millis))
        .bind(r.queue.as_deref())
        .bind(r.concurrency_key.as_deref())
        .bind(r.max_attempts)
        .bind(r.machine.as_deref())
        .bind(r.ttl.as_deref())
        .bind(r.ttl_expires_at.map(to_millis))
        .bind(r.delay_until.map(to_millis))
        .bind(r.batch_id.as_deref())
        .bind(r.is_test)
        .bind(to_millis(r.created_at))
        .bind(to_millis(r.updated_at))
        .bind(r.started_at.map(to_millis))
        .bind(r.completed_at.map(to_millis))
        .bind(r.expired_at.map(to_millis))
        .bind(r.version)
        .bind(r.execution_status.as_str())
        .bind(&r.snapshot_id)
        .bind(&r.snapshot_description)
        .bind(to_millis(r.snapshot_at))
        .bind(r.attempt_number)
        .bind(r.heartbeat_at.map(to_millis))
        .bind(r.available_at.map(to_millis))
        .bind(r.due_at().map(to_millis))
        .bind(r.worker_id.as_deref())
        .bind(r.task_version.as_deref())
        .bind(r.max_duration_seconds)
        .bind(r.retry_config.as_deref())
        .bind(r.is_development)
        .bind(r.is_replay)
        .bind(r.attempt_started_at.map(to_millis))
        .bind(r.parent_run_id.as_deref())
        .bind(r.resume_parent_on_completion)
        .bind(r.schedule_id.as_deref());
    if let Some((channel, payload)) = notify {
        q = q.bind(channel).bind(payload);
    }
    q.execute(&mut *conn).await.map_err(map_err)?;
    insert_tags(conn, &r.id, &r.tags).await
}

/// Indexes `tags` of run `run_id` (those it has already are left as they are).
async fn insert_tags(conn: &mut DbConn, run_id: &RunId, tags: &[String]) -> StoreResult<()> {
    for tag in tags {
        count("insert_run_tag");
        sqlx::query(
            "INSERT INTO task_run_tags (run_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(run_id)
        .bind(tag)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    }
    Ok(())
}

/// Writes every column a transition or a completion can change (and `due_at`, derived),
/// sending `notify` with it.
pub(crate) async fn write_run(
    conn: &mut DbConn,
    r: &Run,
    notify: Option<(String, String)>,
) -> StoreResult<()> {
    count("write_run");
    let sql = with_notify(
        "UPDATE task_runs SET status = $2, execution_status = $3, snapshot_id = $4, snapshot_description = $5,
             snapshot_at = $6, attempt_number = $7, heartbeat_at = $8, available_at = $9, due_at = $10,
             worker_id = $11, task_version = $12, max_duration_seconds = $13, retry_config = $14, max_attempts = $15,
             output = $16, output_type = $17, error = $18, metadata = $19, metadata_type = $20, started_at = $21,
             completed_at = $22, expired_at = $23, updated_at = $24, version = $25, attempt_started_at = $26,
             completed_waitpoints = $27, snapshot_batch_id = $28, queue = $29
         WHERE id = $1",
        &notify,
        30,
    );
    let mut q = sqlx::query(&sql)
        .bind(&r.id)
        .bind(r.status.as_str())
        .bind(r.execution_status.as_str())
        .bind(&r.snapshot_id)
        .bind(&r.snapshot_description)
        .bind(to_millis(r.snapshot_at))
        .bind(r.attempt_number)
        .bind(r.heartbeat_at.map(to_millis))
        .bind(r.available_at.map(to_millis))
        .bind(r.due_at().map(to_millis))
        .bind(r.worker_id.as_deref())
        .bind(r.task_version.as_deref())
        .bind(r.max_duration_seconds)
        .bind(r.retry_config.as_deref())
        .bind(r.max_attempts)
        .bind(r.output.as_deref())
        .bind(r.output_type.as_deref())
        .bind(r.error.as_deref())
        .bind(r.metadata.as_deref())
        .bind(r.metadata_type.as_deref())
        .bind(r.started_at.map(to_millis))
        .bind(r.completed_at.map(to_millis))
        .bind(r.expired_at.map(to_millis))
        .bind(to_millis(r.updated_at))
        .bind(r.version)
        .bind(r.attempt_started_at.map(to_millis))
        .bind(r.completed_waitpoints.as_deref())
        .bind(r.snapshot_batch_id.as_deref())
        .bind(r.queue.as_deref());
    if let Some((channel, payload)) = notify {
        q = q.bind(channel).bind(payload);
    }
    q.execute(&mut *conn).await.map_err(map_err)?;
    Ok(())
}

impl Backend {
    /// Applies a transition to `r` and writes it, recording the attempt it ends: what every run
    /// event shares (worker events, cancellations, the sweeper, dequeues). When the run has
    /// just finished, those waiting for it are told in the same transaction
    /// ([`Self::on_run_finished`]). Returns the change events: already sent to other nodes
    /// with the writes, they are this node's to deliver after the commit
    /// ([`Self::commit_local`]).
    pub(crate) async fn commit_transition(
        &self,
        conn: &mut DbConn,
        r: &mut Run,
        t: &Transition,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<ChangeEvent>> {
        let was_final = r.status.is_final();
        let mut events: Vec<ChangeEvent> = self
            .write_transition(conn, r, t, now)
            .await?
            .into_iter()
            .collect();
        if !was_final && r.status.is_final() {
            events.extend(self.on_run_finished(conn, r, now).await?);
        }
        Ok(events)
    }

    /// [`Self::commit_transition`] without telling anyone waiting: for a transition that
    /// cannot finish the run (a wait continuing), and what that one is built on. An attempt in
    /// progress lives on the run row; its own row is written once, when it ends.
    pub(crate) async fn write_transition(
        &self,
        conn: &mut DbConn,
        r: &mut Run,
        t: &Transition,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ChangeEvent>> {
        let attempt_started_at = r.attempt_started_at.unwrap_or(r.snapshot_at);
        let was_final = r.status.is_final();
        r.apply(t, new_snapshot_friendly_id().into(), now);
        match t.attempt {
            AttemptChange::None => {}
            AttemptChange::Started(_) => r.attempt_started_at = Some(now),
            AttemptChange::Ended { outcome, ref error } => {
                count("end_attempt");
                let error = error.as_ref().and_then(|e| serde_json::to_string(e).ok());
                sqlx::query(
                    "INSERT INTO task_run_attempts (run_id, number, status, worker_id, started_at, completed_at, error)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&r.id)
                .bind(r.attempt_number)
                .bind(outcome.as_str())
                .bind(r.worker_id.as_deref())
                .bind(to_millis(attempt_started_at))
                .bind(to_millis(now))
                .bind(error)
                .execute(&mut *conn)
                .await
                .map_err(map_err)?;
            }
        }
        let event = t.snapshot.is_some().then(|| run_event(r));
        let note = match &event {
            Some(e) => self.notification(e)?,
            None => None,
        };
        write_run(conn, r, note).await?;
        // A run that has just failed for good is one occurrence of its error's group, counted
        // in this transaction so that a group's counts never disagree with its runs.
        if !was_final && r.status.is_error_outcome() {
            if let Some(error) = r
                .error
                .as_deref()
                .and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok())
            {
                let occurrence = ErrorOccurrence {
                    environment_id: &r.environment_id,
                    task_identifier: &r.task_identifier,
                    task_version: r.task_version.as_deref(),
                    error: &error,
                    run_created_at: r.created_at,
                };
                self.record_occurrence(conn, &occurrence, Some(&r.id), now)
                    .await?;
            }
            crate::alerts::enqueue_alerts(
                conn,
                &r.environment_id,
                ALERT_TASK_RUN,
                alert_event::RUN_FAILED,
                &r.friendly_id,
                Some(&r.task_identifier),
                now,
            )
            .await?;
        }
        Ok(event)
    }

    /// Commits, then delivers `events` (already sent to other nodes inside the transaction)
    /// to this node's hooks and subscribers.
    pub(crate) async fn commit_local(
        &self,
        tx: sqlx::Transaction<'_, Db>,
        events: Vec<ChangeEvent>,
    ) -> StoreResult<()> {
        tx.commit().await.map_err(map_err)?;
        for e in events {
            self.publish_local(e);
        }
        Ok(())
    }
}

pub(crate) fn run_event(r: &Run) -> ChangeEvent {
    ChangeEvent::Run {
        run_id: r.id.to_string(),
        friendly_id: r.friendly_id.to_string(),
        environment_id: r.environment_id.to_string(),
        version: r.version,
        execution_status: r.execution_status.as_str().to_string(),
        // The worker running it acts at once on a cancellation, an end without it, a wait
        // beginning and a wait's end (its waitpoints reach the process only through a
        // snapshot it fetches).
        notify_worker: matches!(
            r.execution_status,
            ExecutionStatus::PendingCancel
                | ExecutionStatus::Finished
                | ExecutionStatus::ExecutingWithWaitpoints
        ) || r.completed_waitpoints.is_some(),
    }
}

/// The run a live request key points at.
async fn request_key_run(
    conn: &mut DbConn,
    rk: &RequestKey,
    now: DateTime<Utc>,
) -> StoreResult<Option<Run>> {
    count("find_request_key_run");
    let row = sqlx::query(&format!(
        "SELECT {RUN_COLS} FROM request_idempotency_keys k JOIN task_runs r ON r.id = k.run_id
         WHERE k.key_hash = $1 AND k.expires_at > $2"
    ))
    .bind(&rk.hash)
    .bind(to_millis(now))
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?;
    row.as_ref().map(run).transpose()
}

/// Records the use of a one-time-use token for what it created (a run or a batch);
/// `Conflict{"one_time_use_tokens"}` when it was used before.
async fn spend_one_time_token(
    conn: &mut DbConn,
    marker: &str,
    created_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    count("consume_one_time_token");
    sqlx::query(
        "INSERT INTO one_time_use_tokens (token_hash, run_id, used_at) VALUES ($1, $2, $3)",
    )
    .bind(marker)
    .bind(created_id)
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await
    .map_err(|e| match map_err(e) {
        StoreError::Conflict { .. } => StoreError::conflict(ConflictKind::OneTimeUseToken),
        other => other,
    })?;
    Ok(())
}

impl Backend {
    /// Sends `events` inside `tx` (to other nodes, on commit), commits, then delivers them to
    /// this node's hooks and subscribers: the end of every use case that changes what others
    /// may have cached or be waiting on.
    pub(crate) async fn commit_and_publish(
        &self,
        mut tx: sqlx::Transaction<'_, Db>,
        events: Vec<ChangeEvent>,
    ) -> StoreResult<()> {
        for e in &events {
            self.notify_in(&mut tx, e).await?;
        }
        tx.commit().await.map_err(map_err)?;
        for e in events {
            self.publish_local(e);
        }
        Ok(())
    }
}

impl Backend {
    async fn get_run_on(
        &self,
        pool: &Pool,
        environment_id: &EnvironmentId,
        friendly_id: &RunFriendlyId,
    ) -> StoreResult<Option<Run>> {
        count("get_run");
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLS} FROM task_runs r WHERE r.runtime_environment_id = $1 AND r.friendly_id = $2"
        ))
        .bind(environment_id)
        .bind(friendly_id)
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(run).transpose()
    }
}

/// When expired request keys were last purged (epoch ms), so a busy node purges once a minute.
static REQUEST_KEYS_PURGED_AT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

impl Backend {
    /// Deletes expired request keys, at most once a minute per process; best effort (a key
    /// that outlives its window is ignored by lookups and taken over by its next use).
    async fn purge_request_keys(&self, now: DateTime<Utc>) {
        use std::sync::atomic::Ordering;
        let now_ms = to_millis(now);
        let last = REQUEST_KEYS_PURGED_AT.load(Ordering::Relaxed);
        if now_ms - last < 60_000
            || REQUEST_KEYS_PURGED_AT
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        count("purge_request_keys");
        if let Err(e) = sqlx::query("DELETE FROM request_idempotency_keys WHERE expires_at <= $1")
            .bind(now_ms)
            .execute(&self.writer)
            .await
        {
            tracing::warn!(error = %e, "cannot purge expired request keys");
        }
    }
}

impl Backend {
    /// The trigger itself, in one transaction: request key, one-time token, idempotency key
    /// and the insert.
    async fn trigger_once(
        &self,
        trigger: NewTrigger,
        now: DateTime<Utc>,
    ) -> StoreResult<Triggered> {
        let NewTrigger {
            run: new,
            idempotency,
            one_time_use,
            request_key,
            wait: _,
            debounce,
        } = trigger;
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        // A retry of a request that already created a run: that run, whatever else has
        // happened since (its one-time token is spent by then, its idempotency key may be).
        if let Some(rk) = &request_key {
            if let Some(old) = request_key_run(&mut tx, rk, now).await? {
                tx.rollback().await.map_err(map_err)?;
                return Ok(Triggered {
                    run: old,
                    cached: false,
                });
            }
        }
        if let Some(marker) = &one_time_use {
            spend_one_time_token(&mut tx, marker, &new.friendly_id, now).await?;
        }
        let mut new = new;
        if let Some(idem) = &idempotency {
            let existing = idempotent_run(
                &mut tx,
                &new.environment_id,
                &new.task_identifier,
                &idem.key,
            )
            .await?;
            if let Some(old) = existing {
                let expired = old.idempotency_key_expires_at.is_some_and(|at| at <= now);
                if !expired && !old.status.releases_idempotency_key() {
                    tx.rollback().await.map_err(map_err)?;
                    return Ok(Triggered {
                        run: old,
                        cached: true,
                    });
                }
                count("release_idempotency_key");
                sqlx::query("UPDATE task_runs SET idempotency_key = NULL WHERE id = $1")
                    .bind(&old.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
            }
            new.idempotency_key = Some(idem.key.clone());
            new.idempotency_key_user = idem.user_key.clone();
            new.idempotency_key_expires_at = Some(idem.expires_at);
        }
        if let Some(d) = &debounce {
            if let Some(pushed) = self.push_debounced(&mut tx, &new, d, now).await? {
                let event = run_event(&pushed);
                self.commit_local(tx, vec![event]).await?;
                return Ok(Triggered {
                    run: pushed,
                    cached: false,
                });
            }
        }
        let created = run_event(&new);
        match insert_run(&mut tx, &new, self.notification(&created)?).await {
            Ok(()) => {}
            // A concurrent trigger with the same idempotency key committed first (the insert
            // waited for it): answer with its run, as any cached hit is answered.
            Err(StoreError::Conflict { .. }) if idempotency.is_some() => {
                tx.rollback().await.map_err(map_err)?;
                let mut conn = self.writer.acquire().await.map_err(map_err)?;
                let key = idempotency.as_ref().map(|i| i.key.as_str()).unwrap_or("");
                return match idempotent_run(
                    &mut conn,
                    &new.environment_id,
                    &new.task_identifier,
                    key,
                )
                .await?
                {
                    Some(old) => Ok(Triggered {
                        run: old,
                        cached: true,
                    }),
                    None => Err(StoreError::conflict(ConflictKind::RunIdempotencyKey)),
                };
            }
            Err(e) => return Err(e),
        }
        if let Some(rk) = &request_key {
            count("insert_request_key");
            // An expired row of the same key is taken over; a live one means a concurrent
            // attempt of the same request committed first.
            let stored = sqlx::query(
                "INSERT INTO request_idempotency_keys (key_hash, run_id, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (key_hash) DO UPDATE SET run_id = excluded.run_id, expires_at = excluded.expires_at
                 WHERE request_idempotency_keys.expires_at <= $4",
            )
            .bind(&rk.hash)
            .bind(&new.id)
            .bind(to_millis(rk.expires_at))
            .bind(to_millis(now))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
            if stored == 0 {
                tx.rollback().await.map_err(map_err)?;
                let mut conn = self.writer.acquire().await.map_err(map_err)?;
                return match request_key_run(&mut conn, rk, now).await? {
                    Some(old) => Ok(Triggered {
                        run: old,
                        cached: false,
                    }),
                    None => Err(StoreError::conflict(ConflictKind::RequestKey)),
                };
            }
        }
        self.commit_local(tx, vec![created]).await?;
        if request_key.is_some() {
            self.purge_request_keys(now).await;
        }
        Ok(Triggered {
            run: new,
            cached: false,
        })
    }
}

impl Backend {
    /// A debounced trigger (its run `new` not yet inserted): pushes the key's delayed run back
    /// to `delay` from now and returns it (with the trigger's data in trailing mode), or, when
    /// the key has no delayed run or pushing it would pass `max_delay` from its first trigger,
    /// records `new` as the key's run and returns `None` for the caller to insert it. The key's
    /// row is made first and then locked, so concurrent triggers of one key take turns.
    async fn push_debounced(
        &self,
        conn: &mut DbConn,
        new: &Run,
        d: &Debounce,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Run>> {
        count("debounce_key");
        sqlx::query(
            "INSERT INTO debounced_runs (runtime_environment_id, task_identifier, debounce_key, run_id, first_at)
             VALUES ($1, $2, $3, '', $4) ON CONFLICT DO NOTHING",
        )
        .bind(&new.environment_id)
        .bind(&new.task_identifier)
        .bind(&d.key)
        .bind(to_millis(now))
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        let (run_id, first_at): (String, i64) = sqlx::query_as(&format!(
            "SELECT run_id, first_at FROM debounced_runs
             WHERE runtime_environment_id = $1 AND task_identifier = $2 AND debounce_key = $3{FOR_UPDATE}"
        ))
        .bind(&new.environment_id)
        .bind(&new.task_identifier)
        .bind(&d.key)
        .fetch_one(&mut *conn)
        .await
        .map_err(map_err)?;
        let until = now + d.delay;
        let current = if run_id.is_empty() {
            None
        } else {
            count("debounced_run");
            let row = sqlx::query(&format!(
                "SELECT {RUN_COLS} FROM task_runs r WHERE r.id = $1{FOR_UPDATE}"
            ))
            .bind(&run_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(map_err)?;
            row.as_ref().map(run).transpose()?
        };
        let within = |first: DateTime<Utc>| d.max_delay.is_none_or(|max| until <= first + max);
        if let Some(mut r) = current.filter(|r| {
            r.execution_status == ExecutionStatus::Delayed && within(from_millis(first_at))
        }) {
            r.available_at = Some(until);
            r.delay_until = Some(until);
            r.updated_at = now;
            r.version += 1;
            if d.trailing {
                r.payload = new.payload.clone();
                r.payload_type = new.payload_type.clone();
                r.metadata = new.metadata.clone();
                r.metadata_type = new.metadata_type.clone();
                r.max_attempts = new.max_attempts;
                r.machine = new.machine.clone();
                r.tags = new.tags.clone();
            }
            let event = run_event(&r);
            write_run(conn, &r, self.notification(&event)?).await?;
            count("push_debounced_run");
            let tags =
                serde_json::to_string(&r.tags).map_err(|e| StoreError::Other(e.to_string()))?;
            sqlx::query(
                "UPDATE task_runs SET delay_until = $2, payload = $3, payload_type = $4, tags = $5, machine = $6
                 WHERE id = $1",
            )
            .bind(&r.id)
            .bind(to_millis(until))
            .bind(r.payload.as_deref())
            .bind(&r.payload_type)
            .bind(tags)
            .bind(r.machine.as_deref())
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
            if d.trailing {
                count("replace_run_tags");
                sqlx::query("DELETE FROM task_run_tags WHERE run_id = $1")
                    .bind(&r.id)
                    .execute(&mut *conn)
                    .await
                    .map_err(map_err)?;
                insert_tags(conn, &r.id, &r.tags).await?;
            }
            return Ok(Some(r));
        }
        count("debounce_new_run");
        sqlx::query(
            "UPDATE debounced_runs SET run_id = $4, first_at = $5
             WHERE runtime_environment_id = $1 AND task_identifier = $2 AND debounce_key = $3",
        )
        .bind(&new.environment_id)
        .bind(&new.task_identifier)
        .bind(&d.key)
        .bind(&new.id)
        .bind(to_millis(now))
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        Ok(None)
    }

    /// The batch itself, in one transaction: one-time token, idempotency key and the insert.
    async fn create_batch_once(
        &self,
        b: Batch,
        one_time_use: Option<String>,
        now: DateTime<Utc>,
    ) -> StoreResult<(Batch, bool)> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        if let Some(marker) = &one_time_use {
            spend_one_time_token(&mut tx, marker, &b.friendly_id, now).await?;
        }
        if let Some(key) = &b.idempotency_key {
            count("find_idempotent_batch");
            let existing = sqlx::query(
                "SELECT * FROM batches WHERE runtime_environment_id = $1 AND idempotency_key = $2",
            )
            .bind(&b.environment_id)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
            if let Some(row) = existing {
                let found = batch(&row)?;
                tx.commit().await.map_err(map_err)?;
                return Ok((found, true));
            }
        }
        count("create_batch");
        let inserted = sqlx::query(
            "INSERT INTO batches (id, friendly_id, runtime_environment_id, run_count, idempotency_key, created_at, sealed,
                 parent_run_id, resume_parent_on_completion)
             VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7, $8)",
        )
        .bind(&b.id)
        .bind(&b.friendly_id)
        .bind(&b.environment_id)
        .bind(b.run_count)
        .bind(b.idempotency_key.as_deref())
        .bind(to_millis(b.created_at))
        .bind(b.parent_run_id.as_deref())
        .bind(b.resume_parent_on_completion)
        .execute(&mut *tx)
        .await
        .map_err(map_err);
        match (inserted, &b.idempotency_key) {
            (Ok(_), _) => {}
            // A concurrent batch with the same key committed first: it is the answer.
            (Err(StoreError::Conflict { .. }), Some(key)) => {
                tx.rollback().await.map_err(map_err)?;
                count("find_idempotent_batch");
                let row = sqlx::query(
                    "SELECT * FROM batches WHERE runtime_environment_id = $1 AND idempotency_key = $2",
                )
                .bind(&b.environment_id)
                .bind(key)
                .fetch_optional(&self.writer)
                .await
                .map_err(map_err)?;
                return match row {
                    Some(row) => Ok((batch(&row)?, true)),
                    None => Err(StoreError::conflict(ConflictKind::BatchIdempotencyKey)),
                };
            }
            (Err(e), _) => return Err(e),
        }
        tx.commit().await.map_err(map_err)?;
        Ok((b, false))
    }
}

#[async_trait]
impl RunStore for Backend {
    async fn trigger(&self, trigger: NewTrigger, now: DateTime<Utc>) -> StoreResult<Triggered> {
        let wait = trigger.wait.clone();
        let triggered = self.trigger_once(trigger, now).await?;
        // The parent blocks in a transaction of its own: if this node stops in between, the
        // SDK's retry of the call (same request key) gets the same run and blocks then; the
        // child finishing first only means the parent continues at once.
        if let Some(wait) = &wait {
            self.block_parent_on_run(wait, &triggered.run, now).await?;
        }
        Ok(triggered)
    }

    async fn add_run_tags(
        &self,
        environment_id: &EnvironmentId,
        run_id: &RunFriendlyId,
        tags: &[String],
        max: usize,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<TagsAdded>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("lock_run_for_tags");
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLS} FROM task_runs r WHERE r.runtime_environment_id = $1 AND r.friendly_id = $2{FOR_UPDATE}"
        ))
        .bind(environment_id)
        .bind(run_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some(row) = row else {
            tx.rollback().await.map_err(map_err)?;
            return Ok(None);
        };
        let mut r = run(&row)?;
        let mut new: Vec<String> = Vec::new();
        for t in tags {
            if !r.tags.contains(t) && !new.contains(t) {
                new.push(t.clone());
            }
        }
        if new.is_empty() {
            tx.rollback().await.map_err(map_err)?;
            return Ok(Some(TagsAdded::Added(new)));
        }
        if r.tags.len() + new.len() > max {
            tx.rollback().await.map_err(map_err)?;
            return Ok(Some(TagsAdded::TooMany {
                existing: r.tags.len(),
                new,
            }));
        }
        r.tags.extend(new.iter().cloned());
        r.version += 1;
        r.updated_at = now;
        let list = serde_json::to_string(&r.tags).map_err(|e| StoreError::Other(e.to_string()))?;
        count("update_run_tags");
        sqlx::query("UPDATE task_runs SET tags = $1, version = $2, updated_at = $3 WHERE id = $4")
            .bind(list)
            .bind(r.version)
            .bind(to_millis(now))
            .bind(&r.id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_tags(&mut tx, &r.id, &new).await?;
        let event = run_event(&r);
        self.notify_in(&mut tx, &event).await?;
        self.commit_local(tx, vec![event]).await?;
        Ok(Some(TagsAdded::Added(new)))
    }

    async fn get_run(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &RunFriendlyId,
    ) -> StoreResult<Option<Run>> {
        self.get_run_on(&self.reader, environment_id, friendly_id)
            .await
    }

    async fn get_run_from_replica(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &RunFriendlyId,
    ) -> StoreResult<Option<Run>> {
        let pool = self.replica().unwrap_or(&self.reader);
        self.get_run_on(pool, environment_id, friendly_id).await
    }

    async fn list_runs(
        &self,
        environment_id: &EnvironmentId,
        filter: &RunFilter,
        page: &RunPage,
    ) -> StoreResult<Vec<Run>> {
        count("list_runs");
        // With a tag filter, walking the environment's runs newest first stops as soon as a
        // page is full when many runs carry the tag, but reads every run of the period when
        // none does. So when few runs carry it, the runs are found from the tags' index instead
        // and sorted: at most `TAG_DRIVEN_RUNS` of them.
        let tag_driven = !filter.tags.is_empty() && {
            let mut c: QueryBuilder<Db> =
                QueryBuilder::new("SELECT COUNT(*) FROM (SELECT 1 FROM task_run_tags WHERE tag");
            push_values(&mut c, &filter.tags);
            c.push(" LIMIT ").push_bind(TAG_DRIVEN_RUNS).push(") x");
            count("count_tagged_runs");
            let tagged: i64 = c
                .build_query_scalar()
                .fetch_one(&self.reader)
                .await
                .map_err(map_err)?;
            tagged < TAG_DRIVEN_RUNS
        };
        let mut q: QueryBuilder<Db> = if tag_driven {
            // CROSS JOIN keeps the tags as the outer loop on SQLite; PostgreSQL plans it freely.
            let mut q = QueryBuilder::new("SELECT ");
            q.push(RUN_COLS)
                .push(" FROM (SELECT DISTINCT run_id FROM task_run_tags WHERE tag");
            push_values(&mut q, &filter.tags);
            q.push(
                ") t CROSS JOIN task_runs r WHERE r.id = t.run_id AND r.runtime_environment_id = ",
            );
            q
        } else {
            QueryBuilder::new(format!(
                "SELECT {RUN_COLS} FROM task_runs r WHERE r.runtime_environment_id = "
            ))
        };
        q.push_bind(environment_id);
        let statuses: Vec<String> = filter
            .statuses
            .iter()
            .map(|s| s.as_str().to_string())
            .collect();
        push_in(&mut q, "r.status", &statuses);
        push_in(&mut q, "r.task_identifier", &filter.task_identifiers);
        push_in(&mut q, "r.task_version", &filter.versions);
        push_in(&mut q, "r.queue", &filter.queues);
        push_in(&mut q, "r.machine", &filter.machines);
        if !filter.tags.is_empty() && !tag_driven {
            q.push(" AND EXISTS (SELECT 1 FROM task_run_tags t WHERE t.run_id = r.id AND t.tag");
            push_values(&mut q, &filter.tags);
            q.push(")");
        }
        if let Some(b) = &filter.batch_id {
            q.push(" AND r.batch_id = ").push_bind(b);
        }
        if let Some(fp) = &filter.error_fingerprint {
            q.push(" AND r.error_fingerprint = ").push_bind(fp);
        }
        if let Some(t) = filter.is_test {
            q.push(" AND r.is_test = ").push_bind(t);
        }
        if let Some(from) = filter.created_from {
            q.push(" AND r.created_at >= ").push_bind(to_millis(from));
        }
        if let Some(to) = filter.created_to {
            q.push(" AND r.created_at <= ").push_bind(to_millis(to));
        }
        let backwards = page.before.is_some();
        if let Some((c, id)) = &page.after {
            q.push(" AND (r.created_at < ").push_bind(to_millis(*c));
            q.push(" OR (r.created_at = ")
                .push_bind(to_millis(*c))
                .push(" AND r.id < ")
                .push_bind(id.clone())
                .push("))");
        }
        if let Some((c, id)) = &page.before {
            q.push(" AND (r.created_at > ").push_bind(to_millis(*c));
            q.push(" OR (r.created_at = ")
                .push_bind(to_millis(*c))
                .push(" AND r.id > ")
                .push_bind(id.clone())
                .push("))");
        }
        q.push(if backwards {
            " ORDER BY r.created_at ASC, r.id ASC LIMIT "
        } else {
            " ORDER BY r.created_at DESC, r.id DESC LIMIT "
        });
        q.push_bind(i64::from(page.limit));
        let rows = q.build().fetch_all(&self.reader).await.map_err(map_err)?;
        let mut runs = rows.iter().map(run).collect::<StoreResult<Vec<_>>>()?;
        if backwards {
            runs.reverse();
        }
        Ok(runs)
    }

    async fn apply_run_event(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &RunFriendlyId,
        event: RunEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<Applied, Refusal>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("lock_run");
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLS} FROM task_runs r WHERE r.runtime_environment_id = $1 AND r.friendly_id = $2{FOR_UPDATE}"
        ))
        .bind(environment_id)
        .bind(friendly_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?
        .ok_or(StoreError::NotFound)?;
        let mut r = run(&row)?;
        let before = r.state();
        // A finished run answers as finished whatever snapshot the caller holds; only a live
        // run's stale snapshot is a conflict.
        if let Some(expected) = &event.expected_snapshot {
            if *expected != r.snapshot_id && !before.is_finished() {
                tx.rollback().await.map_err(map_err)?;
                return Ok(Err(Refusal::StaleSnapshot {
                    latest: r.snapshot_id.to_string(),
                }));
            }
        }
        let t = match transition(&before, &event.event, now) {
            Ok(t) => t,
            Err(e) => {
                tx.rollback().await.map_err(map_err)?;
                return Ok(Err(Refusal::Engine(e)));
            }
        };
        if t.state.status == RunStatus::CompletedSuccessfully {
            if let Some((data, kind)) = event.data.output {
                r.output = Some(data);
                r.output_type = Some(kind);
            }
        }
        if let Some((data, kind)) = event.data.metadata {
            r.metadata = Some(data);
            r.metadata_type = Some(kind);
        }
        let event = self.commit_transition(&mut tx, &mut r, &t, now).await?;
        self.commit_local(tx, event.into_iter().collect()).await?;
        Ok(Ok(Applied {
            run: r,
            transition: t,
        }))
    }

    async fn advance_due_runs(&self, now: DateTime<Utc>) -> StoreResult<Vec<Run>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("due_runs");
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLS} FROM task_runs r WHERE r.due_at <= $1
             ORDER BY r.due_at LIMIT 500{FOR_UPDATE_SKIP_LOCKED}"
        ))
        .bind(to_millis(now))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let mut changed = Vec::new();
        let mut events = Vec::new();
        for row in &rows {
            let mut r = run(row)?;
            match transition(&r.state(), &Event::Tick, now) {
                Ok(t) => {
                    events.extend(self.commit_transition(&mut tx, &mut r, &t, now).await?);
                    changed.push(r);
                }
                // Not due after all (the row's due time was stale): store the right one so
                // the sweeper stops reading it.
                Err(EngineError::NoChange | EngineError::AlreadyFinished) => {
                    write_run(&mut tx, &r, None).await?;
                }
                Err(e @ EngineError::Illegal { .. }) => {
                    return Err(StoreError::Other(format!("sweeping run {}: {e}", r.id)))
                }
            }
        }
        self.commit_local(tx, events).await?;
        Ok(changed)
    }

    async fn list_attempts(&self, r: &Run) -> StoreResult<Vec<Attempt>> {
        count("list_attempts");
        let rows = sqlx::query(
            "SELECT number, status, worker_id, started_at, completed_at, error
             FROM task_run_attempts WHERE run_id = $1 ORDER BY number",
        )
        .bind(&r.id)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        let mut attempts = rows
            .iter()
            .map(|row| {
                Ok(Attempt {
                    number: row.try_get("number").map_err(map_err)?,
                    status: status_col(row, "status", AttemptOutcome::parse)?,
                    worker_id: s_opt(row, "worker_id")?,
                    started_at: ts(row, "started_at")?,
                    completed_at: ts_opt(row, "completed_at")?,
                    error: s_opt::<String>(row, "error")?
                        .and_then(|e| serde_json::from_str::<TaskRunError>(&e).ok()),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        // An attempt runs while executing, and until its worker confirms a cancellation.
        let running =
            r.execution_status == ExecutionStatus::PendingCancel || r.state().is_running_attempt();
        if running && attempts.last().is_none_or(|a| a.number < r.attempt_number) {
            attempts.push(Attempt {
                number: r.attempt_number,
                status: AttemptOutcome::Executing,
                worker_id: r.worker_id.clone(),
                started_at: r.attempt_started_at.unwrap_or(r.snapshot_at),
                completed_at: None,
                error: None,
            });
        }
        Ok(attempts)
    }

    async fn create_batch(
        &self,
        b: Batch,
        one_time_use: Option<String>,
        now: DateTime<Utc>,
    ) -> StoreResult<(Batch, bool)> {
        let parent = b
            .resume_parent_on_completion
            .then(|| b.parent_run_id.clone())
            .flatten();
        let (created, cached) = self.create_batch_once(b, one_time_use, now).await?;
        // As for a trigger, the parent blocks in a transaction of its own.
        if let Some(parent) = &parent {
            self.block_parent_on_batch(&created, parent, cached, now)
                .await?;
        }
        Ok((created, cached))
    }

    async fn get_batch(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &BatchFriendlyId,
    ) -> StoreResult<Option<Batch>> {
        count("get_batch");
        let row = sqlx::query(
            "SELECT * FROM batches WHERE runtime_environment_id = $1 AND friendly_id = $2",
        )
        .bind(environment_id)
        .bind(friendly_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.as_ref().map(batch).transpose()
    }

    async fn add_batch_item(
        &self,
        batch_id: &BatchId,
        index: i64,
        run_friendly_id: &RunFriendlyId,
    ) -> StoreResult<bool> {
        count("add_batch_item");
        let done = sqlx::query("INSERT INTO batch_items (batch_id, item_index, run_friendly_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(batch_id)
            .bind(index)
            .bind(run_friendly_id)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn seal_batch(&self, batch_id: &BatchId, now: DateTime<Utc>) -> StoreResult<(i64, bool)> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("seal_batch");
        let (items,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM batch_items WHERE batch_id = $1")
                .bind(batch_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
        let sealed: Option<(String,)> = sqlx::query_as(
            "UPDATE batches SET sealed = TRUE WHERE id = $1 AND run_count <= $2 RETURNING friendly_id",
        )
        .bind(batch_id)
        .bind(items)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        // Its runs may all have finished already; then whoever waits for it continues now.
        let events = match &sealed {
            Some((friendly_id,)) => {
                self.complete_batch_if_done(&mut tx, &friendly_id.clone().into(), now)
                    .await?
            }
            None => Vec::new(),
        };
        self.commit_local(tx, events).await?;
        Ok((items, sealed.is_some()))
    }

    async fn append_stream_chunk(
        &self,
        run_id: &RunId,
        stream_id: &str,
        data: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        lock_run_for_append(&mut tx, run_id).await?;
        let seq = insert_chunk(&mut tx, run_id, stream_id, data, now).await?;
        let event = ChangeEvent::Stream {
            run_id: run_id.to_string(),
            stream_id: stream_id.to_string(),
        };
        self.commit_and_publish(tx, vec![event]).await?;
        Ok(seq)
    }

    async fn append_stream_lines(
        &self,
        run_id: &RunId,
        stream_id: &str,
        client: &str,
        first_index: i64,
        lines: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        // A writer's index is read and moved by one append at a time.
        lock_run_for_append(&mut tx, run_id).await?;
        count("stream_writer_index");
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT last_index FROM stream_writers WHERE run_id = $1 AND stream_id = $2 AND client_id = $3",
        )
        .bind(run_id)
        .bind(stream_id)
        .bind(client)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let last = last.unwrap_or(-1);
        // Lines at or below `last` arrived before the writer resumed.
        let skip =
            usize::try_from((last + 1).saturating_sub(first_index).max(0)).unwrap_or(usize::MAX);
        let fresh = lines.get(skip..).unwrap_or_default();
        if fresh.is_empty() {
            tx.commit().await.map_err(map_err)?;
            return Ok(last);
        }
        let end = first_index + i64::try_from(lines.len()).unwrap_or(i64::MAX) - 1;
        insert_chunk(&mut tx, run_id, stream_id, &fresh.join("\n"), now).await?;
        count("move_stream_writer");
        sqlx::query(
            "INSERT INTO stream_writers (run_id, stream_id, client_id, last_index, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (run_id, stream_id, client_id) DO UPDATE SET last_index = excluded.last_index, updated_at = excluded.updated_at",
        )
        .bind(run_id)
        .bind(stream_id)
        .bind(client)
        .bind(end)
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let event = ChangeEvent::Stream {
            run_id: run_id.to_string(),
            stream_id: stream_id.to_string(),
        };
        self.commit_and_publish(tx, vec![event]).await?;
        Ok(end)
    }

    async fn stream_writer_index(
        &self,
        run_id: &RunId,
        stream_id: &str,
        client: &str,
    ) -> StoreResult<Option<i64>> {
        count("stream_writer_index");
        sqlx::query_scalar(
            "SELECT last_index FROM stream_writers WHERE run_id = $1 AND stream_id = $2 AND client_id = $3",
        )
        .bind(run_id)
        .bind(stream_id)
        .bind(client)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)
    }

    async fn read_stream(
        &self,
        run_id: &RunId,
        stream_id: &str,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<StreamChunk>> {
        count("read_stream");
        let rows = sqlx::query("SELECT seq, data, created_at FROM stream_chunks WHERE run_id = $1 AND stream_id = $2 AND seq > $3 ORDER BY seq LIMIT $4")
            .bind(run_id)
            .bind(stream_id)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(StreamChunk {
                    seq: r.try_get("seq").map_err(map_err)?,
                    data: s(r, "data")?,
                    created_at: ts(r, "created_at")?,
                })
            })
            .collect()
    }
}

/// Locks a run's row for an append to one of its streams: appends to one run serialize on
/// it, so sequence numbers never collide.
async fn lock_run_for_append(conn: &mut DbConn, run_id: &RunId) -> StoreResult<()> {
    count("append_stream_lock");
    sqlx::query(&format!(
        "SELECT 1 FROM task_runs WHERE id = $1{FOR_UPDATE}"
    ))
    .bind(run_id)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Appends one chunk to a run's stream (its row locked by [`lock_run_for_append`]); returns
/// its sequence number.
async fn insert_chunk(
    conn: &mut DbConn,
    run_id: &RunId,
    stream_id: &str,
    data: &str,
    now: DateTime<Utc>,
) -> StoreResult<i64> {
    count("append_stream_chunk");
    let (seq,): (i64,) = sqlx::query_as(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM stream_chunks WHERE run_id = $1 AND stream_id = $2",
    )
    .bind(run_id)
    .bind(stream_id)
    .fetch_one(&mut *conn)
    .await
    .map_err(map_err)?;
    sqlx::query("INSERT INTO stream_chunks (run_id, stream_id, seq, data, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(run_id)
        .bind(stream_id)
        .bind(seq)
        .bind(data)
        .bind(to_millis(now))
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    Ok(seq)
}

fn push_in(q: &mut QueryBuilder<'_, Db>, column: &str, values: &[String]) {
    if values.is_empty() {
        return;
    }
    q.push(format!(" AND {column}"));
    push_values(q, values);
}

/// ` IN ($1, $2, …)` with `values` bound.
fn push_values(q: &mut QueryBuilder<'_, Db>, values: &[String]) {
    q.push(" IN (");
    let mut sep = q.separated(", ");
    for v in values {
        sep.push_bind(v.clone());
    }
    q.push(")");
}
