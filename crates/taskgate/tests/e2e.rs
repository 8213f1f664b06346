//! End to end: the real binary on port 0, a fresh data directory, and nothing but HTTP.
//! Runs on SQLite, and on PostgreSQL (a fresh schema) with `TASKGATE_TEST_DATABASE_URL`.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions report failures by panicking"
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::json;

mod support;

use support::{call, start};

fn first_run_to_environment_key(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), extra);
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
