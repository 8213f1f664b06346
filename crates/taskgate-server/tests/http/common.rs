//! The HTTP test harness: an app per test on a fresh SQLite file or PostgreSQL schema, driven
//! in-process through the router with a manual clock.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use taskgate_config::Config;
use taskgate_core::time::{Clock, ManualClock};
use taskgate_server::state::AppState;
use taskgate_store::Store;
use tower::ServiceExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `<case>_sqlite` and `<case>_postgres` tests from `async fn <case>(Backend)`.
#[macro_export]
macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() { super::$case($crate::common::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() { super::$case($crate::common::Backend::Postgres).await }
            )*
        }
    };
}

pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub admin_token: String,
    dir: tempfile::TempDir,
    /// Dropped after the fields above, so the store is gone before its schema is.
    pg_schema: Option<taskgate_store_postgres::testing::TestSchema>,
}

/// Sends one request through `router` with a bearer token and, when given, a JSON body: for
/// tests that build their own routers (several nodes on one database, a database behind a
/// proxy).
pub async fn call(
    router: &Router,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Response {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.map(|b| Body::from(b.to_string())).unwrap_or_default())
        .unwrap();
    TestApp::send_via(router, req).await
}

/// A node on `store` with `config` and the system clock, as `taskgate serve` builds one: its
/// router and state. For tests that make their own stores (several nodes on one database, a
/// database behind a proxy); [`TestApp`] is the rest's.
pub async fn node(store: impl Store + 'static, config: Config) -> (Router, AppState) {
    let clock = Arc::new(taskgate_core::time::SystemClock);
    let state = taskgate_server::build_state_with_store(config, clock, Arc::new(store))
        .await
        .unwrap();
    (taskgate_server::router::router(state.clone()), state)
}

/// The admin token a node wrote into its data directory `dir`.
pub fn admin_token(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_string()
}

/// Waits until `state` has `keys` keys watched: a long poll or stream reader has registered,
/// so a change made now reaches it. Fails after 10 s.
pub async fn until_watching(state: &AppState, keys: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while state.engine.watchers().len() < keys {
        assert!(
            std::time::Instant::now() < deadline,
            "no reader started watching"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

pub struct Response {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    pub async fn new(backend: Backend) -> TestApp {
        Self::with_config(backend, |_| {}).await
    }

    pub async fn with_config(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
        if std::env::var("TEST_LOG").is_ok() {
            let _ = taskgate_server::telemetry::init_logging();
        }
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        tweak(&mut config);
        let clock = Arc::new(ManualClock::new(t0()));
        let (store, pg_schema): (Arc<dyn Store>, _) = match backend {
            Backend::Sqlite => {
                let s = taskgate_store_sqlite::SqliteStore::open(&dir.path().join("taskgate.db"))
                    .await
                    .unwrap();
                (Arc::new(s), None)
            }
            Backend::Postgres => {
                let (s, schema) = taskgate_store_postgres::testing::fresh_schema_store()
                    .await
                    .unwrap()
                    .expect("TASKGATE_TEST_DATABASE_URL must name a PostgreSQL database for the PostgreSQL tests");
                (Arc::new(s), Some(schema))
            }
        };
        let state =
            taskgate_server::build_state_with_store(config, clock.clone() as Arc<dyn Clock>, store)
                .await
                .unwrap();
        let admin_token = admin_token(dir.path());
        TestApp {
            router: taskgate_server::router::router(state.clone()),
            state,
            clock,
            admin_token,
            dir,
            pg_schema,
        }
    }

    /// Waits until the filter of live keys has taken in every change made so far.
    pub async fn key_filter_settled(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !self.state.auth.key_filter.settled() {
            assert!(
                std::time::Instant::now() < deadline,
                "the key filter never settled"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Closes the store and drops the test's PostgreSQL schema. A test that panics before
    /// calling this still loses its schema, when the app is dropped.
    pub async fn cleanup(self) {
        self.state.store.close().await;
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    pub async fn send(&self, req: Request<Body>) -> Response {
        Self::send_via(&self.router, req).await
    }

    /// Sends through another router (built from a modified state).
    pub async fn send_via(router: &Router, req: Request<Body>) -> Response {
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Response {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token), None, &[])
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(token), Some(body), &[])
            .await
    }

    /// A user with a personal access token.
    pub async fn user(&self, email: &str) -> (String, String) {
        let r = self
            .post(
                "/admin/api/v1/users",
                &self.admin_token,
                json!({ "email": email }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let id = r.body["id"].as_str().unwrap().to_string();
        let r = self
            .post(
                &format!("/admin/api/v1/users/{id}/personal-access-tokens"),
                &self.admin_token,
                json!({ "name": "test" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        (id, r.body["token"].as_str().unwrap().to_string())
    }

    /// An org owned by `token`'s user, with one project. Returns (org slug, project ref).
    pub async fn org_and_project(&self, token: &str) -> (String, String) {
        let r = self
            .post("/api/v1/orgs", token, json!({ "title": "Acme" }))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let slug = r.body["slug"].as_str().unwrap().to_string();
        let r = self
            .post(
                &format!("/api/v1/orgs/{slug}/projects"),
                token,
                json!({ "name": "Web" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        (slug, r.body["externalRef"].as_str().unwrap().to_string())
    }

    /// The secret key of `env` (dev, staging, prod, preview).
    pub async fn env_key(&self, token: &str, project: &str, env: &str) -> String {
        let r = self
            .get(&format!("/api/v1/projects/{project}/{env}"), token)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body["apiKey"].as_str().unwrap().to_string()
    }

    /// Rotates `env`'s key; returns (new key, revoked key id).
    pub async fn rotate(&self, token: &str, project: &str, env: &str) -> (String, String) {
        let r = self
            .post(
                &format!("/api/v1/projects/{project}/{env}/regenerate-api-key"),
                token,
                json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        (
            r.body["apiKey"].as_str().unwrap().to_string(),
            r.body["revokedApiKey"]["id"].as_str().unwrap().to_string(),
        )
    }

    /// A setup most key tests need: an admin-owned org/project and its prod key.
    pub async fn project_with_key(&self, env: &str) -> (String, String) {
        let token = self.admin_token.clone();
        let (_, project) = self.org_and_project(&token).await;
        let key = self.env_key(&token, &project, env).await;
        (project, key)
    }

    /// A cheap route that needs an environment credential (secret key or JWT).
    pub async fn whoami_env(&self, credential: &str) -> Response {
        self.request(
            Method::POST,
            "/api/v1/auth/jwt/claims",
            Some(credential),
            None,
            &[],
        )
        .await
    }
}
