//! The taskgate binary: `serve` runs the server; `migrate` applies PostgreSQL migrations; the
//! client subcommands talk to a running server with a personal access token.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use taskgate_server::config::{Config, ServeArgs};

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
    /// Print the OpenAPI 3.1 document of every route (what docs/openapi.json holds).
    Openapi,
    #[command(flatten)]
    Client(cli::ClientCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
                taskgate_server::telemetry::init_logging();
                let config = Config::load(*args)?;
                taskgate_server::serve(config).await
            }
            Command::Migrate { database_url } => {
                taskgate_server::telemetry::init_logging();
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
