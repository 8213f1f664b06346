//! Deployed runs: how many this node executes, where their bundles live, what runs them, and
//! how large an uploaded bundle may be.

use std::path::PathBuf;

use crate::{in_range, Names};

/// Deployed runs a node executes at once unless configured.
pub const DEFAULT_RUNNER_CAPACITY: usize = 10;
/// Largest bundle `trigger.dev deploy` may upload unless configured (100 MiB).
pub const DEFAULT_MAX_BUNDLE_BYTES: i64 = 100 * 1024 * 1024;

options! {
    /// Deployed runs and their bundles.
    pub struct RunnerArgs {
        /// Deployed runs this node executes at once, each a `node` process (0 to 1000; 0
        /// executes none here) [default: 10].
        #[arg(long, env = "TASKGATE_RUNNER_CAPACITY", value_name = "RUNS")]
        pub runner_capacity: Option<usize>,

        /// Where deployed bundles are unpacked, outside the data directory, which task
        /// processes cannot read [default: the data directory's path + `.runner`].
        #[arg(long, env = "TASKGATE_RUNNER_DIR", value_name = "DIR")]
        pub runner_dir: Option<PathBuf>,

        /// The `node` that runs deployed bundles [default: node, from PATH].
        #[arg(long, env = "TASKGATE_NODE", value_name = "PATH")]
        pub node: Option<PathBuf>,

        /// The `npm` that installs a bundle's externals [default: npm, from PATH].
        #[arg(long, env = "TASKGATE_NPM", value_name = "PATH")]
        pub npm: Option<PathBuf>,

        /// Largest bundle a deploy may upload, in bytes (1048576 to 2147483648)
        /// [default: 104857600].
        #[arg(long, env = "TASKGATE_MAX_BUNDLE_BYTES", value_name = "BYTES")]
        pub max_bundle_bytes: Option<i64>,
    }
}

/// The runner section, validated.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub capacity: usize,
    /// `None`: next to the data directory.
    pub dir: Option<PathBuf>,
    pub node: PathBuf,
    pub npm: PathBuf,
    pub max_bundle_bytes: i64,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            capacity: DEFAULT_RUNNER_CAPACITY,
            dir: None,
            node: "node".into(),
            npm: "npm".into(),
            max_bundle_bytes: DEFAULT_MAX_BUNDLE_BYTES,
        }
    }
}

impl RunnerArgs {
    pub(crate) fn validate(self, n: &impl Names) -> anyhow::Result<RunnerConfig> {
        let capacity = self.runner_capacity.unwrap_or(DEFAULT_RUNNER_CAPACITY);
        in_range(n("runner-capacity"), capacity, 0, 1000)?;
        let max_bundle_bytes = self.max_bundle_bytes.unwrap_or(DEFAULT_MAX_BUNDLE_BYTES);
        in_range(
            n("max-bundle-bytes"),
            max_bundle_bytes,
            1 << 20,
            2 * 1024 * 1024 * 1024,
        )?;
        Ok(RunnerConfig {
            capacity,
            dir: self.runner_dir,
            node: self.node.unwrap_or_else(|| "node".into()),
            npm: self.npm.unwrap_or_else(|| "npm".into()),
            max_bundle_bytes,
        })
    }
}
