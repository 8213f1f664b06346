//! `taskgate waitpoints list|show|complete`: an environment's wait tokens, as the user of the
//! profile. The personal access token is exchanged for a short-lived JWT of the environment
//! (`POST /api/v1/projects/{ref}/{env}/jwt`, scopes `read:waitpoints` and `write:waitpoints`),
//! which the token routes accept besides the environment's secret key.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use taskgate_api::waitpoints::{ListTokensResponse, TokenItem};
use taskgate_api::TokenBody;

use super::http::{segment, Client};
use super::{output, parse, Common, Environment};

#[derive(Debug, Args)]
pub struct Waitpoints {
    #[command(subcommand)]
    command: WaitpointsCommand,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
enum WaitpointsCommand {
    /// Wait tokens, newest first.
    List {
        #[command(flatten)]
        env: Environment,
        /// WAITING, COMPLETED, TIMED_OUT (comma-separated).
        #[arg(long)]
        status: Option<String>,
        /// Tokens with any of these tags (comma-separated).
        #[arg(long)]
        tag: Option<String>,
        /// Tokens per page (1 to 100).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: Option<u32>,
        /// pagination.next of an earlier page.
        #[arg(long)]
        after: Option<String>,
    },
    /// One token, with what it was completed with.
    Show {
        #[command(flatten)]
        env: Environment,
        /// waitpoint_…
        id: String,
    },
    /// Complete a token: the runs waiting for it continue with the value.
    Complete {
        #[command(flatten)]
        env: Environment,
        /// waitpoint_…
        id: String,
        /// The value, as JSON (`{"approved": true}`, `"yes"`, `42`); none when omitted.
        #[arg(long)]
        data: Option<String>,
    },
}

impl WaitpointsCommand {
    fn env(&self) -> &Environment {
        match self {
            WaitpointsCommand::List { env, .. }
            | WaitpointsCommand::Show { env, .. }
            | WaitpointsCommand::Complete { env, .. } => env,
        }
    }
}

/// A client of the environment acting as the profile's user.
fn as_user(common: &Common, env: &Environment) -> Result<Client> {
    let client = common.client()?;
    let body = client.post(
        &env.path("jwt"),
        &json!({ "claims": { "scopes": ["read:waitpoints", "write:waitpoints"] }, "expirationTime": "15m" }),
    )?;
    let token: TokenBody = parse(&body)?;
    Ok(Client::new(client.api_url(), &token.token))
}

pub fn run(w: &Waitpoints) -> Result<()> {
    // A bad value is refused before anything is sent.
    let data: Option<Value> = match &w.command {
        WaitpointsCommand::Complete { data: Some(d), .. } => {
            Some(serde_json::from_str(d).with_context(|| {
                format!("--data {d:?} is not JSON (a text needs quotes: '\"yes\"')")
            })?)
        }
        _ => None,
    };
    let client = as_user(&w.common, w.command.env())?;
    let path = |id: &str, tail: &str| format!("/api/v1/waitpoints/tokens/{}{tail}", segment(id));
    let body = match &w.command {
        WaitpointsCommand::List {
            status,
            tag,
            limit,
            after,
            ..
        } => {
            let pairs = [
                ("filter[status]", status.clone()),
                ("filter[tags]", tag.clone()),
                ("page[size]", limit.map(|l| l.to_string())),
                ("page[after]", after.clone()),
            ];
            let query: Vec<String> = pairs
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", segment(v))))
                .collect();
            let query = if query.is_empty() {
                String::new()
            } else {
                format!("?{}", query.join("&"))
            };
            client.get(&format!("/api/v1/waitpoints/tokens{query}"))?
        }
        WaitpointsCommand::Show { id, .. } => client.get(&path(id, ""))?,
        WaitpointsCommand::Complete { id, .. } => {
            client.post(&path(id, "/complete"), &json!({ "data": data }))?
        }
    };
    if w.common.json {
        return output::json(&body);
    }
    match &w.command {
        WaitpointsCommand::List { .. } => {
            let page: ListTokensResponse = parse(&body)?;
            let rows: Vec<Vec<String>> = page
                .data
                .into_iter()
                .map(|t| {
                    vec![
                        t.id,
                        t.status,
                        output::time(Some(t.created_at)),
                        output::time(t.timeout_at),
                        t.tags.join(","),
                    ]
                })
                .collect();
            output::table(&["ID", "STATUS", "CREATED", "TIMES OUT", "TAGS"], &rows);
            if let Some(next) = page.pagination.next {
                println!("\nmore: --after {next}");
            }
        }
        WaitpointsCommand::Show { .. } => {
            let t: TokenItem = parse(&body)?;
            println!("{} ({})", t.id, t.status);
            println!("created:     {}", output::time(Some(t.created_at)));
            println!("times out:   {}", output::time(t.timeout_at));
            println!("completed:   {}", output::time(t.completed_at));
            if !t.tags.is_empty() {
                println!("tags:        {}", t.tags.join(", "));
            }
            if let Some(out) = &t.output {
                println!(
                    "output:      {out} ({})",
                    t.output_type.as_deref().unwrap_or("application/json")
                );
            }
            println!("callback:    {}", t.url);
        }
        WaitpointsCommand::Complete { id, .. } => {
            println!("{id} completed; the runs waiting for it continue");
        }
    }
    Ok(())
}
