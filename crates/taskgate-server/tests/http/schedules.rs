//! Schedules over HTTP, as the SDK's `schedules.*` calls them, and their fires: a due
//! schedule triggers its task once with the payload the SDK decodes; a development
//! environment's schedules fire only while its CLI is connected. Time moves on the injected
//! clock.

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::common::{Backend, Response, TestApp};
use crate::engine::{dev_project, manifest};
use crate::on_both;

/// Registers a development build with `report` (a scheduled task), `plain` (a standard one)
/// and, when given, `nightly` declaring `cron`.
async fn register(app: &TestApp, project: &str, key: &str, cron: Option<&str>) {
    let mut m = manifest(&["report", "plain"]);
    let tasks = m["metadata"]["tasks"].as_array_mut().unwrap();
    tasks[0]["triggerSource"] = json!("schedule");
    tasks[1]["triggerSource"] = json!("standard");
    if let Some(cron) = cron {
        tasks.push(json!({
            "id": "nightly", "filePath": "src/trigger/nightly.ts", "exportName": "nightly",
            "triggerSource": "schedule",
            "schedule": { "cron": cron, "timezone": "Europe/London" }
        }));
    }
    let r = app
        .post(
            &format!("/api/v1/projects/{project}/background-workers"),
            key,
            m,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn put(app: &TestApp, path: &str, key: &str, body: Value) -> Response {
    app.request(Method::PUT, path, Some(key), Some(body), &[])
        .await
}

async fn delete(app: &TestApp, path: &str, key: &str) -> Response {
    app.request(Method::DELETE, path, Some(key), None, &[])
        .await
}

fn create(task: &str, key: &str) -> Value {
    json!({ "task": task, "cron": "0 9 * * 1-5", "deduplicationKey": key, "externalId": "user_1", "timezone": "America/New_York" })
}

async fn imperative_schedules_are_created_listed_changed_and_deleted(b: Backend) {
    let app = TestApp::new(b).await;
    let (project, key) = dev_project(&app).await;
    // Before any build, no task can be scheduled.
    let r = app
        .post("/api/v1/schedules", &key, create("report", "k1"))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    register(&app, &project, &key, None).await;

    let mut refused = vec![
        (
            json!({ "task": "report", "cron": "* * * * *" }),
            StatusCode::BAD_REQUEST,
        ),
        (json!({ "task": "report" }), StatusCode::BAD_REQUEST),
        (
            json!({ "task": "report", "cron": "* * * * *", "deduplicationKey": "k", "window": "3d" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "task": "report", "cron": "61 * * * *", "deduplicationKey": "k" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "task": "report", "cron": "* * * * * *", "deduplicationKey": "k" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "task": "report", "cron": "* * * * *", "deduplicationKey": "k", "timezone": "Mars/Base" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "task": "missing", "cron": "* * * * *", "deduplicationKey": "k" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "task": "plain", "cron": "* * * * *", "deduplicationKey": "k" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    refused.push((json!([]), StatusCode::BAD_REQUEST));
    for (body, status) in refused {
        let r = app.post("/api/v1/schedules", &key, body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert!(r.body["error"].as_str().is_some(), "{}", r.text);
    }

    let r = app
        .post("/api/v1/schedules", &key, create("report", "k1"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let s = r.body.clone();
    let id = s["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sched_"));
    assert_eq!(s["type"], "IMPERATIVE");
    assert_eq!(s["active"], true);
    assert_eq!(s["deduplicationKey"], "k1");
    assert_eq!(s["externalId"], "user_1");
    assert_eq!(s["timezone"], "America/New_York");
    assert_eq!(s["generator"]["type"], "CRON");
    assert_eq!(s["generator"]["expression"], "0 9 * * 1-5");
    assert!(
        s["generator"]["description"]
            .as_str()
            .unwrap()
            .contains("09:00"),
        "{}",
        s["generator"]["description"]
    );
    assert!(s["nextRun"].as_str().is_some());
    assert_eq!(s["environments"][0]["type"], "DEVELOPMENT");
    // The same key updates the same schedule.
    let mut again = create("report", "k1");
    again["cron"] = json!("30 6 * * *");
    let r = app.post("/api/v1/schedules", &key, again).await;
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["generator"]["expression"], "30 6 * * *");
    app.clock.advance(Duration::seconds(1));
    app.post("/api/v1/schedules", &key, create("report", "k2"))
        .await;

    let r = app.get("/api/v1/schedules?page=2&perPage=1", &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["pagination"],
        json!({ "currentPage": 2, "totalPages": 2, "count": 2 })
    );
    assert_eq!(r.body["data"][0]["deduplicationKey"], "k2");
    for bad in ["perPage=0", "perPage=101", "page=0", "page=x"] {
        let r = app.get(&format!("/api/v1/schedules?{bad}"), &key).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
    }

    // Another project's key sees none of it.
    let (_, other) = dev_project(&app).await;
    assert_eq!(
        app.get(&format!("/api/v1/schedules/{id}"), &other)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete(&app, &format!("/api/v1/schedules/{id}"), &other)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/schedules", &other).await.body["pagination"]["count"],
        0
    );

    let r = put(
        &app,
        &format!("/api/v1/schedules/{id}"),
        &key,
        json!({ "task": "report", "cron": "0 0 L * *" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["timezone"], "UTC");
    assert_eq!(r.body["externalId"], Value::Null);
    let r = app
        .post(
            &format!("/api/v1/schedules/{id}/deactivate"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(
        (r.body["active"].clone(), r.body["nextRun"].clone()),
        (json!(false), Value::Null)
    );
    let r = app
        .post(&format!("/api/v1/schedules/{id}/activate"), &key, json!({}))
        .await;
    assert_eq!(r.body["active"], true);
    assert!(r.body["nextRun"].as_str().is_some());
    let r = delete(&app, &format!("/api/v1/schedules/{id}"), &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({ "id": id }));
    assert_eq!(
        app.get(&format!("/api/v1/schedules/{id}"), &key)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Time zones need no credential.
    let r = app
        .request(Method::GET, "/api/v1/timezones", None, None, &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let zones = r.body["timezones"].as_array().unwrap();
    assert!(zones.contains(&json!("Europe/London")) && zones.contains(&json!("UTC")));
    let r = app
        .request(
            Method::GET,
            "/api/v1/timezones?excludeUtc=true",
            None,
            None,
            &[],
        )
        .await;
    assert!(!r.body["timezones"]
        .as_array()
        .unwrap()
        .contains(&json!("UTC")));
    app.cleanup().await;
}

async fn declarative_schedules_follow_the_dev_build(b: Backend) {
    let app = TestApp::new(b).await;
    let (project, key) = dev_project(&app).await;
    let bad = {
        let mut m = manifest(&["nightly"]);
        m["metadata"]["tasks"][0]["schedule"] = json!({ "cron": "every day", "timezone": "UTC" });
        m
    };
    let r = app
        .post(
            &format!("/api/v1/projects/{project}/background-workers"),
            &key,
            bad,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("nightly"), "{}", r.text);

    register(&app, &project, &key, Some("0 3 * * *")).await;
    let r = app.get("/api/v1/schedules", &key).await;
    let list = r.body["data"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", r.text);
    assert_eq!(list[0]["type"], "DECLARATIVE");
    assert_eq!(list[0]["task"], "nightly");
    assert_eq!(list[0]["timezone"], "Europe/London");
    let id = list[0]["id"].as_str().unwrap().to_string();
    let r = put(
        &app,
        &format!("/api/v1/schedules/{id}"),
        &key,
        json!({ "task": "nightly", "cron": "* * * * *" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        delete(&app, &format!("/api/v1/schedules/{id}"), &key)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // The switch is the user's, declarative or not.
    let r = app
        .post(
            &format!("/api/v1/schedules/{id}/deactivate"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(r.body["active"], false, "{}", r.text);
    // A build without the cron removes it.
    register(&app, &project, &key, None).await;
    assert_eq!(
        app.get("/api/v1/schedules", &key).await.body["pagination"]["count"],
        0
    );
    app.cleanup().await;
}

/// Fires what is due, then waits for the schedule's last fire to be recorded (the app's own
/// schedule loop may be the one that fires it).
async fn fired(app: &TestApp, key: &str, id: &str, nominal: &str) -> Value {
    app.state.engine.fire_schedules().await.unwrap();
    for _ in 0..100 {
        let r = app.get(&format!("/api/v1/schedules/{id}"), key).await;
        if r.body["lastRun"]
            .as_str()
            .is_some_and(|t| t.starts_with(nominal))
        {
            return r.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the fire for {nominal} was never recorded");
}

/// A schedule made from `body` in a new development project with a build: (its environment's
/// key, the environment's id, the schedule's id, its next nominal time).
async fn scheduled(app: &TestApp, body: Value) -> (String, String, String, DateTime<Utc>) {
    let (project, key) = dev_project(app).await;
    register(app, &project, &key, None).await;
    let env: String = app.whoami_env(&key).await.body["sub"]
        .as_str()
        .unwrap()
        .into();
    let r = app.post("/api/v1/schedules", &key, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    let next = r.body["nextRun"].as_str().unwrap().parse().unwrap();
    (key, env, id, next)
}

async fn a_due_schedule_triggers_its_task_once_while_the_cli_is_connected(b: Backend) {
    let app = TestApp::new(b).await;
    let (key, env, id, next) = scheduled(
        &app,
        json!({ "task": "report", "cron": "* * * * *", "deduplicationKey": "tick", "externalId": "user_9", "timezone": "Asia/Tokyo" }),
    )
    .await;
    // The CLI is seen at the fire's time, before the clock gets there (the app's own loop may
    // fire as soon as it does).
    let at = next + Duration::milliseconds(10);
    app.state
        .store
        .touch_dev_presence(&env.clone().into(), at)
        .await
        .unwrap();
    app.clock.set(at);
    let nominal = next.format("%Y-%m-%dT%H:%M").to_string();
    let s = fired(&app, &key, &id, &nominal).await;
    let run = s["lastRunId"]
        .as_str()
        .expect("the fire triggered a run")
        .to_string();
    let r = app.get(&format!("/api/v3/runs/{run}"), &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["taskIdentifier"], "report");
    let p = &r.body["payload"];
    assert_eq!(p["scheduleId"], id.as_str());
    assert_eq!(p["type"], "IMPERATIVE");
    assert_eq!(p["externalId"], "user_9");
    assert_eq!(p["timezone"], "Asia/Tokyo");
    assert!(
        p["timestamp"].as_str().unwrap().starts_with(&nominal),
        "{p}"
    );
    assert_eq!(p["upcoming"].as_array().unwrap().len(), 10);
    // As the task process gets it: superjson, so the SDK makes Dates of the times.
    let stored = app
        .state
        .store
        .get_run(&env.clone().into(), &run.clone().into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.payload_type, "application/super+json");
    assert_eq!(stored.schedule_id.as_deref(), Some(id.as_str()));
    let packet: Value = serde_json::from_str(stored.payload.as_deref().unwrap()).unwrap();
    assert_eq!(packet["meta"]["values"]["timestamp"], json!(["Date"]));
    assert_eq!(packet["meta"]["values"]["upcoming.9"], json!(["Date"]));
    assert_eq!(
        packet["meta"]["values"]["lastTimestamp"],
        json!(["undefined"])
    );
    // Firing again at the same moment triggers nothing more.
    app.state.engine.fire_schedules().await.unwrap();
    let runs = app
        .get("/api/v1/runs?filter[taskIdentifier]=report", &key)
        .await;
    assert_eq!(
        runs.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        runs.text
    );

    // No CLI connected (its presence is older than its lifetime): the next fire is skipped.
    let later = next + Duration::minutes(1);
    app.clock.set(later + Duration::milliseconds(10));
    let s = fired(&app, &key, &id, &later.format("%Y-%m-%dT%H:%M").to_string()).await;
    assert_eq!(
        s["lastRunId"],
        run.as_str(),
        "a skipped fire triggers no run"
    );
    let runs = app
        .get("/api/v1/runs?filter[taskIdentifier]=report", &key)
        .await;
    assert_eq!(
        runs.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        runs.text
    );
    app.cleanup().await;
}

/// A node that claimed a fire and died (before or after triggering its run) loses nothing and
/// duplicates nothing: once the lease runs out the fire is taken over, and its trigger finds
/// the run the dead node made.
async fn a_fire_abandoned_mid_way_is_taken_over_without_a_second_run(b: Backend) {
    let app = TestApp::new(b).await;
    let (key, env, id, next) = scheduled(
        &app,
        json!({ "task": "report", "cron": "*/5 * * * *", "deduplicationKey": "five" }),
    )
    .await;
    // Seen connected until well after the lease runs out.
    let at = next + Duration::milliseconds(10);
    for s in 0..4 {
        app.state
            .store
            .touch_dev_presence(&env.clone().into(), at + Duration::seconds(s * 30))
            .await
            .unwrap();
    }
    // The dying node: claims the fire and triggers its run, and never completes it. (The
    // app's own loop sleeps on real time; claiming first keeps it from taking the fire.)
    let fires = app
        .state
        .store
        .claim_schedule_fires(at, 10, Duration::seconds(60))
        .await
        .unwrap();
    let fire = fires
        .iter()
        .find(|f| f.schedule.friendly_id.as_str() == id)
        .unwrap();
    let first = match app.state.engine.trigger_fire(fire).await.unwrap() {
        taskgate_engine::schedules::FireOutcome::Triggered(run) => run,
        other => panic!("the fire did not trigger: {other:?}"),
    };
    app.clock.set(at + Duration::seconds(30));
    let pass = app.state.engine.fire_schedules().await.unwrap();
    assert_eq!(pass.claimed, 0, "the fire is leased");
    // The lease runs out: another pass takes the fire over and finds the same run.
    app.clock.set(at + Duration::seconds(61));
    let nominal = next.format("%Y-%m-%dT%H:%M").to_string();
    let s = fired(&app, &key, &id, &nominal).await;
    assert_eq!(s["lastRunId"], first.as_str());
    let runs = app
        .get("/api/v1/runs?filter[taskIdentifier]=report", &key)
        .await;
    assert_eq!(
        runs.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        runs.text
    );
    app.cleanup().await;
}

on_both!(
    a_fire_abandoned_mid_way_is_taken_over_without_a_second_run,
    imperative_schedules_are_created_listed_changed_and_deleted,
    declarative_schedules_follow_the_dev_build,
    a_due_schedule_triggers_its_task_once_while_the_cli_is_connected
);
