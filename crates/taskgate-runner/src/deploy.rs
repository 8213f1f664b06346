//! What `trigger.dev deploy` becomes: a deployment made from an uploaded bundle, indexed by
//! the bundle's own index controller (which registers the deployment's worker through the
//! API), then promoted unless the CLI asked not to. All of it happens before the CLI gets its
//! answer, so its exit code tells the truth: an index that fails is the answer's error.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};
use taskgate_core::ids::{new_deployment_friendly_id, new_id, new_short_code};
use taskgate_store::{Deployment, DeploymentStatus, EnvironmentAuth, NewDeployment, StoreError};

use crate::bundles::Bundle;
use crate::process::{output_tail, Launch};
use crate::{Error, Runner};

/// How long a bundle's index controller may take.
const INDEX_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest content hash, external id or runtime name accepted.
const MAX_FIELD_LEN: usize = 256;

/// `POST /api/v1/deployments`'s body, as 4.8.3 sends it on the local-bundle path.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeDeployment {
    pub content_hash: String,
    #[serde(default)]
    pub runtime: Option<String>,
    #[serde(default)]
    pub is_native_build: Option<bool>,
    #[serde(default)]
    pub is_local_build: Option<bool>,
    #[serde(default)]
    pub artifact_key: Option<String>,
    #[serde(default)]
    pub from_bundle: Option<bool>,
    #[serde(default)]
    pub skip_promotion: Option<bool>,
    #[serde(default)]
    pub triggered_via: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub force: Option<bool>,
    #[serde(default)]
    pub git_meta: Option<Value>,
}

/// Why a deployment was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The request cannot be served (the message says how to deploy instead).
    #[error("{0}")]
    Invalid(String),
    /// The bundle did not unpack, install or index; the deployment is `FAILED` with this.
    #[error("Deployment {version} failed: {message}")]
    Failed { version: String, message: String },
    #[error(transparent)]
    Runner(#[from] Error),
}

/// A deployment the CLI asked for.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub deployment: Deployment,
    /// An earlier deployment with the same external id was returned, untouched.
    pub existing: bool,
    /// It is the one its environment runs now.
    pub promoted: bool,
}

fn field(name: &str, value: &str) -> Result<(), DeployError> {
    if value.len() > MAX_FIELD_LEN || value.chars().any(char::is_control) {
        return Err(DeployError::Invalid(format!(
            "{name} must be at most {MAX_FIELD_LEN} characters without control characters"
        )));
    }
    Ok(())
}

