//! The conformance suite: behaviour every backend must show, run by each backend's own tests
//! through [`conformance_suite!`](crate::conformance_suite).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a failed step is a failed test"
)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use taskgate_core::env::EnvType;
use taskgate_core::hash::sha256_hex;
use taskgate_core::ids::new_id;
use taskgate_core::role::Role;

use crate::*;

/// Keys for tests: random values whose "sealed" form is the plaintext marked as such.
pub struct TestMinter;

impl TestMinter {
    pub fn material(plain: &str) -> KeyMaterial {
        KeyMaterial {
            hash: sha256_hex(plain),
            sealed: format!("sealed:{plain}"),
            last_four: plain[plain.len() - 4..].to_string(),
        }
    }
}

impl KeyMinter for TestMinter {
    fn mint(&self, env_type: EnvType) -> EnvKeys {
        EnvKeys {
            secret: Self::material(&format!("{}{}", env_type.key_prefix(), new_id())),
            public: Self::material(&format!("{}{}", env_type.pk_prefix(), new_id())),
        }
    }
}

/// The plaintext behind a [`TestMinter`] sealed value.
pub fn unseal(sealed: &str) -> String {
    sealed.trim_start_matches("sealed:").to_string()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn system() -> Actor {
    Actor {
        user_id: None,
        credential_id: None,
        credential_kind: "system".into(),
    }
}

async fn user(store: &dyn Store, email: &str) -> User {
    store
        .create_user(
            NewUser {
                email: email.into(),
                name: None,
                admin: false,
            },
            &system(),
            t0(),
        )
        .await
        .unwrap()
}

/// An org owned by a new user, with one project.
pub async fn fixture(store: &dyn Store) -> (User, Organization, Project) {
    let owner = user(store, &format!("{}@example.com", new_id())).await;
    let slug = format!("org-{}", new_id());
    let org = store
        .create_org("Acme", &slug, &owner.id, t0())
        .await
        .unwrap();
    let project = store
        .create_project(
            &org.id,
            "Web",
            "web",
            &format!("proj_{}", &new_id()[..20]),
            &TestMinter,
            t0(),
        )
        .await
        .unwrap();
    (owner, org, project)
}

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

pub async fn key_lookup_is_two_step_and_honours_grace(store: Arc<dyn Store>) {
    let (_owner, _org, project) = fixture(&*store).await;
    let prod = store
        .find_root_environment(&project.id, EnvType::Production, None)
        .await
        .unwrap()
        .unwrap();
    let k1 = unseal(&prod.api_key_sealed);
    let hit = store
        .find_env_by_key_hash(&sha256_hex(&k1), t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (hit.env.environment.id.as_str(), &hit.via),
        (prod.id.as_str(), &KeyMatchVia::Current)
    );
    assert_eq!(hit.env.project_ref, project.external_ref);
    assert!(store
        .find_env_by_key_hash(&sha256_hex("tr_prod_unknown"), t0())
        .await
        .unwrap()
        .is_none());

    let keys = TestMinter.mint(EnvType::Production);
    let k2 = unseal(&keys.secret.sealed);
    let grace = t0() + Duration::hours(24);
    let rot = store
        .rotate_api_key(&prod.id, keys, grace, &system(), t0())
        .await
        .unwrap();
    assert_eq!(rot.revoked.expires_at, grace);
    assert_eq!(unseal(&rot.environment.api_key_sealed), k2);

    let old = store
        .find_env_by_key_hash(&sha256_hex(&k1), t0() + Duration::hours(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        old.via,
        KeyMatchVia::Revoked {
            revoked_key_id: rot.revoked.id.clone(),
            expires_at: grace
        }
    );
    assert_eq!(
        unseal(&old.env.environment.api_key_sealed),
        k2,
        "a grace match carries the current key"
    );
    let new = store
        .find_env_by_key_hash(&sha256_hex(&k2), t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new.via, KeyMatchVia::Current);
    // expires_at is exclusive.
    assert!(store
        .find_env_by_key_hash(&sha256_hex(&k1), grace)
        .await
        .unwrap()
        .is_none());

    // End the grace, then re-open it.
    let now = t0() + Duration::hours(2);
    let ended = store
        .set_revoked_key_expiry(&rot.revoked.id, now, &system(), now)
        .await
        .unwrap();
    assert_eq!(
        (ended.previous_expires_at, ended.revoked.expires_at),
        (grace, now)
    );
    assert!(store
        .find_env_by_key_hash(&sha256_hex(&k1), now)
        .await
        .unwrap()
        .is_none());
    let later = now + Duration::hours(48);
    store
        .set_revoked_key_expiry(&rot.revoked.id, later, &system(), now)
        .await
        .unwrap();
    assert!(store
        .find_env_by_key_hash(&sha256_hex(&k1), now)
        .await
        .unwrap()
        .is_some());
    assert!(matches!(
        store
            .set_revoked_key_expiry("missing", now, &system(), now)
            .await,
        Err(StoreError::NotFound)
    ));

    let live = store.live_revoked_keys(&prod.id, now).await.unwrap();
    assert_eq!(live.len(), 1);
    assert!(store
        .live_revoked_keys(&prod.id, later)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .get_revoked_key(&rot.revoked.id)
            .await
            .unwrap()
            .expires_at,
        later
    );
}

pub async fn concurrent_rotations_lose_no_key(store: Arc<dyn Store>) {
    let (_owner, _org, project) = fixture(&*store).await;
    let stg = store
        .find_root_environment(&project.id, EnvType::Staging, None)
        .await
        .unwrap()
        .unwrap();
    let first = unseal(&stg.api_key_sealed);
    let mut handles = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        let env_id = stg.id.clone();
        handles.push(tokio::spawn(async move {
            let keys = TestMinter.mint(EnvType::Staging);
            let plain = unseal(&keys.secret.sealed);
            store
                .rotate_api_key(&env_id, keys, t0() + Duration::hours(24), &system(), t0())
                .await
                .map(|_| plain)
        }));
    }
    let mut installed = vec![first];
    for h in handles {
        installed.push(h.await.unwrap().unwrap());
    }
    let revoked = store.list_revoked_keys(&stg.id).await.unwrap();
    assert_eq!(revoked.len(), 16, "every rotation archived exactly one key");
    let mut current = 0;
    for key in &installed {
        match store
            .find_env_by_key_hash(&sha256_hex(key), t0())
            .await
            .unwrap()
        {
            Some(KeyMatch {
                via: KeyMatchVia::Current,
                ..
            }) => current += 1,
            Some(KeyMatch {
                via: KeyMatchVia::Revoked { .. },
                ..
            }) => {}
            None => panic!("a key that was current was lost"),
        }
    }
    assert_eq!(current, 1, "exactly one key is current");
}

pub async fn branches_resolve_until_archived(store: Arc<dyn Store>) {
    let (_owner, _org, project) = fixture(&*store).await;
    let preview = store
        .find_root_environment(&project.id, EnvType::Preview, None)
        .await
        .unwrap()
        .unwrap();
    let child = store
        .upsert_branch(&preview.id, "feat/checkout", &TestMinter, t0())
        .await
        .unwrap();
    assert_eq!(
        child.parent_environment_id.as_deref(),
        Some(preview.id.as_str())
    );
    assert_eq!(child.slug, "preview-feat-checkout");
    assert_eq!(
        store
            .find_branch_child(&preview.id, "feat/checkout")
            .await
            .unwrap()
            .map(|e| e.id),
        Some(child.id.clone())
    );
    assert!(store
        .find_branch_child(&preview.id, "other")
        .await
        .unwrap()
        .is_none());
    store.archive_branch(&child.id, t0()).await.unwrap();
    assert!(store
        .find_branch_child(&preview.id, "feat/checkout")
        .await
        .unwrap()
        .is_none());
    let back = store
        .upsert_branch(&preview.id, "feat/checkout", &TestMinter, t0())
        .await
        .unwrap();
    assert_eq!(back.id, child.id);
    assert!(store
        .find_branch_child(&preview.id, "feat/checkout")
        .await
        .unwrap()
        .is_some());
    let prod = store
        .find_root_environment(&project.id, EnvType::Production, None)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        store.upsert_branch(&prod.id, "x", &TestMinter, t0()).await,
        Err(StoreError::Conflict { .. })
    ));
}

