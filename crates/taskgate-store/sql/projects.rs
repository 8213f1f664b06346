//! Projects and their environments.
//!
//! Compiled into both backends (`#[path]` modules of `taskgate-store-sqlite` and
//! `taskgate-store-postgres`) against their `backend` module: see `README.md` beside this file.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use taskgate_core::branch::branch_env_slug;
use taskgate_core::env::EnvType;
use taskgate_core::ids::{new_id, EnvironmentId};
use taskgate_core::time::to_millis;
use taskgate_store::*;

use crate::backend::*;
use crate::error::map_err;
use crate::{count, rows};

/// The identity columns of an environment to insert.
pub(crate) struct EnvRow<'a> {
    pub project_id: &'a str,
    pub organization_id: &'a str,
    pub env_type: EnvType,
    pub slug: String,
    pub org_member_id: Option<&'a str>,
    pub parent_environment_id: Option<&'a str>,
    pub branch_name: Option<&'a str>,
}

impl<'a> EnvRow<'a> {
    pub(crate) fn root(
        project_id: &'a str,
        organization_id: &'a str,
        env_type: EnvType,
        member: Option<&'a str>,
    ) -> Self {
        Self {
            project_id,
            organization_id,
            env_type,
            slug: env_type.slug().to_string(),
            org_member_id: member,
            parent_environment_id: None,
            branch_name: None,
        }
    }
}

pub(crate) async fn insert_environment(
    conn: &mut DbConn,
    row: EnvRow<'_>,
    keys: EnvKeys,
    now: DateTime<Utc>,
) -> StoreResult<Environment> {
    count("insert_environment");
    let env = Environment {
        id: new_id().into(),
        project_id: row.project_id.into(),
        organization_id: row.organization_id.into(),
        env_type: row.env_type,
        slug: row.slug,
        org_member_id: row.org_member_id.map(str::to_string),
        parent_environment_id: row.parent_environment_id.map(EnvironmentId::from),
        branch_name: row.branch_name.map(str::to_string),
        archived_at: None,
        api_key_sealed: keys.secret.sealed.clone(),
        api_key_last_four: keys.secret.last_four.clone(),
        created_at: now,
    };
    sqlx::query(
        "INSERT INTO runtime_environments (id, project_id, organization_id, type, slug, org_member_id,
             parent_environment_id, branch_name, api_key_hash, api_key_sealed, api_key_last_four,
             pk_api_key_hash, pk_api_key_sealed, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)",
    )
    .bind(&env.id)
    .bind(&env.project_id)
    .bind(&env.organization_id)
    .bind(env.env_type.as_str())
    .bind(&env.slug)
    .bind(env.org_member_id.as_deref())
    .bind(env.parent_environment_id.as_deref())
    .bind(env.branch_name.as_deref())
    .bind(&keys.secret.hash)
    .bind(&keys.secret.sealed)
    .bind(&keys.secret.last_four)
    .bind(&keys.public.hash)
    .bind(&keys.public.sealed)
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(env)
}

