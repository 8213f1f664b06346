//! The runs pages: filters in the URL, one run, cancel and replay.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::{Backend, TestApp};

/// A signed-in owner with a project whose prod environment has runs of `tasks` (in order):
/// (the runs page's path, prod key, run ids newest last).
async fn with_runs(app: &TestApp, tasks: &[&str]) -> (String, String, Vec<String>) {
    let token = app.admin_token.clone();
    let (org, project) = app.org_and_project(&token).await;
    let key = app.env_key(&token, &project, "prod").await;
    let mut ids = Vec::new();
    for (i, task) in tasks.iter().enumerate() {
        let r = app
            .api(
                Method::POST,
                &format!("/api/v1/tasks/{task}/trigger"),
                Some(&key),
                Some(json!({ "payload": { "n": i }, "options": { "tags": [format!("n{i}")] } })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        ids.push(r.json()["id"].as_str().unwrap().to_string());
        app.clock.advance(chrono::Duration::seconds(1));
    }
    app.sign_in("admin@taskgate.local").await;
    (
        format!("/orgs/{org}/projects/{project}/env/prod/runs"),
        key,
        ids,
    )
}

async fn the_list_shows_runs_and_keeps_its_filters_in_the_url(b: Backend) {
    let app = TestApp::new(b).await;
    let (path, _, ids) = with_runs(&app, &["email", "resize", "email"]).await;
    let all = app.get(&path).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    for id in &ids {
        assert!(all.text.contains(id.as_str()));
    }
    assert!(all.text.contains("QUEUED"));
    let emails = app.get(&format!("{path}?task=email&period=1d")).await;
    assert!(emails.text.contains(&ids[0]) && emails.text.contains(&ids[2]));
    assert!(!emails.text.contains(&ids[1]));
    assert!(
        emails.text.contains("<option value=\"email\" selected>"),
        "the filter is shown as chosen"
    );
    let tagged = app.get(&format!("{path}?tag=n1")).await;
    assert!(tagged.text.contains(&ids[1]) && !tagged.text.contains(&ids[0]));
    let done = app.get(&format!("{path}?status=COMPLETED")).await;
    assert!(done.text.contains("No runs match these filters."));
    let versioned = app.get(&format!("{path}?version=20260301.1")).await;
    assert!(
        versioned.text.contains("No runs match these filters."),
        "no run was dequeued"
    );
    assert_eq!(
        app.get(&format!("{path}?status=NOPE")).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get(&format!("{path}?period=forever")).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get(&format!("{path}?after=garbage")).await.status,
        StatusCode::BAD_REQUEST
    );
    app.cleanup().await;
}

async fn the_list_pages_through_older_runs(b: Backend) {
    let app = TestApp::new(b).await;
    let tasks = vec!["t"; 27];
    let (path, _, ids) = with_runs(&app, &tasks).await;
    let first = app.get(&format!("{path}?task=t")).await;
    assert!(first.text.contains(&ids[26]) && !first.text.contains(&ids[1]));
    let at = first.text.find("Older runs").unwrap();
    let href_start = first.text[..at].rfind("href=\"").unwrap() + 6;
    let href = &first.text[href_start..href_start + first.text[href_start..].find('"').unwrap()];
    let href = href.replace("&amp;", "&");
    assert!(
        href.contains("task=t"),
        "the filters travel with the page: {href}"
    );
    let second = app.get(&format!("{path}{href}")).await;
    assert!(second.text.contains(&ids[0]) && second.text.contains(&ids[1]));
    assert!(!second.text.contains(&ids[26]));
    assert!(!second.text.contains("Older runs"));
    app.cleanup().await;
}

async fn a_run_page_shows_the_payload_and_cancel_and_replay_work(b: Backend) {
    let app = TestApp::new(b).await;
    let (path, key, ids) = with_runs(&app, &["email"]).await;
    let run_path = format!("{path}/{}", ids[0]);
    let page = app.get(&run_path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("&quot;n&quot;: 0"), "{}", page.text);
    assert!(page.text.contains("Cancel run") && page.text.contains("Replay run"));
    let csrf = page.input_value("_csrf").unwrap();
    let canceled = app
        .post_form(&format!("{run_path}/cancel"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(canceled.status, StatusCode::SEE_OTHER);
    let api = app
        .api(
            Method::GET,
            &format!("/api/v3/runs/{}", ids[0]),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(api.json()["status"], "CANCELED");
    let after = app.get(&run_path).await;
    assert!(after.text.contains("Run canceled."));
    assert!(
        !after.text.contains("Cancel run"),
        "a finished run offers no cancel"
    );

    let replayed = app
        .post_form(&format!("{run_path}/replay"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(replayed.status, StatusCode::SEE_OTHER);
    let new_path = replayed.location().to_string();
    assert_ne!(new_path, run_path);
    let new_page = app.get(&new_path).await;
    assert!(new_page.text.contains(&format!("Replayed {}", ids[0])));
    assert!(new_page.text.contains("&quot;n&quot;: 0"), "same payload");
    assert_eq!(
        app.post_form(&format!("{run_path}/replay"), &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get(&format!("{path}/run_nope")).await.status,
        StatusCode::NOT_FOUND
    );
    app.cleanup().await;
}

async fn a_viewer_sees_runs_but_cannot_cancel_or_replay(b: Backend) {
    let app = TestApp::new(b).await;
    let (path, _, ids) = with_runs(&app, &["email"]).await;
    let org = path.split('/').nth(2).unwrap().to_string();
    app.user("viewer@example.com").await;
    let added = app
        .api(
            Method::POST,
            &format!("/api/v1/orgs/{org}/members"),
            Some(&app.admin_token),
            Some(json!({ "email": "viewer@example.com", "role": "viewer" })),
        )
        .await;
    assert!(added.status.is_success(), "{}", added.text);
    app.jar.lock().unwrap().clear();
    app.sign_in("viewer@example.com").await;
    let run_path = format!("{path}/{}", ids[0]);
    let page = app.get(&run_path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text.contains("Cancel run") && !page.text.contains("Replay run"));
    let csrf = page.input_value("_csrf").unwrap();
    let refused = app
        .post_form(&format!("{run_path}/cancel"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    app.cleanup().await;
}

async fn a_run_that_ended_on_its_own_offers_no_cancel(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (org, project) = app.org_and_project(&token).await;
    let key = app.env_key(&token, &project, "prod").await;
    let r = app
        .api(
            Method::POST,
            "/api/v1/tasks/email/trigger",
            Some(&key),
            Some(json!({ "payload": {}, "options": { "ttl": "1m" } })),
        )
        .await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    // Never dequeued, it expires with its TTL.
    app.clock.advance(chrono::Duration::minutes(2));
    app.state
        .store
        .advance_due_runs(app.state.now())
        .await
        .unwrap();
    app.sign_in("admin@taskgate.local").await;
    let list = format!("/orgs/{org}/projects/{project}/env/prod/runs");
    let run_path = format!("{list}/{id}");
    let page = app.get(&run_path).await;
    assert!(page.text.contains("EXPIRED"), "{}", page.text);
    assert!(!page.text.contains("Cancel run"), "{}", page.text);
    // A cancel posted anyway changes nothing and says why.
    let csrf = page.input_value("_csrf").unwrap();
    let r = app
        .post_form(&format!("{run_path}/cancel"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let after = app.get(&run_path).await;
    assert!(
        after.text.contains("had already ended (EXPIRED)"),
        "{}",
        after.text
    );
    assert!(!after.text.contains("Run canceled."));
    let api = app
        .api(Method::GET, &format!("/api/v3/runs/{id}"), Some(&key), None)
        .await;
    assert_eq!(api.json()["status"], "EXPIRED");
    // Every final status is offered by the filter, timed-out runs included.
    let listed = app.get(&format!("{list}?status=TIMED_OUT")).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(
        listed.text.contains("<option value=\"TIMED_OUT\" selected"),
        "{}",
        listed.text
    );
    app.cleanup().await;
}

async fn a_dev_environment_without_a_cli_says_so(b: Backend) {
    let app = TestApp::with_config(b, |c| c.engine.dequeue_wait = std::time::Duration::ZERO).await;
    let token = app.admin_token.clone();
    let (org, project) = app.org_and_project(&token).await;
    let key = app.env_key(&token, &project, "dev").await;
    app.sign_in("admin@taskgate.local").await;
    let list = format!("/orgs/{org}/projects/{project}/env/dev/runs");
    let page = app.get(&list).await;
    assert!(
        page.text
            .contains("<code>trigger.dev dev</code> is connected"),
        "{}",
        page.text
    );
    assert!(page.text.contains("npx trigger.dev@4.8.3 dev"));
    // A CLI's dequeue is its presence.
    let r = app
        .api(
            Method::POST,
            "/engine/v1/dev/dequeue",
            Some(&key),
            Some(json!({ "currentWorker": "none" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let page = app.get(&list).await;
    assert!(
        !page.text.contains("is connected to this environment"),
        "{}",
        page.text
    );
    app.cleanup().await;
}

crate::on_both!(
    the_list_shows_runs_and_keeps_its_filters_in_the_url,
    the_list_pages_through_older_runs,
    a_run_page_shows_the_payload_and_cancel_and_replay_work,
    a_viewer_sees_runs_but_cannot_cancel_or_replay,
    a_run_that_ended_on_its_own_offers_no_cancel,
    a_dev_environment_without_a_cli_says_so,
);