pub async fn audit_log_records_rotations_and_grace_changes(store: Arc<dyn Store>) {
    let (owner, _org, project) = fixture(&*store).await;
    let prod = store
        .find_root_environment(&project.id, EnvType::Production, None)
        .await
        .unwrap()
        .unwrap();
    let actor = Actor {
        user_id: Some(owner.id.clone()),
        credential_id: Some("pat_1".into()),
        credential_kind: "personal_access_token".into(),
    };
    let grace = t0() + Duration::hours(24);
    let rot = store
        .rotate_api_key(
            &prod.id,
            TestMinter.mint(EnvType::Production),
            grace,
            &actor,
            t0(),
        )
        .await
        .unwrap();
    let ended = t0() + Duration::minutes(30);
    store
        .set_revoked_key_expiry(&rot.revoked.id, ended, &actor, ended)
        .await
        .unwrap();

    let q = AuditQuery {
        environment_id: Some(prod.id.clone()),
        limit: 10,
        ..Default::default()
    };
    let events = store.list_audit_events(&q).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].action, audit_action::GRACE_CHANGED);
    assert_eq!(
        (events[0].old_expires_at, events[0].new_expires_at),
        (Some(grace), Some(ended))
    );
    assert_eq!(events[0].actor, actor);
    assert_eq!(events[1].action, audit_action::API_KEY_ROTATED);
    assert_eq!(
        events[1].target_id.as_deref(),
        Some(rot.revoked.id.as_str())
    );
    let page2 = store
        .list_audit_events(&AuditQuery {
            before_seq: Some(events[0].seq),
            ..q.clone()
        })
        .await
        .unwrap();
    assert_eq!(page2, events[1..].to_vec());
    let only = AuditQuery {
        action: Some(audit_action::API_KEY_ROTATED.into()),
        ..q.clone()
    };
    assert_eq!(store.list_audit_events(&only).await.unwrap().len(), 1);
    let window = AuditQuery {
        from: Some(t0() + Duration::minutes(1)),
        ..q
    };
    assert_eq!(store.list_audit_events(&window).await.unwrap().len(), 1);
}

