//! Conformance cases: key lookup, rotation, grace windows, branches, the audit log, change events.

use std::sync::Arc;

use chrono::Duration;
use taskgate_core::env::EnvType;
use taskgate_core::hash::sha256_hex;

use super::*;
use crate::*;

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
    let listed: Vec<_> = store
        .list_branches(&preview.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.branch_name)
        .collect();
    assert_eq!(listed, [Some("feat/checkout".to_string())]);
    store.archive_branch(&child.id, t0()).await.unwrap();
    assert!(
        store.list_branches(&preview.id).await.unwrap().is_empty(),
        "an archived branch is not listed"
    );
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
        environment_id: Some(prod.id.to_string()),
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
        environment_id: prod.id.to_string(),
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

pub async fn live_key_hashes_are_every_key_that_authenticates(store: Arc<dyn Store>) {
    let (_owner, org, project) = fixture(&*store).await;
    let (_other_owner, other_org, _) = fixture(&*store).await;
    let prod = store
        .find_root_environment(&project.id, EnvType::Production, None)
        .await
        .unwrap()
        .unwrap();
    let k1 = sha256_hex(&unseal(&prod.api_key_sealed));
    let in_org = store
        .live_key_hashes(KeyHashScope::Organization(&org.id), t0())
        .await
        .unwrap();
    // Staging, production, preview and the owner's development environment.
    assert_eq!(in_org.len(), 4, "{in_org:?}");
    assert!(in_org.contains(&k1));
    let all = store
        .live_key_hashes(KeyHashScope::All, t0())
        .await
        .unwrap();
    assert!(all.len() >= 8 && all.contains(&k1));
    let other = store
        .live_key_hashes(KeyHashScope::Organization(&other_org.id), t0())
        .await
        .unwrap();
    assert!(!other.contains(&k1));

    let keys = TestMinter.mint(EnvType::Production);
    let k2 = sha256_hex(&unseal(&keys.secret.sealed));
    let grace = t0() + Duration::hours(24);
    store
        .rotate_api_key(&prod.id, keys, grace, &system(), t0())
        .await
        .unwrap();
    let in_grace = store
        .live_key_hashes(KeyHashScope::Environment(&prod.id), t0())
        .await
        .unwrap();
    assert_eq!(in_grace.len(), 2);
    assert!(in_grace.contains(&k1) && in_grace.contains(&k2));
    let after = store
        .live_key_hashes(KeyHashScope::Environment(&prod.id), grace)
        .await
        .unwrap();
    assert_eq!(after, vec![k2], "the old key leaves with its grace");
}
