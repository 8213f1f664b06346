//! The HTTP suite's side of the shared harness ([`taskgate_test_support`]): JSON requests
//! with a bearer token, answers with their body parsed, and the key fixtures most tests need.
#![allow(dead_code)]

use std::ops::Deref;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use taskgate_config::Config;
// Three test binaries include this file, each using a part of it.
#[allow(unused_imports)]
pub use taskgate_test_support::{admin_token, node, t0, until_watching, Backend};

/// Generates `<case>` tests in modules `sqlite` and `postgres` from `async fn <case>(Backend)`.
#[macro_export]
macro_rules! on_both {
    ($($case:ident),* $(,)?) => { taskgate_test_support::on_both!($($case),*); };
}

/// An app of the HTTP suite: the shared [`taskgate_test_support::TestApp`], serving the API.
pub struct TestApp {
    app: taskgate_test_support::TestApp,
}

impl Deref for TestApp {
    type Target = taskgate_test_support::TestApp;

    fn deref(&self) -> &Self::Target {
        &self.app
    }
}

/// An answer, its body parsed as JSON (`null` when it is not JSON).
pub struct Response {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl From<taskgate_test_support::Answer> for Response {
    fn from(a: taskgate_test_support::Answer) -> Self {
        Response {
            status: a.status,
            body: a.json(),
            text: a.text(),
            headers: a.headers,
        }
    }
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

impl TestApp {
    pub async fn new(backend: Backend) -> TestApp {
        Self::with_config(backend, |_| {}).await
    }

    pub async fn with_config(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
        TestApp {
            app: taskgate_test_support::TestApp::start(backend, tweak, Router::new()).await,
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

    /// Closes the store and drops the test's PostgreSQL schema. A test that panics before
    /// calling this still loses its schema, when the app is dropped.
    pub async fn cleanup(self) {
        self.app.cleanup().await;
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        self.app
            .call(method, path, token, body, headers)
            .await
            .into()
    }

    pub async fn send(&self, req: Request<Body>) -> Response {
        self.app.send(req).await.into()
    }

    /// Sends through another router (built from a modified state).
    pub async fn send_via(router: &Router, req: Request<Body>) -> Response {
        taskgate_test_support::send_via(router, req).await.into()
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token), None, &[])
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(token), Some(body), &[])
            .await
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

    /// A setup most key tests need: an admin-owned org/project and its `env` key.
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