pub async fn revoked_key_usage_accumulates(store: Arc<dyn Store>) {
    let (_owner, _org, project) = fixture(&*store).await;
    let prod = store
        .find_root_environment(&project.id, EnvType::Production, None)
        .await
        .unwrap()
        .unwrap();
    let rot = store
        .rotate_api_key(
            &prod.id,
            TestMinter.mint(EnvType::Production),
            t0() + Duration::hours(24),
            &system(),
            t0(),
        )
        .await
        .unwrap();
    let at = |m| t0() + Duration::minutes(m);
    let id = rot.revoked.id.clone();
    store
        .record_revoked_key_usage(&[RevokedKeyUsage {
            revoked_key_id: id.clone(),
            uses: 3,
            last_used_at: at(5),
        }])
        .await
        .unwrap();
    store
        .record_revoked_key_usage(&[RevokedKeyUsage {
            revoked_key_id: id.clone(),
            uses: 2,
            last_used_at: at(3),
        }])
        .await
        .unwrap();
    let listed = store.list_revoked_keys(&prod.id).await.unwrap();
    assert_eq!(
        (listed[0].use_count, listed[0].last_used_at),
        (5, Some(at(5)))
    );
}

pub async fn changes_are_published(store: Arc<dyn Store>) {
    let mut rx = store.subscribe();
    let (_owner, _org, project) = fixture(&*store).await;
    let prod = store
        .find_root_environment(&project.id, EnvType::Production, None)
        .await
        .unwrap()
        .unwrap();
    store
        .rotate_api_key(
            &prod.id,
            TestMinter.mint(EnvType::Production),
            t0() + Duration::hours(1),
            &system(),
            t0(),
        )
        .await
        .unwrap();
    let want = ChangeEvent::EnvKeys {
        environment_id: prod.id.clone(),
    };
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match rx.recv().await {
                Ok(ev) if ev == want => return ev,
                Ok(_) => continue,
                Err(e) => panic!("subscription ended: {e}"),
            }
        }
    })
    .await
    .expect("the rotation is published within 5 s");
    assert_eq!(got, want);
}

