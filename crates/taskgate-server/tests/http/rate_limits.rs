//! API rate limits: buckets chosen by credential, upstream's headers and 429, organization
//! overrides set by administrators.

use axum::http::{Method, StatusCode};
use chrono::Duration;
use serde_json::{json, Value};
use taskgate_config::RateLimits;
use taskgate_core::jwt;
use taskgate_core::ratelimit::{Interval, LimitConfig};
use taskgate_core::time::to_millis;

use crate::common::{t0, Backend, Response, TestApp};
use crate::on_both;

async fn credential(app: &TestApp, token: &str) -> Response {
    app.get("/api/v1/auth/credential", token).await
}

fn header(r: &Response, name: &str) -> i64 {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The defaults, with a JWT window of `jwt_tokens` a minute.
fn limits(jwt_tokens: u32) -> RateLimits {
    RateLimits {
        jwt: LimitConfig::FixedWindow {
            window: Interval::parse("1m").unwrap(),
            tokens: jwt_tokens,
        },
        ..RateLimits::default()
    }
}

/// A new organization of the administrator's, with a project: (organization id, prod key).
async fn org_with_key(app: &TestApp) -> (String, String) {
    let (org, _, key) = org_with_project(app).await;
    (org, key)
}

/// A new organization of the administrator's: (organization id, project ref, prod key).
async fn org_with_project(app: &TestApp) -> (String, String, String) {
    let token = app.admin_token.clone();
    let (slug, project) = app.org_and_project(&token).await;
    let key = app.env_key(&token, &project, "prod").await;
    let orgs = app.get("/admin/api/v1/orgs", &token).await;
    let org = orgs
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["slug"] == slug.as_str())
        .unwrap();
    (org["id"].as_str().unwrap().to_string(), project, key)
}

/// Gives organization `org` a bucket of `max` refilled by 1 a minute.
async fn org_limit(app: &TestApp, org: &str, max: u32) -> Response {
    let r = app
        .request(
            Method::PUT,
            &format!("/admin/api/v1/orgs/{org}/rate-limit"),
            Some(&app.admin_token),
            Some(
                json!({"type": "tokenBucket", "refillRate": 1, "interval": "1m", "maxTokens": max}),
            ),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r
}

async fn secret_keys_spend_their_organizations_bucket_then_get_upstreams_429(b: Backend) {
    let app = TestApp::new(b).await;
    let (org, key) = org_with_key(&app).await;
    org_limit(&app, &org, 3).await;
    for remaining in [2, 1, 0] {
        let r = credential(&app, &key).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(header(&r, "x-ratelimit-limit"), 3);
        assert_eq!(header(&r, "x-ratelimit-remaining"), remaining);
    }
    let r = credential(&app, &key).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.headers["content-type"], "application/problem+json",
        "{}",
        r.text
    );
    assert_eq!(header(&r, "x-ratelimit-remaining"), 0);
    // The bucket was first used at t0 and refills a minute later: the SDK waits until then.
    let reset = to_millis(t0() + Duration::minutes(1));
    assert_eq!(header(&r, "x-ratelimit-reset"), reset);
    assert_eq!(r.body["title"], "Rate Limit Exceeded");
    assert_eq!(r.body["status"], 429);
    assert_eq!(r.body["limit"], 3);
    assert_eq!(r.body["remaining"], -1);
    assert_eq!(r.body["reset"], reset);
    assert_eq!(r.body["secondsUntilReset"], 60);
    assert_eq!(
        r.body["error"],
        "Rate limit exceeded 0/3 requests remaining. Retry in 60 seconds."
    );
    assert!(
        r.text.starts_with("{\n  \"title\""),
        "pretty-printed as upstream"
    );
    app.clock.advance(Duration::minutes(1));
    let r = credential(&app, &key).await;
    assert_eq!(r.status, StatusCode::OK, "one token back after a minute");
    assert_eq!(header(&r, "x-ratelimit-remaining"), 0);
    app.cleanup().await;
}

async fn a_grace_key_and_its_successor_share_one_bucket(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (org, project, old) = org_with_project(&app).await;
    org_limit(&app, &org, 4).await;
    let (new, _) = app.rotate(&token, &project, "prod").await;
    for key in [&old, &new, &old, &new] {
        assert_eq!(credential(&app, key).await.status, StatusCode::OK);
    }
    assert_eq!(
        credential(&app, &old).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        credential(&app, &new).await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "rotating a key does not reset its environment's bucket"
    );
    app.cleanup().await;
}

