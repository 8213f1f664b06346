//! The taskgate binary: `serve` runs the server; `migrate` applies PostgreSQL migrations; the
//! client subcommands talk to a running server with a personal access token.

mod cli;
mod sandbox;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use taskgate_config::{Config, ServeArgs, Sources};

/// taskgate: a self-hostable control plane for trigger.dev-compatible task platforms.
#[derive(Debug, Parser)]
#[command(name = "taskgate", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (embedded SQLite in the data dir unless --database-url is given).
    Serve(Box<ServeArgs>),
    /// Apply PostgreSQL migrations and exit.
    Migrate {
        /// PostgreSQL URL.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
    /// Print a one-time link that signs EMAIL in to the dashboard (run it on the server's
    /// host, with the same database options as `serve`).
    LoginLink {
        /// The user's email. A new user is created when they first sign in if
        /// --sign-in-allow or --admin-emails admits them.
        #[arg(long, value_name = "EMAIL")]
        email: String,
        #[command(flatten)]
        serve: Box<ServeArgs>,
    },
    /// Print the OpenAPI 3.1 document of every route (what docs/openapi.json holds).
    Openapi,
    #[command(flatten)]
    Client(cli::ClientCommand),
}

fn main() -> ExitCode {
    // The runner's launcher of task processes: before anything else starts (no threads, no
    // runtime), it restricts itself and becomes the task's program. Not a user command.
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "sandbox") {
        return sandbox::main(args.collect());
    }
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => exit_for_clap_error(e),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => exit_for_clap_error(e),
    };
    let sources = matches
        .subcommand_matches("serve")
        .or_else(|| matches.subcommand_matches("login-link"))
        .map(Sources::from_matches)
        .unwrap_or_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => {
                taskgate_server::telemetry::init_logging()?;
                let config = Config::load(*args, &sources)?;
                taskgate_server::serve(config, taskgate_dashboard::pages()).await
            }
            Command::LoginLink { email, serve } => {
                let config = Config::load(*serve, &sources)?;
                login_link(&config, &email).await
            }
            Command::Migrate { database_url } => {
                taskgate_server::telemetry::init_logging()?;
                taskgate_store_postgres::PostgresStore::migrate(&database_url)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                eprintln!("migrations applied");
                Ok(())
            }
            Command::Openapi => {
                let doc = taskgate_server::router::openapi_document();
                println!("{}", doc.to_pretty_json()?);
                Ok(())
            }
            Command::Client(cmd) => cli::run(cmd).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Issues and prints a sign-in link: the link is a secret, so it goes to stdout only, never
/// to a log.
async fn login_link(config: &Config, email: &str) -> anyhow::Result<()> {
    taskgate_server::bootstrap::ensure_data_dir(&config.server.data_dir)?;
    let store = taskgate_server::open_store(config).await?;
    let base = taskgate_server::public_url::configured_url(config);
    let now = chrono::Utc::now();
    let issued = taskgate_dashboard::issue_link(&*store, config, &base, email, now).await;
    store.close().await;
    let link = issued?;
    println!("{}", secrecy::ExposeSecret::expose_secret(&link));
    eprintln!(
        "This link signs {email} in once, within {} minutes. Open it in your browser.",
        taskgate_core::signin::SIGN_IN_LINK_TTL.num_minutes()
    );
    Ok(())
}

/// Exits with clap's message, except that a bad value that came from an environment variable
/// is reported under that variable's name rather than the flag's the user never typed.
fn exit_for_clap_error(e: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        if let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) {
            let flag = arg.split_whitespace().next().unwrap_or_default();
            let typed = std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
            if let Some(env) = env_var_of(flag).filter(|_| !typed) {
                let value = match e.get(ContextKind::InvalidValue) {
                    Some(ContextValue::String(v)) => v.clone(),
                    _ => String::new(),
                };
                eprintln!(
                    "error: {env}: invalid value {value:?} (see taskgate serve --help for {flag})"
                );
                std::process::exit(2);
            }
        }
    }
    e.exit()
}

/// The environment variable behind `--flag` of `serve`, when it is set.
fn env_var_of(flag: &str) -> Option<String> {
    let long = flag.strip_prefix("--")?;
    let cmd = Cli::command();
    let serve = cmd.find_subcommand("serve")?;
    let arg = serve.get_arguments().find(|a| a.get_long() == Some(long))?;
    let env = arg.get_env()?.to_string_lossy().into_owned();
    std::env::var_os(&env).map(|_| env)
}
