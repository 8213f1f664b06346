//! `/account/tokens`: personal access tokens shown once and revoked, user-actor tokens minted.

use axum::http::{Method, StatusCode};

use crate::common::{Backend, Page, TestApp};

/// The first token (`tr_pat_…` or `tr_uat_…`) in a page's message.
fn token_in(page: &Page, prefix: &str) -> String {
    let at = page.text.find(prefix).unwrap();
    page.text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .collect()
}

async fn works(app: &TestApp, token: &str) -> bool {
    app.api(Method::GET, "/api/v1/orgs", Some(token), None)
        .await
        .status
        == StatusCode::OK
}

async fn a_new_token_is_shown_once_and_works_until_revoked(b: Backend) {
    let app = TestApp::new(b).await;
    app.sign_in("admin@taskgate.local").await;
    let csrf = app.csrf("/account/tokens").await;
    let created = app
        .post_form("/account/tokens", &[("_csrf", &csrf), ("name", "laptop")])
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    let page = app.get("/account/tokens").await;
    assert_eq!(page.headers["cache-control"], "no-store");
    let token = token_in(&page, "tr_pat_");
    assert_eq!(token.len(), 47);
    assert!(page.text.contains("laptop"));
    assert!(works(&app, &token).await);
    let reload = app.get("/account/tokens").await;
    assert!(!reload.text.contains(&token), "shown once");

    // The revoke form of the "laptop" row.
    let label = reload.text.find("aria-label=\"Revoke laptop\"").unwrap();
    let form = reload.text[..label].rfind("action=\"").unwrap() + 8;
    let action = reload.text[form..form + reload.text[form..].find('"').unwrap()].to_string();
    let revoked = app.post_form(&action, &[("_csrf", &csrf)]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert!(!works(&app, &token).await, "revoked at once");
    assert!(app.get("/account/tokens").await.text.contains("Revoked"));
    let unknown = app
        .post_form("/account/tokens/nope/revoke", &[("_csrf", &csrf)])
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let nameless = app
        .post_form("/account/tokens", &[("_csrf", &csrf), ("name", "  ")])
        .await;
    assert_eq!(nameless.status, StatusCode::BAD_REQUEST);
    app.cleanup().await;
}

async fn a_user_actor_token_is_minted_from_a_token_and_dies_with_it(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, pat) = app.user("ada@example.com").await;
    app.sign_in("ada@example.com").await;
    let page = app.get("/account/tokens").await;
    let csrf = page.input_value("_csrf").unwrap();
    let source = page
        .text
        .split("<option value=\"")
        .nth(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .unwrap();
    let minted = app
        .post_form(
            "/account/tokens/user-actor",
            &[
                ("_csrf", &csrf),
                ("source", &source),
                ("ttl", "3600"),
                ("cap", "read:all"),
            ],
        )
        .await;
    assert_eq!(minted.status, StatusCode::SEE_OTHER, "{}", minted.text);
    let uat = token_in(&app.get("/account/tokens").await, "tr_uat_");
    assert!(works(&app, &uat).await);
    let write = app
        .api(
            Method::POST,
            "/api/v1/orgs",
            Some(&uat),
            Some(serde_json::json!({ "title": "Nope" })),
        )
        .await;
    assert_eq!(
        write.status,
        StatusCode::FORBIDDEN,
        "the cap holds: {}",
        write.text
    );

    let bad_cap = app
        .post_form(
            "/account/tokens/user-actor",
            &[
                ("_csrf", &csrf),
                ("source", &source),
                ("ttl", "3600"),
                ("cap", "fly:away"),
            ],
        )
        .await;
    assert_eq!(bad_cap.status, StatusCode::BAD_REQUEST);
    let bad_ttl = app
        .post_form(
            "/account/tokens/user-actor",
            &[("_csrf", &csrf), ("source", &source), ("ttl", "0")],
        )
        .await;
    assert_eq!(bad_ttl.status, StatusCode::BAD_REQUEST);
    let not_mine = app
        .post_form(
            "/account/tokens/user-actor",
            &[
                ("_csrf", &csrf),
                ("source", "someone-else"),
                ("ttl", "3600"),
            ],
        )
        .await;
    assert_eq!(not_mine.status, StatusCode::BAD_REQUEST);

    let revoked = app
        .post_form(
            &format!("/account/tokens/{source}/revoke"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert!(
        !works(&app, &uat).await,
        "revoking the source ends the user-actor token"
    );
    assert!(!works(&app, &pat).await);
    app.cleanup().await;
}

crate::on_both!(
    a_new_token_is_shown_once_and_works_until_revoked,
    a_user_actor_token_is_minted_from_a_token_and_dies_with_it,
);
