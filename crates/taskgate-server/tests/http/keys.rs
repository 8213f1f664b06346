//! Secret keys: authentication, rotation with a grace window, the administrator's control of
//! it, branches, caching and database failure.

use axum::http::{Method, StatusCode};
use chrono::Duration;
use serde_json::{json, Value};

use crate::common::{Backend, TestApp};
use crate::on_both;

async fn credential(app: &TestApp, key: &str) -> crate::common::Response {
    app.request(Method::GET, "/api/v1/auth/credential", Some(key), None, &[])
        .await
}

async fn set_grace(
    app: &TestApp,
    id: &str,
    expires_at: serde_json::Value,
) -> crate::common::Response {
    app.post(
        &format!("/admin/api/v1/revoked-api-keys/{id}"),
        &app.admin_token,
        json!({ "expiresAt": expires_at }),
    )
    .await
}

async fn rotation_keeps_the_old_key_working_until_the_grace_ends(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (project, k1) = app.project_with_key("prod").await;
    let r = credential(&app, &k1).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let env_id = r.body["environmentId"].as_str().unwrap().to_string();

    let r = app
        .post(
            &format!("/api/v1/projects/{project}/prod/regenerate-api-key"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let k2 = r.body["apiKey"].as_str().unwrap().to_string();
    let revoked_id = r.body["revokedApiKey"]["id"].as_str().unwrap().to_string();
    let expires = chrono::DateTime::parse_from_rfc3339(
        r.body["revokedApiKey"]["expiresAt"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(
        expires,
        crate::common::t0() + Duration::hours(24),
        "default grace is 24 h"
    );
    assert!(k2.starts_with("tr_prod_") && k2 != k1);

    // Inside the grace both keys work, and both resolve to the same environment.
    let old = credential(&app, &k1).await;
    assert_eq!(
        (old.status, old.body["environmentId"].as_str()),
        (StatusCode::OK, Some(env_id.as_str()))
    );
    assert_eq!(old.body["graceKeyId"], revoked_id.as_str());
    let new = credential(&app, &k2).await;
    assert_eq!(
        (new.status, new.body["environmentId"].as_str()),
        (StatusCode::OK, Some(env_id.as_str()))
    );
    assert!(new.body.get("graceKeyId").is_none());
    assert_eq!(app.env_key(&token, &project, "prod").await, k2);

    // The administrator ends the grace: the old key is refused at once, the new one is not.
    let r = set_grace(&app, &revoked_id, json!(null)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["success"], true);
    assert_eq!(
        r.body["revokedApiKey"]["expiresAt"], "2026-03-01T12:00:00.000Z",
        "an ended grace records when it ended"
    );
    let old = credential(&app, &k1).await;
    assert_eq!(
        (old.status, old.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Invalid API key"))
    );
    assert_eq!(credential(&app, &k2).await.status, StatusCode::OK);

    // ... and re-opens it with an ISO time, then ends it with epoch milliseconds in the past.
    let r = set_grace(&app, &revoked_id, json!("2026-03-05T00:00:00Z")).await;
    assert_eq!(
        r.body["revokedApiKey"]["expiresAt"],
        "2026-03-05T00:00:00.000Z"
    );
    assert_eq!(credential(&app, &k1).await.status, StatusCode::OK);
    let past_ms = (crate::common::t0() - Duration::minutes(1)).timestamp_millis();
    assert_eq!(
        set_grace(&app, &revoked_id, json!(past_ms)).await.status,
        StatusCode::OK
    );
    assert_eq!(credential(&app, &k1).await.status, StatusCode::UNAUTHORIZED);

    // A grace that lapses on its own: an expired row never matches.
    let future_ms = (crate::common::t0() + Duration::hours(2)).timestamp_millis();
    assert_eq!(
        set_grace(&app, &revoked_id, json!(future_ms)).await.status,
        StatusCode::OK
    );
    assert_eq!(credential(&app, &k1).await.status, StatusCode::OK);
    app.clock.advance(Duration::hours(2));
    assert_eq!(
        credential(&app, &k1).await.status,
        StatusCode::UNAUTHORIZED,
        "served from cache past its expiry"
    );
    assert_eq!(credential(&app, &k2).await.status, StatusCode::OK);

    // Every change is in the audit log with actor, credential and both expiries.
    let r = app
        .get(
            &format!("/admin/api/v1/audit-events?environmentId={env_id}"),
            &token,
        )
        .await;
    let events = r.body["data"].as_array().unwrap();
    assert_eq!(events.len(), 5, "{}", r.text);
    assert_eq!(events[4]["action"], "api_key.rotated");
    assert_eq!(events[3]["action"], "revoked_api_key.grace_changed");
    assert_eq!(events[3]["oldExpiresAt"], "2026-03-02T12:00:00Z");
    assert_eq!(events[3]["newExpiresAt"], "2026-03-01T12:00:00Z");
    assert_eq!(events[3]["credentialKind"], "personal_access_token");
    assert!(events[3]["actorUserId"].is_string() && events[3]["credentialId"].is_string());
    app.cleanup().await;
}

async fn the_grace_route_validates_and_is_admin_only(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (project, _) = app.project_with_key("prod").await;
    let (_, revoked_id) = app.rotate(&token, &project, "prod").await;
    let r = set_grace(&app, "nope", json!(null)).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("Revoked API key not found"))
    );
    for bad in [json!("not a date"), json!({}), json!([1])] {
        let r = set_grace(&app, &revoked_id, bad).await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("Invalid request body"))
        );
    }
    let r = app
        .post(
            &format!("/admin/api/v1/revoked-api-keys/{revoked_id}"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .request(
            Method::GET,
            &format!("/admin/api/v1/revoked-api-keys/{revoked_id}"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = app
        .request(
            Method::PUT,
            &format!("/admin/api/v1/revoked-api-keys/{revoked_id}"),
            Some(&token),
            Some(json!({ "expiresAt": null })),
            &[],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "any non-GET method works, as upstream"
    );
    let (_, user) = app.user("someone@example.com").await;
    let r = app
        .post(
            &format!("/admin/api/v1/revoked-api-keys/{revoked_id}"),
            &user,
            json!({ "expiresAt": null }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (
            StatusCode::FORBIDDEN,
            Some("You must be an admin to perform this action")
        )
    );
    let r = app
        .post(
            &format!("/admin/api/v1/revoked-api-keys/{revoked_id}"),
            "tr_pat_bogus",
            json!({ "expiresAt": null }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Invalid or Missing API key"))
    );
    app.cleanup().await;
}

async fn operators_see_grace_keys_and_their_use(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (project, k1) = app.project_with_key("staging").await;
    let (_, revoked_id) = app.rotate(&token, &project, "staging").await;
    for _ in 0..3 {
        assert_eq!(credential(&app, &k1).await.status, StatusCode::OK);
    }
    taskgate_server::flush_usage(&app.state.auth.cache, &*app.state.store).await;
    let r = app
        .get(
            &format!("/api/v1/projects/{project}/staging/revoked-api-keys"),
            &token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let keys = r.body["revokedApiKeys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["id"], revoked_id.as_str());
    assert_eq!(keys[0]["lastFour"], &k1[k1.len() - 4..]);
    assert_eq!(keys[0]["useCount"], 3);
    assert_eq!(keys[0]["active"], true);
    assert!(keys[0]["lastUsedAt"].is_string());
    assert!(!r.text.contains(&k1), "never the key itself");
    app.cleanup().await;
}

async fn repeated_rotations_each_keep_their_own_grace(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (project, k1) = app.project_with_key("prod").await;
    let (k2, _) = app.rotate(&token, &project, "prod").await;
    app.clock.advance(Duration::hours(12));
    let (k3, r2) = app.rotate(&token, &project, "prod").await;
    app.clock.advance(Duration::hours(13));
    // k1's grace (24 h from the first rotation) is over; k2's is not.
    assert_eq!(credential(&app, &k1).await.status, StatusCode::UNAUTHORIZED);
    let r = credential(&app, &k2).await;
    assert_eq!(
        (r.status, r.body["graceKeyId"].as_str()),
        (StatusCode::OK, Some(r2.as_str()))
    );
    assert_eq!(credential(&app, &k3).await.status, StatusCode::OK);
    app.cleanup().await;
}

async fn concurrent_rotations_lose_no_key(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (project, k1) = app.project_with_key("prod").await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let router = app.router.clone();
        let (token, project) = (token.clone(), project.clone());
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let req = axum::http::Request::post(format!(
                "/api/v1/projects/{project}/prod/regenerate-api-key"
            ))
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap();
            let resp = router.oneshot(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let bytes = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            v["apiKey"].as_str().unwrap().to_string()
        }));
    }
    let mut keys = vec![k1];
    for t in tasks {
        keys.push(t.await.unwrap());
    }
    let mut current = 0;
    for k in &keys {
        let r = credential(&app, k).await;
        assert_eq!(r.status, StatusCode::OK, "a key that was current was lost");
        if r.body.get("graceKeyId").is_none() {
            current += 1;
        }
    }
    assert_eq!(current, 1, "exactly one key is current");
    let r = app
        .get(
            &format!("/api/v1/projects/{project}/prod/revoked-api-keys"),
            &token,
        )
        .await;
    assert_eq!(r.body["revokedApiKeys"].as_array().map(Vec::len), Some(12));
    app.cleanup().await;
}

async fn branches_need_the_header_and_use_the_parent_key(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (project, preview) = app.project_with_key("preview").await;
    let r = credential(&app, &preview).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("x-trigger-branch header required for preview env")
        )
    );
    let with = |branch: &'static str, key: String| {
        let app = &app;
        async move {
            app.request(
                Method::GET,
                "/api/v1/auth/credential",
                Some(&key),
                None,
                &[("x-trigger-branch", branch)],
            )
            .await
        }
    };
    let r = with("feat/checkout", preview.clone()).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("No matching branch env"))
    );
    let r = app
        .post(
            &format!("/api/v1/projects/{project}/branches"),
            &token,
            json!({ "env": "preview", "branch": "feat/checkout" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let child = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["slug"], "preview-feat-checkout");
    let r = with("refs/heads/feat/checkout", preview.clone()).await;
    assert_eq!(
        (r.status, r.body["environmentId"].as_str()),
        (StatusCode::OK, Some(child.as_str()))
    );
    // The branch's key is the parent's.
    let r = app
        .request(
            Method::GET,
            &format!("/api/v1/projects/{project}/preview"),
            Some(&token),
            None,
            &[("x-trigger-branch", "feat/checkout")],
        )
        .await;
    assert_eq!(r.body["apiKey"], preview.as_str());

    // Development: no header or `default` is the root; a named branch pivots.
    let dev = app.env_key(&token, &project, "dev").await;
    let root = credential(&app, &dev).await.body["environmentId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        with("default", dev.clone()).await.body["environmentId"],
        root.as_str()
    );
    assert_eq!(
        with("my-feature", dev.clone()).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .post(
            &format!("/api/v1/projects/{project}/branches"),
            &token,
            json!({ "env": "dev", "branch": "my-feature" }),
        )
        .await;
    let dev_child = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        with("my-feature", dev.clone()).await.body["environmentId"],
        dev_child.as_str()
    );
    // Production ignores the header.
    let prod = app.env_key(&token, &project, "prod").await;
    assert_eq!(with("anything", prod).await.status, StatusCode::OK);
    // Rotating with a branch header is refused: branches use the parent's key.
    let r = app
        .request(
            Method::POST,
            &format!("/api/v1/projects/{project}/preview/regenerate-api-key"),
            Some(&token),
            None,
            &[("x-trigger-branch", "feat/checkout")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    app.cleanup().await;
}

async fn branches_are_listed_and_archived_as_the_cli_does(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (project, preview) = app.project_with_key("preview").await;
    let path = format!("/api/v1/projects/{project}/branches");
    let list = || {
        let (app, path, token) = (&app, &path, &token);
        async move {
            let r = app.get(path, token).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            r.body["branches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert!(list().await.is_empty());
    // The CLI's upsert: `development` and its git metadata.
    for (env, branch) in [
        ("preview", "feat/a"),
        ("preview", "feat/b"),
        ("development", "mine"),
    ] {
        let r = app
            .post(
                &path,
                &token,
                json!({ "env": env, "branch": branch, "git": { "commitSha": "abc" } }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{env} {branch}: {}", r.text);
    }
    assert_eq!(list().await, ["feat/a", "feat/b"], "preview branches only");
    let r = app.get(&path, &token).await;
    assert_eq!(r.body["branches"][0]["isPaused"], false);
    let archive = |body: Value| {
        let (app, project, token) = (&app, &project, &token);
        async move {
            app.post(
                &format!("/api/v1/projects/{project}/branches/archive"),
                token,
                body,
            )
            .await
        }
    };
    let r = archive(json!({ "branch": "refs/heads/feat/a" })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["branch"]["branchName"], "feat/a");
    assert_eq!(list().await, ["feat/b"]);
    // The archived branch's key no longer authenticates, at once.
    let r = app
        .request(
            Method::GET,
            "/api/v1/auth/credential",
            Some(&preview),
            None,
            &[("x-trigger-branch", "feat/a")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let r = archive(json!({ "branch": "feat/a" })).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("Branch not found"))
    );
    let r = archive(json!({ "env": "development", "branch": "mine" })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = archive(json!({ "env": "staging", "branch": "x" })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // Someone outside the organization sees no project.
    let (_, stranger) = app.user("stranger@example.com").await;
    assert_eq!(
        app.get(&path, &stranger).await.status,
        StatusCode::NOT_FOUND
    );
    app.cleanup().await;
}

async fn malformed_and_foreign_keys_are_refused(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    for bad in [
        "tr_dev_nonexistent",
        "pk_prod_0123456789abcdefghij",
        "tr_prod_sk_0123456789abcdefghijklmn",
        "garbage",
        "tr_pat_x",
    ] {
        let r = credential(&app, bad).await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("Invalid API key")),
            "{bad}"
        );
    }
    let r = app
        .request(Method::GET, "/api/v1/auth/credential", None, None, &[])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .request(
            Method::GET,
            "/api/v1/auth/credential",
            Some(&format!("{key}x")),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Keys work only as bearer tokens of the management routes' users: a key is not a PAT.
    assert_eq!(
        app.get("/api/v1/orgs", &key).await.status,
        StatusCode::UNAUTHORIZED
    );
    app.cleanup().await;
}

async fn a_deleted_project_refuses_its_keys(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (project, key) = app.project_with_key("prod").await;
    assert_eq!(credential(&app, &key).await.status, StatusCode::OK);
    let r = app
        .request(
            Method::DELETE,
            &format!("/api/v1/projects/{project}"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = credential(&app, &key).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Invalid API key"))
    );
    assert_eq!(
        app.get(&format!("/api/v1/projects/{project}/prod"), &token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    app.cleanup().await;
}

async fn cached_keys_survive_a_database_outage(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (project, k1) = app.project_with_key("prod").await;
    let (k2, _) = app.rotate(&token, &project, "prod").await;
    assert_eq!(credential(&app, &k1).await.status, StatusCode::OK);
    assert_eq!(credential(&app, &k2).await.status, StatusCode::OK);
    assert_eq!(
        credential(&app, "tr_prod_garbage000000000000000000")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    app.key_filter_settled().await;
    app.state.store.close().await;
    // Cached answers need no database: current key, grace key, and a known-unknown key.
    assert_eq!(credential(&app, &k2).await.status, StatusCode::OK);
    assert_eq!(credential(&app, &k1).await.status, StatusCode::OK);
    assert_eq!(
        credential(&app, "tr_prod_garbage000000000000000000")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // A key never issued needs no database either: the filter of live keys refuses it.
    assert_eq!(
        credential(&app, "tr_prod_neverseen00000000000000000")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // Anything that needs the database is a 503, never a 401.
    let r = app.get("/api/v1/orgs", "tr_pat_neverseenbefore").await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("Service unavailable"))
    );
    let r = app.get("/api/v1/orgs", "tr_pat_neverseenbefore").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    app.cleanup().await;
}

/// A key in the shape of a production key, never issued.
fn random_key(i: usize) -> String {
    format!("tr_prod_{i:024}")
}

async fn keys_never_issued_are_refused_without_the_database(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (project, k1) = app.project_with_key("prod").await;
    // Issued after the filter was loaded: the change reached it.
    let (k2, _) = app.rotate(&token, &project, "prod").await;
    let (_, other_project) = app.org_and_project(&token).await;
    let k3 = app.env_key(&token, &other_project, "staging").await;
    // The changes above reach the filter in the background; until they have, it refuses
    // nothing (every key is looked up).
    app.key_filter_settled().await;
    // The filter looks one refused key a second up in the database: spend this second's.
    assert_eq!(
        credential(&app, &random_key(0)).await.status,
        StatusCode::UNAUTHORIZED
    );
    app.state.store.close().await;
    for i in 1..=50 {
        let r = credential(&app, &random_key(i)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
        assert_eq!(r.body["error"], "Invalid API key");
    }
    // Live keys were never refused by it: they are looked up (here, in vain) as before.
    for key in [&k1, &k2, &k3] {
        assert_eq!(
            credential(&app, key).await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    app.cleanup().await;
}

on_both!(
    keys_never_issued_are_refused_without_the_database,
    rotation_keeps_the_old_key_working_until_the_grace_ends,
    the_grace_route_validates_and_is_admin_only,
    operators_see_grace_keys_and_their_use,
    repeated_rotations_each_keep_their_own_grace,
    concurrent_rotations_lose_no_key,
    branches_need_the_header_and_use_the_parent_key,
    branches_are_listed_and_archived_as_the_cli_does,
    malformed_and_foreign_keys_are_refused,
    a_deleted_project_refuses_its_keys,
    cached_keys_survive_a_database_outage
);
