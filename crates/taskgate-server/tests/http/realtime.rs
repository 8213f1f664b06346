//! Realtime: the run feed (Electric protocol) and run streams (SSE).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};

use crate::common::{until_watching, Backend, TestApp};
use crate::on_both;
use crate::runs::trigger_id;

async fn feed(app: &TestApp, token: &str, run: &str, query: &str) -> crate::common::Response {
    let req = Request::get(format!("/realtime/v1/runs/{run}?{query}"))
        .header("authorization", format!("Bearer {token}"))
        .header("x-trigger-electric-version", "1.0.0-beta.1")
        .body(Body::empty())
        .unwrap();
    app.send(req).await
}

/// A live poll with nothing new waits out the poll window, then answers up-to-date at the
/// same offset.
async fn a_live_poll_with_nothing_new_answers_up_to_date_after_the_window(b: Backend) {
    let app = TestApp::with_config(b, |c| c.engine.realtime_poll = Duration::from_secs(1)).await;
    let (_, key) = app.project_with_key("prod").await;
    let id = trigger_id(&app, &key, "email", json!({})).await;
    let r = feed(&app, &key, &id, "log=full&offset=-1").await;
    let handle = r.headers["electric-handle"].to_str().unwrap().to_string();
    let offset = r.headers["electric-offset"].to_str().unwrap().to_string();
    let live = format!("cursor=&handle={handle}&live=true&log=full&offset={offset}");
    let started = Instant::now();
    let r = feed(&app, &key, &id, &live).await;
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert_eq!(r.body, json!([{ "headers": { "control": "up-to-date" } }]));
    assert_eq!(r.headers["electric-offset"].to_str().unwrap(), offset);
    assert!(r.headers.contains_key("electric-cursor"));
    app.cleanup().await;
}

async fn the_feed_snapshots_then_long_polls_changes(b: Backend) {
    // A poll window far longer than the test may wait: a poll that answers did so because
    // of the change, not because its window ended.
    let app = TestApp::with_config(b, |c| c.engine.realtime_poll = Duration::from_secs(120)).await;
    let (_, key) = app.project_with_key("prod").await;
    let id = trigger_id(
        &app,
        &key,
        "email",
        json!({ "options": { "tags": ["a", "b\"c"] } }),
    )
    .await;
    let r = feed(&app, &key, &id, "log=full&offset=-1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for h in ["electric-handle", "electric-offset", "electric-schema"] {
        assert!(r.headers.contains_key(h), "{h}");
    }
    let offset = r.headers["electric-offset"].to_str().unwrap().to_string();
    let msgs = r.body.as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["headers"]["operation"], "insert");
    assert_eq!(msgs[1]["headers"]["control"], "up-to-date");
    let row = &msgs[0]["value"];
    assert_eq!(
        (row["friendlyId"].as_str(), row["status"].as_str()),
        (Some(id.as_str()), Some("PENDING"))
    );
    assert_eq!(row["runTags"], "{\"a\",\"b\\\"c\"}");
    assert_eq!(row["isTest"], "f");
    let created = row["createdAt"].as_str().unwrap();
    assert!(
        !created.ends_with('Z') && created.contains('T'),
        "timestamps without a zone: {created}"
    );
    assert!(row["completedAt"].is_null());

    // A change while a poll waits is delivered at once.
    let poll = live_poll(&app, &key, &format!("/realtime/v1/runs/{id}?"), &r);
    until_watching(&app.state, 1).await;
    app.request(
        Method::POST,
        &format!("/api/v2/runs/{id}/cancel"),
        Some(&key),
        None,
        &[],
    )
    .await;
    let (new_offset, body) = tokio::time::timeout(Duration::from_secs(60), poll)
        .await
        .expect("the change is delivered when it happens, not at the poll's end")
        .unwrap();
    assert_ne!(new_offset, offset);
    assert_eq!(body[0]["headers"]["operation"], "update");
    assert_eq!(body[0]["value"]["status"], "CANCELED");
    assert!(body[0]["value"]["completedAt"].is_string());
    assert!(
        app.state.engine.watchers().is_empty(),
        "finished polls leave nothing behind"
    );

    // skipColumns drops columns from the row and the schema, never the required ones.
    let r = feed(
        &app,
        &key,
        &id,
        "log=full&offset=-1&skipColumns=payload,status",
    )
    .await;
    let row = &r.body[0]["value"];
    assert!(row.get("payload").is_none() && row.get("status").is_some());
    assert!(!r.headers["electric-schema"]
        .to_str()
        .unwrap()
        .contains("\"payload\""));
    // Unknown runs and foreign scopes.
    assert_eq!(
        feed(&app, &key, "run_nope", "offset=-1").await.status,
        StatusCode::NOT_FOUND
    );
    let other = trigger_id(&app, &key, "email", json!({})).await;
    let tok = app
        .post(
            "/api/v1/auth/public-tokens",
            &key,
            json!({ "scopes": [format!("read:runs:{other}")] }),
        )
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        feed(&app, &tok, &id, "offset=-1").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        feed(&app, &tok, &other, "offset=-1").await.status,
        StatusCode::OK
    );
    app.cleanup().await;
}

