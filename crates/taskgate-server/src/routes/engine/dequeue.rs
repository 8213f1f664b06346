//! `POST /engine/v1/dev/dequeue`: a long poll. It answers at once with a run when the
//! environment's queue has one for the caller's worker, else waits (up to
//! `--dequeue-wait-seconds`, 10 s by default, as upstream) and answers the moment one is
//! queued: any change to a run of the environment, on this node or another (PostgreSQL
//! notifications), wakes it, as does a queued retry's time coming.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use taskgate_api::engine::*;
use taskgate_api::ErrorBody;
use taskgate_engine::Engine;

use super::lenient_body;
use crate::auth::extract::SecretKeyAuth;
use crate::error::ApiResult;

/// Takes the next run for the caller's worker, waiting for one.
#[utoipa::path(post, path = "/engine/v1/dev/dequeue", tag = "engine", security(("secretKey" = [])),
    request_body(content = DevDequeueRequest, content_type = "text/plain"),
    responses((status = 200, body = DevDequeueResponse), (status = 401, body = ErrorBody)))]
pub async fn dequeue(
    State(engine): State<Arc<Engine>>,
    SecretKeyAuth(principal): SecretKeyAuth,
    body: Bytes,
) -> ApiResult<Json<DevDequeueResponse>> {
    let body: DevDequeueRequest = lenient_body(&body)?;
    let message = engine
        .dequeue(&principal.env, body.current_worker.as_deref())
        .await?;
    Ok(Json(DevDequeueResponse {
        dequeued_messages: message.into_iter().collect(),
    }))
}
