//! Configuration: built-in defaults, an optional TOML file, `TASKGATE_*` environment variables
//! (and `DATABASE_URL`), then command-line flags, each layer overriding the one before.
//! `taskgate serve --help` documents every option, grouped by the sections below.
//!
//! Each section is a module with its options ([`options!`] writes their struct and how two
//! layers merge, so a new option is written once) and the validation that turns them into
//! that section's part of [`Config`], naming a bad option as the user wrote it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;

/// Declares a section's options: the struct (with clap's and serde's derives, kebab-case file
/// keys) and `or`, which takes each option unset here from `base`.
macro_rules! options {
    ($(#[$m:meta])* pub struct $name:ident {
        $( $(#[$fm:meta])* pub $field:ident : $ty:ty, )*
    }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, clap::Args, serde::Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub struct $name {
            $( $(#[$fm])* pub $field: $ty, )*
        }

        impl $name {
            /// These options, each one unset here taken from `base`.
            pub fn or(self, base: Self) -> Self {
                Self { $( $field: self.$field.or(base.$field), )* }
            }
        }
    };
}

pub mod alerts;
pub mod database;
pub mod engine;
pub mod rate_limits;
pub mod runner;
pub mod secrets;
pub mod server;
pub mod sign_in;
pub mod tokens;

pub use alerts::AlertConfig;
pub use database::{redact_url, DatabaseConfig};
pub use engine::EngineConfig;
pub use rate_limits::{RateLimitConfig, RateLimits};
pub use runner::RunnerConfig;
pub use secrets::SecretsConfig;
pub use server::{ServerConfig, Timeouts};
pub use sign_in::{SignInConfig, Smtp};
pub use tokens::TokenConfig;

/// Options of `taskgate serve`, by section. Every option is optional here so that the TOML
/// file can fill in what neither a flag nor the environment set.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServeArgs {
    /// TOML file with any of these options (kebab-case keys); flags and env override it
    /// [default: none].
    #[arg(long, env = "TASKGATE_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    #[command(flatten, next_help_heading = "Server")]
    #[serde(flatten)]
    pub server: server::ServerArgs,
    #[command(flatten, next_help_heading = "Database")]
    #[serde(flatten)]
    pub database: database::DatabaseArgs,
    #[command(flatten, next_help_heading = "Secrets")]
    #[serde(flatten)]
    pub secrets: secrets::SecretArgs,
    #[command(flatten, next_help_heading = "Dashboard sign-in")]
    #[serde(flatten)]
    pub sign_in: sign_in::SignInArgs,
    #[command(flatten, next_help_heading = "Keys and tokens")]
    #[serde(flatten)]
    pub tokens: tokens::TokenArgs,
    #[command(flatten, next_help_heading = "Runs")]
    #[serde(flatten)]
    pub engine: engine::EngineArgs,
    #[command(flatten, next_help_heading = "Rate limits")]
    #[serde(flatten)]
    pub rate_limits: rate_limits::RateLimitArgs,
    #[command(flatten, next_help_heading = "Deployed runs")]
    #[serde(flatten)]
    pub runner: runner::RunnerArgs,
    #[command(flatten, next_help_heading = "Alerts")]
    #[serde(flatten)]
    pub alerts: alerts::AlertArgs,
}

impl ServeArgs {
    /// These options, each one unset here taken from `base`.
    fn or(self, base: ServeArgs) -> ServeArgs {
        ServeArgs {
            config: self.config.or(base.config),
            server: self.server.or(base.server),
            database: self.database.or(base.database),
            secrets: self.secrets.or(base.secrets),
            sign_in: self.sign_in.or(base.sign_in),
            tokens: self.tokens.or(base.tokens),
            engine: self.engine.or(base.engine),
            rate_limits: self.rate_limits.or(base.rate_limits),
            runner: self.runner.or(base.runner),
            alerts: self.alerts.or(base.alerts),
        }
    }

    /// Every option's long name, as a flag and as a file key.
    fn option_names() -> Vec<String> {
        let cmd = <ServeArgs as Args>::augment_args(clap::Command::new("serve"));
        cmd.get_arguments()
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect()
    }
}

/// Validated configuration, by section.
#[derive(Clone, Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub secrets: SecretsConfig,
    pub sign_in: SignInConfig,
    pub tokens: TokenConfig,
    pub engine: EngineConfig,
    pub rate_limits: RateLimitConfig,
    pub runner: RunnerConfig,
    pub alerts: AlertConfig,
}

/// Where each option was set, so that an error names it as the user wrote it: `--flag`,
/// `TASKGATE_…` or `key (in file.toml)`. Options not listed are named by their key.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    names: std::collections::HashMap<String, String>,
}

impl Sources {
    /// The sources clap saw: flags on the command line and environment variables.
    pub fn from_matches(matches: &clap::ArgMatches) -> Sources {
        use clap::parser::ValueSource;
        let cmd = <ServeArgs as Args>::augment_args(clap::Command::new("serve"));
        let mut names = std::collections::HashMap::new();
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let name = match matches.value_source(arg.get_id().as_str()) {
                Some(ValueSource::CommandLine) => format!("--{long}"),
                Some(ValueSource::EnvVariable) => match arg.get_env() {
                    Some(env) => env.to_string_lossy().into_owned(),
                    None => continue,
                },
                _ => continue,
            };
            names.insert(long.to_string(), name);
        }
        Sources { names }
    }

    /// How the user wrote `option` (its kebab-case key).
    pub fn name(&self, option: &str) -> String {
        self.names
            .get(option)
            .cloned()
            .unwrap_or_else(|| option.to_string())
    }
}