impl Runner {
    /// Makes, indexes and (unless `skipPromotion`) promotes a deployment of `env` from the
    /// bundle the CLI uploaded.
    pub async fn deploy(
        &self,
        env: &EnvironmentAuth,
        request: InitializeDeployment,
    ) -> Result<Deployed, DeployError> {
        field("contentHash", &request.content_hash)?;
        for (name, v) in [
            ("externalId", &request.external_id),
            ("runtime", &request.runtime),
            ("triggeredVia", &request.triggered_via),
        ] {
            if let Some(v) = v {
                field(name, v)?;
            }
        }
        let key = match (&request.artifact_key, request.from_bundle) {
            (Some(key), Some(true)) if key.starts_with("bundles/") => key.clone(),
            _ => {
                return Err(DeployError::Invalid(
                    "taskgate deploys bundles built on your machine: run `trigger.dev deploy` without --local-build, --native-build or --depot-build (taskgate's deploy settings choose the local-bundle path)".into(),
                ))
            }
        };
        let now = self.engine.now();
        let new = NewDeployment {
            id: new_id().into(),
            friendly_id: new_deployment_friendly_id().into(),
            short_code: new_short_code(),
            environment_id: env.environment.id.clone(),
            content_hash: request.content_hash.clone(),
            artifact_key: Some(key.clone()),
            external_id: request.external_id.clone(),
            runtime: request.runtime.clone(),
            triggered_via: request.triggered_via.clone(),
            git_meta: request.git_meta.as_ref().map(Value::to_string),
        };
        let (deployment, existing) = self
            .store
            .create_deployment(new, request.force.unwrap_or(false), now)
            .await
            .map_err(Error::from)?;
        if existing {
            let promoted = self.is_current(&deployment).await?;
            return Ok(Deployed {
                deployment,
                existing: true,
                promoted,
            });
        }
        tracing::info!(env.id = %env.environment.id, deployment.id = %deployment.friendly_id, version = %deployment.version, "deployment started");
        let indexed = self.bundle(env, &deployment).await;
        let deployment = self
            .store
            .get_deployment(&env.environment.id, &deployment.friendly_id)
            .await
            .map_err(Error::from)?
            .ok_or(Error::Store(StoreError::NotFound))?;
        let failure = match deployment.status {
            DeploymentStatus::Deployed => None,
            // The index controller reported it (its import error, a duplicate id…).
            DeploymentStatus::Failed => Some(
                deployment
                    .error
                    .as_deref()
                    .and_then(|e| serde_json::from_str::<Value>(e).ok())
                    .and_then(|e| e.get("message").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_else(|| "indexing failed".into()),
            ),
            DeploymentStatus::Building => {
                let message = match &indexed {
                    Err(e) => e.to_string(),
                    Ok(_) => {
                        "the index controller ended without registering the deployment's tasks"
                            .into()
                    }
                };
                let error = json!({ "name": "Error", "message": message }).to_string();
                self.store
                    .fail_deployment(&deployment.id, &error, self.engine.now())
                    .await
                    .map_err(Error::from)?;
                Some(message)
            }
        };
        if let Some(message) = failure {
            tracing::warn!(deployment.id = %deployment.friendly_id, version = %deployment.version, error = %message, "deployment failed");
            return Err(DeployError::Failed {
                version: deployment.version,
                message,
            });
        }
        let promote = !request.skip_promotion.unwrap_or(false);
        if promote {
            self.store
                .promote_deployment(&deployment.id, self.engine.now())
                .await
                .map_err(Error::from)?;
        }
        tracing::info!(deployment.id = %deployment.friendly_id, version = %deployment.version, promoted = promote, "deployment deployed");
        Ok(Deployed {
            deployment,
            existing: false,
            promoted: promote,
        })
    }

    async fn is_current(&self, d: &Deployment) -> Result<bool, Error> {
        Ok(self
            .store
            .current_deployment(&d.environment_id)
            .await?
            .is_some_and(|(current, _, _)| current.id == d.id))
    }

    /// The prepared, indexed bundle of `deployment` on this node.
    pub async fn bundle(
        &self,
        env: &EnvironmentAuth,
        deployment: &Deployment,
    ) -> Result<Bundle, Error> {
        let key = deployment
            .artifact_key
            .clone()
            .ok_or_else(|| Error::Bundle("the deployment has no bundle".into()))?;
        let store = self.store.clone();
        let env_id = env.environment.id.clone();
        let bundle = self
            .bundles
            .prepare(&deployment.friendly_id, self.sandbox(), || async move {
                store.artifact_data(&env_id, &key).await?.ok_or_else(|| {
                    Error::Bundle("the deployment's bundle was never uploaded".into())
                })
            })
            .await?;
        if !bundle.indexed() {
            self.run_index_controller(env, deployment, &bundle).await?;
        }
        self.bundles.mark_ready(&bundle)?;
        Ok(bundle)
    }

    /// Runs the bundle's index controller: it reads the environment's variables, imports the
    /// tasks, writes `index.json` and registers the deployment's worker (or reports its
    /// failure) through the API.
    async fn run_index_controller(
        &self,
        env: &EnvironmentAuth,
        deployment: &Deployment,
        bundle: &Bundle,
    ) -> Result<(), Error> {
        let key = self.engine.environment_secret_key(env)?;
        let home = self.home()?;
        let launch = Launch {
            program: self.settings.node.clone(),
            args: vec![bundle.index_controller.clone().into_os_string()],
            cwd: bundle.dir.clone(),
            env: vec![
                ("HOME".into(), home.display().to_string()),
                ("NODE_ENV".into(), "production".into()),
                ("TRIGGER_API_URL".into(), self.api_url()?.to_string()),
                ("TRIGGER_SECRET_KEY".into(), key.expose_secret().to_string()),
                ("TRIGGER_PROJECT_REF".into(), env.project_ref.clone()),
                (
                    "TRIGGER_DEPLOYMENT_ID".into(),
                    deployment.friendly_id.to_string(),
                ),
            ],
        };
        let allow = [bundle.dir.clone(), home];
        let sandbox = self.sandbox().map(|s| (s, &allow[..]));
        let output = launch.output(sandbox, INDEX_TIMEOUT).await?;
        if !output.status.success() || !bundle.indexed() {
            return Err(Error::Bundle(format!(
                "indexing the tasks failed: {}",
                output_tail(&output)
            )));
        }
        Ok(())
    }

    /// The home directory processes get (npm's and node's caches; never taskgate's).
    pub(crate) fn home(&self) -> Result<PathBuf, Error> {
        let home = self.settings.work_dir.join("home");
        std::fs::create_dir_all(&home)?;
        Ok(home)
    }
}
