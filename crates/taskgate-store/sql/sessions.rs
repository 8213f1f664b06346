//! Dashboard sign-in links and sessions, and the CLI's authorization codes.
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
use crate::rows::{s, s_opt, ts, ts_opt};
use crate::{count, rows, tokens};

const CODE_COLS: &str = "code_hash, code_challenge, callback_port, created_at, expires_at, \
     approved_by, approved_at, approval_code_hash, redeemed_at";

fn authorization_code(row: &DbRow) -> StoreResult<AuthorizationCode> {
    let port: Option<i32> = row.try_get("callback_port").map_err(map_err)?;
    Ok(AuthorizationCode {
        code_hash: s(row, "code_hash")?,
        code_challenge: s_opt(row, "code_challenge")?,
        callback_port: port.and_then(|p| u16::try_from(p).ok()),
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
        approved_by: s_opt(row, "approved_by")?,
        approved_at: ts_opt(row, "approved_at")?,
        approval_code_hash: s_opt(row, "approval_code_hash")?,
        redeemed_at: ts_opt(row, "redeemed_at")?,
    })
}

#[async_trait]
impl SessionStore for Backend {
    async fn create_sign_in_link(
        &self,
        link: NewSignInLink,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        count("create_sign_in_link");
        sqlx::query(
            "INSERT INTO sign_in_links (token_hash, email, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&link.token_hash)
        .bind(&link.email)
        .bind(to_millis(now))
        .bind(to_millis(link.expires_at))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn count_sign_in_links(&self, email: &str, since: DateTime<Utc>) -> StoreResult<u32> {
        count("count_sign_in_links");
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sign_in_links WHERE email = $1 AND created_at >= $2",
        )
        .bind(email)
        .bind(to_millis(since))
        .fetch_one(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn consume_sign_in_link(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("consume_sign_in_link");
        let spent = sqlx::query(
            "UPDATE sign_in_links SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if spent.rows_affected() == 0 {
            return Ok(None);
        }
        let email: String =
            sqlx::query_scalar("SELECT email FROM sign_in_links WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(email))
    }

    async fn create_session(
        &self,
        session: NewSession,
        now: DateTime<Utc>,
    ) -> StoreResult<Session> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("create_session");
        let row = sqlx::query(&format!(
            "SELECT {} FROM users u WHERE u.id = $1",
            rows::USER_COLS
        ))
        .bind(&session.user_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let user = row
            .as_ref()
            .map(rows::user)
            .transpose()?
            .ok_or(StoreError::NotFound)?;
        let id = new_id();
        sqlx::query(
            "INSERT INTO dashboard_sessions (id, token_hash, user_id, admin, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(&session.token_hash)
        .bind(&user.id)
        .bind(user.admin)
        .bind(to_millis(now))
        .bind(to_millis(session.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Session {
            id,
            user,
            created_at: now,
            expires_at: session.expires_at,
        })
    }

    async fn find_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Session>> {
        count("find_session");
        // Read from the primary: a session ended or demoted a moment ago must not live on
        // through a lagging replica.
        let row = sqlx::query(&format!(
            "SELECT s.id AS session_id, s.created_at AS session_created_at, s.expires_at AS session_expires_at, {}
             FROM dashboard_sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2
               AND (s.admin = FALSE OR u.admin = TRUE)",
            rows::USER_COLS
        ))
        .bind(token_hash)
        .bind(to_millis(now))
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.map(|row| {
            Ok(Session {
                id: s(&row, "session_id")?,
                user: rows::user(&row)?,
                created_at: ts(&row, "session_created_at")?,
                expires_at: ts(&row, "session_expires_at")?,
            })
        })
        .transpose()
    }

    async fn end_session(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<()> {
        count("end_session");
        sqlx::query(
            "UPDATE dashboard_sessions SET ended_at = $2 WHERE token_hash = $1 AND ended_at IS NULL",
        )
        .bind(token_hash)
        .bind(to_millis(now))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn create_authorization_code(
        &self,
        code: NewAuthorizationCode,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        count("create_authorization_code");
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, code_challenge, callback_port, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&code.code_hash)
        .bind(code.code_challenge.as_deref())
        .bind(code.callback_port.map(i32::from))
        .bind(to_millis(now))
        .bind(to_millis(code.expires_at))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn find_authorization_code(
        &self,
        code_hash: &str,
    ) -> StoreResult<Option<AuthorizationCode>> {
        count("find_authorization_code");
        let row = sqlx::query(&format!(
            "SELECT {CODE_COLS} FROM authorization_codes WHERE code_hash = $1"
        ))
        .bind(code_hash)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.as_ref().map(authorization_code).transpose()
    }

    async fn approve_authorization_code(
        &self,
        code_hash: &str,
        user_id: &str,
        approval_code_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("approve_authorization_code");
        let row = sqlx::query(&format!(
            "SELECT {CODE_COLS} FROM authorization_codes WHERE code_hash = $1 {FOR_UPDATE}"
        ))
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let code = row
            .as_ref()
            .map(authorization_code)
            .transpose()?
            .filter(|c| c.expires_at > now)
            .ok_or(StoreError::NotFound)?;
        if code.approved_by.is_some() {
            return Err(StoreError::conflict(
                ConflictKind::AuthorizationCodeApproved,
            ));
        }
        sqlx::query(
            "UPDATE authorization_codes SET approved_by = $2, approved_at = $3, approval_code_hash = $4
             WHERE code_hash = $1",
        )
        .bind(code_hash)
        .bind(user_id)
        .bind(to_millis(now))
        .bind(approval_code_hash)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn redeem_authorization_code(
        &self,
        code_hash: &str,
        token: NewPersonalAccessToken,
        now: DateTime<Utc>,
    ) -> StoreResult<PersonalAccessToken> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("redeem_authorization_code");
        // The token is written first so the code can name it; a code that cannot be spent
        // rolls both back.
        let pat = tokens::insert_pat(&mut tx, &token, now).await?;
        let spent = sqlx::query(
            "UPDATE authorization_codes SET redeemed_at = $3, pat_id = $4
             WHERE code_hash = $1 AND approved_by = $2 AND redeemed_at IS NULL AND expires_at > $3",
        )
        .bind(code_hash)
        .bind(&token.user_id)
        .bind(to_millis(now))
        .bind(&pat.id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if spent.rows_affected() == 0 {
            return Err(StoreError::conflict(
                ConflictKind::AuthorizationCodeRedeemed,
            ));
        }
        let actor = Actor {
            user_id: Some(token.user_id.clone()),
            credential_id: None,
            credential_kind: "cli_login".into(),
        };
        let mut rec = AuditRecord::new(audit_action::PAT_CREATED, &actor);
        rec.target_id = Some(&pat.id);
        audit::insert(&mut tx, rec, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(pat)
    }
}
