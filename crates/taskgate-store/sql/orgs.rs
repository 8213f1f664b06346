//! Organizations and members.
//!
//! Compiled into both backends (`#[path]` modules of `taskgate-store-sqlite` and
//! `taskgate-store-postgres`) against their `backend` module: see `README.md` beside this file.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use taskgate_core::env::EnvType;
use taskgate_core::ids::new_id;
use taskgate_core::ratelimit::LimitConfig;
use taskgate_core::role::Role;
use taskgate_core::time::to_millis;
use taskgate_store::*;

use crate::audit::{self, AuditRecord};
use crate::backend::*;
use crate::error::map_err;
use crate::projects::{insert_environment, EnvRow};
use crate::{count, rows};

fn membership(row: &DbRow) -> StoreResult<OrgMembership> {
    Ok(OrgMembership {
        organization: rows::org(row)?,
        member_id: rows::s(row, "member_id")?,
        role: rows::role(row, "role")?,
    })
}

#[async_trait]
impl OrgStore for Backend {
    async fn create_org(
        &self,
        title: &str,
        slug: &str,
        owner_user_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Organization> {
        let org = Organization {
            id: new_id(),
            title: title.to_string(),
            slug: slug.to_string(),
            created_at: now,
        };
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("create_org");
        sqlx::query(
            "INSERT INTO organizations (id, title, slug, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&org.id)
        .bind(&org.title)
        .bind(&org.slug)
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        count("create_org_owner");
        sqlx::query("INSERT INTO org_members (id, organization_id, user_id, role, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(new_id())
            .bind(&org.id)
            .bind(owner_user_id)
            .bind(Role::Owner.as_str())
            .bind(to_millis(now))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(org)
    }

    async fn list_orgs_for_user(&self, user_id: &str) -> StoreResult<Vec<OrgMembership>> {
        count("list_orgs_for_user");
        let rows = sqlx::query(&format!(
            "SELECT {}, m.id AS member_id, m.role FROM organizations o JOIN org_members m ON m.organization_id = o.id
             WHERE m.user_id = $1 AND o.deleted_at IS NULL ORDER BY o.created_at, o.id",
            rows::ORG_COLS
        ))
        .bind(user_id)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(membership).collect()
    }

    async fn list_organizations(&self) -> StoreResult<Vec<Organization>> {
        count("list_organizations");
        let rows = sqlx::query(&format!(
            "SELECT {} FROM organizations o WHERE o.deleted_at IS NULL ORDER BY o.created_at, o.id",
            rows::ORG_COLS
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(rows::org).collect()
    }

    async fn org_rate_limit(&self, organization_id: &str) -> StoreResult<Option<LimitConfig>> {
        count("org_rate_limit");
        let row = sqlx::query(
            "SELECT api_rate_limit FROM organizations WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(organization_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?
        .ok_or(StoreError::NotFound)?;
        rows::rate_limit(&row)
    }

    async fn set_org_rate_limit(
        &self,
        organization_id: &str,
        limit: Option<&LimitConfig>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let new = limit
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("set_org_rate_limit_read");
        let row = sqlx::query(
            "SELECT api_rate_limit FROM organizations WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(organization_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?
        .ok_or(StoreError::NotFound)?;
        let old = rows::rate_limit(&row)?;
        count("set_org_rate_limit");
        sqlx::query("UPDATE organizations SET api_rate_limit = $2 WHERE id = $1")
            .bind(organization_id)
            .bind(new.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let detail = serde_json::json!({ "old": old, "new": limit }).to_string();
        let mut rec = AuditRecord::new(audit_action::ORG_RATE_LIMIT_CHANGED, actor);
        rec.organization_id = Some(organization_id);
        rec.target_id = Some(organization_id);
        rec.detail = Some(detail);
        audit::insert(&mut tx, rec, now).await?;
        let event = ChangeEvent::OrgRateLimit {
            organization_id: organization_id.to_string(),
        };
        self.commit_and_publish(tx, vec![event]).await
    }

    async fn find_membership(
        &self,
        user_id: &str,
        org_id_or_slug: &str,
    ) -> StoreResult<Option<OrgMembership>> {
        count("find_membership");
        let row = sqlx::query(&format!(
            "SELECT {}, m.id AS member_id, m.role FROM organizations o JOIN org_members m ON m.organization_id = o.id
             WHERE m.user_id = $1 AND (o.id = $2 OR o.slug = $2) AND o.deleted_at IS NULL",
            rows::ORG_COLS
        ))
        .bind(user_id)
        .bind(org_id_or_slug)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.as_ref().map(membership).transpose()
    }

    async fn add_member(
        &self,
        organization_id: &str,
        user_id: &str,
        role: Role,
        minter: &dyn KeyMinter,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Member> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let member_id = new_id();
        count("add_member");
        sqlx::query("INSERT INTO org_members (id, organization_id, user_id, role, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&member_id)
            .bind(organization_id)
            .bind(user_id)
            .bind(role.as_str())
            .bind(to_millis(now))
            .execute(&mut *tx)
            .await
            .map_err(|e| match map_err(e) {
                StoreError::Conflict { .. } => StoreError::conflict(ConflictKind::AlreadyMember),
                other => other,
            })?;
        count("add_member_projects");
        let projects = sqlx::query(
            "SELECT id FROM projects WHERE organization_id = $1 AND deleted_at IS NULL",
        )
        .bind(organization_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        for p in &projects {
            let project_id: String = p.try_get("id").map_err(map_err)?;
            let row = EnvRow::root(
                &project_id,
                organization_id,
                EnvType::Development,
                Some(&member_id),
            );
            insert_environment(&mut tx, row, minter.mint(EnvType::Development), now).await?;
        }
        let mut rec = AuditRecord::new(audit_action::MEMBER_ADDED, actor);
        rec.organization_id = Some(organization_id);
        rec.target_id = Some(user_id);
        audit::insert(&mut tx, rec, now).await?;
        count("add_member_read");
        let row = sqlx::query(&format!(
            "SELECT m.id AS member_id, m.organization_id, m.role, m.created_at AS member_created_at, {}
             FROM org_members m JOIN users u ON u.id = m.user_id WHERE m.id = $1",
            rows::USER_COLS
        ))
        .bind(&member_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let member = member(&row)?;
        let event = ChangeEvent::KeysIssued {
            organization_id: organization_id.to_string(),
        };
        self.commit_and_publish(tx, vec![event]).await?;
        Ok(member)
    }

    async fn soft_delete_org(&self, organization_id: &str, now: DateTime<Utc>) -> StoreResult<()> {
        count("soft_delete_org");
        let done = sqlx::query(
            "UPDATE organizations SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(organization_id)
        .bind(to_millis(now))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let event = ChangeEvent::OrgDeleted {
            organization_id: organization_id.to_string(),
        };
        self.publish(event).await;
        Ok(())
    }

    async fn list_members(&self, organization_id: &str) -> StoreResult<Vec<Member>> {
        count("list_members");
        let rows = sqlx::query(&format!(
            "SELECT m.id AS member_id, m.organization_id, m.role, m.created_at AS member_created_at, {}
             FROM org_members m JOIN users u ON u.id = m.user_id WHERE m.organization_id = $1 ORDER BY m.created_at, m.id",
            rows::USER_COLS
        ))
        .bind(organization_id)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(member).collect()
    }

    async fn set_member_role(
        &self,
        organization_id: &str,
        member_id: &str,
        role: Role,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Member> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let (mut found, owners) = member_for_change(&mut tx, organization_id, member_id).await?;
        if found.role == Role::Owner && role != Role::Owner && owners <= 1 {
            return Err(last_owner());
        }
        count("set_member_role");
        sqlx::query("UPDATE org_members SET role = $2 WHERE id = $1")
            .bind(member_id)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        found.role = role;
        let mut rec = AuditRecord::new(audit_action::MEMBER_ROLE_CHANGED, actor);
        rec.organization_id = Some(organization_id);
        rec.target_id = Some(member_id);
        audit::insert(&mut tx, rec, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(found)
    }

    async fn remove_member(
        &self,
        organization_id: &str,
        member_id: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Member> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let (found, owners) = member_for_change(&mut tx, organization_id, member_id).await?;
        if found.role == Role::Owner && owners <= 1 {
            return Err(last_owner());
        }
        count("remove_member_envs");
        // Their development environments and those environments' branches go with them.
        let envs: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM runtime_environments WHERE org_member_id = $1
             UNION SELECT c.id FROM runtime_environments c JOIN runtime_environments p
               ON c.parent_environment_id = p.id WHERE p.org_member_id = $1",
        )
        .bind(member_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        count("remove_member");
        sqlx::query("DELETE FROM org_members WHERE id = $1")
            .bind(member_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let mut rec = AuditRecord::new(audit_action::MEMBER_REMOVED, actor);
        rec.organization_id = Some(organization_id);
        rec.target_id = Some(member_id);
        audit::insert(&mut tx, rec, now).await?;
        let events = envs
            .into_iter()
            .map(|environment_id| ChangeEvent::EnvKeys { environment_id })
            .collect();
        self.commit_and_publish(tx, events).await?;
        Ok(found)
    }
}

/// The member `member_id` of `organization_id`, locked, and how many owners the organization
/// has; `NotFound` for another organization's member.
async fn member_for_change(
    conn: &mut DbConn,
    organization_id: &str,
    member_id: &str,
) -> StoreResult<(Member, i64)> {
    count("member_for_change");
    let row = sqlx::query(&format!(
        "SELECT m.id AS member_id, m.organization_id, m.role, m.created_at AS member_created_at, {}
         FROM org_members m JOIN users u ON u.id = m.user_id
         WHERE m.organization_id = $1 AND m.id = $2",
        rows::USER_COLS
    ))
    .bind(organization_id)
    .bind(member_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?;
    let found = row
        .as_ref()
        .map(member)
        .transpose()?
        .ok_or(StoreError::NotFound)?;
    // Every owner row is locked, so two demotions cannot each leave the other as the last.
    let owners = sqlx::query(&format!(
        "SELECT id FROM org_members WHERE organization_id = $1 AND role = 'owner' {FOR_UPDATE}"
    ))
    .bind(organization_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)?
    .len();
    Ok((found, i64::try_from(owners).unwrap_or(i64::MAX)))
}

fn last_owner() -> StoreError {
    StoreError::conflict(ConflictKind::LastOwner)
}

fn member(row: &DbRow) -> StoreResult<Member> {
    Ok(Member {
        id: rows::s(row, "member_id")?,
        organization_id: rows::s(row, "organization_id")?,
        user_id: rows::s(row, "id")?,
        email: rows::s(row, "email")?,
        name: rows::s_opt(row, "name")?,
        role: rows::role(row, "role")?,
        created_at: rows::ts(row, "member_created_at")?,
    })
}
