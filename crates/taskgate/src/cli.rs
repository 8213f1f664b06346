//! Client subcommands: `login`, `whoami`, `mint-token`, `tokens list|create|revoke`,
//! `keys rotate|grace|revoked`, `env list|get|set|import|unset`, `errors …` and
//! `waitpoints list|show|complete`, `schedules list|activate|deactivate`, talking to a running
//! server with a personal access token kept in a profile (`profile`), over blocking HTTP
//! (`http`), printed as text or JSON (`output`).

mod errors;
mod http;
mod output;
mod profile;
mod schedules;
mod waitpoints;

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use taskgate_api::{
    CreatedTokenResponse, RegenerateApiKeyResponse, RevokedKeyListResponse, TokenListResponse,
    TokenResponse, UpdateRevokedKeyResponse, WhoAmIResponse,
};
use taskgate_core::duration::parse_duration_ms;
use taskgate_core::time::iso_millis;

use http::{segment, Client};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Check a personal access token against a server and save both in a profile.
    Login(Common),
    /// Show the user behind the token.
    Whoami(Common),
    /// Mint a short-lived user-actor token (tr_uat_…) from the personal access token.
    MintToken(MintToken),
    /// Manage your personal access tokens.
    Tokens(Tokens),
    /// Rotate environment secret keys and manage the old keys' grace windows.
    Keys(Keys),
    /// An environment's variables (what its task processes get; sealed at rest).
    Env(EnvVars),
    /// Failed runs grouped by error: list, inspect and triage them as yourself.
    Errors(Box<errors::Errors>),
    /// Wait tokens: list them, show one, complete one (its waiting runs continue).
    Waitpoints(Box<waitpoints::Waitpoints>),
    /// Schedules: list them with their next and last runs, switch one on or off.
    Schedules(Box<schedules::Schedules>),
}

/// What every client command takes.
#[derive(Args)]
pub struct Common {
    /// The profile to use (for `login`: to save).
    #[arg(long, global = true, default_value = "default")]
    profile: String,
    /// The server's URL (default: the profile's).
    #[arg(long, global = true, env = "TASKGATE_API_URL")]
    api_url: Option<String>,
    /// A personal access token (default: the profile's).
    #[arg(long, global = true, env = "TASKGATE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the server's JSON answer.
    #[arg(long, global = true)]
    json: bool,
}

impl std::fmt::Debug for Common {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Common")
            .field("profile", &self.profile)
            .field("api_url", &self.api_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("json", &self.json)
            .finish()
    }
}

impl Common {
    /// A client for the flags' (or environment's) URL and token, else the profile's.
    pub(crate) fn client(&self) -> Result<Client> {
        let saved = match (&self.api_url, &self.token) {
            (Some(_), Some(_)) => None,
            _ => profile::load(&self.profile)?,
        };
        let api_url = self
            .api_url
            .clone()
            .or_else(|| saved.as_ref().map(|p| p.api_url.clone()));
        let token = self.token.clone().or_else(|| saved.map(|p| p.token));
        match (api_url, token) {
            (Some(url), Some(token)) => Ok(Client::new(&url, &token)),
            _ => bail!(
                "no profile \"{}\": run `taskgate login --api-url URL --token TOKEN`, or pass --api-url and --token",
                self.profile
            ),
        }
    }
}

/// One `--cap` scope, checked before anything is sent.
fn parse_cap_scope(s: &str) -> Result<String, String> {
    taskgate_core::scope::check_grammar(s).map(|()| s.to_string())
}

