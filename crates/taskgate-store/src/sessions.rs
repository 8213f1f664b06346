//! Dashboard sign-in links and sessions, and the authorization codes of the CLI's browser
//! login. Every secret arrives hashed (lowercase hex SHA-256); nothing here sees a plaintext.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreResult;
use crate::model::{NewPersonalAccessToken, PersonalAccessToken, User};

/// A one-time sign-in link to be issued.
#[derive(Debug, Clone)]
pub struct NewSignInLink {
    pub token_hash: String,
    pub email: String,
    pub expires_at: DateTime<Utc>,
}

/// A session to be started.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token_hash: String,
    pub user_id: String,
    pub expires_at: DateTime<Utc>,
}

/// A live session with its user as the user is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub user: User,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// An authorization code to be issued to the CLI.
#[derive(Debug, Clone)]
pub struct NewAuthorizationCode {
    pub code_hash: String,
    /// The PKCE S256 challenge; `None` for a client that sends none.
    pub code_challenge: Option<String>,
    /// The loopback port the CLI listens on for the approval code, if it gave one.
    pub callback_port: Option<u16>,
    pub expires_at: DateTime<Utc>,
}

/// An authorization code as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub code_challenge: Option<String>,
    pub callback_port: Option<u16>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The user who approved it, once approved.
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub approval_code_hash: Option<String>,
    pub redeemed_at: Option<DateTime<Utc>>,
}

/// Sign-in links, sessions and CLI authorization codes.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Records a sign-in link.
    async fn create_sign_in_link(&self, link: NewSignInLink, now: DateTime<Utc>)
        -> StoreResult<()>;
    /// How many sign-in links were issued for `email` at or after `since`.
    async fn count_sign_in_links(&self, email: &str, since: DateTime<Utc>) -> StoreResult<u32>;
    /// Spends a link: its email the first time it is used before it expires, `None` after
    /// that, once expired, or when no such link was issued.
    async fn consume_sign_in_link(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>>;

    /// Starts a session for an existing user (`NotFound` otherwise), remembering whether the
    /// user is an administrator now.
    async fn create_session(&self, session: NewSession, now: DateTime<Utc>)
        -> StoreResult<Session>;
    /// The live session with this token: `None` when it was never started, has ended or
    /// expired, its user is gone, or it began as an administrator's and the user's admin flag
    /// has since been cleared.
    async fn find_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Session>>;
    /// Ends a session (sign-out). Ending an ended or unknown session does nothing.
    async fn end_session(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<()>;

    /// Records an authorization code.
    async fn create_authorization_code(
        &self,
        code: NewAuthorizationCode,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// An authorization code by hash, whatever its state.
    async fn find_authorization_code(
        &self,
        code_hash: &str,
    ) -> StoreResult<Option<AuthorizationCode>>;
    /// Approves a code for `user_id`, with the hash of the approval code the approving
    /// browser is shown. `NotFound` when the code is unknown or expired; `Conflict` when it
    /// was already approved.
    async fn approve_authorization_code(
        &self,
        code_hash: &str,
        user_id: &str,
        approval_code_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Spends an approved, unexpired code on a new personal access token for the user who
    /// approved it (`token.user_id` must be that user), in one transaction. `Conflict` when
    /// the code is not approved by that user, has expired, or was already redeemed.
    async fn redeem_authorization_code(
        &self,
        code_hash: &str,
        token: NewPersonalAccessToken,
        now: DateTime<Utc>,
    ) -> StoreResult<PersonalAccessToken>;
}
