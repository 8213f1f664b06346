//! Personal access tokens.
//!
//! Compiled into both backends (`#[path]` modules of `taskgate-store-sqlite` and
//! `taskgate-store-postgres`) against their `backend` module: see `README.md` beside this file.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use taskgate_core::ids::new_id;
use taskgate_core::time::to_millis;
use taskgate_store::*;

use crate::audit::{self, AuditRecord};
use crate::backend::*;
use crate::error::map_err;
use crate::{count, rows};

pub(crate) async fn insert_pat(
    conn: &mut DbConn,
    token: &NewPersonalAccessToken,
    now: DateTime<Utc>,
) -> StoreResult<PersonalAccessToken> {
    count("insert_pat");
    let pat = PersonalAccessToken {
        id: new_id(),
        user_id: token.user_id.clone(),
        name: token.name.clone(),
        obfuscated_token: token.obfuscated_token.clone(),
        created_at: now,
        revoked_at: None,
        last_accessed_at: None,
    };
    sqlx::query(
        "INSERT INTO personal_access_tokens (id, user_id, name, hashed_token, obfuscated_token, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&pat.id)
    .bind(&pat.user_id)
    .bind(&pat.name)
    .bind(&token.hashed_token)
    .bind(&pat.obfuscated_token)
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(pat)
}

#[async_trait]
impl TokenStore for Backend {
    async fn create_pat(
        &self,
        token: NewPersonalAccessToken,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<PersonalAccessToken> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let pat = insert_pat(&mut tx, &token, now).await?;
        let mut rec = AuditRecord::new(audit_action::PAT_CREATED, actor);
        rec.target_id = Some(&pat.id);
        audit::insert(&mut tx, rec, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(pat)
    }

    async fn find_live_pat_by_hash(
        &self,
        hashed_token: &str,
    ) -> StoreResult<Option<(PersonalAccessToken, User)>> {
        if let Some(replica) = self.replica() {
            if let Some(found) = find_live_pat_by_hash_on(replica, hashed_token).await? {
                return Ok(Some(found));
            }
        }
        find_live_pat_by_hash_on(&self.reader, hashed_token).await
    }

    async fn list_pats(&self, user_id: &str) -> StoreResult<Vec<PersonalAccessToken>> {
        count("list_pats");
        let rows = sqlx::query(&format!(
            "SELECT {} FROM personal_access_tokens t WHERE t.user_id = $1 ORDER BY t.created_at DESC, t.id",
            rows::PAT_COLS
        ))
        .bind(user_id)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(rows::pat).collect()
    }

    async fn revoke_pat(
        &self,
        user_id: &str,
        pat_id: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<PersonalAccessToken> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("revoke_pat");
        // Re-revoking keeps the first revocation time.
        let done = sqlx::query(
            "UPDATE personal_access_tokens SET revoked_at = COALESCE(revoked_at, $3) WHERE id = $1 AND user_id = $2",
        )
        .bind(pat_id)
        .bind(user_id)
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        count("revoke_pat_read");
        let row = sqlx::query(&format!(
            "SELECT {} FROM personal_access_tokens t WHERE t.id = $1",
            rows::PAT_COLS
        ))
        .bind(pat_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let pat = rows::pat(&row)?;
        let mut rec = AuditRecord::new(audit_action::PAT_REVOKED, actor);
        rec.target_id = Some(pat_id);
        audit::insert(&mut tx, rec, now).await?;
        let event = ChangeEvent::PatRevoked {
            pat_id: pat_id.to_string(),
        };
        self.commit_and_publish(tx, vec![event]).await?;
        Ok(pat)
    }

    async fn revoked_pat_ids(&self) -> StoreResult<Vec<String>> {
        count("revoked_pat_ids");
        let rows =
            sqlx::query("SELECT id FROM personal_access_tokens WHERE revoked_at IS NOT NULL")
                .fetch_all(&self.reader)
                .await
                .map_err(map_err)?;
        rows.iter()
            .map(|r| r.try_get("id").map_err(map_err))
            .collect()
    }

    async fn touch_pat(
        &self,
        pat_id: &str,
        now: DateTime<Utc>,
        throttle: chrono::Duration,
    ) -> StoreResult<()> {
        count("touch_pat");
        sqlx::query(
            "UPDATE personal_access_tokens SET last_accessed_at = $2
             WHERE id = $1 AND revoked_at IS NULL AND (last_accessed_at IS NULL OR last_accessed_at < $3)",
        )
        .bind(pat_id)
        .bind(to_millis(now))
        .bind(to_millis(now - throttle))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}

async fn find_live_pat_by_hash_on(
    pool: &Pool,
    hashed_token: &str,
) -> StoreResult<Option<(PersonalAccessToken, User)>> {
    count("find_live_pat_by_hash");
    let row = sqlx::query(&format!(
        "SELECT {}, {} FROM personal_access_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.hashed_token = $1 AND t.revoked_at IS NULL",
        rows::PAT_COLS,
        rows::USER_COLS
    ))
    .bind(hashed_token)
    .fetch_optional(pool)
    .await
    .map_err(map_err)?;
    match row {
        Some(row) => Ok(Some((rows::pat(&row)?, rows::user(&row)?))),
        None => Ok(None),
    }
}
