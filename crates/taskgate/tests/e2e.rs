//! End to end: the real binary on port 0, a fresh data directory, and nothing but HTTP.
//! Runs on SQLite, and on PostgreSQL (a fresh schema) with `TASKGATE_TEST_DATABASE_URL`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_taskgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(extra)
        .env("TASKGATE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env_remove("DATABASE_URL")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            assert!(!line.contains("tr_pat_"), "a token was logged: {line}");
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["message"] == "taskgate listening" {
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_string());
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server reports its address");
    Server { child, addr }
}

/// One HTTP/1.1 request; returns (status, JSON body).
fn call(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status: u16 = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let payload = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    // The server answers with Content-Length; no chunked decoding is needed.
    (status, serde_json::from_str(payload).unwrap_or(Value::Null))
}

fn first_run_to_environment_key(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), extra);
    let deadline = Instant::now() + Duration::from_secs(30);
    while call(&server.addr, "GET", "/readyz", None, None).0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let token_path = dir.path().join("admin-token");
    let token = std::fs::read_to_string(&token_path)
        .unwrap()
        .trim()
        .to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&token_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let (status, org) = call(
        &server.addr,
        "POST",
        "/api/v1/orgs",
        Some(&token),
        Some(json!({ "title": "E2E" })),
    );
    assert_eq!(status, 201, "{org}");
    let slug = org["slug"].as_str().unwrap();
    let (status, project) = call(
        &server.addr,
        "POST",
        &format!("/api/v1/orgs/{slug}/projects"),
        Some(&token),
        Some(json!({ "name": "Site" })),
    );
    assert_eq!(status, 201, "{project}");
    let project_ref = project["externalRef"].as_str().unwrap();
    let (status, env) = call(
        &server.addr,
        "GET",
        &format!("/api/v1/projects/{project_ref}/prod"),
        Some(&token),
        None,
    );
    assert_eq!(status, 200, "{env}");
    let key = env["apiKey"].as_str().unwrap();
    assert!(key.starts_with("tr_prod_"));
    let (status, claims) = call(
        &server.addr,
        "POST",
        "/api/v1/auth/jwt/claims",
        Some(key),
        None,
    );
    assert_eq!((status, claims["pub"].as_bool()), (200, Some(true)));

    // A second start on the same database leaves the administrator alone.
    let data_dir = dir.path().to_path_buf();
    drop(server);
    std::fs::remove_file(&token_path).unwrap();
    let mut again = Command::new(env!("CARGO_BIN_EXE_taskgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .args(extra)
        .env("TASKGATE_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = again.stderr.take().unwrap();
    let listening = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("taskgate listening"));
    let _ = again.kill();
    let _ = again.wait();
    assert!(listening, "the second start comes up");
    assert!(
        !token_path.exists(),
        "a later start writes no new admin token"
    );
}

#[test]
fn sqlite_first_run_to_environment_key() {
    first_run_to_environment_key(&[]);
}

#[test]
fn postgres_first_run_to_environment_key() {
    let url = std::env::var("TASKGATE_TEST_DATABASE_URL")
        .expect("TASKGATE_TEST_DATABASE_URL must name a PostgreSQL database");
    // A fresh database per run keeps this test independent of the others.
    let db = format!("taskgate_e2e_{}", std::process::id());
    let admin = Command::new("psql")
        .arg(&url)
        .args(["-qc", &format!("DROP DATABASE IF EXISTS {db}")])
        .status()
        .unwrap();
    assert!(admin.success());
    assert!(Command::new("psql")
        .arg(&url)
        .args(["-qc", &format!("CREATE DATABASE {db}")])
        .status()
        .unwrap()
        .success());
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap();
    let db_url = format!("{base}/{db}");
    first_run_to_environment_key(&["--database-url", &db_url]);
    assert!(Command::new("psql")
        .arg(&url)
        .args(["-qc", &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")])
        .status()
        .unwrap()
        .success());
}
