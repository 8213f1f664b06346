//! Deployments and their bundles.
//!
//! Compiled into both backends (`#[path]` modules of `taskgate-store-sqlite` and
//! `taskgate-store-postgres`) against their `backend` module: see `README.md` beside this file.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use taskgate_core::ids::{DeploymentId, EnvironmentId, WorkerId};
use taskgate_core::time::to_millis;
use taskgate_store::*;

use crate::backend::*;
use crate::count;
use crate::engine::{lock_environment, next_version, tasks_of, worker, WORKER_COLS};
use crate::error::map_err;
use crate::rows::{s, s_opt, ts, ts_opt};

const DEPLOYMENT_COLS: &str =
    "d.id, d.friendly_id, d.short_code, d.runtime_environment_id, d.version,
    d.content_hash, d.status, d.artifact_key, d.worker_id, d.external_id, d.error, d.runtime,
    d.triggered_via, d.git_meta, d.created_at, d.deployed_at, d.failed_at";

fn deployment(row: &DbRow) -> StoreResult<Deployment> {
    let status: String = s(row, "status")?;
    Ok(Deployment {
        id: s(row, "id")?,
        friendly_id: s(row, "friendly_id")?,
        short_code: s(row, "short_code")?,
        environment_id: s(row, "runtime_environment_id")?,
        version: s(row, "version")?,
        content_hash: s(row, "content_hash")?,
        status: DeploymentStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("corrupt deployment status {status:?}")))?,
        artifact_key: s_opt(row, "artifact_key")?,
        worker_id: s_opt(row, "worker_id")?,
        external_id: s_opt(row, "external_id")?,
        error: s_opt(row, "error")?,
        runtime: s_opt(row, "runtime")?,
        triggered_via: s_opt(row, "triggered_via")?,
        git_meta: s_opt(row, "git_meta")?,
        created_at: ts(row, "created_at")?,
        deployed_at: ts_opt(row, "deployed_at")?,
        failed_at: ts_opt(row, "failed_at")?,
    })
}

async fn deployment_by(
    conn: &mut DbConn,
    environment_id: &EnvironmentId,
    column: &str,
    value: &str,
) -> StoreResult<Option<Deployment>> {
    count("get_deployment");
    let row = sqlx::query(&format!(
        "SELECT {DEPLOYMENT_COLS} FROM deployments d
         WHERE d.runtime_environment_id = $1 AND d.{column} = $2"
    ))
    .bind(environment_id)
    .bind(value)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?;
    row.as_ref().map(deployment).transpose()
}

/// The versions the environment has used on the day of `now`, by workers and deployments.
pub(crate) async fn versions_of_day(
    conn: &mut DbConn,
    environment_id: &EnvironmentId,
    now: DateTime<Utc>,
) -> StoreResult<Vec<String>> {
    count("versions_of_day");
    let day = format!("{}.%", now.format("%Y%m%d"));
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT version FROM background_workers WHERE runtime_environment_id = $1 AND version LIKE $2
         UNION SELECT version FROM deployments WHERE runtime_environment_id = $1 AND version LIKE $2",
    )
    .bind(environment_id)
    .bind(day)
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(rows.into_iter().map(|(v,)| v).collect())
}

