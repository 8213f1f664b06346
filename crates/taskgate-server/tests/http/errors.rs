//! The errors API over HTTP: groups made by failing runs, listing, triage with attribution
//! through keys and exchanged JWTs, the history, and what bad input gets.

use axum::http::StatusCode;
use chrono::Duration;
use serde_json::{json, Value};
use taskgate_store::ErrorOccurrence;

use crate::common::{Backend, TestApp};
use crate::engine::{complete, dequeue, start, trigger, with_worker};
use crate::on_both;

const TYPE_ERROR: &str = "error_131c37334a407e47";

/// Records a failure of `task` with `raw` in `env` now, as run completion does.
async fn seed(app: &TestApp, env: &str, task: &str, raw: &str, times: usize) -> String {
    let error = json!({ "type": "STRING_ERROR", "raw": raw });
    let mut fp = String::new();
    for _ in 0..times {
        fp = app
            .state
            .store
            .record_error_occurrences(
                &[ErrorOccurrence {
                    environment_id: env,
                    task_identifier: task,
                    task_version: Some("20260301.1"),
                    error: &error,
                    run_created_at: app.state.now(),
                }],
                app.state.now(),
            )
            .await
            .unwrap()
            .remove(0)
            .unwrap();
    }
    format!("error_{fp}")
}

/// A production key and its environment id.
async fn prod(app: &TestApp) -> (String, String, String) {
    let (project, key) = app.project_with_key("prod").await;
    let env = app.whoami_env(&key).await.body["sub"]
        .as_str()
        .unwrap()
        .to_string();
    (project, key, env)
}

async fn a_failed_run_becomes_a_group_that_lists_its_runs(b: Backend) {
    let (app, _, key, worker) = with_worker(b, &["t"]).await;
    let run = trigger(&app, &key, "t", json!({ "options": { "maxAttempts": 1 } })).await;
    let m = dequeue(&app, &key, &worker).await.remove(0);
    let started = start(&app, &key, &m).await;
    let error = json!({ "type": "BUILT_IN_ERROR", "name": "TypeError",
        "message": "Cannot read properties of undefined (reading 'x')", "stackTrace": "TypeError: x\n    at run (x.ts:1:1)" });
    let r = complete(
        &app,
        &key,
        &started,
        json!({ "ok": false, "id": run, "error": error }),
    )
    .await;
    assert_eq!(
        r.body["result"]["attemptStatus"], "RUN_FINISHED",
        "{}",
        r.text
    );

    let list = app.get("/api/v1/errors", &key).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let item = &list.body["data"][0];
    assert_eq!(item["id"], TYPE_ERROR, "upstream's fingerprint");
    assert_eq!(
        (
            item["taskIdentifier"].as_str(),
            item["errorType"].as_str(),
            item["count"].as_i64()
        ),
        (Some("t"), Some("TypeError"), Some(1))
    );
    assert_eq!(item["status"], "unresolved");
    assert_eq!(item["resolvedAt"], Value::Null);
    assert_eq!(list.body["pagination"], json!({}));

    let detail = app.get(&format!("/api/v1/errors/{TYPE_ERROR}"), &key).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text);
    assert_eq!(detail.body["count"], 1);
    assert!(detail.body["affectedVersions"][0].as_str().is_some());
    // The bare fingerprint names it too.
    let bare = app.get("/api/v1/errors/131c37334a407e47", &key).await;
    assert_eq!(bare.body["id"], TYPE_ERROR);

    let runs = app
        .get(&format!("/api/v1/runs?filter[error]={TYPE_ERROR}"), &key)
        .await;
    assert_eq!(runs.status, StatusCode::OK, "{}", runs.text);
    let ids: Vec<&str> = runs.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, vec![run.as_str()]);
    let none = app
        .get("/api/v1/runs?filter[error]=error_0000000000000000", &key)
        .await;
    assert_eq!(none.body["data"], json!([]));
    let bad = app.get("/api/v1/runs?filter[error]=nope", &key).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "not upstream's 500");
    app.cleanup().await;
}

async fn unknown_and_malformed_ids(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key, _) = prod(&app).await;
    let r = app.get("/api/v1/errors/error_0000000000000000", &key).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"], "Not found");
    assert_eq!(r.headers["x-should-retry"], "false");
    for bad in ["error_x_y", "error_", "ERROR_131C37334A407E47", "run_abc"] {
        let r = app.get(&format!("/api/v1/errors/{bad}"), &key).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let r = app
        .post(
            "/api/v1/errors/error_0000000000000000/resolve",
            &key,
            json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("Resource not found"))
    );
    app.cleanup().await;
}

