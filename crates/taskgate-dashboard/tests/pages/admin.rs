//! The administrator's pages: users, the administrator flag, organizations, the audit log.

use axum::http::{Method, StatusCode};

use crate::common::{Backend, TestApp};

async fn an_administrator_creates_users_and_sets_the_flag(b: Backend) {
    let app = TestApp::new(b).await;
    app.sign_in("admin@taskgate.local").await;
    let home = app.get("/").await;
    assert!(home.text.contains("href=\"/admin\""));
    let csrf = app.csrf("/admin").await;
    let created = app
        .post_form(
            "/admin/users",
            &[
                ("_csrf", &csrf),
                ("email", "Ops@Example.com"),
                ("admin", "true"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.text);
    // Without the session's CSRF token, even an administrator's form is refused.
    let forged = app
        .post_form("/admin/users", &[("email", "forged@example.com")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(app
        .state
        .store
        .find_user_by_email("forged@example.com")
        .await
        .unwrap()
        .is_none());
    let page = app.get("/admin").await;
    assert!(page.text.contains("Created the user ops@example.com."));
    let ops = app
        .state
        .store
        .find_user_by_email("ops@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(ops.admin);
    let duplicate = app
        .post_form(
            "/admin/users",
            &[("_csrf", &csrf), ("email", "ops@example.com")],
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    let bad = app
        .post_form(
            "/admin/users",
            &[("_csrf", &csrf), ("email", "not an email")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Ops signs in elsewhere as an administrator; clearing the flag ends that session.
    let admin_jar = app.jar.lock().unwrap().clone();
    app.jar.lock().unwrap().clear();
    app.sign_in("ops@example.com").await;
    assert_eq!(app.get("/admin").await.status, StatusCode::OK);
    let ops_jar = app.jar.lock().unwrap().clone();
    *app.jar.lock().unwrap() = admin_jar;
    let cleared = app
        .post_form(
            &format!("/admin/users/{}/admin", ops.id),
            &[("_csrf", &csrf), ("admin", "false")],
        )
        .await;
    assert_eq!(cleared.status, StatusCode::SEE_OTHER);
    *app.jar.lock().unwrap() = ops_jar;
    let ended = app.get("/admin").await;
    assert_eq!(
        ended.status,
        StatusCode::SEE_OTHER,
        "the administrator session ended"
    );
    assert!(ended.location().starts_with("/login"));
    app.cleanup().await;
}

async fn the_audit_log_filters_by_action_and_names_the_actor(b: Backend) {
    let app = TestApp::new(b).await;
    app.user("ada@example.com").await;
    app.sign_in("admin@taskgate.local").await;
    let all = app.get("/admin/audit").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert!(
        all.text.contains("user.created") && all.text.contains("personal_access_token.created")
    );
    let users = app.get("/admin/audit?action=user.created").await;
    assert!(users.text.contains("user.created"));
    assert!(!users
        .text
        .contains("<td>personal_access_token.created</td>"));
    assert!(users
        .text
        .contains("<option value=\"user.created\" selected>"));
    assert!(
        users.text.contains("admin@taskgate.local"),
        "the actor by email"
    );
    let none = app
        .get("/admin/audit?action=user.created&from=2099-01-01")
        .await;
    assert!(none.text.contains("No audit events match these filters."));
    assert_eq!(
        app.get("/admin/audit?action=nope").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/admin/audit?from=yesterday").await.status,
        StatusCode::BAD_REQUEST
    );
    app.cleanup().await;
}

async fn the_admin_pages_and_routes_refuse_everyone_else(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, ada) = app.user("ada@example.com").await;
    app.sign_in("ada@example.com").await;
    assert_eq!(app.get("/admin").await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/admin/audit").await.status, StatusCode::FORBIDDEN);
    let csrf = app.csrf("/account/tokens").await;
    let refused = app
        .post_form(
            "/admin/users",
            &[("_csrf", &csrf), ("email", "x@example.com")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let api = app
        .api(Method::GET, "/admin/api/v1/users", Some(&ada), None)
        .await;
    assert_eq!(api.status, StatusCode::FORBIDDEN);
    let listed = app
        .api(
            Method::GET,
            "/admin/api/v1/users",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json().as_array().map(Vec::len), Some(2));
    let orgs = app
        .api(
            Method::GET,
            "/admin/api/v1/orgs",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(orgs.status, StatusCode::OK);
    let me = app
        .state
        .store
        .find_user_by_email("admin@taskgate.local")
        .await
        .unwrap()
        .unwrap();
    let own = app
        .api(
            Method::PATCH,
            &format!("/admin/api/v1/users/{}", me.id),
            Some(&app.admin_token),
            Some(serde_json::json!({ "admin": false })),
        )
        .await;
    assert_eq!(
        own.status,
        StatusCode::BAD_REQUEST,
        "an administrator keeps their own flag"
    );
    app.cleanup().await;
}

async fn an_administrator_sees_and_changes_an_organizations_rate_limit(b: Backend) {
    let app = TestApp::new(b).await;
    let (slug, _) = app.org_and_project(&app.admin_token).await;
    let org = app
        .state
        .store
        .list_organizations()
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.slug == slug)
        .unwrap();
    app.sign_in("admin@taskgate.local").await;
    let path = format!("/admin/orgs/{}/rate-limit", org.id);
    assert!(app.get("/admin").await.text.contains(&path));
    let page = app.get(&path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains(
        "The server's default</strong>: sustains 25 requests per second, bursts to 750."
    ));
    let csrf = app.csrf(&path).await;
    let saved = app
        .post_form(
            &path,
            &[
                ("_csrf", &csrf),
                ("refillRate", "5"),
                ("interval", "1m"),
                ("maxTokens", "20"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let page = app.get(&path).await;
    assert!(page
        .text
        .contains("Saved: the organization now sustains 5 requests per minute, bursts to 20."));
    assert!(page.text.contains("This organization's own limit"));
    let api = app
        .api(
            Method::GET,
            &format!("/admin/api/v1{}", &path[6..]),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(api.json()["config"]["maxTokens"], 20);
    let refused = app
        .post_form(
            &path,
            &[
                ("_csrf", &csrf),
                ("refillRate", "5"),
                ("interval", "1m"),
                ("maxTokens", "2"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.text.contains("maxTokens"), "{}", refused.text);
    let reset = app
        .post_form(&format!("{path}/reset"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(reset.status, StatusCode::SEE_OTHER);
    let page = app.get(&path).await;
    assert!(page.text.contains("back on the server's default limit"));
    assert!(page.text.contains("The server's default</strong>"));
    let audit = app
        .get("/admin/audit?action=organization.rate_limit_changed")
        .await;
    assert!(
        audit
            .text
            .contains("default → sustains 5 requests per minute, bursts to 20"),
        "{}",
        audit.text
    );
    // Someone else cannot see or change it.
    app.jar.lock().unwrap().clear();
    app.user("ada@example.com").await;
    app.sign_in("ada@example.com").await;
    assert_eq!(app.get(&path).await.status, StatusCode::FORBIDDEN);
    app.cleanup().await;
}

crate::on_both!(
    an_administrator_sees_and_changes_an_organizations_rate_limit,
    an_administrator_creates_users_and_sets_the_flag,
    the_audit_log_filters_by_action_and_names_the_actor,
    the_admin_pages_and_routes_refuse_everyone_else,
);