fn new_run(env_id: &str, task: &str, at: DateTime<Utc>, tags: &[&str]) -> Run {
    Run {
        id: new_id(),
        friendly_id: taskgate_core::ids::new_run_friendly_id(),
        environment_id: env_id.to_string(),
        task_identifier: task.to_string(),
        status: "PENDING".into(),
        payload: Some("{\"a\":1}".into()),
        payload_type: "application/json".into(),
        output: None,
        output_type: None,
        error: None,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        metadata: None,
        metadata_type: None,
        idempotency_key: None,
        idempotency_key_user: None,
        idempotency_key_expires_at: None,
        queue: None,
        concurrency_key: None,
        max_attempts: None,
        machine: None,
        ttl: None,
        ttl_expires_at: None,
        delay_until: None,
        batch_id: None,
        is_test: false,
        created_at: at,
        updated_at: at,
        started_at: None,
        completed_at: None,
        expired_at: None,
        version: 1,
    }
}

async fn prod_env(store: &dyn Store) -> String {
    let (_owner, _org, project) = fixture(store).await;
    store
        .find_root_environment(&project.id, EnvType::Production, None)
        .await
        .unwrap()
        .unwrap()
        .id
}

pub async fn runs_trigger_with_idempotency_and_one_time_tokens(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let idem = |exp| Idempotency {
        key: "k1".into(),
        user_key: Some("mine".into()),
        expires_at: exp,
    };
    let first = store
        .trigger_run(
            new_run(&env, "email", t0(), &["a"]),
            Some(idem(t0() + Duration::days(1))),
            None,
            t0(),
        )
        .await
        .unwrap();
    assert!(!first.cached);
    let again = store
        .trigger_run(
            new_run(&env, "email", t0(), &[]),
            Some(idem(t0() + Duration::days(1))),
            None,
            t0(),
        )
        .await
        .unwrap();
    assert!(again.cached);
    assert_eq!(again.run.friendly_id, first.run.friendly_id);
    assert_eq!(again.run.idempotency_key_user.as_deref(), Some("mine"));
    // Another task with the same key is another run.
    let other = store
        .trigger_run(
            new_run(&env, "sms", t0(), &[]),
            Some(idem(t0() + Duration::days(1))),
            None,
            t0(),
        )
        .await
        .unwrap();
    assert!(!other.cached);
    // An expired key is released to a new run.
    let later = t0() + Duration::days(2);
    let fresh = store
        .trigger_run(
            new_run(&env, "email", later, &[]),
            Some(idem(later + Duration::days(1))),
            None,
            later,
        )
        .await
        .unwrap();
    assert!(!fresh.cached);
    assert_ne!(fresh.run.friendly_id, first.run.friendly_id);
    // A one-time token works once.
    let once = store
        .trigger_run(
            new_run(&env, "email", t0(), &[]),
            None,
            Some("hash-1".into()),
            t0(),
        )
        .await;
    assert!(once.is_ok());
    let twice = store
        .trigger_run(
            new_run(&env, "email", t0(), &[]),
            None,
            Some("hash-1".into()),
            t0(),
        )
        .await;
    assert!(
        matches!(twice, Err(StoreError::Conflict { ref constraint }) if constraint == "one_time_use_tokens"),
        "{twice:?}"
    );
    let got = store
        .get_run(&env, &first.run.friendly_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.tags, vec!["a".to_string()]);
    assert!(
        store
            .get_run("other-env", &first.run.friendly_id)
            .await
            .unwrap()
            .is_none(),
        "runs are per environment"
    );
}

