//! The official CLI's browser login (`trigger.dev login`): the CLI creates an authorization
//! code bound to a PKCE challenge, a signed-in user approves it on the dashboard's consent page
//! (which hands the approving browser an approval code), and the CLI redeems the code, its
//! verifier and the approval code once for a personal access token named `cli`.
//!
//! Only the CLI holds the verifier and only the approving browser sees the approval code, so
//! someone who sends a victim the consent link learns nothing from the victim's approval.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use secrecy::ExposeSecret;
use taskgate_api::login::*;
use taskgate_api::ErrorBody;
use taskgate_core::hash::{constant_time_eq, sha256_hex};
use taskgate_core::pat::{generate_pat, obfuscate_pat};
use taskgate_core::signin::{
    new_authorization_code, normalize_approval_code, pkce_matches, valid_code_challenge,
    AUTHORIZATION_CODE_TTL, CLI_TOKEN_NAME,
};
use taskgate_store::{NewAuthorizationCode, NewPersonalAccessToken, StoreError};

use crate::error::{ApiError, ApiResult};
use crate::json::parse_lenient;
use crate::public_url::PublicUrl;
use crate::state::AppState;

/// The path of the consent page for `code`.
pub fn consent_path(code: &str) -> String {
    format!("/account/authorization-code/{code}")
}

/// Starts a login. No credential: the code is worth nothing until a signed-in user approves it.
#[utoipa::path(post, path = "/api/v1/authorization-code", tag = "tokens", security(()),
    request_body = CreateAuthorizationCodeRequest,
    responses((status = 200, body = CreateAuthorizationCodeResponse), (status = 400, body = ErrorBody)))]
pub async fn create_authorization_code(
    State(state): State<AppState>,
    PublicUrl(base): PublicUrl,
    body: Bytes,
) -> ApiResult<Json<CreateAuthorizationCodeResponse>> {
    let value = parse_lenient(&body)?;
    let req: CreateAuthorizationCodeRequest = match value {
        serde_json::Value::Null => CreateAuthorizationCodeRequest::default(),
        v => serde_json::from_value(v).map_err(|e| ApiError::invalid_body(e.to_string()))?,
    };
    let challenge = req.code_challenge.ok_or_else(|| {
        ApiError::bad_request(
            "codeChallenge is required: taskgate binds every login to a PKCE S256 challenge, which the trigger.dev CLI sends from 4.8",
        )
    })?;
    if !valid_code_challenge(&challenge) {
        return Err(ApiError::invalid_body(
            "codeChallenge must be 43 characters of base64url",
        ));
    }
    if req.code_challenge_method.as_deref() != Some("S256") {
        return Err(ApiError::invalid_body(
            "codeChallengeMethod must be \"S256\"",
        ));
    }
    let callback_port = match req.callback_port {
        None => None,
        Some(p) => Some(
            u16::try_from(p)
                .ok()
                .filter(|p| *p >= 1024)
                .ok_or_else(|| {
                    ApiError::invalid_body("callbackPort must be between 1024 and 65535")
                })?,
        ),
    };
    let code = new_authorization_code();
    let now = state.now();
    state
        .store
        .create_authorization_code(
            NewAuthorizationCode {
                code_hash: sha256_hex(&code),
                code_challenge: Some(challenge),
                callback_port,
                expires_at: now + AUTHORIZATION_CODE_TTL,
            },
            now,
        )
        .await?;
    Ok(Json(CreateAuthorizationCodeResponse {
        url: format!("{base}{}", consent_path(&code)),
        authorization_code: code,
        approval: if callback_port.is_some() {
            Approval::Callback
        } else {
            Approval::Paste
        },
    }))
}

/// Redeems an approved login for its token, once. `{"token": null}` while it awaits approval.
#[utoipa::path(post, path = "/api/v1/token", tag = "tokens", security(()),
    request_body = GetTokenRequest,
    responses((status = 200, body = GetTokenResponse), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn redeem_authorization_code(
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<Json<GetTokenResponse>> {
    // The CLI sends this body without a Content-Type.
    let req: GetTokenRequest = serde_json::from_value(parse_lenient(&body)?).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Invalid request body: {e}"),
        )
    })?;
    let now = state.now();
    let code_hash = sha256_hex(&req.authorization_code);
    let code = state
        .store
        .find_authorization_code(&code_hash)
        .await?
        .ok_or_else(|| ApiError::bad_request("Invalid authorization code"))?;
    if code.redeemed_at.is_some() {
        return Err(ApiError::bad_request(
            "This authorization code has already been used: run `trigger.dev login` again",
        ));
    }
    if code.expires_at <= now {
        return Err(ApiError::bad_request(
            "This authorization code has expired: run `trigger.dev login` again",
        ));
    }
    let (Some(user_id), Some(approval_hash)) = (code.approved_by, code.approval_code_hash) else {
        return Ok(Json(GetTokenResponse { token: None }));
    };
    let (Some(verifier), Some(approval)) = (req.code_verifier, req.approval_code) else {
        return Err(ApiError::bad_request(
            "This login is finished with its code verifier and the approval code shown in the browser",
        ));
    };
    let challenge = code.code_challenge.unwrap_or_default();
    if !pkce_matches(&verifier, &challenge) {
        return Err(ApiError::bad_request(
            "the code verifier does not belong to this login",
        ));
    }
    let approved = normalize_approval_code(&approval)
        .is_some_and(|a| constant_time_eq(sha256_hex(&a).as_bytes(), approval_hash.as_bytes()));
    if !approved {
        return Err(ApiError::bad_request(
            "it is not the approval code of this login",
        ));
    }
    let plaintext = generate_pat();
    let token = NewPersonalAccessToken {
        user_id,
        name: CLI_TOKEN_NAME.into(),
        hashed_token: sha256_hex(plaintext.expose_secret()),
        obfuscated_token: obfuscate_pat(plaintext.expose_secret()),
    };
    let pat = match state
        .store
        .redeem_authorization_code(&code_hash, token, now)
        .await
    {
        Ok(pat) => pat,
        Err(StoreError::Conflict { .. }) => {
            return Err(ApiError::bad_request(
                "This authorization code has already been used: run `trigger.dev login` again",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(user.id = %pat.user_id, pat.id = %pat.id, "CLI login completed");
    Ok(Json(GetTokenResponse {
        token: Some(IssuedToken {
            token: plaintext.expose_secret().to_string(),
            obfuscated_token: pat.obfuscated_token,
        }),
    }))
}
