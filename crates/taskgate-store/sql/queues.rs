//! Queues: their listing with run counts, and pause and limit overrides.
//!
//! Compiled into both backends (`#[path]` modules of `taskgate-store-sqlite` and
//! `taskgate-store-postgres`) against their `backend` module: see `README.md` beside this file.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};
use taskgate_core::ids::EnvironmentId;
use taskgate_core::time::to_millis;
use taskgate_store::*;

use crate::backend::*;
use crate::count;
use crate::engine::push_queue_of;
use crate::error::map_err;
use crate::rows::{s, s_opt, ts_opt};

const QUEUE_COLS: &str = "tq.friendly_id, tq.name, tq.concurrency_limit, tq.declared_limit,
    tq.overridden_at, tq.paused,
    (SELECT COALESCE(u.name, u.email) FROM users u WHERE u.id = tq.overridden_by) AS overridden_by_name";

/// A limit column as stored (a worker's declaration is at most `u32`).
fn limit(row: &DbRow, col: &str) -> StoreResult<Option<u32>> {
    Ok(row
        .try_get::<Option<i64>, _>(col)
        .map_err(map_err)?
        .map(|n| u32::try_from(n.max(0)).unwrap_or(u32::MAX)))
}

/// A queue row, its counts still zero.
fn queue(row: &DbRow) -> StoreResult<QueueInfo> {
    Ok(QueueInfo {
        friendly_id: s(row, "friendly_id")?,
        name: s(row, "name")?,
        concurrency_limit: limit(row, "concurrency_limit")?,
        declared_limit: limit(row, "declared_limit")?,
        overridden_at: ts_opt(row, "overridden_at")?,
        overridden_by: s_opt(row, "overridden_by_name")?,
        paused: row.try_get("paused").map_err(map_err)?,
        running: 0,
        queued: 0,
    })
}

/// Fills in each queue's running and queued runs: one grouped read of the environment's
/// unfinished runs in these queues (the index on status serves it).
async fn count_runs(
    conn: &mut DbConn,
    environment_id: &EnvironmentId,
    tasks: &[WorkerTask],
    queues: &mut [QueueInfo],
) -> StoreResult<()> {
    if queues.is_empty() {
        return Ok(());
    }
    count("queue_run_counts");
    let mut q: QueryBuilder<Db> = QueryBuilder::new("SELECT ");
    push_queue_of(&mut q, tasks);
    q.push(
        " AS q,
         COUNT(CASE WHEN r.execution_status IN ('PENDING_EXECUTING', 'EXECUTING', 'PENDING_CANCEL')
               THEN 1 END) AS running,
         COUNT(CASE WHEN r.execution_status = 'QUEUED'
                     AND r.status IN ('PENDING', 'RETRYING_AFTER_FAILURE') THEN 1 END) AS queued
         FROM task_runs r
         WHERE r.runtime_environment_id = ",
    )
    .push_bind(environment_id.to_string())
    .push(
        " AND r.execution_status IN ('QUEUED', 'PENDING_EXECUTING', 'EXECUTING', 'PENDING_CANCEL')
          AND ",
    );
    push_queue_of(&mut q, tasks);
    q.push(" IN (");
    let mut names = q.separated(", ");
    for queue in queues.iter() {
        names.push_bind(queue.name.clone());
    }
    q.push(") GROUP BY 1");
    let rows = q.build().fetch_all(&mut *conn).await.map_err(map_err)?;
    let mut counts: HashMap<String, (i64, i64)> = HashMap::new();
    for row in rows {
        counts.insert(
            s(&row, "q")?,
            (
                row.try_get("running").map_err(map_err)?,
                row.try_get("queued").map_err(map_err)?,
            ),
        );
    }
    for queue in queues.iter_mut() {
        if let Some((running, queued)) = counts.get(&queue.name) {
            queue.running = u64::try_from(*running).unwrap_or(0);
            queue.queued = u64::try_from(*queued).unwrap_or(0);
        }
    }
    Ok(())
}

/// The condition selecting `queue` among `tq`, with its bind pushed.
fn push_ref(q: &mut QueryBuilder<'_, Db>, queue: QueueRef<'_>) {
    match queue {
        QueueRef::Id(id) => q.push(" AND tq.friendly_id = ").push_bind(id.to_string()),
        QueueRef::Name(name) => q.push(" AND tq.name = ").push_bind(name.to_string()),
    };
}

