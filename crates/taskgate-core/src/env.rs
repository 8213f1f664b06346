//! Environment types and the names they go by in URLs, slugs, key prefixes and the database.

use serde::{Deserialize, Serialize};

/// The type of a runtime environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EnvType {
    Development,
    Staging,
    Production,
    Preview,
}

impl EnvType {
    pub const ALL: [EnvType; 4] = [
        EnvType::Development,
        EnvType::Staging,
        EnvType::Production,
        EnvType::Preview,
    ];

    /// The stored and wire name: `DEVELOPMENT`, `STAGING`, `PRODUCTION`, `PREVIEW`.
    pub fn as_str(self) -> &'static str {
        match self {
            EnvType::Development => "DEVELOPMENT",
            EnvType::Staging => "STAGING",
            EnvType::Production => "PRODUCTION",
            EnvType::Preview => "PREVIEW",
        }
    }

    /// Parses [`Self::as_str`].
    pub fn parse_db(s: &str) -> Option<EnvType> {
        EnvType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The root environment's slug: `dev`, `stg`, `prod`, `preview`.
    pub fn slug(self) -> &'static str {
        match self {
            EnvType::Development => "dev",
            EnvType::Staging => "stg",
            EnvType::Production => "prod",
            EnvType::Preview => "preview",
        }
    }

    /// Secret key prefix (spec/auth.md §1.2; preview is `tr_preview_`, not `tr_prev_`).
    pub fn key_prefix(self) -> &'static str {
        match self {
            EnvType::Development => "tr_dev_",
            EnvType::Staging => "tr_stg_",
            EnvType::Production => "tr_prod_",
            EnvType::Preview => "tr_preview_",
        }
    }

    /// Deprecated public key prefix.
    pub fn pk_prefix(self) -> &'static str {
        match self {
            EnvType::Development => "pk_dev_",
            EnvType::Staging => "pk_stg_",
            EnvType::Production => "pk_prod_",
            EnvType::Preview => "pk_preview_",
        }
    }

    /// The environment named by a URL segment: exactly `dev`, `staging`, `prod` or `preview`
    /// (spec/auth.md §2.5; `stg` is not accepted in URLs).
    pub fn from_url_env(s: &str) -> Option<EnvType> {
        match s {
            "dev" => Some(EnvType::Development),
            "staging" => Some(EnvType::Staging),
            "prod" => Some(EnvType::Production),
            "preview" => Some(EnvType::Preview),
            _ => None,
        }
    }
}

/// Whether an environment can have branch children: PREVIEW and DEVELOPMENT roots.
pub fn is_branchable_root(env_type: EnvType, has_parent: bool) -> bool {
    !has_parent && matches!(env_type, EnvType::Preview | EnvType::Development)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in EnvType::ALL {
            assert_eq!(EnvType::parse_db(t.as_str()), Some(t));
        }
        assert_eq!(EnvType::from_url_env("staging"), Some(EnvType::Staging));
        assert_eq!(EnvType::from_url_env("stg"), None);
        assert!(is_branchable_root(EnvType::Preview, false));
        assert!(!is_branchable_root(EnvType::Preview, true));
        assert!(!is_branchable_root(EnvType::Production, false));
    }
}