/// A GET of a many-run feed.
async fn set_feed(app: &TestApp, token: &str, path_and_query: &str) -> crate::common::Response {
    let req = Request::get(path_and_query)
        .header("authorization", format!("Bearer {token}"))
        .header("x-trigger-electric-version", "1.0.0-beta.1")
        .body(Body::empty())
        .unwrap();
    app.send(req).await
}

/// A live poll of `path` (which has a query) after `snapshot`, sent in the background;
/// resolves to its offset and body.
fn live_poll(
    app: &TestApp,
    token: &str,
    path: &str,
    snapshot: &crate::common::Response,
) -> tokio::task::JoinHandle<(String, Value)> {
    let handle = snapshot.headers["electric-handle"].to_str().unwrap();
    let offset = snapshot.headers["electric-offset"].to_str().unwrap();
    let uri = format!("{path}&cursor=&handle={handle}&live=true&log=full&offset={offset}");
    let (router, token) = (app.router.clone(), token.to_string());
    tokio::spawn(async move {
        use tower::ServiceExt;
        let req = Request::get(uri)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let resp = router.oneshot(req).await.unwrap();
        let offset = resp.headers()["electric-offset"]
            .to_str()
            .unwrap()
            .to_string();
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        (offset, serde_json::from_slice::<Value>(&bytes).unwrap())
    })
}