async fn triage_is_attributed_to_the_user_a_jwt_acts_for(b: Backend) {
    let app = TestApp::new(b).await;
    let (project, key, env) = prod(&app).await;
    let id = seed(&app, &env, "t", "boom", 1).await;
    let admin = app.admin_token.clone();
    let me = app.get("/api/v2/whoami", &admin).await.body["userId"]
        .as_str()
        .unwrap()
        .to_string();
    let scopes = json!({ "claims": { "scopes": ["read:errors", "write:errors"] } });
    // A JWT exchanged from the personal access token.
    let jwt = app
        .post(
            &format!("/api/v1/projects/{project}/prod/jwt"),
            &admin,
            scopes.clone(),
        )
        .await;
    assert_eq!(jwt.status, StatusCode::OK, "{}", jwt.text);
    let jwt = jwt.body["token"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/api/v1/errors/{id}/resolve"),
            &jwt,
            json!({ "resolvedInVersion": "20260301.2" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (
            r.body["status"].as_str(),
            r.body["resolvedBy"].as_str(),
            r.body["resolvedInVersion"].as_str()
        ),
        (Some("resolved"), Some(me.as_str()), Some("20260301.2"))
    );
    // One exchanged from a user-actor token.
    let uat = app
        .post(
            "/api/v1/auth/user-actor-token",
            &admin,
            json!({ "cap": ["read:apiKeys", "read:errors", "write:errors"] }),
        )
        .await;
    let uat = uat.body["token"].as_str().unwrap().to_string();
    let jwt2 = app
        .post(
            &format!("/api/v1/projects/{project}/prod/jwt"),
            &uat,
            json!({}),
        )
        .await;
    assert_eq!(jwt2.status, StatusCode::OK, "{}", jwt2.text);
    let jwt2 = jwt2.body["token"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/api/v1/errors/{id}/ignore"),
            &jwt2,
            json!({ "duration": 3_600_000, "reason": "flaky upstream" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["ignoredByUserId"], me.as_str());
    assert_eq!(
        r.body["resolvedBy"],
        Value::Null,
        "an ignore clears the resolve"
    );
    assert_eq!(r.body["ignoredUntil"], "2026-03-01T13:00:00Z");
    // The environment key acts for nobody.
    let r = app
        .post(&format!("/api/v1/errors/{id}/unresolve"), &key, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "unresolved");
    assert_eq!(r.body["ignoredByUserId"], Value::Null);

    let history = app
        .get(&format!("/api/v1/errors/{id}/activity"), &key)
        .await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.text);
    let entries: Vec<(&str, Option<&str>, &str)> = history.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actorUserId"].as_str(),
                e["credentialKind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![
            ("unresolved", None, "secret_key"),
            ("ignored", Some(me.as_str()), "public_jwt"),
            ("resolved", Some(me.as_str()), "public_jwt"),
        ]
    );
    assert_eq!(history.body["data"][1]["reason"], "flaky upstream");
    // Paged: one at a time.
    let first = app
        .get(&format!("/api/v1/errors/{id}/activity?page[size]=1"), &key)
        .await;
    let next = first.body["pagination"]["next"]
        .as_str()
        .unwrap()
        .to_string();
    let second = app
        .get(
            &format!("/api/v1/errors/{id}/activity?page[size]=1&page[after]={next}"),
            &key,
        )
        .await;
    assert_eq!(second.body["data"][0]["action"], "ignored");
    app.cleanup().await;
}

async fn read_only_tokens_cannot_triage(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key, env) = prod(&app).await;
    let id = seed(&app, &env, "t", "boom", 1).await;
    let token = app
        .post(
            "/api/v1/auth/public-tokens",
            &key,
            json!({ "scopes": ["read:errors"] }),
        )
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.get("/api/v1/errors", &token).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/api/v1/errors/{id}"), &token)
            .await
            .status,
        StatusCode::OK
    );
    for action in ["resolve", "ignore", "unresolve"] {
        let r = app
            .post(&format!("/api/v1/errors/{id}/{action}"), &token, json!({}))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{action}");
    }
    // 403 before 404 on writes, as upstream.
    let r = app
        .post(
            "/api/v1/errors/error_0000000000000000/resolve",
            &token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Scoped to one error: that one only.
    let one = app
        .post(
            "/api/v1/auth/public-tokens",
            &key,
            json!({ "scopes": [format!("read:errors:{id}")] }),
        )
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.get(&format!("/api/v1/errors/{id}"), &one).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/errors", &one).await.status,
        StatusCode::FORBIDDEN
    );
    app.cleanup().await;
}

