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
