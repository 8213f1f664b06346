//! API rate limits: an organization's limiter configuration (the administrators' routes) and
//! the 429 body every limited `/api/*` route may answer.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A token bucket, in trigger.dev's `apiRateLimiterConfig` shape:
/// `{"type":"tokenBucket","refillRate":5,"interval":"1m","maxTokens":5}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Always `tokenBucket`.
    #[serde(rename = "type")]
    #[schema(example = "tokenBucket")]
    pub kind: String,
    /// Tokens added every `interval` (at least 1).
    pub refill_rate: u32,
    /// How often the bucket refills: an integer and a unit (`ms`, `s`, `m`, `h`), from `1s`
    /// to `1h`.
    #[schema(example = "10s")]
    pub interval: String,
    /// The most tokens the bucket holds: the burst (at least `refillRate`, at most 1000000).
    pub max_tokens: u32,
}

/// Where an organization's limit comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum RateLimitSource {
    /// Set for this organization by an administrator.
    Organization,
    /// The server's default (`--api-rate-limit-*`).
    Default,
}

/// `GET|PUT|DELETE /admin/api/v1/orgs/{orgId}/rate-limit`: the limit in force.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgRateLimitResponse {
    pub organization_id: String,
    pub source: RateLimitSource,
    pub config: RateLimitConfig,
    /// The limit in words: "sustains 25 requests per second, bursts to 750".
    pub preview: String,
}

/// The 429 answer of an empty bucket (`application/problem+json`), as upstream words it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitExceeded {
    /// `Rate Limit Exceeded`.
    pub title: String,
    pub status: u16,
    #[serde(rename = "type")]
    pub kind: String,
    pub detail: String,
    /// When the bucket next refills, in milliseconds since the epoch.
    pub reset: i64,
    pub limit: u32,
    /// `-1` when a token bucket is empty (the header says 0).
    pub remaining: i64,
    #[schema(value_type = f64)]
    pub seconds_until_reset: serde_json::Number,
    pub error: String,
}
