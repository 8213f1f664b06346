//! The schedules page: an environment's schedules with their cron in words, time zone and
//! next times, and the switch, which only members who may change tasks see and use.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::{Backend, TestApp};

async fn schedules_are_listed_and_switched_from_the_page(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (org, project) = app.org_and_project(&token).await;
    let key = app.env_key(&token, &project, "dev").await;
    let manifest = json!({
        "localOnly": true, "engine": "V2", "supportsLazyAttempts": true,
        "metadata": { "packageVersion": "4.8.3", "cliPackageVersion": "4.8.3", "contentHash": "h",
            "runtime": "node", "runtimeVersion": "20.20.2", "queues": [], "sourceFiles": [],
            "tasks": [
                { "id": "nightly", "filePath": "src/n.ts", "triggerSource": "schedule",
                  "schedule": { "cron": "0 3 L * *", "timezone": "Europe/Paris" } },
                { "id": "report", "filePath": "src/r.ts", "triggerSource": "schedule" }
            ] }
    });
    let r = app
        .api(
            Method::POST,
            &format!("/api/v1/projects/{project}/background-workers"),
            Some(&key),
            Some(manifest),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .api(
            Method::POST,
            "/api/v1/schedules",
            Some(&key),
            Some(json!({ "task": "report", "cron": "*/15 * * * *", "deduplicationKey": "k", "externalId": "<b>tenant</b>" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let imperative = r.json()["id"].as_str().unwrap().to_string();

    app.sign_in("admin@taskgate.local").await;
    let base = format!("/orgs/{org}/projects/{project}/env/dev");
    let page = app.get(&format!("{base}/schedules")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    for text in [
        "nightly",
        "0 3 L * *",
        "on the last day of the month",
        "Europe/Paris",
        "DECLARATIVE",
        "IMPERATIVE",
        "only while",
        "&lt;b&gt;tenant&lt;/b&gt;",
    ] {
        assert!(page.text.contains(text), "{text}: {}", page.text);
    }
    assert!(!page.text.contains("<b>tenant"), "external ids are escaped");
    let switch = format!("{base}/schedules/{imperative}/deactivate");
    assert!(page.text.contains(&switch), "{}", page.text);
    assert_eq!(
        app.post_form(&switch, &[]).await.status,
        StatusCode::FORBIDDEN,
        "no CSRF token"
    );
    let csrf = page.input_value("_csrf").unwrap();
    let done = app.post_form(&switch, &[("_csrf", &csrf)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let page = app.get(&format!("{base}/schedules")).await;
    assert!(page.text.contains("is inactive"), "{}", page.text);
    assert!(page
        .text
        .contains(&format!("{base}/schedules/{imperative}/activate")));
    let r = app
        .api(
            Method::GET,
            &format!("/api/v1/schedules/{imperative}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.json()["active"], false);
    let missing = app
        .post_form(
            &format!("{base}/schedules/sched_missing/activate"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // A viewer reads the page and switches nothing.
    app.user("viewer@example.com").await;
    app.api(
        Method::POST,
        &format!("/api/v1/orgs/{org}/members"),
        Some(&app.admin_token),
        Some(json!({ "email": "viewer@example.com", "role": "viewer" })),
    )
    .await;
    app.jar.lock().unwrap().clear();
    app.sign_in("viewer@example.com").await;
    let prod = format!("/orgs/{org}/projects/{project}/env/prod");
    let page = app.get(&format!("{prod}/schedules")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("No schedules here yet"), "{}", page.text);
    let csrf = page.input_value("_csrf").unwrap_or_default();
    assert_eq!(
        app.post_form(&switch, &[("_csrf", &csrf)]).await.status,
        StatusCode::FORBIDDEN
    );
    app.cleanup().await;
}

crate::on_both!(schedules_are_listed_and_switched_from_the_page);
