//! Public access tokens: minting, validation across rotations, bad input.

use axum::http::{Method, StatusCode};
use base64::Engine;
use chrono::Duration;
use serde_json::{json, Map, Value};
use taskgate_core::jwt;

use crate::common::{t0, Backend, TestApp};
use crate::on_both;

async fn credential(app: &TestApp, token: &str) -> crate::common::Response {
    app.request(
        Method::GET,
        "/api/v1/auth/credential",
        Some(token),
        None,
        &[],
    )
    .await
}

fn sign(payload: Value, key: &str) -> String {
    let Value::Object(map) = payload else {
        panic!("payload must be an object")
    };
    jwt::sign_hs256(&map, key.as_bytes())
}

fn claims(sub: &str, exp_offset: i64) -> Value {
    let now = t0().timestamp();
    json!({ "sub": sub, "pub": true, "scopes": ["read:runs"], "iss": jwt::ISSUER, "aud": jwt::AUDIENCE, "iat": now, "exp": now + exp_offset })
}

fn payload_of(token: &str) -> Map<String, Value> {
    jwt::decode_unverified(token).unwrap().1
}

async fn env_id(app: &TestApp, key: &str) -> String {
    credential(app, key).await.body["environmentId"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn tokens_survive_a_rotation_until_the_grace_ends(b: Backend) {
    tokens_through_a_rotation(TestApp::new(b).await).await;
}

/// Without the rate limiter the route verifies (and caches) tokens itself: the same answers.
async fn tokens_survive_a_rotation_until_the_grace_ends_without_the_limiter(b: Backend) {
    let app = TestApp::with_config(b, |c| c.rate_limits.limits = None).await;
    assert!(app.state.limiter.is_none());
    tokens_through_a_rotation(app).await;
}

async fn tokens_through_a_rotation(app: TestApp) {
    let admin = app.admin_token.clone();
    let (project, k1) = app.project_with_key("prod").await;
    let env = env_id(&app, &k1).await;
    let t1 = sign(claims(&env, 3600), &k1);
    let expired = sign(claims(&env, -10), &k1);
    let r = credential(&app, &t1).await;
    assert_eq!(
        (r.status, r.body["credential"].as_str()),
        (StatusCode::OK, Some("publicJwt"))
    );

    let (k2, revoked) = app.rotate(&admin, &project, "prod").await;
    let r = credential(&app, &t1).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "a K1 token works inside the grace: {}",
        r.text
    );
    assert_eq!(r.body["graceKeyId"], revoked.as_str());
    let t2 = sign(claims(&env, 3600), &k2);
    assert_eq!(credential(&app, &t2).await.status, StatusCode::OK);
    let r = credential(&app, &expired).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("Public Access Token is invalid")
        )
    );
    let bogus = sign(claims(&env, 3600), "tr_prod_notthekey000000000000000");
    assert_eq!(
        credential(&app, &bogus).await.status,
        StatusCode::UNAUTHORIZED
    );

    let r = app
        .post(
            &format!("/admin/api/v1/revoked-api-keys/{revoked}"),
            &admin,
            json!({ "expiresAt": null }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = credential(&app, &t1).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("Public Access Token is invalid")
        )
    );
    assert_eq!(credential(&app, &t2).await.status, StatusCode::OK);
    app.cleanup().await;
}

