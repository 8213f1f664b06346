//! `taskgate errors list|show|resolve|ignore|unresolve|activity`: the errors API, as the user
//! of the profile. The personal access token is exchanged for a short-lived JWT of the
//! environment (`POST /api/v1/projects/{ref}/{env}/jwt`, scopes `read:errors` and
//! `write:errors`), so every triage is recorded as made by that user.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;
use taskgate_api::errors::*;
use taskgate_api::TokenBody;

use super::http::{segment, Client};
use super::{output, parse, Common, Environment};

#[derive(Debug, Args)]
pub struct Errors {
    #[command(subcommand)]
    command: ErrorsCommand,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
enum ErrorsCommand {
    /// Error groups by how often they failed in a window (the last day by default).
    List {
        #[command(flatten)]
        env: Environment,
        /// unresolved, resolved, ignored (comma-separated).
        #[arg(long)]
        status: Option<String>,
        /// Only these tasks (comma-separated).
        #[arg(long)]
        task: Option<String>,
        /// Substring of the error's type or message.
        #[arg(long)]
        search: Option<String>,
        /// The window, e.g. 7d.
        #[arg(long)]
        period: Option<String>,
        /// Groups per page (1 to 100).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: Option<u32>,
        /// pagination.next of an earlier page.
        #[arg(long)]
        after: Option<String>,
    },
    /// One group: its counts, affected versions and triage state.
    Show {
        #[command(flatten)]
        env: Environment,
        /// error_<fingerprint>
        id: String,
    },
    /// Mark a group resolved; it reopens when it fails again.
    Resolve {
        #[command(flatten)]
        env: Environment,
        id: String,
        /// Only a failure from this worker version or a later one reopens it.
        #[arg(long)]
        version: Option<String>,
    },
    /// Ignore a group, indefinitely or until a condition is met.
    Ignore {
        #[command(flatten)]
        env: Environment,
        id: String,
        /// For how long, e.g. 2h or 7d.
        #[arg(long = "for")]
        duration: Option<String>,
        /// Until more than this many failures arrive within a minute.
        #[arg(long)]
        rate: Option<f64>,
        /// Until this many more failures have arrived.
        #[arg(long)]
        total: Option<u64>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Mark a group unresolved.
    Unresolve {
        #[command(flatten)]
        env: Environment,
        id: String,
    },
    /// Who resolved, ignored or unresolved a group, and when it reopened on its own.
    Activity {
        #[command(flatten)]
        env: Environment,
        id: String,
    },
}

impl ErrorsCommand {
    fn env(&self) -> &Environment {
        match self {
            ErrorsCommand::List { env, .. }
            | ErrorsCommand::Show { env, .. }
            | ErrorsCommand::Resolve { env, .. }
            | ErrorsCommand::Ignore { env, .. }
            | ErrorsCommand::Unresolve { env, .. }
            | ErrorsCommand::Activity { env, .. } => env,
        }
    }
}

/// A client of the environment acting as the profile's user.
fn as_user(common: &Common, env: &Environment) -> Result<Client> {
    let client = common.client()?;
    let body = client.post(
        &env.path("jwt"),
        &json!({ "claims": { "scopes": ["read:errors", "write:errors"] }, "expirationTime": "15m" }),
    )?;
    let token: TokenBody = parse(&body)?;
    Ok(Client::new(client.api_url(), &token.token))
}

/// `key=value` pairs as a query string, values percent-encoded.
fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", segment(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

pub fn run(e: &Errors) -> Result<()> {
    let client = as_user(&e.common, e.command.env())?;
    let path = |id: &str, tail: &str| format!("/api/v1/errors/{}{tail}", segment(id));
    let body = match &e.command {
        ErrorsCommand::List {
            status,
            task,
            search,
            period,
            limit,
            after,
            ..
        } => client.get(&format!(
            "/api/v1/errors{}",
            query(&[
                ("filter[status]", status.clone()),
                ("filter[taskIdentifier]", task.clone()),
                ("filter[search]", search.clone()),
                ("filter[period]", period.clone()),
                ("page[size]", limit.map(|l| l.to_string())),
                ("page[after]", after.clone()),
            ])
        ))?,
        ErrorsCommand::Show { id, .. } => client.get(&path(id, ""))?,
        ErrorsCommand::Resolve { id, version, .. } => {
            let request = ResolveErrorRequest {
                resolved_in_version: version.clone(),
            };
            client.post(&path(id, "/resolve"), &serde_json::to_value(request)?)?
        }
        ErrorsCommand::Ignore {
            id,
            duration,
            rate,
            total,
            reason,
            ..
        } => {
            let ms = match duration {
                Some(d) => Some(
                    taskgate_core::duration::parse_duration_ms(d)
                        .filter(|ms| *ms > 0)
                        .ok_or_else(|| {
                            anyhow::anyhow!("--for: {d:?} is not a duration like 2h or 7d")
                        })? as f64,
                ),
                None => None,
            };
            let request = IgnoreErrorRequest {
                duration: ms,
                occurrence_rate: *rate,
                total_occurrences: total.map(|t| t as f64),
                reason: reason.clone(),
            };
            client.post(&path(id, "/ignore"), &serde_json::to_value(request)?)?
        }
        ErrorsCommand::Unresolve { id, .. } => client.post(&path(id, "/unresolve"), &json!({}))?,
        ErrorsCommand::Activity { id, .. } => client.get(&path(id, "/activity"))?,
    };
    if e.common.json {
        return output::json(&body);
    }
    match &e.command {
        ErrorsCommand::List { .. } => {
            let page: ListErrorsResponse = parse(&body)?;
            let rows: Vec<Vec<String>> = page
                .data
                .into_iter()
                .map(|g| {
                    vec![
                        g.id,
                        g.task_identifier,
                        g.status,
                        g.count.to_string(),
                        output::time(Some(g.last_seen)),
                        format!("{}: {}", g.error_type, one_line(&g.error_message)),
                    ]
                })
                .collect();
            output::table(
                &["ID", "TASK", "STATUS", "COUNT", "LAST SEEN", "ERROR"],
                &rows,
            );
            if let Some(next) = page.pagination.next {
                println!("\nmore: --after {next}");
            }
        }
        ErrorsCommand::Activity { .. } => {
            let history: ErrorActivityResponse = parse(&body)?;
            let rows: Vec<Vec<String>> = history
                .data
                .into_iter()
                .map(|a| {
                    vec![
                        output::time(Some(a.occurred_at)),
                        a.action,
                        a.task_identifier,
                        a.actor_user_id
                            .unwrap_or_else(|| format!("({})", a.credential_kind)),
                        [a.detail, a.reason]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join("; "),
                    ]
                })
                .collect();
            output::table(&["WHEN", "ACTION", "TASK", "BY", "DETAIL"], &rows);
        }
        _ => print_detail(&parse(&body)?),
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() > 80 {
        format!("{}…", line.chars().take(79).collect::<String>())
    } else {
        line.to_string()
    }
}

fn print_detail(d: &ErrorGroupDetail) {
    println!("{} ({})", d.id, d.status);
    println!("task:        {}", d.task_identifier);
    println!(
        "error:       {}: {}",
        d.error_type,
        one_line(&d.error_message)
    );
    println!("count:       {}", d.count);
    println!("first seen:  {}", output::time(Some(d.first_seen)));
    println!("last seen:   {}", output::time(Some(d.last_seen)));
    if !d.affected_versions.is_empty() {
        println!("versions:    {}", d.affected_versions.join(", "));
    }
    if let Some(at) = d.resolved_at {
        let by = d.resolved_by.as_deref().unwrap_or("an environment key");
        let version = d
            .resolved_in_version
            .as_deref()
            .map(|v| format!(" in {v}"))
            .unwrap_or_default();
        println!("resolved:    {}{version} by {by}", output::time(Some(at)));
    }
    if let Some(at) = d.ignored_at {
        let by = d
            .ignored_by_user_id
            .as_deref()
            .unwrap_or("an environment key");
        println!("ignored:     {} by {by}", output::time(Some(at)));
        if let Some(until) = d.ignored_until {
            println!("  until      {}", output::time(Some(until)));
        }
        if let Some(rate) = d.ignored_until_occurrence_rate {
            println!("  until      more than {rate} a minute");
        }
        if let Some(total) = d.ignored_until_total_occurrences {
            println!("  until      {total} more");
        }
        if let Some(reason) = &d.ignored_reason {
            println!("  reason     {reason}");
        }
    }
}
