//! How a run is shown to the 4.8.3 SDK: zod decides whether our JSON parses (§1.5), so
//! optional fields are omitted rather than null, and enums carry exactly the SDK's values.

use serde_json::{json, Map, Value};
use taskgate_core::run::status_flags;
use taskgate_core::time::iso_millis;
use taskgate_store::Run;

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

fn put(m: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        m.insert(key.to_string(), v);
    }
}

/// The fields every run shape has (`CommonRunFields`).
pub fn common_fields(run: &Run) -> Map<String, Value> {
    let api = run.status.api_status();
    let flags = status_flags(api);
    let duration_ms = match (run.started_at, run.completed_at) {
        (Some(s), Some(c)) => (c - s).num_milliseconds().max(0),
        _ => 0,
    };
    let mut m = match json!({
        "id": run.friendly_id,
        "status": api,
        "taskIdentifier": run.task_identifier,
        "isQueued": flags.is_queued,
        "isExecuting": flags.is_executing,
        "isWaiting": flags.is_waiting,
        "isCompleted": flags.is_completed,
        "isSuccess": flags.is_success,
        "isFailed": flags.is_failed,
        "isCancelled": flags.is_cancelled,
        "isTest": run.is_test,
        "createdAt": iso_millis(run.created_at),
        "updatedAt": iso_millis(run.updated_at),
        "tags": run.tags,
        "costInCents": 0,
        "baseCostInCents": 0,
        "durationMs": duration_ms,
        "depth": 0,
        "taskKind": "STANDARD",
    }) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let idem = run
        .idempotency_key_user
        .clone()
        .or_else(|| run.idempotency_key.clone());
    put(&mut m, "idempotencyKey", idem.map(Value::String));
    put(
        &mut m,
        "version",
        run.task_version.clone().map(Value::String),
    );
    put(
        &mut m,
        "startedAt",
        run.started_at.map(|t| json!(iso_millis(t))),
    );
    put(
        &mut m,
        "finishedAt",
        run.completed_at.map(|t| json!(iso_millis(t))),
    );
    put(
        &mut m,
        "delayedUntil",
        run.delay_until.map(|t| json!(iso_millis(t))),
    );
    put(
        &mut m,
        "expiredAt",
        run.expired_at.map(|t| json!(iso_millis(t))),
    );
    put(&mut m, "ttl", run.ttl.clone().map(Value::String));
    let metadata = decode_packet(run.metadata.as_deref(), run.metadata_type.as_deref())
        .filter(Value::is_object);
    put(&mut m, "metadata", metadata.map(strip_stream_keys));
    m
}

/// Upstream hides its internal stream bookkeeping keys from metadata.
fn strip_stream_keys(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        for k in ["$$streams", "$$streamsVersion", "$$streamsBaseUrl"] {
            o.remove(k);
        }
    }
    v
}

/// A list item: the common fields plus `env`.
pub fn list_item(run: &Run, env_id: &str, env_slug: &str) -> Value {
    let mut m = common_fields(run);
    m.insert("env".into(), json!({ "id": env_id, "name": env_slug }));
    Value::Object(m)
}

/// The retrieve shape (`RetrieveRunResponse`).
pub fn retrieved(run: &Run) -> Value {
    let mut m = common_fields(run);
    m.insert("triggerFunction".into(), json!("trigger"));
    m.insert("relatedRuns".into(), json!({}));
    m.insert("attemptCount".into(), json!(run.attempt_number));
    put(
        &mut m,
        "payload",
        decode_packet(run.payload.as_deref(), Some(&run.payload_type)),
    );
    if run.status.api_status() == "COMPLETED" {
        put(
            &mut m,
            "output",
            decode_packet(run.output.as_deref(), run.output_type.as_deref()),
        );
    }
    put(
        &mut m,
        "error",
        run.error
            .as_deref()
            .and_then(|e| serde_json::from_str::<Value>(e).ok())
            .map(error_object),
    );
    put(&mut m, "batchId", run.batch_id.clone().map(Value::String));
    Value::Object(m)
}

/// A stored `TaskRunError` as the SDK's `SerializedError` (`createJsonErrorObject`).
fn error_object(e: Value) -> Value {
    let text = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
    match text("type").as_deref() {
        Some("BUILT_IN_ERROR") => {
            let mut m = Map::new();
            m.insert("message".into(), json!(text("message").unwrap_or_default()));
            put(&mut m, "name", text("name").map(Value::String));
            put(&mut m, "stackTrace", text("stackTrace").map(Value::String));
            Value::Object(m)
        }
        Some("INTERNAL_ERROR") => {
            json!({ "message": format!("trigger.dev internal error ({})", text("code").unwrap_or_default()) })
        }
        Some("STRING_ERROR") | Some("CUSTOM_ERROR") => {
            json!({ "message": text("raw").unwrap_or_default() })
        }
        _ => json!({ "message": text("message").unwrap_or_else(|| "Unknown error".into()) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_decode_by_type() {
        assert_eq!(
            decode_packet(Some("{\"a\":1}"), Some("application/json")),
            Some(json!({ "a": 1 }))
        );
        let sj = r#"{"json":{"d":"1970-01-01T00:00:00.000Z"},"meta":{"values":{"d":["Date"]}}}"#;
        assert_eq!(
            decode_packet(Some(sj), Some("application/super+json")),
            Some(json!({ "d": "1970-01-01T00:00:00.000Z" }))
        );
        assert_eq!(
            decode_packet(Some("hi"), Some("text/plain")),
            Some(json!("hi"))
        );
        assert_eq!(decode_packet(None, Some("text/plain")), None);
    }

    #[test]
    fn errors_take_the_sdks_shape() {
        assert_eq!(
            error_object(json!({ "type": "STRING_ERROR", "raw": "boom" })),
            json!({ "message": "boom" })
        );
        assert_eq!(
            error_object(
                json!({ "type": "BUILT_IN_ERROR", "name": "TypeError", "message": "x", "stackTrace": "at y" })
            ),
            json!({ "message": "x", "name": "TypeError", "stackTrace": "at y" })
        );
        assert_eq!(
            error_object(json!({ "type": "INTERNAL_ERROR", "code": "TASK_RUN_CRASHED" }))
                ["message"],
            "trigger.dev internal error (TASK_RUN_CRASHED)"
        );
    }
}
