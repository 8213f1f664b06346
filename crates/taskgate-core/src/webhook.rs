//! Outgoing webhooks: which URLs and addresses they may reach, and their signature.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Longest webhook URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Why a webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the webhook URL is not a valid URL of at most {MAX_URL_LEN} characters")]
    Invalid,
    #[error("the webhook URL must use http or https")]
    Scheme,
    #[error("the webhook URL may not carry a user name or password")]
    Credentials,
    #[error("the webhook URL points at a private, loopback or link-local address; a server started with --webhook-allow-private may send there")]
    Private,
}

/// Whether an address is one a webhook must not reach by default: loopback, private
/// (RFC 1918, unique local), link-local, carrier-grade NAT, multicast, unspecified, broadcast,
/// documentation and benchmarking ranges, and IPv4 addresses inside IPv6.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return private_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || v6 == Ipv6Addr::from([0, 0, 0, 0, 0, 0, 0, 1])
                || (v6.segments()[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible
        }
    }
}

fn private_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

/// Checks a webhook URL as a channel is made: http or https, no credentials, and (unless
/// `allow_private`) no private address literal or name (`localhost`, `*.local`,
/// `*.internal`). Names are checked again against what they resolve to at each delivery.
pub fn check_url(raw: &str, allow_private: bool) -> Result<url::Url, UrlError> {
    if raw.len() > MAX_URL_LEN {
        return Err(UrlError::Invalid);
    }
    let url = url::Url::parse(raw).map_err(|_| UrlError::Invalid)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    let host = url.host().ok_or(UrlError::Invalid)?;
    if allow_private {
        return Ok(url);
    }
    let private = match host {
        url::Host::Ipv4(v4) => is_private(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => is_private(IpAddr::V6(v6)),
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost"
                || d.ends_with(".localhost")
                || d.ends_with(".local")
                || d.ends_with(".internal")
        }
    };
    if private {
        return Err(UrlError::Private);
    }
    Ok(url)
}

/// Upstream's signature of a webhook body: lowercase hex of HMAC-SHA256 over the exact bytes
/// sent, keyed with the channel's secret (`x-trigger-signature-hmacsha256`).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_and_names_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1/x",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:8080/",
            "http://api.localhost/",
            "http://printer.local/",
            "http://metadata.google.internal/",
        ] {
            assert_eq!(check_url(url, false), Err(UrlError::Private), "{url}");
            assert!(check_url(url, true).is_ok(), "{url} with private allowed");
        }
        for url in [
            "https://hooks.example.com/in",
            "http://93.184.216.34/",
            "https://[2606:4700::1111]/",
        ] {
            assert!(check_url(url, false).is_ok(), "{url}");
        }
        assert_eq!(
            check_url("ftp://example.com/", false),
            Err(UrlError::Scheme)
        );
        assert_eq!(check_url("file:///etc/passwd", true), Err(UrlError::Scheme));
        assert_eq!(
            check_url("https://u:p@example.com/", false),
            Err(UrlError::Credentials)
        );
        assert_eq!(check_url("not a url", false), Err(UrlError::Invalid));
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(check_url(&long, false), Err(UrlError::Invalid));
    }

    #[test]
    fn signatures_match_a_known_hmac() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
