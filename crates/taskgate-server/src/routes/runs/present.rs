//! How a stored run becomes the wire types of `taskgate_api::runs`: packets decoded, errors in
//! the SDK's shape, internal bookkeeping left out.

use serde_json::Value;
use taskgate_api::runs::{
    RelatedRuns, RetrieveRunResponse, RunEnvironment, RunFields, RunListItem, SerializedError,
};
use taskgate_core::run::status_flags;
use taskgate_core::time::iso_millis;
use taskgate_engine::packets::{decode_packet, STORE_TYPE};
use taskgate_store::Run;

/// The fields every run shape has (`CommonRunFields`).
pub fn run_fields(run: &Run) -> RunFields {
    let api = run.status.api_status();
    let flags = status_flags(api);
    let duration_ms = match (run.started_at, run.completed_at) {
        (Some(s), Some(c)) => (c - s).num_milliseconds().max(0),
        _ => 0,
    };
    RunFields {
        id: run.friendly_id.to_string(),
        status: api.to_string(),
        task_identifier: run.task_identifier.clone(),
        is_queued: flags.is_queued,
        is_executing: flags.is_executing,
        is_waiting: flags.is_waiting,
        is_completed: flags.is_completed,
        is_success: flags.is_success,
        is_failed: flags.is_failed,
        is_cancelled: flags.is_cancelled,
        is_test: run.is_test,
        created_at: iso_millis(run.created_at),
        updated_at: iso_millis(run.updated_at),
        tags: run.tags.clone(),
        cost_in_cents: 0,
        base_cost_in_cents: 0,
        duration_ms,
        depth: 0,
        task_kind: "STANDARD".into(),
        idempotency_key: run
            .idempotency_key_user
            .clone()
            .or_else(|| run.idempotency_key.clone()),
        version: run.task_version.clone(),
        started_at: run.started_at.map(iso_millis),
        finished_at: run.completed_at.map(iso_millis),
        delayed_until: run.delay_until.map(iso_millis),
        expired_at: run.expired_at.map(iso_millis),
        ttl: run.ttl.clone(),
        metadata: decode_packet(run.metadata.as_deref(), run.metadata_type.as_deref())
            .filter(Value::is_object)
            .map(strip_stream_keys),
    }
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
pub fn list_item(run: &Run, env_id: &str, env_slug: &str) -> RunListItem {
    RunListItem {
        run: run_fields(run),
        env: RunEnvironment {
            id: env_id.to_string(),
            name: env_slug.to_string(),
        },
    }
}

/// The retrieve shape (`RetrieveRunResponse`). An offloaded payload or output is given as a
/// URL to read it from, made by `packet_url` from its path.
pub fn retrieved(run: &Run, packet_url: impl Fn(&str) -> String) -> RetrieveRunResponse {
    let completed = run.status.api_status() == "COMPLETED";
    let stored = |data: Option<&str>, kind: Option<&str>| match (data, kind) {
        (Some(path), Some(STORE_TYPE)) => Some(packet_url(path)),
        _ => None,
    };
    let output = completed
        .then(|| decode_packet(run.output.as_deref(), run.output_type.as_deref()))
        .flatten();
    let output_presigned_url = completed
        .then(|| stored(run.output.as_deref(), run.output_type.as_deref()))
        .flatten();
    RetrieveRunResponse {
        run: run_fields(run),
        trigger_function: "trigger".into(),
        related_runs: RelatedRuns::default(),
        attempt_count: run.attempt_number,
        payload: decode_packet(run.payload.as_deref(), Some(&run.payload_type)),
        output,
        payload_presigned_url: stored(run.payload.as_deref(), Some(&run.payload_type)),
        output_presigned_url,
        error: run
            .error
            .as_deref()
            .and_then(|e| serde_json::from_str::<Value>(e).ok())
            .map(|e| error_object(&e)),
        batch_id: run.batch_id.clone().map(String::from),
    }
}

/// A stored `TaskRunError` as the SDK's `SerializedError` (`createJsonErrorObject`).
fn error_object(e: &Value) -> SerializedError {
    let text = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
    let message = |message: String| SerializedError {
        message,
        name: None,
        stack_trace: None,
    };
    match text("type").as_deref() {
        Some("BUILT_IN_ERROR") => SerializedError {
            message: text("message").unwrap_or_default(),
            name: text("name"),
            stack_trace: text("stackTrace"),
        },
        Some("INTERNAL_ERROR") => message(format!(
            "trigger.dev internal error ({})",
            text("code").unwrap_or_default()
        )),
        Some("STRING_ERROR") | Some("CUSTOM_ERROR") => message(text("raw").unwrap_or_default()),
        _ => message(text("message").unwrap_or_else(|| "Unknown error".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use taskgate_core::engine::{ExecutionStatus, RunStatus};

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
        let shown = |e: Value| serde_json::to_value(error_object(&e)).unwrap_or_default();
        assert_eq!(
            shown(json!({ "type": "STRING_ERROR", "raw": "boom" })),
            json!({ "message": "boom" })
        );
        assert_eq!(
            shown(
                json!({ "type": "BUILT_IN_ERROR", "name": "TypeError", "message": "x", "stackTrace": "at y" })
            ),
            json!({ "message": "x", "name": "TypeError", "stackTrace": "at y" })
        );
        assert_eq!(
            shown(json!({ "type": "INTERNAL_ERROR", "code": "TASK_RUN_CRASHED" })),
            json!({ "message": "trigger.dev internal error (TASK_RUN_CRASHED)" })
        );
    }

    /// A run as stored, with every optional field empty.
    fn queued() -> Run {
        let at = chrono::DateTime::from_timestamp_millis(1_780_000_000_123).unwrap_or_default();
        Run {
            id: "c1".into(),
            friendly_id: "run_1".into(),
            environment_id: "env".into(),
            task_identifier: "email".into(),
            status: RunStatus::Pending,
            execution_status: ExecutionStatus::Queued,
            snapshot_id: "snapshot_1".into(),
            snapshot_description: "queued".into(),
            snapshot_at: at,
            attempt_number: 0,
            attempt_started_at: None,
            heartbeat_at: None,
            available_at: Some(at),
            worker_id: None,
            task_version: None,
            max_duration_seconds: None,
            retry_config: None,
            is_development: false,
            is_replay: false,
            payload: Some(r#"{"to":"a@example.com"}"#.into()),
            payload_type: "application/json".into(),
            output: None,
            output_type: None,
            error: None,
            tags: vec![],
            metadata: None,
            metadata_type: None,
            idempotency_key: None,
            idempotency_key_user: None,
            idempotency_key_expires_at: None,
            queue: Some("task/email".into()),
            concurrency_key: None,
            max_attempts: None,
            machine: None,
            ttl: None,
            ttl_expires_at: None,
            delay_until: None,
            batch_id: None,
            parent_run_id: None,
            resume_parent_on_completion: false,
            completed_waitpoints: None,
            snapshot_batch_id: None,
            is_test: false,
            schedule_id: None,
            created_at: at,
            updated_at: at,
            started_at: None,
            completed_at: None,
            expired_at: None,
            version: 1,
        }
    }

    fn completed() -> Run {
        let run = queued();
        let started = run.created_at + chrono::Duration::milliseconds(250);
        let done = started + chrono::Duration::milliseconds(1_500);
        Run {
            status: RunStatus::CompletedSuccessfully,
            execution_status: ExecutionStatus::Finished,
            attempt_number: 1,
            task_version: Some("20261127.3".into()),
            output: Some(r#"{"sent":true}"#.into()),
            output_type: Some("application/json".into()),
            tags: vec!["user_1".into()],
            metadata: Some(r#"{"progress":1,"$$streams":["s"]}"#.into()),
            metadata_type: Some("application/json".into()),
            idempotency_key: Some("hashed".into()),
            idempotency_key_user: Some("welcome-1".into()),
            ttl: Some("1h".into()),
            batch_id: Some("batch_1".into()),
            started_at: Some(started),
            completed_at: Some(done),
            updated_at: done,
            ..run
        }
    }

    fn url(path: &str) -> String {
        format!("https://tg.example/packets/v1/env_1/{path}?signed")
    }

    #[test]
    fn offloaded_packets_are_given_as_urls() {
        let run = Run {
            payload: Some("trigger/packet_1/payload.json".into()),
            payload_type: "application/store".into(),
            output: Some("run_1-1/output.json".into()),
            output_type: Some("application/store".into()),
            ..completed()
        };
        let r = retrieved(&run, url);
        assert_eq!((r.payload, r.output), (None, None));
        assert_eq!(
            r.payload_presigned_url.as_deref(),
            Some("https://tg.example/packets/v1/env_1/trigger/packet_1/payload.json?signed")
        );
        assert_eq!(
            r.output_presigned_url.as_deref(),
            Some("https://tg.example/packets/v1/env_1/run_1-1/output.json?signed")
        );
        // A run that did not complete has no output to hand out.
        let failed = retrieved(
            &Run {
                status: RunStatus::CompletedWithErrors,
                ..run
            },
            url,
        );
        assert_eq!(failed.output_presigned_url, None);
        assert!(failed.payload_presigned_url.is_some());
    }

    #[test]
    fn a_queued_run_omits_what_it_does_not_have() {
        insta::assert_json_snapshot!(retrieved(&queued(), url));
    }

    #[test]
    fn a_completed_run_shows_its_output_and_timings() {
        insta::assert_json_snapshot!(retrieved(&completed(), url));
    }

    #[test]
    fn a_failed_run_shows_its_error_and_no_output() {
        let run = Run {
            status: RunStatus::CompletedWithErrors,
            error: Some(
                r#"{"type":"BUILT_IN_ERROR","name":"Error","message":"boom","stackTrace":"Error: boom"}"#
                    .into(),
            ),
            ..completed()
        };
        insta::assert_json_snapshot!(retrieved(&run, url));
    }

    #[test]
    fn a_listed_run_names_its_environment() {
        insta::assert_json_snapshot!(list_item(&completed(), "env_1", "prod"));
    }
}