pub async fn runs_list_in_pages_with_filters(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let task = if i % 2 == 0 { "even" } else { "odd" };
        let tags: &[&str] = if i == 4 { &["vip"] } else { &[] };
        let r = store
            .trigger_run(
                new_run(&env, task, t0() + Duration::seconds(i), tags),
                None,
                None,
                t0(),
            )
            .await
            .unwrap();
        ids.push(r.run.friendly_id);
    }
    ids.reverse();
    let page = |after: Option<&Run>| RunPage {
        limit: 2,
        after: after.map(|r| (r.created_at, r.id.clone())),
        before: None,
    };
    let mut seen = Vec::new();
    let mut last: Option<Run> = None;
    loop {
        let rows = store
            .list_runs(&env, &RunFilter::default(), &page(last.as_ref()))
            .await
            .unwrap();
        if rows.is_empty() {
            break;
        }
        seen.extend(rows.iter().map(|r| r.friendly_id.clone()));
        last = rows.last().cloned();
    }
    assert_eq!(seen, ids, "newest first, each once");
    let evens = RunFilter {
        task_identifiers: vec!["even".into()],
        ..Default::default()
    };
    assert_eq!(
        store
            .list_runs(
                &env,
                &evens,
                &RunPage {
                    limit: 10,
                    after: None,
                    before: None
                }
            )
            .await
            .unwrap()
            .len(),
        3
    );
    let vip = RunFilter {
        tags: vec!["vip".into()],
        ..Default::default()
    };
    assert_eq!(
        store
            .list_runs(
                &env,
                &vip,
                &RunPage {
                    limit: 10,
                    after: None,
                    before: None
                }
            )
            .await
            .unwrap()
            .len(),
        1
    );
    let window = RunFilter {
        created_from: Some(t0() + Duration::seconds(3)),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_runs(
                &env,
                &window,
                &RunPage {
                    limit: 10,
                    after: None,
                    before: None
                }
            )
            .await
            .unwrap()
            .len(),
        2
    );
    // Paging backwards from the oldest returns the newer ones, in newest-first order.
    let all = store
        .list_runs(
            &env,
            &RunFilter::default(),
            &RunPage {
                limit: 10,
                after: None,
                before: None,
            },
        )
        .await
        .unwrap();
    let oldest = all.last().unwrap();
    let back = RunPage {
        limit: 2,
        after: None,
        before: Some((oldest.created_at, oldest.id.clone())),
    };
    let newer: Vec<String> = store
        .list_runs(&env, &RunFilter::default(), &back)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.friendly_id)
        .collect();
    assert_eq!(newer, ids[2..4].to_vec());
}

