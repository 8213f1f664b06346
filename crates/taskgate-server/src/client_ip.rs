//! The address a request came from: the connection's peer, or, behind a reverse proxy named
//! with `--client-ip-header`, the last address of that header (the one the proxy added; any
//! before it are the client's own say).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::state::AppState;
use taskgate_config::Config;

/// The client's address as an extractor: `None` when the request does not say.
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts, &state.config)))
    }
}

/// The client's address, when the request says it: [`crate::serve`] records every
/// connection's peer; a router driven without it (tests) has none unless the header is set.
pub fn client_ip(parts: &Parts, config: &Config) -> Option<IpAddr> {
    if let Some(name) = &config.server.client_ip_header {
        let named = parts
            .headers
            .get_all(name)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|s| s.trim().parse::<IpAddr>().ok());
        if named.is_some() {
            return named;
        }
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(headers: &[(&str, &str)], peer: Option<&str>) -> Parts {
        let mut b = Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let (mut parts, _) = b.body(()).unwrap_or_default().into_parts();
        if let Some(p) = peer.and_then(|p| p.parse::<SocketAddr>().ok()) {
            parts.extensions.insert(ConnectInfo(p));
        }
        parts
    }

    #[test]
    fn the_peer_unless_a_trusted_proxy_names_the_client() {
        let mut config = Config::for_tests(std::path::Path::new("/tmp"));
        let p = parts(&[("x-forwarded-for", "6.6.6.6")], Some("10.0.0.1:5000"));
        assert_eq!(
            client_ip(&p, &config),
            "10.0.0.1".parse().ok(),
            "header ignored"
        );
        config.server.client_ip_header =
            Some(axum::http::HeaderName::from_static("x-forwarded-for"));
        let p = parts(
            &[("x-forwarded-for", "6.6.6.6, 203.0.113.7")],
            Some("10.0.0.1:5000"),
        );
        assert_eq!(
            client_ip(&p, &config),
            "203.0.113.7".parse().ok(),
            "the address the proxy added, not the one the client claimed"
        );
        let p = parts(&[], Some("10.0.0.1:5000"));
        assert_eq!(client_ip(&p, &config), "10.0.0.1".parse().ok());
        let p = parts(&[("x-forwarded-for", "garbage")], None);
        assert_eq!(client_ip(&p, &config), None);
    }
}
