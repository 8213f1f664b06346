//! The OpenAPI document served at `/api/openapi.json` and committed as docs/openapi.json.

use std::collections::HashSet;

use serde_json::Value;

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// The whole document holds together, so that it cannot drift from the routes again:
/// path parameters are exactly those of the path, every operation says which credentials
/// it takes (`[{}]` for none) from the declared schemes, has answers and a unique id, and
/// every reference resolves.
#[test]
fn the_document_is_consistent() {
    let doc = serde_json::to_value(taskgate_server::router::openapi_document()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(!doc["servers"].as_array().unwrap().is_empty());
    let schemes: HashSet<&str> = doc["components"]["securitySchemes"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut ids = HashSet::new();
    let mut problems = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let in_path: HashSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, op) in ops.as_object().unwrap() {
            let at = format!("{method} {path}");
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let declared: HashSet<String> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect();
            let wanted: HashSet<String> = in_path.iter().map(|s| s.to_string()).collect();
            if declared != wanted {
                problems.push(format!(
                    "{at}: path parameters {declared:?}, path has {wanted:?}"
                ));
            }
            for p in &params {
                let place = p["in"].as_str().unwrap_or("");
                if !["path", "query", "header", "cookie"].contains(&place) {
                    problems.push(format!("{at}: parameter in {place:?}"));
                }
            }
            match op["security"].as_array() {
                Some(reqs) if !reqs.is_empty() => {
                    for name in reqs.iter().flat_map(|r| r.as_object().unwrap().keys()) {
                        if !schemes.contains(name.as_str()) {
                            problems.push(format!("{at}: unknown security scheme {name}"));
                        }
                    }
                }
                _ => problems.push(format!("{at}: no security declared")),
            }
            if op["responses"].as_object().is_none_or(|r| r.is_empty()) {
                problems.push(format!("{at}: no responses"));
            }
            if let Some(id) = op["operationId"].as_str() {
                if !ids.insert(id.to_string()) {
                    problems.push(format!("{at}: operationId {id} used twice"));
                }
            }
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
        if doc["components"]["schemas"].get(name).is_none() {
            problems.push(format!("unresolved reference {r}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