#[derive(Debug, Args)]
pub struct MintToken {
    /// Lifetime in seconds (server default 3600).
    #[arg(long)]
    ttl: Option<u64>,
    /// Scope cap, comma-separated (e.g. read:runs,write:runs); without it the token can only read.
    #[arg(long, value_delimiter = ',', value_parser = parse_cap_scope)]
    cap: Option<Vec<String>>,
    /// The client named in the token and in what it is exchanged for.
    #[arg(long, default_value = "cli")]
    client: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
pub struct Tokens {
    #[command(subcommand)]
    command: TokensCommand,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// List your tokens (revoked ones too; never their plaintext).
    List,
    /// Create a token; its plaintext is printed this once.
    Create {
        #[arg(long)]
        name: String,
    },
    /// Revoke a token, and every user-actor token and JWT obtained with it.
    Revoke {
        /// The token's id (see `tokens list`).
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct Keys {
    #[command(subcommand)]
    command: KeysCommand,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Generate a new secret key; the old one keeps working through its grace window.
    Rotate(Environment),
    /// End, move or re-open an old key's grace window (administrators only).
    Grace {
        /// The revoked key's id (printed by `keys rotate`, listed by `keys revoked`).
        id: String,
        /// `now` (ends the grace), an ISO-8601 time, or `+DURATION` from now (`+2h`, `+30m`, `+1d`).
        #[arg(long)]
        expires_at: String,
    },
    /// List an environment's old keys, their grace windows and their use since rotation.
    Revoked(Environment),
}

#[derive(Debug, Args)]
pub(crate) struct Environment {
    /// The project's reference (proj_…).
    #[arg(long)]
    project: String,
    #[arg(long, value_parser = ["prod", "staging", "dev", "preview"])]
    env: String,
}

impl Environment {
    pub(crate) fn path(&self, tail: &str) -> String {
        format!(
            "/api/v1/projects/{}/{}/{tail}",
            segment(&self.project),
            self.env
        )
    }

    /// `/api/v1/projects/{ref}/envvars/{env}` followed by `tail` (`""`, `/NAME`, `/import`).
    fn envvars(&self, tail: &str) -> String {
        format!(
            "/api/v1/projects/{}/envvars/{}{tail}",
            segment(&self.project),
            self.env
        )
    }
}

#[derive(Debug, Args)]
pub struct EnvVars {
    #[command(subcommand)]
    command: EnvCommand,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
enum EnvCommand {
    /// List the variables (secret values redacted).
    List(Environment),
    /// Print one variable's value.
    Get {
        #[command(flatten)]
        env: Environment,
        name: String,
    },
    /// Set a variable; its value is read from standard input unless --value is given (a value
    /// on the command line is visible to other users of the machine).
    Set {
        #[command(flatten)]
        env: Environment,
        name: String,
        #[arg(long)]
        value: Option<String>,
        /// Redact it in listings from now on.
        #[arg(long)]
        secret: bool,
    },
    /// Set the variables of a dotenv file (KEY=VALUE lines); existing ones keep their values
    /// unless --override.
    Import {
        #[command(flatten)]
        env: Environment,
        #[arg(long)]
        file: std::path::PathBuf,
        #[arg(long = "override")]
        replace: bool,
        #[arg(long)]
        secret: bool,
    },
    /// Delete a variable.
    Unset {
        #[command(flatten)]
        env: Environment,
        name: String,
    },
}

/// The answer of `POST /api/v1/auth/user-actor-token`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MintedToken {
    token: String,
    expires_in_seconds: u64,
}

pub async fn run(cmd: ClientCommand) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || match cmd {
        ClientCommand::Login(c) => login(&c),
        ClientCommand::Whoami(c) => whoami(&c),
        ClientCommand::MintToken(m) => mint_token(&m),
        ClientCommand::Tokens(t) => tokens(&t),
        ClientCommand::Keys(k) => keys(&k),
        ClientCommand::Env(e) => env_vars(&e),
        ClientCommand::Errors(e) => errors::run(&e),
        ClientCommand::Waitpoints(w) => waitpoints::run(&w),
        ClientCommand::Schedules(s) => schedules::run(&s),
    })
    .await?
}

/// A wire type out of a JSON answer.
pub(crate) fn parse<T: DeserializeOwned>(body: &Value) -> Result<T> {
    serde_json::from_value(body.clone()).context("the server's answer has an unexpected shape")
}

fn login(c: &Common) -> Result<()> {
    let api_url = c
        .api_url
        .as_deref()
        .ok_or_else(|| anyhow!("login needs --api-url (or TASKGATE_API_URL)"))?;
    let token = c
        .token
        .as_deref()
        .ok_or_else(|| anyhow!("login needs --token (or TASKGATE_TOKEN)"))?;
    let client = Client::new(api_url, token);
    let body = client.get("/api/v2/whoami")?;
    let me: WhoAmIResponse = parse(&body)?;
    let saved = profile::Profile {
        api_url: client.api_url().to_string(),
        token: token.to_string(),
    };
    let path = profile::save(&c.profile, saved)?;
    if c.json {
        return output::json(&body);
    }
    println!(
        "Logged in to {} as {}; profile \"{}\" saved in {}",
        client.api_url(),
        me.email,
        c.profile,
        path.display()
    );
    Ok(())
}

fn whoami(c: &Common) -> Result<()> {
    let client = c.client()?;
    let body = client.get("/api/v2/whoami")?;
    if c.json {
        return output::json(&body);
    }
    let me: WhoAmIResponse = parse(&body)?;
    println!("{} (user {}) on {}", me.email, me.user_id, client.api_url());
    Ok(())
}

fn mint_token(m: &MintToken) -> Result<()> {
    let client = m.common.client()?;
    let mut request = Map::new();
    if let Some(ttl) = m.ttl {
        request.insert("ttlSeconds".into(), json!(ttl));
    }
    if let Some(cap) = &m.cap {
        request.insert("cap".into(), json!(cap));
    }
    request.insert("client".into(), json!(m.client));
    let body = client.post("/api/v1/auth/user-actor-token", &Value::Object(request))?;
    if m.common.json {
        return output::json(&body);
    }
    let minted: MintedToken = parse(&body)?;
    let me: WhoAmIResponse = parse(&client.get("/api/v2/whoami")?)?;
    println!("{}", minted.token);
    eprintln!(
        "Minted token for {} (expires in {}s)",
        me.email, minted.expires_in_seconds
    );
    Ok(())
}

fn tokens(t: &Tokens) -> Result<()> {
    let client = t.common.client()?;
    let body = match &t.command {
        TokensCommand::List => client.get("/api/v1/personal-access-tokens")?,
        TokensCommand::Create { name } => {
            client.post("/api/v1/personal-access-tokens", &json!({ "name": name }))?
        }
        TokensCommand::Revoke { id } => {
            client.delete(&format!("/api/v1/personal-access-tokens/{}", segment(id)))?
        }
    };
    if t.common.json {
        return output::json(&body);
    }
    match &t.command {
        TokensCommand::List => {
            let list: TokenListResponse = parse(&body)?;
            let rows: Vec<Vec<String>> = list
                .tokens
                .into_iter()
                .map(|t| {
                    vec![
                        t.id,
                        t.name,
                        t.obfuscated_token,
                        output::time(Some(t.created_at)),
                        output::time(t.last_accessed_at),
                        output::time(t.revoked_at),
                    ]
                })
                .collect();
            output::table(
                &["ID", "NAME", "TOKEN", "CREATED", "LAST USED", "REVOKED"],
                &rows,
            );
        }
        TokensCommand::Create { name } => {
            let created: CreatedTokenResponse = parse(&body)?;
            println!("{}", created.token);
            eprintln!(
                "Created token \"{name}\" ({}); its plaintext is shown only this once",
                created.id
            );
        }
        TokensCommand::Revoke { .. } => {
            let revoked: TokenResponse = parse(&body)?;
            println!(
                "Revoked token \"{}\" ({}, {})",
                revoked.name, revoked.id, revoked.obfuscated_token
            );
        }
    }
    Ok(())
}

fn keys(k: &Keys) -> Result<()> {
    let client = k.common.client()?;
    let body = match &k.command {
        KeysCommand::Rotate(env) => client.post(&env.path("regenerate-api-key"), &json!({}))?,
        KeysCommand::Grace { id, expires_at } => client.post(
            &format!("/admin/api/v1/revoked-api-keys/{}", segment(id)),
            &json!({ "expiresAt": parse_expires_at(expires_at, Utc::now())? }),
        )?,
        KeysCommand::Revoked(env) => client.get(&env.path("revoked-api-keys"))?,
    };
    if k.common.json {
        return output::json(&body);
    }
    match &k.command {
        KeysCommand::Rotate(_) => {
            let rotated: RegenerateApiKeyResponse = parse(&body)?;
            let old = rotated.revoked_api_key;
            println!("{}", rotated.api_key);
            eprintln!(
                "The old key (revoked key {}) keeps working until {}; end that with `taskgate keys grace {} --expires-at now`",
                old.id,
                output::time(Some(old.expires_at)),
                old.id
            );
        }
        KeysCommand::Grace { id, expires_at } => {
            let updated: UpdateRevokedKeyResponse = parse(&body)?;
            if expires_at.trim().eq_ignore_ascii_case("now") {
                println!(
                    "The grace of revoked key {id} has ended: the old key is refused from now on"
                );
            } else {
                println!(
                    "Revoked key {id} is accepted until {}",
                    updated.revoked_api_key.expires_at
                );
            }
        }
        KeysCommand::Revoked(_) => {
            let list: RevokedKeyListResponse = parse(&body)?;
            let rows: Vec<Vec<String>> = list
                .revoked_api_keys
                .into_iter()
                .map(|k| {
                    vec![
                        k.id,
                        format!("…{}", k.last_four),
                        output::time(Some(k.expires_at)),
                        if k.active { "yes" } else { "no" }.to_string(),
                        k.use_count.to_string(),
                        output::time(k.last_used_at),
                    ]
                })
                .collect();
            output::table(
                &["ID", "KEY", "GRACE UNTIL", "ACCEPTED", "USES", "LAST USED"],
                &rows,
            );
        }
    }
    Ok(())
}

fn env_vars(e: &EnvVars) -> Result<()> {
    use taskgate_api::envvars::*;
    let client = e.common.client()?;
    let body = match &e.command {
        EnvCommand::List(env) => client.get(&env.envvars(""))?,
        EnvCommand::Get { env, name } => {
            client.get(&env.envvars(&format!("/{}", segment(name))))?
        }
        EnvCommand::Set {
            env,
            name,
            value,
            secret,
        } => {
            let value = match value {
                Some(v) => v.clone(),
                None => {
                    let mut v = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut v)
                        .context("cannot read the value from standard input")?;
                    v.strip_suffix('\n').unwrap_or(&v).to_string()
                }
            };
            let request = CreateEnvVarRequest {
                name: name.clone(),
                value,
                is_secret: Some(*secret),
            };
            client.post(&env.envvars(""), &serde_json::to_value(request)?)?
        }
        EnvCommand::Import {
            env,
            file,
            replace,
            secret,
        } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let request = ImportEnvVarsRequest {
                variables: parse_dotenv(&text)?,
                parent_variables: None,
                r#override: Some(*replace),
                is_secret: Some(*secret),
            };
            client.post(&env.envvars("/import"), &serde_json::to_value(request)?)?
        }
        EnvCommand::Unset { env, name } => {
            client.delete(&env.envvars(&format!("/{}", segment(name))))?
        }
    };
    if e.common.json {
        return output::json(&body);
    }
    match &e.command {
        EnvCommand::List(_) => {
            let items: Vec<EnvVarItem> = parse(&body)?;
            let rows: Vec<Vec<String>> = items
                .into_iter()
                .map(|v| {
                    vec![
                        v.name,
                        v.value,
                        if v.is_secret { "yes" } else { "no" }.into(),
                    ]
                })
                .collect();
            output::table(&["NAME", "VALUE", "SECRET"], &rows);
        }
        EnvCommand::Get { .. } => {
            let value: EnvVarValue = parse(&body)?;
            if value.is_secret {
                bail!(
                    "{} is a secret variable: its value is write-only and cannot be read back (the environment's runs receive it)",
                    value.name
                );
            }
            println!("{}", value.value);
        }
        EnvCommand::Set { name, .. } => println!("Set {name}"),
        EnvCommand::Import { file, .. } => println!("Imported {}", file.display()),
        EnvCommand::Unset { name, .. } => println!("Deleted {name}"),
    }
    Ok(())
}