/// A queue of the environment with its counts, read on `conn`.
async fn fetch(
    conn: &mut DbConn,
    environment_id: &EnvironmentId,
    tasks: &[WorkerTask],
    queue_ref: QueueRef<'_>,
) -> StoreResult<Option<QueueInfo>> {
    count("get_queue");
    let mut q: QueryBuilder<Db> = QueryBuilder::new(format!(
        "SELECT {QUEUE_COLS} FROM task_queues tq WHERE tq.runtime_environment_id = "
    ));
    q.push_bind(environment_id.to_string());
    push_ref(&mut q, queue_ref);
    let Some(row) = q
        .build()
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?
    else {
        return Ok(None);
    };
    let mut found = [queue(&row)?];
    count_runs(conn, environment_id, tasks, &mut found).await?;
    let [found] = found;
    Ok(Some(found))
}

#[async_trait]
impl QueueStore for Backend {
    async fn list_queues(
        &self,
        environment_id: &EnvironmentId,
        tasks: &[WorkerTask],
        offset: u64,
        limit: u32,
    ) -> StoreResult<(Vec<QueueInfo>, u64)> {
        let mut conn = self.reader.acquire().await.map_err(map_err)?;
        count("list_queues");
        let rows = sqlx::query(&format!(
            "SELECT {QUEUE_COLS} FROM task_queues tq WHERE tq.runtime_environment_id = $1
             ORDER BY tq.name LIMIT $2 OFFSET $3"
        ))
        .bind(environment_id)
        .bind(i64::from(limit))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
        let mut queues = rows.iter().map(queue).collect::<StoreResult<Vec<_>>>()?;
        count_runs(&mut conn, environment_id, tasks, &mut queues).await?;
        count("count_queues");
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM task_queues WHERE runtime_environment_id = $1",
        )
        .bind(environment_id)
        .fetch_one(&mut *conn)
        .await
        .map_err(map_err)?;
        Ok((queues, u64::try_from(total).unwrap_or(0)))
    }

    async fn get_queue(
        &self,
        environment_id: &EnvironmentId,
        tasks: &[WorkerTask],
        queue: QueueRef<'_>,
    ) -> StoreResult<Option<QueueInfo>> {
        let mut conn = self.reader.acquire().await.map_err(map_err)?;
        fetch(&mut conn, environment_id, tasks, queue).await
    }

    async fn change_queue(
        &self,
        environment_id: &EnvironmentId,
        tasks: &[WorkerTask],
        queue_ref: QueueRef<'_>,
        change: QueueChange,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<QueueInfo>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("change_queue");
        let mut q: QueryBuilder<Db> = QueryBuilder::new("UPDATE task_queues SET ");
        match &change {
            QueueChange::Pause => q.push("paused = TRUE"),
            QueueChange::Resume => q.push("paused = FALSE"),
            QueueChange::Override { limit, by } => q
                .push("concurrency_limit = ")
                .push_bind(i64::from(*limit))
                .push(", overridden_at = ")
                .push_bind(to_millis(now))
                .push(", overridden_by = ")
                .push_bind(by.as_ref().map(ToString::to_string)),
            QueueChange::Reset => q.push(
                "concurrency_limit = declared_limit, overridden_at = NULL, overridden_by = NULL",
            ),
        };
        q.push(", updated_at = ")
            .push_bind(to_millis(now))
            .push(" WHERE runtime_environment_id = ")
            .push_bind(environment_id.to_string());
        match queue_ref {
            QueueRef::Id(id) => q.push(" AND friendly_id = ").push_bind(id.to_string()),
            QueueRef::Name(name) => q.push(" AND name = ").push_bind(name.to_string()),
        };
        let updated = q
            .build()
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        if updated == 0 {
            tx.rollback().await.map_err(map_err)?;
            return Ok(None);
        }
        let found = fetch(&mut tx, environment_id, tasks, queue_ref).await?;
        // Whatever lets more of the queue run wakes the environment's dequeues everywhere.
        let events = if change == QueueChange::Pause {
            Vec::new()
        } else {
            vec![ChangeEvent::Queue {
                environment_id: environment_id.to_string(),
            }]
        };
        self.commit_and_publish(tx, events).await?;
        Ok(found)
    }
}
