//! Waitpoints, the runs waiting for them, and their timers.
//!
//! Compiled into both backends (`#[path]` modules of `taskgate-store-sqlite` and
//! `taskgate-store-postgres`) against their `backend` module: see `README.md` beside this file.
//!
//! Lock order, on PostgreSQL: a run, then its own waitpoint, then a batch listing it, then the
//! batch's waitpoint, then the runs waiting for any of these. Every path here takes them in
//! that order (a trigger that waits locks the child before the parent; a token or a timer
//! locks its waitpoint before its waiters), so two transactions never wait for each other.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use sqlx::{QueryBuilder, Row};
use taskgate_core::engine::waitpoint::{
    TokenStatus, WaitpointKind, WaitpointOutput, WaitpointStatus,
};
use taskgate_core::engine::{transition, Event, RunStatus};
use taskgate_core::ids::{BatchFriendlyId, EnvironmentId, RunFriendlyId, RunId};
use taskgate_core::time::{from_millis, to_millis};
use taskgate_store::*;

use crate::backend::*;
use crate::count;
use crate::error::map_err;
use crate::rows::{s, s_opt, ts, ts_opt};
use crate::runs::{run, RUN_COLS};

const WP_COLS: &str = "w.id, w.friendly_id, w.runtime_environment_id, w.kind, w.status, w.completed_at,
    w.completed_after, w.timeout_at, w.output, w.output_type, w.output_is_error, w.idempotency_key,
    w.idempotency_key_expires_at, w.tags, w.completed_by_run_id, w.completed_by_batch_id, w.created_at,
    (SELECT cr.friendly_id FROM task_runs cr WHERE cr.id = w.completed_by_run_id) AS completed_by_run,
    (SELECT cb.friendly_id FROM batches cb WHERE cb.id = w.completed_by_batch_id) AS completed_by_batch";

/// `('CANCELED', …)`: the run statuses that are final, for SQL.
static FINAL_STATUSES: LazyLock<String> = LazyLock::new(|| {
    let names: Vec<String> = RunStatus::ALL
        .iter()
        .filter(|s| s.is_final())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("({})", names.join(", "))
});

fn waitpoint(row: &DbRow) -> StoreResult<Waitpoint> {
    let kind: String = s(row, "kind")?;
    let status: String = s(row, "status")?;
    let tags: String = s(row, "tags")?;
    Ok(Waitpoint {
        id: s(row, "id")?,
        friendly_id: s(row, "friendly_id")?,
        environment_id: s(row, "runtime_environment_id")?,
        kind: WaitpointKind::parse(&kind)
            .ok_or_else(|| StoreError::Other(format!("corrupt waitpoint kind {kind:?}")))?,
        status: WaitpointStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("corrupt waitpoint status {status:?}")))?,
        completed_at: ts_opt(row, "completed_at")?,
        completed_after: ts_opt(row, "completed_after")?,
        timeout_at: ts_opt(row, "timeout_at")?,
        output: s_opt(row, "output")?,
        output_type: s_opt(row, "output_type")?,
        output_is_error: row.try_get("output_is_error").map_err(map_err)?,
        idempotency_key: s_opt(row, "idempotency_key")?,
        idempotency_key_expires_at: ts_opt(row, "idempotency_key_expires_at")?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        completed_by_run_id: s_opt(row, "completed_by_run_id")?,
        completed_by_run: s_opt(row, "completed_by_run")?,
        completed_by_batch_id: s_opt(row, "completed_by_batch_id")?,
        completed_by_batch: s_opt(row, "completed_by_batch")?,
        created_at: ts(row, "created_at")?,
    })
}

/// Where a run's input stream `stream` is kept among its streams.
pub(crate) fn input_stream_key(stream: &str) -> String {
    format!("$trigger.input:{stream}")
}

/// What a wait for an input stream resumes with: the `data` of the record (stored as
/// `{"data": …}`), as JSON.
fn input_record_output(record: &str) -> WaitpointOutput {
    let data = serde_json::from_str::<serde_json::Value>(record)
        .ok()
        .and_then(|mut v| v.get_mut("data").map(serde_json::Value::take))
        .unwrap_or(serde_json::Value::Null);
    WaitpointOutput {
        data: Some(data.to_string()),
        data_type: "application/json".into(),
        is_error: false,
    }
}

