//! The errors pages: the list with its filters in the URL and activity charts, one group,
//! triage from the page and the history of who did what.

use axum::http::{Method, StatusCode};
use serde_json::json;
use taskgate_core::time::Clock;
use taskgate_store::ErrorOccurrence;

use crate::common::{Backend, TestApp};

/// A signed-in owner with `occurrences` of each (task, message) in prod: (errors page path,
/// prod key, environment id).
async fn with_errors(app: &TestApp, groups: &[(&str, &str, usize)]) -> (String, String, String) {
    let token = app.admin_token.clone();
    let (org, project) = app.org_and_project(&token).await;
    let key = app.env_key(&token, &project, "prod").await;
    let claims = app
        .api(Method::POST, "/api/v1/auth/jwt/claims", Some(&key), None)
        .await;
    let env = claims.json()["sub"].as_str().unwrap().to_string();
    let now = app.clock.now();
    for (task, message, n) in groups {
        let error = json!({ "type": "BUILT_IN_ERROR", "name": "TypeError", "message": message, "stackTrace": "at x (a.ts:1)" });
        let occurrences: Vec<_> = (0..*n)
            .map(|i| ErrorOccurrence {
                environment_id: &env,
                task_identifier: task,
                task_version: Some("20260301.1"),
                error: &error,
                run_created_at: now - chrono::Duration::minutes(i as i64 * 7),
            })
            .collect();
        app.state
            .store
            .record_error_occurrences(&occurrences, now)
            .await
            .unwrap();
    }
    app.sign_in("admin@taskgate.local").await;
    (
        format!("/orgs/{org}/projects/{project}/env/prod/errors"),
        key,
        env,
    )
}

/// The detail path of the first group on a list page.
fn first_group(path: &str, text: &str) -> String {
    let at = text.find(&format!("{path}/error_")).unwrap();
    text[at..at + text[at..].find('"').unwrap()].to_string()
}

async fn the_list_counts_groups_with_filters_in_the_url_and_a_chart(b: Backend) {
    let app = TestApp::new(b).await;
    let (path, _, _) = with_errors(&app, &[("email", "boom", 3), ("resize", "bad size", 1)]).await;
    let page = app.get(&path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("boom") && page.text.contains("bad size"));
    assert!(
        page.text.find("boom").unwrap() < page.text.find("bad size").unwrap(),
        "most frequent first"
    );
    assert!(
        page.text.contains("3 occurrences in 25 bars"),
        "an activity chart per group"
    );
    let searched = app.get(&format!("{path}?search=SIZE")).await;
    assert!(searched.text.contains("bad size") && !searched.text.contains("boom"));
    assert!(
        searched.text.contains("value=\"SIZE\""),
        "the search stays in the form"
    );
    let by_task = app.get(&format!("{path}?task=email&period=7d")).await;
    assert!(by_task.text.contains("boom") && !by_task.text.contains("bad size"));
    let resolved = app.get(&format!("{path}?status=resolved")).await;
    assert!(resolved
        .text
        .contains("No errors found for this time period."));
    let bad = app.get(&format!("{path}?status=gone")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.text.contains("Invalid status values: gone"),
        "{}",
        bad.text
    );
    app.cleanup().await;
}

