//! Platform administration routes.

use axum::http::StatusCode;
use serde_json::json;

use crate::common::{Backend, TestApp};
use crate::on_both;

async fn only_administrators_manage_users(b: Backend) {
    let app = TestApp::new(b).await;
    let admin = app.admin_token.clone();
    let r = app
        .post(
            "/admin/api/v1/users",
            &admin,
            json!({ "email": "Eve@Example.com", "name": "Eve" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        (r.body["email"].as_str(), r.body["admin"].as_bool()),
        (Some("eve@example.com"), Some(false))
    );
    let r = app
        .post(
            "/admin/api/v1/users",
            &admin,
            json!({ "email": "eve@example.com" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = app
        .post(
            "/admin/api/v1/users",
            &admin,
            json!({ "email": "not-an-email" }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Invalid request body"))
    );
    let r = app
        .post(
            "/admin/api/v1/users",
            &admin,
            json!({ "email": "x@example.com", "extra": 1 }),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused on taskgate's own routes"
    );
    let r = app
        .post(
            "/admin/api/v1/users/nobody/personal-access-tokens",
            &admin,
            json!({ "name": "x" }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("User not found"))
    );

    let (_, user) = app.user("frank@example.com").await;
    let r = app
        .post(
            "/admin/api/v1/users",
            &user,
            json!({ "email": "g@example.com" }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (
            StatusCode::FORBIDDEN,
            Some("You must be an admin to perform this action")
        )
    );
    let r = app.get("/admin/api/v1/audit-events", &user).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    app.cleanup().await;
}

async fn the_audit_log_pages_and_filters(b: Backend) {
    let app = TestApp::new(b).await;
    let admin = app.admin_token.clone();
    let (project, _) = app.project_with_key("prod").await;
    for _ in 0..3 {
        app.rotate(&admin, &project, "prod").await;
    }
    let r = app
        .get(
            "/admin/api/v1/audit-events?action=api_key.rotated&limit=2",
            &admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let page1 = r.body["data"].as_array().unwrap().clone();
    assert_eq!(page1.len(), 2);
    let cursor = r.body["nextCursor"].as_str().unwrap().to_string();
    let r = app
        .get(
            &format!("/admin/api/v1/audit-events?action=api_key.rotated&limit=2&cursor={cursor}"),
            &admin,
        )
        .await;
    let page2 = r.body["data"].as_array().unwrap().clone();
    assert_eq!(page2.len(), 1);
    assert!(r.body.get("nextCursor").is_none(), "last page");
    assert!(
        page1[1]["seq"].as_i64() > page2[0]["seq"].as_i64(),
        "newest first"
    );
    for bad in [
        "limit=0",
        "limit=500",
        "cursor=abc",
        "from=yesterday",
        "bogus=1",
    ] {
        let r = app
            .get(&format!("/admin/api/v1/audit-events?{bad}"), &admin)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let r = app
        .get(
            "/admin/api/v1/audit-events?from=2030-01-01T00:00:00Z",
            &admin,
        )
        .await;
    assert_eq!(r.body["data"].as_array().map(Vec::len), Some(0));
    app.cleanup().await;
}

async fn an_existing_admin_token_file_is_never_overwritten(b: Backend) {
    let app = TestApp::new(b).await;
    let file = app.data_dir().join("admin-token");
    let before = std::fs::read_to_string(&file).unwrap();
    // The same data dir, another (empty) database: as when a start on the other backend
    // follows a first one.
    let other_dir = tempfile::tempdir().unwrap();
    let (other, schema): (std::sync::Arc<dyn taskgate_store::Store>, _) = match b {
        Backend::Sqlite => (
            std::sync::Arc::new(
                taskgate_store_sqlite::SqliteStore::open(&other_dir.path().join("t.db"))
                    .await
                    .unwrap(),
            ),
            None,
        ),
        Backend::Postgres => {
            let (s, schema) = taskgate_store_postgres::testing::fresh_schema_store()
                .await
                .unwrap()
                .unwrap();
            (std::sync::Arc::new(s), Some(schema))
        }
    };
    let written = taskgate_server::bootstrap::bootstrap_admin(&*other, &app.state.config)
        .await
        .unwrap()
        .expect("the new database got its administrator");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        before,
        "left as it was"
    );
    assert_eq!(written, app.data_dir().join("admin-token.new"));
    let token = std::fs::read_to_string(&written).unwrap();
    assert!(token.trim().starts_with("tr_pat_") && token != before);
    // And the first database's administrator still gets in with the first file.
    let r = app.get("/api/v1/orgs", before.trim()).await;
    assert_eq!(r.status, StatusCode::OK);
    other.close().await;
    drop(schema);
    app.cleanup().await;
}

on_both!(
    an_existing_admin_token_file_is_never_overwritten,
    only_administrators_manage_users,
    the_audit_log_pages_and_filters
);
