//! A user's own personal access tokens.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::{Backend, TestApp};
use crate::on_both;

async fn tokens_are_shown_once_and_revoked_at_once(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, alice) = app.user("alice@example.com").await;
    let r = app
        .post(
            "/api/v1/personal-access-tokens",
            &alice,
            json!({ "name": "laptop" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let second = r.body["token"].as_str().unwrap().to_string();
    let id = r.body["id"].as_str().unwrap().to_string();
    assert!(second.starts_with("tr_pat_") && second.len() == 47);
    assert!(second[7..]
        .chars()
        .all(|c| "123456789abcdefghijkmnopqrstuvwxyz".contains(c)));
    let obfuscated = r.body["obfuscatedToken"].as_str().unwrap();
    assert!(
        obfuscated.starts_with(&second[..11])
            && obfuscated.ends_with(&second[second.len() - 4..])
            && obfuscated.contains('•')
    );
    assert_eq!(
        app.get("/api/v1/orgs", &second).await.status,
        StatusCode::OK
    );

    let r = app.get("/api/v1/personal-access-tokens", &alice).await;
    assert_eq!(r.body["tokens"].as_array().map(Vec::len), Some(2));
    assert!(!r.text.contains(&second), "listing never shows a plaintext");

    let (_, bob) = app.user("bob@example.com").await;
    let r = app
        .request(
            Method::DELETE,
            &format!("/api/v1/personal-access-tokens/{id}"),
            Some(&bob),
            None,
            &[],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "another user's token is not found"
    );
    let r = app
        .request(
            Method::DELETE,
            &format!("/api/v1/personal-access-tokens/{id}"),
            Some(&alice),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["revokedAt"].is_string());
    let r = app.get("/api/v1/orgs", &second).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Invalid PAT"))
    );
    assert_eq!(app.get("/api/v1/orgs", &alice).await.status, StatusCode::OK);
    app.cleanup().await;
}

async fn a_revoked_token_is_refused_even_when_cached(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, alice) = app.user("carol@example.com").await;
    let r = app
        .post(
            "/api/v1/personal-access-tokens",
            &alice,
            json!({ "name": "ci" }),
        )
        .await;
    let (id, ci) = (
        r.body["id"].as_str().unwrap().to_string(),
        r.body["token"].as_str().unwrap().to_string(),
    );
    for _ in 0..3 {
        assert_eq!(app.get("/api/v2/whoami", &ci).await.status, StatusCode::OK);
    }
    app.request(
        Method::DELETE,
        &format!("/api/v1/personal-access-tokens/{id}"),
        Some(&alice),
        None,
        &[],
    )
    .await;
    let r = app.get("/api/v2/whoami", &ci).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("Invalid or Missing Access Token")
        )
    );
    app.cleanup().await;
}

async fn whoami_answers_the_cli(b: Backend) {
    let app = TestApp::new(b).await;
    let (id, dana) = app.user("dana@example.com").await;
    let (_, project) = app.org_and_project(&dana).await;
    let r = app.get("/api/v2/whoami", &dana).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        (r.body["userId"].as_str(), r.body["email"].as_str()),
        (Some(id.as_str()), Some("dana@example.com"))
    );
    assert!(r.body.get("project").is_none());
    let r = app
        .get(&format!("/api/v2/whoami?projectRef={project}"), &dana)
        .await;
    assert_eq!(r.body["project"]["name"], "Web");
    assert_eq!(r.body["project"]["orgTitle"], "Acme");
    let (_, key) = (0, app.env_key(&dana, &project, "prod").await);
    let r = app.get("/api/v2/whoami", &key).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("Invalid or Missing Access Token")
        )
    );
    app.cleanup().await;
}

on_both!(
    tokens_are_shown_once_and_revoked_at_once,
    a_revoked_token_is_refused_even_when_cached,
    whoami_answers_the_cli
);
