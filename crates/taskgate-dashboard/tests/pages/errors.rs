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

/// The ids a list page offers to check, in its order.
fn checkable_ids(text: &str) -> Vec<String> {
    text.split("name=\"id\" value=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .collect()
}

/// The administrator the tests sign in as.
async fn admin(app: &TestApp) -> taskgate_store::User {
    app.state
        .store
        .find_user_by_email("admin@taskgate.local")
        .await
        .unwrap()
        .unwrap()
}

/// An error group's status over the API.
async fn status_of(app: &TestApp, key: &str, error_id: &str) -> serde_json::Value {
    app.api(
        Method::GET,
        &format!("/api/v1/errors/{error_id}"),
        Some(key),
        None,
    )
    .await
    .json()
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
    let admin = admin(&app).await;
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
    let list = app.get(&path).await;
    assert!(
        checkable_ids(&list.text).is_empty() && !list.text.contains("Mark the selected"),
        "no bulk actions for a viewer"
    );
    let page = app.get(&detail_path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text.contains("Mark error as"));
    let csrf = page.input_value("_csrf").unwrap();
    let refused = app
        .post_form(&format!("{detail_path}/resolve"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let error_id = detail_path.rsplit('/').next().unwrap();
    let bulk = app
        .post_form(
            &format!("{path}/bulk"),
            &[("_csrf", &csrf), ("id", error_id), ("action", "resolve")],
        )
        .await;
    assert_eq!(bulk.status, StatusCode::FORBIDDEN);
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

async fn checked_rows_are_triaged_together_and_the_list_keeps_its_filters(b: Backend) {
    let app = TestApp::new(b).await;
    let (path, key, _) = with_errors(
        &app,
        &[
            ("email", "boom", 3),
            ("resize", "bad size", 2),
            ("pdf", "no font", 1),
        ],
    )
    .await;
    let list = app.get(&format!("{path}?status=unresolved")).await;
    let ids = checkable_ids(&list.text);
    assert_eq!(ids.len(), 3, "a checkbox per row: {}", list.text);
    assert!(list.text.contains("Mark the selected errors as…"));
    let csrf = list.input_value("_csrf").unwrap();

    let ignored = app
        .post_form(
            &format!("{path}/bulk"),
            &[
                ("_csrf", &csrf),
                ("status", "unresolved"),
                ("id", &ids[0]),
                ("id", &ids[1]),
                ("action", "ignore-24h"),
            ],
        )
        .await;
    assert_eq!(ignored.status, StatusCode::SEE_OTHER);
    assert_eq!(
        ignored.location(),
        format!("{path}?status=unresolved"),
        "back to the same filters"
    );
    let admin = admin(&app).await;
    for id in &ids[..2] {
        let group = status_of(&app, &key, id).await;
        assert_eq!(group["status"], "ignored", "{id}");
        assert_eq!(group["ignoredByUserId"], admin.id.as_str());
        assert!(group["ignoredUntil"].is_string(), "24 hours, not forever");
    }
    assert_eq!(status_of(&app, &key, &ids[2]).await["status"], "unresolved");
    let after = app.get(ignored.location()).await;
    assert!(
        after.text.contains("Marked 2 errors as ignored."),
        "{}",
        after.text
    );
    assert_eq!(
        checkable_ids(&after.text),
        vec![ids[2].clone()],
        "the filtered list no longer shows them"
    );
    let detail = app.get(&format!("{path}/{}", ids[0])).await;
    assert!(detail
        .text
        .contains("<td>ignored</td><td>admin@taskgate.local</td><td>dashboard_session</td>"));

    // A group that is gone is counted, not an error; the rest still change.
    let gone = "error_0123456789abcdef";
    let resolved = app
        .post_form(
            &format!("{path}/bulk"),
            &[
                ("_csrf", &csrf),
                ("id", &ids[0]),
                ("id", &ids[2]),
                ("id", gone),
                ("action", "resolve"),
            ],
        )
        .await;
    assert_eq!(resolved.location(), path);
    let after = app.get(&path).await;
    assert!(
        after
            .text
            .contains("Marked 2 errors as resolved. 1 selected error no longer exists."),
        "{}",
        after.text
    );
    assert_eq!(status_of(&app, &key, &ids[0]).await["status"], "resolved");
    assert_eq!(status_of(&app, &key, &ids[2]).await["status"], "resolved");
    assert_eq!(status_of(&app, &key, &ids[1]).await["status"], "ignored");

    let unresolved = app
        .post_form(
            &format!("{path}/bulk"),
            &[("_csrf", &csrf), ("id", &ids[0]), ("action", "unresolve")],
        )
        .await;
    assert_eq!(unresolved.status, StatusCode::SEE_OTHER);
    assert_eq!(status_of(&app, &key, &ids[0]).await["status"], "unresolved");
    app.cleanup().await;
}

async fn a_bulk_action_refuses_bad_forms_before_changing_anything(b: Backend) {
    let app = TestApp::new(b).await;
    let (path, key, _) = with_errors(&app, &[("email", "boom", 1)]).await;
    let list = app.get(&path).await;
    let id = checkable_ids(&list.text).remove(0);
    let csrf = list.input_value("_csrf").unwrap();
    let bulk = format!("{path}/bulk");

    let no_csrf = app
        .post_form(&bulk, &[("id", &id), ("action", "resolve")])
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    let unknown = app
        .post_form(
            &bulk,
            &[("_csrf", &csrf), ("id", &id), ("action", "ignore-2h")],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.text.contains("Choose one of the offered actions."));
    let malformed = app
        .post_form(
            &bulk,
            &[
                ("_csrf", &csrf),
                ("id", &id),
                ("id", "error_zz"),
                ("action", "resolve"),
            ],
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let many: Vec<String> = (0..101).map(|i| format!("error_{i:016x}")).collect();
    let mut fields = vec![("_csrf", csrf.as_str()), ("action", "resolve")];
    fields.extend(many.iter().map(|id| ("id", id.as_str())));
    let too_many = app.post_form(&bulk, &fields).await;
    assert_eq!(too_many.status, StatusCode::BAD_REQUEST);
    assert!(too_many.text.contains("Select at most 100 errors at once."));
    assert_eq!(
        status_of(&app, &key, &id).await["status"],
        "unresolved",
        "nothing changed"
    );

    let none = app
        .post_form(&bulk, &[("_csrf", &csrf), ("action", "resolve")])
        .await;
    assert_eq!(none.status, StatusCode::SEE_OTHER);
    assert!(app
        .get(none.location())
        .await
        .text
        .contains("Select at least one error first."));
    app.cleanup().await;
}

crate::on_both!(
    the_list_counts_groups_with_filters_in_the_url_and_a_chart,
    triage_from_the_page_is_recorded_with_the_signed_in_user,
    the_custom_ignore_form_shows_its_validation_error,
    a_viewer_reads_errors_but_cannot_triage,
    checked_rows_are_triaged_together_and_the_list_keeps_its_filters,
    a_bulk_action_refuses_bad_forms_before_changing_anything,
);
