//! Packets: how payloads, outputs and metadata are stored (as the SDK sends them, with their
//! type) and read back for the API and the dashboard, and the offloaded ones: the SDK uploads
//! any packet of 128 KiB or more through a URL taskgate signs (as an object store's presigned
//! URL), then sends its path (type `application/store`) where the data would have been.

use secrecy::ExposeSecret;
use serde_json::Value;
use taskgate_core::hash::{constant_time_eq, hmac_sha256};
use taskgate_core::ids::{EnvironmentId, RunFriendlyId};
use taskgate_store::StoredPacket;

use crate::{Engine, Error, Result};

/// Decodes a stored packet for the API: JSON parsed, SuperJSON's plain `json` part, text as is.
pub fn decode_packet(data: Option<&str>, kind: Option<&str>) -> Option<Value> {
    let data = data?;
    match kind.unwrap_or("application/json") {
        "application/json" => serde_json::from_str(data).ok(),
        "application/super+json" => serde_json::from_str::<Value>(data)
            .ok()
            .and_then(|v| v.get("json").cloned()),
        "text/plain" => Some(Value::String(data.to_string())),
        _ => None,
    }
}

/// The data types a packet may have: those the SDK writes. Anything else (an HTML page, say)
/// is refused, so a packet URL can never serve active content from taskgate's origin.
pub const PACKET_TYPES: [&str; 4] = [
    "application/json",
    "application/super+json",
    "text/plain",
    "application/octet-stream",
];
/// Longest packet path (the SDK's are under 100 bytes).
const MAX_PATH_BYTES: usize = 1024;
/// How long a packet URL works once handed out.
pub const PACKET_URL_TTL: chrono::Duration = chrono::Duration::hours(1);
/// Hex characters of a packet URL's signature (128 bits).
const SIGNATURE_HEX_LEN: usize = 32;

/// What a packet URL lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketAccess {
    Read,
    Write,
}

impl PacketAccess {
    fn as_str(self) -> &'static str {
        match self {
            PacketAccess::Read => "GET",
            PacketAccess::Write => "PUT",
        }
    }
}

/// Which of a run's packets (`GET /api/v1/runs/{runId}/packets/{field}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPacketField {
    Payload,
    Output,
}

/// A packet path as the SDK makes them (`trigger/packet_…/payload.json`,
/// `run_…-1/output.json`): relative, `/`-separated, no empty or dot segments, and only
/// characters a URL path carries as they are.
pub fn check_packet_path(path: &str) -> Result<()> {
    let invalid = |why: &str| Err(Error::Invalid(format!("Invalid packet path: {why}")));
    if path.is_empty() || path.len() > MAX_PATH_BYTES {
        return invalid(&format!("it must be 1 to {MAX_PATH_BYTES} bytes"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~+=@,:".contains(c);
    for segment in path.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return invalid("empty, `.` and `..` segments are not allowed");
        }
        if !segment.chars().all(allowed) {
            return invalid("use letters, digits, `/` and `-._~+=@,:`");
        }
    }
    Ok(())
}

impl Engine {
    fn packet_signature(
        &self,
        access: PacketAccess,
        environment_id: &str,
        path: &str,
        expires: i64,
    ) -> String {
        let digest = hmac_sha256(
            self.signing_secret.expose_secret(),
            format!(
                "taskgate:packet:{}:{environment_id}:{expires}:{path}",
                access.as_str()
            )
            .as_bytes(),
        );
        hex::encode(&digest[..SIGNATURE_HEX_LEN / 2])
    }

    /// A URL under `base` (the public URL) that reads or writes one packet of the
    /// environment without credentials for the next hour, as an object store's presigned URL
    /// does; the path must have passed [`check_packet_path`].
    pub fn packet_url(
        &self,
        base: &str,
        access: PacketAccess,
        environment_id: &EnvironmentId,
        path: &str,
    ) -> String {
        let expires = (self.now() + PACKET_URL_TTL).timestamp();
        let signature = self.packet_signature(access, environment_id.as_str(), path, expires);
        format!("{base}/packets/v1/{environment_id}/{path}?expires={expires}&signature={signature}")
    }

    /// Checks a packet URL's signature and expiry for `access`.
    pub fn check_packet_url(
        &self,
        access: PacketAccess,
        environment_id: &EnvironmentId,
        path: &str,
        expires: i64,
        signature: &str,
    ) -> Result<()> {
        let expected = self.packet_signature(access, environment_id.as_str(), path, expires);
        if !constant_time_eq(signature.as_bytes(), expected.as_bytes()) {
            return Err(Error::Denied("This packet URL is not valid"));
        }
        if self.now().timestamp() > expires {
            return Err(Error::Denied(
                "This packet URL has expired: ask the API for a new one",
            ));
        }
        Ok(())
    }

    /// Stores an uploaded packet (of a known data type, within the size limit).
    pub async fn store_packet(
        &self,
        environment_id: &EnvironmentId,
        path: &str,
        content_type: Option<&str>,
        data: &[u8],
    ) -> Result<()> {
        check_packet_path(path)?;
        let limit = self.settings.max_packet_bytes;
        if data.len() > limit {
            return Err(Error::PacketTooLarge(limit));
        }
        // `application/json; charset=utf-8` is application/json.
        let kind = content_type
            .and_then(|c| c.split(';').next())
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .unwrap_or("application/json");
        let Some(kind) = PACKET_TYPES.iter().find(|t| t.eq_ignore_ascii_case(kind)) else {
            return Err(Error::Invalid(format!(
                "Unsupported packet type; use one of {}",
                PACKET_TYPES.join(", ")
            )));
        };
        self.store
            .put_packet(environment_id, path, kind, data, self.now())
            .await?;
        tracing::debug!(environment.id = %environment_id, path, bytes = data.len(), "packet stored");
        Ok(())
    }

    /// A stored packet of the environment.
    pub async fn read_packet(
        &self,
        environment_id: &EnvironmentId,
        path: &str,
    ) -> Result<StoredPacket> {
        check_packet_path(path)?;
        self.store
            .get_packet(environment_id, path)
            .await?
            .ok_or(Error::NotFound("Packet not found"))
    }

    /// The path of a run's offloaded payload or output: `NotFound` when the run has none
    /// (it is unknown, or that packet is inline).
    pub async fn run_packet_path(
        &self,
        environment_id: &EnvironmentId,
        run_id: &RunFriendlyId,
        field: RunPacketField,
    ) -> Result<String> {
        let run = self
            .store
            .get_run(environment_id, run_id)
            .await?
            .ok_or(Error::RunNotFound)?;
        let (data, kind) = match field {
            RunPacketField::Payload => (run.payload, Some(run.payload_type)),
            RunPacketField::Output => (run.output, run.output_type),
        };
        match (data, kind.as_deref()) {
            (Some(path), Some(STORE_TYPE)) => Ok(path),
            _ => Err(Error::NotFound("The run has no stored packet there")),
        }
    }
}

/// The data type of a packet that was offloaded: its data is the packet's path.
pub const STORE_TYPE: &str = "application/store";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_paths_are_the_sdks_and_nothing_that_escapes() {
        for ok in [
            "trigger/packet_cm1abc/payload.json",
            "run_cm1abc-1/output.json",
            "batch_x/item/0/payload.txt",
        ] {
            assert!(check_packet_path(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(MAX_PATH_BYTES + 1);
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/../b",
            "./a",
            "a/",
            "a b",
            "a?b",
            "a#b",
            "a%2Fb",
            "a\\b",
            "é",
            long.as_str(),
        ] {
            assert!(check_packet_path(bad).is_err(), "{bad:?}");
        }
    }
}
