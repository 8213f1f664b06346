//! Branch names from the `x-trigger-branch` header and the slugs of branch
//! environments (§1.1).

/// Git ref prefixes stripped (once) from a branch header.
const STRIPPED_REF_PREFIXES: &[&str] = &[
    "refs/heads/",
    "refs/remotes/",
    "refs/tags/",
    "refs/pull/",
    "refs/merge/",
    "refs/release/",
];

/// `sanitizeBranchName`: missing or empty → no branch; one leading known `refs/…/` prefix is
/// stripped; any other value starting with `refs/` → no branch; otherwise the value unchanged
/// (no trimming, no lowercasing). A known prefix with nothing after it is no branch either.
pub fn sanitize_branch(header: Option<&str>) -> Option<String> {
    let value = header.filter(|v| !v.is_empty())?;
    if let Some(rest) = STRIPPED_REF_PREFIXES
        .iter()
        .find_map(|prefix| value.strip_prefix(prefix))
    {
        return (!rest.is_empty()).then(|| rest.to_string());
    }
    if value.starts_with("refs/") {
        return None;
    }
    Some(value.to_string())
}

/// A branch child's slug: `"<parent>-<branch>"` lowercased, every run of characters other than
/// ASCII letters and digits turned into one `-`, and `-` trimmed from both ends
/// (`preview` + `feat/Checkout` → `preview-feat-checkout`).
pub fn branch_env_slug(parent_slug: &str, branch: &str) -> String {
    let mut out = String::with_capacity(parent_slug.len() + branch.len() + 1);
    for c in parent_slug
        .chars()
        .chain(std::iter::once('-'))
        .chain(branch.chars())
    {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn branch_headers_are_sanitised_as_upstream() {
        let cases: &[(Option<&str>, Option<&str>)] = &[
            (Some("refs/heads/feature/login"), Some("feature/login")),
            (Some("refs/remotes/origin/main"), Some("origin/main")),
            (Some("refs/tags/v1.2.3"), Some("v1.2.3")),
            (Some("refs/pull/12/merge"), Some("12/merge")),
            (Some("refs/merge/x"), Some("x")),
            (Some("refs/release/2026.1"), Some("2026.1")),
            (Some("refs/heads/refs/heads/x"), Some("refs/heads/x")), // stripped once
            (Some("refs/heads/"), None),
            (Some("refs/foo"), None),
            (Some("refs/"), None),
            (Some(""), None),
            (None, None),
            (Some(" Feat "), Some(" Feat ")), // no trimming, no lowercasing
            (Some("default"), Some("default")), // the dev sentinel is the caller's business
            (Some("Refs/heads/x"), Some("Refs/heads/x")),
        ];
        for (header, want) in cases {
            assert_eq!(sanitize_branch(*header).as_deref(), *want, "{header:?}");
        }
    }

    #[test]
    fn branch_slugs() {
        assert_eq!(
            branch_env_slug("preview", "feat/checkout"),
            "preview-feat-checkout"
        );
        assert_eq!(branch_env_slug("dev", "Katia//Spike"), "dev-katia-spike");
        assert_eq!(branch_env_slug("preview", "-x-"), "preview-x");
        assert_eq!(branch_env_slug("preview", "été"), "preview-t");
        assert_eq!(branch_env_slug("preview", "///"), "preview");
        assert_eq!(branch_env_slug("", "Main"), "main");
    }

    proptest! {
        #[test]
        fn slugs_are_url_safe(parent in ".{0,12}", branch in ".{0,40}") {
            let slug = branch_env_slug(&parent, &branch);
            prop_assert!(slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            prop_assert!(!slug.starts_with('-') && !slug.ends_with('-') && !slug.contains("--"));
        }

        #[test]
        fn sanitising_never_invents_a_branch(header in ".{0,40}") {
            if let Some(b) = sanitize_branch(Some(&header)) {
                prop_assert!(!b.is_empty());
                prop_assert!(header.ends_with(&b));
            }
        }
    }
}