#[async_trait]
impl DeployStore for Backend {
    async fn create_artifact(&self, a: NewArtifact, now: DateTime<Utc>) -> StoreResult<()> {
        count("create_artifact");
        sqlx::query(
            "INSERT INTO artifacts (key, runtime_environment_id, upload_secret_hash, content_length, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&a.key)
        .bind(&a.environment_id)
        .bind(&a.upload_secret_hash)
        .bind(a.content_length)
        .bind(to_millis(a.expires_at))
        .bind(to_millis(now))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn upload_artifact(
        &self,
        key: &str,
        upload_secret_hash: &str,
        data: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Result<(), UploadRefusal>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("lock_artifact");
        let row = sqlx::query(&format!(
            "SELECT upload_secret_hash, content_length, expires_at, uploaded_at FROM artifacts WHERE key = $1{FOR_UPDATE}"
        ))
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some(row) = row else {
            return Ok(Err(UploadRefusal::Unknown));
        };
        let stored: String = s(&row, "upload_secret_hash")?;
        if !taskgate_core::hash::constant_time_eq(stored.as_bytes(), upload_secret_hash.as_bytes())
        {
            return Ok(Err(UploadRefusal::Unknown));
        }
        if ts(&row, "expires_at")? <= now {
            return Ok(Err(UploadRefusal::Expired));
        }
        if ts_opt(&row, "uploaded_at")?.is_some() {
            return Ok(Err(UploadRefusal::AlreadyUploaded));
        }
        let limit: i64 = row.try_get("content_length").map_err(map_err)?;
        if i64::try_from(data.len()).unwrap_or(i64::MAX) > limit {
            return Ok(Err(UploadRefusal::TooLarge));
        }
        count("upload_artifact");
        sqlx::query("UPDATE artifacts SET data = $2, uploaded_at = $3 WHERE key = $1")
            .bind(key)
            .bind(data)
            .bind(to_millis(now))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Ok(()))
    }

    async fn artifact_data(
        &self,
        environment_id: &EnvironmentId,
        key: &str,
    ) -> StoreResult<Option<Vec<u8>>> {
        count("artifact_data");
        let row: Option<(Option<Vec<u8>>,)> = sqlx::query_as(
            "SELECT data FROM artifacts WHERE key = $1 AND runtime_environment_id = $2",
        )
        .bind(key)
        .bind(environment_id)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(row.and_then(|(d,)| d))
    }

    async fn create_deployment(
        &self,
        d: NewDeployment,
        force: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<(Deployment, bool)> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        // Versions of one environment are chosen one at a time.
        lock_environment(&mut tx, &d.environment_id).await?;
        if let Some(external) = &d.external_id {
            if let Some(existing) =
                deployment_by(&mut tx, &d.environment_id, "external_id", external).await?
            {
                if !force {
                    tx.commit().await.map_err(map_err)?;
                    return Ok((existing, true));
                }
                count("release_external_id");
                sqlx::query("UPDATE deployments SET external_id = NULL WHERE id = $1")
                    .bind(&existing.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
            }
        }
        let versions = versions_of_day(&mut tx, &d.environment_id, now).await?;
        let created = Deployment {
            id: d.id,
            friendly_id: d.friendly_id,
            short_code: d.short_code,
            environment_id: d.environment_id,
            version: next_version(&versions, now),
            content_hash: d.content_hash,
            status: DeploymentStatus::Building,
            artifact_key: d.artifact_key,
            worker_id: None,
            external_id: d.external_id,
            error: None,
            runtime: d.runtime,
            triggered_via: d.triggered_via,
            git_meta: d.git_meta,
            created_at: now,
            deployed_at: None,
            failed_at: None,
        };
        count("insert_deployment");
        sqlx::query(
            "INSERT INTO deployments (id, friendly_id, short_code, runtime_environment_id, version, content_hash,
                 status, artifact_key, external_id, runtime, triggered_via, git_meta, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&created.id)
        .bind(&created.friendly_id)
        .bind(&created.short_code)
        .bind(&created.environment_id)
        .bind(&created.version)
        .bind(&created.content_hash)
        .bind(created.status.as_str())
        .bind(created.artifact_key.as_deref())
        .bind(created.external_id.as_deref())
        .bind(created.runtime.as_deref())
        .bind(created.triggered_via.as_deref())
        .bind(created.git_meta.as_deref())
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok((created, false))
    }

    async fn get_deployment(
        &self,
        environment_id: &EnvironmentId,
        id_or_version: &str,
    ) -> StoreResult<Option<Deployment>> {
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        let column = if id_or_version.starts_with("deployment_") {
            "friendly_id"
        } else if id_or_version
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
        {
            "version"
        } else {
            "id"
        };
        deployment_by(&mut conn, environment_id, column, id_or_version).await
    }

    async fn list_deployments(
        &self,
        environment_id: &EnvironmentId,
        limit: u32,
        before: Option<(DateTime<Utc>, DeploymentId)>,
    ) -> StoreResult<Vec<Deployment>> {
        count("list_deployments");
        let rows = match before {
            Some((at, id)) => {
                sqlx::query(&format!(
                    "SELECT {DEPLOYMENT_COLS} FROM deployments d WHERE d.runtime_environment_id = $1
                       AND (d.created_at < $2 OR (d.created_at = $2 AND d.id < $3))
                     ORDER BY d.created_at DESC, d.id DESC LIMIT $4"
                ))
                .bind(environment_id)
                .bind(to_millis(at))
                .bind(id)
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {DEPLOYMENT_COLS} FROM deployments d WHERE d.runtime_environment_id = $1
                     ORDER BY d.created_at DESC, d.id DESC LIMIT $2"
                ))
                .bind(environment_id)
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await
            }
        }
        .map_err(map_err)?;
        rows.iter().map(deployment).collect()
    }

