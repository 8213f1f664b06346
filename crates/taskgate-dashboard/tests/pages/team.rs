//! The team page: members and roles, as the role rules allow.

use axum::http::StatusCode;

use crate::common::{Backend, TestApp};

/// The action ending with `suffix` of the first form in the row of `email`.
fn action_for(text: &str, email: &str, suffix: &str) -> String {
    let row = text.find(&format!("<th scope=\"row\">{email}")).unwrap();
    text[row..]
        .split("action=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .find(|a| a.ends_with(suffix))
        .unwrap()
        .to_string()
}

async fn an_owner_adds_changes_and_removes_members(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, owner) = app.user("owner@example.com").await;
    app.user("dev@example.com").await;
    let (org, _) = app.org_and_project(&owner).await;
    app.sign_in("owner@example.com").await;
    let path = format!("/orgs/{org}/settings/team");
    let csrf = app.csrf(&path).await;
    let added = app
        .post_form(
            &path,
            &[
                ("_csrf", &csrf),
                ("email", "dev@example.com"),
                ("role", "developer"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.text);
    let page = app.get(&path).await;
    assert!(page.text.contains("Added dev@example.com as developer."));
    let role_action = action_for(&page.text, "dev@example.com", "/role");
    let changed = app
        .post_form(&role_action, &[("_csrf", &csrf), ("role", "viewer")])
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER);
    assert!(app
        .get(&path)
        .await
        .text
        .contains("dev@example.com is now viewer."));
    let again = app
        .post_form(
            &path,
            &[
                ("_csrf", &csrf),
                ("email", "dev@example.com"),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let nobody = app
        .post_form(
            &path,
            &[
                ("_csrf", &csrf),
                ("email", "nobody@example.com"),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    // The last owner cannot step down.
    let page = app.get(&path).await;
    let own = action_for(&page.text, "owner@example.com", "/role");
    let demote = app
        .post_form(&own, &[("_csrf", &csrf), ("role", "admin")])
        .await;
    assert_eq!(demote.status, StatusCode::CONFLICT);
    assert!(demote.text.contains("at least one owner"));
    let remove = action_for(&page.text, "dev@example.com", "/remove");
    let removed = app.post_form(&remove, &[("_csrf", &csrf)]).await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    let page = app.get(&path).await;
    assert!(page.text.contains("Removed dev@example.com."));
    assert!(!page.text.contains("<th scope=\"row\">dev@example.com"));
    app.cleanup().await;
}

async fn members_below_admin_see_the_team_but_change_nothing(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, owner) = app.user("owner@example.com").await;
    app.user("dev@example.com").await;
    let (org, _) = app.org_and_project(&owner).await;
    app.sign_in("owner@example.com").await;
    let path = format!("/orgs/{org}/settings/team");
    let csrf = app.csrf(&path).await;
    app.post_form(
        &path,
        &[
            ("_csrf", &csrf),
            ("email", "dev@example.com"),
            ("role", "developer"),
        ],
    )
    .await;
    app.jar.lock().unwrap().clear();
    app.sign_in("dev@example.com").await;
    let page = app.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("owner@example.com"));
    assert!(!page.text.contains("Add a member") && !page.text.contains("/remove"));
    let csrf = page.input_value("_csrf").unwrap();
    let refused = app
        .post_form(
            &path,
            &[
                ("_csrf", &csrf),
                ("email", "owner@example.com"),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    app.user("stranger@example.com").await;
    app.jar.lock().unwrap().clear();
    app.sign_in("stranger@example.com").await;
    assert_eq!(app.get(&path).await.status, StatusCode::FORBIDDEN);
    app.cleanup().await;
}

crate::on_both!(
    an_owner_adds_changes_and_removes_members,
    members_below_admin_see_the_team_but_change_nothing,
);