pub async fn runs_change_state_once_and_stop_when_final(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let mut rx = store.subscribe();
    let r = store
        .trigger_run(new_run(&env, "t", t0(), &[]), None, None, t0())
        .await
        .unwrap()
        .run;
    let at = t0() + Duration::seconds(5);
    let (after, changed) = store
        .update_run(
            &env,
            &r.friendly_id,
            RunUpdate {
                status: "EXECUTING".into(),
                at,
                output: None,
                error: None,
            },
        )
        .await
        .unwrap();
    assert!(changed);
    assert_eq!((after.version, after.started_at), (2, Some(at)));
    let (done, _) = store
        .update_run(
            &env,
            &r.friendly_id,
            RunUpdate {
                status: "CANCELED".into(),
                at,
                output: None,
                error: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (done.status.as_str(), done.completed_at, done.version),
        ("CANCELED", Some(at), 3)
    );
    let (same, changed) = store
        .update_run(
            &env,
            &r.friendly_id,
            RunUpdate {
                status: "EXECUTING".into(),
                at,
                output: None,
                error: None,
            },
        )
        .await
        .unwrap();
    assert!(
        !changed && same.status == "CANCELED",
        "a final run does not change"
    );
    assert!(matches!(
        store
            .update_run(
                &env,
                "run_nope",
                RunUpdate {
                    status: "CANCELED".into(),
                    at,
                    output: None,
                    error: None
                }
            )
            .await,
        Err(StoreError::NotFound)
    ));
    let mut versions = Vec::new();
    while let Ok(Ok(ev)) =
        tokio::time::timeout(std::time::Duration::from_millis(500), rx.recv()).await
    {
        if let ChangeEvent::Run {
            run_id, version, ..
        } = ev
        {
            if run_id == r.id {
                versions.push(version);
            }
        }
        if versions.len() == 3 {
            break;
        }
    }
    assert_eq!(
        versions,
        vec![1, 2, 3],
        "each change published once, in order"
    );
}

pub async fn due_runs_start_or_expire(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let mut delayed = new_run(&env, "t", t0(), &[]);
    delayed.status = "DELAYED".into();
    delayed.delay_until = Some(t0() + Duration::minutes(1));
    let mut ttl = new_run(&env, "t", t0(), &[]);
    ttl.ttl_expires_at = Some(t0() + Duration::minutes(5));
    let d = store
        .trigger_run(delayed, None, None, t0())
        .await
        .unwrap()
        .run;
    let e = store.trigger_run(ttl, None, None, t0()).await.unwrap().run;
    assert!(store.advance_due_runs(t0()).await.unwrap().is_empty());
    let moved = store
        .advance_due_runs(t0() + Duration::minutes(2))
        .await
        .unwrap();
    assert_eq!(
        moved
            .iter()
            .map(|r| (r.friendly_id.as_str(), r.status.as_str()))
            .collect::<Vec<_>>(),
        vec![(d.friendly_id.as_str(), "PENDING")]
    );
    let expired = store
        .advance_due_runs(t0() + Duration::minutes(6))
        .await
        .unwrap();
    assert_eq!(expired.len(), 1);
    let got = store.get_run(&env, &e.friendly_id).await.unwrap().unwrap();
    assert_eq!(got.status, "EXPIRED");
    assert!(got.expired_at.is_some() && got.completed_at.is_some());
}

pub async fn streams_append_and_resume(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let r = store
        .trigger_run(new_run(&env, "t", t0(), &[]), None, None, t0())
        .await
        .unwrap()
        .run;
    for (i, chunk) in ["one", "two", "three"].iter().enumerate() {
        assert_eq!(
            store
                .append_stream_chunk(&r.id, "out", chunk, t0())
                .await
                .unwrap(),
            i as i64 + 1
        );
    }
    store
        .append_stream_chunk(&r.id, "other", "x", t0())
        .await
        .unwrap();
    let all: Vec<String> = store
        .read_stream(&r.id, "out", 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.data)
        .collect();
    assert_eq!(all, vec!["one", "two", "three"]);
    let rest = store.read_stream(&r.id, "out", 2, 100).await.unwrap();
    assert_eq!(
        (rest.len(), rest[0].seq, rest[0].data.as_str()),
        (1, 3, "three")
    );
    assert_eq!(
        store.read_stream(&r.id, "out", 0, 2).await.unwrap().len(),
        2
    );
}

pub async fn batches_dedupe_items_and_seal(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let b = Batch {
        id: new_id(),
        friendly_id: taskgate_core::ids::new_batch_friendly_id(),
        environment_id: env.clone(),
        run_count: 2,
        idempotency_key: Some("bk".into()),
        created_at: t0(),
        sealed: false,
    };
    let (created, cached) = store.create_batch(b.clone()).await.unwrap();
    assert!(!cached);
    let (again, cached) = store
        .create_batch(Batch {
            id: new_id(),
            friendly_id: "batch_other".into(),
            ..b.clone()
        })
        .await
        .unwrap();
    assert!(cached && again.friendly_id == created.friendly_id);
    assert!(store.add_batch_item(&created.id, 0, "run_a").await.unwrap());
    assert!(
        !store.add_batch_item(&created.id, 0, "run_a").await.unwrap(),
        "duplicate index"
    );
    assert_eq!(store.seal_batch(&created.id).await.unwrap(), (1, false));
    assert!(store.add_batch_item(&created.id, 1, "run_b").await.unwrap());
    assert_eq!(store.seal_batch(&created.id).await.unwrap(), (2, true));
    assert!(
        store
            .get_batch(&env, &created.friendly_id)
            .await
            .unwrap()
            .unwrap()
            .sealed
    );
}

/// Expands to one `#[tokio::test]` per conformance case. `$factory` is an async fn returning
/// `(Arc<dyn Store>, cleanup)` on a fresh, empty database; `cleanup` is a future that removes
/// that database once the case has passed.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@cases $factory;
            users_have_unique_emails, bootstrap_happens_once, pats_revoke_for_their_owner_only,
            pat_last_access_is_throttled, projects_get_environments_for_every_member,
            soft_deleted_projects_disappear, soft_deleted_orgs_take_their_keys_with_them,
            key_lookup_is_two_step_and_honours_grace,
            concurrent_rotations_lose_no_key, branches_resolve_until_archived,
            audit_log_records_rotations_and_grace_changes, revoked_key_usage_accumulates,
            changes_are_published, runs_trigger_with_idempotency_and_one_time_tokens,
            runs_list_in_pages_with_filters, runs_change_state_once_and_stop_when_final,
            due_runs_start_or_expire, streams_append_and_resume, batches_dedupe_items_and_seal);
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, cleanup) = $factory().await;
                $crate::conformance::$case(store.clone()).await;
                store.close().await;
                cleanup.await;
            }
        )*
    };
}
