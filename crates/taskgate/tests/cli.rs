//! The client subcommands against the real server binary on a loopback port: login, whoami,
//! tokens, mint-token and keys, each as a person (text) and as a script (`--json`) uses them.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions report failures by panicking"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

mod support;

use support::{call, start};

/// What one CLI run printed.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// The CLI with `config_home` as XDG_CONFIG_HOME (and HOME), nothing from the caller's env.
fn cli(config_home: &Path, args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_taskgate"))
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .env("HOME", config_home)
        .env_remove("TASKGATE_API_URL")
        .env_remove("TASKGATE_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

fn config_file(config_home: &Path) -> PathBuf {
    config_home.join("taskgate").join("config.json")
}

#[test]
fn login_tokens_mint_and_keys() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let server = start(data.path(), &[]);
    let url = format!("http://{}", server.addr);
    let admin = std::fs::read_to_string(data.path().join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    let h = home.path();

    // login verifies the token, saves the profile privately and never prints the token.
    let login = cli(h, &["login", "--api-url", &url, "--token", &admin]).ok();
    assert!(
        login.stdout.contains("admin@taskgate.local"),
        "{}",
        login.stdout
    );
    assert!(!login.stdout.contains(&admin) && !login.stderr.contains(&admin));
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(config_file(h)).unwrap()).unwrap();
    assert_eq!(
        saved["profiles"]["default"],
        json!({ "apiUrl": url, "token": admin })
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&config_file(h)), 0o600);
        assert_eq!(mode(&h.join("taskgate")), 0o700);
    }

    // whoami, from the profile.
    let me = cli(h, &["whoami"]).ok();
    assert!(me.stdout.contains("admin@taskgate.local"), "{}", me.stdout);
    let me = cli(h, &["whoami", "--json"]).ok().json();
    assert_eq!(me["email"], "admin@taskgate.local");
    let user_id = me["userId"].as_str().unwrap().to_string();
    assert!(cli(h, &["whoami"]).ok().stdout.contains(&user_id));

    // tokens: create (plaintext once, on stdout alone), list, revoke.
    let created = cli(h, &["tokens", "create", "--name", "laptop"]).ok();
    let laptop = created.stdout.trim().to_string();
    assert!(laptop.starts_with("tr_pat_"), "{}", created.stdout);
    let as_laptop = cli(h, &["whoami", "--json", "--token", &laptop])
        .ok()
        .json();
    assert_eq!(as_laptop["userId"], user_id.as_str());
    let listed = cli(h, &["tokens", "list", "--json"]).ok().json();
    let tokens = listed["tokens"].as_array().unwrap();
    let entry = tokens.iter().find(|t| t["name"] == "laptop").unwrap();
    let laptop_id = entry["id"].as_str().unwrap().to_string();
    assert!(entry.get("revokedAt").is_none());
    let table = cli(h, &["tokens", "list"]).ok().stdout;
    assert!(
        table.starts_with("ID") && table.contains("laptop") && table.contains(&laptop_id),
        "{table}"
    );
    assert!(
        !table.contains(&laptop),
        "a listing never shows a plaintext token"
    );
    let revoked = cli(h, &["tokens", "revoke", &laptop_id, "--json"])
        .ok()
        .json();
    assert_eq!(revoked["id"], laptop_id.as_str());
    assert!(revoked["revokedAt"].is_string());
    let refused = cli(h, &["whoami", "--token", &laptop]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.starts_with("error: ") && refused.stderr.contains("(HTTP 401)"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains(&laptop));
    let listed = cli(h, &["tokens", "list", "--json"]).ok().json();
    let entry = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == laptop_id.as_str())
        .unwrap()
        .clone();
    assert!(entry["revokedAt"].is_string(), "{entry}");

    // mint-token: the token alone on stdout, its lifetime on stderr; --json gives the body.
    let minted = cli(h, &["mint-token"]).ok();
    assert!(minted.stdout.starts_with("tr_uat_"), "{}", minted.stdout);
    assert_eq!(minted.stdout.trim().lines().count(), 1);
    assert!(
        minted.stderr.contains("admin@taskgate.local")
            && minted.stderr.contains("expires in 3600s"),
        "{}",
        minted.stderr
    );
    let minted = cli(
        h,
        &[
            "mint-token",
            "--ttl",
            "120",
            "--cap",
            "read:runs,read:tasks",
            "--client",
            "ci",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(minted["expiresInSeconds"], 120);
    assert!(minted["token"].as_str().unwrap().starts_with("tr_uat_"));
    let too_long = cli(h, &["mint-token", "--ttl", "999999999999"]);
    assert_eq!(too_long.code, 1);
    assert!(
        too_long
            .stderr
            .contains("ttlSeconds must be at most 31536000")
            && too_long.stderr.contains("(HTTP 400)"),
        "the server's detail is printed: {}",
        too_long.stderr
    );
    let bogus = cli(h, &["mint-token", "--cap", "bogus"]);
    assert_eq!(bogus.code, 2, "a bad --cap is a usage error");
    assert!(
        bogus.stderr.contains("\"bogus\" is not a scope"),
        "{}",
        bogus.stderr
    );

    // An organization and a project, over plain HTTP.
    let (status, org) = call(
        &server.addr,
        "POST",
        "/api/v1/orgs",
        Some(&admin),
        Some(json!({ "title": "CLI" })),
    );
    assert_eq!(status, 201, "{org}");
    let slug = org["slug"].as_str().unwrap();
    let (status, project) = call(
        &server.addr,
        "POST",
        &format!("/api/v1/orgs/{slug}/projects"),
        Some(&admin),
        Some(json!({ "name": "Web" })),
    );
    assert_eq!(status, 201, "{project}");
    let project_ref = project["externalRef"].as_str().unwrap();
    let (_, env) = call(
        &server.addr,
        "GET",
        &format!("/api/v1/projects/{project_ref}/prod"),
        Some(&admin),
        None,
    );
    let old_key = env["apiKey"].as_str().unwrap().to_string();

    // keys rotate: the new key alone on stdout; the old key keeps working through its grace.
    let rotated = cli(
        h,
        &["keys", "rotate", "--project", project_ref, "--env", "prod"],
    )
    .ok();
    let new_key = rotated.stdout.trim().to_string();
    assert!(
        new_key.starts_with("tr_prod_") && new_key != old_key,
        "{}",
        rotated.stdout
    );
    assert!(rotated.stderr.contains("keys grace"), "{}", rotated.stderr);
    assert_eq!(
        call(
            &server.addr,
            "POST",
            "/api/v1/auth/jwt/claims",
            Some(&new_key),
            None
        )
        .0,
        200
    );
    assert_eq!(
        call(
            &server.addr,
            "POST",
            "/api/v1/auth/jwt/claims",
            Some(&old_key),
            None
        )
        .0,
        200
    );
    let revoked = cli(
        h,
        &[
            "keys",
            "revoked",
            "--project",
            project_ref,
            "--env",
            "prod",
            "--json",
        ],
    )
    .ok()
    .json();
    let grace = &revoked["revokedApiKeys"][0];
    assert_eq!(grace["active"], true);
    assert_eq!(
        grace["lastFour"].as_str().unwrap(),
        &old_key[old_key.len() - 4..]
    );
    let revoked_id = grace["id"].as_str().unwrap().to_string();
    assert!(cli(
        h,
        &["keys", "revoked", "--project", project_ref, "--env", "prod"]
    )
    .ok()
    .stdout
    .contains(&revoked_id));

    // keys grace: move the window, then end it; the old key is refused from then on.
    let moved = cli(
        h,
        &[
            "keys",
            "grace",
            &revoked_id,
            "--expires-at",
            "+2h",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(moved["success"], true);
    assert_eq!(moved["revokedApiKey"]["id"], revoked_id.as_str());
    let ended = cli(h, &["keys", "grace", &revoked_id, "--expires-at", "now"]).ok();
    assert!(ended.stdout.contains("ended"), "{}", ended.stdout);
    assert_eq!(
        call(
            &server.addr,
            "POST",
            "/api/v1/auth/jwt/claims",
            Some(&old_key),
            None
        )
        .0,
        401
    );
    assert_eq!(
        call(
            &server.addr,
            "POST",
            "/api/v1/auth/jwt/claims",
            Some(&new_key),
            None
        )
        .0,
        200
    );

    // --json rotation, and the server's refusals as `error: … (HTTP n)` with exit 1.
    let rotated = cli(
        h,
        &[
            "keys",
            "rotate",
            "--project",
            project_ref,
            "--env",
            "staging",
            "--json",
        ],
    )
    .ok()
    .json();
    assert!(rotated["apiKey"].as_str().unwrap().starts_with("tr_stg_"));
    assert!(rotated["revokedApiKey"]["expiresAt"].is_string());
    let missing = cli(
        h,
        &[
            "keys",
            "rotate",
            "--project",
            "proj_doesnotexist000000",
            "--env",
            "prod",
        ],
    );
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.starts_with("error: ") && missing.stderr.contains("(HTTP 404)"),
        "{}",
        missing.stderr
    );
    let bad_grace = cli(
        h,
        &["keys", "grace", &revoked_id, "--expires-at", "tomorrow"],
    );
    assert_eq!(bad_grace.code, 1);
    assert!(
        bad_grace.stderr.contains("--expires-at"),
        "{}",
        bad_grace.stderr
    );

    // The overrides beat the profile: environment variables, and flags over them.
    let other = tempfile::tempdir().unwrap();
    let env_run = Command::new(env!("CARGO_BIN_EXE_taskgate"))
        .args(["whoami", "--json"])
        .env("XDG_CONFIG_HOME", other.path())
        .env("TASKGATE_API_URL", &url)
        .env("TASKGATE_TOKEN", &admin)
        .output()
        .unwrap();
    assert!(
        env_run.status.success(),
        "{}",
        String::from_utf8_lossy(&env_run.stderr)
    );
    let no_profile = cli(other.path(), &["whoami", "--profile", "work"]);
    assert_eq!(no_profile.code, 1);
    assert!(
        no_profile.stderr.contains("taskgate login"),
        "{}",
        no_profile.stderr
    );
}

#[test]
fn login_with_a_bad_token_saves_nothing() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let server = start(data.path(), &[]);
    let url = format!("http://{}", server.addr);
    let bogus = "tr_pat_0000000000000000000000000000000000000000";
    let run = cli(home.path(), &["login", "--api-url", &url, "--token", bogus]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("error: ") && run.stderr.contains("(HTTP 401)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(bogus) && !run.stdout.contains(bogus));
    assert!(!config_file(home.path()).exists());

    // A second profile is added beside the first, which stays as it was.
    let admin = std::fs::read_to_string(data.path().join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    cli(
        home.path(),
        &[
            "login",
            "--api-url",
            &format!("{url}/"),
            "--token",
            &admin,
            "--profile",
            "work",
            "--json",
        ],
    )
    .ok()
    .json();
    cli(
        home.path(),
        &["login", "--api-url", &url, "--token", &admin],
    )
    .ok();
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(config_file(home.path())).unwrap()).unwrap();
    assert_eq!(
        saved["profiles"]["work"]["apiUrl"],
        url.as_str(),
        "a trailing slash is dropped"
    );
    assert!(saved["profiles"]["default"].is_object());
    assert!(cli(home.path(), &["whoami", "--profile", "work"])
        .ok()
        .stdout
        .contains("admin@taskgate.local"));
}

#[test]
fn an_unreachable_server_is_named() {
    let home = tempfile::tempdir().unwrap();
    // A loopback port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let run = cli(
        home.path(),
        &["whoami", "--api-url", &url, "--token", "tr_pat_x"],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("could not reach") && run.stderr.contains(&url),
        "{}",
        run.stderr
    );
    let run = cli(
        home.path(),
        &["login", "--api-url", &url, "--token", "tr_pat_x"],
    );
    assert_eq!(run.code, 1);
    assert!(!config_file(home.path()).exists());
}

/// The CLI as [`cli`], with `input` on its standard input.
fn cli_with_input(config_home: &Path, args: &[&str], input: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_taskgate"))
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .env("HOME", config_home)
        .env_remove("TASKGATE_API_URL")
        .env_remove("TASKGATE_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

#[test]
fn env_commands_set_list_get_import_and_unset() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let server = start(data.path(), &[]);
    let url = format!("http://{}", server.addr);
    let admin = std::fs::read_to_string(data.path().join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    let (status, _) = call(
        &server.addr,
        "POST",
        "/api/v1/orgs",
        Some(&admin),
        Some(json!({ "title": "Acme" })),
    );
    assert_eq!(status, 201);
    let (status, project) = call(
        &server.addr,
        "POST",
        "/api/v1/orgs/acme/projects",
        Some(&admin),
        Some(json!({ "name": "Web" })),
    );
    assert_eq!(status, 201);
    let project = project["externalRef"].as_str().unwrap().to_string();
    let h = home.path();
    let base = ["--api-url", url.as_str(), "--token", admin.as_str()];
    let env = ["--project", project.as_str(), "--env", "dev"];
    let with = |cmd: &[&str]| -> Vec<String> {
        cmd.iter()
            .chain(env.iter())
            .chain(base.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let args = with(&["env", "set", "API_TOKEN", "--secret"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let set = cli_with_input(h, &args, "from-stdin-secret\n").ok();
    assert_eq!(set.stdout.trim(), "Set API_TOKEN");
    let args = with(&["env", "set", "REGION", "--value", "eu"]);
    cli(h, &args.iter().map(String::as_str).collect::<Vec<_>>()).ok();
    let dotenv = home.path().join(".env");
    std::fs::write(&dotenv, "# imported\nMODE=dev\nREGION=us\n").unwrap();
    let file = dotenv.to_str().unwrap();
    let args = with(&["env", "import", "--file", file]);
    cli(h, &args.iter().map(String::as_str).collect::<Vec<_>>()).ok();
    let args = with(&["env", "list", "--json"]);
    let list = cli(h, &args.iter().map(String::as_str).collect::<Vec<_>>()).ok();
    assert_eq!(
        list.json(),
        json!([
            { "name": "API_TOKEN", "value": "<redacted>", "isSecret": true },
            { "name": "MODE", "value": "dev", "isSecret": false },
            { "name": "REGION", "value": "eu", "isSecret": false }
        ]),
        "an import keeps existing values unless told to override"
    );
    let args = with(&["env", "list"]);
    let table = cli(h, &args.iter().map(String::as_str).collect::<Vec<_>>()).ok();
    assert!(table.stdout.contains("REGION") && !table.stdout.contains("from-stdin-secret"));
    let args = with(&["env", "get", "API_TOKEN"]);
    let secret = cli(h, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_ne!(secret.code, 0, "a secret cannot be read back");
    assert!(
        !secret.stdout.contains("from-stdin-secret"),
        "{}",
        secret.stdout
    );
    assert!(
        !secret.stderr.contains("from-stdin-secret"),
        "{}",
        secret.stderr
    );
    assert!(secret.stderr.contains("write-only"), "{}", secret.stderr);
    let args = with(&["env", "get", "REGION"]);
    let plain = cli(h, &args.iter().map(String::as_str).collect::<Vec<_>>()).ok();
    assert_eq!(plain.stdout.trim(), "eu");
    let args = with(&["env", "unset", "MODE"]);
    cli(h, &args.iter().map(String::as_str).collect::<Vec<_>>()).ok();
    let args = with(&["env", "get", "MODE"]);
    let missing = cli(h, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("Environment variable not found"),
        "{}",
        missing.stderr
    );
}

/// A development run of task `t` that fails for good with a TypeError, through the routes the
/// `trigger.dev dev` CLI calls. Returns the dev key.
fn failed_dev_run(addr: &str, admin: &str, project: &str) -> String {
    let (_, env) = call(
        addr,
        "GET",
        &format!("/api/v1/projects/{project}/dev"),
        Some(admin),
        None,
    );
    let key = env["apiKey"].as_str().unwrap().to_string();
    let manifest = json!({
        "localOnly": true, "engine": "V2", "supportsLazyAttempts": true,
        "metadata": { "packageVersion": "4.8.3", "cliPackageVersion": "4.8.3", "contentHash": "h",
            "runtime": "node", "runtimeVersion": "20.20.2", "queues": [], "sourceFiles": [],
            "tasks": [{ "id": "t", "filePath": "src/t.ts", "exportName": "t" }] }
    });
    let (status, worker) = call(
        addr,
        "POST",
        &format!("/api/v1/projects/{project}/background-workers"),
        Some(&key),
        Some(manifest),
    );
    assert_eq!(status, 200, "{worker}");
    let (_, run) = call(
        addr,
        "POST",
        "/api/v1/tasks/t/trigger",
        Some(&key),
        Some(json!({ "options": { "maxAttempts": 1 } })),
    );
    let run = run["id"].as_str().unwrap().to_string();
    let (_, dequeued) = call(
        addr,
        "POST",
        "/engine/v1/dev/dequeue",
        Some(&key),
        Some(json!({ "currentWorker": worker["id"] })),
    );
    let m = &dequeued["dequeuedMessages"][0];
    let snapshot = m["snapshot"]["friendlyId"].as_str().unwrap();
    let (_, started) = call(
        addr,
        "POST",
        &format!("/engine/v1/dev/runs/{run}/snapshots/{snapshot}/attempts/start"),
        Some(&key),
        Some(json!({})),
    );
    let snapshot = started["snapshot"]["friendlyId"].as_str().unwrap();
    let error = json!({ "type": "BUILT_IN_ERROR", "name": "TypeError",
        "message": "Cannot read properties of undefined (reading 'x')", "stackTrace": "TypeError: x" });
    let (status, done) = call(
        addr,
        "POST",
        &format!("/engine/v1/dev/runs/{run}/snapshots/{snapshot}/attempts/complete"),
        Some(&key),
        Some(json!({ "completion": { "ok": false, "id": run, "error": error } })),
    );
    assert_eq!(status, 200, "{done}");
    key
}

#[test]
fn errors_commands_list_show_and_triage_as_the_user() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let server = start(data.path(), &["--dequeue-wait-seconds", "0"]);
    let url = format!("http://{}", server.addr);
    let admin = std::fs::read_to_string(data.path().join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    call(
        &server.addr,
        "POST",
        "/api/v1/orgs",
        Some(&admin),
        Some(json!({ "title": "Acme" })),
    );
    let (_, project) = call(
        &server.addr,
        "POST",
        "/api/v1/orgs/acme/projects",
        Some(&admin),
        Some(json!({ "name": "Web" })),
    );
    let project = project["externalRef"].as_str().unwrap().to_string();
    let (_, me) = call(&server.addr, "GET", "/api/v2/whoami", Some(&admin), None);
    let me = me["userId"].as_str().unwrap().to_string();
    failed_dev_run(&server.addr, &admin, &project);
    let h = home.path();
    let run = |cmd: &[&str]| {
        let mut args: Vec<&str> = vec!["errors"];
        args.extend_from_slice(cmd);
        args.extend_from_slice(&[
            "--project",
            &project,
            "--env",
            "dev",
            "--api-url",
            &url,
            "--token",
            &admin,
        ]);
        cli(h, &args).ok()
    };
    let id = "error_131c37334a407e47";
    let list = run(&["list"]);
    assert!(
        list.stdout.contains(id) && list.stdout.contains("TypeError: Cannot read properties"),
        "{}",
        list.stdout
    );
    let listed = run(&["list", "--json"]).json();
    assert_eq!(listed["data"][0]["count"], 1);

    let resolved = run(&["resolve", id, "--version", "20261127.2", "--json"]).json();
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["resolvedBy"], me.as_str(), "recorded as the user");
    let shown = run(&["show", id]);
    assert!(
        shown.stdout.contains("resolved") && shown.stdout.contains("in 20261127.2"),
        "{}",
        shown.stdout
    );
    let ignored = run(&["ignore", id, "--for", "2h", "--reason", "known", "--json"]).json();
    assert_eq!(ignored["status"], "ignored");
    assert_eq!(ignored["ignoredReason"], "known");
    run(&["unresolve", id]);
    let history = run(&["activity", id, "--json"]).json();
    let actions: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["unresolved", "ignored", "resolved"]);
    assert!(history["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["actorUserId"] == me.as_str()));
    let text = run(&["activity", id]);
    assert!(text.stdout.contains("known"), "{}", text.stdout);
    // A bad id is the server's 400, printed with its detail.
    let mut args = vec![
        "errors",
        "show",
        "nope",
        "--project",
        &project,
        "--env",
        "dev",
    ];
    args.extend_from_slice(&["--api-url", &url, "--token", &admin]);
    let bad = cli(h, &args);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("Params Error"), "{}", bad.stderr);
}

/// Signs in as the server's administrator and makes the organization `acme` with a project:
/// (the administrator's token, the project's ref, its development key).
fn acme_dev_project(addr: &str, data: &Path) -> (String, String, String) {
    let admin = std::fs::read_to_string(data.join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    call(
        addr,
        "POST",
        "/api/v1/orgs",
        Some(&admin),
        Some(json!({ "title": "Acme" })),
    );
    let (_, project) = call(
        addr,
        "POST",
        "/api/v1/orgs/acme/projects",
        Some(&admin),
        Some(json!({ "name": "Web" })),
    );
    let project = project["externalRef"].as_str().unwrap().to_string();
    let (_, env) = call(
        addr,
        "GET",
        &format!("/api/v1/projects/{project}/dev"),
        Some(&admin),
        None,
    );
    let key = env["apiKey"].as_str().unwrap().to_string();
    (admin, project, key)
}

#[test]
fn waitpoints_commands_list_show_and_complete_tokens() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let server = start(data.path(), &[]);
    let url = format!("http://{}", server.addr);
    let (admin, project, key) = acme_dev_project(&server.addr, data.path());
    let (status, token) = call(
        &server.addr,
        "POST",
        "/api/v1/waitpoints/tokens",
        Some(&key),
        Some(json!({ "tags": ["order:1"] })),
    );
    assert_eq!(status, 200, "{token}");
    let id = token["id"].as_str().unwrap().to_string();
    let h = home.path();
    let run = |cmd: &[&str]| {
        let mut args: Vec<&str> = vec!["waitpoints"];
        args.extend_from_slice(cmd);
        args.extend_from_slice(&[
            "--project",
            &project,
            "--env",
            "dev",
            "--api-url",
            &url,
            "--token",
            &admin,
        ]);
        cli(h, &args)
    };
    let list = run(&["list"]).ok();
    assert!(
        list.stdout.contains(&id)
            && list.stdout.contains("WAITING")
            && list.stdout.contains("order:1"),
        "{}",
        list.stdout
    );
    let refused = run(&["complete", &id, "--data", "{not json"]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("is not JSON"), "{}", refused.stderr);
    let done = run(&["complete", &id, "--data", "{\"approved\":true}"]).ok();
    assert!(done.stdout.contains("completed"), "{}", done.stdout);
    let shown = run(&["show", &id, "--json"]).ok().json();
    assert_eq!(shown["status"], "COMPLETED");
    assert_eq!(shown["output"], "{\"json\":{\"approved\":true}}");
    let waiting = run(&["list", "--status", "WAITING", "--json"]).ok().json();
    assert_eq!(waiting["data"], json!([]));
}

#[test]
fn schedules_commands_list_and_switch_schedules() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let server = start(data.path(), &[]);
    let url = format!("http://{}", server.addr);
    let (admin, project, key) = acme_dev_project(&server.addr, data.path());
    let manifest = json!({
        "localOnly": true, "engine": "V2", "supportsLazyAttempts": true,
        "metadata": { "packageVersion": "4.8.3", "cliPackageVersion": "4.8.3", "contentHash": "h",
            "runtime": "node", "runtimeVersion": "20.20.2", "queues": [], "sourceFiles": [],
            "tasks": [{ "id": "nightly", "filePath": "src/n.ts", "exportName": "nightly",
                        "triggerSource": "schedule", "schedule": { "cron": "0 3 * * *", "timezone": "Europe/Paris" } }] }
    });
    let (status, worker) = call(
        &server.addr,
        "POST",
        &format!("/api/v1/projects/{project}/background-workers"),
        Some(&key),
        Some(manifest),
    );
    assert_eq!(status, 200, "{worker}");
    let h = home.path();
    let run = |cmd: &[&str]| {
        let mut args: Vec<&str> = vec!["schedules"];
        args.extend_from_slice(cmd);
        args.extend_from_slice(&[
            "--project",
            &project,
            "--env",
            "dev",
            "--api-url",
            &url,
            "--token",
            &admin,
        ]);
        cli(h, &args)
    };
    let list = run(&["list"]).ok();
    assert!(
        list.stdout.contains("nightly")
            && list.stdout.contains("0 3 * * *")
            && list.stdout.contains("Europe/Paris")
            && list.stdout.contains("DECLARATIVE"),
        "{}",
        list.stdout
    );
    let listed = run(&["list", "--json"]).ok().json();
    let id = listed["data"][0]["id"].as_str().unwrap().to_string();
    let off = run(&["deactivate", &id]).ok();
    assert!(off.stdout.contains("inactive"), "{}", off.stdout);
    let again = run(&["list", "--json"]).ok().json();
    assert_eq!(again["data"][0]["active"], false);
    let missing = run(&["activate", "sched_missing"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("Schedule not found"),
        "{}",
        missing.stderr
    );
}
