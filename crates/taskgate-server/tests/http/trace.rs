//! A run's trace and its spans (`get_run_details` and `get_span_details` in the CLI's MCP
//! server): built from the run, its attempts and the log records its worker exported.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::common::{Backend, TestApp};
use crate::engine::{complete, dequeue, start, trigger, with_worker};
use crate::on_both;

/// A run of task `t` that failed its first attempt and succeeded in its second; returns the
/// app, the key and the run.
async fn retried_run(b: Backend) -> (TestApp, String, String) {
    let (app, _, key, worker) = with_worker(b, &["t"]).await;
    let run = trigger(&app, &key, "t", json!({})).await;
    let m = dequeue(&app, &key, &worker).await.remove(0);
    let first = start(&app, &key, &m).await;
    let error = json!({ "type": "BUILT_IN_ERROR", "name": "TypeError", "message": "boom", "stackTrace": "TypeError: boom\n    at run (t.ts:1:1)" });
    let r = complete(
        &app,
        &key,
        &first,
        json!({ "ok": false, "id": run, "error": error, "retry": { "timestamp": 0, "delay": 0 } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let next = json!({ "run": r.body["result"]["run"], "snapshot": r.body["result"]["snapshot"] });
    let second = start(&app, &key, &next).await;
    let r = complete(&app, &key, &second, json!({ "ok": true, "id": run, "output": "{\"sent\":true}", "outputType": "application/json" })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    (app, key, run)
}

async fn a_trace_shows_the_run_its_attempts_and_their_errors(b: Backend) {
    let (app, key, run) = retried_run(b).await;
    let r = app.get(&format!("/api/v1/runs/{run}/trace"), &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let trace = &r.body["trace"];
    assert_eq!(trace["traceId"].as_str().map(str::len), Some(32));
    let root = &trace["rootSpan"];
    assert_eq!(root["runId"], run.as_str());
    assert_eq!(root["data"]["taskSlug"], "t");
    assert_eq!(
        root["data"]["taskPath"], "src/trigger/t.ts",
        "from the worker"
    );
    assert_eq!(root["data"]["output"], json!({ "sent": true }));
    assert_eq!(root["data"]["isError"], false);
    assert_eq!(root["data"]["isPartial"], false);
    let attempts = root["children"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{}", r.text);
    assert_eq!(attempts[0]["data"]["message"], "Attempt 1");
    assert_eq!(attempts[0]["data"]["isError"], true);
    assert_eq!(
        attempts[0]["data"]["events"][0]["properties"]["exception"],
        json!({ "type": "TypeError", "message": "boom", "stacktrace": "TypeError: boom\n    at run (t.ts:1:1)" })
    );
    assert_eq!(attempts[1]["data"]["isError"], false);
    assert_eq!(attempts[1]["parentId"], root["id"]);
    // Read again: the same ids.
    let again = app.get(&format!("/api/v1/runs/{run}/trace"), &key).await;
    assert_eq!(again.body, r.body);
    app.cleanup().await;
}

async fn a_span_is_found_by_the_id_its_trace_gave(b: Backend) {
    let (app, key, run) = retried_run(b).await;
    let trace = app
        .get(&format!("/api/v1/runs/{run}/trace"), &key)
        .await
        .body;
    let root = &trace["trace"]["rootSpan"];
    let attempt = root["children"][0]["id"].as_str().unwrap();
    let r = app
        .get(&format!("/api/v1/runs/{run}/spans/{attempt}"), &key)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["spanId"], attempt);
    assert_eq!(r.body["parentId"], root["id"]);
    assert_eq!(r.body["entityType"], "attempt");
    assert_eq!(r.body["isError"], true);
    assert_eq!(r.body["level"], "ERROR");
    assert_eq!(r.body["properties"]["attemptNumber"], 1);
    assert!(r.body["durationMs"].as_f64().is_some());
    let root_id = root["id"].as_str().unwrap();
    let r = app
        .get(&format!("/api/v1/runs/{run}/spans/{root_id}"), &key)
        .await;
    assert_eq!(r.body["parentId"], Value::Null);
    assert_eq!(r.body["entityType"], "run");
    let r = app
        .get(&format!("/api/v1/runs/{run}/spans/0000000000000000"), &key)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"], "Span not found");
    app.cleanup().await;
}

async fn spans_the_task_process_exports_join_the_trace(b: Backend) {
    let (app, _, key, worker) = with_worker(b, &["t"]).await;
    let run = trigger(&app, &key, "t", json!({})).await;
    let m = dequeue(&app, &key, &worker).await.remove(0);
    let started = start(&app, &key, &m).await;
    let endpoint = started["envVars"]["TRIGGER_OTEL_EXPORTER_OTLP_ENDPOINT"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://127.0.0.1:3030")
        .to_string();
    let attrs = |extra: Value| {
        let mut list = vec![
            json!({ "key": "ctx.run.id", "value": { "stringValue": run } }),
            json!({ "key": "ctx.attempt.number", "value": { "intValue": "1" } }),
        ];
        if let Some(o) = extra.as_object() {
            for (k, v) in o {
                list.push(json!({ "key": k, "value": v }));
            }
        }
        Value::Array(list)
    };
    let span = |id: &str, parent: &str, name: &str, extra: Value| {
        json!({ "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": id, "parentSpanId": parent,
                "name": name, "startTimeUnixNano": "1772366400000000000", "endTimeUnixNano": "1772366400250000000",
                "attributes": attrs(extra), "status": { "code": if name == "fetch" { 2 } else { 0 } } })
    };
    let export = json!({ "resourceSpans": [{ "scopeSpans": [{ "spans": [
        span("aaaaaaaaaaaaaaaa", "", "Attempt 1", json!({})),
        span("bbbbbbbbbbbbbbbb", "aaaaaaaaaaaaaaaa", "run()", json!({})),
        span("cccccccccccccccc", "bbbbbbbbbbbbbbbb", "fetch", json!({ "http.url": { "stringValue": "https://example.com" } })),
        // A long span's first, partial copy: not kept.
        span("dddddddddddddddd", "bbbbbbbbbbbbbbbb", "still going", json!({ "$span.partial": { "boolValue": true } })),
    ] }] }] });
    let req = axum::http::Request::post(format!("{endpoint}/v1/traces"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(export.to_string()))
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.get(&format!("/api/v1/runs/{run}/trace"), &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let attempt = &r.body["trace"]["rootSpan"]["children"][0];
    assert_eq!(attempt["data"]["message"], "Attempt 1");
    let run_fn = &attempt["children"][0];
    assert_eq!(run_fn["data"]["message"], "run()", "{}", r.text);
    assert_eq!(
        run_fn["children"].as_array().unwrap().len(),
        1,
        "no partial copy"
    );
    let fetch = &run_fn["children"][0];
    assert_eq!(fetch["id"], "cccccccccccccccc");
    assert_eq!(fetch["data"]["isError"], true);
    assert_eq!(fetch["data"]["duration"], 250_000_000);
    assert_eq!(
        fetch["data"]["properties"]["http.url"],
        "https://example.com"
    );
    let r = app
        .get(&format!("/api/v1/runs/{run}/spans/cccccccccccccccc"), &key)
        .await;
    assert_eq!(r.body["entityType"], "span");
    assert_eq!(r.body["parentId"], "bbbbbbbbbbbbbbbb");
    app.cleanup().await;
}

async fn a_trace_is_read_as_its_run_is(b: Backend) {
    let (app, key, run) = retried_run(b).await;
    let other = trigger(&app, &key, "t", json!({})).await;
    let jwt = app
        .post(
            "/api/v1/auth/jwt",
            &key,
            json!({ "claims": { "scopes": [format!("read:runs:{other}")] } }),
        )
        .await;
    let token = jwt.body["token"].as_str().unwrap();
    let r = app.get(&format!("/api/v1/runs/{run}/trace"), token).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = app.get(&format!("/api/v1/runs/{other}/trace"), token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["trace"]["rootSpan"]["data"]["isPartial"], true,
        "queued"
    );
    let r = app.get("/api/v1/runs/run_nope/trace", &key).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    app.cleanup().await;
}

on_both!(
    a_trace_shows_the_run_its_attempts_and_their_errors,
    a_span_is_found_by_the_id_its_trace_gave,
    a_trace_is_read_as_its_run_is,
    spans_the_task_process_exports_join_the_trace,
);