async fn bad_input_is_a_400_that_says_why(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key, env) = prod(&app).await;
    let id = seed(&app, &env, "t", "boom", 1).await;
    let r = app
        .get("/api/v1/errors?filter[status]=open,resolved,closed", &key)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "Query Error");
    assert_eq!(
        r.body["details"][0]["message"],
        "Invalid status values: open, closed. Allowed: unresolved, resolved, ignored."
    );
    for q in ["page[size]=0", "page[size]=101", "filter[from]=yesterday"] {
        let r = app.get(&format!("/api/v1/errors?{q}"), &key).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
    }
    let long = "x".repeat(1001);
    let r = app
        .get(&format!("/api/v1/errors?filter[search]={long}"), &key)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // An undecodable cursor is no cursor (upstream).
    let r = app.get("/api/v1/errors?page[after]=garbage", &key).await;
    assert_eq!(r.status, StatusCode::OK);
    let empty = app
        .request(
            axum::http::Method::POST,
            &format!("/api/v1/errors/{id}/resolve"),
            Some(&key),
            None,
            &[],
        )
        .await;
    assert_eq!(empty.body["error"], "Request body is empty");
    for body in [
        json!({ "duration": -1 }),
        json!({ "duration": 1.5 }),
        json!({ "occurrenceRate": 0 }),
        json!({ "totalOccurrences": "ten" }),
        json!({ "reason": "x".repeat(1001) }),
        json!({ "duration": 1e300 }),
    ] {
        let r = app
            .post(&format!("/api/v1/errors/{id}/ignore"), &key, body.clone())
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert!(
            r.body["error"]
                .as_str()
                .unwrap()
                .starts_with("Validation error"),
            "{}",
            r.text
        );
    }
    app.cleanup().await;
}

async fn lists_page_both_ways_and_filter(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key, env) = prod(&app).await;
    let a = seed(&app, &env, "t1", "alpha", 3).await;
    let b2 = seed(&app, &env, "t1", "beta", 2).await;
    let c = seed(&app, &env, "t2", "gamma", 1).await;
    let ids = |r: &crate::common::Response| -> Vec<String> {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    let first = app.get("/api/v1/errors?page[size]=2", &key).await;
    assert_eq!(ids(&first), vec![a.clone(), b2.clone()]);
    assert!(first.body["pagination"].get("previous").is_none());
    let next = first.body["pagination"]["next"]
        .as_str()
        .unwrap()
        .to_string();
    let second = app
        .get(
            &format!("/api/v1/errors?page[size]=2&page[after]={next}"),
            &key,
        )
        .await;
    assert_eq!(ids(&second), vec![c.clone()]);
    assert!(second.body["pagination"].get("next").is_none());
    let previous = second.body["pagination"]["previous"]
        .as_str()
        .unwrap()
        .to_string();
    let back = app
        .get(
            &format!("/api/v1/errors?page[size]=2&page[before]={previous}"),
            &key,
        )
        .await;
    assert_eq!(ids(&back), vec![a.clone(), b2.clone()]);
    let t2 = app
        .get("/api/v1/errors?filter[taskIdentifier]=t2", &key)
        .await;
    assert_eq!(ids(&t2), vec![c.clone()]);
    let search = app
        .get("/api/v1/errors?filter[search]=%20BETA%20", &key)
        .await;
    assert_eq!(ids(&search), vec![b2.clone()]);
    app.post(&format!("/api/v1/errors/{a}/resolve"), &key, json!({}))
        .await;
    let resolved = app
        .get("/api/v1/errors?filter[status]=resolved", &key)
        .await;
    assert_eq!(ids(&resolved), vec![a.clone()]);
    let open = app
        .get("/api/v1/errors?filter[status]=unresolved,ignored", &key)
        .await;
    assert_eq!(ids(&open), vec![b2.clone(), c.clone()]);
    // Outside the default day, nothing is counted.
    app.clock.advance(Duration::days(2));
    assert_eq!(
        ids(&app.get("/api/v1/errors", &key).await),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&app.get("/api/v1/errors?filter[period]=7d", &key).await).len(),
        3
    );
    app.cleanup().await;
}

async fn an_ignore_past_its_time_reads_unresolved(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key, env) = prod(&app).await;
    let id = seed(&app, &env, "t", "boom", 1).await;
    let r = app
        .post(
            &format!("/api/v1/errors/{id}/ignore"),
            &key,
            json!({ "duration": 60_000 }),
        )
        .await;
    assert_eq!(r.body["status"], "ignored");
    app.clock.advance(Duration::seconds(61));
    let r = app.get(&format!("/api/v1/errors/{id}"), &key).await;
    assert_eq!(
        r.body["status"], "unresolved",
        "no read reports ignored past ignoredUntil"
    );
    assert_eq!(r.body["ignoredUntil"], Value::Null);
    let r = app.get("/api/v1/errors?filter[status]=ignored", &key).await;
    assert_eq!(r.body["data"], json!([]));
    // A resolved group that fails again is reopened by the failure itself.
    app.post(&format!("/api/v1/errors/{id}/resolve"), &key, json!({}))
        .await;
    seed(&app, &env, "t", "boom", 1).await;
    let r = app.get(&format!("/api/v1/errors/{id}"), &key).await;
    assert_eq!(r.body["status"], "unresolved");
    let history = app
        .get(&format!("/api/v1/errors/{id}/activity"), &key)
        .await;
    assert_eq!(history.body["data"][0]["action"], "regressed");
    app.cleanup().await;
}

on_both!(
    a_failed_run_becomes_a_group_that_lists_its_runs,
    unknown_and_malformed_ids,
    triage_is_attributed_to_the_user_a_jwt_acts_for,
    read_only_tokens_cannot_triage,
    bad_input_is_a_400_that_says_why,
    lists_page_both_ways_and_filter,
    an_ignore_past_its_time_reads_unresolved
);
