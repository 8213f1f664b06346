//! Conformance cases: packets. An offloaded payload is kept byte for byte with its type, per
//! environment and path; a second upload to the same path replaces the first.

use std::sync::Arc;

use chrono::Duration;

use super::engine::prod_env;
use super::*;
use crate::*;

pub async fn packets_are_kept_per_environment_and_replaced(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let other = prod_env(&*store).await;
    let path = "trigger/packet_abc/payload.json";
    // Every byte value, and more than one page of a blob.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(store.get_packet(&env, path).await.unwrap(), None);
    store
        .put_packet(&env, path, "application/super+json", &data, t0())
        .await
        .unwrap();
    let got = store.get_packet(&env, path).await.unwrap().unwrap();
    assert_eq!(got.content_type, "application/super+json");
    assert_eq!(got.data, data);
    assert_eq!(got.created_at, t0());
    assert_eq!(
        store.get_packet(&other, path).await.unwrap(),
        None,
        "another environment's path is another packet"
    );
    assert_eq!(
        store.get_packet(&env, "trigger/packet_abc").await.unwrap(),
        None,
        "paths match whole"
    );
    let later = t0() + Duration::seconds(5);
    store
        .put_packet(&env, path, "application/json", b"{\"a\":1}", later)
        .await
        .unwrap();
    let got = store.get_packet(&env, path).await.unwrap().unwrap();
    assert_eq!(
        (
            got.content_type.as_str(),
            got.data.as_slice(),
            got.created_at
        ),
        ("application/json", &b"{\"a\":1}"[..], later)
    );
}
