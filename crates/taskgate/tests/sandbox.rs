//! The launcher deployed task processes start through: what it denies stays unreadable, the
//! rest of the file system does not.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_taskgate");

#[test]
fn a_sandboxed_program_cannot_read_a_denied_directory() {
    let check = Command::new(BIN)
        .args(["sandbox", "--check"])
        .status()
        .unwrap();
    assert!(
        check.success(),
        "this kernel does not enforce Landlock, which the runner's sandbox needs"
    );
    let root = tempfile::tempdir().unwrap();
    let secret_dir = root.path().join("data");
    let allowed_dir = root.path().join("bundle");
    std::fs::create_dir_all(&secret_dir).unwrap();
    std::fs::create_dir_all(&allowed_dir).unwrap();
    std::fs::write(secret_dir.join("master.key"), "secret").unwrap();
    std::fs::write(allowed_dir.join("task.js"), "code").unwrap();
    let run = |path: &std::path::Path| {
        Command::new(BIN)
            .arg("sandbox")
            .arg("--deny")
            .arg(&secret_dir)
            .arg("--")
            .arg("cat")
            .arg(path)
            .output()
            .unwrap()
    };
    let denied = run(&secret_dir.join("master.key"));
    assert!(!denied.status.success(), "the denied file was read");
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    let allowed = run(&allowed_dir.join("task.js"));
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    assert_eq!(allowed.stdout, b"code");
}

#[test]
fn a_bad_command_line_is_refused() {
    let out = Command::new(BIN)
        .args(["sandbox", "--deny"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Whether process `pid` still runs (a zombie waiting to be reaped does not).
fn running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
            state != Some(Some('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn a_program_and_what_it_started_end_when_its_server_dies() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild");
    // `sh` stands in for the server: it starts the launcher, whose program starts a process
    // of its own; then the server is killed outright.
    let script = format!(
        "{BIN} sandbox -- sh -c 'sleep 600 & echo $! > {}; wait' & wait",
        pidfile.display()
    );
    let mut server = Command::new("sh").arg("-c").arg(script).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let grandchild = loop {
        if let Ok(pid) = std::fs::read_to_string(&pidfile) {
            if !pid.trim().is_empty() {
                break pid.trim().to_string();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the program never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(running(&grandchild));
    server.kill().unwrap();
    server.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while running(&grandchild) {
        assert!(
            std::time::Instant::now() < deadline,
            "the program's own process outlived its server"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn the_programs_exit_status_is_the_launchers() {
    let out = Command::new(BIN)
        .args(["sandbox", "--", "sh", "-c", "echo hi; exit 7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(out.stdout, b"hi\n");
}
