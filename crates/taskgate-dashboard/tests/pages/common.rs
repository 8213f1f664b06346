//! The harness: an app per test on a fresh SQLite file or PostgreSQL schema, a browser-like
//! cookie jar, and helpers that sign in and post forms.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use secrecy::ExposeSecret;
use serde_json::Value;
use taskgate_config::Config;
use taskgate_core::time::Clock;
use taskgate_dashboard::session::encode;
pub use taskgate_test_support::Backend;

/// Generates `<case>` tests in modules `sqlite` and `postgres` from `async fn <case>(Backend)`.
#[macro_export]
macro_rules! on_both {
    ($($case:ident),* $(,)?) => { taskgate_test_support::on_both!($($case),*); };
}

pub struct Page {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub text: String,
}

impl Page {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `Set-Cookie` line that sets `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }

    /// The value of the first `name="…" value="…"` attribute pair of an input named `name`.
    pub fn input_value(&self, name: &str) -> Option<String> {
        let at = self.text.find(&format!("name=\"{name}\""))?;
        let tag_start = self.text[..at].rfind('<')?;
        let tag_end = at + self.text[at..].find('>')?;
        let tag = &self.text[tag_start..tag_end];
        let v = tag.find("value=\"")? + 7;
        Some(tag[v..v + tag[v..].find('"')?].to_string())
    }

    /// The value of attribute `attr` on the first element that has it.
    pub fn attr(&self, attr: &str) -> Option<String> {
        let at = self.text.find(&format!("{attr}=\""))? + attr.len() + 2;
        Some(self.text[at..at + self.text[at..].find('"')?].to_string())
    }
}

/// An app of the page suite: the shared [`taskgate_test_support::TestApp`] serving the API
/// and the dashboard, and a browser-like cookie jar.
pub struct TestApp {
    app: taskgate_test_support::TestApp,
    /// Cookies the "browser" holds, by name.
    pub jar: std::sync::Mutex<HashMap<String, String>>,
}

impl Deref for TestApp {
    type Target = taskgate_test_support::TestApp;

    fn deref(&self) -> &Self::Target {
        &self.app
    }
}

impl TestApp {
    pub async fn new(backend: Backend) -> TestApp {
        Self::with_config(backend, |_| {}).await
    }

    pub async fn with_config(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
        TestApp {
            app: taskgate_test_support::TestApp::start(backend, tweak, taskgate_dashboard::pages())
                .await,
            jar: Default::default(),
        }
    }

    /// Closes the store (a PostgreSQL schema is dropped with the app, even after a panic).
    pub async fn cleanup(self) {
        self.app.cleanup().await;
    }

    /// Sends a request as the browser would: with the jar's cookies, keeping the cookies the
    /// answer sets.
    pub async fn send(&self, req: axum::http::request::Builder, body: Body) -> Page {
        let cookies: Vec<String> = self
            .jar
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let req = if cookies.is_empty() {
            req
        } else {
            req.header(header::COOKIE, cookies.join("; "))
        };
        let answer = self.app.send(req.body(body).unwrap()).await;
        for line in answer
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let pair = line.split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                let mut jar = self.jar.lock().unwrap();
                if line.contains("Max-Age=0") {
                    jar.remove(k);
                } else {
                    jar.insert(k.to_string(), v.to_string());
                }
            }
        }
        Page {
            text: answer.text(),
            status: answer.status,
            headers: answer.headers,
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        self.send(Request::builder().uri(path), Body::empty()).await
    }

    /// Posts a form (`application/x-www-form-urlencoded`).
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        self.send(
            Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
            Body::from(body.join("&")),
        )
        .await
    }

    /// An API call with a bearer token and a JSON body, outside the browser's jar.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Page {
        let answer = self.app.call(method, path, token, body, &[]).await;
        Page {
            text: answer.text(),
            status: answer.status,
            headers: answer.headers,
        }
    }

    /// A one-time sign-in link's path and query, as `taskgate login-link` issues it.
    pub async fn link(&self, email: &str) -> String {
        let link = taskgate_dashboard::issue_link(
            &*self.state.store,
            &self.state.config,
            "http://127.0.0.1:3030",
            email,
            self.clock.now(),
        )
        .await
        .unwrap();
        link.expose_secret()
            .trim_start_matches("http://127.0.0.1:3030")
            .to_string()
    }

    /// Signs the browser in as `email`.
    pub async fn sign_in(&self, email: &str) {
        let link = self.link(email).await;
        let page = self.get(&link).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
        assert!(self.jar.lock().unwrap().contains_key("tg_session"));
    }

    /// The CSRF token on the page at `path`.
    pub async fn csrf(&self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        page.input_value("_csrf").expect("the page has a form")
    }

    /// Whether `key` authenticates an API request now.
    pub async fn key_works(&self, key: &str) -> bool {
        let r = self
            .api(Method::POST, "/api/v1/auth/jwt/claims", Some(key), None)
            .await;
        r.status == StatusCode::OK
    }
}

/// The first `n` messages `inbox` receives, waiting up to 10 s for them.
pub async fn wait_for_mail(inbox: &Arc<std::sync::Mutex<Vec<String>>>, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mail = inbox.lock().unwrap().clone();
        if mail.len() >= n {
            return mail;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {n} messages arrived",
            mail.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A minimal SMTP server on a loopback port that accepts every message and keeps its data:
/// (its port, the messages received).
pub async fn fake_smtp() -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = inbox.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 fake ESMTP\r\n").await;
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            kept.lock().unwrap().push(std::mem::take(body));
                            data = None;
                            let _ = write.write_all(b"250 queued\r\n").await;
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 fake\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = write.write_all(reply).await;
                }
            });
        }
    });
    (port, inbox)
}
