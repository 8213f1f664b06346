//! Packets: how payloads, outputs and metadata are stored (as the SDK sends them, with their
//! type) and read back for the API and the dashboard.

use serde_json::Value;

/// Decodes a stored packet for the API: JSON parsed, SuperJSON's plain `json` part, text as is.
pub fn decode_packet(data: Option<&str>, kind: Option<&str>) -> Option<Value> {
    let data = data?;
    match kind.unwrap_or("application/json") {
        "application/json" => serde_json::from_str(data).ok(),
        "application/super+json" => serde_json::from_str::<Value>(data)
            .ok()
            .and_then(|v| v.get("json").cloned()),
        "text/plain" => Some(Value::String(data.to_string())),
        _ => None,
    }
}
