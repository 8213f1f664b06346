//! The queues page: an environment's queues with their limit, running and queued runs, and
//! pause state; administrators pause, resume, override and reset from it, and a developer or
//! viewer reads it without those controls.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::{Backend, TestApp};

async fn administrators_pause_and_override_queues_from_the_page(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (org, project) = app.org_and_project(&token).await;
    let key = app.env_key(&token, &project, "dev").await;
    let manifest = json!({
        "localOnly": true, "engine": "V2", "supportsLazyAttempts": true,
        "metadata": { "packageVersion": "4.8.3", "cliPackageVersion": "4.8.3", "contentHash": "h",
            "runtime": "node", "runtimeVersion": "20.20.2", "sourceFiles": [],
            "queues": [{ "name": "<i>emails</i>", "concurrencyLimit": 3 }],
            "tasks": [
                { "id": "send", "filePath": "src/s.ts", "queue": { "name": "<i>emails</i>" } },
                { "id": "resize", "filePath": "src/r.ts" }
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
    for _ in 0..2 {
        let r = app
            .api(
                Method::POST,
                "/api/v1/tasks/send/trigger",
                Some(&key),
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = app
        .api(Method::GET, "/api/v1/queues?perPage=10", Some(&key), None)
        .await;
    let emails = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["type"] == "custom")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    app.sign_in("admin@taskgate.local").await;
    let base = format!("/orgs/{org}/projects/{project}/env/dev");
    let page = app.get(&format!("{base}/queues")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text.contains("&lt;i&gt;emails&lt;/i&gt;") && !page.text.contains("<i>emails"),
        "queue names are escaped: {}",
        page.text
    );
    let row = page.text.split(&format!("id=\"{emails}\"")).nth(1).unwrap();
    let row = row.split("</tr>").next().unwrap();
    assert!(row.contains("<td>3</td>"), "the limit: {row}");
    assert!(
        row.contains("<td>0</td><td>2</td>"),
        "0 running, 2 queued: {row}"
    );
    assert!(page.text.contains("resize"), "a task's own queue is listed");
    let pause = format!("{base}/queues/{emails}/pause");
    assert!(page.text.contains(&pause), "{}", page.text);
    assert_eq!(
        app.post_form(&pause, &[]).await.status,
        StatusCode::FORBIDDEN,
        "no CSRF token"
    );
    let csrf = page.input_value("_csrf").unwrap();
    let done = app.post_form(&pause, &[("_csrf", &csrf)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let r = app
        .api(
            Method::GET,
            &format!("/api/v1/queues/{emails}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.json()["paused"], true, "the API sees the page's pause");
    let page = app.get(&format!("{base}/queues")).await;
    assert!(page.text.contains("is paused"), "{}", page.text);
    assert!(page
        .text
        .contains(&format!("{base}/queues/{emails}/resume")));

    let override_path = format!("{base}/queues/{emails}/override");
    let bad = app
        .post_form(&override_path, &[("_csrf", &csrf), ("limit", "-1")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    let done = app
        .post_form(&override_path, &[("_csrf", &csrf), ("limit", "7")])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let r = app
        .api(
            Method::GET,
            &format!("/api/v1/queues/{emails}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.json()["concurrency"]["override"], 7);
    assert_eq!(
        r.json()["concurrency"]["overriddenBy"],
        "Administrator",
        "the page records who overrode it"
    );
    let page = app.get(&format!("{base}/queues")).await;
    assert!(page.text.contains("declared 3"), "{}", page.text);
    let reset = format!("{base}/queues/{emails}/reset");
    assert_eq!(
        app.post_form(&reset, &[("_csrf", &csrf)]).await.status,
        StatusCode::SEE_OTHER
    );
    let missing = app
        .post_form(
            &format!("{base}/queues/queue_missing/pause"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // A developer reads the page and changes nothing.
    app.user("dev@example.com").await;
    app.api(
        Method::POST,
        &format!("/api/v1/orgs/{org}/members"),
        Some(&app.admin_token),
        Some(json!({ "email": "dev@example.com", "role": "developer" })),
    )
    .await;
    app.jar.lock().unwrap().clear();
    app.sign_in("dev@example.com").await;
    let prod = format!("/orgs/{org}/projects/{project}/env/prod");
    let page = app.get(&format!("{prod}/queues")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("No queues here yet"), "{}", page.text);
    let csrf = page.input_value("_csrf").unwrap_or_default();
    assert_eq!(
        app.post_form(&pause, &[("_csrf", &csrf)]).await.status,
        StatusCode::FORBIDDEN
    );
    app.cleanup().await;
}

crate::on_both!(administrators_pause_and_override_queues_from_the_page);
