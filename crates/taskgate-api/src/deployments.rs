//! Deployments on the wire: what `trigger.dev deploy` 4.8.3 calls on its local-bundle path
//! (deploy settings, an artifact slot and its upload, the deployment), what a bundle's index
//! controller calls, `trigger.dev promote`, and the deployments API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::runs::RunPagination;

/// `GET /api/v1/projects/{ref}/{env}/deploy-settings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeploySettingsResponse {
    /// Always `native_local_bundle`: the CLI bundles on its machine and uploads the output.
    pub build_path: String,
}

/// `POST /api/v1/artifacts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateArtifactRequest {
    /// `deployment_bundle` (a `deployment_context` is refused: taskgate does not build).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub content_type: Option<String>,
    pub content_length: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateArtifactResponse {
    /// `bundles/<project ref>/<id>.tar.gz`
    pub artifact_key: String,
    /// Where to POST the bundle (multipart, field `file`), without credentials: the URL is one.
    pub upload_url: String,
    pub upload_fields: std::collections::BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
}

/// `POST /api/v1/deployments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InitializeDeploymentResponse {
    pub id: String,
    pub content_hash: String,
    pub short_code: String,
    pub version: String,
    /// No image: always `""`.
    pub image_tag: String,
    pub image_platform: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// `created`, or `existing` for an `--external-id` deployed before.
    pub outcome: String,
    pub is_promoted: bool,
}

/// A failed deployment's error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentErrorData {
    pub name: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
}

/// `POST /api/v1/deployments/{id}/fail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FailDeploymentRequest {
    pub error: DeploymentErrorData,
}

/// A deployment's worker and its tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentWorker {
    pub id: String,
    pub version: String,
    pub tasks: Vec<DeploymentTask>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentTask {
    pub id: String,
    pub slug: String,
    pub file_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_name: Option<String>,
}

/// `GET /api/v1/deployments/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentResponse {
    pub id: String,
    /// `BUILDING`, `DEPLOYED` or `FAILED`.
    pub status: String,
    pub content_hash: String,
    pub short_code: String,
    pub version: String,
    pub image_platform: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<DeploymentErrorData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<DeploymentWorker>,
    /// taskgate's addition: whether the environment runs it.
    pub is_current: bool,
}

/// One deployment of `GET /api/v1/deployments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentListItem {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub short_code: String,
    pub version: String,
    pub runtime: Option<String>,
    pub runtime_version: Option<String>,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub git: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<DeploymentErrorData>,
    pub external_id: Option<String>,
}

/// `GET /api/v1/deployments`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListDeploymentsResponse {
    pub data: Vec<DeploymentListItem>,
    pub pagination: RunPagination,
}

/// `POST /api/v1/deployments/{version}/promote`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromoteDeploymentResponse {
    pub id: String,
    pub version: String,
    pub short_code: String,
}
