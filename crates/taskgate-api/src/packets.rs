//! Offloaded packets on the wire: the SDK's upload and download handshakes
//! (`/api/v2/packets/{filename}`, `/api/v1/packets/{filename}`,
//! `/api/v1/runs/{runId}/packets/{field}`), answered with a URL that works without
//! credentials for an hour, as an object store's presigned URL.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The answer to a packet handshake (the SDK's `CreateUploadPayloadUrlResponseBody`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PacketUrlResponse {
    /// `PUT` the packet's bytes here (uploads), or `GET` them (downloads).
    pub presigned_url: String,
    /// What the SDK sends as the payload (type `application/store`) once uploaded; only on
    /// `PUT /api/v2/packets/{filename}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_path: Option<String>,
}
