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
                let body = response.into_json::<Value>().ok();
                bail!("{} (HTTP {status})", describe_error(body.as_ref(), &reason))
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

/// A server's error answer as one line: its `error`, then what it says more precisely (the
/// `issues` of a validation failure, or a `detail`), e.g. `Invalid request body:
/// ttlSeconds must be at most 31536000`.
fn describe_error(body: Option<&Value>, reason: &str) -> String {
    let Some(body) = body else {
        return reason.to_string();
    };
    let error = body
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or(reason)
        .to_string();
    let mut more: Vec<String> = body
        .get("issues")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("message").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    if let Some(d) = body.get("detail").and_then(Value::as_str) {
        more.push(d.to_string());
    }
    if more.is_empty() {
        error
    } else {
        format!("{error}: {}", more.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{describe_error, segment};

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("proj_abc-1.2~"), "proj_abc-1.2~");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn errors_carry_the_servers_detail() {
        let body = json!({ "error": "Invalid request body", "issues": [{ "message": "ttlSeconds must be at most 31536000" }] });
        assert_eq!(
            describe_error(Some(&body), "Bad Request"),
            "Invalid request body: ttlSeconds must be at most 31536000"
        );
        let body = json!({ "error": "Invalid Params", "detail": "The environment must be one of dev, staging, prod or preview" });
        assert_eq!(
            describe_error(Some(&body), "Bad Request"),
            "Invalid Params: The environment must be one of dev, staging, prod or preview"
        );
        assert_eq!(
            describe_error(Some(&json!({ "error": "Not found" })), "x"),
            "Not found"
        );
        assert_eq!(describe_error(None, "Bad Gateway"), "Bad Gateway");
    }
}
