//! The harness the server's HTTP suite and the dashboard's page suite share: an app per test
//! on a fresh SQLite file or PostgreSQL schema (when `TASKGATE_TEST_DATABASE_URL` names one),
//! driven in-process through the router with a [`ManualClock`], and the fixtures both suites
//! make through the API (users, organizations and projects, environment keys).
//!
//! Each suite wraps [`TestApp`] with the requests it makes (JSON calls for the API, a cookie
//! jar for the dashboard) and generates every case on both backends with [`on_both!`].
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test harness reports a broken set-up by panicking"
)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use taskgate_config::Config;
use taskgate_core::time::{Clock, ManualClock};
use taskgate_server::state::AppState;
use taskgate_store::Store;
use tower::ServiceExt;

/// Which database a case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `<case>` tests in modules `sqlite` and `postgres` from `async fn <case>(Backend)`.
#[macro_export]
macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() { super::$case($crate::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() { super::$case($crate::Backend::Postgres).await }
            )*
        }
    };
}

/// The moment every test app's clock starts at.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().unwrap()
}

/// An answer, as received.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Bytes,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).to_string()
    }

    /// The body as JSON, `null` when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

/// One app on its own database, with a manual clock and the administrator's token.
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub admin_token: String,
    dir: tempfile::TempDir,
    /// Held for its drop, after the fields above: the store is gone before its schema is.
    _pg_schema: Option<taskgate_store_postgres::testing::TestSchema>,
}

impl TestApp {
    /// An app on `backend` with the test configuration as `tweak` leaves it, serving the API
    /// and `pages` (the dashboard's, or none).
    pub async fn start(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
        pages: Router<AppState>,
    ) -> TestApp {
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
            router: taskgate_server::router::router_with(state.clone(), pages),
            state,
            clock,
            admin_token,
            dir,
            _pg_schema: pg_schema,
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

    /// Sends `req` through the app's router.
    pub async fn send(&self, req: Request<Body>) -> Answer {
        send_via(&self.router, req).await
    }

    /// An API call: a bearer token, a JSON body and extra headers when given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
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

    /// A user with a personal access token: (id, token).
    pub async fn user(&self, email: &str) -> (String, String) {
        let admin = Some(self.admin_token.as_str());
        let r = self
            .call(
                Method::POST,
                "/admin/api/v1/users",
                admin,
                Some(json!({ "email": email })),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        let r = self
            .call(
                Method::POST,
                &format!("/admin/api/v1/users/{id}/personal-access-tokens"),
                admin,
                Some(json!({ "name": "test" })),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        (id, r.json()["token"].as_str().unwrap().to_string())
    }

    /// An org owned by `token`'s user, with one project: (org slug, project ref).
    pub async fn org_and_project(&self, token: &str) -> (String, String) {
        let r = self
            .call(
                Method::POST,
                "/api/v1/orgs",
                Some(token),
                Some(json!({ "title": "Acme" })),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let slug = r.json()["slug"].as_str().unwrap().to_string();
        let r = self
            .call(
                Method::POST,
                &format!("/api/v1/orgs/{slug}/projects"),
                Some(token),
                Some(json!({ "name": "Web" })),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        (slug, r.json()["externalRef"].as_str().unwrap().to_string())
    }

    /// The secret key of `env` (dev, staging, prod, preview).
    pub async fn env_key(&self, token: &str, project: &str, env: &str) -> String {
        let r = self
            .call(
                Method::GET,
                &format!("/api/v1/projects/{project}/{env}"),
                Some(token),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()["apiKey"].as_str().unwrap().to_string()
    }
}

/// Sends one request through `router` (an app's, or another node's).
pub async fn send_via(router: &Router, req: Request<Body>) -> Answer {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        bytes,
    }
}

/// A node on `store` with `config` and the system clock, as `taskgate serve` builds one: its
/// router and state. For tests that make their own stores (several nodes on one database, a
/// database behind a proxy).
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

/// A deployment of `environment_id` to create with `Store::create_deployment`, as
/// `POST /api/v1/deployments` makes one before its bundle is indexed: for tests that index it
/// through its routes without a bundle (which needs Node).
pub fn building_deployment(
    environment_id: &str,
    content_hash: &str,
    git_meta: Option<&str>,
) -> taskgate_store::NewDeployment {
    use taskgate_core::ids::{new_deployment_friendly_id, new_id, new_short_code};
    taskgate_store::NewDeployment {
        id: new_id().into(),
        friendly_id: new_deployment_friendly_id().into(),
        short_code: new_short_code(),
        environment_id: environment_id.into(),
        content_hash: content_hash.into(),
        artifact_key: None,
        external_id: None,
        runtime: Some("node".into()),
        triggered_via: None,
        git_meta: git_meta.map(str::to_string),
    }
}
