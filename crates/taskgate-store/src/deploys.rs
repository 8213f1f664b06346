//! Deployments: the bundles `trigger.dev deploy` uploads, the deployment each becomes, the
//! worker its indexing registers, and the deployment each environment runs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use taskgate_core::ids::{DeploymentFriendlyId, DeploymentId, EnvironmentId, WorkerId};

use crate::engine::{Worker, WorkerTask};
use crate::error::StoreResult;

/// Where a deployment is in its life (upstream's names for the ones taskgate uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentStatus {
    /// Created; its bundle is being unpacked and indexed.
    Building,
    /// Indexed: its worker is registered (promoted or not).
    Deployed,
    /// Its bundle did not unpack, install or index; `error` says why.
    Failed,
}

impl DeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Building => "BUILDING",
            DeploymentStatus::Deployed => "DEPLOYED",
            DeploymentStatus::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "BUILDING" => Some(DeploymentStatus::Building),
            "DEPLOYED" => Some(DeploymentStatus::Deployed),
            "FAILED" => Some(DeploymentStatus::Failed),
            _ => None,
        }
    }
}

/// A deployment as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub id: DeploymentId,
    /// `deployment_…`, what clients name it by.
    pub friendly_id: DeploymentFriendlyId,
    /// What its dashboard link names.
    pub short_code: String,
    pub environment_id: EnvironmentId,
    /// `YYYYMMDD.N`, in the environment's sequence; its worker gets the same.
    pub version: String,
    pub content_hash: String,
    pub status: DeploymentStatus,
    /// The uploaded bundle (`bundles/…`).
    pub artifact_key: Option<String>,
    /// The worker its indexing registered.
    pub worker_id: Option<WorkerId>,
    /// The client's id for it (`--external-id`): a second deploy with it finds this one.
    pub external_id: Option<String>,
    /// Why it failed, as JSON `{name, message, stack?, stderr?}`.
    pub error: Option<String>,
    pub runtime: Option<String>,
    pub triggered_via: Option<String>,
    /// The CLI's git metadata, as JSON.
    pub git_meta: Option<String>,
    pub created_at: DateTime<Utc>,
    pub deployed_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

/// A deployment to create; the store assigns its version.
#[derive(Debug, Clone)]
pub struct NewDeployment {
    pub id: DeploymentId,
    pub friendly_id: DeploymentFriendlyId,
    pub short_code: String,
    pub environment_id: EnvironmentId,
    pub content_hash: String,
    pub artifact_key: Option<String>,
    pub external_id: Option<String>,
    pub runtime: Option<String>,
    pub triggered_via: Option<String>,
    pub git_meta: Option<String>,
}

/// A bundle's upload slot, made before the bundle arrives.
#[derive(Debug, Clone)]
pub struct NewArtifact {
    /// `bundles/<project ref>/<…>.tar.gz`
    pub key: String,
    pub environment_id: EnvironmentId,
    /// SHA-256 (hex) of the secret in the upload URL.
    pub upload_secret_hash: String,
    /// What the client said it will upload.
    pub content_length: i64,
    pub expires_at: DateTime<Utc>,
}

/// Why an upload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadRefusal {
    /// No such slot, or the secret is not its.
    Unknown,
    /// The slot's URL has expired.
    Expired,
    /// A bundle was uploaded to it already.
    AlreadyUploaded,
    /// More bytes than the slot was made for.
    TooLarge,
}

/// Deployments and their bundles.
#[async_trait]
pub trait DeployStore: Send + Sync {
    /// Makes an upload slot for a bundle.
    async fn create_artifact(&self, artifact: NewArtifact, now: DateTime<Utc>) -> StoreResult<()>;
    /// Stores a slot's bundle, once, while its URL lives.
    async fn upload_artifact(
        &self,
        key: &str,
        upload_secret_hash: &str,
        data: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Result<(), UploadRefusal>>;
    /// An environment's uploaded bundle.
    async fn artifact_data(
        &self,
        environment_id: &EnvironmentId,
        key: &str,
    ) -> StoreResult<Option<Vec<u8>>>;
    /// Creates a deployment in `BUILDING` with the environment's next version, in one
    /// transaction with the version's choice. With an `external_id` already used in the
    /// environment (and not `force`), the existing deployment is returned instead (`true`).
    async fn create_deployment(
        &self,
        deployment: NewDeployment,
        force: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<(Deployment, bool)>;
    /// A deployment of the environment by friendly id, id or version.
    async fn get_deployment(
        &self,
        environment_id: &EnvironmentId,
        id_or_version: &str,
    ) -> StoreResult<Option<Deployment>>;
    /// The environment's deployments, newest first, at most `limit`, before `before` (a
    /// creation time and id) when given.
    async fn list_deployments(
        &self,
        environment_id: &EnvironmentId,
        limit: u32,
        before: Option<(DateTime<Utc>, DeploymentId)>,
    ) -> StoreResult<Vec<Deployment>>;
    /// Marks a building deployment failed with `error` (JSON); false when it was not
    /// building.
    async fn fail_deployment(
        &self,
        id: &DeploymentId,
        error: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Makes a deployed deployment the one its environment runs; its queued runs go to it.
    /// `NotFound` unless it is deployed.
    async fn promote_deployment(&self, id: &DeploymentId, now: DateTime<Utc>) -> StoreResult<()>;
    /// The deployment the environment runs, with its worker and tasks.
    async fn current_deployment(
        &self,
        environment_id: &EnvironmentId,
    ) -> StoreResult<Option<(Deployment, Worker, Vec<WorkerTask>)>>;
    /// Environments that run a deployment, with it: what a runner serves.
    async fn deployed_environments(&self) -> StoreResult<Vec<(EnvironmentId, DeploymentId)>>;
    /// Workers of the environment, other than `except`, that queued runs are locked to (a
    /// retry of a run the previous deployment started): a runner serves those too.
    async fn locked_queued_workers(
        &self,
        environment_id: &EnvironmentId,
        except: &WorkerId,
    ) -> StoreResult<Vec<WorkerId>>;
    /// Deletes upload slots whose URL expired without a bundle, and bundles no deployment
    /// names; returns how many went.
    async fn purge_artifacts(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}