impl Config {
    /// Layers the TOML file (if any) under `args` and validates the result, section by
    /// section, naming the option that is wrong as the user wrote it.
    pub fn load(args: ServeArgs, sources: &Sources) -> anyhow::Result<Config> {
        let mut sources = sources.clone();
        let merged = match &args.config {
            Some(path) => {
                let (file, keys) = read_file(path)?;
                for key in keys {
                    sources
                        .names
                        .entry(key.clone())
                        .or_insert_with(|| format!("{key} (in {})", path.display()));
                }
                args.clone().or(file)
            }
            None => args,
        };
        let n = |option: &str| sources.name(option);
        Ok(Config {
            server: merged.server.validate(&n)?,
            database: merged.database.validate(&n)?,
            secrets: merged.secrets.validate(),
            sign_in: merged.sign_in.validate(&n)?,
            tokens: merged.tokens.validate(&n)?,
            engine: merged.engine.validate(&n)?,
            rate_limits: merged.rate_limits.validate(&n)?,
            runner: merged.runner.validate(&n)?,
            alerts: merged.alerts.validate(&n)?,
        })
    }

    /// A configuration for tests: SQLite in `data_dir`, an ephemeral port.
    pub fn for_tests(data_dir: &Path) -> Config {
        Config {
            server: ServerConfig::for_tests(data_dir),
            database: DatabaseConfig::default(),
            secrets: SecretsConfig::default(),
            sign_in: SignInConfig::default(),
            tokens: TokenConfig::default(),
            engine: EngineConfig::default(),
            rate_limits: RateLimitConfig::default(),
            runner: RunnerConfig::default(),
            alerts: AlertConfig::default(),
        }
    }
}

/// Options a config file may not set: another file, and secrets (with URLs that may hold a
/// password), which belong in the environment or a secret store, not in a file that is read by
/// whoever can read the configuration.
const NOT_IN_FILE: &[&str] = &[
    "config",
    "encryption-key",
    "session-secret",
    "smtp-url",
    "redis-url",
];

/// The file's options, and the keys it set. A key that names no option is refused, naming it.
fn read_file(path: &Path) -> anyhow::Result<(ServeArgs, Vec<String>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("config: cannot read {}", path.display()))?;
    let invalid = || {
        format!(
            "config: {} is not a valid taskgate config file",
            path.display()
        )
    };
    let table: toml::Table = toml::from_str(&text).with_context(invalid)?;
    let known = ServeArgs::option_names();
    if let Some(unknown) = table.keys().find(|k| !known.contains(k)) {
        bail!(
            "config: {} sets {unknown:?}, which is not an option of taskgate serve",
            path.display()
        );
    }
    if let Some(secret) = table.keys().find(|k| NOT_IN_FILE.contains(&k.as_str())) {
        bail!(
            "config: {} sets {secret:?}, which is read only from its flag or environment variable \
             (secrets and URLs with passwords are kept out of files)",
            path.display()
        );
    }
    let keys = table.keys().cloned().collect();
    let args = ServeArgs::deserialize(table).with_context(invalid)?;
    Ok((args, keys))
}

/// An error naming `option` unless `min <= value <= max`.
pub(crate) fn in_range<T: PartialOrd + std::fmt::Display>(
    option: String,
    value: T,
    min: T,
    max: T,
) -> anyhow::Result<()> {
    if value < min || value > max {
        bail!("{option}: must be from {min} to {max}, got {value}");
    }
    Ok(())
}

/// How a section names an option in its errors (see [`Sources::name`]).
pub(crate) trait Names: Fn(&str) -> String {}
impl<F: Fn(&str) -> String> Names for F {}

#[cfg(test)]
mod tests;
