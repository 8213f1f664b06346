//! Environment types and the names they go by in URLs, slugs, key prefixes and the database.

use serde::{Deserialize, Serialize};

/// The type of a runtime environment. Serialized as upstream stores it (`DEVELOPMENT`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EnvType {
    Development,
    Staging,
    Production,
    Preview,
}

impl EnvType {
    /// Every type, in upstream's declaration order.
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

    /// Parses [`Self::as_str`] (exact, upper case).
    pub fn parse_db(s: &str) -> Option<EnvType> {
        EnvType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The root environment's slug (`envSlug`): `dev`, `stg`, `prod`, `preview`.
    pub fn slug(self) -> &'static str {
        match self {
            EnvType::Development => "dev",
            EnvType::Staging => "stg",
            EnvType::Production => "prod",
            EnvType::Preview => "preview",
        }
    }

    /// Secret key prefix (§1.2; preview is `tr_preview_`, not `tr_prev_`).
    pub fn key_prefix(self) -> &'static str {
        match self {
            EnvType::Development => "tr_dev_",
            EnvType::Staging => "tr_stg_",
            EnvType::Production => "tr_prod_",
            EnvType::Preview => "tr_preview_",
        }
    }

    /// Deprecated public key prefix: `pk_` + slug + `_`.
    pub fn pk_prefix(self) -> &'static str {
        match self {
            EnvType::Development => "pk_dev_",
            EnvType::Staging => "pk_stg_",
            EnvType::Production => "pk_prod_",
            EnvType::Preview => "pk_preview_",
        }
    }

    /// The environment named by a URL segment: exactly `dev`, `staging`, `prod` or `preview`
    /// (§2.5; `stg` is not accepted in URLs, and matching is case-sensitive).
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

/// Whether an environment can have branch children: a PREVIEW or DEVELOPMENT environment that
/// is itself a root (§1.1).
pub fn is_branchable_root(env_type: EnvType, has_parent: bool) -> bool {
    !has_parent && matches!(env_type, EnvType::Preview | EnvType::Development)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_per_type() {
        use EnvType::*;
        // (type, db name, slug, key prefix, pk prefix)
        let table = [
            (Development, "DEVELOPMENT", "dev", "tr_dev_", "pk_dev_"),
            (Staging, "STAGING", "stg", "tr_stg_", "pk_stg_"),
            (Production, "PRODUCTION", "prod", "tr_prod_", "pk_prod_"),
            (Preview, "PREVIEW", "preview", "tr_preview_", "pk_preview_"),
        ];
        for (t, db, slug, key, pk) in table {
            assert_eq!(t.as_str(), db);
            assert_eq!(EnvType::parse_db(db), Some(t));
            assert_eq!(t.slug(), slug);
            assert_eq!(t.key_prefix(), key);
            assert_eq!(t.pk_prefix(), pk);
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{db}\""));
            assert_eq!(
                serde_json::from_str::<EnvType>(&format!("\"{db}\"")).unwrap(),
                t
            );
        }
        assert_eq!(EnvType::parse_db("production"), None);
    }

    #[test]
    fn url_segments() {
        assert_eq!(EnvType::from_url_env("dev"), Some(EnvType::Development));
        assert_eq!(EnvType::from_url_env("staging"), Some(EnvType::Staging));
        assert_eq!(EnvType::from_url_env("prod"), Some(EnvType::Production));
        assert_eq!(EnvType::from_url_env("preview"), Some(EnvType::Preview));
        for no in ["stg", "Prod", "production", "development", "", "prev"] {
            assert_eq!(EnvType::from_url_env(no), None, "{no}");
        }
    }

    #[test]
    fn branchable_roots() {
        assert!(is_branchable_root(EnvType::Preview, false));
        assert!(is_branchable_root(EnvType::Development, false));
        assert!(!is_branchable_root(EnvType::Preview, true));
        assert!(!is_branchable_root(EnvType::Development, true));
        assert!(!is_branchable_root(EnvType::Production, false));
        assert!(!is_branchable_root(EnvType::Staging, false));
    }
}
