//! Where a browser may be sent back to after signing in (`/login?next=…`, the `tg_next`
//! cookie).
//!
//! A `next` that a browser would read as another site's address is an open redirect: an
//! attacker's link to the real sign-in page ends on their page, with the user's trust. Browsers
//! are lenient in ways a string prefix check misses: the URL standard strips tabs and newlines
//! anywhere (`/\t/evil.example` is `//evil.example`), treats `\` as `/` (`/\evil.example`), and
//! trims leading spaces and control characters. So a return path must be plain printable
//! ASCII, a path on this origin (one leading `/`, then not `/` or `\`), with no backslash, and
//! must resolve against this server's origin to that same origin, checked by parsing it as a
//! browser would, not by comparing prefixes. Percent-encoded forms are decoded once and held
//! to the same rules, so a path that a careless hop might decode cannot turn into one either.

use url::Url;

/// Longest return path kept (the dashboard's own paths are far shorter).
pub const MAX_RETURN_PATH_LEN: usize = 2048;

/// Stands in for this server's origin when resolving: only "same origin or not" matters.
const BASE: &str = "https://taskgate.invalid/";

/// `next` when it is a safe path on this server to return to, else `None`.
pub fn return_path(next: &str) -> Option<&str> {
    if !plain_local(next) {
        return None;
    }
    // A path that becomes unsafe once percent-decoded (`/%2F/evil.example`, `/%09/…`) is
    // refused too: nothing of the dashboard needs such a path.
    let decoded = percent_decoded(next)?;
    if decoded != next && !safe_decoded(&decoded) {
        return None;
    }
    // Parse it as a browser would, against this origin, and compare origins.
    let base = Url::parse(BASE).ok()?;
    let resolved = base.join(next).ok()?;
    (resolved.origin() == base.origin()).then_some(next)
}

/// `next` or `/` when it is not a safe return path.
pub fn return_path_or_root(next: Option<&str>) -> String {
    next.and_then(return_path).unwrap_or("/").to_string()
}

/// Printable ASCII, one leading `/` not followed by `/` or `\`, no `\`, not too long.
fn plain_local(p: &str) -> bool {
    let b = p.as_bytes();
    p.len() <= MAX_RETURN_PATH_LEN
        && b.first() == Some(&b'/')
        && !matches!(b.get(1), Some(b'/' | b'\\'))
        && b.iter().all(|c| c.is_ascii_graphic() && *c != b'\\')
}

/// A decoded path: still one leading `/` not followed by `/` or `\`, and no control
/// character, backslash or look-alike slash anywhere (spaces and other text may appear, as in
/// a decoded query).
fn safe_decoded(p: &str) -> bool {
    let b = p.as_bytes();
    b.first() == Some(&b'/')
        && !matches!(b.get(1), Some(b'/' | b'\\'))
        && !p.chars().any(|c| {
            c.is_control() || matches!(c, '\\' | '\u{ff0f}' | '\u{2215}' | '\u{2044}' | '\u{29f8}')
        })
}

/// `p` with `%XX` escapes decoded; `None` for a malformed escape or invalid UTF-8.
fn percent_decoded(p: &str) -> Option<String> {
    let b = p.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn dashboard_paths_are_kept() {
        for p in [
            "/",
            "/orgs/acme/projects/web/prod/keys",
            "/runs?status=FAILED&cursor=abc",
            "/errors/error_1#history",
            "/a%20b",
            "/tasks/%C3%A9t%C3%A9",
            "/search?q=%2Fetc",
        ] {
            assert_eq!(return_path(p), Some(p), "{p:?}");
        }
    }

    #[test]
    fn every_known_way_off_the_origin_is_refused() {
        let refused = [
            // The review's finding: a tab, which browsers strip, makes `//evil.example/`.
            "/\t/evil.example/",
            "/\n/evil.example/",
            "/\r/evil.example/",
            "/\r\n/evil.example/",
            "/ /evil.example/",
            " //evil.example/",
            "\t//evil.example/",
            "//evil.example/",
            "//evil.example",
            "///evil.example/",
            "/\\evil.example/",
            "/\\/evil.example/",
            "\\\\evil.example/",
            "/a\\b",
            // Encoded forms, as they would arrive once more decoded.
            "/%2F/evil.example/",
            "/%2f/evil.example/",
            "/%2F%2Fevil.example/",
            "/%5Cevil.example/",
            "/%5C%5Cevil.example/",
            "/%09/evil.example/",
            "/%0A/evil.example/",
            "/%00/",
            "/%zz",
            "/a%5Cb",
            "/%EF%BC%8F%EF%BC%8Fevil.example/",
            // Full-width and other look-alike slashes, and anything else not plain ASCII.
            "/／evil.example/",
            "／／evil.example/",
            "/\u{2215}evil.example",
            "/\u{2044}evil.example",
            "/é",
            // Not a path at all.
            "https://evil.example/",
            "http:evil.example",
            "javascript:alert(1)",
            "evil.example",
            "",
            "/\u{7f}",
        ];
        for p in refused {
            assert_eq!(return_path(p), None, "{p:?} must be refused");
        }
        assert_eq!(
            return_path(&format!("/{}", "a".repeat(MAX_RETURN_PATH_LEN))),
            None
        );
    }

    #[test]
    fn a_refused_path_returns_to_the_root() {
        assert_eq!(return_path_or_root(Some("/\t/evil.example/")), "/");
        assert_eq!(return_path_or_root(None), "/");
        assert_eq!(return_path_or_root(Some("/runs")), "/runs");
    }

    proptest! {
        /// Whatever it is given, a kept path resolves on this origin (what a browser does
        /// with it), also once decoded.
        #[test]
        fn kept_paths_never_leave_the_origin(p in "[/\\\\%a-zA-Z0-9.:\t\n ?#@]{0,24}") {
            if let Some(kept) = return_path(&p) {
                let base = Url::parse(BASE).unwrap();
                prop_assert_eq!(base.join(kept).unwrap().origin(), base.origin());
                let decoded = percent_decoded(kept).unwrap();
                prop_assert_eq!(base.join(&decoded).unwrap().origin(), base.origin());
                prop_assert!(!decoded.starts_with("//"));
            }
        }
    }
}
