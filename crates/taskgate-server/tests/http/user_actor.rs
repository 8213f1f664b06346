//! Roles, user-actor tokens and the exchange for environment JWTs.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use taskgate_core::jwt;

use crate::common::{t0, Backend, TestApp};
use crate::on_both;

async fn mint(app: &TestApp, pat: &str, body: Value) -> crate::common::Response {
    app.post("/api/v1/auth/user-actor-token", pat, body).await
}

async fn exchange(
    app: &TestApp,
    token: &str,
    project: &str,
    env: &str,
    body: Value,
) -> crate::common::Response {
    app.post(
        &format!("/api/v1/projects/{project}/{env}/jwt"),
        token,
        body,
    )
    .await
}

fn payload(token: &str) -> serde_json::Map<String, Value> {
    jwt::decode_unverified(token).unwrap().1
}

/// An org owned by a new owner with a project, and a member with `role`.
async fn team(app: &TestApp, role: &str) -> (String, String, String, String) {
    let (_, owner) = app.user("owner@example.com").await;
    let (member_id, member) = app.user(&format!("{role}@example.com")).await;
    let (org, project) = app.org_and_project(&owner).await;
    let r = app
        .post(
            &format!("/api/v1/orgs/{org}/members"),
            &owner,
            json!({ "email": format!("{role}@example.com"), "role": role }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    (owner, member, member_id, project)
}

async fn user_actor_tokens_are_minted_from_pats_only(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, pat) = app.user("uat@example.com").await;
    let r = mint(
        &app,
        &pat,
        json!({ "cap": ["read:runs"], "client": "cli", "ttlSeconds": 3600 }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["expiresInSeconds"], 3600);
    let uat = r.body["token"].as_str().unwrap().to_string();
    assert!(uat.starts_with("tr_uat_"));
    let p = payload(&uat["tr_uat_".len()..]);
    assert_eq!(p["kind"], "user_actor");
    assert_eq!(p["cap"], json!(["read:runs"]));
    assert_eq!(p["act"]["client"], "cli");
    assert!(p["act"]["pat"].is_string());
    assert_eq!(p["exp"].as_i64(), Some(t0().timestamp() + 3600));
    // Defaults: an empty or unparseable body is `{}`.
    let r = app
        .request(
            Method::POST,
            "/api/v1/auth/user-actor-token",
            Some(&pat),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.body["expiresInSeconds"].as_i64()),
        (StatusCode::OK, Some(3600))
    );
    assert_eq!(
        payload(&r.body["token"].as_str().unwrap()[7..])["act"]["client"],
        "personal-access-token"
    );
    for ttl in [
        json!(0),
        json!(-1),
        json!(1.5),
        json!("60"),
        json!(31_536_001),
    ] {
        let r = mint(&app, &pat, json!({ "ttlSeconds": ttl })).await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("Invalid request body")),
            "{ttl}"
        );
    }
    assert_eq!(
        mint(&app, &pat, json!({ "ttlSeconds": 31_536_000 }))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        mint(&app, &pat, json!({ "client": "" })).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        mint(&app, &pat, json!({ "cap": "read:runs" })).await.status,
        StatusCode::BAD_REQUEST
    );
    // A UAT cannot mint a UAT, nor can an environment key.
    let r = mint(&app, &uat, json!({})).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Invalid or Missing PAT"))
    );
    let r = mint(&app, "tr_pat_doesnotexist", json!({})).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Invalid PAT"))
    );
    app.cleanup().await;
}

async fn the_uat_ceiling_is_configurable(b: Backend) {
    let app = TestApp::with_config(b, |c| c.tokens.max_uat_ttl_seconds = 600).await;
    let (_, pat) = app.user("ceiling@example.com").await;
    assert_eq!(
        mint(&app, &pat, json!({ "ttlSeconds": 600 })).await.status,
        StatusCode::OK
    );
    assert_eq!(
        mint(&app, &pat, json!({ "ttlSeconds": 601 })).await.status,
        StatusCode::BAD_REQUEST
    );
    app.cleanup().await;
}

