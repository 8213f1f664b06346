//! Packets: payloads and outputs too large to travel inline. The SDK offloads any packet of
//! 128 KiB or more: it asks for an upload URL, sends the bytes there, and puts the packet's
//! path (`application/store`) where the data would have been. The bytes are kept in the
//! database, per environment and path, so every node can serve them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use taskgate_core::ids::EnvironmentId;

use crate::error::StoreResult;

/// A stored packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPacket {
    /// The data type the uploader sent (`application/json`, `application/super+json`, …).
    pub content_type: String,
    pub data: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// Offloaded payloads and outputs.
#[async_trait]
pub trait PacketStore: Send + Sync {
    /// Stores the environment's packet at `path`, replacing one already there (an upload
    /// retried after a lost answer sends the same bytes again).
    async fn put_packet(
        &self,
        environment_id: &EnvironmentId,
        path: &str,
        content_type: &str,
        data: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The environment's packet at `path`.
    async fn get_packet(
        &self,
        environment_id: &EnvironmentId,
        path: &str,
    ) -> StoreResult<Option<StoredPacket>>;
}
