//! Conformance cases: deployments. A bundle's upload slot takes one upload of at most its
//! size while it lives; deployments get the environment's next version, are found again by
//! their external id, are deployed by the worker their indexing registers, and run once
//! promoted.

use std::sync::Arc;

use chrono::Duration;
use taskgate_core::hash::sha256_hex;
use taskgate_core::ids::{
    new_deployment_friendly_id, new_id, new_short_code, new_worker_friendly_id, EnvironmentId,
};

use super::engine::prod_env;
use super::*;
use crate::*;

fn slot(env: &EnvironmentId, key: &str, secret: &str, len: i64) -> NewArtifact {
    NewArtifact {
        key: key.into(),
        environment_id: env.clone(),
        upload_secret_hash: sha256_hex(secret),
        content_length: len,
        expires_at: t0() + Duration::minutes(30),
    }
}

pub(super) fn deployment(env: &EnvironmentId, hash: &str, external: Option<&str>) -> NewDeployment {
    NewDeployment {
        id: new_id().into(),
        friendly_id: new_deployment_friendly_id().into(),
        short_code: new_short_code(),
        environment_id: env.clone(),
        content_hash: hash.into(),
        artifact_key: Some("bundles/p/1.tar.gz".into()),
        external_id: external.map(str::to_string),
        runtime: Some("node".into()),
        triggered_via: Some("cli:linux:x64".into()),
        git_meta: None,
    }
}

/// Registers the worker a deployment's indexing would.
async fn index(store: &dyn Store, d: &Deployment) -> StoreResult<Worker> {
    store
        .register_worker(
            NewWorker {
                id: new_id().into(),
                friendly_id: new_worker_friendly_id().into(),
                environment_id: d.environment_id.clone(),
                content_hash: d.content_hash.clone(),
                sdk_version: Some("4.8.3".into()),
                cli_version: Some("4.8.3".into()),
                runtime: Some("node".into()),
                runtime_version: None,
                tasks: Vec::new(),
                queues: Vec::new(),
                deployment_id: Some(d.id.clone()),
            },
            t0(),
        )
        .await
}