async fn minted_tokens_are_signed_with_the_current_key(b: Backend) {
    let app = TestApp::new(b).await;
    let admin = app.admin_token.clone();
    let (project, k1) = app.project_with_key("prod").await;
    let env = env_id(&app, &k1).await;
    let (k2, _) = app.rotate(&admin, &project, "prod").await;
    // Minted with the old key inside its grace: signed with the new one.
    let r = app
        .post(
            "/api/v1/auth/jwt",
            &k1,
            json!({ "claims": { "scopes": ["read:runs"] } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let token = r.body["token"].as_str().unwrap();
    let now = t0().timestamp();
    let verified = jwt::verify_hs256(token, k2.as_bytes(), now).unwrap();
    assert!(jwt::verify_hs256(token, k1.as_bytes(), now).is_err());
    assert_eq!(verified["sub"], env.as_str());
    assert_eq!(verified["pub"], true);
    assert_eq!(verified["scopes"], json!(["read:runs"]));
    assert_eq!(verified["exp"].as_i64(), Some(now + 3600), "default 1 h");
    assert_eq!(
        token.split('.').next(),
        Some("eyJhbGciOiJIUzI1NiJ9"),
        "header is exactly {{\"alg\":\"HS256\"}}"
    );
    // No `claims` → no scopes claim; an absolute numeric expiry is taken as is.
    let r = app
        .post(
            "/api/v1/auth/jwt",
            &k2,
            json!({ "expirationTime": now + 60 }),
        )
        .await;
    let p = payload_of(r.body["token"].as_str().unwrap());
    assert!(p.get("scopes").is_none());
    assert_eq!(p["exp"].as_i64(), Some(now + 60));
    let r = app
        .post("/api/v1/auth/jwt", &k2, json!({ "expirationTime": "soon" }))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // The claims route tells the SDK what to self-sign.
    let r = app
        .request(
            Method::POST,
            "/api/v1/auth/jwt/claims",
            Some(&k1),
            None,
            &[],
        )
        .await;
    assert_eq!(r.body, json!({ "sub": env, "pub": true }));
    let r = app
        .request(
            Method::POST,
            "/api/v1/auth/jwt/claims",
            Some("tr_prod_unknown"),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Invalid or Missing API key"))
    );
    app.cleanup().await;
}

async fn public_tokens_route_checks_scopes_and_expiry(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let now = t0().timestamp();
    let r = app.post("/api/v1/auth/public-tokens", &key, json!({ "scopes": ["read:runs:run_1"], "oneTimeUse": true, "realtime": { "skipColumns": ["payload"] } })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let p = payload_of(r.body["token"].as_str().unwrap());
    assert_eq!(
        (p["otu"].clone(), p["exp"].as_i64()),
        (json!(true), Some(now + 15 * 60)),
        "default 15 minutes"
    );
    assert_eq!(p["realtime"], json!({ "skipColumns": ["payload"] }));
    let cases = [
        (
            json!({ "scopes": [] }),
            StatusCode::BAD_REQUEST,
            "Invalid request body",
        ),
        (
            json!({ "scopes": ["read:runs"], "expirationTime": "31d" }),
            StatusCode::BAD_REQUEST,
            "Expiration time cannot exceed 30 days",
        ),
        (
            json!({ "scopes": ["read:runs"], "expirationTime": "-5m" }),
            StatusCode::BAD_REQUEST,
            "Expiration time must be in the future",
        ),
        (
            json!({ "scopes": ["read:runs"], "expirationTime": "5m ago" }),
            StatusCode::BAD_REQUEST,
            "Expiration time must be in the future",
        ),
        (
            json!({ "scopes": ["read:runs"], "expirationTime": "whenever" }),
            StatusCode::BAD_REQUEST,
            "Invalid expiration time",
        ),
        (
            json!({ "scopes": ["read"] }),
            StatusCode::FORBIDDEN,
            "Requested scopes exceed the API key's access",
        ),
    ];
    for (body, status, error) in cases {
        let r = app
            .post("/api/v1/auth/public-tokens", &key, body.clone())
            .await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (status, Some(error)),
            "{body}"
        );
    }
    let r = app
        .post(
            "/api/v1/auth/public-tokens",
            &key,
            json!({ "scopes": ["read"] }),
        )
        .await;
    assert_eq!(r.body["deniedScopes"], json!(["read"]));
    assert_eq!(r.body["code"], "scopes_exceed_key_access");
    let r = app
        .post(
            "/api/v1/auth/public-tokens",
            &key,
            json!({ "scopes": ["read:runs"], "expirationTime": "10m" }),
        )
        .await;
    assert_eq!(
        payload_of(r.body["token"].as_str().unwrap())["exp"].as_i64(),
        Some(now + 600)
    );
    // A public JWT cannot mint more tokens here.
    let jwt = r.body["token"].as_str().unwrap().to_string();
    let r = app
        .post(
            "/api/v1/auth/public-tokens",
            &jwt,
            json!({ "scopes": ["read:runs"] }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Invalid API key"))
    );
    app.cleanup().await;
}

async fn branch_tokens_are_signed_with_the_parent_key(b: Backend) {
    let app = TestApp::new(b).await;
    let admin = app.admin_token.clone();
    let (project, parent_key) = app.project_with_key("preview").await;
    let r = app
        .post(
            &format!("/api/v1/projects/{project}/branches"),
            &admin,
            json!({ "env": "preview", "branch": "pr-7" }),
        )
        .await;
    let child = r.body["id"].as_str().unwrap().to_string();
    let r = app
        .request(
            Method::POST,
            "/api/v1/auth/jwt/claims",
            Some(&parent_key),
            None,
            &[("x-trigger-branch", "pr-7")],
        )
        .await;
    assert_eq!(r.body["sub"], child.as_str());
    let token = sign(claims(&child, 3600), &parent_key);
    let r = credential(&app, &token).await;
    assert_eq!(
        (r.status, r.body["environmentId"].as_str()),
        (StatusCode::OK, Some(child.as_str()))
    );
    // Rotating the parent keeps the branch token alive for the grace, and no longer.
    let (new_parent, revoked) = app.rotate(&admin, &project, "preview").await;
    assert_eq!(credential(&app, &token).await.status, StatusCode::OK);
    assert_eq!(
        credential(&app, &sign(claims(&child, 3600), &new_parent))
            .await
            .status,
        StatusCode::OK
    );
    app.post(
        &format!("/admin/api/v1/revoked-api-keys/{revoked}"),
        &admin,
        json!({ "expiresAt": null }),
    )
    .await;
    assert_eq!(
        credential(&app, &token).await.status,
        StatusCode::UNAUTHORIZED
    );
    // A token signed with the child's own (unused) key is not accepted.
    app.cleanup().await;
}

async fn malformed_tokens_are_401_never_500(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let env = env_id(&app, &key).await;
    let good = sign(claims(&env, 3600), &key);
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let parts: Vec<&str> = good.split('.').collect();
    let none = format!("{}.{}.", b64(&json!({ "alg": "none" })), parts[1]);
    let hs512 = {
        use hmac::{Hmac, Mac};
        let head = b64(&json!({ "alg": "HS512" }));
        let signing = format!("{head}.{}", parts[1]);
        let mut mac = Hmac::<sha2::Sha512>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(signing.as_bytes());
        format!(
            "{signing}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    };
    let now = t0().timestamp();
    let wrong_iss = sign(
        json!({ "sub": env, "pub": true, "iss": "https://evil", "aud": jwt::AUDIENCE, "exp": now + 60 }),
        &key,
    );
    let wrong_aud = sign(
        json!({ "sub": env, "pub": true, "iss": jwt::ISSUER, "aud": "x", "exp": now + 60 }),
        &key,
    );
    let no_sub = sign(
        json!({ "pub": true, "iss": jwt::ISSUER, "aud": jwt::AUDIENCE, "exp": now + 60 }),
        &key,
    );
    let other_env = sign(claims("cnotanenvironment000000000", 60), &key);
    let cases: Vec<(String, &str)> = vec![
        (
            good[..good.len() - 5].to_string(),
            "Public Access Token is invalid",
        ),
        (format!("{}.{}", parts[0], parts[1]), "Invalid API key"),
        (
            "eyJhbGciOiJIUzI1NiJ9.@@@notbase64@@@.signature".to_string(),
            "Invalid API key",
        ),
        (none, "Public Access Token is invalid"),
        (hs512, "Public Access Token is invalid"),
        (wrong_iss, "Public Access Token is invalid"),
        (wrong_aud, "Public Access Token is invalid"),
        (no_sub, "Invalid Public Access Token"),
        (other_env, "Invalid Public Access Token"),
        (
            sign(
                json!({ "sub": env, "pub": false, "iss": jwt::ISSUER, "aud": jwt::AUDIENCE }),
                &key,
            ),
            "Invalid API key",
        ),
    ];
    for (token, error) in cases {
        let r = credential(&app, &token).await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some(error)),
            "{token}"
        );
    }
    let huge = format!("{}.{}.{}", parts[0], "A".repeat(20_000), parts[2]);
    assert_eq!(
        credential(&app, &huge).await.status,
        StatusCode::UNAUTHORIZED
    );
    app.cleanup().await;
}

async fn an_expired_token_is_never_retried_with_old_keys(b: Backend) {
    let app = TestApp::new(b).await;
    let admin = app.admin_token.clone();
    let (project, k1) = app.project_with_key("prod").await;
    let env = env_id(&app, &k1).await;
    let t1 = sign(claims(&env, 600), &k1);
    app.rotate(&admin, &project, "prod").await;
    assert_eq!(credential(&app, &t1).await.status, StatusCode::OK);
    app.clock.advance(Duration::minutes(11));
    assert_eq!(
        credential(&app, &t1).await.status,
        StatusCode::UNAUTHORIZED,
        "expired even inside the grace"
    );
    app.cleanup().await;
}

async fn an_expired_token_says_it_expired(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let env = env_id(&app, &key).await;
    let token = sign(claims(&env, 60), &key);
    app.clock.advance(Duration::minutes(2));
    let r = credential(&app, &token).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "Public Access Token is invalid");
    assert_eq!(r.body["detail"], "The token has expired");
    // A forged token is not told whether it would have expired.
    let forged = sign(claims(&env, -60), "not-the-key");
    let r = credential(&app, &forged).await;
    assert_eq!(
        r.body["detail"],
        "The signature does not match the environment's keys"
    );
    app.cleanup().await;
}

async fn minted_lifetimes_are_bounded_by_the_ceiling(b: Backend) {
    let app = TestApp::with_config(b, |c| c.tokens.max_jwt_ttl_seconds = 86_400).await;
    let (_, key) = app.project_with_key("prod").await;
    let now = t0().timestamp();
    for (route, body) in [
        ("/api/v1/auth/jwt", json!({ "expirationTime": i64::MAX })),
        ("/api/v1/auth/jwt", json!({ "expirationTime": "2d" })),
        (
            "/api/v1/auth/jwt",
            json!({ "expirationTime": now + 86_401 }),
        ),
    ] {
        let r = app.post(route, &key, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{route} {body}");
        assert_eq!(
            r.body["error"],
            "Expiration time must be at most 86400 seconds from now"
        );
    }
    let r = app
        .post("/api/v1/auth/jwt", &key, json!({ "expirationTime": "1d" }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .post(
            "/api/v1/auth/public-tokens",
            &key,
            json!({ "scopes": ["read:runs"], "expirationTime": "2d" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    app.cleanup().await;
}

async fn a_token_without_exp_lives_until_iat_plus_the_ceiling(b: Backend) {
    let app = TestApp::with_config(b, |c| c.tokens.max_jwt_ttl_seconds = 3600).await;
    let (_, key) = app.project_with_key("prod").await;
    let env = env_id(&app, &key).await;
    let now = t0().timestamp();
    let no_exp = sign(
        json!({ "sub": env, "pub": true, "scopes": ["read:runs"], "iss": jwt::ISSUER, "aud": jwt::AUDIENCE, "iat": now }),
        &key,
    );
    let far_exp = sign(claims(&env, 100 * 365 * 86_400), &key);
    let neither = sign(
        json!({ "sub": env, "pub": true, "iss": jwt::ISSUER, "aud": jwt::AUDIENCE }),
        &key,
    );
    assert_eq!(credential(&app, &no_exp).await.status, StatusCode::OK);
    assert_eq!(credential(&app, &far_exp).await.status, StatusCode::OK);
    let r = credential(&app, &neither).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .starts_with("The token's lifetime is not bounded"));
    app.clock.advance(Duration::hours(1));
    for t in [&no_exp, &far_exp] {
        let r = credential(&app, t).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.body["detail"], "The token has expired");
    }
    app.cleanup().await;
}

on_both!(
    an_expired_token_says_it_expired,
    minted_lifetimes_are_bounded_by_the_ceiling,
    a_token_without_exp_lives_until_iat_plus_the_ceiling,
    tokens_survive_a_rotation_until_the_grace_ends,
    tokens_survive_a_rotation_until_the_grace_ends_without_the_limiter,
    minted_tokens_are_signed_with_the_current_key,
    public_tokens_route_checks_scopes_and_expiry,
    branch_tokens_are_signed_with_the_parent_key,
    malformed_tokens_are_401_never_500,
    an_expired_token_is_never_retried_with_old_keys
);
