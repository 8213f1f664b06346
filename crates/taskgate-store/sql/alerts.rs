//! Alert channels and the delivery outbox.
//!
//! Compiled into both backends (`#[path]` modules of `taskgate-store-sqlite` and
//! `taskgate-store-postgres`) against their `backend` module: see `README.md` beside this file.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use taskgate_core::env::EnvType;
use taskgate_core::ids::{new_id, random_string};
use taskgate_core::time::to_millis;
use taskgate_store::*;

use crate::backend::*;
use crate::count;
use crate::error::map_err;
use crate::rows::{s, s_opt, ts, ts_opt};

const CHANNEL_COLS: &str = "c.id, c.friendly_id, c.project_id, c.deduplication_key,
    c.user_deduplication_key, c.enabled, c.kind, c.name, c.alert_types, c.environment_types,
    c.destination, c.secret_sealed, c.created_at, c.updated_at";

/// How many characters of a delivery error are kept.
const MAX_ERROR_LEN: usize = 500;

/// `,A,B,`: a list one `LIKE '%,A,%'` matches in.
fn joined<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from(",");
    for i in items {
        out.push_str(i);
        out.push(',');
    }
    out
}

fn split(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').filter(|x| !x.is_empty())
}

fn channel(row: &DbRow) -> StoreResult<AlertChannel> {
    let kind: String = s(row, "kind")?;
    let types: String = s(row, "alert_types")?;
    let envs: String = s(row, "environment_types")?;
    Ok(AlertChannel {
        id: s(row, "id")?,
        friendly_id: s(row, "friendly_id")?,
        project_id: s(row, "project_id")?,
        deduplication_key: s(row, "deduplication_key")?,
        user_deduplication_key: row.try_get("user_deduplication_key").map_err(map_err)?,
        enabled: row.try_get("enabled").map_err(map_err)?,
        kind: AlertChannelKind::parse(&kind)
            .ok_or_else(|| StoreError::Other(format!("corrupt alert channel kind {kind:?}")))?,
        name: s(row, "name")?,
        alert_types: split(&types).map(str::to_string).collect(),
        environment_types: split(&envs).filter_map(EnvType::parse_db).collect(),
        destination: s(row, "destination")?,
        secret_sealed: s_opt(row, "secret_sealed")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

/// Queues `event` about `subject` for every enabled channel of the environment's project
/// that takes `alert_type` in the environment's type, in the caller's transaction. Each row's
/// id is unique to this call and channel, and stays the delivery's id through its retries.
pub(crate) async fn enqueue_alerts(
    conn: &mut DbConn,
    environment_id: &str,
    alert_type: &str,
    event: &str,
    subject: &str,
    task_identifier: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    count("enqueue_alerts");
    sqlx::query(
        "INSERT INTO alert_deliveries (id, channel_id, environment_id, event, subject,
             task_identifier, status, attempts, due_at, created_at)
         SELECT $1 || c.id, c.id, e.id, $2, $3, $4, 'PENDING', 0, $5, $5
         FROM runtime_environments e
         JOIN alert_channels c ON c.project_id = e.project_id
         WHERE e.id = $6 AND c.enabled AND c.alert_types LIKE $7
           AND c.environment_types LIKE '%,' || e.type || ',%'",
    )
    .bind(format!(
        "alert_{}_",
        random_string(b"0123456789abcdefghijklmnopqrstuvwxyz", 12)
    ))
    .bind(event)
    .bind(subject)
    .bind(task_identifier)
    .bind(to_millis(now))
    .bind(environment_id)
    .bind(format!("%,{alert_type},%"))
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn channel_by(
    conn: &mut DbConn,
    project_id: &str,
    column: &str,
    value: &str,
) -> StoreResult<Option<AlertChannel>> {
    count("get_alert_channel");
    let row = sqlx::query(&format!(
        "SELECT {CHANNEL_COLS} FROM alert_channels c WHERE c.project_id = $1 AND c.{column} = $2"
    ))
    .bind(project_id)
    .bind(value)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?;
    row.as_ref().map(channel).transpose()
}

#[async_trait]
impl AlertStore for Backend {
    async fn upsert_alert_channel(
        &self,
        c: NewAlertChannel,
        now: DateTime<Utc>,
    ) -> StoreResult<(AlertChannel, bool)> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let (key, user_key) = match &c.deduplication_key {
            Some(k) => (k.clone(), true),
            None => (new_id(), false),
        };
        let types = joined(c.alert_types.iter().map(String::as_str));
        let envs = joined(c.environment_types.iter().map(|e| e.as_str()));
        let existing = channel_by(&mut tx, &c.project_id, "deduplication_key", &key).await?;
        let created = existing.is_none();
        count("upsert_alert_channel");
        match &existing {
            Some(old) => {
                sqlx::query(
                    "UPDATE alert_channels SET kind = $2, name = $3, alert_types = $4,
                         environment_types = $5, destination = $6,
                         secret_sealed = COALESCE($7, secret_sealed), enabled = TRUE, updated_at = $8
                     WHERE id = $1",
                )
                .bind(&old.id)
                .bind(c.kind.as_str())
                .bind(&c.name)
                .bind(&types)
                .bind(&envs)
                .bind(&c.destination)
                .bind(c.secret_sealed.as_deref())
                .bind(to_millis(now))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO alert_channels (id, friendly_id, project_id, deduplication_key,
                         user_deduplication_key, enabled, kind, name, alert_types,
                         environment_types, destination, secret_sealed, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, TRUE, $6, $7, $8, $9, $10, $11, $12, $12)",
                )
                .bind(new_id())
                .bind(format!(
                    "alert_channel_{}",
                    random_string(b"0123456789abcdefghijklmnopqrstuvwxyz", 24)
                ))
                .bind(&c.project_id)
                .bind(&key)
                .bind(user_key)
                .bind(c.kind.as_str())
                .bind(&c.name)
                .bind(&types)
                .bind(&envs)
                .bind(&c.destination)
                .bind(c.secret_sealed.as_deref())
                .bind(to_millis(now))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            }
        }
        let saved = channel_by(&mut tx, &c.project_id, "deduplication_key", &key)
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await.map_err(map_err)?;
        Ok((saved, created))
    }

    async fn list_alert_channels(&self, project_id: &str) -> StoreResult<Vec<AlertChannel>> {
        count("list_alert_channels");
        let rows = sqlx::query(&format!(
            "SELECT {CHANNEL_COLS} FROM alert_channels c WHERE c.project_id = $1
             ORDER BY c.created_at, c.id"
        ))
        .bind(project_id)
        .fetch_all(&self.writer)
        .await
        .map_err(map_err)?;
        rows.iter().map(channel).collect()
    }

    async fn set_alert_channel_enabled(
        &self,
        project_id: &str,
        friendly_id: &str,
        enabled: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AlertChannel>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("set_alert_channel_enabled");
        sqlx::query(
            "UPDATE alert_channels SET enabled = $3, updated_at = $4
             WHERE project_id = $1 AND friendly_id = $2",
        )
        .bind(project_id)
        .bind(friendly_id)
        .bind(enabled)
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let found = channel_by(&mut tx, project_id, "friendly_id", friendly_id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(found)
    }

    async fn delete_alert_channel(&self, project_id: &str, friendly_id: &str) -> StoreResult<bool> {
        count("delete_alert_channel");
        let done =
            sqlx::query("DELETE FROM alert_channels WHERE project_id = $1 AND friendly_id = $2")
                .bind(project_id)
                .bind(friendly_id)
                .execute(&self.writer)
                .await
                .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn claim_alert_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: chrono::Duration,
    ) -> StoreResult<Vec<AlertDelivery>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("claim_alert_deliveries");
        let due: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT d.id FROM alert_deliveries d WHERE d.due_at <= $1
               AND d.channel_id IN (SELECT c.id FROM alert_channels c WHERE c.enabled)
             ORDER BY d.due_at LIMIT $2{FOR_UPDATE_SKIP_LOCKED}"
        ))
        .bind(to_millis(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let mut claimed = Vec::with_capacity(due.len());
        for (id,) in due {
            count("lease_alert_delivery");
            sqlx::query(
                "UPDATE alert_deliveries SET due_at = $2, attempts = attempts + 1 WHERE id = $1",
            )
            .bind(&id)
            .bind(to_millis(now + lease))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            let row = sqlx::query(&format!(
                "SELECT {CHANNEL_COLS}, d.id AS delivery_id, d.environment_id, d.event, d.subject,
                     d.task_identifier, d.attempts, d.created_at AS delivery_created_at
                 FROM alert_deliveries d JOIN alert_channels c ON c.id = d.channel_id
                 WHERE d.id = $1"
            ))
            .bind(&id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
            let attempts: i64 = row.try_get("attempts").map_err(map_err)?;
            claimed.push(AlertDelivery {
                id: s(&row, "delivery_id")?,
                channel: channel(&row)?,
                environment_id: s(&row, "environment_id")?,
                event: s(&row, "event")?,
                subject: s(&row, "subject")?,
                task_identifier: s_opt(&row, "task_identifier")?,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                created_at: ts(&row, "delivery_created_at")?,
            });
        }
        tx.commit().await.map_err(map_err)?;
        Ok(claimed)
    }

    async fn finish_alert_delivery(
        &self,
        id: &str,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        count("finish_alert_delivery");
        let cut = |e: &str| e.chars().take(MAX_ERROR_LEN).collect::<String>();
        let (status, due, error, sent) = match &outcome {
            DeliveryOutcome::Sent => ("SENT", None, None, Some(to_millis(now))),
            DeliveryOutcome::Retry { at, error } => {
                ("PENDING", Some(to_millis(*at)), Some(cut(error)), None)
            }
            DeliveryOutcome::Dead { error } => ("DEAD", None, Some(cut(error)), None),
        };
        sqlx::query(
            "UPDATE alert_deliveries SET status = $2, due_at = $3,
                 last_error = COALESCE($4, last_error), sent_at = $5
             WHERE id = $1 AND status = 'PENDING'",
        )
        .bind(id)
        .bind(status)
        .bind(due)
        .bind(error)
        .bind(sent)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn list_alert_deliveries(
        &self,
        project_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        count("list_alert_deliveries");
        let rows = sqlx::query(
            "SELECT d.id, c.friendly_id, d.event, d.subject, d.status, d.attempts, d.last_error,
                 d.created_at, d.sent_at
             FROM alert_channels c JOIN alert_deliveries d ON d.channel_id = c.id
             WHERE c.project_id = $1 ORDER BY d.created_at DESC, d.id LIMIT $2",
        )
        .bind(project_id)
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let attempts: i64 = row.try_get("attempts").map_err(map_err)?;
                Ok(DeliveryRecord {
                    id: s(row, "id")?,
                    channel_friendly_id: s(row, "friendly_id")?,
                    event: s(row, "event")?,
                    subject: s(row, "subject")?,
                    status: s(row, "status")?,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    last_error: s_opt(row, "last_error")?,
                    created_at: ts(row, "created_at")?,
                    sent_at: ts_opt(row, "sent_at")?,
                })
            })
            .collect()
    }

    async fn resend_alert_delivery(
        &self,
        project_id: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        count("resend_alert_delivery");
        let done = sqlx::query(
            "UPDATE alert_deliveries SET status = 'PENDING', attempts = 0, due_at = $3
             WHERE id = $2 AND status = 'DEAD'
               AND channel_id IN (SELECT c.id FROM alert_channels c WHERE c.project_id = $1)",
        )
        .bind(project_id)
        .bind(id)
        .bind(to_millis(now))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }
}
