//! Output: `--json` prints the server's body as it came; otherwise short human text and
//! aligned tables. Secrets (new tokens and keys) go alone on stdout so they can be piped;
//! commentary about them goes to stderr.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The body, pretty-printed, on stdout.
pub fn json(body: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(body)?);
    Ok(())
}

/// A time as `2025-01-31 14:05:09Z`; `-` when absent.
pub fn time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".to_string())
}

/// Rows under a header, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
