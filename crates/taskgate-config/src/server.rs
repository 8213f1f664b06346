//! Where taskgate listens, what it is called, and how long each stage of serving may take.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::{in_range, Names};

/// Default listen address: loopback, so a first start exposes nothing to the network.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3030";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./taskgate-data";
/// Largest JSON body any management route accepts (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// A request's head arrives in one packet or a few; ten seconds is generous to slow links and
/// short for a client trickling headers to hold a connection.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECONDS: u64 = 10;
/// Longer than clients keep idle connections (Node's fetch: 4 s; browsers: up to a minute),
/// so the client, not the server, closes them and no request races a closing connection.
pub const DEFAULT_KEEPALIVE_TIMEOUT_SECONDS: u64 = 60;
/// Enough for the largest payload (3 MiB) over a slow link.
pub const DEFAULT_BODY_TIMEOUT_SECONDS: u64 = 30;
/// A request that has not answered in a minute is stuck; answering 503 frees the client.
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 60;
/// Orchestrators send SIGKILL some 30 s after SIGTERM; ten seconds leaves room.
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECONDS: u64 = 10;

options! {
    /// Where taskgate listens and stores its files, and its connection and request limits.
    pub struct ServerArgs {
        /// Address to listen on: IP:port or host:port [default: 127.0.0.1:3030].
        #[arg(long, env = "TASKGATE_LISTEN", value_name = "ADDR")]
        pub listen: Option<String>,

        /// Directory for the embedded database, generated secrets and the admin token
        /// [default: ./taskgate-data].
        #[arg(long, env = "TASKGATE_DATA_DIR", value_name = "DIR")]
        pub data_dir: Option<PathBuf>,

        /// Public URL of this server, returned as `apiUrl` and given to workers [default: the
        /// URL each request was made to, from its Host header].
        #[arg(long, env = "TASKGATE_PUBLIC_URL", value_name = "URL")]
        pub public_url: Option<String>,

        /// The header a reverse proxy in front of taskgate puts the client's address in
        /// (`x-forwarded-for`, `x-real-ip`); its last address is taken, the one the proxy
        /// added. Set it only behind such a proxy: a client can send the header too [default:
        /// none; the connection's peer address].
        #[arg(long, env = "TASKGATE_CLIENT_IP_HEADER", value_name = "HEADER")]
        pub client_ip_header: Option<String>,

        /// Largest request body of the JSON routes, in bytes (1024 to 1073741824)
        /// [default: 1048576].
        #[arg(long, env = "TASKGATE_MAX_BODY_BYTES", value_name = "BYTES")]
        pub max_body_bytes: Option<usize>,

        /// Seconds a client has to send a request's head (request line and headers) once it
        /// has sent its first byte (1 to 300) [default: 10].
        #[arg(long, env = "TASKGATE_HEADER_READ_TIMEOUT_SECONDS", value_name = "SECONDS")]
        pub header_read_timeout_seconds: Option<u64>,

        /// Seconds an open connection may sit with no request before it is closed (1 to 3600)
        /// [default: 60].
        #[arg(long, env = "TASKGATE_KEEPALIVE_TIMEOUT_SECONDS", value_name = "SECONDS")]
        pub keepalive_timeout_seconds: Option<u64>,

        /// Seconds a client has to send a request's whole body (1 to 3600; streams a task
        /// writes to are exempt) [default: 30].
        #[arg(long, env = "TASKGATE_BODY_TIMEOUT_SECONDS", value_name = "SECONDS")]
        pub body_timeout_seconds: Option<u64>,

        /// Seconds a request may take from its head to its answer, body included (1 to 3600;
        /// long polls, event streams and the worker channel keep their own limits)
        /// [default: 60].
        #[arg(long, env = "TASKGATE_REQUEST_TIMEOUT_SECONDS", value_name = "SECONDS")]
        pub request_timeout_seconds: Option<u64>,

        /// Seconds a shutdown waits for requests in flight before it cuts them off (0 to
        /// 3600); a second SIGINT or SIGTERM ends the wait at once [default: 10].
        #[arg(long, env = "TASKGATE_SHUTDOWN_TIMEOUT_SECONDS", value_name = "SECONDS")]
        pub shutdown_timeout_seconds: Option<u64>,
    }
}

