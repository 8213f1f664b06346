//! Environment variables' wire types: what the CLI's `env` commands and taskgate's send and
//! read. Values travel in plain text over the connection (TLS in production) and are sealed
//! at rest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A variable as listed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvVarItem {
    pub name: String,
    /// `<redacted>` for a secret variable.
    pub value: String,
    pub is_secret: bool,
}

/// One variable (the SDK's `EnvironmentVariableWithSecret`). A secret variable is write-only:
/// its value reads `<redacted>` here, as in listings; only the task processes of its
/// environment receive it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvVarValue {
    pub name: String,
    /// `<redacted>` for a secret variable.
    pub value: String,
    pub is_secret: bool,
}

/// `{"success": true}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnvVarSuccess {
    pub success: bool,
}

/// `POST …/envvars/{env}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateEnvVarRequest {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_secret: Option<bool>,
}

/// `PUT …/envvars/{env}/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UpdateEnvVarRequest {
    pub value: String,
}

/// `POST …/envvars/{env}/import`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportEnvVarsRequest {
    pub variables: BTreeMap<String, String>,
    /// When set on a branch, these go to the branch's parent.
    #[serde(default)]
    pub parent_variables: Option<BTreeMap<String, String>>,
    /// Replace existing values (default: keep them).
    #[serde(default)]
    pub r#override: Option<bool>,
    #[serde(default)]
    pub is_secret: Option<bool>,
}
