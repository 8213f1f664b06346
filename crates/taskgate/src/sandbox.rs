//! `taskgate sandbox [--check] [--deny PATH]… [--allow PATH]… -- PROGRAM ARGS…`: how the runner
//! starts task processes. It restricts itself with Linux Landlock so that nothing under a
//! `--deny` path (taskgate's data directory, other deployments' bundles) can be read or
//! written, except under an `--allow` path inside one, then runs PROGRAM. The environment
//! and working directory are the caller's. `--check` says (exit status) whether this kernel
//! enforces the sandbox. The launcher stays while PROGRAM runs and, should the process that
//! started it die, ends PROGRAM and everything PROGRAM started.
//!
//! Landlock only allows: access stays possible below every entry of the file system that is
//! not a denied path or on the way to one, walking down from `/` at start.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use landlock::{
    path_beneath_rules, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
    ABI,
};

/// The newest Landlock ABI taskgate asks for; older kernels enforce what they can.
const ABI_WANTED: ABI = ABI::V5;

struct Args {
    check: bool,
    deny: Vec<PathBuf>,
    allow: Vec<PathBuf>,
    program: Vec<OsString>,
}

fn parse(args: Vec<OsString>) -> Result<Args, String> {
    let mut out = Args {
        check: false,
        deny: Vec::new(),
        allow: Vec::new(),
        program: Vec::new(),
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.to_str() {
            Some("--check") => out.check = true,
            Some("--deny") => out
                .deny
                .push(it.next().ok_or("--deny needs a path")?.into()),
            Some("--allow") => out
                .allow
                .push(it.next().ok_or("--allow needs a path")?.into()),
            Some("--") => {
                out.program = it.collect();
                break;
            }
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    if !out.check && out.program.is_empty() {
        return Err("no program after --".into());
    }
    Ok(out)
}

/// Every path below which access stays possible: the `allow` paths, and each entry of the
/// tree that neither is a denied path nor leads to one (those are walked into instead).
fn allowed(deny: &[PathBuf], allow: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = allow.to_vec();
    walk(Path::new("/"), deny, &mut out);
    out
}

fn walk(dir: &Path, deny: &[PathBuf], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if deny.contains(&path) {
            continue;
        }
        if deny.iter().any(|d| d.starts_with(&path)) {
            walk(&path, deny, out);
            continue;
        }
        // A symbolic link into (or above) a denied path would open it: leave it out.
        if let Ok(target) = std::fs::canonicalize(&path) {
            if deny
                .iter()
                .any(|d| target.starts_with(d) || d.starts_with(&target))
            {
                continue;
            }
        }
        out.push(path);
    }
}

/// Restricts this process; the status says how far the kernel went.
fn restrict(paths: &[PathBuf]) -> Result<RulesetStatus, String> {
    let access = AccessFs::from_all(ABI_WANTED);
    let status = Ruleset::default()
        .handle_access(access)
        .map_err(|e| e.to_string())?
        .create()
        .map_err(|e| e.to_string())?
        .add_rules(path_beneath_rules(paths, access))
        .map_err(|e| e.to_string())?
        .restrict_self()
        .map_err(|e| e.to_string())?;
    Ok(status.ruleset)
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("taskgate sandbox: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        // A probe that denies nothing: whether the kernel enforces a ruleset at all.
        return match restrict(&[PathBuf::from("/")]) {
            Ok(RulesetStatus::NotEnforced) | Err(_) => ExitCode::FAILURE,
            Ok(_) => ExitCode::SUCCESS,
        };
    }
    let deny: Vec<PathBuf> = args
        .deny
        .iter()
        .map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.clone()))
        .collect();
    match restrict(&allowed(&deny, &args.allow)) {
        Ok(RulesetStatus::NotEnforced) => {
            eprintln!(
                "taskgate sandbox: this kernel does not enforce Landlock; running unsandboxed"
            );
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!("taskgate sandbox: cannot restrict the process: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut program = args.program.into_iter();
    let Some(name) = program.next() else {
        return ExitCode::from(2);
    };
    supervise(std::process::Command::new(&name).args(program), &name)
}

/// How often the launcher looks whether its program ended or its server is gone.
const WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Runs `command` and answers its exit status. The launcher stays, at the head of a process
/// group of its own, for one reason: when the server that started it is gone (killed
/// outright, so it could not stop its runs), it ends the whole group, the program and every
/// process the program started, rather than leave them running with no one to report to.
fn supervise(command: &mut std::process::Command, name: &OsString) -> ExitCode {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::{setpgid, Pid};
    if let Err(e) = setpgid(Pid::from_raw(0), Pid::from_raw(0)) {
        eprintln!("taskgate sandbox: cannot lead a process group: {e}");
        return ExitCode::FAILURE;
    }
    let server = std::os::unix::process::parent_id();
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("taskgate sandbox: cannot run {name:?}: {e}");
            return ExitCode::from(127);
        }
    };
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return exit_code(status),
            Ok(None) => {}
            Err(e) => {
                eprintln!("taskgate sandbox: cannot wait for {name:?}: {e}");
                return ExitCode::FAILURE;
            }
        }
        if std::os::unix::process::parent_id() != server {
            // Pid 0: every process of this group, this one included.
            let _ = kill(Pid::from_raw(0), Signal::SIGKILL);
            return ExitCode::FAILURE;
        }
        std::thread::sleep(WATCH_INTERVAL);
    }
}

/// The launcher's exit status for its program's: the same code, or 128 + the signal that
/// ended it, as a shell reports it.
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_is_allowed_but_the_denied_paths() {
        let root = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(root.path()).unwrap();
        for d in ["data/keys", "runner/bundles/a", "runner/bundles/b", "other"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        std::os::unix::fs::symlink(base.join("data"), base.join("link-to-data")).unwrap();
        let deny = vec![base.join("data"), base.join("runner")];
        let allow = vec![base.join("runner/bundles/a")];
        let paths = allowed(&deny, &allow);
        assert!(paths.contains(&base.join("other")));
        assert!(
            paths.contains(&base.join("runner/bundles/a")),
            "allowed inside a denied one"
        );
        assert!(!paths.iter().any(|p| p.starts_with(base.join("data"))));
        assert!(!paths.contains(&base.join("runner/bundles/b")));
        assert!(
            !paths.contains(&base.join("link-to-data")),
            "a link into a denied path"
        );
        assert!(
            !paths.contains(&base),
            "an ancestor of a denied path is walked into"
        );
    }

    #[test]
    fn arguments_are_read_as_the_runner_writes_them() {
        let a = parse(
            ["--deny", "/d", "--allow", "/a", "--", "node", "x.mjs"]
                .iter()
                .map(Into::into)
                .collect(),
        )
        .unwrap();
        assert_eq!(a.deny, vec![PathBuf::from("/d")]);
        assert_eq!(a.allow, vec![PathBuf::from("/a")]);
        assert_eq!(a.program, vec![OsString::from("node"), "x.mjs".into()]);
        assert!(parse(vec!["--deny".into()]).is_err());
        assert!(parse(vec![]).is_err());
    }
}
