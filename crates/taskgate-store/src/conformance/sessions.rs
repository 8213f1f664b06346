//! Sign-in links, sessions and the CLI's authorization codes.

use std::sync::Arc;

use chrono::Duration;
use taskgate_core::hash::sha256_hex;

use super::{system, t0, user};
use crate::*;

pub async fn sign_in_links_work_once_and_not_after_expiry(store: Arc<dyn Store>) {
    let link = |hash: &str| NewSignInLink {
        token_hash: hash.into(),
        email: "ada@example.com".into(),
        expires_at: t0() + Duration::minutes(15),
    };
    store.create_sign_in_link(link("h1"), t0()).await.unwrap();
    store.create_sign_in_link(link("h2"), t0()).await.unwrap();
    assert_eq!(
        store
            .count_sign_in_links("ada@example.com", t0())
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .count_sign_in_links("ada@example.com", t0() + Duration::seconds(1))
            .await
            .unwrap(),
        0
    );
    let at = t0() + Duration::minutes(1);
    assert_eq!(
        store
            .consume_sign_in_link("h1", at)
            .await
            .unwrap()
            .as_deref(),
        Some("ada@example.com")
    );
    assert_eq!(store.consume_sign_in_link("h1", at).await.unwrap(), None);
    assert_eq!(
        store.consume_sign_in_link("unknown", at).await.unwrap(),
        None
    );
    let late = t0() + Duration::minutes(15);
    assert_eq!(store.consume_sign_in_link("h2", late).await.unwrap(), None);
}

pub async fn sessions_live_until_ended_expired_or_demoted(store: Arc<dyn Store>) {
    let ada = user(&*store, "ada@sessions.example").await;
    let admin = store
        .create_user(
            NewUser {
                email: "root@sessions.example".into(),
                name: None,
                admin: true,
            },
            &system(),
            t0(),
        )
        .await
        .unwrap();
    let start = |hash: &str, user_id: &str| NewSession {
        token_hash: hash.into(),
        user_id: user_id.into(),
        expires_at: t0() + Duration::days(30),
    };
    let s = store
        .create_session(start("a", &ada.id), t0())
        .await
        .unwrap();
    assert_eq!(s.user, ada);
    let found = store.find_session("a", t0()).await.unwrap().unwrap();
    assert_eq!((found.id.as_str(), &found.user), (s.id.as_str(), &ada));
    assert_eq!(store.find_session("b", t0()).await.unwrap(), None);
    assert_eq!(
        store
            .find_session("a", t0() + Duration::days(30))
            .await
            .unwrap(),
        None,
        "a session ends when it expires"
    );
    store.end_session("a", t0()).await.unwrap();
    assert_eq!(store.find_session("a", t0()).await.unwrap(), None);
    store.end_session("a", t0()).await.unwrap();

    assert!(matches!(
        store.create_session(start("x", "no-such-user"), t0()).await,
        Err(StoreError::NotFound)
    ));

    store
        .create_session(start("r", &admin.id), t0())
        .await
        .unwrap();
    assert!(
        store
            .find_session("r", t0())
            .await
            .unwrap()
            .unwrap()
            .user
            .admin
    );
    store
        .set_user_admin(&admin.id, false, &system(), t0())
        .await
        .unwrap();
    assert_eq!(
        store.find_session("r", t0()).await.unwrap(),
        None,
        "an administrator's session ends when the flag is cleared"
    );
    store
        .create_session(start("r2", &admin.id), t0())
        .await
        .unwrap();
    assert!(
        !store
            .find_session("r2", t0())
            .await
            .unwrap()
            .unwrap()
            .user
            .admin
    );
}

pub async fn authorization_codes_are_approved_once_and_redeemed_once(store: Arc<dyn Store>) {
    let ada = user(&*store, "ada@codes.example").await;
    let bob = user(&*store, "bob@codes.example").await;
    let code = |hash: &str| NewAuthorizationCode {
        code_hash: hash.into(),
        code_challenge: Some("c".repeat(43)),
        callback_port: Some(51234),
        expires_at: t0() + Duration::minutes(10),
    };
    store
        .create_authorization_code(code("c1"), t0())
        .await
        .unwrap();
    let stored = store.find_authorization_code("c1").await.unwrap().unwrap();
    assert_eq!(stored.callback_port, Some(51234));
    assert_eq!(stored.approved_by, None);
    let token = |user_id: &str, plain: &str| NewPersonalAccessToken {
        user_id: user_id.into(),
        name: "cli".into(),
        hashed_token: sha256_hex(plain),
        obfuscated_token: "tr_pat_…".into(),
    };
    let at = t0() + Duration::minutes(1);
    assert!(
        matches!(
            store
                .redeem_authorization_code("c1", token(&ada.id, "p0"), at)
                .await,
            Err(StoreError::Conflict { .. })
        ),
        "a code is redeemed only once approved"
    );
    store
        .approve_authorization_code("c1", &ada.id, "approval", at)
        .await
        .unwrap();
    assert!(matches!(
        store
            .approve_authorization_code("c1", &bob.id, "approval2", at)
            .await,
        Err(StoreError::Conflict { .. })
    ));
    let approved = store.find_authorization_code("c1").await.unwrap().unwrap();
    assert_eq!(approved.approved_by.as_deref(), Some(ada.id.as_str()));
    assert_eq!(approved.approval_code_hash.as_deref(), Some("approval"));
    assert!(
        matches!(
            store
                .redeem_authorization_code("c1", token(&bob.id, "p1"), at)
                .await,
            Err(StoreError::Conflict { .. })
        ),
        "only for the user who approved it"
    );
    let pat = store
        .redeem_authorization_code("c1", token(&ada.id, "p2"), at)
        .await
        .unwrap();
    assert_eq!(
        (pat.user_id.as_str(), pat.name.as_str()),
        (ada.id.as_str(), "cli")
    );
    let (found, owner) = store
        .find_live_pat_by_hash(&sha256_hex("p2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, owner.id), (pat.id, ada.id.clone()));
    assert!(matches!(
        store
            .redeem_authorization_code("c1", token(&ada.id, "p3"), at)
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        store
            .find_live_pat_by_hash(&sha256_hex("p3"))
            .await
            .unwrap(),
        None,
        "a refused redemption leaves no token behind"
    );
    assert_eq!(store.list_pats(&bob.id).await.unwrap(), vec![]);

    store
        .create_authorization_code(code("c2"), t0())
        .await
        .unwrap();
    let late = t0() + Duration::minutes(10);
    assert!(matches!(
        store
            .approve_authorization_code("c2", &ada.id, "a", late)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .approve_authorization_code("nope", &ada.id, "a", at)
            .await,
        Err(StoreError::NotFound)
    ));
}