async fn unknown_credentials_have_buckets_of_their_own(b: Backend) {
    let app = TestApp::with_config(b, |c| {
        c.rate_limits.limits = Some(RateLimits {
            default: LimitConfig::token_bucket(1, Interval::parse("1m").unwrap(), 50).unwrap(),
            ..RateLimits::default()
        });
    })
    .await;
    let (_, key) = app.project_with_key("prod").await;
    let garbage = "tr_prod_aaaaaaaaaaaaaaaaaaaaaaaa";
    for _ in 0..50 {
        let r = credential(&app, garbage).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(header(&r, "x-ratelimit-limit"), 50);
    }
    let r = credential(&app, garbage).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        credential(&app, "tr_prod_bbbbbbbbbbbbbbbbbbbbbbbb")
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "another unknown key has its own bucket"
    );
    assert_eq!(
        credential(&app, &key).await.status,
        StatusCode::OK,
        "a flood of bad keys does not spend a real key's bucket"
    );
    app.cleanup().await;
}

fn sign(key: &str, act: Option<&str>, nonce: u32, env_id: &str) -> String {
    let now = t0().timestamp();
    let mut claims = json!({"sub": env_id, "pub": true, "scopes": ["read:runs"],
        "iss": jwt::ISSUER, "aud": jwt::AUDIENCE, "iat": now, "exp": now + 3600, "nonce": nonce});
    if let Some(user) = act {
        claims["act"] = json!({ "sub": user });
    }
    let Value::Object(map) = claims else {
        unreachable!()
    };
    jwt::sign_hs256(&map, key.as_bytes())
}

