//! Personal access tokens and their users, the set of revoked tokens, and the throttle on
//! recording a token's last use.

use chrono::{DateTime, Utc};
use taskgate_store::{PersonalAccessToken, User};

use super::{AuthCache, POSITIVE_CAPACITY};

/// A live personal access token and its user.
#[derive(Debug, Clone)]
pub struct PatEntry {
    pub token: PersonalAccessToken,
    pub user: User,
}

impl AuthCache {
    pub fn pat(&self, hash: &str) -> Option<PatEntry> {
        self.pats
            .read()
            .get(hash)
            .filter(|t| self.fresh(t))
            .map(|t| t.value.clone())
    }

    pub fn insert_pat(&self, generation: u64, hash: String, entry: PatEntry) {
        // A revocation that races the read bumps the generation, so `put` discards the read;
        // this stops a token already known revoked that a lagging replica still returned.
        if self.revoked_pats.read().contains(&entry.token.id) {
            return;
        }
        self.put(&self.pats, generation, hash, entry);
    }

    /// A user by id (user-actor tokens name their user; no query per use).
    pub fn user(&self, id: &str) -> Option<User> {
        self.users
            .read()
            .get(id)
            .filter(|t| self.fresh(t))
            .map(|t| t.value.clone())
    }

    pub fn insert_user(&self, generation: u64, user: User) {
        self.put(&self.users, generation, user.id.clone(), user);
    }

    /// Whether a token id is known to be revoked (for UATs and exchanged JWTs bound to it).
    pub fn pat_revoked(&self, pat_id: &str) -> bool {
        self.revoked_pats.read().contains(pat_id)
    }

    /// Loads the revoked-token set (at start-up).
    pub fn set_revoked_pats(&self, ids: impl IntoIterator<Item = String>) {
        self.revoked_pats.write().extend(ids);
    }

    /// Claims the right to record a token's use now: true at most once per `throttle` per
    /// token on this node, so a busy token does not send a write per request.
    pub fn claim_touch(
        &self,
        pat_id: &str,
        now: DateTime<Utc>,
        throttle: chrono::Duration,
    ) -> bool {
        let mut touched = self.touched.lock();
        match touched.get(pat_id) {
            Some(at) if now - *at < throttle => false,
            _ => {
                if touched.len() >= POSITIVE_CAPACITY {
                    touched.clear();
                }
                touched.insert(pat_id.to_string(), now);
                true
            }
        }
    }
}
