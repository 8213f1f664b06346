//! A development CLI's session: its settings, its presence stream (which is how taskgate knows
//! a `trigger.dev dev` is connected), and the disconnect its watchdog sends when the CLI dies
//! with runs in flight.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use futures::stream::{self, Stream};
use taskgate_api::engine::*;
use taskgate_api::ErrorBody;
use taskgate_core::ids::RunFriendlyId;
use taskgate_engine::presence::MAX_DISCONNECT_RUNS;

use super::required_body;
use crate::auth::extract::{AccessTokenPat, SecretKeyAuth};
use crate::error::ApiResult;
use crate::public_url::PublicUrl;
use crate::state::AppState;

/// Milliseconds the CLI waits after a dequeue that found none (upstream's; dequeues are long
/// polls, so it rarely matters). After one that found a run: `--dequeue-interval-ms`.
const DEQUEUE_INTERVAL_WITHOUT_RUN_MS: u64 = 1000;
/// How often the presence stream sends a `time` event (upstream: 4 s).
const PRESENCE_EVENT_INTERVAL: Duration = Duration::from_secs(4);
/// How long a presence stream stays open before the CLI reconnects (upstream: 30 s).
const PRESENCE_STREAM_DURATION: Duration = Duration::from_secs(30);

/// The CLI's settings for this environment.
#[utoipa::path(get, path = "/engine/v1/dev/config", tag = "engine", security(("secretKey" = [])),
    responses((status = 200, body = DevConfigResponse), (status = 401, body = ErrorBody)))]
pub async fn dev_config(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    PublicUrl(base): PublicUrl,
) -> Json<DevConfigResponse> {
    Json(DevConfigResponse {
        environment_id: principal.env.environment.id.to_string(),
        dequeue_interval_with_run: state.config.engine.dequeue_interval.as_millis() as u64,
        dequeue_interval_without_run: DEQUEUE_INTERVAL_WITHOUT_RUN_MS,
        max_concurrent_runs: state.config.engine.dev_max_concurrent_runs,
        engine_url: base,
    })
}

/// Server-sent events while the CLI is connected: `start`, then `time` every 4 s; the stream
/// ends after 30 s and the CLI opens another. Each event records the CLI as present.
#[utoipa::path(get, path = "/engine/v1/dev/presence", tag = "engine", security(("secretKey" = [])),
    responses((status = 200, content_type = "text/event-stream", description = "start, then time events"), (status = 401, body = ErrorBody)))]
pub async fn dev_presence(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let env_id = principal.env.environment.id.clone();
    state.engine.touch_presence(&env_id).await;
    tracing::debug!(env.id = %env_id, "dev presence stream opened");
    let state_shutdown = state.engine.shutdown().wait();
    let ticks = (PRESENCE_STREAM_DURATION.as_secs() / PRESENCE_EVENT_INTERVAL.as_secs()) as usize;
    let start = stream::once(async { Ok(SseEvent::default().event("start").data("connected")) });
    let times = stream::unfold(
        (state, env_id, 0usize),
        move |(state, env_id, n)| async move {
            if n >= ticks {
                return None;
            }
            tokio::time::sleep(PRESENCE_EVENT_INTERVAL).await;
            state.engine.touch_presence(&env_id).await;
            let event = SseEvent::default()
                .event("time")
                .data(state.now().to_rfc3339());
            Some((Ok(event), (state, env_id, n + 1)))
        },
    );
    // The stream ends at once when the server stops; the CLI opens another.
    let events =
        futures::StreamExt::take_until(futures::StreamExt::chain(start, times), state_shutdown);
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// Cancels the runs a CLI left running when it died (its watchdog's last call). They end at
/// once: no worker is left to confirm.
#[utoipa::path(post, path = "/engine/v1/dev/disconnect", tag = "engine", security(("secretKey" = [])),
    request_body(content = DevDisconnectRequest, content_type = "application/json"),
    responses((status = 200, body = DevDisconnectResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn dev_disconnect(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    body: Bytes,
) -> ApiResult<Json<DevDisconnectResponse>> {
    let body: DevDisconnectRequest = required_body(&body)?;
    if body.run_friendly_ids.len() > MAX_DISCONNECT_RUNS {
        return Err(crate::error::ApiError::invalid_body(format!(
            "runFriendlyIds may name at most {MAX_DISCONNECT_RUNS} runs"
        )));
    }
    let run_ids: Vec<RunFriendlyId> = body
        .run_friendly_ids
        .into_iter()
        .map(RunFriendlyId::from)
        .collect();
    let cancelled = state
        .engine
        .disconnect(&principal.env.environment.id, &run_ids)
        .await?;
    Ok(Json(DevDisconnectResponse { cancelled }))
}

/// Notices for the CLI's banner: taskgate has none.
#[utoipa::path(get, path = "/api/v1/platform-notifications", tag = "engine", security(("personalAccessToken" = [])),
    responses((status = 200, body = PlatformNotificationsResponse), (status = 401, body = ErrorBody)))]
pub async fn platform_notifications(
    AccessTokenPat(_user): AccessTokenPat,
) -> Json<PlatformNotificationsResponse> {
    Json(PlatformNotificationsResponse { notification: None })
}
