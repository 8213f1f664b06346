//! The official CLI's browser login: `POST /api/v1/authorization-code` and `POST /api/v1/token`
//! (the shapes of `@trigger.dev/core`'s `v3/schemas/tokens`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/authorization-code`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateAuthorizationCodeRequest {
    /// PKCE S256 challenge: 43 characters of base64url. Required by taskgate.
    #[serde(default)]
    pub code_challenge: Option<String>,
    /// `S256`.
    #[serde(default)]
    pub code_challenge_method: Option<String>,
    /// The loopback port the CLI listens on for the approval code (1024–65535).
    #[serde(default)]
    pub callback_port: Option<i64>,
}

/// How the approval code reaches the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    /// The approving browser is redirected to the CLI's loopback port.
    Callback,
    /// The approving browser shows the code; the user pastes it into the CLI.
    Paste,
}

/// The answer to `POST /api/v1/authorization-code`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateAuthorizationCodeResponse {
    pub authorization_code: String,
    /// The consent page a signed-in user opens to approve the login.
    pub url: String,
    pub approval: Approval,
}

/// `POST /api/v1/token`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetTokenRequest {
    pub authorization_code: String,
    /// The PKCE verifier of the code's challenge.
    #[serde(default)]
    pub code_verifier: Option<String>,
    /// The code the approving browser was given.
    #[serde(default)]
    pub approval_code: Option<String>,
}

/// The answer to `POST /api/v1/token`: `token` is null until the login is approved.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GetTokenResponse {
    pub token: Option<IssuedToken>,
}

/// A personal access token, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedToken {
    pub token: String,
    pub obfuscated_token: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_answers_pin_their_shape() {
        insta::assert_json_snapshot!(CreateAuthorizationCodeResponse {
            authorization_code: "code".into(),
            url: "https://taskgate.example/account/authorization-code/code".into(),
            approval: Approval::Paste,
        });
        insta::assert_json_snapshot!(GetTokenResponse {
            token: Some(IssuedToken {
                token: "tr_pat_x".into(),
                obfuscated_token: "tr_pat_x•••".into(),
            }),
        });
        insta::assert_json_snapshot!(GetTokenResponse { token: None });
    }
}