async fn triage_from_the_page_is_recorded_with_the_signed_in_user(b: Backend) {
    let app = TestApp::new(b).await;
    let (path, key, _) = with_errors(&app, &[("email", "boom", 2)]).await;
    let list = app.get(&path).await;
    let detail_path = first_group(&path, &list.text);
    let error_id = detail_path.rsplit('/').next().unwrap().to_string();
    let detail = app.get(&detail_path).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text);
    assert!(detail.text.contains("Nobody has triaged this error yet."));
    assert!(detail.text.contains("20260301.1"), "affected versions");
    assert!(
        detail
            .text
            .contains("<figcaption>Version 20260301.1</figcaption>"),
        "occurrences over time, by version"
    );
    assert!(detail.text.contains("2 occurrences in"), "{}", detail.text);
    let csrf = detail.input_value("_csrf").unwrap();

    let resolved = app
        .post_form(
            &format!("{detail_path}/resolve"),
            &[("_csrf", &csrf), ("version", "20260302.1")],
        )
        .await;
    assert_eq!(resolved.status, StatusCode::SEE_OTHER);
    let api = app
        .api(
            Method::GET,
            &format!("/api/v1/errors/{error_id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(api.json()["status"], "resolved");
    assert_eq!(api.json()["resolvedInVersion"], "20260302.1");
    let admin = app
        .state
        .store
        .find_user_by_email("admin@taskgate.local")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(api.json()["resolvedBy"], admin.id.as_str());
    let page = app.get(&detail_path).await;
    assert!(page
        .text
        .contains("Marked as resolved in version 20260302.1."));
    assert!(
        page.text
            .contains("<td>resolved</td><td>admin@taskgate.local</td><td>dashboard_session</td>"),
        "{}",
        page.text
    );

    let unresolved = app
        .post_form(&format!("{detail_path}/unresolve"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(unresolved.status, StatusCode::SEE_OTHER);
    let ignored = app
        .post_form(
            &format!("{detail_path}/ignore"),
            &[("_csrf", &csrf), ("duration", "3600000")],
        )
        .await;
    assert_eq!(ignored.status, StatusCode::SEE_OTHER);
    let api = app
        .api(
            Method::GET,
            &format!("/api/v1/errors/{error_id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(api.json()["status"], "ignored");
    assert_eq!(api.json()["ignoredByUserId"], admin.id.as_str());
    let page = app.get(&detail_path).await;
    for action in ["resolved", "unresolved", "ignored"] {
        assert!(
            page.text
                .contains(&format!("<td>{action}</td><td>admin@taskgate.local</td>")),
            "{action}"
        );
    }
    app.cleanup().await;
}

async fn the_custom_ignore_form_shows_its_validation_error(b: Backend) {
    let app = TestApp::new(b).await;
    let (path, key, _) = with_errors(&app, &[("email", "boom", 1)]).await;
    let detail_path = first_group(&path, &app.get(&path).await.text);
    let error_id = detail_path.rsplit('/').next().unwrap().to_string();
    let csrf = app.csrf(&detail_path).await;
    let empty = app
        .post_form(
            &format!("{detail_path}/ignore"),
            &[("_csrf", &csrf), ("custom", "1"), ("reason", "noisy")],
        )
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(empty
        .text
        .contains("Give an occurrence rate, a total, or both"));
    assert!(
        empty.text.contains("<details id=\"custom-ignore\" open>"),
        "the form is shown open"
    );
    assert!(
        empty.text.contains("value=\"noisy\""),
        "what was typed is kept"
    );
    let negative = app
        .post_form(
            &format!("{detail_path}/ignore"),
            &[("_csrf", &csrf), ("custom", "1"), ("rate", "-2")],
        )
        .await;
    assert_eq!(negative.status, StatusCode::BAD_REQUEST);
    assert!(negative.text.contains("must be a number greater than 0"));
    let api = app
        .api(
            Method::GET,
            &format!("/api/v1/errors/{error_id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(api.json()["status"], "unresolved", "nothing changed");

    let ok = app
        .post_form(
            &format!("{detail_path}/ignore"),
            &[
                ("_csrf", &csrf),
                ("custom", "1"),
                ("total", "5"),
                ("reason", "noisy"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let page = app.get(&detail_path).await;
    assert!(
        page.text.contains("after 5 more occurrences"),
        "{}",
        page.text
    );
    assert!(page.text.contains("<em>noisy</em>"));
    app.cleanup().await;
}

async fn a_viewer_reads_errors_but_cannot_triage(b: Backend) {
    let app = TestApp::new(b).await;
    let (path, _, _) = with_errors(&app, &[("email", "boom", 1)]).await;
    let detail_path = first_group(&path, &app.get(&path).await.text);
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
    assert!(added.status.is_success());
    app.jar.lock().unwrap().clear();
    app.sign_in("viewer@example.com").await;
    let page = app.get(&detail_path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text.contains("Mark error as"));
    let csrf = page.input_value("_csrf").unwrap();
    let refused = app
        .post_form(&format!("{detail_path}/resolve"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get(&format!("{path}/error_zz")).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get(&format!("{path}/error_0123456789abcdef"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    app.cleanup().await;
}

crate::on_both!(
    the_list_counts_groups_with_filters_in_the_url_and_a_chart,
    triage_from_the_page_is_recorded_with_the_signed_in_user,
    the_custom_ignore_form_shows_its_validation_error,
    a_viewer_reads_errors_but_cannot_triage,
);
