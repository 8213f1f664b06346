//! Waits over HTTP, as task code and the dev CLI make them: `triggerAndWait` (a trigger with
//! `parentRunId` and `resumeParentOnCompletion`), `wait.for` past the SDK's local 5 s, and
//! wait tokens (made, listed, retrieved, completed by key, by their JWT and by their callback
//! URL, timing out). The waiting run's worker sees `EXECUTING_WITH_WAITPOINTS`, then a new
//! `EXECUTING` snapshot carrying what it waited for. Time moves on the injected clock; timers
//! fire when the test fires them.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::Duration;
use serde_json::{json, Value};

use crate::common::{Backend, Response, TestApp};
use crate::engine::{complete, dequeue, start, trigger, with_worker};
use crate::on_both;

async fn latest(app: &TestApp, key: &str, run: &str) -> Value {
    let r = app
        .get(&format!("/engine/v1/dev/runs/{run}/snapshots/latest"), key)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["execution"].clone()
}

/// Fires the timers that are due and answers `run`'s latest execution once it continues. The
/// app's own timer loop may fire them first (another test's timer event wakes it), so this
/// looks until the run continues rather than counting what this pass fired.
async fn fired(app: &TestApp, key: &str, run: &str) -> Value {
    for _ in 0..100 {
        app.state.engine.fire_timers().await.unwrap();
        let execution = latest(app, key, run).await;
        if execution["snapshot"]["executionStatus"] == "EXECUTING" {
            return execution;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{run} did not continue when its timer was due");
}

/// Triggers `task`, dequeues and starts it: the start answer.
async fn running(app: &TestApp, key: &str, worker: &Value, task: &str) -> Value {
    let run = trigger(app, key, task, json!({ "payload": {} })).await;
    let messages = dequeue(app, key, worker).await;
    let message = messages
        .iter()
        .find(|m| m["run"]["friendlyId"] == run.as_str())
        .expect("the run is dequeued");
    start(app, key, message).await
}

fn run_id(started: &Value) -> String {
    started["run"]["friendlyId"].as_str().unwrap().to_string()
}

async fn trigger_and_wait_resumes_the_parent_with_the_childs_result(b: Backend) {
    let (app, _, key, worker) = with_worker(b, &["parent", "child"]).await;
    let parent = running(&app, &key, &worker, "parent").await;
    let parent_id = run_id(&parent);
    let child = trigger(
        &app,
        &key,
        "child",
        json!({ "payload": { "n": 1 }, "options": { "parentRunId": parent_id, "resumeParentOnCompletion": true, "lockToVersion": worker["version"] } }),
    )
    .await;
    let waiting = latest(&app, &key, &parent_id).await;
    assert_eq!(
        waiting["snapshot"]["executionStatus"],
        "EXECUTING_WITH_WAITPOINTS"
    );
    assert_eq!(waiting["run"]["status"], "EXECUTING");
    // Heartbeats go on while it waits, even with the snapshot the worker held before.
    let stale = parent["snapshot"]["friendlyId"].as_str().unwrap();
    let r = app
        .post(
            &format!("/engine/v1/dev/runs/{parent_id}/snapshots/{stale}/heartbeat"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The child is the parent's.
    let r = app.get(&format!("/api/v3/runs/{child}"), &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let messages = dequeue(&app, &key, &worker).await;
    let started = start(&app, &key, &messages[0]).await;
    assert_eq!(run_id(&started), child);
    let r = complete(
        &app,
        &key,
        &started,
        json!({ "id": child, "ok": true, "output": "{\"doubled\":2}", "outputType": "application/json" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let resumed = latest(&app, &key, &parent_id).await;
    assert_eq!(resumed["snapshot"]["executionStatus"], "EXECUTING");
    assert_ne!(
        resumed["snapshot"]["friendlyId"],
        waiting["snapshot"]["friendlyId"]
    );
    let handed = resumed["completedWaitpoints"].as_array().unwrap();
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0]["type"], "RUN");
    assert_eq!(
        handed[0]["completedByTaskRun"]["friendlyId"],
        child.as_str()
    );
    assert_eq!(handed[0]["output"], "{\"doubled\":2}");
    assert_eq!(handed[0]["outputIsError"], false);
    // The parent completes with the newest snapshot.
    let r = complete(
        &app,
        &key,
        &json!({ "run": resumed["run"], "snapshot": resumed["snapshot"] }),
        json!({ "id": parent_id, "ok": true, "output": "{}", "outputType": "application/json" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // A parent that finished cannot be named again.
    let r = app
        .post(
            "/api/v1/tasks/child/trigger",
            &key,
            json!({ "payload": {}, "options": { "parentRunId": parent_id, "resumeParentOnCompletion": true } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("parent run has a status of COMPLETED"),
        "{}",
        r.text
    );
    app.cleanup().await;
}

async fn wait_for_a_duration_resumes_when_its_timer_fires(b: Backend) {
    let (app, _, key, worker) = with_worker(b, &["sleeper"]).await;
    let started = running(&app, &key, &worker, "sleeper").await;
    let run = run_id(&started);
    let until = app.state.now() + Duration::seconds(20);
    let body = json!({ "date": until, "idempotencyKey": "nap", "idempotencyKeyTTL": "1h" });
    let r = app
        .post(
            &format!("/engine/v1/runs/{run}/wait/duration"),
            &key,
            body.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let waitpoint = r.body["waitpoint"]["id"].as_str().unwrap().to_string();
    assert!(waitpoint.starts_with("waitpoint_"));
    assert_eq!(
        latest(&app, &key, &run).await["snapshot"]["executionStatus"],
        "EXECUTING_WITH_WAITPOINTS"
    );
    app.clock.advance(Duration::seconds(19));
    assert_eq!(app.state.engine.fire_timers().await.unwrap().completed, 0);
    app.clock.advance(Duration::seconds(1));
    let resumed = fired(&app, &key, &run).await;
    assert_eq!(resumed["snapshot"]["executionStatus"], "EXECUTING");
    assert_eq!(resumed["completedWaitpoints"][0]["friendlyId"], waitpoint);
    assert_eq!(resumed["completedWaitpoints"][0]["type"], "DATETIME");
    // The same idempotency key again: the same waitpoint, already passed, so no wait.
    let r = app
        .post(&format!("/engine/v1/runs/{run}/wait/duration"), &key, body)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["waitpoint"]["id"], waitpoint);
    assert_eq!(
        latest(&app, &key, &run).await["snapshot"]["executionStatus"],
        "EXECUTING"
    );
    // Bad input is refused plainly.
    for (body, status) in [
        (json!({}), StatusCode::BAD_REQUEST),
        (json!({ "date": "tomorrow" }), StatusCode::BAD_REQUEST),
        (
            json!({ "date": app.state.now() + Duration::days(400) }),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = app
            .post(&format!("/engine/v1/runs/{run}/wait/duration"), &key, body)
            .await;
        assert_eq!(r.status, status, "{}", r.text);
    }
    let r = app
        .post(
            "/engine/v1/runs/run_nope/wait/duration",
            &key,
            json!({ "date": until }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    app.cleanup().await;
}

async fn tokens_are_made_listed_completed_and_time_out(b: Backend) {
    let (app, _, key, worker) = with_worker(b, &["approver"]).await;
    let r = app
        .post(
            "/api/v1/waitpoints/tokens",
            &key,
            json!({ "idempotencyKey": "approval-7", "timeout": "1h", "tags": ["user:7", "flow:signup"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let token = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["isCached"], false);
    let url = r.body["url"].as_str().unwrap().to_string();
    assert!(url.contains(&format!("/api/v1/waitpoints/tokens/{token}/callback/")));
    let jwt = r.headers["x-trigger-jwt"].to_str().unwrap().to_string();
    let again = app
        .post(
            "/api/v1/waitpoints/tokens",
            &key,
            json!({ "idempotencyKey": "approval-7" }),
        )
        .await;
    assert_eq!(
        (again.body["id"].as_str(), again.body["isCached"].as_bool()),
        (Some(token.as_str()), Some(true))
    );
    let r = app
        .post(
            "/api/v1/waitpoints/tokens",
            &key,
            json!({ "timeout": "soon" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = app
        .post(
            "/api/v1/waitpoints/tokens",
            &key,
            json!({ "tags": vec!["t"; 11] }),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.text);
    // A run waits for it; its JWT completes it (and nothing else).
    let started = running(&app, &key, &worker, "approver").await;
    let run = run_id(&started);
    let r = app
        .post(
            &format!("/engine/v1/runs/{run}/waitpoints/tokens/{token}/wait"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["success"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{}",
        r.text
    );
    let r = app
        .post(
            &format!("/engine/v1/runs/{run}/waitpoints/tokens/waitpoint_nope/wait"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    app.clock.advance(Duration::seconds(1));
    let other = app
        .post("/api/v1/waitpoints/tokens", &key, json!({}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .post(
            &format!("/api/v1/waitpoints/tokens/{other}/complete"),
            &jwt,
            json!({ "data": 1 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = app
        .post(
            &format!("/api/v1/waitpoints/tokens/{token}/complete"),
            &jwt,
            json!({ "data": { "approved": true } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({ "success": true }));
    let resumed = latest(&app, &key, &run).await;
    let handed = &resumed["completedWaitpoints"][0];
    assert_eq!(handed["type"], "MANUAL");
    assert_eq!(handed["output"], "{\"json\":{\"approved\":true}}");
    assert_eq!(handed["outputType"], "application/super+json");
    let r = app
        .get(&format!("/api/v1/waitpoints/tokens/{token}"), &key)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "COMPLETED");
    assert_eq!(r.body["output"], "{\"json\":{\"approved\":true}}");
    assert_eq!(r.body["tags"], json!(["user:7", "flow:signup"]));
    // Completing again succeeds and changes nothing.
    let r = app
        .post(
            &format!("/api/v1/waitpoints/tokens/{token}/complete"),
            &key,
            json!({ "data": "late" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .get(&format!("/api/v1/waitpoints/tokens/{token}"), &key)
        .await;
    assert_eq!(r.body["output"], "{\"json\":{\"approved\":true}}");
    // A token that times out resumes its waiter with the timeout error.
    app.clock.advance(Duration::seconds(1));
    let r = app
        .post(
            "/api/v1/waitpoints/tokens",
            &key,
            json!({ "timeout": "30s" }),
        )
        .await;
    let short = r.body["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/engine/v1/runs/{run}/waitpoints/tokens/{short}/wait"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.clock.advance(Duration::seconds(30));
    let resumed = fired(&app, &key, &run).await;
    let handed = &resumed["completedWaitpoints"][0];
    assert_eq!(handed["outputIsError"], true);
    let output: Value = serde_json::from_str(handed["output"].as_str().unwrap()).unwrap();
    assert_eq!(output["code"], "TRIGGER_WAITPOINT_TIMEOUT");
    assert!(output["message"]
        .as_str()
        .unwrap()
        .starts_with("Waitpoint timed out at "));
    // Listing: filters, and pages both ways.
    let list = |query: &'static str| {
        let app = &app;
        let key = key.clone();
        async move {
            let r = app
                .get(&format!("/api/v1/waitpoints/tokens{query}"), &key)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text);
            r.body
        }
    };
    let ids = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(&list("").await),
        vec![short.clone(), other.clone(), token.clone()]
    );
    assert_eq!(
        ids(&list("?filter[status]=TIMED_OUT").await),
        vec![short.clone()]
    );
    assert_eq!(
        ids(&list("?filter[status]=WAITING").await),
        vec![other.clone()]
    );
    assert_eq!(
        ids(&list("?filter[tags]=flow:signup,nobody").await),
        vec![token.clone()]
    );
    assert_eq!(
        ids(&list("?filter[idempotencyKey]=approval-7").await),
        vec![token.clone()]
    );
    let first = list("?page[size]=2").await;
    assert_eq!(ids(&first), vec![short.clone(), other.clone()]);
    let next = first["pagination"]["next"].as_str().unwrap().to_string();
    let r = app
        .get(
            &format!("/api/v1/waitpoints/tokens?page[size]=2&page[after]={next}"),
            &key,
        )
        .await;
    assert_eq!(ids(&r.body), vec![token.clone()]);
    let prev = r.body["pagination"]["previous"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .get(
            &format!("/api/v1/waitpoints/tokens?page[size]=2&page[before]={prev}"),
            &key,
        )
        .await;
    assert_eq!(ids(&r.body), vec![short.clone(), other.clone()]);
    // A token's own JWT completes it and reads nothing.
    assert_eq!(
        app.get("/api/v1/waitpoints/tokens", &jwt).await.status,
        StatusCode::FORBIDDEN
    );
    for bad in [
        "?filter[status]=PENDING",
        "?page[size]=0",
        "?page[size]=101",
        "?page[after]=nope",
    ] {
        let r = app
            .get(&format!("/api/v1/waitpoints/tokens{bad}"), &key)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
    }
    app.cleanup().await;
}

async fn a_tokens_callback_url_completes_it_without_credentials(b: Backend) {
    let (app, _, key, _) = with_worker(b, &["approver"]).await;
    let r = app.post("/api/v1/waitpoints/tokens", &key, json!({})).await;
    let token = r.body["id"].as_str().unwrap().to_string();
    let url = r.body["url"].as_str().unwrap().to_string();
    let path = url.trim_start_matches("http://127.0.0.1:3030").to_string();
    let post = |path: String, body: &'static str, length: bool| {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("content-type", "application/json");
        if length {
            req = req.header("content-length", body.len());
        }
        req.body(Body::from(body)).unwrap()
    };
    let r: Response = app.send(post(path.clone(), "{\"ok\":1}", false)).await;
    assert_eq!(r.status, StatusCode::LENGTH_REQUIRED, "{}", r.text);
    let last = if path.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &path[..path.len() - 1]);
    let r: Response = app.send(post(forged, "{\"ok\":1}", true)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let r: Response = app.send(post(path.clone(), "{\"ok\":1}", true)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .get(&format!("/api/v1/waitpoints/tokens/{token}"), &key)
        .await;
    assert_eq!(r.body["status"], "COMPLETED");
    assert_eq!(r.body["output"], "{\"json\":{\"ok\":1}}");
    app.cleanup().await;
}

/// Sends `data` to the run's input stream `answers`, as the SDK's `inputStream.send` does.
async fn send_input(app: &TestApp, key: &str, run: &str, data: Value) {
    let r = app
        .post(
            &format!("/realtime/v1/streams/{run}/input/answers"),
            key,
            json!({ "data": data }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn a_run_waits_for_its_input_stream_and_tails_it(b: Backend) {
    let (app, _, key, worker) = with_worker(b, &["asker"]).await;
    let started = running(&app, &key, &worker, "asker").await;
    let run = run_id(&started);
    // Every run's execution says v2, which the SDK needs for .on(), .once() and .wait().
    assert_eq!(started["execution"]["run"]["realtimeStreamsVersion"], "v2");
    let wait_path = format!("/api/v1/runs/{run}/input-streams/wait");

    // Nothing sent yet: the wait is pending, and the run blocks on it like on a token.
    let r = app
        .post(
            &wait_path,
            &key,
            json!({ "streamId": "answers", "timeout": "1h" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["isCached"], false);
    let first = r.body["waitpointId"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/engine/v1/runs/{run}/waitpoints/tokens/{first}/wait"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        latest(&app, &key, &run).await["snapshot"]["executionStatus"],
        "EXECUTING_WITH_WAITPOINTS"
    );
    // A send to another stream does not complete it; one to this stream does, with its data.
    let r = app
        .post(
            &format!("/realtime/v1/streams/{run}/input/other"),
            &key,
            json!({ "data": 1 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        latest(&app, &key, &run).await["snapshot"]["executionStatus"],
        "EXECUTING_WITH_WAITPOINTS"
    );
    send_input(&app, &key, &run, json!({ "approved": true })).await;
    let resumed = latest(&app, &key, &run).await;
    assert_eq!(resumed["snapshot"]["executionStatus"], "EXECUTING");
    let handed = &resumed["completedWaitpoints"][0];
    assert_eq!(handed["friendlyId"], first.as_str());
    assert_eq!(handed["output"], "{\"approved\":true}");

    // A record already there (after the one the task saw last, S2's 0) completes a wait at once.
    send_input(&app, &key, &run, json!("second")).await;
    let r = app
        .post(
            &wait_path,
            &key,
            json!({ "streamId": "answers", "lastSeqNum": 0 }),
        )
        .await;
    let second = r.body["waitpointId"].as_str().unwrap().to_string();
    let token = app
        .get(&format!("/api/v1/waitpoints/tokens/{second}"), &key)
        .await;
    assert_eq!(token.body["status"], "COMPLETED", "{}", token.text);
    assert_eq!(token.body["output"], "\"second\"");
    // Having seen both, the next wait is pending again.
    let r = app
        .post(
            &wait_path,
            &key,
            json!({ "streamId": "answers", "lastSeqNum": 1 }),
        )
        .await;
    let third = r.body["waitpointId"].as_str().unwrap().to_string();
    let token = app
        .get(&format!("/api/v1/waitpoints/tokens/{third}"), &key)
        .await;
    assert_eq!(token.body["status"], "WAITING", "{}", token.text);
    for bad in [
        json!({}),
        json!({ "streamId": "" }),
        json!({ "streamId": "a", "lastSeqNum": -1 }),
    ] {
        let r = app.post(&wait_path, &key, bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
    }
    let r = app
        .post(
            "/api/v1/runs/run_nope/input-streams/wait",
            &key,
            json!({ "streamId": "a" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);

    // The task's tail reads the records as S2 batches numbered from 0, and resumes after
    // the last one it saw.
    let tail = |last: Option<&'static str>| {
        let (app, key, run) = (&app, key.clone(), run.clone());
        async move {
            let mut req = Request::get(format!("/realtime/v1/streams/{run}/input/answers"))
                .header("authorization", format!("Bearer {key}"))
                .header("timeout-seconds", "1");
            if let Some(last) = last {
                req = req.header("last-event-id", last);
            }
            app.send(req.body(Body::empty()).unwrap()).await
        }
    };
    let r = tail(None).await;
    assert_eq!(r.headers.get("x-stream-version").unwrap(), "v2");
    let batches: Vec<Value> = r
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(batches.len(), 2, "{}", r.text);
    assert_eq!(batches[0]["records"][0]["seq_num"], 0);
    assert_eq!(
        batches[0]["records"][0]["body"],
        "{\"data\":{\"approved\":true}}"
    );
    assert_eq!(batches[1]["records"][0]["seq_num"], 1);
    assert!(r.text.contains("event: batch"), "{}", r.text);
    let r = tail(Some("0")).await;
    let rest: Vec<&str> = r.text.lines().filter(|l| l.starts_with("data: ")).collect();
    assert_eq!(rest.len(), 1, "{}", r.text);
    assert!(rest[0].contains("\"seq_num\":1"), "{}", r.text);
    app.cleanup().await;
}

async fn triggers_locked_to_a_version_need_its_task_and_queue(b: Backend) {
    let (app, _, key, worker) = with_worker(b, &["approver"]).await;
    let version = worker["version"].as_str().unwrap().to_string();
    let post = |task: &'static str, options: Value| {
        let (app, key) = (&app, key.clone());
        async move {
            app.post(
                &format!("/api/v1/tasks/{task}/trigger"),
                &key,
                json!({ "payload": {}, "options": options }),
            )
            .await
        }
    };
    let r = post("approver", json!({ "lockToVersion": version })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = post(
        "approver",
        json!({ "lockToVersion": version, "queue": { "name": "task/approver" } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = post("ghost", json!({ "lockToVersion": version })).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.body["error"],
        format!("Task 'ghost' not found on locked version '{version}'")
    );
    let r = post(
        "approver",
        json!({ "lockToVersion": version, "queue": { "name": "nope" } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.body["error"],
        format!(
            "Specified queue 'nope' not found or not associated with locked version '{version}'."
        )
    );
    let r = post("approver", json!({ "lockToVersion": "19990101.1" })).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    // Unlocked triggers are not checked (a task may be deployed after it is triggered).
    let r = post("ghost", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Batch items are checked the same way.
    let r = app
        .post("/api/v3/batches", &key, json!({ "runCount": 1 }))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let batch = r.body["id"].as_str().unwrap().to_string();
    let line = json!({ "index": 0, "task": "ghost", "payload": {}, "options": { "lockToVersion": version } });
    let r = app
        .send(
            Request::post(format!("/api/v3/batches/{batch}/items"))
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/x-ndjson")
                .body(Body::from(format!("{line}\n")))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    app.cleanup().await;
}

async fn cancelling_a_waiting_parent_cancels_its_children(b: Backend) {
    let (app, _, key, worker) = with_worker(b, &["parent", "child"]).await;
    let parent = running(&app, &key, &worker, "parent").await;
    let parent_id = run_id(&parent);
    let child = trigger(
        &app,
        &key,
        "child",
        json!({ "payload": {}, "options": { "parentRunId": parent_id, "resumeParentOnCompletion": true } }),
    )
    .await;
    let r = app
        .post(&format!("/api/v2/runs/{parent_id}/cancel"), &key, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let snapshot = latest(&app, &key, &parent_id).await;
    assert_eq!(snapshot["snapshot"]["executionStatus"], "PENDING_CANCEL");
    let r = app.get(&format!("/api/v3/runs/{child}"), &key).await;
    assert_eq!(r.body["status"], "CANCELED", "{}", r.text);
    app.cleanup().await;
}

async fn an_uncaught_exception_is_retried_from_the_queue(b: Backend) {
    let (app, _, key, worker) = with_worker(b, &["flaky"]).await;
    let started = running(&app, &key, &worker, "flaky").await;
    let run = run_id(&started);
    let r = complete(
        &app,
        &key,
        &started,
        json!({ "id": run, "ok": false, "error": { "type": "INTERNAL_ERROR", "code": "TASK_RUN_UNCAUGHT_EXCEPTION", "message": "boom" } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["result"]["attemptStatus"], "RETRY_QUEUED");
    // The task's first delay (100 ms) later, the next dequeue starts attempt 2.
    app.clock.advance(Duration::milliseconds(100));
    let messages = dequeue(&app, &key, &worker).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["run"]["attemptNumber"], 2);
    let again = start(&app, &key, &messages[0]).await;
    assert_eq!(again["execution"]["attempt"]["number"], 2);
    app.cleanup().await;
}

on_both!(
    triggers_locked_to_a_version_need_its_task_and_queue,
    a_run_waits_for_its_input_stream_and_tails_it,
    trigger_and_wait_resumes_the_parent_with_the_childs_result,
    wait_for_a_duration_resumes_when_its_timer_fires,
    tokens_are_made_listed_completed_and_time_out,
    a_tokens_callback_url_completes_it_without_credentials,
    cancelling_a_waiting_parent_cancels_its_children,
    an_uncaught_exception_is_retried_from_the_queue
);
