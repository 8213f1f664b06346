//! Alert channels: upstream's `POST /api/v1/projects/{projectRef}/alertChannels` (a personal
//! access token only, as upstream), an adapter over [`taskgate_usecases::alerts`].

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use taskgate_api::alerts::*;
use taskgate_api::ErrorBody;
use taskgate_usecases::alerts::{self as uc, api_alert_type, ChannelRequest};

use super::runs::trigger::parse_json_body;
use crate::auth::extract::AccessTokenPat;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Largest body of a channel request.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// Creates an alert channel of the project, or updates the one with the same
/// `deduplicationKey`. The answer carries a webhook's signing secret.
#[utoipa::path(post, path = "/api/v1/projects/{projectRef}/alertChannels", operation_id = "createAlertChannel", tag = "alerts", security(("personalAccessToken" = [])),
    params(("projectRef" = String, Path)),
    request_body = CreateAlertChannelRequest,
    responses((status = 200, body = AlertChannelObject), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn create_alert_channel(
    State(state): State<AppState>,
    AccessTokenPat(user): AccessTokenPat,
    Path(project_ref): Path<String>,
    body: Bytes,
) -> ApiResult<Json<AlertChannelObject>> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("An alert channel's request body may be at most {MAX_BODY_BYTES} bytes"),
        ));
    }
    let r: CreateAlertChannelRequest = parse_json_body(&body)?;
    let saved = uc::upsert_channel(
        &state.usecases,
        &user,
        &project_ref,
        ChannelRequest {
            name: r.name,
            channel: r.channel,
            alert_types: r.alert_types,
            environment_types: r.environment_types.unwrap_or_default(),
            url: r.channel_data.url,
            email: r.channel_data.email,
            secret: r.channel_data.secret,
            deduplication_key: r.deduplication_key,
        },
    )
    .await?;
    let c = &saved.channel;
    Ok(Json(AlertChannelObject {
        id: c.friendly_id.clone(),
        name: c.name.clone(),
        alert_types: c
            .alert_types
            .iter()
            .map(|t| api_alert_type(t).to_string())
            .collect(),
        channel: c.kind.as_str().to_ascii_lowercase(),
        channel_data: AlertChannelData {
            url: Some(c.destination.clone()),
            secret: saved.secret,
            email: None,
        },
        deduplication_key: c
            .user_deduplication_key
            .then(|| c.deduplication_key.clone()),
    }))
}
