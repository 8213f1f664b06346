//! Users and first-run bootstrap.
//!
//! Compiled into both backends (`#[path]` modules of `taskgate-store-sqlite` and
//! `taskgate-store-postgres`) against their `backend` module: see `README.md` beside this file.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use taskgate_core::ids::new_id;
use taskgate_core::time::to_millis;
use taskgate_store::*;

use crate::audit::{self, AuditRecord};
use crate::backend::*;
use crate::error::map_err;
use crate::{count, rows, tokens};

pub(crate) async fn insert_user(
    conn: &mut DbConn,
    user: &NewUser,
    now: DateTime<Utc>,
) -> StoreResult<User> {
    count("insert_user");
    let row = User {
        id: new_id(),
        email: user.email.clone(),
        name: user.name.clone(),
        admin: user.admin,
        created_at: now,
    };
    sqlx::query(
        "INSERT INTO users (id, email, name, admin, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&row.id)
    .bind(&row.email)
    .bind(row.name.as_deref())
    .bind(row.admin)
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(row)
}

#[async_trait]
impl UserStore for Backend {
    async fn create_user(
        &self,
        user: NewUser,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<User> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let created = insert_user(&mut tx, &user, now).await?;
        let mut rec = AuditRecord::new(audit_action::USER_CREATED, actor);
        rec.target_id = Some(&created.id);
        audit::insert(&mut tx, rec, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(created)
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        count("list_users");
        let rows = sqlx::query(&format!(
            "SELECT {} FROM users u ORDER BY u.created_at, u.id",
            rows::USER_COLS
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(rows::user).collect()
    }

    async fn set_user_admin(
        &self,
        user_id: &str,
        admin: bool,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<User> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("set_user_admin");
        let done = sqlx::query("UPDATE users SET admin = $2 WHERE id = $1")
            .bind(user_id)
            .bind(admin)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let row = sqlx::query(&format!(
            "SELECT {} FROM users u WHERE u.id = $1",
            rows::USER_COLS
        ))
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let user = rows::user(&row)?;
        let mut rec = AuditRecord::new(audit_action::USER_ADMIN_CHANGED, actor);
        rec.target_id = Some(user_id);
        audit::insert(&mut tx, rec, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(user)
    }

    async fn get_user(&self, id: &str) -> StoreResult<User> {
        count("get_user");
        let row = sqlx::query(&format!(
            "SELECT {} FROM users u WHERE u.id = $1",
            rows::USER_COLS
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.as_ref()
            .map(rows::user)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        count("find_user_by_email");
        let row = sqlx::query(&format!(
            "SELECT {} FROM users u WHERE u.email = $1",
            rows::USER_COLS
        ))
        .bind(email)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.as_ref().map(rows::user).transpose()
    }

    async fn bootstrap_admin(
        &self,
        admin: NewUser,
        token: NewPersonalAccessToken,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(User, PersonalAccessToken)>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("bootstrap_count_users");
        let (existing,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        if existing > 0 {
            return Ok(None);
        }
        let user = insert_user(&mut tx, &admin, now).await?;
        let token = NewPersonalAccessToken {
            user_id: user.id.clone(),
            ..token
        };
        let pat = tokens::insert_pat(&mut tx, &token, now).await?;
        let actor = Actor {
            user_id: None,
            credential_id: None,
            credential_kind: "system".into(),
        };
        let mut rec = AuditRecord::new(audit_action::USER_CREATED, &actor);
        rec.target_id = Some(&user.id);
        audit::insert(&mut tx, rec, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some((user, pat)))
    }
}