/// The `(friendlyId, operation)` of each change of a feed answer, in order.
fn changes(body: &Value) -> Vec<(String, String)> {
    body.as_array()
        .unwrap()
        .iter()
        .filter(|m| m["key"].is_string())
        .map(|m| {
            (
                m["value"]["friendlyId"].as_str().unwrap().to_string(),
                m["headers"]["operation"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn the_tags_feed_sends_matching_runs_then_new_and_changed_ones(b: Backend) {
    let app = TestApp::with_config(b, |c| c.engine.realtime_poll = Duration::from_secs(120)).await;
    let (_, key) = app.project_with_key("prod").await;
    let tagged = |tag: &str| json!({ "options": { "tags": [tag] } });
    let old = trigger_id(&app, &key, "email", tagged("a")).await;
    app.clock.advance(chrono::Duration::hours(2));
    let a = trigger_id(&app, &key, "email", tagged("a")).await;
    let b_run = trigger_id(&app, &key, "email", tagged("b")).await;
    trigger_id(&app, &key, "email", tagged("c")).await;
    let path = "/realtime/v1/runs?createdAt=1h&tags=a,b";
    let snap = set_feed(&app, &key, &format!("{path}&log=full&offset=-1")).await;
    assert_eq!(snap.status, StatusCode::OK, "{}", snap.text);
    let mut got = changes(&snap.body);
    got.sort();
    let mut want = vec![
        (a.clone(), "insert".to_string()),
        (b_run.clone(), "insert".to_string()),
    ];
    want.sort();
    assert_eq!(got, want, "tags a or b, within the hour; not {old}");
    assert!(snap.headers.contains_key("electric-schema"));
    assert!(snap.headers["electric-handle"]
        .to_str()
        .unwrap()
        .starts_with("runs_"));

    // A new run with a tag is delivered at once as an insert.
    let poll = live_poll(&app, &key, path, &snap);
    until_watching(&app.state, 1).await;
    let new = trigger_id(&app, &key, "email", tagged("b")).await;
    let (offset, body) = tokio::time::timeout(Duration::from_secs(60), poll)
        .await
        .expect("delivered when it happens")
        .unwrap();
    assert_eq!(changes(&body), [(new.clone(), "insert".to_string())]);
    assert_eq!(
        body.as_array().unwrap().last().unwrap()["headers"]["control"],
        "up-to-date"
    );

    // A change to a run of the set is an update, and only that run is sent.
    let next = crate::common::Response {
        status: StatusCode::OK,
        headers: {
            let mut h = snap.headers.clone();
            h.insert("electric-offset", offset.parse().unwrap());
            h
        },
        body: Value::Null,
        text: String::new(),
    };
    let poll = live_poll(&app, &key, path, &next);
    until_watching(&app.state, 1).await;
    let r = app
        .post(&format!("/api/v2/runs/{a}/cancel"), &key, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (_, body) = tokio::time::timeout(Duration::from_secs(60), poll)
        .await
        .expect("delivered when it happens")
        .unwrap();
    assert_eq!(changes(&body), [(a.clone(), "update".to_string())]);
    assert_eq!(body[0]["value"]["status"], "CANCELED");
    app.cleanup().await;
}

async fn a_set_poll_ignores_runs_outside_its_set_and_answers_up_to_date(b: Backend) {
    let app = TestApp::with_config(b, |c| c.engine.realtime_poll = Duration::from_secs(1)).await;
    let (_, key) = app.project_with_key("prod").await;
    trigger_id(&app, &key, "email", json!({ "options": { "tags": ["a"] } })).await;
    let path = "/realtime/v1/runs?tags=a";
    let snap = set_feed(&app, &key, &format!("{path}&offset=-1")).await;
    let offset = snap.headers["electric-offset"]
        .to_str()
        .unwrap()
        .to_string();
    let started = Instant::now();
    let poll = live_poll(&app, &key, path, &snap);
    until_watching(&app.state, 1).await;
    // Another tag's run wakes the poll, which finds nothing of its own and keeps waiting.
    trigger_id(&app, &key, "email", json!({ "options": { "tags": ["z"] } })).await;
    let (new_offset, body) = poll.await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert_eq!(body, json!([{ "headers": { "control": "up-to-date" } }]));
    assert_eq!(new_offset, offset);
    app.cleanup().await;
}

async fn the_batch_feed_follows_a_batchs_runs(b: Backend) {
    let app = TestApp::with_config(b, |c| c.engine.realtime_poll = Duration::from_secs(120)).await;
    let (_, key) = app.project_with_key("prod").await;
    let r = app
        .post(
            "/api/v3/batches",
            &key,
            json!({ "runCount": 2, "taskIdentifiers": ["a"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let batch = r.body["id"].as_str().unwrap().to_string();
    let lines = (0..2)
        .map(|i| json!({ "index": i, "task": "a", "payload": "{}" }).to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let req = Request::post(format!("/api/v3/batches/{batch}/items"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/x-ndjson")
        .body(Body::from(lines))
        .unwrap();
    assert_eq!(app.send(req).await.status, StatusCode::OK);
    trigger_id(&app, &key, "a", json!({})).await;
    let path = format!("/realtime/v1/batches/{batch}?log=full");
    let snap = set_feed(&app, &key, &format!("{path}&offset=-1")).await;
    assert_eq!(snap.status, StatusCode::OK, "{}", snap.text);
    let runs = changes(&snap.body);
    assert_eq!(
        runs.len(),
        2,
        "the batch's runs, not the other: {}",
        snap.text
    );
    assert!(snap.headers["electric-handle"]
        .to_str()
        .unwrap()
        .starts_with("batch_"));
    let poll = live_poll(&app, &key, &path, &snap);
    until_watching(&app.state, 1).await;
    let first = &runs[0].0;
    let r = app
        .post(&format!("/api/v2/runs/{first}/cancel"), &key, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (_, body) = tokio::time::timeout(Duration::from_secs(60), poll)
        .await
        .expect("delivered when it happens")
        .unwrap();
    assert_eq!(changes(&body), [(first.clone(), "update".to_string())]);
    let r = set_feed(&app, &key, "/realtime/v1/batches/batch_nope?offset=-1").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    app.cleanup().await;
}

async fn many_run_feeds_need_every_tag_or_the_batch_in_scope(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let token = |scopes: Value| {
        let (app, key) = (&app, &key);
        async move {
            app.post(
                "/api/v1/auth/public-tokens",
                key,
                json!({ "scopes": scopes }),
            )
            .await
            .body["token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let tag_a = token(json!(["read:tags:a"])).await;
    let status = |t: String, q: &'static str| {
        let app = &app;
        async move { set_feed(app, &t, q).await.status }
    };
    assert_eq!(
        status(tag_a.clone(), "/realtime/v1/runs?tags=a&offset=-1").await,
        StatusCode::OK
    );
    assert_eq!(
        status(tag_a.clone(), "/realtime/v1/runs?tags=a,b&offset=-1").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(tag_a.clone(), "/realtime/v1/runs?offset=-1").await,
        StatusCode::FORBIDDEN
    );
    let all = token(json!(["read:runs"])).await;
    assert_eq!(
        status(all, "/realtime/v1/runs?offset=-1").await,
        StatusCode::OK
    );
    let many = (0..11)
        .map(|i| format!("t{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let r = set_feed(
        &app,
        &key,
        &format!("/realtime/v1/runs?tags={many}&offset=-1"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    app.cleanup().await;
}

async fn sse(
    app: &TestApp,
    token: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, String) {
    let mut req = Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "text/event-stream");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = app.send(req.body(Body::empty()).unwrap()).await;
    (r.status, r.text)
}

fn data_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

async fn streams_are_stored_and_resume_after_the_last_id(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let id = trigger_id(&app, &key, "t", json!({})).await;
    for part in ["{\"i\":1}", "{\"i\":2}\n{\"i\":3}"] {
        let r = app
            .send(
                Request::post(format!("/realtime/v1/streams/{id}/self/out/append"))
                    .header("authorization", format!("Bearer {key}"))
                    .body(Body::from(part))
                    .unwrap(),
            )
            .await;
        assert_eq!(
            (r.status, r.body["ok"].as_bool()),
            (StatusCode::OK, Some(true)),
            "{}",
            r.text
        );
    }
    let path = format!("/realtime/v1/streams/{id}/out");
    let (status, text) = sse(&app, &key, &path, &[("timeout-seconds", "1")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        data_lines(&text),
        vec!["{\"i\":1}", "{\"i\":2}", "{\"i\":3}"]
    );
    let ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect();
    assert_eq!(ids.len(), 3);
    // Reconnecting with the second event's id delivers only what came after it.
    let (_, text) = sse(
        &app,
        &key,
        &path,
        &[("timeout-seconds", "1"), ("last-event-id", ids[1])],
    )
    .await;
    assert_eq!(data_lines(&text), vec!["{\"i\":3}"]);
    let (_, text) = sse(
        &app,
        &key,
        &path,
        &[
            ("timeout-seconds", "1"),
            ("x-trigger-stream-start", "latest"),
        ],
    )
    .await;
    assert!(data_lines(&text).is_empty());
    let (status, _) = sse(&app, &key, &path, &[("timeout-seconds", "0")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The run's own token reads it; another run's token does not.
    let other = trigger_id(&app, &key, "t", json!({})).await;
    let tok = app
        .post(
            "/api/v1/auth/public-tokens",
            &key,
            json!({ "scopes": [format!("read:runs:{other}")] }),
        )
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        sse(&app, &tok, &path, &[("timeout-seconds", "1")]).await.0,
        StatusCode::FORBIDDEN
    );
    // A reader waiting when a chunk arrives gets it without waiting for the timeout.
    let reader = {
        let (router, key, path) = (app.router.clone(), key.clone(), path.clone());
        tokio::spawn(async move {
            use tower::ServiceExt;
            let req = Request::get(&path)
                .header("authorization", format!("Bearer {key}"))
                .header("timeout-seconds", "2")
                .header("x-trigger-stream-start", "latest")
                .body(Body::empty())
                .unwrap();
            let resp = router.oneshot(req).await.unwrap();
            String::from_utf8_lossy(
                &http_body_util::BodyExt::collect(resp.into_body())
                    .await
                    .unwrap()
                    .to_bytes(),
            )
            .to_string()
        })
    };
    until_watching(&app.state, 1).await;
    app.send(
        Request::post(format!("/realtime/v1/streams/{id}/self/out/append"))
            .header("authorization", format!("Bearer {key}"))
            .body(Body::from("{\"i\":4}"))
            .unwrap(),
    )
    .await;
    assert_eq!(data_lines(&reader.await.unwrap()), vec!["{\"i\":4}"]);
    app.cleanup().await;
}

async fn write_lines(
    app: &TestApp,
    key: &str,
    id: &str,
    client: &str,
    from: &str,
    body: &str,
) -> crate::common::Response {
    app.send(
        Request::post(format!("/realtime/v1/streams/{id}/self/out"))
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .header("x-client-id", client)
            .header("x-resume-from-chunk", from)
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

async fn piped_streams_are_written_as_lines_resume_and_end_with_their_run(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let id = trigger_id(&app, &key, "t", json!({})).await;
    // Creating the stream sends the SDK to its line writer (no S2 here).
    let r = app
        .request(
            Method::PUT,
            &format!("/realtime/v1/streams/{id}/self/out"),
            Some(&key),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (StatusCode::OK, json!({ "version": "v1" })),
        "{}",
        r.text
    );
    // A run without a parent has no parent or root to write to.
    for target in ["parent", "root"] {
        let r = app
            .request(
                Method::PUT,
                &format!("/realtime/v1/streams/{id}/{target}/out"),
                Some(&key),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{target}: {}", r.text);
    }
    let r = write_lines(
        &app,
        &key,
        &id,
        "w1",
        "0",
        "{\"i\":0}\n{\"i\":1}\n{\"i\":2}\n",
    )
    .await;
    assert_eq!(
        (r.status, r.body["ok"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{}",
        r.text
    );
    let probe = app
        .request(
            Method::HEAD,
            &format!("/realtime/v1/streams/{id}/self/out"),
            Some(&key),
            None,
            &[("x-client-id", "w1")],
        )
        .await;
    assert_eq!(probe.status, StatusCode::OK);
    assert_eq!(probe.headers.get("x-last-chunk-index").unwrap(), "2");
    // The writer lost its connection before it heard back and resumes from line 1; the last
    // line comes without its newline.
    let r = write_lines(
        &app,
        &key,
        &id,
        "w1",
        "1",
        "{\"i\":1}\n{\"i\":2}\n{\"i\":3}",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let path = format!("/realtime/v1/streams/{id}/out");
    let (_, text) = sse(&app, &key, &path, &[("timeout-seconds", "1")]).await;
    assert_eq!(
        data_lines(&text),
        vec!["{\"i\":0}", "{\"i\":1}", "{\"i\":2}", "{\"i\":3}"],
        "each line once"
    );
    for (from, body, status) in [
        ("-1", "{}", StatusCode::BAD_REQUEST),
        ("x", "{}", StatusCode::BAD_REQUEST),
    ] {
        let r = write_lines(&app, &key, &id, "w2", from, body).await;
        assert_eq!(r.status, status, "{from}: {}", r.text);
    }
    let huge = format!("\"{}\"\n", "x".repeat(1024 * 1024 + 1));
    let r = write_lines(&app, &key, &id, "w2", "0", &huge).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);

    // A reader of a live run waits; once the run finishes, its stream ends (well before the
    // reader's 30 s timeout).
    let reader = {
        let (router, key, path) = (app.router.clone(), key.clone(), path.clone());
        tokio::spawn(async move {
            use tower::ServiceExt;
            let req = Request::get(&path)
                .header("authorization", format!("Bearer {key}"))
                .header("timeout-seconds", "30")
                .body(Body::empty())
                .unwrap();
            let resp = router.oneshot(req).await.unwrap();
            String::from_utf8_lossy(
                &http_body_util::BodyExt::collect(resp.into_body())
                    .await
                    .unwrap()
                    .to_bytes(),
            )
            .to_string()
        })
    };
    until_watching(&app.state, 2).await;
    let r = app
        .post(&format!("/api/v2/runs/{id}/cancel"), &key, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let text = tokio::time::timeout(std::time::Duration::from_secs(10), reader)
        .await
        .expect("the stream ends when its run finishes")
        .unwrap();
    assert_eq!(data_lines(&text).len(), 4);
    // A finished run's stream is read whole at once, and takes no more lines.
    let started = std::time::Instant::now();
    let (_, text) = sse(&app, &key, &path, &[("timeout-seconds", "30")]).await;
    assert_eq!(data_lines(&text).len(), 4);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let r = write_lines(&app, &key, &id, "w1", "4", "{}").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    app.cleanup().await;
}

async fn input_streams_accept_records_for_live_runs(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let r = app.post("/api/v1/tasks/t/trigger", &key, json!({})).await;
    let (id, handle) = (
        r.body["id"].as_str().unwrap().to_string(),
        r.headers["x-trigger-jwt"].to_str().unwrap().to_string(),
    );
    let path = format!("/realtime/v1/streams/{id}/input/answers");
    let r = app
        .post(&path, &handle, json!({ "data": { "ok": 1 } }))
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (StatusCode::OK, json!({ "ok": true })),
        "the run token may write its input streams"
    );
    let r = app.post(&path, &handle, json!({ "nodata": 1 })).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Invalid request body"))
    );
    let r = app
        .post(
            "/realtime/v1/streams/run_nope/input/answers",
            &key,
            json!({ "data": 1 }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("Run not found"))
    );
    let other = trigger_id(&app, &key, "t", json!({})).await;
    let r = app
        .post(
            &format!("/realtime/v1/streams/{other}/input/answers"),
            &handle,
            json!({ "data": 1 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    app.request(
        Method::POST,
        &format!("/api/v2/runs/{id}/cancel"),
        Some(&key),
        None,
        &[],
    )
    .await;
    let r = app.post(&path, &key, json!({ "data": 1 })).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("Cannot send to input stream on a completed run")
        )
    );
    app.cleanup().await;
}

on_both!(
    the_tags_feed_sends_matching_runs_then_new_and_changed_ones,
    a_set_poll_ignores_runs_outside_its_set_and_answers_up_to_date,
    the_batch_feed_follows_a_batchs_runs,
    many_run_feeds_need_every_tag_or_the_batch_in_scope,
    a_live_poll_with_nothing_new_answers_up_to_date_after_the_window,
    the_feed_snapshots_then_long_polls_changes,
    streams_are_stored_and_resume_after_the_last_id,
    piped_streams_are_written_as_lines_resume_and_end_with_their_run,
    input_streams_accept_records_for_live_runs
);