pub async fn bundle_uploads_are_one_shot_sized_and_expire(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let other = {
        let (_, _, project) = fixture(&*store).await;
        store
            .find_root_environment(&project.id, EnvType::Production, None)
            .await
            .unwrap()
            .unwrap()
            .id
    };
    let key = "bundles/p/a.tar.gz";
    store
        .create_artifact(slot(&env, key, "s3cret", 4), t0())
        .await
        .unwrap();
    let upload = |secret: &'static str, data: &'static [u8], secs: i64| {
        let store = store.clone();
        async move {
            store
                .upload_artifact(
                    key,
                    &sha256_hex(secret),
                    data,
                    t0() + Duration::seconds(secs),
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(
        upload("wrong", b"tar", 1).await,
        Err(UploadRefusal::Unknown)
    );
    assert_eq!(
        upload("s3cret", b"12345", 1).await,
        Err(UploadRefusal::TooLarge)
    );
    assert_eq!(
        store.artifact_data(&env, key).await.unwrap(),
        None,
        "nothing is kept of a refused upload"
    );
    assert_eq!(upload("s3cret", b"tar", 1).await, Ok(()));
    assert_eq!(
        upload("s3cret", b"tar", 2).await,
        Err(UploadRefusal::AlreadyUploaded)
    );
    assert_eq!(
        store.artifact_data(&env, key).await.unwrap().as_deref(),
        Some(&b"tar"[..])
    );
    assert_eq!(
        store.artifact_data(&other, key).await.unwrap(),
        None,
        "another environment cannot read the bundle"
    );
    // A slot whose URL lapsed takes nothing, and is purged with it.
    store
        .create_artifact(slot(&env, "bundles/p/b.tar.gz", "late", 4), t0())
        .await
        .unwrap();
    assert_eq!(
        store
            .upload_artifact(
                "bundles/p/b.tar.gz",
                &sha256_hex("late"),
                b"tar",
                t0() + Duration::minutes(30),
            )
            .await
            .unwrap(),
        Err(UploadRefusal::Expired)
    );
    assert!(
        store
            .purge_artifacts(t0() + Duration::minutes(31))
            .await
            .unwrap()
            >= 1
    );
    assert_eq!(
        store
            .upload_artifact(
                "bundles/p/b.tar.gz",
                &sha256_hex("late"),
                b"tar",
                t0() + Duration::minutes(31),
            )
            .await
            .unwrap(),
        Err(UploadRefusal::Unknown)
    );
}

pub async fn deployments_are_versioned_indexed_failed_and_promoted(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let (first, existing) = store
        .create_deployment(deployment(&env, "h1", Some("ci-1")), false, t0())
        .await
        .unwrap();
    assert!(!existing);
    assert_eq!(first.status, DeploymentStatus::Building);
    assert_eq!(first.version, "20260101.1");
    // The same external id finds it again, unless forced.
    let (again, existing) = store
        .create_deployment(deployment(&env, "h1", Some("ci-1")), false, t0())
        .await
        .unwrap();
    assert!(existing);
    assert_eq!(again.id, first.id);
    let (second, existing) = store
        .create_deployment(
            deployment(&env, "h2", Some("ci-1")),
            true,
            t0() + Duration::seconds(1),
        )
        .await
        .unwrap();
    assert!(!existing);
    assert_eq!(second.version, "20260101.2");
    // Found by friendly id, id and version; listed newest first, in pages.
    for name in [
        first.friendly_id.to_string(),
        first.id.to_string(),
        first.version.clone(),
    ] {
        let found = store.get_deployment(&env, &name).await.unwrap().unwrap();
        assert_eq!(found.id, first.id, "{name}");
    }
    let listed = store.list_deployments(&env, 10, None).await.unwrap();
    assert_eq!(
        listed.iter().map(|d| &d.version).collect::<Vec<_>>(),
        ["20260101.2", "20260101.1"]
    );
    let page = store
        .list_deployments(&env, 10, Some((second.created_at, second.id.clone())))
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, first.id);
    // Nothing runs before a promotion.
    assert!(store.current_deployment(&env).await.unwrap().is_none());
    assert!(matches!(
        store
            .promote_deployment(&first.id, t0() + Duration::seconds(2))
            .await,
        Err(StoreError::NotFound)
    ));
    // Indexing deploys it, with the deployment's version, once.
    let worker = index(&*store, &first).await.unwrap();
    assert_eq!(worker.version, first.version);
    assert_eq!(worker.deployment_id.as_ref(), Some(&first.id));
    let deployed = store
        .get_deployment(&env, first.friendly_id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deployed.status, DeploymentStatus::Deployed);
    assert_eq!(deployed.worker_id.as_ref(), Some(&worker.id));
    assert!(matches!(
        index(&*store, &first).await,
        Err(StoreError::Conflict {
            kind: ConflictKind::DeploymentIndexed
        })
    ));
    store
        .promote_deployment(&first.id, t0() + Duration::seconds(2))
        .await
        .unwrap();
    let (current, current_worker, _) = store.current_deployment(&env).await.unwrap().unwrap();
    assert_eq!(current.id, first.id);
    assert_eq!(current_worker.id, worker.id);
    assert_eq!(
        store.deployed_environments().await.unwrap(),
        vec![(env.clone(), first.id.clone())]
    );
    // A failed deployment keeps its error, cannot be indexed or promoted, and leaves the
    // current one running.
    assert!(store
        .fail_deployment(&second.id, r#"{"name":"Error","message":"no index"}"#, t0())
        .await
        .unwrap());
    assert!(!store
        .fail_deployment(&second.id, r#"{"name":"Error","message":"again"}"#, t0())
        .await
        .unwrap());
    let failed = store
        .get_deployment(&env, second.friendly_id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, DeploymentStatus::Failed);
    assert!(failed.error.as_deref().unwrap().contains("no index"));
    assert!(index(&*store, &second).await.is_err());
    assert!(store
        .promote_deployment(&second.id, t0() + Duration::seconds(3))
        .await
        .is_err());
    let (current, _, _) = store.current_deployment(&env).await.unwrap().unwrap();
    assert_eq!(current.id, first.id);
}
