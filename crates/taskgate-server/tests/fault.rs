//! A database outage under a running server (PostgreSQL behind a TCP proxy the test can cut):
//! cached credentials keep working, anything that needs the database is a 503 (never a 401),
//! and everything recovers when the database returns.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions report failures by panicking"
)]

#[path = "http/common.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{json, Value};
use taskgate_config::Config;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards 127.0.0.1:<port> to PostgreSQL until stopped; stopping drops every connection,
/// freezing holds every byte (a database that hangs without closing anything).
struct Proxy {
    port: u16,
    accept: Option<JoinHandle<()>>,
    conns: Arc<parking_lot::Mutex<Vec<JoinHandle<()>>>>,
    frozen: tokio::sync::watch::Sender<bool>,
}

/// Copies `from` to `to`, holding bytes while `frozen`.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.wait_for(|f| !*f).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Proxy {
    async fn start(port: u16, upstream: String) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let conns: Arc<parking_lot::Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let tracked = conns.clone();
        let (frozen, frozen_rx) = tokio::sync::watch::channel(false);
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let frozen = frozen_rx.clone();
                tracked.lock().push(tokio::spawn(async move {
                    if let Ok(out) = TcpStream::connect(upstream).await {
                        let (in_r, in_w) = inbound.into_split();
                        let (out_r, out_w) = out.into_split();
                        tokio::join!(
                            forward(in_r, out_w, frozen.clone()),
                            forward(out_r, in_w, frozen)
                        );
                    }
                }));
            }
        });
        Proxy {
            port,
            accept: Some(accept),
            conns,
            frozen,
        }
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }

    fn stop(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
        }
        for c in self.conns.lock().drain(..) {
            c.abort();
        }
    }
}

async fn send(
    router: &axum::Router,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let r = common::call(router, method, path, token, body).await;
    (r.status, r.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_keeps_cached_keys_and_recovers() {
    let url = std::env::var("TASKGATE_TEST_DATABASE_URL")
        .expect("TASKGATE_TEST_DATABASE_URL must name a PostgreSQL database");
    let (direct, schema) = taskgate_store_postgres::testing::fresh_schema(&url)
        .await
        .unwrap();
    let upstream = format!("{}:{}", direct.get_host(), direct.get_port());
    let mut proxy = Proxy::start(0, upstream.clone()).await;
    let opts = direct.port(proxy.port).host("127.0.0.1");
    let store = taskgate_store_postgres::PostgresStore::connect_with(
        opts,
        None,
        true,
        format!("tg_{schema}"),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (router, state) = common::node(store, Config::for_tests(dir.path())).await;
    let admin = common::admin_token(dir.path());

    let (_, org) = send(
        &router,
        "POST",
        "/api/v1/orgs",
        &admin,
        Some(json!({ "title": "Fault" })),
    )
    .await;
    let slug = org["slug"].as_str().unwrap();
    let (_, project) = send(
        &router,
        "POST",
        &format!("/api/v1/orgs/{slug}/projects"),
        &admin,
        Some(json!({ "name": "P" })),
    )
    .await;
    let project = project["externalRef"].as_str().unwrap();
    let (_, env) = send(
        &router,
        "GET",
        &format!("/api/v1/projects/{project}/prod"),
        &admin,
        None,
    )
    .await;
    let old_key = env["apiKey"].as_str().unwrap().to_string();
    let (_, rotated) = send(
        &router,
        "POST",
        &format!("/api/v1/projects/{project}/prod/regenerate-api-key"),
        &admin,
        None,
    )
    .await;
    let new_key = rotated["apiKey"].as_str().unwrap().to_string();
    for k in [&old_key, &new_key] {
        assert_eq!(
            send(&router, "GET", "/api/v1/auth/credential", k, None)
                .await
                .0,
            StatusCode::OK
        );
    }

    proxy.stop();
    // Cached keys, current and in their grace, need no database.
    for k in [&old_key, &new_key] {
        assert_eq!(
            send(&router, "GET", "/api/v1/auth/credential", k, None)
                .await
                .0,
            StatusCode::OK
        );
    }
    // An uncached key needs the database: 503, never 401.
    let (status, body) = send(
        &router,
        "GET",
        "/api/v1/auth/credential",
        "tr_prod_uncached0000000000000000",
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("Service unavailable"))
    );
    let (status, _) = send(&router, "GET", "/readyz", &admin, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // The database returns on the same address: the server recovers without a restart.
    let _proxy = Proxy::start(proxy.port, upstream).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = send(
            &router,
            "GET",
            "/api/v1/auth/credential",
            "tr_prod_uncached0000000000000000",
            None,
        )
        .await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        send(&router, "GET", "/readyz", &admin, None).await.0,
        StatusCode::OK
    );
    state.store.close().await;
    drop(schema);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_database_answers_503_within_the_request_deadline() {
    let url = std::env::var("TASKGATE_TEST_DATABASE_URL")
        .expect("TASKGATE_TEST_DATABASE_URL must name a PostgreSQL database");
    let (direct, schema) = taskgate_store_postgres::testing::fresh_schema(&url)
        .await
        .unwrap();
    let upstream = format!("{}:{}", direct.get_host(), direct.get_port());
    let proxy = Proxy::start(0, upstream).await;
    let opts = direct.port(proxy.port).host("127.0.0.1");
    let store = taskgate_store_postgres::PostgresStore::connect_with(
        opts,
        None,
        true,
        format!("tg_{schema}"),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    config.server.timeouts.request = Duration::from_secs(2);
    let (router, state) = common::node(store, config).await;
    let admin = common::admin_token(dir.path());
    assert_eq!(
        send(&router, "GET", "/api/v1/orgs", &admin, None).await.0,
        StatusCode::OK
    );

    proxy.freeze(true);
    // The token is cached; listing needs the database, which never answers.
    let began = Instant::now();
    let (status, body) = send(&router, "GET", "/api/v1/orgs", &admin, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("request_timeout"))
    );
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "answered after {:?}",
        began.elapsed()
    );

    proxy.freeze(false);
    let deadline = Instant::now() + Duration::from_secs(20);
    while send(&router, "GET", "/api/v1/orgs", &admin, None).await.0 != StatusCode::OK {
        assert!(Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    state.store.close().await;
    drop(schema);
}
