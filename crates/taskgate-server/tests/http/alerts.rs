//! Alerts over HTTP: a channel made with upstream's `alertChannels` route, a run failing for
//! good, and the signed webhooks that reach a receiver within seconds (the run's failure and
//! its error group's first occurrence), retried with the same delivery id after a 5xx; and
//! the refusals (private addresses by default, environment keys, email, bad types).

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use axum::http::{HeaderMap, StatusCode};
use chrono::Duration;
use serde_json::{json, Value};
use taskgate_core::webhook::signature;

use crate::common::{Backend, TestApp};
use crate::engine::{complete, dequeue, dev_project, register, start, trigger};
use crate::on_both;

type Received = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A receiver on a loopback port: records each request, and answers 503 to the first
/// `fail_first` of them.
async fn receiver(fail_first: usize) -> (String, Received) {
    let got: Received = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let mut all = seen.lock().unwrap();
                all.push((headers, body));
                if all.len() <= fail_first {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), got)
}

async fn wait_for(got: &Received, n: usize) -> Vec<(HeaderMap, String)> {
    for _ in 0..100 {
        if got.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    got.lock().unwrap().clone()
}

fn channel(url: &str) -> Value {
    json!({
        "alertTypes": ["run_failure", "error_group"], "name": "ops", "channel": "webhook",
        "channelData": { "url": url, "secret": "whsec_test" },
        "deduplicationKey": "ops", "environmentTypes": ["DEVELOPMENT"]
    })
}

async fn a_failed_run_reaches_the_webhook_signed_and_retried(b: Backend) {
    let app = TestApp::with_config(b, |c| {
        c.engine.dequeue_wait = std::time::Duration::ZERO;
        c.alerts.webhook_allow_private = true;
    })
    .await;
    let (project, key) = dev_project(&app).await;
    let worker = register(&app, &project, &key, &["boom"]).await;
    let (url, got) = receiver(1).await;
    let path = format!("/api/v1/projects/{project}/alertChannels");
    let r = app.post(&path, &app.admin_token, channel(&url)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["id"].as_str().unwrap().starts_with("alert_channel_"));
    assert_eq!(r.body["channel"], "webhook");
    assert_eq!(r.body["alertTypes"], json!(["run_failure", "error_group"]));
    assert_eq!(
        r.body["channelData"],
        json!({ "url": url, "secret": "whsec_test" })
    );
    assert_eq!(r.body["deduplicationKey"], "ops");
    let again = app.post(&path, &app.admin_token, channel(&url)).await;
    assert_eq!(
        again.body["id"], r.body["id"],
        "the same key updates the channel"
    );
    // A receiver that is down: its failures are recorded without the URL's path.
    let mut down = channel("http://127.0.0.1:1/hook-token-s3cr3t");
    down["deduplicationKey"] = json!("down");
    down["alertTypes"] = json!(["run_failure"]);
    let r = app.post(&path, &app.admin_token, down).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let down_id = r.body["id"].as_str().unwrap().to_string();

    let run = trigger(
        &app,
        &key,
        "boom",
        json!({ "options": { "maxAttempts": 1 } }),
    )
    .await;
    let m = dequeue(&app, &key, &worker).await.remove(0);
    let started = start(&app, &key, &m).await;
    let error = json!({ "type": "BUILT_IN_ERROR", "name": "TypeError", "message": "kaput", "stackTrace": "TypeError: kaput\n    at run (boom.ts:1:1)" });
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

    // The first request is answered 503; its retry comes once its time has come.
    let first = wait_for(&got, 2).await;
    assert_eq!(first.len(), 2, "both alerts were tried within seconds");
    app.clock.advance(Duration::seconds(5));
    let all = wait_for(&got, 3).await;
    assert_eq!(all.len(), 3, "the refused delivery was tried again");
    let retried_id =
        |(h, _): &(HeaderMap, String)| h["x-taskgate-delivery-id"].to_str().unwrap().to_string();
    assert_eq!(
        retried_id(&all[0]),
        retried_id(&all[2]),
        "a retry keeps its delivery id"
    );
    let mut types = Vec::new();
    for (headers, body) in &all[1..] {
        assert_eq!(
            headers["x-trigger-signature-hmacsha256"].to_str().unwrap(),
            signature("whsec_test", body.as_bytes()),
            "signed over the exact body"
        );
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            v["id"].as_str().unwrap(),
            retried_id(&(headers.clone(), String::new()))
        );
        types.push(v["type"].as_str().unwrap().to_string());
        match v["type"].as_str().unwrap() {
            "alert.run.failed" => {
                assert_eq!(v["webhookVersion"], "v1");
                let o = &v["object"];
                assert_eq!(o["run"]["id"], run.as_str());
                assert_eq!(o["run"]["status"], "FAILED");
                assert_eq!(o["run"]["error"]["message"], "kaput");
                assert_eq!(o["task"]["id"], "boom");
                assert_eq!(o["task"]["filePath"], "src/trigger/boom.ts");
                assert_eq!(o["environment"]["type"], "DEVELOPMENT");
                assert_eq!(o["project"]["ref"], project.as_str());
                assert!(o["run"]["dashboardUrl"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("/runs/{run}")));
            }
            "alert.error" => {
                assert_eq!(v["webhookVersion"], "2025-01-01");
                let o = &v["object"];
                assert_eq!(o["classification"], "new_issue");
                assert_eq!(o["error"]["type"], "TypeError");
                assert_eq!(o["error"]["occurrenceCount"], 1);
                assert_eq!(o["error"]["taskIdentifier"], "boom");
            }
            other => panic!("unexpected alert {other}"),
        }
    }
    types.sort();
    assert_eq!(types, vec!["alert.error", "alert.run.failed"]);
    let user = app
        .state
        .store
        .find_user_by_email("admin@taskgate.local")
        .await
        .unwrap()
        .unwrap();
    let access = app
        .state
        .store
        .find_project_access(&user.id, &project)
        .await
        .unwrap()
        .unwrap();
    let mut error = None;
    for _ in 0..50 {
        let list = app
            .state
            .store
            .list_alert_deliveries(&access.project.id, 10)
            .await
            .unwrap();
        error = list
            .into_iter()
            .find(|d| d.channel_friendly_id == down_id)
            .and_then(|d| d.last_error);
        if error.is_some() {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let error = error.expect("the down receiver's delivery failed and says why");
    assert!(
        !error.contains("s3cr3t"),
        "no URL path in the error: {error}"
    );
    app.cleanup().await;
}

async fn channels_are_refused_as_upstream_and_private_urls_by_default(b: Backend) {
    let app = TestApp::new(b).await;
    let (project, key) = dev_project(&app).await;
    let path = format!("/api/v1/projects/{project}/alertChannels");
    let pat = app.admin_token.clone();
    let r = app
        .post(&path, &key, channel("https://hooks.example.com/in"))
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "an environment key: {}",
        r.text
    );
    for url in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/",
        "http://localhost/x",
    ] {
        let r = app.post(&path, &pat, channel(url)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {}",
            r.text
        );
        assert!(r.text.contains("--webhook-allow-private"), "{}", r.text);
    }
    let refused = [
        (
            json!({ "alertTypes": ["run_failure"], "name": "m", "channel": "email", "channelData": { "email": "a@example.com" } }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "alertTypes": ["run_failure"], "name": "w", "channel": "webhook", "channelData": {} }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "alertTypes": ["run_failure"], "name": "w", "channel": "pager", "channelData": {} }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "alertTypes": ["everything"], "name": "w", "channel": "webhook", "channelData": { "url": "https://h.example.com" } }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "alertTypes": [], "name": "w", "channel": "webhook", "channelData": { "url": "https://h.example.com" } }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "alertTypes": ["run_failure"], "name": "w", "channel": "webhook", "channelData": { "url": "https://h.example.com" }, "environmentTypes": ["LIVE"] }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "alertTypes": ["run_failure"], "channel": "webhook", "channelData": { "url": "https://h.example.com" } }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "alertTypes": ["run_failure"], "name": "w", "channel": "webhook", "channelData": { "url": "ftp://h.example.com" } }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, status) in refused {
        let r = app.post(&path, &pat, body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
    }
    let r = app
        .post(
            "/api/v1/projects/proj_nope/alertChannels",
            &pat,
            channel("https://h.example.com"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    // A generated secret, and Slack channels beyond upstream.
    let r = app
        .post(&path, &pat, json!({ "alertTypes": ["error_group"], "name": "gen", "channel": "webhook", "channelData": { "url": "https://h.example.com/in" } }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["channelData"]["secret"].as_str().unwrap().len(), 32);
    assert!(
        r.body.get("deduplicationKey").is_none(),
        "a generated key is not answered"
    );
    let r = app
        .post(&path, &pat, json!({ "alertTypes": ["run_failure"], "name": "chat", "channel": "slack", "channelData": { "url": "https://hooks.slack.com/services/T/B/X" } }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["channel"], "slack");
    app.cleanup().await;
}

on_both!(
    a_failed_run_reaches_the_webhook_signed_and_retried,
    channels_are_refused_as_upstream_and_private_urls_by_default
);
