//! Environment keys: two-step lookup, rotation and grace windows.
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
use crate::{count, rows};

#[async_trait]
impl KeyStore for Backend {
    async fn find_env_by_key_hash(
        &self,
        key_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<KeyMatch>> {
        if let Some(replica) = self.replica() {
            if let Some(found) = self.find_env_by_key_hash_on(replica, key_hash, now).await? {
                return Ok(Some(found));
            }
        }
        self.find_env_by_key_hash_on(&self.reader, key_hash, now)
            .await
    }

    async fn live_key_hashes(
        &self,
        scope: KeyHashScope<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        let (envs, id) = match scope {
            KeyHashScope::All => ("$2 = ''", ""),
            KeyHashScope::Organization(id) => ("e.organization_id = $2", id),
            KeyHashScope::Environment(id) => ("(e.id = $2 OR e.parent_environment_id = $2)", id),
        };
        count("live_key_hashes");
        let rows = sqlx::query(&format!(
            "SELECT e.api_key_hash AS h FROM runtime_environments e WHERE {envs}
             UNION ALL
             SELECT r.api_key_hash AS h FROM revoked_api_keys r
             JOIN runtime_environments e ON e.id = r.runtime_environment_id
             WHERE {envs} AND r.expires_at > $1"
        ))
        .bind(to_millis(now))
        .bind(id)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(|r| rows::s(r, "h")).collect()
    }

    async fn get_environment_auth(
        &self,
        environment_id: &str,
    ) -> StoreResult<Option<EnvironmentAuth>> {
        if let Some(replica) = self.replica() {
            if let Some(found) = self
                .get_environment_auth_on(replica, environment_id)
                .await?
            {
                return Ok(Some(found));
            }
        }
        self.get_environment_auth_on(&self.reader, environment_id)
            .await
    }

    async fn find_branch_child(
        &self,
        parent_environment_id: &str,
        branch_name: &str,
    ) -> StoreResult<Option<Environment>> {
        count("find_branch_child");
        let row = sqlx::query(&format!(
            "SELECT {} FROM runtime_environments e
             WHERE e.parent_environment_id = $1 AND e.branch_name = $2 AND e.archived_at IS NULL",
            rows::ENV_COLS
        ))
        .bind(parent_environment_id)
        .bind(branch_name)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.as_ref().map(rows::environment).transpose()
    }

    async fn rotate_api_key(
        &self,
        environment_id: &str,
        keys: EnvKeys,
        grace_expires_at: DateTime<Utc>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Rotation> {
        // Rotations of one environment serialize here: PostgreSQL locks the row (`FOR NO KEY UPDATE`),
        // SQLite has one writer connection. A second rotation therefore reads the key the first
        // one installed, so no key is archived twice or lost.
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("rotate_read_current");
        let row = sqlx::query(&format!(
            "SELECT {}, e.api_key_hash FROM runtime_environments e WHERE e.id = $1{FOR_UPDATE}",
            rows::ENV_COLS
        ))
        .bind(environment_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?
        .ok_or(StoreError::NotFound)?;
        let old = rows::environment(&row)?;
        let old_hash: String = rows::s(&row, "api_key_hash")?;
        let revoked = RevokedApiKey {
            id: new_id(),
            runtime_environment_id: old.id.to_string(),
            api_key_sealed: old.api_key_sealed.clone(),
            last_four: old.api_key_last_four.clone(),
            expires_at: grace_expires_at,
            created_at: now,
            use_count: 0,
            last_used_at: None,
        };
        count("rotate_insert_revoked");
        sqlx::query(
            "INSERT INTO revoked_api_keys (id, runtime_environment_id, api_key_hash, api_key_sealed, last_four, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&revoked.id)
        .bind(&revoked.runtime_environment_id)
        .bind(&old_hash)
        .bind(&revoked.api_key_sealed)
        .bind(&revoked.last_four)
        .bind(to_millis(grace_expires_at))
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        count("rotate_update_env");
        sqlx::query(
            "UPDATE runtime_environments SET api_key_hash = $2, api_key_sealed = $3, api_key_last_four = $4,
                 pk_api_key_hash = $5, pk_api_key_sealed = $6, updated_at = $7
             WHERE id = $1",
        )
        .bind(environment_id)
        .bind(&keys.secret.hash)
        .bind(&keys.secret.sealed)
        .bind(&keys.secret.last_four)
        .bind(&keys.public.hash)
        .bind(&keys.public.sealed)
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let mut rec = AuditRecord::new(audit_action::API_KEY_ROTATED, actor);
        rec.organization_id = Some(&old.organization_id);
        rec.environment_id = Some(environment_id);
        rec.target_id = Some(&revoked.id);
        rec.new_expires_at = Some(grace_expires_at);
        audit::insert(&mut tx, rec, now).await?;
        let event = ChangeEvent::EnvKeys {
            environment_id: environment_id.to_string(),
        };
        self.commit_and_publish(tx, vec![event]).await?;
        let environment = Environment {
            api_key_sealed: keys.secret.sealed,
            api_key_last_four: keys.secret.last_four,
            ..old
        };
        Ok(Rotation {
            environment,
            revoked,
        })
    }

    async fn list_revoked_keys(&self, environment_id: &str) -> StoreResult<Vec<RevokedApiKey>> {
        count("list_revoked_keys");
        let rows = sqlx::query(&format!(
            "SELECT {} FROM revoked_api_keys r WHERE r.runtime_environment_id = $1 ORDER BY r.created_at DESC, r.id",
            rows::REVOKED_COLS
        ))
        .bind(environment_id)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(rows::revoked).collect()
    }

    async fn live_revoked_keys(
        &self,
        environment_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<RevokedApiKey>> {
        count("live_revoked_keys");
        let rows = sqlx::query(&format!(
            "SELECT {} FROM revoked_api_keys r WHERE r.runtime_environment_id = $1 AND r.expires_at > $2
             ORDER BY r.created_at DESC, r.id",
            rows::REVOKED_COLS
        ))
        .bind(environment_id)
        .bind(to_millis(now))
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(rows::revoked).collect()
    }

    async fn get_revoked_key(&self, id: &str) -> StoreResult<RevokedApiKey> {
        count("get_revoked_key");
        let row = sqlx::query(&format!(
            "SELECT {} FROM revoked_api_keys r WHERE r.id = $1",
            rows::REVOKED_COLS
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.as_ref()
            .map(rows::revoked)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    async fn set_revoked_key_expiry(
        &self,
        id: &str,
        expires_at: DateTime<Utc>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<GraceChange> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("grace_read");
        let row = sqlx::query(&format!(
            "SELECT {}, e.organization_id FROM revoked_api_keys r JOIN runtime_environments e ON e.id = r.runtime_environment_id
             WHERE r.id = $1{FOR_UPDATE_OF_R}",
            rows::REVOKED_COLS
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?
        .ok_or(StoreError::NotFound)?;
        let before = rows::revoked(&row)?;
        let organization_id: String = rows::s(&row, "organization_id")?;
        count("grace_update");
        sqlx::query("UPDATE revoked_api_keys SET expires_at = $2 WHERE id = $1")
            .bind(id)
            .bind(to_millis(expires_at))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let mut rec = AuditRecord::new(audit_action::GRACE_CHANGED, actor);
        rec.organization_id = Some(&organization_id);
        rec.environment_id = Some(&before.runtime_environment_id);
        rec.target_id = Some(id);
        rec.old_expires_at = Some(before.expires_at);
        rec.new_expires_at = Some(expires_at);
        audit::insert(&mut tx, rec, now).await?;
        let event = ChangeEvent::EnvKeys {
            environment_id: before.runtime_environment_id.clone(),
        };
        self.commit_and_publish(tx, vec![event]).await?;
        let previous_expires_at = before.expires_at;
        Ok(GraceChange {
            revoked: RevokedApiKey {
                expires_at,
                ..before
            },
            previous_expires_at,
        })
    }

    async fn record_revoked_key_usage(&self, usage: &[RevokedKeyUsage]) -> StoreResult<()> {
        if usage.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        for u in usage {
            count("record_revoked_key_usage");
            sqlx::query(
                "UPDATE revoked_api_keys SET use_count = use_count + $2,
                     last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < $3 THEN $3 ELSE last_used_at END
                 WHERE id = $1",
            )
            .bind(&u.revoked_key_id)
            .bind(u.uses)
            .bind(to_millis(u.last_used_at))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }
}

impl Backend {
    async fn find_env_by_key_hash_on(
        &self,
        pool: &Pool,
        key_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<KeyMatch>> {
        count("find_env_by_current_key");
        let current = sqlx::query(&format!(
            "{} WHERE e.api_key_hash = $1",
            rows::env_auth_select()
        ))
        .bind(key_hash)
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
        if let Some(row) = current {
            return Ok(Some(KeyMatch {
                env: rows::env_auth(&row)?,
                via: KeyMatchVia::Current,
            }));
        }
        count("find_env_by_revoked_key");
        // Several rows may share a key (rotated away, then somehow back); the longest grace wins.
        let revoked = sqlx::query(&format!(
            "SELECT {}, r.id AS revoked_id, r.expires_at AS revoked_expires_at
             FROM revoked_api_keys r JOIN runtime_environments e ON e.id = r.runtime_environment_id
             JOIN projects p ON p.id = e.project_id
             JOIN organizations o ON o.id = e.organization_id
             LEFT JOIN org_members m ON m.id = e.org_member_id
             WHERE r.api_key_hash = $1 AND r.expires_at > $2
             ORDER BY r.expires_at DESC LIMIT 1",
            rows::env_auth_columns()
        ))
        .bind(key_hash)
        .bind(to_millis(now))
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
        match revoked {
            Some(row) => Ok(Some(KeyMatch {
                env: rows::env_auth(&row)?,
                via: KeyMatchVia::Revoked {
                    revoked_key_id: rows::s(&row, "revoked_id")?,
                    expires_at: rows::ts(&row, "revoked_expires_at")?,
                },
            })),
            None => Ok(None),
        }
    }

    async fn get_environment_auth_on(
        &self,
        pool: &Pool,
        environment_id: &str,
    ) -> StoreResult<Option<EnvironmentAuth>> {
        count("get_environment_auth");
        let row = sqlx::query(&format!("{} WHERE e.id = $1", rows::env_auth_select()))
            .bind(environment_id)
            .fetch_optional(pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::env_auth).transpose()
    }
}
