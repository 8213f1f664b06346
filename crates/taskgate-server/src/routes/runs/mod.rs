//! Runs for the official SDK: trigger, batch trigger, list,
//! retrieve, cancel, replay and tags, and how a run is shown.

pub mod batch;
pub mod cancel;
pub mod history;
pub mod list;
pub mod present;
pub mod retrieve;
pub mod tags;
pub mod trace;
pub mod trigger;

use taskgate_core::ids::RunFriendlyId;
use taskgate_core::scope::Resource;
use taskgate_store::Run;

use crate::auth::EnvPrincipal;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The resources a read of `run` may be authorized by (§3.7): the run, its task, any of its
/// tags, its batch.
pub fn read_resources(run: &Run) -> Vec<Resource> {
    let mut r = vec![
        Resource::with_id("runs", &run.friendly_id),
        Resource::with_id("tasks", &run.task_identifier),
    ];
    r.extend(run.tags.iter().map(|t| Resource::with_id("tags", t)));
    if let Some(b) = &run.batch_id {
        r.push(Resource::with_id("batch", b));
    }
    r
}

/// A run of the principal's environment that it may read: 404 (with `x-should-retry:
/// false`, so the SDK fails fast) when missing, then 403 when out of scope, as upstream's
/// loaders order them.
pub async fn readable_run(
    state: &AppState,
    principal: &EnvPrincipal,
    run_id: &RunFriendlyId,
) -> ApiResult<Run> {
    let run = state
        .store
        .get_run(&principal.env.environment.id, run_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Not found").should_retry(false))?;
    principal.authorize("read", &read_resources(&run))?;
    Ok(run)
}
