//! Per-organization API rate limits: what limit an organization's secret keys are held to,
//! set and cleared by administrators, every change audited.

use taskgate_api::ratelimit::{OrgRateLimitResponse, RateLimitConfig, RateLimitSource};
use taskgate_auth::UserPrincipal;
use taskgate_core::ratelimit::{Interval, LimitConfig};
use taskgate_core::Problem;
use taskgate_store::StoreError;

use crate::{Result, UseCases};

/// A request body as a limit, or a 400 naming the field that breaks the rules.
pub fn parse_limit(body: &RateLimitConfig) -> Result<LimitConfig> {
    let bad = |field: &str, message: &str| {
        Problem::invalid(format!("{field} {message}")).with("field", field)
    };
    if body.kind != "tokenBucket" {
        return Err(bad("type", "must be \"tokenBucket\""));
    }
    let interval = Interval::parse(&body.interval).ok_or_else(|| {
        bad(
            "interval",
            "must be a duration such as \"10s\", \"1m\" or \"1h\"",
        )
    })?;
    LimitConfig::token_bucket(body.refill_rate, interval, body.max_tokens)
        .map_err(|e| bad(e.field, e.message))
}

/// Sets (`Some`) or clears an organization's limit as `admin` (an administrator: the caller
/// checks).
pub async fn change(
    uc: &UseCases,
    admin: &UserPrincipal,
    org_id: &str,
    limit: Option<LimitConfig>,
) -> Result<()> {
    match uc
        .store
        .set_org_rate_limit(org_id, limit.as_ref(), &admin.actor(), uc.now())
        .await
    {
        Ok(()) => {
            match &limit {
                Some(l) => {
                    tracing::info!(org.id = %org_id, limit = %l.preview(), "organization rate limit set")
                }
                None => {
                    tracing::info!(org.id = %org_id, "organization rate limit reset to the default")
                }
            }
            Ok(())
        }
        Err(StoreError::NotFound) => Err(Problem::not_found("Organization not found")),
        Err(e) => Err(e.into()),
    }
}

/// The limit in force for an organization.
pub async fn org_rate_limit(uc: &UseCases, org_id: &str) -> Result<OrgRateLimitResponse> {
    let own = match uc.store.org_rate_limit(org_id).await {
        Ok(own) => own,
        Err(StoreError::NotFound) => return Err(Problem::not_found("Organization not found")),
        Err(e) => return Err(e.into()),
    };
    let default = uc.settings.default_rate_limit.clone();
    let (source, limit) = match own {
        Some(limit) => (RateLimitSource::Organization, limit),
        None => (RateLimitSource::Default, default),
    };
    Ok(OrgRateLimitResponse {
        organization_id: org_id.to_string(),
        source,
        preview: limit.preview(),
        config: wire(&limit),
    })
}

fn wire(limit: &LimitConfig) -> RateLimitConfig {
    match limit {
        LimitConfig::TokenBucket {
            refill_rate,
            interval,
            max_tokens,
        } => RateLimitConfig {
            kind: "tokenBucket".into(),
            refill_rate: *refill_rate,
            interval: interval.as_str().to_string(),
            max_tokens: *max_tokens,
        },
        // Organizations and the server's default are token buckets; a window reads as one
        // that refills completely every window.
        LimitConfig::FixedWindow { window, tokens } => RateLimitConfig {
            kind: "fixedWindow".into(),
            refill_rate: *tokens,
            interval: window.as_str().to_string(),
            max_tokens: *tokens,
        },
    }
}
