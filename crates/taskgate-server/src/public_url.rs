//! The URL clients are told to reach this server by (`apiUrl`, the workers' `TRIGGER_API_URL`,
//! dashboard links): `--public-url` when set, else the URL the request itself was made to.
//! Behind a proxy that rewrites `Host`, set `--public-url`.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::state::AppState;

/// The base URL, without a trailing slash.
pub struct PublicUrl(pub String);

impl FromRequestParts<AppState> for PublicUrl {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(PublicUrl(public_url(state, &parts.headers)))
    }
}

/// The URL this server is reached by when there is no request to ask: `--public-url`, else
/// the listen address (a wildcard address as the loopback one).
pub fn configured_url(config: &taskgate_config::Config) -> String {
    if let Some(url) = &config.server.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let mut addr = config.server.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}")
}

/// `--public-url`, else `<scheme>://<Host>` of the request (the scheme from
/// `X-Forwarded-Proto` when it is `https`), else the listen address.
pub fn public_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.server.public_url {
        return url.clone();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| valid_authority(h));
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    match host {
        Some(h) => format!("{scheme}://{h}"),
        None => format!("http://{}", state.config.server.listen),
    }
}

/// A `host[:port]` as URLs may carry it: letters, digits, `.-_:`, and brackets for IPv6;
/// anything else (a path, a space, userinfo) is not trusted into a URL.
fn valid_authority(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::valid_authority;

    #[test]
    fn only_plain_authorities_are_trusted() {
        for ok in [
            "localhost:3030",
            "taskgate.example.com",
            "[::1]:3030",
            "10.0.0.5",
        ] {
            assert!(valid_authority(ok), "{ok}");
        }
        for bad in ["", "evil.com/path", "a b", "user@host", "h\r\nx", "x?y"] {
            assert!(!valid_authority(bad), "{bad}");
        }
    }
}
