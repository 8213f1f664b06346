//! The server's modules import each other without a loop: every `use crate::…`, `use
//! super::…` and inline `crate::…` path in `src/` is resolved to the file that defines it, and
//! the graph of files that this makes must have no cycle. A loop (state.rs importing a module
//! that imports state.rs) is how the server's modules got tangled before; this keeps them from
//! doing it again.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions report failures by panicking"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a source file: `src/routes/runs/mod.rs` → `["routes", "runs"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The code of a file without comments and string literals, which may mention `crate::`.
fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut in_string = false;
        let mut prev = ' ';
        for c in line.chars() {
            if c == '"' && prev != '\\' {
                in_string = !in_string;
            } else if !in_string {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// Expands a `use` tree (`a::{b, c::d}`) into its paths.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    match tree.find('{') {
        None => {
            let path = tree.split(" as ").next().unwrap_or("").trim();
            if !path.is_empty() {
                out.push(format!("{prefix}{path}"));
            }
        }
        Some(open) => {
            let head = tree[..open].trim();
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&format!("{prefix}{head}"), &inner[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            expand(&format!("{prefix}{head}"), &inner[start..], out);
        }
    }
}

/// The paths a file names within the crate, absolute (`crate::…`), from its `use` items and
/// its inline `crate::` paths.
fn paths_named(module: &[String], code: &str) -> Vec<Vec<String>> {
    let mut raw = Vec::new();
    for stmt in code.split(';') {
        let stmt = stmt.trim();
        let body = stmt
            .strip_prefix("pub(crate) use ")
            .or_else(|| stmt.strip_prefix("pub use "))
            .or_else(|| stmt.strip_prefix("use "));
        if let Some(tree) = body {
            if tree.starts_with("crate::") || tree.starts_with("super::") {
                expand("", tree, &mut raw);
            }
        }
    }
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            raw.push(tail[..end].to_string());
        }
        rest = &tail[end.max(1)..];
    }
    raw.into_iter()
        .map(|p| {
            let mut segments: Vec<String> = p
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if segments.first().map(String::as_str) == Some("crate") {
                segments.remove(0);
                segments
            } else {
                let mut base = module.to_vec();
                while segments.first().map(String::as_str) == Some("super") {
                    segments.remove(0);
                    base.pop();
                }
                base.extend(segments);
                base
            }
        })
        .collect()
}

/// The longest prefix of `path` that is a module with a file of its own.
fn resolve<'a>(
    path: &[String],
    files: &'a BTreeMap<Vec<String>, PathBuf>,
) -> Option<&'a Vec<String>> {
    (1..=path.len())
        .rev()
        .find_map(|n| files.get_key_value(&path[..n]).map(|(k, _)| k))
}

/// A cycle in `graph`, if any, as the modules around it.
fn find_cycle(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<Vec<String>>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        marks: &mut BTreeMap<Vec<String>, Mark>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = stack.iter().position(|n| n == node).unwrap_or(0);
                return Some(stack[from..].to_vec());
            }
            None => {}
        }
        marks.insert(node.clone(), Mark::Open);
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        let mut stack = Vec::new();
        if let Some(cycle) = visit(node, graph, &mut marks, &mut stack) {
            return Some(cycle);
        }
    }
    None
}

/// The module graph of the crate whose sources are in `src`.
fn graph_of(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let modules: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .map(|f| (module_of(src, f), f.clone()))
        .collect();
    let mut graph = BTreeMap::new();
    for (module, file) in &modules {
        let text = code(&std::fs::read_to_string(file).unwrap());
        let edges: BTreeSet<Vec<String>> = paths_named(module, &text)
            .iter()
            .filter_map(|p| resolve(p, &modules))
            // A module naming its own items, or the crate root's, is no edge.
            .filter(|m| *m != module && !m.is_empty())
            .cloned()
            .collect();
        graph.insert(module.clone(), edges);
    }
    graph
}

#[test]
fn server_modules_import_each_other_without_a_loop() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph_of(&src);
    assert!(graph.len() > 30, "the server's modules were read");
    let state = vec!["state".to_string()];
    assert!(
        graph.values().any(|edges| edges.contains(&state)),
        "imports of crate::state::AppState are seen"
    );
    if let Some(cycle) = find_cycle(&graph) {
        let names: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
        panic!(
            "these modules import each other in a loop: {}",
            names.join(" → ")
        );
    }
}

#[test]
fn a_loop_is_found() {
    // The checker itself: a and b naming each other, through `use` and an inline path.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::{B, other::Thing};\n").unwrap();
    std::fs::write(src.join("b.rs"), "fn f() -> crate::a::A { todo!() }\n").unwrap();
    let graph = graph_of(src);
    let cycle = find_cycle(&graph).expect("a and b form a loop");
    assert_eq!(cycle.len(), 2);
    std::fs::write(
        src.join("b.rs"),
        "// crate::a::A is only named in a comment\n",
    )
    .unwrap();
    assert!(find_cycle(&graph_of(src)).is_none());
}
