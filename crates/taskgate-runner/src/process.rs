//! Processes the runner starts (`npm`, a bundle's index and run controllers): a clean
//! environment (only what is given, never taskgate's own), a process group of their own so
//! that stopping one stops its children, and, where the launcher is available, a sandbox that
//! keeps them out of taskgate's data directory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::{Error, Result};

/// The `PATH` a started process gets: the system's binaries and the directory of the `node`
/// it runs.
pub fn default_path(node: &Path) -> String {
    let mut dirs = vec![
        "/usr/local/sbin".to_string(),
        "/usr/local/bin".into(),
        "/usr/sbin".into(),
        "/usr/bin".into(),
        "/sbin".into(),
        "/bin".into(),
    ];
    if let Some(dir) = node.parent().filter(|d| !d.as_os_str().is_empty()) {
        let dir = dir.display().to_string();
        if !dirs.contains(&dir) {
            dirs.insert(0, dir);
        }
    }
    dirs.join(":")
}

/// How to keep a process away from paths it must not see: taskgate's own executable run as
/// `taskgate sandbox --deny P… --allow P… -- PROGRAM ARGS…`, which restricts itself and then
/// becomes the program.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub launcher: PathBuf,
    pub deny: Vec<PathBuf>,
}

/// A process to start.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    /// Its whole environment, besides `PATH` (added when absent).
    pub env: Vec<(String, String)>,
}

impl Launch {
    /// The command, sandboxed when `sandbox` is given with `allow` reachable inside it.
    pub fn command(&self, sandbox: Option<(&Sandbox, &[PathBuf])>) -> tokio::process::Command {
        let mut cmd = match sandbox {
            Some((s, allow)) => {
                let mut cmd = tokio::process::Command::new(&s.launcher);
                cmd.arg("sandbox");
                for d in &s.deny {
                    cmd.arg("--deny").arg(d);
                }
                for a in allow {
                    cmd.arg("--allow").arg(a);
                }
                cmd.arg("--").arg(&self.program);
                cmd
            }
            None => tokio::process::Command::new(&self.program),
        };
        cmd.args(&self.args)
            .current_dir(&self.cwd)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        if !self.env.iter().any(|(k, _)| k == "PATH") {
            cmd.env("PATH", default_path(&self.program));
        }
        cmd
    }

    /// Runs it to its end, at most `timeout` (then its whole group is killed), with its output.
    pub async fn output(
        &self,
        sandbox: Option<(&Sandbox, &[PathBuf])>,
        timeout: Duration,
    ) -> Result<Output> {
        let mut cmd = self.command(sandbox);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .map_err(|e| Error::Process(format!("cannot start {}: {e}", self.program.display())))?;
        let pid = child.id();
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(out) => Ok(out?),
            Err(_) => {
                if let Some(pid) = pid {
                    kill_group(pid);
                }
                Err(Error::Process(format!(
                    "{} did not finish within {} s",
                    self.program.display(),
                    timeout.as_secs()
                )))
            }
        }
    }
}

/// Kills a process group (a started process and everything it started).
pub fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// The last lines of a process's standard error (else its output), for an error message.
pub fn output_tail(output: &Output) -> String {
    let text = if output.stderr.is_empty() {
        &output.stdout
    } else {
        &output.stderr
    };
    tail(&String::from_utf8_lossy(text), 2000)
}

/// The last `max` bytes of `text`, cut at a line (or character) boundary.
pub fn tail(text: &str, max: usize) -> String {
    let text = text.trim_end();
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = &text[start..];
    match cut.find('\n') {
        Some(i) => format!("…{}", &cut[i..]),
        None => format!("…{cut}"),
    }
}
