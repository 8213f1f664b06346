//! `GET /api/v2/whoami`, what the official CLI calls to recognise a logged-in profile.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use taskgate_api::*;

use crate::auth::extract::AccessTokenPat;
use crate::error::ApiResult;
use crate::json::ApiQuery;
use crate::public_url::PublicUrl;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmIParams {
    /// Adds the project when the caller can access it.
    pub project_ref: Option<String>,
}

/// The user behind a personal access token.
#[utoipa::path(get, path = "/api/v2/whoami", tag = "tokens", security(("personalAccessToken" = [])), params(WhoAmIParams),
    responses((status = 200, body = WhoAmIResponse), (status = 401, body = ErrorBody)))]
pub async fn whoami(
    State(state): State<AppState>,
    AccessTokenPat(user): AccessTokenPat,
    PublicUrl(base): PublicUrl,
    ApiQuery(params): ApiQuery<WhoAmIParams>,
) -> ApiResult<Json<WhoAmIResponse>> {
    let project = match params.project_ref.as_deref() {
        Some(r) => state
            .store
            .find_project_access(&user.user.id, r)
            .await?
            .map(|a| WhoAmIProject {
                url: format!("{base}/projects/{}", a.project.external_ref),
                name: a.project.name,
                org_title: a.organization.title,
            }),
        None => None,
    };
    Ok(Json(WhoAmIResponse {
        user_id: user.user.id,
        email: user.user.email,
        dashboard_url: base,
        project,
    }))
}