/// How long each stage of serving may take; see the `*_timeout_seconds` options.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From a request's first byte to its last header.
    pub header_read: Duration,
    /// A connection with no request in flight and no byte of the next one.
    pub keepalive: Duration,
    /// From a request's head to its body's last byte.
    pub body: Duration,
    /// From a request's head to its answer (routes that stream or long-poll excepted).
    pub request: Duration,
    /// How long a shutdown waits for requests in flight.
    pub shutdown: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header_read: Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT_SECONDS),
            keepalive: Duration::from_secs(DEFAULT_KEEPALIVE_TIMEOUT_SECONDS),
            body: Duration::from_secs(DEFAULT_BODY_TIMEOUT_SECONDS),
            request: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECONDS),
            shutdown: Duration::from_secs(DEFAULT_SHUTDOWN_TIMEOUT_SECONDS),
        }
    }
}

/// The server section, validated.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// What clients are told to call this server by (`apiUrl`); without it, the URL each
    /// request was made to (its `Host`).
    pub public_url: Option<String>,
    /// The header a trusted proxy names the client's address in.
    pub client_ip_header: Option<http::HeaderName>,
    pub max_body_bytes: usize,
    /// How long connections, requests and the shutdown may take.
    pub timeouts: Timeouts,
}

impl ServerConfig {
    /// Loopback on an ephemeral port, files in `data_dir`, a fixed public URL.
    pub fn for_tests(data_dir: &Path) -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_path_buf(),
            public_url: Some("http://127.0.0.1:3030".into()),
            client_ip_header: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            timeouts: Timeouts::default(),
        }
    }
}

impl ServerArgs {
    pub(crate) fn validate(self, n: &impl Names) -> anyhow::Result<ServerConfig> {
        let listen_raw = self.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = resolve_listen(&listen_raw).with_context(|| n("listen"))?;
        let client_ip_header = match self.client_ip_header.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(name) => Some(
                http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(
                    |_| anyhow::anyhow!("{}: {name:?} is not a header name", n("client-ip-header")),
                )?,
            ),
        };
        let max_body_bytes = self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        in_range(n("max-body-bytes"), max_body_bytes, 1024, 1 << 30)?;
        let seconds = |option: &str, value: Option<u64>, default: u64, min: u64, max: u64| {
            let v = value.unwrap_or(default);
            in_range(n(option), v, min, max).map(|()| Duration::from_secs(v))
        };
        let timeouts = Timeouts {
            header_read: seconds(
                "header-read-timeout-seconds",
                self.header_read_timeout_seconds,
                DEFAULT_HEADER_READ_TIMEOUT_SECONDS,
                1,
                300,
            )?,
            keepalive: seconds(
                "keepalive-timeout-seconds",
                self.keepalive_timeout_seconds,
                DEFAULT_KEEPALIVE_TIMEOUT_SECONDS,
                1,
                3600,
            )?,
            body: seconds(
                "body-timeout-seconds",
                self.body_timeout_seconds,
                DEFAULT_BODY_TIMEOUT_SECONDS,
                1,
                3600,
            )?,
            request: seconds(
                "request-timeout-seconds",
                self.request_timeout_seconds,
                DEFAULT_REQUEST_TIMEOUT_SECONDS,
                1,
                3600,
            )?,
            shutdown: seconds(
                "shutdown-timeout-seconds",
                self.shutdown_timeout_seconds,
                DEFAULT_SHUTDOWN_TIMEOUT_SECONDS,
                0,
                3600,
            )?,
        };
        let public_url = match self.public_url {
            Some(url) => {
                let trimmed = url.trim_end_matches('/').to_string();
                if !(trimmed.starts_with("http://") || trimmed.starts_with("https://"))
                    || trimmed.len() < "http://x".len()
                {
                    bail!(
                        "{}: expected an http:// or https:// URL, got {url:?}",
                        n("public-url")
                    );
                }
                Some(trimmed)
            }
            None => None,
        };
        Ok(ServerConfig {
            listen,
            data_dir: self
                .data_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            public_url,
            client_ip_header,
            max_body_bytes,
            timeouts,
        })
    }
}

/// The address to bind: an IP address and port, or a host name (`localhost:3030`) resolved to
/// its first address.
fn resolve_listen(raw: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = raw.parse() {
        return Ok(addr);
    }
    let hint = || format!("{raw:?} is not an address like 127.0.0.1:3030 or localhost:3030");
    let (host, port) = raw.rsplit_once(':').with_context(hint)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        bail!("{}", hint());
    }
    let mut addrs = raw.to_socket_addrs().with_context(hint)?;
    // Prefer IPv4, which every client of `localhost` can reach.
    let all: Vec<SocketAddr> = addrs.by_ref().collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or_else(|| all.first())
        .copied()
        .with_context(hint)
}
