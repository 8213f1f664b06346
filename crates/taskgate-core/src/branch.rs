//! Branch names from the `x-trigger-branch` header (spec/auth.md §1.4) and branch slugs.

/// Git ref prefixes stripped from a branch header (once).
const STRIPPED_REF_PREFIXES: &[&str] = &[
    "refs/heads/",
    "refs/remotes/",
    "refs/tags/",
    "refs/pull/",
    "refs/merge/",
    "refs/release/",
];

/// Sanitises the header: empty → none; one leading known `refs/…/` prefix stripped; any other
/// `refs/` value → none; otherwise the value unchanged (no trimming, no lowercasing).
pub fn sanitize_branch(header: Option<&str>) -> Option<String> {
    let value = header?;
    if value.is_empty() {
        return None;
    }
    for prefix in STRIPPED_REF_PREFIXES {
        if let Some(rest) = value.strip_prefix(prefix) {
            return (!rest.is_empty()).then(|| rest.to_string());
        }
    }
    if value.starts_with("refs/") {
        return None;
    }
    Some(value.to_string())
}

/// A branch child's slug: `"<parent>-<branch>"`, lowercased, non-alphanumerics as single `-`.
pub fn branch_env_slug(parent_slug: &str, branch: &str) -> String {
    let mut out = String::new();
    for c in format!("{parent_slug}-{branch}").chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_headers_are_sanitised_as_upstream() {
        assert_eq!(
            sanitize_branch(Some("refs/heads/feature/login")).as_deref(),
            Some("feature/login")
        );
        assert_eq!(
            sanitize_branch(Some("refs/pull/12/merge")).as_deref(),
            Some("12/merge")
        );
        assert_eq!(sanitize_branch(Some("refs/foo")), None);
        assert_eq!(sanitize_branch(Some("")), None);
        assert_eq!(sanitize_branch(None), None);
        assert_eq!(sanitize_branch(Some(" Feat ")).as_deref(), Some(" Feat "));
        assert_eq!(sanitize_branch(Some("default")).as_deref(), Some("default"));
    }

    #[test]
    fn branch_slugs() {
        assert_eq!(
            branch_env_slug("preview", "feat/checkout"),
            "preview-feat-checkout"
        );
        assert_eq!(branch_env_slug("dev", "Katia//Spike"), "dev-katia-spike");
    }
}
