//! taskgate's runner: it executes deployed versions without containers.
//!
//! - [`deploy`]: what `trigger.dev deploy` becomes here: the uploaded bundle is unpacked, its
//!   npm externals installed and its own index controller run, which registers the
//!   deployment's worker; then it is promoted, unless asked not to.
//! - [`bundles`]: deployed bundles on this node's disk.
//! - [`execute`]: the loop that takes runs of every environment running a deployment (up to
//!   the runner's capacity) and starts each as a `node` process of its bundle's own run
//!   controller, which speaks the workload protocol back to this node.
//! - [`process`]: how those processes start: a clean environment, a process group of their
//!   own, and a sandbox away from taskgate's data directory.
//!
//! The workload protocol's routes (`/api/v1/workload-actions/*` and socket.io `/workload`)
//! are the server's, on a loopback listener of its own; they authenticate a process by the
//! runner id it was started with ([`Runner::active`]).

pub mod bundles;
pub mod deploy;
pub mod execute;
pub mod process;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use taskgate_core::ids::{DeploymentFriendlyId, EnvironmentId, RunFriendlyId};
use taskgate_engine::Engine;
use taskgate_store::Store;

pub use bundles::Bundles;
pub use process::Sandbox;

/// Why the runner could not do something.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bundle that cannot be used (the message says why, for its deployment's error).
    #[error("{0}")]
    Bundle(String),
    /// A process that could not run or did not finish.
    #[error("{0}")]
    Process(String),
    #[error(transparent)]
    Engine(#[from] taskgate_engine::Error),
    #[error(transparent)]
    Store(#[from] taskgate_store::StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the runner is set up.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// Where bundles are unpacked (each deployment in its own directory).
    pub work_dir: PathBuf,
    /// Runs executing at once on this node; 0 disables execution (indexing still works).
    pub capacity: usize,
    /// The `node` and `npm` to run.
    pub node: PathBuf,
    pub npm: PathBuf,
    /// What this node calls itself in runs' records.
    pub instance_name: String,
}

/// A run this node executes: what its process may act on.
#[derive(Debug, Clone)]
pub struct ActiveRun {
    pub environment_id: EnvironmentId,
    pub run: RunFriendlyId,
    pub deployment: DeploymentFriendlyId,
}

/// The runner of this node.
pub struct Runner {
    engine: Arc<Engine>,
    store: Arc<dyn Store>,
    settings: RunnerSettings,
    bundles: Bundles,
    /// Runner id (a secret each process is started with) → its run.
    active: parking_lot::Mutex<HashMap<String, ActiveRun>>,
    /// Where this node's listeners are, as its processes reach them (set when the server
    /// binds them): the API (`http://127.0.0.1:3030`) and the workload listener's port.
    api_url: OnceLock<String>,
    workload_port: OnceLock<u16>,
    /// The sandbox processes run in (set by the binary, which is its launcher).
    sandbox: OnceLock<Sandbox>,
}

impl Runner {
    pub fn new(engine: Arc<Engine>, settings: RunnerSettings) -> Runner {
        let store = engine.store().clone();
        let bundles = Bundles::new(settings.work_dir.join("bundles"), settings.npm.clone());
        Runner {
            engine,
            store,
            settings,
            bundles,
            active: parking_lot::Mutex::new(HashMap::new()),
            api_url: OnceLock::new(),
            workload_port: OnceLock::new(),
            sandbox: OnceLock::new(),
        }
    }

    pub fn settings(&self) -> &RunnerSettings {
        &self.settings
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Records where this node's API and workload listener are (once, when bound).
    pub fn set_addresses(&self, api_url: String, workload_port: u16) {
        let _ = self.api_url.set(api_url);
        let _ = self.workload_port.set(workload_port);
    }

    /// Runs every process this runner starts in `sandbox` (once).
    pub fn set_sandbox(&self, sandbox: Sandbox) {
        let _ = self.sandbox.set(sandbox);
    }

    pub(crate) fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.get()
    }

    /// The API's address as this node's processes reach it.
    pub fn api_url(&self) -> Result<&str> {
        self.api_url
            .get()
            .map(String::as_str)
            .ok_or_else(|| Error::Process("this node's API listener is not up".into()))
    }

    /// The run the process started with `runner_id` executes, if it is one of this node's.
    pub fn active(&self, runner_id: &str) -> Option<ActiveRun> {
        if runner_id.is_empty() {
            return None;
        }
        self.active.lock().get(runner_id).cloned()
    }

    /// Runs executing on this node now.
    pub fn running(&self) -> usize {
        self.active.lock().len()
    }
}

/// A new runner id: 128 random bits, the credential of one process.
fn new_runner_id() -> String {
    format!(
        "runner_{}",
        taskgate_core::ids::random_string(b"0123456789abcdefghijklmnopqrstuvwxyz", 26)
    )
}
