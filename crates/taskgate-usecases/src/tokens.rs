//! Personal access tokens and the user-actor tokens minted from them.

use secrecy::ExposeSecret;
use taskgate_api::CreatedTokenResponse;
use taskgate_auth::UserPrincipal;
use taskgate_core::hash::sha256_hex;
use taskgate_core::pat::{generate_pat, obfuscate_pat};
use taskgate_core::uat::{self, UatClaims};
use taskgate_store::{Actor, NewPersonalAccessToken};

use crate::{Result, UseCases};

/// The default `act.client` of a token minted from a personal access token.
pub const PAT_CLIENT: &str = "personal-access-token";

/// Creates a token for `user_id`; stores only its hash and display form.
pub async fn issue_pat(
    uc: &UseCases,
    user_id: &str,
    name: &str,
    actor: &Actor,
) -> Result<CreatedTokenResponse> {
    let token = generate_pat();
    let plain = token.expose_secret();
    let new = NewPersonalAccessToken {
        user_id: user_id.to_string(),
        name: name.to_string(),
        hashed_token: sha256_hex(plain),
        obfuscated_token: obfuscate_pat(plain),
    };
    let pat = uc.store.create_pat(new, actor, uc.now()).await?;
    Ok(CreatedTokenResponse {
        id: pat.id,
        token: plain.to_string(),
        obfuscated_token: pat.obfuscated_token,
    })
}

/// Signs a user-actor token for `user`, bound to the personal access token behind their
/// credential (revoking it revokes this token): `cap` narrows it (`None` is capless), `ttl`
/// (seconds, already checked against the ceiling) bounds it. The dashboard mints through here.
pub fn sign_user_actor_token(
    uc: &UseCases,
    user: &UserPrincipal,
    cap: Option<Vec<String>>,
    client: Option<String>,
    ttl: i64,
) -> String {
    let now = uc.now().timestamp();
    let claims = UatClaims {
        user_id: user.user.id.clone(),
        client: Some(client.unwrap_or_else(|| PAT_CLIENT.to_string())),
        session_id: None,
        environment_id: None,
        pat: user.pat_id().map(str::to_string),
        cap,
        expires_at: now + ttl,
    };
    uat::sign_uat(&claims, uc.auth.session_secret.expose_secret(), now)
}