async fn jwts_acting_for_one_user_share_a_window(b: Backend) {
    let app = TestApp::with_config(b, |c| c.rate_limits.limits = Some(limits(3))).await;
    let (_, key) = app.project_with_key("prod").await;
    let env = credential(&app, &key).await.body["environmentId"]
        .as_str()
        .unwrap()
        .to_string();
    // Three tokens for one user: one window of 3 between them, as an agent's turns.
    for n in 0..3 {
        let r = credential(&app, &sign(&key, Some("usr_1"), n, &env)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(header(&r, "x-ratelimit-limit"), 3);
    }
    let r = credential(&app, &sign(&key, Some("usr_1"), 9, &env)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        header(&r, "x-ratelimit-reset"),
        to_millis(t0() + Duration::minutes(1)),
        "the window ends on the minute"
    );
    let other_user = credential(&app, &sign(&key, Some("usr_2"), 0, &env)).await;
    assert_eq!(other_user.status, StatusCode::OK, "another user's window");
    // A token acting for no one has its own window.
    let anonymous = sign(&key, None, 0, &env);
    for _ in 0..3 {
        assert_eq!(credential(&app, &anonymous).await.status, StatusCode::OK);
    }
    assert_eq!(
        credential(&app, &anonymous).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        credential(&app, &sign(&key, None, 1, &env)).await.status,
        StatusCode::OK
    );
    app.clock.advance(Duration::minutes(1));
    assert_eq!(
        credential(&app, &anonymous).await.status,
        StatusCode::OK,
        "a new window"
    );
    app.cleanup().await;
}

async fn an_override_is_shown_replaced_cleared_and_audited(b: Backend) {
    let app = TestApp::new(b).await;
    let (org, key) = org_with_key(&app).await;
    let path = format!("/admin/api/v1/orgs/{org}/rate-limit");
    let r = app.get(&path, &app.admin_token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["source"], "default");
    assert_eq!(
        r.body["config"],
        json!({"type": "tokenBucket", "refillRate": 250, "interval": "10s", "maxTokens": 750})
    );
    assert_eq!(
        r.body["preview"],
        "sustains 25 requests per second, bursts to 750"
    );
    assert_eq!(
        header(&credential(&app, &key).await, "x-ratelimit-limit"),
        750
    );
    let r = app
        .request(
            Method::PUT,
            &path,
            Some(&app.admin_token),
            Some(
                json!({"type": "tokenBucket", "refillRate": 5, "interval": "1m", "maxTokens": 20}),
            ),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["source"], "organization");
    assert_eq!(
        r.body["preview"],
        "sustains 5 requests per minute, bursts to 20"
    );
    assert_eq!(
        header(&credential(&app, &key).await, "x-ratelimit-limit"),
        20,
        "in force on the next request"
    );
    let r = app
        .request(Method::DELETE, &path, Some(&app.admin_token), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["source"], "default");
    assert_eq!(
        header(&credential(&app, &key).await, "x-ratelimit-limit"),
        750
    );
    let audit = app
        .get(
            "/admin/api/v1/audit-events?action=organization.rate_limit_changed",
            &app.admin_token,
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text);
    let events = audit.body["data"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["organizationId"], org.as_str());
    assert_eq!(events[0]["detail"]["old"]["maxTokens"], 20);
    assert!(events[0]["detail"]["new"].is_null());
    assert!(events[1]["detail"]["old"].is_null());
    assert_eq!(events[1]["detail"]["new"]["refillRate"], 5);
    app.cleanup().await;
}

async fn an_invalid_override_is_refused_naming_its_field(b: Backend) {
    let app = TestApp::new(b).await;
    let (org, _key) = org_with_key(&app).await;
    let path = format!("/admin/api/v1/orgs/{org}/rate-limit");
    let cases = [
        (
            json!({"type": "fixedWindow", "refillRate": 5, "interval": "1m", "maxTokens": 5}),
            "type",
        ),
        (
            json!({"type": "tokenBucket", "refillRate": 0, "interval": "1m", "maxTokens": 5}),
            "refillRate",
        ),
        (
            json!({"type": "tokenBucket", "refillRate": 5, "interval": "500ms", "maxTokens": 5}),
            "interval",
        ),
        (
            json!({"type": "tokenBucket", "refillRate": 5, "interval": "2h", "maxTokens": 5}),
            "interval",
        ),
        (
            json!({"type": "tokenBucket", "refillRate": 5, "interval": "soon", "maxTokens": 5}),
            "interval",
        ),
        (
            json!({"type": "tokenBucket", "refillRate": 5, "interval": "1m", "maxTokens": 4}),
            "maxTokens",
        ),
    ];
    for (body, field) in cases {
        let r = app
            .request(Method::PUT, &path, Some(&app.admin_token), Some(body), &[])
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert_eq!(r.body["field"], field, "{}", r.text);
    }
    let r = app
        .request(
            Method::PUT,
            &path,
            Some(&app.admin_token),
            Some(
                json!({"type": "tokenBucket", "refillRate": -5, "interval": "1m", "maxTokens": 5}),
            ),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("refillRate"), "{}", r.text);
    let r = app
        .get(
            "/admin/api/v1/orgs/org_missing/rate-limit",
            &app.admin_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    app.cleanup().await;
}

async fn only_administrators_set_limits(b: Backend) {
    let app = TestApp::new(b).await;
    let (org, _key) = org_with_key(&app).await;
    let (_, pat) = app.user("member@example.com").await;
    let r = app
        .request(
            Method::PUT,
            &format!("/admin/api/v1/orgs/{org}/rate-limit"),
            Some(&pat),
            Some(json!({"type": "tokenBucket", "refillRate": 5, "interval": "1m", "maxTokens": 5})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    app.cleanup().await;
}

async fn exempt_routes_and_preflights_are_not_counted(b: Backend) {
    let app = TestApp::new(b).await;
    let (org, key) = org_with_key(&app).await;
    org_limit(&app, &org, 1).await;
    for _ in 0..3 {
        let r = app.whoami_env(&key).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(
            r.headers.get("x-ratelimit-limit").is_none(),
            "upstream exempts /api/v1/auth/jwt/claims"
        );
    }
    let r = app
        .request(
            Method::OPTIONS,
            "/api/v1/runs",
            None,
            None,
            &[
                ("origin", "https://example.com"),
                ("access-control-request-method", "GET"),
            ],
        )
        .await;
    assert!(r.status.is_success(), "{}", r.status);
    assert_eq!(credential(&app, &key).await.status, StatusCode::OK);
    app.cleanup().await;
}

async fn limits_can_be_turned_off(b: Backend) {
    let app = TestApp::with_config(b, |c| c.rate_limits.limits = None).await;
    let (_, key) = app.project_with_key("prod").await;
    let r = credential(&app, &key).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get("x-ratelimit-limit").is_none());
    let r = app
        .request(Method::GET, "/api/v1/runs", None, None, &[])
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a missing header is still refused"
    );
    app.cleanup().await;
}

async fn an_unreachable_redis_leaves_each_node_its_own_buckets(b: Backend) {
    // Nothing listens on port 1: every connection attempt fails at once.
    let app = TestApp::with_config(b, |c| {
        c.rate_limits.redis_url = Some("redis://127.0.0.1:1".into())
    })
    .await;
    let (org, key) = org_with_key(&app).await;
    org_limit(&app, &org, 2).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(credential(&app, &key).await.status);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ],
        "requests are answered, and limited, while Redis is down"
    );
    app.cleanup().await;
}

on_both!(
    an_unreachable_redis_leaves_each_node_its_own_buckets,
    secret_keys_spend_their_organizations_bucket_then_get_upstreams_429,
    a_grace_key_and_its_successor_share_one_bucket,
    unknown_credentials_have_buckets_of_their_own,
    jwts_acting_for_one_user_share_a_window,
    an_override_is_shown_replaced_cleared_and_audited,
    an_invalid_override_is_refused_naming_its_field,
    only_administrators_set_limits,
    exempt_routes_and_preflights_are_not_counted,
    limits_can_be_turned_off,
);