/// `KEY=VALUE` lines of a dotenv file: blank lines and `#` comments skipped, an optional
/// `export ` prefix, values optionally in single or double quotes (`\n` in double quotes is
/// a newline). A line without `=` is an error naming its number.
fn parse_dotenv(text: &str) -> Result<std::collections::BTreeMap<String, String>> {
    let mut vars = std::collections::BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| anyhow!("line {}: expected KEY=VALUE", n + 1))?;
        let value = value.trim();
        let value = if let Some(v) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            v.replace("\\n", "\n")
        } else if let Some(v) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            v.to_string()
        } else {
            value.to_string()
        };
        vars.insert(key.trim().to_string(), value);
    }
    Ok(vars)
}

/// `--expires-at` as the admin route takes it: `now` is `null` (ends the grace at once),
/// `+DURATION` is that long after `now`, an ISO-8601 time (with an offset, or a bare date) is
/// sent as written.
fn parse_expires_at(arg: &str, now: DateTime<Utc>) -> Result<Value> {
    let arg = arg.trim();
    if arg.eq_ignore_ascii_case("now") {
        return Ok(Value::Null);
    }
    if let Some(duration) = arg.strip_prefix('+') {
        let at = parse_duration_ms(duration)
            .filter(|ms| *ms >= 0)
            .and_then(|ms| now.checked_add_signed(chrono::Duration::milliseconds(ms)))
            .ok_or_else(|| anyhow!("--expires-at {arg}: not a duration (try +2h, +30m or +1d)"))?;
        return Ok(Value::String(iso_millis(at)));
    }
    if DateTime::parse_from_rfc3339(arg).is_ok()
        || NaiveDate::parse_from_str(arg, "%Y-%m-%d").is_ok()
    {
        return Ok(Value::String(arg.to_string()));
    }
    bail!("--expires-at {arg}: expected `now`, `+DURATION` (e.g. +2h) or an ISO-8601 time such as 2030-01-31T12:00:00Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_files_parse() {
        let vars = parse_dotenv(
            "# a comment\n\nA=1\nexport B = two words \nC=\"x\\ny\"\nD='single'\nE=a=b\n",
        )
        .unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "x\ny");
        assert_eq!(vars["D"], "single");
        assert_eq!(vars["E"], "a=b");
        let err = parse_dotenv("A=1\nnot a variable\n").unwrap_err();
        assert_eq!(err.to_string(), "line 2: expected KEY=VALUE");
    }

    #[test]
    fn expires_at_forms() {
        let now = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_expires_at("now", now).unwrap(), Value::Null);
        assert_eq!(parse_expires_at(" NOW ", now).unwrap(), Value::Null);
        assert_eq!(
            parse_expires_at("+2h", now).unwrap(),
            json!("2030-01-01T02:00:00.000Z")
        );
        assert_eq!(
            parse_expires_at("+1d30m", now).unwrap(),
            json!("2030-01-02T00:30:00.000Z")
        );
        assert_eq!(
            parse_expires_at("2030-02-01T10:00:00+01:00", now).unwrap(),
            json!("2030-02-01T10:00:00+01:00")
        );
        assert_eq!(
            parse_expires_at("2030-02-01", now).unwrap(),
            json!("2030-02-01")
        );
        assert!(parse_expires_at("+soon", now).is_err());
        assert!(parse_expires_at("+-2h", now).is_err());
        assert!(parse_expires_at("2h", now).is_err());
        assert!(parse_expires_at("tomorrow", now).is_err());
    }
}