async fn the_exchange_clamps_to_role_and_cap(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, dev_pat, dev_id, project) = team(&app, "developer").await;
    let uat = mint(
        &app,
        &dev_pat,
        json!({ "cap": ["read:runs", "read:apiKeys"] }),
    )
    .await
    .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    // Staging keys are readable by a developer: exchange works, scopes clamp to the cap.
    let r = exchange(
        &app,
        &uat,
        &project,
        "staging",
        json!({ "claims": { "scopes": ["read:runs", "write:runs"] } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let p = payload(r.body["token"].as_str().unwrap());
    assert_eq!(p["scopes"], json!(["read:runs"]));
    assert_eq!(p["act"]["sub"], dev_id.as_str());
    assert_eq!(p["act"]["client"], "personal-access-token");
    // The JWT verifies with the environment's key, and the acting user is visible.
    let r = app
        .request(
            Method::GET,
            "/api/v1/auth/credential",
            Some(r.body["token"].as_str().unwrap()),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.body["actingUserId"].as_str()),
        (StatusCode::OK, Some(dev_id.as_str()))
    );
    // Production keys are not readable by a developer, whatever the cap says.
    let admin_cap = mint(&app, &dev_pat, json!({ "cap": ["admin"] })).await.body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = exchange(&app, &admin_cap, &project, "prod", json!({})).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (
            StatusCode::FORBIDDEN,
            Some("You don't have permission to access this environment's API keys.")
        )
    );
    // Without read:apiKeys in the cap the exchange is refused, as upstream.
    let runs_only = mint(&app, &dev_pat, json!({ "cap": ["read:runs"] }))
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        exchange(&app, &runs_only, &project, "staging", json!({}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // No scopes requested: the cap itself (narrowed by the role).
    let r = exchange(&app, &admin_cap, &project, "staging", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        payload(r.body["token"].as_str().unwrap())["scopes"],
        json!([]),
        "`admin` is beyond a developer's role"
    );
    // The expiry never outlives the UAT.
    let short = mint(
        &app,
        &dev_pat,
        json!({ "cap": ["read:apiKeys", "read:runs"], "ttlSeconds": 600 }),
    )
    .await
    .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = exchange(
        &app,
        &short,
        &project,
        "staging",
        json!({ "expirationTime": "365d" }),
    )
    .await;
    let exp = payload(r.body["token"].as_str().unwrap())["exp"]
        .as_i64()
        .unwrap();
    assert!(exp <= t0().timestamp() + 600 && exp > t0().timestamp() + 500);
    // Bad params and credentials.
    assert_eq!(
        exchange(&app, &uat, &project, "stg", json!({}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let r = exchange(&app, "tr_uat_garbage", &project, "staging", json!({})).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("Invalid or Missing Access Token")
        )
    );
    let key = app.env_key(&dev_pat, &project, "staging").await;
    assert_eq!(
        exchange(&app, &key, &project, "staging", json!({}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    app.cleanup().await;
}

async fn a_pat_exchange_names_the_user(b: Backend) {
    let app = TestApp::new(b).await;
    let (owner, _, _, project) = team(&app, "viewer").await;
    let r = exchange(
        &app,
        &owner,
        &project,
        "prod",
        json!({ "claims": { "scopes": ["read:runs", "write:runs", "admin"] } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let p = payload(r.body["token"].as_str().unwrap());
    assert_eq!(
        p["scopes"],
        json!(["read:runs", "write:runs", "admin"]),
        "an owner may grant anything"
    );
    assert_eq!(p["act"]["client"], "personal-access-token");
    let r = exchange(&app, &owner, &project, "prod", json!({})).await;
    assert!(
        payload(r.body["token"].as_str().unwrap())
            .get("scopes")
            .is_none(),
        "no claims, no scopes (deny-all)"
    );
    app.cleanup().await;
}

async fn viewers_never_see_keys(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, viewer, _, project) = team(&app, "viewer").await;
    for env in ["dev", "staging", "prod", "preview"] {
        let r = app
            .get(&format!("/api/v1/projects/{project}/{env}"), &viewer)
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{env}");
        let r = app
            .post(
                &format!("/api/v1/projects/{project}/{env}/regenerate-api-key"),
                &viewer,
                json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{env}");
    }
    let uat = mint(&app, &viewer, json!({ "cap": ["admin"] })).await.body["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        exchange(&app, &uat, &project, "prod", json!({}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    app.cleanup().await;
}

async fn developers_rotate_dev_keys_only(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, dev, _, project) = team(&app, "developer").await;
    let expect = [
        ("dev", StatusCode::OK, StatusCode::OK),
        ("staging", StatusCode::OK, StatusCode::FORBIDDEN),
        ("preview", StatusCode::OK, StatusCode::FORBIDDEN),
        ("prod", StatusCode::FORBIDDEN, StatusCode::FORBIDDEN),
    ];
    for (env, read, rotate) in expect {
        assert_eq!(
            app.get(&format!("/api/v1/projects/{project}/{env}"), &dev)
                .await
                .status,
            read,
            "read {env}"
        );
        let r = app
            .post(
                &format!("/api/v1/projects/{project}/{env}/regenerate-api-key"),
                &dev,
                json!({}),
            )
            .await;
        assert_eq!(r.status, rotate, "rotate {env}: {}", r.text);
    }
    app.cleanup().await;
}

async fn revoking_a_pat_kills_its_uats_and_exchanged_jwts(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, owner, _, project) = team(&app, "admin").await;
    let r = app
        .post(
            "/api/v1/personal-access-tokens",
            &owner,
            json!({ "name": "agent" }),
        )
        .await;
    let (pat_id, pat) = (
        r.body["id"].as_str().unwrap().to_string(),
        r.body["token"].as_str().unwrap().to_string(),
    );
    let uat = mint(&app, &pat, json!({ "cap": ["read:apiKeys", "read:runs"] }))
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let jwt = exchange(&app, &uat, &project, "prod", json!({})).await.body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let from_pat = exchange(
        &app,
        &pat,
        &project,
        "prod",
        json!({ "claims": { "scopes": ["read:runs"] } }),
    )
    .await
    .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    for t in [&jwt, &from_pat] {
        assert_eq!(
            app.request(Method::GET, "/api/v1/auth/credential", Some(t), None, &[])
                .await
                .status,
            StatusCode::OK
        );
    }
    assert_eq!(app.get("/api/v1/orgs", &uat).await.status, StatusCode::OK);
    let r = app
        .request(
            Method::DELETE,
            &format!("/api/v1/personal-access-tokens/{pat_id}"),
            Some(&owner),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        exchange(&app, &uat, &project, "prod", json!({}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/v1/orgs", &uat).await.status,
        StatusCode::UNAUTHORIZED
    );
    for t in [&jwt, &from_pat] {
        assert_eq!(
            app.request(Method::GET, "/api/v1/auth/credential", Some(t), None, &[])
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    app.cleanup().await;
}

async fn uats_cannot_manage_tokens_or_admin(b: Backend) {
    let app = TestApp::new(b).await;
    let admin = app.admin_token.clone();
    let uat = mint(&app, &admin, json!({ "cap": ["admin"] })).await.body["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.post(
            "/api/v1/personal-access-tokens",
            &uat,
            json!({ "name": "x" })
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.post(
            "/admin/api/v1/users",
            &uat,
            json!({ "email": "u@example.com" })
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    // A UAT capped read:all may list orgs but not create one.
    let ro = mint(&app, &admin, json!({ "cap": ["read:all"] }))
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.get("/api/v1/orgs", &ro).await.status, StatusCode::OK);
    let r = app
        .post("/api/v1/orgs", &ro, json!({ "title": "Nope" }))
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("unauthorized"))
    );
    assert_eq!(
        app.post("/api/v1/orgs", &uat, json!({ "title": "Yes" }))
            .await
            .status,
        StatusCode::CREATED
    );
    app.cleanup().await;
}

/// A policy an operator might plug in: members may look, never change.
struct LookOnly;

impl taskgate_auth::policy::AccessPolicy for LookOnly {
    fn role_ability(&self, _role: taskgate_core::role::Role) -> taskgate_core::scope::Ability {
        taskgate_core::scope::Ability::from_scopes(&[
            "read:project".to_string(),
            "read:members".to_string(),
        ])
    }
}

async fn operators_can_plug_in_their_own_policy(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (org, project) = app.org_and_project(&token).await;
    let state = app.state.with_policy(std::sync::Arc::new(LookOnly));
    let router = taskgate_server::router::router(state);
    let req = |method: Method, path: String, body: Option<Value>| {
        axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            ))
            .unwrap()
    };
    let r = TestApp::send_via(
        &router,
        req(Method::GET, format!("/api/v1/orgs/{org}/projects"), None),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = TestApp::send_via(
        &router,
        req(
            Method::POST,
            format!("/api/v1/orgs/{org}/projects"),
            Some(json!({ "name": "No" })),
        ),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "the owner's role no longer writes under this policy"
    );
    let r = TestApp::send_via(
        &router,
        req(
            Method::GET,
            format!("/api/v1/projects/{project}/prod"),
            None,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The default policy still lets the owner in.
    assert_eq!(
        app.get(&format!("/api/v1/projects/{project}/prod"), &token)
            .await
            .status,
        StatusCode::OK
    );
    app.cleanup().await;
}

async fn a_cap_that_cannot_grant_is_refused(b: Backend) {
    let app = TestApp::new(b).await;
    let admin = app.admin_token.clone();
    let r = mint(&app, &admin, json!({ "cap": ["read:runs", "bogus"] })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.body["issues"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("cap: \"bogus\" is not a scope"),
        "{}",
        r.text
    );
    let r = mint(&app, &admin, json!({ "cap": ["read:runs"] })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.cleanup().await;
}

on_both!(
    a_cap_that_cannot_grant_is_refused,
    operators_can_plug_in_their_own_policy,
    user_actor_tokens_are_minted_from_pats_only,
    the_uat_ceiling_is_configurable,
    the_exchange_clamps_to_role_and_cap,
    a_pat_exchange_names_the_user,
    viewers_never_see_keys,
    developers_rotate_dev_keys_only,
    revoking_a_pat_kills_its_uats_and_exchanged_jwts,
    uats_cannot_manage_tokens_or_admin
);
