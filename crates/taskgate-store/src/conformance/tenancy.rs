//! Conformance cases: users, tokens, organizations, projects and soft deletion.

use std::sync::Arc;

use chrono::Duration;
use taskgate_core::env::EnvType;
use taskgate_core::hash::sha256_hex;
use taskgate_core::role::Role;

use super::*;
use crate::*;

pub async fn users_have_unique_emails(store: Arc<dyn Store>) {
    let u = user(&*store, "a@example.com").await;
    assert_eq!(store.get_user(&u.id).await.unwrap(), u);
    assert_eq!(
        store.find_user_by_email("a@example.com").await.unwrap(),
        Some(u)
    );
    let again = store
        .create_user(
            NewUser {
                email: "a@example.com".into(),
                name: None,
                admin: true,
            },
            &system(),
            t0(),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );
    assert!(matches!(
        store.get_user("nope").await,
        Err(StoreError::NotFound)
    ));
}

pub async fn bootstrap_happens_once(store: Arc<dyn Store>) {
    let token = |h: &str| NewPersonalAccessToken {
        user_id: String::new(),
        name: "bootstrap".into(),
        hashed_token: sha256_hex(h),
        obfuscated_token: "tr_pat_xxxx".into(),
    };
    let admin = NewUser {
        email: "admin@taskgate.local".into(),
        name: None,
        admin: true,
    };
    let first = store
        .bootstrap_admin(admin.clone(), token("one"), t0())
        .await
        .unwrap();
    let (u, pat) = first.expect("first bootstrap creates the admin");
    assert!(u.admin);
    assert_eq!(pat.user_id, u.id);
    let (found, owner) = store
        .find_live_pat_by_hash(&sha256_hex("one"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, owner.id), (pat.id, u.id));
    assert!(store
        .bootstrap_admin(admin, token("two"), t0())
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_live_pat_by_hash(&sha256_hex("two"))
        .await
        .unwrap()
        .is_none());
}

