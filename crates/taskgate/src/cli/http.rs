//! The HTTP calls: a blocking `ureq` client that sends the bearer token, answers with the JSON
//! body, and turns a server's `{"error": …}` into `<error> (HTTP <status>)`.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

/// A server and the token to present to it.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: String,
}

impl Client {
    pub fn new(api_url: &str, token: &str) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            // A redirect would drop the token (or, to another host, must not carry it): show it.
            .redirects(0)
            .user_agent(concat!("taskgate-cli/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent,
            base: api_url.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    pub fn api_url(&self) -> &str {
        &self.base
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        self.send("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.send("POST", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> Result<Value> {
        self.send("DELETE", path, None)
    }

    fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let request = self
            .agent
            .request(method, &url)
            .set("Authorization", &format!("Bearer {}", self.token))
            .set("Accept", "application/json");
        let result = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match result {
            Ok(response) if response.status() >= 300 => {
                let to = response
                    .header("location")
                    .unwrap_or("elsewhere")
                    .to_string();
                bail!(
                    "{url} redirects to {to} (HTTP {}): give that URL as --api-url",
                    response.status()
                )
            }
            Ok(response) => {
                let text = response.into_string()?;
                if text.trim().is_empty() {
                    return Ok(Value::Null);
                }
                serde_json::from_str(&text).map_err(|_| {
                    anyhow!("{url} did not answer with JSON: is it a taskgate server?")
                })
            }
            Err(ureq::Error::Status(status, response)) => {
                let reason = response.status_text().to_string();
                let message = response
                    .into_json::<Value>()
                    .ok()
                    .and_then(|v| v.get("error")?.as_str().map(str::to_string))
                    .unwrap_or(reason);
                bail!("{message} (HTTP {status})")
            }
            Err(ureq::Error::Transport(t)) => {
                let mut detail = t.kind().to_string();
                if let Some(message) = t.message() {
                    detail = format!("{detail}: {message}");
                }
                if let Some(source) = std::error::Error::source(&t) {
                    detail = format!("{detail}: {source}");
                }
                bail!("could not reach {url}: {detail}")
            }
        }
    }
}

/// `s` as one URL path segment (percent-encoded but for RFC 3986's unreserved characters).
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("proj_abc-1.2~"), "proj_abc-1.2~");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("é"), "%C3%A9");
    }
}
