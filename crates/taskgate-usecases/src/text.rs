//! Names people give things: trimmed, bounded, without control characters; and the URL slugs
//! made from them.

use taskgate_core::Problem;

use crate::Result;

/// A URL slug: lowercase ASCII alphanumerics separated by single dashes, at most 48 long.
pub fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 48 {
            break;
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "untitled".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Trims a required name field and checks its length.
pub fn required_name(field: &str, value: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(taskgate_core::text::is_unsafe_char)
    {
        return Err(Problem::invalid_body(format!(
            "{field} must be 1 to {max} characters, without control characters or bidirectional overrides"
        )));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs_are_url_safe() {
        assert_eq!(slugify("Acme, Inc."), "acme-inc");
        assert_eq!(slugify("  Ünïcode  !! "), "n-code");
        assert_eq!(slugify("!!!"), "untitled");
    }
}
