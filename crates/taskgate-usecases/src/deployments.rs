//! Deployments: which deployed version an environment runs. Promoting one (`trigger.dev
//! promote`, the dashboard's Promote button, and so a rollback) moves the environment's
//! queued runs to it; runs that started on another version keep theirs.

use taskgate_core::ids::EnvironmentId;
use taskgate_core::Problem;
use taskgate_store::{Deployment, DeploymentStatus};

use crate::{Result, UseCases};

/// A deployment of the environment by id, friendly id or version.
pub async fn find(
    uc: &UseCases,
    environment_id: &EnvironmentId,
    id_or_version: &str,
) -> Result<Deployment> {
    uc.store
        .get_deployment(environment_id, id_or_version)
        .await?
        .ok_or_else(|| Problem::not_found("Deployment not found"))
}

/// Makes a deployed version the one `environment_id` runs; the caller has authorized it.
pub async fn promote(
    uc: &UseCases,
    environment_id: &EnvironmentId,
    id_or_version: &str,
) -> Result<Deployment> {
    let d = find(uc, environment_id, id_or_version).await?;
    if d.status != DeploymentStatus::Deployed {
        return Err(Problem::invalid(format!(
            "Version {} cannot be promoted: it is {}",
            d.version,
            d.status.as_str()
        )));
    }
    uc.store.promote_deployment(&d.id, uc.now()).await?;
    tracing::info!(deployment.id = %d.friendly_id, version = %d.version, env.id = %environment_id, "deployment promoted");
    Ok(d)
}
