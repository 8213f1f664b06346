//! Who may sign in to the dashboard, and how sign-in links are emailed.

use anyhow::bail;
use secrecy::SecretString;

use crate::Names;

options! {
    /// The first administrator, who else may sign in, and email.
    pub struct SignInArgs {
        /// Email of the administrator created on first start [default: admin@taskgate.local].
        #[arg(long, env = "TASKGATE_ADMIN_EMAIL", value_name = "EMAIL")]
        pub admin_email: Option<String>,

        /// Who may sign in to the dashboard without being created first: comma-separated
        /// emails and `@domain` entries. A signed-in newcomer becomes a user [default: existing
        /// users only].
        #[arg(long, env = "TASKGATE_SIGN_IN_ALLOW", value_name = "LIST")]
        pub sign_in_allow: Option<String>,

        /// Emails made administrators when they sign in to the dashboard, comma-separated
        /// (they may sign in even when the allow-list does not name them) [default: none].
        #[arg(long, env = "TASKGATE_ADMIN_EMAILS", value_name = "LIST")]
        pub admin_emails: Option<String>,

        /// SMTP server that sends dashboard sign-in links: `smtps://user:pass@host[:465]`,
        /// `smtp://user:pass@host[:587]?tls=required` (STARTTLS), or `smtp://host:port`
        /// without TLS (a relay on this host only) [default: none; links come from `taskgate
        /// login-link`].
        #[arg(long, env = "TASKGATE_SMTP_URL", value_name = "URL", hide_env_values = true)]
        #[serde(skip)]
        pub smtp_url: Option<String>,

        /// Sender of sign-in emails, `Name <address>` or an address; required with --smtp-url.
        #[arg(long, env = "TASKGATE_SMTP_FROM", value_name = "ADDRESS")]
        pub smtp_from: Option<String>,
    }
}

/// The SMTP server and sender of sign-in emails.
#[derive(Clone)]
pub struct Smtp {
    /// May hold a password.
    pub url: SecretString,
    pub from: String,
}

/// The sign-in section, validated.
#[derive(Clone)]
pub struct SignInConfig {
    pub admin_email: String,
    /// Emails (`ada@example.com`) and domains (`@example.com`) that may sign in to the
    /// dashboard as new users, lower case.
    pub allow: Vec<String>,
    /// Emails made administrators when they sign in, lower case.
    pub admin_emails: Vec<String>,
    /// Where sign-in links are emailed from, when they are.
    pub smtp: Option<Smtp>,
}

impl Default for SignInConfig {
    fn default() -> Self {
        SignInConfig {
            admin_email: "admin@taskgate.local".into(),
            allow: Vec::new(),
            admin_emails: Vec::new(),
            smtp: None,
        }
    }
}

impl std::fmt::Debug for SignInConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInConfig")
            .field("admin_email", &"[redacted]")
            .field("allow", &self.allow.len())
            .field("admin_emails", &self.admin_emails.len())
            .field("smtp", &self.smtp.as_ref().map(|s| &s.from))
            .finish()
    }
}

impl SignInConfig {
    /// Whether `email` may sign in to the dashboard as a new user: named by the allow-list
    /// (itself or its domain) or by the admin emails.
    pub fn may_sign_up(&self, email: &str) -> bool {
        let email = email.to_ascii_lowercase();
        let domain = email.rfind('@').map(|i| &email[i..]);
        self.admin_emails.contains(&email)
            || self
                .allow
                .iter()
                .any(|entry| *entry == email || Some(entry.as_str()) == domain)
    }

    /// Whether `email` is one of the admin emails.
    pub fn is_admin_email(&self, email: &str) -> bool {
        self.admin_emails.contains(&email.to_ascii_lowercase())
    }
}

impl SignInArgs {
    pub(crate) fn validate(self, n: &impl Names) -> anyhow::Result<SignInConfig> {
        let admin_email = self
            .admin_email
            .unwrap_or_else(|| "admin@taskgate.local".to_string());
        if !admin_email.contains('@') {
            bail!(
                "{}: {admin_email:?} is not an email address",
                n("admin-email")
            );
        }
        let allow = email_list(n("sign-in-allow"), self.sign_in_allow.as_deref(), true)?;
        let admin_emails = email_list(n("admin-emails"), self.admin_emails.as_deref(), false)?;
        let smtp = match (self.smtp_url, self.smtp_from) {
            (None, None) => None,
            (None, Some(_)) => bail!("{}: needs --smtp-url as well", n("smtp-from")),
            (Some(_), None) => bail!(
                "{}: needs --smtp-from, the sender of sign-in emails",
                n("smtp-url")
            ),
            (Some(url), Some(from)) => {
                if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                    bail!("{}: must start with smtp:// or smtps://", n("smtp-url"));
                }
                if !from.contains('@') || from.len() > 320 || from.chars().any(char::is_control) {
                    bail!("{}: {from:?} is not a sender address", n("smtp-from"));
                }
                Some(Smtp {
                    url: SecretString::from(url),
                    from,
                })
            }
        };
        Ok(SignInConfig {
            admin_email,
            allow,
            admin_emails,
            smtp,
        })
    }
}

/// A comma-separated list of emails (and, when `domains`, `@domain` entries), lower case.
fn email_list(name: String, list: Option<&str>, domains: bool) -> anyhow::Result<Vec<String>> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let at = entry.find('@');
            let shaped = match at {
                Some(0) => domains && entry.len() > 1,
                Some(i) => i + 1 < entry.len() && entry[i + 1..].find('@').is_none(),
                None => false,
            };
            if !shaped || entry.len() > 254 || entry.chars().any(char::is_whitespace) {
                bail!(
                    "{name}: {entry:?} is not an email address{}",
                    if domains { " or an @domain" } else { "" }
                );
            }
            Ok(entry.to_ascii_lowercase())
        })
        .collect()
}
