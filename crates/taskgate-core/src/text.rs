//! Rules for names clients choose (task ids, branch names, titles): what is refused, so that a
//! stored name can neither forge a log line, hide its real text behind a bidirectional
//! override, nor collapse with another into one slug.

/// Longest task id: upstream's ids are short (`send-email`); a bound keeps logs and indexes
/// sane.
pub const MAX_TASK_ID_LEN: usize = 128;
/// Longest branch name, as git hosts allow.
pub const MAX_BRANCH_LEN: usize = 255;

/// A character no name may hold: a control character (NUL, newline, escape…) or a
/// bidirectional embedding, override or isolate (U+202A–U+202E, U+2066–U+2069), which make
/// text display in another order than it is stored.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A task id: 1 to [`MAX_TASK_ID_LEN`] characters, none unsafe, no space at either end.
pub fn check_task_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.chars().count() <= MAX_TASK_ID_LEN
        && !id.chars().any(is_unsafe_char)
        && id.trim() == id;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "A task id must be 1 to {MAX_TASK_ID_LEN} characters, without control characters, \
             bidirectional overrides, or spaces at either end"
        ))
    }
}

/// A branch name a branch environment may be created for: 1 to [`MAX_BRANCH_LEN`]
/// characters with at least one ASCII letter or digit (so its slug is not empty), nothing
/// unsafe, no space at either end and no `..` (as git refuses).
pub fn check_branch_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_BRANCH_LEN
        && name.chars().any(|c| c.is_ascii_alphanumeric())
        && !name.chars().any(is_unsafe_char)
        && name.trim() == name
        && !name.contains("..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "branch must be 1 to {MAX_BRANCH_LEN} bytes with at least one ASCII letter or digit, \
             and no control characters, bidirectional overrides, spaces at either end, or '..'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn task_ids() {
        for ok in ["send-email", "a", "tâche/étape:1", &"x".repeat(128)] {
            assert!(check_task_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a\u{0}b",
            "a\nb",
            " lead",
            "trail ",
            "evil\u{202E}gpj",
            &"x".repeat(129),
        ] {
            assert!(check_task_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn branch_names() {
        for ok in ["main", "feature/login", "v1.2.3", "Feat_X-2", "ü-1"] {
            assert!(check_branch_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "\u{0}",
            " ",
            ".",
            "..",
            "a..b",
            "-",
            "é",
            " main",
            "main\n",
            "a\u{2066}b",
        ] {
            assert!(check_branch_name(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn accepted_names_hold_no_unsafe_character(s in "\\PC{0,40}|[\\x00-\\x1f\\u{202a}-\\u{202e}a-z. ]{0,20}") {
            if check_task_id(&s).is_ok() || check_branch_name(&s).is_ok() {
                prop_assert!(!s.chars().any(is_unsafe_char));
                prop_assert!(!s.is_empty());
            }
            if check_branch_name(&s).is_ok() {
                prop_assert!(!crate::branch::branch_env_slug("preview", &s).eq("preview"));
            }
        }
    }
}