pub async fn pats_revoke_for_their_owner_only(store: Arc<dyn Store>) {
    let alice = user(&*store, "alice@example.com").await;
    let bob = user(&*store, "bob@example.com").await;
    let new = NewPersonalAccessToken {
        user_id: alice.id.clone(),
        name: "laptop".into(),
        hashed_token: sha256_hex("secret-a"),
        obfuscated_token: "tr_pat_abcd••••wxyz".into(),
    };
    let pat = store.create_pat(new, &system(), t0()).await.unwrap();
    assert_eq!(store.list_pats(&alice.id).await.unwrap(), vec![pat.clone()]);
    assert!(store.list_pats(&bob.id).await.unwrap().is_empty());
    assert!(matches!(
        store.revoke_pat(&bob.id, &pat.id, &system(), t0()).await,
        Err(StoreError::NotFound)
    ));
    assert!(store
        .find_live_pat_by_hash(&sha256_hex("secret-a"))
        .await
        .unwrap()
        .is_some());
    let revoked = store
        .revoke_pat(&alice.id, &pat.id, &system(), t0() + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(t0() + Duration::minutes(1)));
    assert!(store
        .find_live_pat_by_hash(&sha256_hex("secret-a"))
        .await
        .unwrap()
        .is_none());
    assert!(store.revoked_pat_ids().await.unwrap().contains(&pat.id));
    // Touching is throttled and never revives.
    store
        .touch_pat(&pat.id, t0() + Duration::hours(1), Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(
        store.list_pats(&alice.id).await.unwrap()[0].last_accessed_at,
        None
    );
}

pub async fn pat_last_access_is_throttled(store: Arc<dyn Store>) {
    let alice = user(&*store, "carol@example.com").await;
    let new = NewPersonalAccessToken {
        user_id: alice.id.clone(),
        name: "ci".into(),
        hashed_token: sha256_hex("secret-c"),
        obfuscated_token: "x".into(),
    };
    let pat = store.create_pat(new, &system(), t0()).await.unwrap();
    let throttle = Duration::minutes(5);
    store.touch_pat(&pat.id, t0(), throttle).await.unwrap();
    store
        .touch_pat(&pat.id, t0() + Duration::minutes(4), throttle)
        .await
        .unwrap();
    assert_eq!(
        store.list_pats(&alice.id).await.unwrap()[0].last_accessed_at,
        Some(t0())
    );
    store
        .touch_pat(&pat.id, t0() + Duration::minutes(6), throttle)
        .await
        .unwrap();
    assert_eq!(
        store.list_pats(&alice.id).await.unwrap()[0].last_accessed_at,
        Some(t0() + Duration::minutes(6))
    );
}

pub async fn projects_get_environments_for_every_member(store: Arc<dyn Store>) {
    let (owner, org, project) = fixture(&*store).await;
    let owner_m = store
        .find_membership(&owner.id, &org.slug)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owner_m.role, Role::Owner);
    assert_eq!(
        store
            .find_membership(&owner.id, &org.id)
            .await
            .unwrap()
            .unwrap()
            .organization,
        org
    );
    for t in [EnvType::Staging, EnvType::Production, EnvType::Preview] {
        let env = store
            .find_root_environment(&project.id, t, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((env.env_type, env.slug.as_str()), (t, t.slug()));
    }
    let dev = store
        .find_root_environment(&project.id, EnvType::Development, Some(&owner_m.member_id))
        .await
        .unwrap();
    assert!(dev.is_some(), "the owner has a dev environment");
    // A member added later gets a dev environment in the existing project.
    let dana = user(&*store, "dana@example.com").await;
    assert!(store
        .find_membership(&dana.id, &org.id)
        .await
        .unwrap()
        .is_none());
    let m = store
        .add_member(
            &org.id,
            &dana.id,
            Role::Developer,
            &TestMinter,
            &system(),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(
        (m.role, m.email.as_str()),
        (Role::Developer, "dana@example.com")
    );
    let dana_dev = store
        .find_root_environment(&project.id, EnvType::Development, Some(&m.id))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(Some(dana_dev.id), dev.map(|d| d.id));
    let again = store
        .add_member(
            &org.id,
            &dana.id,
            Role::Viewer,
            &TestMinter,
            &system(),
            t0(),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );
    assert_eq!(store.list_members(&org.id).await.unwrap().len(), 2);
    let access = store
        .find_project_access(&dana.id, &project.external_ref)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (access.role, access.project.id),
        (Role::Developer, project.id.clone())
    );
    let stranger = user(&*store, "eve@example.com").await;
    assert!(store
        .find_project_access(&stranger.id, &project.external_ref)
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.list_orgs_for_user(&dana.id).await.unwrap().len(), 1);
    assert_eq!(store.list_projects(&org.id).await.unwrap(), vec![project]);
}

pub async fn soft_deleted_orgs_take_their_keys_with_them(store: Arc<dyn Store>) {
    let (owner, org, project) = fixture(&*store).await;
    let prod = store
        .find_root_environment(&project.id, EnvType::Production, None)
        .await
        .unwrap()
        .unwrap();
    let key = unseal(&prod.api_key_sealed);
    assert!(
        !store
            .find_env_by_key_hash(&sha256_hex(&key), t0())
            .await
            .unwrap()
            .unwrap()
            .env
            .project_deleted
    );
    store.soft_delete_org(&org.id, t0()).await.unwrap();
    assert!(
        store
            .find_env_by_key_hash(&sha256_hex(&key), t0())
            .await
            .unwrap()
            .unwrap()
            .env
            .project_deleted
    );
    assert!(store
        .find_membership(&owner.id, &org.id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .list_orgs_for_user(&owner.id)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .find_project_access(&owner.id, &project.external_ref)
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        store.soft_delete_org(&org.id, t0()).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn soft_deleted_projects_disappear(store: Arc<dyn Store>) {
    let (owner, _org, project) = fixture(&*store).await;
    let prod = store
        .find_root_environment(&project.id, EnvType::Production, None)
        .await
        .unwrap()
        .unwrap();
    store.soft_delete_project(&project.id, t0()).await.unwrap();
    assert!(store
        .find_project_access(&owner.id, &project.external_ref)
        .await
        .unwrap()
        .is_none());
    let auth = store.get_environment_auth(&prod.id).await.unwrap().unwrap();
    assert!(auth.project_deleted);
    assert!(matches!(
        store.soft_delete_project(&project.id, t0()).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn members_change_role_and_leave_with_their_dev_environments(store: Arc<dyn Store>) {
    let (owner, org, project) = fixture(&*store).await;
    let ada = user(&*store, &format!("{}@example.com", new_id())).await;
    let member = store
        .add_member(
            &org.id,
            &ada.id,
            Role::Developer,
            &TestMinter,
            &system(),
            t0(),
        )
        .await
        .unwrap();
    let owner_member = store
        .list_members(&org.id)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.user_id == owner.id)
        .unwrap();
    let changed = store
        .set_member_role(&org.id, &member.id, Role::Viewer, &system(), t0())
        .await
        .unwrap();
    assert_eq!(changed.role, Role::Viewer);
    assert!(matches!(
        store
            .set_member_role(&org.id, &owner_member.id, Role::Admin, &system(), t0())
            .await,
        Err(StoreError::Conflict {
            kind: ConflictKind::LastOwner
        })
    ));
    assert!(matches!(
        store
            .remove_member(&org.id, &owner_member.id, &system(), t0())
            .await,
        Err(StoreError::Conflict {
            kind: ConflictKind::LastOwner
        })
    ));
    let (other_owner, other_org, _) = fixture(&*store).await;
    let _ = other_owner;
    assert!(matches!(
        store
            .set_member_role(&other_org.id, &member.id, Role::Admin, &system(), t0())
            .await,
        Err(StoreError::NotFound)
    ));

    let dev = store
        .find_root_environment(&project.id, EnvType::Development, Some(&member.id))
        .await
        .unwrap()
        .unwrap();
    let dev_key_hash = sha256_hex(&unseal(&dev.api_key_sealed));
    assert!(store
        .find_env_by_key_hash(&dev_key_hash, t0())
        .await
        .unwrap()
        .is_some());
    let mut events = store.subscribe();
    store
        .remove_member(&org.id, &member.id, &system(), t0())
        .await
        .unwrap();
    assert!(store
        .find_membership(&ada.id, &org.slug)
        .await
        .unwrap()
        .is_none());
    assert!(
        store
            .find_env_by_key_hash(&dev_key_hash, t0())
            .await
            .unwrap()
            .is_none(),
        "the member's dev key stops working"
    );
    let event = events.recv().await.unwrap();
    assert_eq!(
        event,
        ChangeEvent::EnvKeys {
            environment_id: dev.id.to_string()
        }
    );
    let audit = store
        .list_audit_events(&AuditQuery {
            action: Some(audit_action::MEMBER_REMOVED.into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    let all = store.list_organizations().await.unwrap();
    assert!(all.iter().any(|o| o.id == org.id) && all.iter().any(|o| o.id == other_org.id));
    store.soft_delete_org(&other_org.id, t0()).await.unwrap();
    assert!(!store
        .list_organizations()
        .await
        .unwrap()
        .iter()
        .any(|o| o.id == other_org.id));
    // Promoting a second owner lets the first step down.
    let bob = user(&*store, &format!("{}@example.com", new_id())).await;
    let bob_member = store
        .add_member(&org.id, &bob.id, Role::Owner, &TestMinter, &system(), t0())
        .await
        .unwrap();
    let _ = bob_member;
    store
        .set_member_role(&org.id, &owner_member.id, Role::Admin, &system(), t0())
        .await
        .unwrap();
}

pub async fn org_rate_limits_are_set_cleared_and_audited(store: Arc<dyn Store>) {
    use taskgate_core::ratelimit::{Interval, LimitConfig};
    let (_, org, _) = fixture(&*store).await;
    assert_eq!(store.org_rate_limit(&org.id).await.unwrap(), None);
    let limit = LimitConfig::token_bucket(5, Interval::parse("1m").unwrap(), 10).unwrap();
    let mut events = store.subscribe();
    store
        .set_org_rate_limit(&org.id, Some(&limit), &system(), t0())
        .await
        .unwrap();
    assert_eq!(
        store.org_rate_limit(&org.id).await.unwrap(),
        Some(limit.clone())
    );
    assert_eq!(
        events.recv().await.unwrap(),
        ChangeEvent::OrgRateLimit {
            organization_id: org.id.clone()
        }
    );
    store
        .set_org_rate_limit(&org.id, None, &system(), t0())
        .await
        .unwrap();
    assert_eq!(store.org_rate_limit(&org.id).await.unwrap(), None);
    let audit = store
        .list_audit_events(&AuditQuery {
            action: Some(audit_action::ORG_RATE_LIMIT_CHANGED.into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let ours: Vec<_> = audit
        .iter()
        .filter(|e| e.organization_id.as_deref() == Some(org.id.as_str()))
        .collect();
    assert_eq!(ours.len(), 2);
    let detail = |i: usize| -> serde_json::Value {
        serde_json::from_str(ours[i].detail.as_deref().unwrap()).unwrap()
    };
    // Newest first: the clearing, then the setting.
    assert_eq!(detail(0)["old"]["maxTokens"], 10);
    assert!(detail(0)["new"].is_null());
    assert!(detail(1)["old"].is_null());
    assert_eq!(detail(1)["new"]["interval"], "1m");
    assert!(matches!(
        store.org_rate_limit("nope").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .set_org_rate_limit("nope", None, &system(), t0())
            .await,
        Err(StoreError::NotFound)
    ));
    store.soft_delete_org(&org.id, t0()).await.unwrap();
    assert!(matches!(
        store.org_rate_limit(&org.id).await,
        Err(StoreError::NotFound)
    ));
}