    async fn fail_deployment(
        &self,
        id: &DeploymentId,
        error: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("fail_deployment");
        let done = sqlx::query(
            "UPDATE deployments SET status = 'FAILED', error = $2, failed_at = $3
             WHERE id = $1 AND status = 'BUILDING'",
        )
        .bind(id)
        .bind(error)
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() != 1 {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
        let (environment_id,): (String,) =
            sqlx::query_as("SELECT runtime_environment_id FROM deployments WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
        crate::alerts::enqueue_alerts(
            &mut tx,
            &environment_id,
            ALERT_DEPLOYMENT_FAILURE,
            alert_event::DEPLOYMENT_FAILED,
            id,
            None,
            now,
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn promote_deployment(&self, id: &DeploymentId, now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("promote_deployment");
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT runtime_environment_id, worker_id FROM deployments WHERE id = $1 AND status = 'DEPLOYED'",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some((environment_id, worker_id)) = row else {
            return Err(StoreError::NotFound);
        };
        lock_environment(&mut tx, &environment_id.clone().into()).await?;
        // The promoted version's schedules become the environment's.
        let tasks = match &worker_id {
            Some(w) => tasks_of(&mut tx, w).await?,
            None => Vec::new(),
        };
        crate::schedules::sync_declarative(&mut tx, &environment_id.clone().into(), &tasks, now)
            .await?;
        sqlx::query("UPDATE runtime_environments SET current_deployment_id = $2 WHERE id = $1")
            .bind(&environment_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        // Runs waiting for a worker of the environment may be dequeued by this one now.
        let event = ChangeEvent::Queue { environment_id };
        self.commit_and_publish(tx, vec![event]).await
    }

    async fn current_deployment(
        &self,
        environment_id: &EnvironmentId,
    ) -> StoreResult<Option<(Deployment, Worker, Vec<WorkerTask>)>> {
        let mut conn = self.reader.acquire().await.map_err(map_err)?;
        count("current_deployment");
        let row = sqlx::query(&format!(
            "SELECT {DEPLOYMENT_COLS} FROM runtime_environments e
             JOIN deployments d ON d.id = e.current_deployment_id
             WHERE e.id = $1"
        ))
        .bind(environment_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
        let Some(d) = row.as_ref().map(deployment).transpose()? else {
            return Ok(None);
        };
        let Some(worker_id) = &d.worker_id else {
            return Ok(None);
        };
        count("get_worker");
        let row = sqlx::query(&format!(
            "SELECT {WORKER_COLS} FROM background_workers w WHERE w.id = $1"
        ))
        .bind(worker_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
        let Some(w) = row.as_ref().map(worker).transpose()? else {
            return Ok(None);
        };
        let tasks = tasks_of(&mut conn, &w.id).await?;
        Ok(Some((d, w, tasks)))
    }

    async fn deployed_environments(&self) -> StoreResult<Vec<(EnvironmentId, DeploymentId)>> {
        count("deployed_environments");
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, current_deployment_id FROM runtime_environments
             WHERE current_deployment_id IS NOT NULL AND archived_at IS NULL",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(e, d)| (e.into(), d.into()))
            .collect())
    }

    async fn locked_queued_workers(
        &self,
        environment_id: &EnvironmentId,
        except: &WorkerId,
    ) -> StoreResult<Vec<WorkerId>> {
        count("locked_queued_workers");
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT r.worker_id FROM task_runs r
             WHERE r.runtime_environment_id = $1 AND r.execution_status = 'QUEUED'
               AND r.worker_id IS NOT NULL AND r.worker_id <> $2
             LIMIT 20",
        )
        .bind(environment_id)
        .bind(except)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        Ok(rows.into_iter().map(|(w,)| w.into()).collect())
    }

    async fn purge_artifacts(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        count("purge_artifacts");
        let done = sqlx::query(
            "DELETE FROM artifacts WHERE (uploaded_at IS NULL AND expires_at <= $1)
               OR (uploaded_at IS NOT NULL AND uploaded_at <= $2
                   AND NOT EXISTS (SELECT 1 FROM deployments d WHERE d.artifact_key = artifacts.key))",
        )
        .bind(to_millis(now))
        .bind(to_millis(now - chrono::Duration::days(1)))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
