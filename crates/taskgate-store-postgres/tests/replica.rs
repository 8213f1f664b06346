//! A read replica that has not caught up never makes a row look missing: lookups it misses
//! are answered by the primary.

use chrono::{TimeZone, Utc};
use taskgate_core::env::EnvType;
use taskgate_core::hash::sha256_hex;
use taskgate_store::conformance::{fixture, unseal};
use taskgate_store::*;
use taskgate_store_postgres::testing::{fresh_schema, TEST_DATABASE_URL};
use taskgate_store_postgres::PostgresStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_fall_back_to_the_primary_when_the_replica_lags() {
    let url = std::env::var(TEST_DATABASE_URL)
        .expect("TASKGATE_TEST_DATABASE_URL must name a PostgreSQL database");
    let (primary, p_schema) = fresh_schema(&url).await.unwrap();
    // The "replica" is an empty (migrated) schema: it has caught up with nothing at all.
    let (replica, r_schema) = fresh_schema(&url).await.unwrap();
    PostgresStore::connect_with(replica.clone(), None, true, "tg_replica_test".into())
        .await
        .unwrap()
        .close()
        .await;
    let store = PostgresStore::connect_with(primary, Some(replica), true, format!("tg_{p_schema}"))
        .await
        .unwrap();

    let (_owner, _org, project) = fixture(&store).await;
    let prod = store
        .find_root_environment(&project.id, EnvType::Production, None)
        .await
        .unwrap()
        .unwrap();
    let key = unseal(&prod.api_key_sealed);
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let found = store
        .find_env_by_key_hash(&sha256_hex(&key), now)
        .await
        .unwrap();
    assert_eq!(found.map(|m| m.env.environment.id), Some(prod.id.clone()));
    assert!(store
        .get_environment_auth(&prod.id)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .find_env_by_key_hash(&sha256_hex("tr_prod_nope"), now)
        .await
        .unwrap()
        .is_none());

    store.close().await;
    drop((p_schema, r_schema));
}