async fn insert_waitpoint(conn: &mut DbConn, w: &Waitpoint) -> StoreResult<()> {
    count("insert_waitpoint");
    let tags = serde_json::to_string(&w.tags).map_err(|e| StoreError::Other(e.to_string()))?;
    sqlx::query(
        "INSERT INTO waitpoints (id, friendly_id, runtime_environment_id, kind, status, completed_at,
             completed_after, timeout_at, due_at, output, output_type, output_is_error, idempotency_key,
             idempotency_key_expires_at, tags, completed_by_run_id, completed_by_batch_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(&w.id)
    .bind(&w.friendly_id)
    .bind(&w.environment_id)
    .bind(w.kind.as_str())
    .bind(w.status.as_str())
    .bind(w.completed_at.map(to_millis))
    .bind(w.completed_after.map(to_millis))
    .bind(w.timeout_at.map(to_millis))
    .bind(w.due_at().map(to_millis))
    .bind(w.output.as_deref())
    .bind(w.output_type.as_deref())
    .bind(w.output_is_error)
    .bind(w.idempotency_key.as_deref())
    .bind(w.idempotency_key_expires_at.map(to_millis))
    .bind(tags)
    .bind(w.completed_by_run_id.as_deref())
    .bind(w.completed_by_batch_id.as_deref())
    .bind(to_millis(w.created_at))
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    for tag in &w.tags {
        count("insert_waitpoint_tag");
        sqlx::query(
            "INSERT INTO waitpoint_tags (waitpoint_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(&w.id)
        .bind(tag)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    }
    Ok(())
}

/// A waitpoint by one column's value (`id`, `completed_by_run_id`, …), locked for the rest of
/// the transaction.
async fn lock_waitpoint_by(
    conn: &mut DbConn,
    column: &str,
    value: &str,
) -> StoreResult<Option<Waitpoint>> {
    count("lock_waitpoint");
    let row = sqlx::query(&format!(
        "SELECT {WP_COLS} FROM waitpoints w WHERE w.{column} = $1{FOR_UPDATE}"
    ))
    .bind(value)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?;
    row.as_ref().map(waitpoint).transpose()
}

/// The environment's waitpoint with idempotency key `key`, locked. One whose key has expired
/// gives the key up (it is cleared) and is not returned, so a new one can take it.
async fn idempotent_waitpoint(
    conn: &mut DbConn,
    environment_id: &EnvironmentId,
    key: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<Waitpoint>> {
    count("find_idempotent_waitpoint");
    let row = sqlx::query(&format!(
        "SELECT {WP_COLS} FROM waitpoints w
         WHERE w.runtime_environment_id = $1 AND w.idempotency_key = $2{FOR_UPDATE}"
    ))
    .bind(environment_id)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?;
    let Some(found) = row.as_ref().map(waitpoint).transpose()? else {
        return Ok(None);
    };
    if found.idempotency_key_expires_at.is_some_and(|at| at <= now) {
        count("release_waitpoint_idempotency_key");
        sqlx::query("UPDATE waitpoints SET idempotency_key = NULL WHERE id = $1")
            .bind(&found.id)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
        return Ok(None);
    }
    Ok(Some(found))
}

/// A run of the environment, locked; by friendly id or internal id.
async fn lock_run(
    conn: &mut DbConn,
    environment_id: &EnvironmentId,
    column: &str,
    value: &str,
) -> StoreResult<Option<Run>> {
    count("lock_run");
    let row = sqlx::query(&format!(
        "SELECT {RUN_COLS} FROM task_runs r
         WHERE r.runtime_environment_id = $1 AND r.{column} = $2{FOR_UPDATE}"
    ))
    .bind(environment_id)
    .bind(value)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?;
    row.as_ref().map(run).transpose()
}

async fn add_edge(
    conn: &mut DbConn,
    run_id: &RunId,
    waitpoint: &Waitpoint,
    batch: Option<(&BatchFriendlyId, Option<i64>)>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    count("insert_run_waitpoint");
    sqlx::query(
        "INSERT INTO run_waitpoints (run_id, waitpoint_id, batch_id, batch_index, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(run_id)
    .bind(&waitpoint.id)
    .bind(batch.map(|(b, _)| b.to_string()))
    .bind(batch.and_then(|(_, i)| i))
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// What the waiting process is handed for one completed waitpoint (`CompletedWaitpoint`).
fn completed_json(w: &Waitpoint, batch: Option<&BatchFriendlyId>, index: Option<i64>) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(w.friendly_id));
    o.insert("friendlyId".into(), json!(w.friendly_id));
    o.insert("type".into(), json!(w.kind.as_str()));
    o.insert(
        "completedAt".into(),
        json!(w.completed_at.unwrap_or(w.created_at)),
    );
    o.insert("outputIsError".into(), json!(w.output_is_error));
    if let Some(i) = index {
        o.insert("index".into(), json!(i));
    }
    if let Some(k) = &w.idempotency_key {
        o.insert("idempotencyKey".into(), json!(k));
    }
    if let Some(fid) = &w.completed_by_run {
        let mut by = Map::new();
        by.insert("id".into(), json!(fid));
        by.insert("friendlyId".into(), json!(fid));
        if let Some(b) = batch {
            by.insert("batch".into(), json!({"id": b, "friendlyId": b}));
        }
        o.insert("completedByTaskRun".into(), Value::Object(by));
    }
    if let Some(after) = w.completed_after {
        o.insert("completedAfter".into(), json!(after));
    }
    if let Some(b) = &w.completed_by_batch {
        o.insert("completedByBatch".into(), json!({"id": b, "friendlyId": b}));
    }
    if let Some(out) = &w.output {
        o.insert("output".into(), json!(out));
        o.insert(
            "outputType".into(),
            json!(w.output_type.as_deref().unwrap_or("application/json")),
        );
    }
    Value::Object(o)
}

/// The waitpoints a run waits for with their edges, in the order the process is handed them
/// (batch items by index, then the rest as they were added).
async fn edges_of(conn: &mut DbConn, run_id: &RunId) -> StoreResult<Vec<RunWait>> {
    count("run_waitpoints");
    let rows = sqlx::query(&format!(
        "SELECT {WP_COLS}, e.batch_id AS edge_batch_id, e.batch_index, e.created_at AS edge_created_at
         FROM run_waitpoints e JOIN waitpoints w ON w.id = e.waitpoint_id
         WHERE e.run_id = $1
         ORDER BY CASE WHEN e.batch_index IS NULL THEN 1 ELSE 0 END, e.batch_index, e.created_at, w.id"
    ))
    .bind(run_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)?;
    rows.iter()
        .map(|row| {
            Ok(RunWait {
                waitpoint: waitpoint(row)?,
                batch: s_opt(row, "edge_batch_id")?,
                batch_index: row.try_get("batch_index").map_err(map_err)?,
                since: ts(row, "edge_created_at")?,
            })
        })
        .collect()
}

impl Backend {
    /// Continues a locked run that waits, when nothing it waits for is pending: a new
    /// `EXECUTING` snapshot carrying every completed waitpoint; its edges go.
    async fn continue_if_unblocked(
        &self,
        conn: &mut DbConn,
        r: &mut Run,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ChangeEvent>> {
        if !r.state().is_waiting() {
            return Ok(None);
        }
        count("count_pending_waits");
        // Driven from the run's own edges, each waitpoint read by its key: a join here can be
        // planned as a scan of every pending waitpoint when statistics are stale.
        let (pending,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM run_waitpoints e WHERE e.run_id = $1
               AND (SELECT w.status FROM waitpoints w WHERE w.id = e.waitpoint_id) = 'PENDING'",
        )
        .bind(&r.id)
        .fetch_one(&mut *conn)
        .await
        .map_err(map_err)?;
        if pending > 0 {
            return Ok(None);
        }
        let t = match transition(&r.state(), &Event::Continue, now) {
            Ok(t) => t,
            Err(_) => return Ok(None),
        };
        let edges = edges_of(conn, &r.id).await?;
        let completed: Vec<Value> = edges
            .iter()
            .map(|e| completed_json(&e.waitpoint, e.batch.as_ref(), e.batch_index))
            .collect();
        let batch = r.snapshot_batch_id.clone();
        r.apply(
            &t,
            taskgate_core::ids::new_snapshot_friendly_id().into(),
            now,
        );
        r.completed_waitpoints = Some(Value::Array(completed).to_string());
        r.snapshot_batch_id = batch;
        let event = self.write_snapshot(conn, r, now).await?;
        count("delete_run_waitpoints");
        sqlx::query("DELETE FROM run_waitpoints WHERE run_id = $1")
            .bind(&r.id)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
        tracing::debug!(run.id = %r.friendly_id, waitpoints = edges.len(), "run continued");
        Ok(Some(event))
    }

    /// Writes a run whose new snapshot the caller already applied, with its change event.
    async fn write_snapshot(
        &self,
        conn: &mut DbConn,
        r: &Run,
        _now: DateTime<Utc>,
    ) -> StoreResult<ChangeEvent> {
        let event = crate::runs::run_event(r);
        let note = self.notification(&event)?;
        crate::runs::write_run(conn, r, note).await?;
        Ok(event)
    }

    /// Blocks a locked run on the edges just added; continues it at once when none of them is
    /// pending. `batch` is the batch the new snapshot waits for.
    async fn block_locked(
        &self,
        conn: &mut DbConn,
        r: &mut Run,
        batch: Option<BatchFriendlyId>,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<Vec<ChangeEvent>, Refusal>> {
        let t = match transition(&r.state(), &Event::Block, now) {
            Ok(t) => t,
            Err(e) => return Ok(Err(Refusal::Engine(e))),
        };
        let mut events = Vec::new();
        if t.snapshot.is_some() {
            r.apply(
                &t,
                taskgate_core::ids::new_snapshot_friendly_id().into(),
                now,
            );
            r.snapshot_batch_id = batch;
            events.push(self.write_snapshot(conn, r, now).await?);
        }
        events.extend(self.continue_if_unblocked(conn, r, now).await?);
        Ok(Ok(events))
    }

    /// Completes a pending waitpoint with `output` and continues every run it unblocks.
    /// Nothing happens to one already complete.
    pub(crate) async fn complete_waitpoint(
        &self,
        conn: &mut DbConn,
        w: &Waitpoint,
        output: &WaitpointOutput,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<ChangeEvent>> {
        count("complete_waitpoint");
        let done = sqlx::query(
            "UPDATE waitpoints SET status = 'COMPLETED', completed_at = $2, due_at = NULL, output = $3,
                 output_type = $4, output_is_error = $5
             WHERE id = $1 AND status = 'PENDING'",
        )
        .bind(&w.id)
        .bind(to_millis(now))
        .bind(output.data.as_deref())
        .bind(&output.data_type)
        .bind(output.is_error)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Ok(Vec::new());
        }
        count("waiting_runs");
        let waiting: Vec<(String,)> = sqlx::query_as(
            "SELECT run_id FROM run_waitpoints WHERE waitpoint_id = $1 ORDER BY run_id",
        )
        .bind(&w.id)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
        let mut events = Vec::new();
        for (run_id,) in waiting {
            if let Some(mut r) = lock_run(conn, &w.environment_id, "id", &run_id).await? {
                events.extend(self.continue_if_unblocked(conn, &mut r, now).await?);
            }
        }
        Ok(events)
    }

    /// What a run that has just finished owes those waiting: its waitpoint completes with its
    /// output or error, the batches listing it may complete, and its own waits end.
    pub(crate) async fn on_run_finished(
        &self,
        conn: &mut DbConn,
        r: &Run,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<ChangeEvent>> {
        count("delete_run_waitpoints");
        sqlx::query("DELETE FROM run_waitpoints WHERE run_id = $1")
            .bind(&r.id)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
        let mut events = Vec::new();
        if let Some(w) = lock_waitpoint_by(conn, "completed_by_run_id", &r.id).await? {
            let output = WaitpointOutput::of_run(
                r.status,
                r.output.as_deref(),
                r.output_type.as_deref(),
                r.error.as_deref(),
            );
            events.extend(self.complete_waitpoint(conn, &w, &output, now).await?);
        }
        count("batches_of_run");
        let batches: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT b.friendly_id FROM batch_items bi JOIN batches b ON b.id = bi.batch_id
             WHERE bi.run_friendly_id = $1 ORDER BY b.friendly_id",
        )
        .bind(&r.friendly_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
        for (batch,) in batches {
            events.extend(
                self.complete_batch_if_done(conn, &batch.into(), now)
                    .await?,
            );
        }
        Ok(events)
    }

    /// Completes a batch's waitpoint when the batch is sealed and all its runs have finished.
    pub(crate) async fn complete_batch_if_done(
        &self,
        conn: &mut DbConn,
        batch: &BatchFriendlyId,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<ChangeEvent>> {
        count("lock_batch");
        let row: Option<(String, bool)> = sqlx::query_as(&format!(
            "SELECT id, sealed FROM batches WHERE friendly_id = $1{FOR_UPDATE}"
        ))
        .bind(batch)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
        let Some((batch_id, sealed)) = row else {
            return Ok(Vec::new());
        };
        let Some(w) = lock_waitpoint_by(conn, "completed_by_batch_id", &batch_id).await? else {
            return Ok(Vec::new());
        };
        if !sealed || w.status != WaitpointStatus::Pending {
            return Ok(Vec::new());
        }
        count("count_unfinished_batch_runs");
        let (unfinished,): (i64,) = sqlx::query_as(&format!(
            "SELECT COUNT(*) FROM batch_items bi JOIN task_runs r ON r.friendly_id = bi.run_friendly_id
             WHERE bi.batch_id = $1 AND r.status NOT IN {}",
            *FINAL_STATUSES
        ))
        .bind(&batch_id)
        .fetch_one(&mut *conn)
        .await
        .map_err(map_err)?;
        if unfinished > 0 {
            return Ok(Vec::new());
        }
        self.complete_waitpoint(conn, &w, &WaitpointOutput::empty(), now)
            .await
    }

    /// The waitpoint a run completes, made now if nobody waited for the run before; the run
    /// is locked first. Complete at once when the run has already finished.
    async fn run_waitpoint(
        &self,
        conn: &mut DbConn,
        child: &Run,
        now: DateTime<Utc>,
    ) -> StoreResult<(Run, Waitpoint, Vec<ChangeEvent>)> {
        let child = lock_run(conn, &child.environment_id, "id", &child.id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if let Some(w) = lock_waitpoint_by(conn, "completed_by_run_id", &child.id).await? {
            return Ok((child, w, Vec::new()));
        }
        let mut w = Waitpoint::new(&child.environment_id, WaitpointKind::Run, now);
        w.completed_by_run_id = Some(child.id.clone());
        w.completed_by_run = Some(child.friendly_id.clone());
        if child.status.is_final() {
            let out = WaitpointOutput::of_run(
                child.status,
                child.output.as_deref(),
                child.output_type.as_deref(),
                child.error.as_deref(),
            );
            w.status = WaitpointStatus::Completed;
            w.completed_at = Some(now);
            w.output = out.data;
            w.output_type = Some(out.data_type);
            w.output_is_error = out.is_error;
        }
        insert_waitpoint(conn, &w).await?;
        Ok((child, w, Vec::new()))
    }

    /// Blocks `wait`'s parent on `child` (just triggered, or found by its idempotency key), in
    /// its own transaction.
    pub(crate) async fn block_parent_on_run(
        &self,
        wait: &ParentWait,
        child: &Run,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        if wait.parent_run_id == child.id {
            return Err(StoreError::conflict(ConflictKind::ParentRun));
        }
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let (_, w, mut events) = self.run_waitpoint(&mut tx, child, now).await?;
        let Some(mut parent) =
            lock_run(&mut tx, &child.environment_id, "id", &wait.parent_run_id).await?
        else {
            return Err(StoreError::conflict(ConflictKind::ParentRun));
        };
        let batch = wait.batch.as_ref().map(|(b, i)| (b, Some(*i)));
        add_edge(&mut tx, &parent.id, &w, batch, now).await?;
        match self.block_locked(&mut tx, &mut parent, None, now).await? {
            Ok(more) => events.extend(more),
            Err(_) => return Err(StoreError::conflict(ConflictKind::ParentRun)),
        }
        self.commit_local(tx, events).await
    }

    /// Blocks a batch's parent on the batch, in its own transaction. A batch that existed
    /// already (`cached`: the client sends no items for it) also blocks the parent on each of
    /// its items, so every result reaches it.
    pub(crate) async fn block_parent_on_batch(
        &self,
        b: &Batch,
        parent_run_id: &RunId,
        cached: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let mut events = Vec::new();
        let mut items = Vec::new();
        if cached {
            count("batch_item_runs");
            let rows = sqlx::query(&format!(
                "SELECT {RUN_COLS}, bi.item_index FROM batch_items bi
                 JOIN task_runs r ON r.friendly_id = bi.run_friendly_id
                 WHERE bi.batch_id = $1 ORDER BY bi.item_index"
            ))
            .bind(&b.id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
            for row in &rows {
                let child = run(row)?;
                if child.id == *parent_run_id {
                    return Err(StoreError::conflict(ConflictKind::ParentRun));
                }
                let index: i64 = row.try_get("item_index").map_err(map_err)?;
                let (_, w, more) = self.run_waitpoint(&mut tx, &child, now).await?;
                events.extend(more);
                items.push((w, index));
            }
        }
        count("lock_batch");
        sqlx::query(&format!("SELECT id FROM batches WHERE id = $1{FOR_UPDATE}"))
            .bind(&b.id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let w = match lock_waitpoint_by(&mut tx, "completed_by_batch_id", &b.id).await? {
            Some(w) => w,
            None => {
                let mut w = Waitpoint::new(&b.environment_id, WaitpointKind::Batch, now);
                w.completed_by_batch_id = Some(b.id.clone());
                w.completed_by_batch = Some(b.friendly_id.clone());
                insert_waitpoint(&mut tx, &w).await?;
                w
            }
        };
        let Some(mut parent) = lock_run(&mut tx, &b.environment_id, "id", parent_run_id).await?
        else {
            return Err(StoreError::conflict(ConflictKind::ParentRun));
        };
        add_edge(&mut tx, &parent.id, &w, Some((&b.friendly_id, None)), now).await?;
        for (item, index) in &items {
            add_edge(
                &mut tx,
                &parent.id,
                item,
                Some((&b.friendly_id, Some(*index))),
                now,
            )
            .await?;
        }
        match self
            .block_locked(&mut tx, &mut parent, Some(b.friendly_id.clone()), now)
            .await?
        {
            Ok(more) => events.extend(more),
            Err(_) => return Err(StoreError::conflict(ConflictKind::ParentRun)),
        }
        // A cached batch may be complete already.
        events.extend(
            self.complete_batch_if_done(&mut tx, &b.friendly_id, now)
                .await?,
        );
        self.commit_local(tx, events).await
    }

    /// Tells every node (and this one's timer) that a timer is due at `due`.
    async fn announce_timer(
        &self,
        conn: &mut DbConn,
        due: Option<DateTime<Utc>>,
    ) -> StoreResult<Option<ChangeEvent>> {
        let Some(due) = due else {
            return Ok(None);
        };
        let event = ChangeEvent::Timer {
            due_at_ms: to_millis(due),
        };
        self.notify_in(conn, &event).await?;
        Ok(Some(event))
    }
}

#[async_trait]
impl WaitStore for Backend {
    async fn block_run(
        &self,
        environment_id: &EnvironmentId,
        run_id: &RunFriendlyId,
        wait: WaitFor,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<Blocked, WaitRefusal>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let mut events = Vec::new();
        let w = match wait {
            WaitFor::DateTime {
                waitpoint,
                idempotency,
            } => {
                let mut w = *waitpoint;
                let existing = match &idempotency {
                    Some(i) => idempotent_waitpoint(&mut tx, environment_id, &i.key, now).await?,
                    None => None,
                };
                match existing {
                    Some(found) if found.kind == WaitpointKind::DateTime => found,
                    // A key another kind of waitpoint holds is not this wait's.
                    Some(_) => {
                        tx.rollback().await.map_err(map_err)?;
                        return Err(StoreError::conflict(ConflictKind::Unique(
                            "waitpoints_idempotency_uniq".into(),
                        )));
                    }
                    None => {
                        if let Some(i) = idempotency {
                            w.idempotency_key = Some(i.key);
                            w.idempotency_key_expires_at = Some(i.expires_at);
                        }
                        if w.completed_after.is_some_and(|at| at <= now) {
                            w.status = WaitpointStatus::Completed;
                            w.completed_at = Some(now);
                        }
                        insert_waitpoint(&mut tx, &w).await?;
                        events.extend(self.announce_timer(&mut tx, w.due_at()).await?);
                        w
                    }
                }
            }
            WaitFor::Token(fid) => match lock_waitpoint_by(&mut tx, "friendly_id", &fid).await? {
                Some(w)
                    if w.environment_id == *environment_id && w.kind == WaitpointKind::Manual =>
                {
                    w
                }
                _ => {
                    tx.rollback().await.map_err(map_err)?;
                    return Ok(Err(WaitRefusal::NoToken));
                }
            },
        };
        let Some(mut r) = lock_run(&mut tx, environment_id, "friendly_id", run_id).await? else {
            tx.rollback().await.map_err(map_err)?;
            return Err(StoreError::NotFound);
        };
        add_edge(&mut tx, &r.id, &w, None, now).await?;
        match self.block_locked(&mut tx, &mut r, None, now).await? {
            Ok(more) => events.extend(more),
            Err(refusal) => {
                tx.rollback().await.map_err(map_err)?;
                return Ok(Err(WaitRefusal::Run(refusal)));
            }
        }
        self.commit_local(tx, events).await?;
        Ok(Ok(Blocked {
            run: r,
            waitpoint: w,
        }))
    }

    async fn create_token(
        &self,
        token: Waitpoint,
        idempotency: Option<WaitpointIdempotency>,
        now: DateTime<Utc>,
    ) -> StoreResult<(Waitpoint, bool)> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        if let Some(i) = &idempotency {
            if let Some(found) =
                idempotent_waitpoint(&mut tx, &token.environment_id, &i.key, now).await?
            {
                tx.commit().await.map_err(map_err)?;
                if found.kind != WaitpointKind::Manual {
                    return Err(StoreError::conflict(ConflictKind::Unique(
                        "waitpoints_idempotency_uniq".into(),
                    )));
                }
                return Ok((found, true));
            }
        }
        let mut w = token;
        if let Some(i) = idempotency {
            w.idempotency_key = Some(i.key);
            w.idempotency_key_expires_at = Some(i.expires_at);
        }
        insert_waitpoint(&mut tx, &w).await?;
        let events: Vec<ChangeEvent> = self
            .announce_timer(&mut tx, w.due_at())
            .await?
            .into_iter()
            .collect();
        self.commit_local(tx, events).await?;
        Ok((w, false))
    }

    async fn create_input_stream_wait(
        &self,
        token: Waitpoint,
        run_id: &RunId,
        stream: &str,
        after_seq: i64,
        idempotency: Option<WaitpointIdempotency>,
        now: DateTime<Utc>,
    ) -> StoreResult<(Waitpoint, bool)> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        if let Some(i) = &idempotency {
            if let Some(found) =
                idempotent_waitpoint(&mut tx, &token.environment_id, &i.key, now).await?
            {
                tx.commit().await.map_err(map_err)?;
                return Ok((found, true));
            }
        }
        // Sends to the run's input streams lock its row too: a record lands either before
        // this read (and completes the wait here) or after this commit (and finds the wait).
        count("input_wait_lock");
        sqlx::query(&format!(
            "SELECT 1 FROM task_runs WHERE id = $1{FOR_UPDATE}"
        ))
        .bind(run_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        count("input_wait_record");
        let record: Option<String> = sqlx::query_scalar(
            "SELECT data FROM stream_chunks WHERE run_id = $1 AND stream_id = $2 AND seq > $3 ORDER BY seq LIMIT 1",
        )
        .bind(run_id)
        .bind(input_stream_key(stream))
        .bind(after_seq)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let mut w = token;
        if let Some(i) = idempotency {
            w.idempotency_key = Some(i.key);
            w.idempotency_key_expires_at = Some(i.expires_at);
        }
        insert_waitpoint(&mut tx, &w).await?;
        let mut events = Vec::new();
        match record {
            Some(record) => {
                let output = input_record_output(&record);
                events.extend(self.complete_waitpoint(&mut tx, &w, &output, now).await?);
            }
            None => {
                count("insert_input_wait");
                sqlx::query(
                    "INSERT INTO input_stream_waits (waitpoint_id, run_id, stream_id) VALUES ($1, $2, $3)",
                )
                .bind(&w.id)
                .bind(run_id)
                .bind(stream)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                events.extend(self.announce_timer(&mut tx, w.due_at()).await?);
            }
        }
        let done = lock_waitpoint_by(&mut tx, "id", &w.id).await?;
        self.commit_local(tx, events).await?;
        Ok((done.unwrap_or(w), false))
    }

    async fn complete_input_stream_waits(
        &self,
        run_id: &RunId,
        stream: &str,
        output: WaitpointOutput,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("input_waits");
        let rows = sqlx::query(&format!(
            "SELECT {WP_COLS} FROM waitpoints w JOIN input_stream_waits i ON i.waitpoint_id = w.id
             WHERE i.run_id = $1 AND i.stream_id = $2{FOR_UPDATE}"
        ))
        .bind(run_id)
        .bind(stream)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        if rows.is_empty() {
            tx.rollback().await.map_err(map_err)?;
            return Ok(0);
        }
        let mut events = Vec::new();
        let mut completed = 0u64;
        for row in &rows {
            let w = waitpoint(row)?;
            // One that timed out is only removed.
            if w.status == WaitpointStatus::Pending {
                events.extend(self.complete_waitpoint(&mut tx, &w, &output, now).await?);
                completed += 1;
            }
        }
        count("delete_input_waits");
        sqlx::query("DELETE FROM input_stream_waits WHERE run_id = $1 AND stream_id = $2")
            .bind(run_id)
            .bind(stream)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        self.commit_local(tx, events).await?;
        Ok(completed)
    }

    async fn get_waitpoint(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &taskgate_core::ids::WaitpointFriendlyId,
    ) -> StoreResult<Option<Waitpoint>> {
        count("get_waitpoint");
        let row = sqlx::query(&format!(
            "SELECT {WP_COLS} FROM waitpoints w WHERE w.friendly_id = $1 AND w.runtime_environment_id = $2"
        ))
        .bind(friendly_id)
        .bind(environment_id)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        row.as_ref().map(waitpoint).transpose()
    }

    async fn find_waitpoint(
        &self,
        friendly_id: &taskgate_core::ids::WaitpointFriendlyId,
    ) -> StoreResult<Option<Waitpoint>> {
        count("find_waitpoint");
        let row = sqlx::query(&format!(
            "SELECT {WP_COLS} FROM waitpoints w WHERE w.friendly_id = $1"
        ))
        .bind(friendly_id)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        row.as_ref().map(waitpoint).transpose()
    }

    async fn list_tokens(
        &self,
        environment_id: &EnvironmentId,
        filter: &TokenFilter,
        page: &TokenPage,
    ) -> StoreResult<Vec<Waitpoint>> {
        count("list_tokens");
        let mut q: QueryBuilder<Db> = QueryBuilder::new(format!(
            "SELECT {WP_COLS} FROM waitpoints w WHERE w.kind = 'MANUAL' AND w.runtime_environment_id = "
        ));
        q.push_bind(environment_id.to_string());
        if !filter.statuses.is_empty() {
            q.push(" AND (");
            for (i, status) in filter.statuses.iter().enumerate() {
                if i > 0 {
                    q.push(" OR ");
                }
                q.push(match status {
                    TokenStatus::Waiting => "w.status = 'PENDING'",
                    TokenStatus::Completed => "(w.status = 'COMPLETED' AND NOT w.output_is_error)",
                    TokenStatus::TimedOut => "(w.status = 'COMPLETED' AND w.output_is_error)",
                });
            }
            q.push(")");
        }
        if let Some(key) = &filter.idempotency_key {
            q.push(" AND w.idempotency_key = ").push_bind(key.clone());
        }
        if !filter.tags.is_empty() {
            q.push(" AND EXISTS (SELECT 1 FROM waitpoint_tags t WHERE t.waitpoint_id = w.id AND t.tag IN (");
            let mut sep = q.separated(", ");
            for t in &filter.tags {
                sep.push_bind(t.clone());
            }
            q.push("))");
        }
        if let Some(from) = filter.created_from {
            q.push(" AND w.created_at >= ").push_bind(to_millis(from));
        }
        if let Some(to) = filter.created_to {
            q.push(" AND w.created_at <= ").push_bind(to_millis(to));
        }
        let ascending = page.before.is_some() && page.after.is_none();
        if let Some((at, id)) = &page.after {
            q.push(" AND (w.created_at < ")
                .push_bind(to_millis(*at))
                .push(" OR (w.created_at = ")
                .push_bind(to_millis(*at))
                .push(" AND w.id < ")
                .push_bind(id.to_string())
                .push("))");
        } else if let Some((at, id)) = &page.before {
            q.push(" AND (w.created_at > ")
                .push_bind(to_millis(*at))
                .push(" OR (w.created_at = ")
                .push_bind(to_millis(*at))
                .push(" AND w.id > ")
                .push_bind(id.to_string())
                .push("))");
        }
        q.push(if ascending {
            " ORDER BY w.created_at, w.id"
        } else {
            " ORDER BY w.created_at DESC, w.id DESC"
        });
        q.push(" LIMIT ").push_bind(i64::from(page.limit));
        let rows = q.build().fetch_all(&self.reader).await.map_err(map_err)?;
        let mut tokens = rows
            .iter()
            .map(waitpoint)
            .collect::<StoreResult<Vec<_>>>()?;
        if ascending {
            tokens.reverse();
        }
        Ok(tokens)
    }

    async fn complete_token(
        &self,
        environment_id: &EnvironmentId,
        friendly_id: &taskgate_core::ids::WaitpointFriendlyId,
        output: WaitpointOutput,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Waitpoint>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let w = match lock_waitpoint_by(&mut tx, "friendly_id", friendly_id).await? {
            Some(w) if w.environment_id == *environment_id && w.kind == WaitpointKind::Manual => w,
            _ => {
                tx.rollback().await.map_err(map_err)?;
                return Ok(None);
            }
        };
        let events = self.complete_waitpoint(&mut tx, &w, &output, now).await?;
        let done = lock_waitpoint_by(&mut tx, "id", &w.id).await?;
        self.commit_local(tx, events).await?;
        Ok(done)
    }

    async fn fire_due_waitpoints(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Fired> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("due_waitpoints");
        let rows = sqlx::query(&format!(
            "SELECT {WP_COLS} FROM waitpoints w WHERE w.due_at <= $1
             ORDER BY w.due_at LIMIT $2{FOR_UPDATE_SKIP_LOCKED}"
        ))
        .bind(to_millis(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let mut fired = Fired::default();
        let mut events = Vec::new();
        for row in &rows {
            let w = waitpoint(row)?;
            let output = match w.kind {
                WaitpointKind::Manual => WaitpointOutput::timed_out(w.timeout_at.unwrap_or(now)),
                _ => WaitpointOutput::empty(),
            };
            let more = self.complete_waitpoint(&mut tx, &w, &output, now).await?;
            fired.completed += 1;
            fired.continued += more.len() as u64;
            events.extend(more);
        }
        self.commit_local(tx, events).await?;
        fired.next_due = self.next_waitpoint_due().await?;
        Ok(fired)
    }

    async fn next_waitpoint_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        count("next_waitpoint_due");
        let (next,): (Option<i64>,) =
            sqlx::query_as("SELECT MIN(due_at) FROM waitpoints WHERE due_at IS NOT NULL")
                .fetch_one(&self.writer)
                .await
                .map_err(map_err)?;
        Ok(next.map(from_millis))
    }

    async fn run_waits(&self, run_id: &RunId) -> StoreResult<Vec<RunWait>> {
        let mut conn = self.reader.acquire().await.map_err(map_err)?;
        edges_of(&mut conn, run_id).await
    }

    async fn run_by_id(
        &self,
        environment_id: &EnvironmentId,
        run_id: &RunId,
    ) -> StoreResult<Option<Run>> {
        count("get_run_by_id");
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLS} FROM task_runs r WHERE r.runtime_environment_id = $1 AND r.id = $2"
        ))
        .bind(environment_id)
        .bind(run_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.as_ref().map(run).transpose()
    }

    async fn child_runs(
        &self,
        environment_id: &EnvironmentId,
        parent: &RunId,
        unfinished: bool,
        limit: u32,
    ) -> StoreResult<Vec<Run>> {
        count("child_runs");
        let unfinished = if unfinished {
            format!(" AND r.status NOT IN {}", *FINAL_STATUSES)
        } else {
            String::new()
        };
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLS} FROM task_runs r
             WHERE r.parent_run_id = $1 AND r.runtime_environment_id = $2{unfinished}
             ORDER BY r.created_at, r.id LIMIT $3"
        ))
        .bind(parent)
        .bind(environment_id)
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await
        .map_err(map_err)?;
        rows.iter().map(run).collect()
    }
}
