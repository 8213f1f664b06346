//! `taskgate schedules list|activate|deactivate`: an environment's schedules, as the user of
//! the profile. The schedules routes take the environment's secret key, as the SDK sends it;
//! the profile's personal access token looks the key up first
//! (`GET /api/v1/projects/{ref}/{env}`), as `trigger.dev` does, which the user's role must
//! allow.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;
use taskgate_api::schedules::{ListSchedulesResponse, ScheduleObject};
use taskgate_api::EnvironmentKeyResponse;

use super::http::{segment, Client};
use super::{output, parse, Common, Environment};

#[derive(Debug, Args)]
pub struct Schedules {
    #[command(subcommand)]
    command: SchedulesCommand,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
enum SchedulesCommand {
    /// The environment's schedules, oldest first, with their next run.
    List {
        #[command(flatten)]
        env: Environment,
        /// Page (from 1), of 100 schedules.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        page: u64,
    },
    /// Switch a schedule on: it fires at its next time.
    Activate {
        #[command(flatten)]
        env: Environment,
        /// sched_…
        id: String,
    },
    /// Switch a schedule off: it does not fire until activated.
    Deactivate {
        #[command(flatten)]
        env: Environment,
        /// sched_…
        id: String,
    },
}

impl SchedulesCommand {
    fn env(&self) -> &Environment {
        match self {
            SchedulesCommand::List { env, .. }
            | SchedulesCommand::Activate { env, .. }
            | SchedulesCommand::Deactivate { env, .. } => env,
        }
    }
}

/// A client holding the environment's secret key.
fn with_env_key(common: &Common, env: &Environment) -> Result<Client> {
    let client = common.client()?;
    let body = client.get(env.path("").trim_end_matches('/'))?;
    let key: EnvironmentKeyResponse = parse(&body)?;
    Ok(Client::new(client.api_url(), &key.api_key))
}

pub fn run(s: &Schedules) -> Result<()> {
    let client = with_env_key(&s.common, s.command.env())?;
    let path = |id: &str, action: &str| format!("/api/v1/schedules/{}/{action}", segment(id));
    let body = match &s.command {
        SchedulesCommand::List { page, .. } => {
            client.get(&format!("/api/v1/schedules?page={page}&perPage=100"))?
        }
        SchedulesCommand::Activate { id, .. } => client.post(&path(id, "activate"), &json!({}))?,
        SchedulesCommand::Deactivate { id, .. } => {
            client.post(&path(id, "deactivate"), &json!({}))?
        }
    };
    if s.common.json {
        return output::json(&body);
    }
    match &s.command {
        SchedulesCommand::List { page, .. } => {
            let list: ListSchedulesResponse = parse(&body)?;
            let rows: Vec<Vec<String>> = list
                .data
                .into_iter()
                .map(|s| {
                    vec![
                        s.id,
                        s.task,
                        s.generator.expression,
                        s.timezone,
                        if s.active { "yes".into() } else { "no".into() },
                        output::time(s.next_run),
                        s.last_run_id.unwrap_or_default(),
                        s.kind,
                    ]
                })
                .collect();
            output::table(
                &[
                    "ID",
                    "TASK",
                    "CRON",
                    "TIME ZONE",
                    "ACTIVE",
                    "NEXT RUN",
                    "LAST RUN",
                    "TYPE",
                ],
                &rows,
            );
            if *page < list.pagination.total_pages {
                println!("\nmore: --page {}", page + 1);
            }
        }
        SchedulesCommand::Activate { .. } | SchedulesCommand::Deactivate { .. } => {
            let s: ScheduleObject = parse(&body)?;
            let state = if s.active { "active" } else { "inactive" };
            println!(
                "{} ({}) is {state}; next run {}",
                s.id,
                s.task,
                output::time(s.next_run)
            );
        }
    }
    Ok(())
}