#[async_trait]
impl ProjectStore for Backend {
    async fn create_project(
        &self,
        organization_id: &str,
        name: &str,
        slug: &str,
        external_ref: &str,
        minter: &dyn KeyMinter,
        now: DateTime<Utc>,
    ) -> StoreResult<Project> {
        let project = Project {
            id: new_id(),
            organization_id: organization_id.to_string(),
            name: name.to_string(),
            slug: slug.to_string(),
            external_ref: external_ref.to_string(),
            created_at: now,
            deleted_at: None,
        };
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("create_project");
        sqlx::query(
            "INSERT INTO projects (id, organization_id, name, slug, external_ref, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&project.id)
        .bind(organization_id)
        .bind(name)
        .bind(slug)
        .bind(external_ref)
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        for env_type in [EnvType::Staging, EnvType::Production, EnvType::Preview] {
            let row = EnvRow::root(&project.id, organization_id, env_type, None);
            insert_environment(&mut tx, row, minter.mint(env_type), now).await?;
        }
        count("create_project_members");
        let members = sqlx::query("SELECT id FROM org_members WHERE organization_id = $1")
            .bind(organization_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        for m in &members {
            let member_id: String = m.try_get("id").map_err(map_err)?;
            let row = EnvRow::root(
                &project.id,
                organization_id,
                EnvType::Development,
                Some(&member_id),
            );
            insert_environment(&mut tx, row, minter.mint(EnvType::Development), now).await?;
        }
        let event = ChangeEvent::KeysIssued {
            organization_id: organization_id.to_string(),
        };
        self.commit_and_publish(tx, vec![event]).await?;
        Ok(project)
    }

    async fn list_projects(&self, organization_id: &str) -> StoreResult<Vec<Project>> {
        count("list_projects");
        let rows = sqlx::query(&format!(
            "SELECT {} FROM projects p WHERE p.organization_id = $1 AND p.deleted_at IS NULL ORDER BY p.created_at, p.id",
            rows::PROJECT_COLS
        ))
        .bind(organization_id)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(rows::project).collect()
    }

    async fn find_project_access(
        &self,
        user_id: &str,
        external_ref: &str,
    ) -> StoreResult<Option<ProjectAccess>> {
        count("find_project_access");
        let row = sqlx::query(&format!(
            "SELECT {}, {}, m.id AS member_id, m.role FROM projects p
             JOIN organizations o ON o.id = p.organization_id
             JOIN org_members m ON m.organization_id = o.id AND m.user_id = $1
             WHERE p.external_ref = $2 AND p.deleted_at IS NULL AND o.deleted_at IS NULL",
            rows::PROJECT_COLS,
            rows::ORG_COLS
        ))
        .bind(user_id)
        .bind(external_ref)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        match row {
            Some(row) => Ok(Some(ProjectAccess {
                project: rows::project(&row)?,
                organization: rows::org(&row)?,
                member_id: rows::s(&row, "member_id")?,
                role: rows::role(&row, "role")?,
            })),
            None => Ok(None),
        }
    }

    async fn soft_delete_project(&self, project_id: &str, now: DateTime<Utc>) -> StoreResult<()> {
        count("soft_delete_project");
        let done =
            sqlx::query("UPDATE projects SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL")
                .bind(project_id)
                .bind(to_millis(now))
                .execute(&self.writer)
                .await
                .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.publish(ChangeEvent::ProjectDeleted {
            project_id: project_id.to_string(),
        })
        .await;
        Ok(())
    }

    async fn find_root_environment(
        &self,
        project_id: &str,
        env_type: EnvType,
        member_id: Option<&str>,
    ) -> StoreResult<Option<Environment>> {
        count("find_root_environment");
        let row = sqlx::query(&format!(
            "SELECT {} FROM runtime_environments e
             WHERE e.project_id = $1 AND e.type = $2 AND e.parent_environment_id IS NULL
               AND (($3 IS NULL AND e.org_member_id IS NULL) OR e.org_member_id = $3)",
            rows::ENV_COLS
        ))
        .bind(project_id)
        .bind(env_type.as_str())
        .bind(member_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.as_ref().map(rows::environment).transpose()
    }

    async fn upsert_branch(
        &self,
        parent_environment_id: &str,
        branch_name: &str,
        minter: &dyn KeyMinter,
        now: DateTime<Utc>,
    ) -> StoreResult<Environment> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("upsert_branch_parent");
        let parent = sqlx::query(&format!(
            "SELECT {} FROM runtime_environments e WHERE e.id = $1{FOR_UPDATE}",
            rows::ENV_COLS
        ))
        .bind(parent_environment_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let parent = parent
            .as_ref()
            .map(rows::environment)
            .transpose()?
            .ok_or(StoreError::NotFound)?;
        if parent.parent_environment_id.is_some()
            || !matches!(parent.env_type, EnvType::Preview | EnvType::Development)
        {
            return Err(StoreError::conflict(ConflictKind::NotBranchable));
        }
        count("upsert_branch_existing");
        let existing = sqlx::query(&format!(
            "SELECT {} FROM runtime_environments e WHERE e.parent_environment_id = $1 AND e.branch_name = $2",
            rows::ENV_COLS
        ))
        .bind(parent_environment_id)
        .bind(branch_name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let env = match existing {
            Some(row) => {
                count("upsert_branch_unarchive");
                sqlx::query("UPDATE runtime_environments SET archived_at = NULL, updated_at = $2 WHERE id = $1")
                    .bind(rows::s::<String>(&row, "env_id")?)
                    .bind(to_millis(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                Environment {
                    archived_at: None,
                    ..rows::environment(&row)?
                }
            }
            None => {
                let row = EnvRow {
                    project_id: &parent.project_id,
                    organization_id: &parent.organization_id,
                    env_type: parent.env_type,
                    slug: branch_env_slug(&parent.slug, branch_name),
                    org_member_id: parent.org_member_id.as_deref(),
                    parent_environment_id: Some(&parent.id),
                    branch_name: Some(branch_name),
                };
                insert_environment(&mut tx, row, minter.mint(parent.env_type), now).await?
            }
        };
        let event = ChangeEvent::EnvKeys {
            environment_id: parent.id.to_string(),
        };
        self.commit_and_publish(tx, vec![event]).await?;
        Ok(env)
    }

    async fn archive_branch(&self, environment_id: &str, now: DateTime<Utc>) -> StoreResult<()> {
        count("archive_branch");
        let done = sqlx::query(
            "UPDATE runtime_environments SET archived_at = $2, updated_at = $2 WHERE id = $1 AND parent_environment_id IS NOT NULL",
        )
        .bind(environment_id)
        .bind(to_millis(now))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.publish(ChangeEvent::EnvKeys {
            environment_id: environment_id.to_string(),
        })
        .await;
        Ok(())
    }

    async fn list_branches(&self, parent_environment_id: &str) -> StoreResult<Vec<Environment>> {
        count("list_branches");
        let rows = sqlx::query(&format!(
            "SELECT {} FROM runtime_environments e
             WHERE e.parent_environment_id = $1 AND e.archived_at IS NULL
             ORDER BY e.created_at, e.branch_name",
            rows::ENV_COLS
        ))
        .bind(parent_environment_id)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(rows::environment).collect()
    }
}
