//! `GET /realtime/v1/runs/{runId}` (`runs.subscribeToRun`): ElectricSQL's shape protocol,
//! served natively. A snapshot answers `[insert, up-to-date]`;
//! a live request waits (about 20 s) for the run's version to pass the client's offset and
//! answers `[update, up-to-date]`, or `[up-to-date]` on timeout.

use axum::extract::{Path, State};
use axum::response::Response;
use taskgate_api::realtime::ShapeMessage;
use taskgate_api::ErrorBody;
use taskgate_core::ids::RunFriendlyId;

use super::shape::{
    change, jittered, offset, respond, schema_without, skipped_columns, FeedParams,
};
use crate::auth::extract::ApiAuth;
use crate::error::ApiResult;
use crate::json::ApiQuery;
use crate::routes::runs::readable_run;
use crate::state::AppState;
use taskgate_engine::watchers::run_key;

/// Subscribes to one run.
#[utoipa::path(get, path = "/realtime/v1/runs/{runId}", tag = "realtime", security(("secretKey" = []), ("publicAccessToken" = [])),
    params(("runId" = String, Path), ("offset" = Option<String>, Query), ("handle" = Option<String>, Query),
           ("live" = Option<bool>, Query), ("cursor" = Option<String>, Query), ("skipColumns" = Option<String>, Query)),
    responses((status = 200, body = Vec<ShapeMessage>, description = "Electric shape messages"), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn subscribe_to_run(
    State(state): State<AppState>,
    ApiAuth(principal): ApiAuth,
    Path(run_id): Path<RunFriendlyId>,
    ApiQuery(params): ApiQuery<FeedParams>,
) -> ApiResult<Response> {
    let run = readable_run(&state, &principal, &run_id).await?;
    let skip = skipped_columns(&params, &principal);
    let schema = schema_without(&skip);
    let handle = format!("run-{}", run.id);
    let client_offset = params.offset();
    if !params.is_live() {
        let body = vec![change(&run, "insert", &skip), ShapeMessage::up_to_date()];
        return respond(body, &handle, &offset(&run), Some(&schema), false);
    }
    let seen: i64 = client_offset
        .split('_')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let env_id = principal.env.environment.id.clone();
    // Register before re-reading, so a change between the read and the wait is not missed.
    let mut watch = state.engine.watchers().watch(run_key(&run.id));
    let mut current = state.store.get_run(&env_id, &run_id).await?.unwrap_or(run);
    if current.version <= seen {
        let wait = jittered(state.config.engine.realtime_poll);
        let deadline = tokio::time::Instant::now() + wait;
        let shutdown = state.engine.shutdown().wait();
        tokio::pin!(shutdown);
        while current.version <= seen {
            tokio::select! {
                changed = tokio::time::timeout_at(deadline, watch.rx.changed()) => match changed {
                    Ok(Ok(())) => {
                        if let Some(r) = state.store.get_run(&env_id, &run_id).await? {
                            current = r;
                        }
                    }
                    _ => break,
                },
                // The server is stopping: answer "up to date" now; the client polls again.
                _ = &mut shutdown => break,
            }
        }
    }
    drop(watch);
    if current.version > seen {
        respond(
            vec![
                change(&current, "update", &skip),
                ShapeMessage::up_to_date(),
            ],
            &handle,
            &offset(&current),
            None,
            true,
        )
    } else {
        respond(
            vec![ShapeMessage::up_to_date()],
            &handle,
            client_offset,
            None,
            true,
        )
    }
}
