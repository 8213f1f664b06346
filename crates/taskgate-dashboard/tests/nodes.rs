//! Sessions are rows in the database: a cookie from one node works on another node of the
//! same database and after a restart, and signing out on one ends it on all.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers report failures by panicking"
)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use taskgate_config::Config;
use taskgate_core::time::SystemClock;
use taskgate_server::state::AppState;
use taskgate_store::Store;
use tower::ServiceExt;

async fn node(store: impl Store + 'static, config: Config) -> (Router, AppState) {
    let state =
        taskgate_server::build_state_with_store(config, Arc::new(SystemClock), Arc::new(store))
            .await
            .unwrap();
    let router = taskgate_server::router::router_with(state.clone(), taskgate_dashboard::pages());
    (router, state)
}

/// GET `path` with `cookie`: the status and the `Set-Cookie` of the session, if any.
async fn get(router: &Router, path: &str, cookie: &str) -> (StatusCode, Option<String>) {
    let req = Request::builder()
        .uri(path)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let session = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tg_session="))
        .map(|v| v.split(';').next().unwrap_or("").to_string());
    (resp.status(), session)
}

/// Signs in on `router` with a link issued through `state`: the session cookie.
async fn sign_in(router: &Router, state: &AppState) -> String {
    let link = taskgate_dashboard::issue_link(
        &*state.store,
        &state.config,
        "http://127.0.0.1:3030",
        "admin@taskgate.local",
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let path = secrecy::ExposeSecret::expose_secret(&link)
        .trim_start_matches("http://127.0.0.1:3030")
        .to_string();
    let (status, cookie) = get(router, &path, "").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    cookie.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_works_on_every_node_and_ends_on_all() {
    let url = std::env::var("TASKGATE_TEST_DATABASE_URL")
        .expect("TASKGATE_TEST_DATABASE_URL must name a PostgreSQL database");
    let (opts, schema) = taskgate_store_postgres::testing::fresh_schema(&url)
        .await
        .unwrap();
    let channel = format!("tg_{schema}");
    // One data directory: the nodes share the session secret, as a deployment must.
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let store = taskgate_store_postgres::PostgresStore::connect_with(
            opts.clone(),
            None,
            true,
            channel.clone(),
        )
        .await
        .unwrap();
        nodes.push(node(store, Config::for_tests(dir.path())).await);
    }
    let ((a, a_state), (b, b_state)) = (&nodes[0], &nodes[1]);
    let cookie = sign_in(a, a_state).await;
    assert_eq!(
        get(b, "/", &cookie).await.0,
        StatusCode::OK,
        "node B knows node A's session"
    );
    // Sign out on B (the form's CSRF token is the session's; the dashboard derives it).
    let token = cookie
        .trim_start_matches("tg_session=")
        .rsplit_once('.')
        .unwrap()
        .0
        .to_string();
    let csrf = taskgate_core::signin::csrf_token(
        secrecy::ExposeSecret::expose_secret(&*b_state.session_secret),
        &token,
    );
    let req = Request::builder()
        .method("POST")
        .uri("/logout")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("_csrf={csrf}")))
        .unwrap();
    assert_eq!(
        b.clone().oneshot(req).await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        get(a, "/", &cookie).await.0,
        StatusCode::SEE_OTHER,
        "ended on node A too"
    );
    for (_, state) in &nodes {
        state.store.close().await;
    }
    drop(schema);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("taskgate.db");
    let store = taskgate_store_sqlite::SqliteStore::open(&db).await.unwrap();
    let (router, state) = node(store, Config::for_tests(dir.path())).await;
    let cookie = sign_in(&router, &state).await;
    assert_eq!(get(&router, "/", &cookie).await.0, StatusCode::OK);
    state.store.close().await;
    drop((router, state));
    let store = taskgate_store_sqlite::SqliteStore::open(&db).await.unwrap();
    let (router, state) = node(store, Config::for_tests(dir.path())).await;
    assert_eq!(
        get(&router, "/", &cookie).await.0,
        StatusCode::OK,
        "the restarted server knows the session"
    );
    state.store.close().await;
}
