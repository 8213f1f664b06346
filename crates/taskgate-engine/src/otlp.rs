//! What task processes export over OTLP/HTTP, decoded from JSON or protobuf: log records that
//! name a run become its log view, spans that name a run join its trace. The endpoint a
//! process is given carries a credential, an HMAC of its environment
//! (`<public url>/otel/<environment id>.<mac>`), since exporters send none.

use chrono::{DateTime, Utc};
use prost::Message;
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};
use taskgate_core::hash::{constant_time_eq, hmac_sha256};
use taskgate_core::ids::EnvironmentId;
use taskgate_store::{NewRunLog, NewRunSpan, RunSpan};

use crate::{Engine, Error, Result};

/// Records kept from one export; a worker flushes often, so more in one is a runaway loop.
const MAX_RECORDS: usize = 2000;
/// Longest log message kept; longer ones are cut and marked.
const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// Largest attributes kept per record, as JSON.
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;
/// Longest span name kept.
const MAX_SPAN_NAME_BYTES: usize = 1024;
/// Hex characters of the endpoint's mac (128 bits).
const MAC_HEX_LEN: usize = 32;

impl Engine {
    fn otlp_mac(&self, environment_id: &str) -> String {
        let digest = hmac_sha256(
            self.signing_secret.expose_secret(),
            format!("taskgate:otlp:{environment_id}").as_bytes(),
        );
        hex::encode(&digest[..MAC_HEX_LEN / 2])
    }

    /// The OTLP endpoint a worker of `environment_id` exports to, under `base` (the public
    /// URL).
    pub fn otlp_endpoint(&self, base: &str, environment_id: &str) -> String {
        format!(
            "{base}/otel/{environment_id}.{}",
            self.otlp_mac(environment_id)
        )
    }

    /// The environment an endpoint's path credential vouches for.
    pub fn verify_otlp_credential(&self, credential: &str) -> Option<EnvironmentId> {
        let (env_id, given) = credential.rsplit_once('.')?;
        let expected = self.otlp_mac(env_id);
        constant_time_eq(given.as_bytes(), expected.as_bytes()).then(|| env_id.into())
    }
}

/// A log record, decoded from either encoding.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LogRecord {
    pub time_unix_nano: u64,
    pub severity_text: String,
    pub severity_number: i32,
    pub body: Option<Value>,
    /// The record's own attributes.
    pub attributes: Map<String, Value>,
    /// Its resource's (the process: environment, machine, SDK version…).
    pub resource: Map<String, Value>,
}

/// A run's log record from an OTLP one, when it names a run.
pub fn run_log(r: LogRecord) -> Option<NewRunLog> {
    let text = |k: &str| {
        r.attributes
            .get(k)
            .or_else(|| r.resource.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let run_id = text("ctx.run.id")
        .or_else(|| text("$metadata.ctx.run.id"))
        .or_else(|| text("run.id"))?;
    let attempt = ["ctx.attempt.number", "$metadata.ctx.attempt.number"]
        .iter()
        .find_map(|k| r.attributes.get(*k))
        .and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        });
    let mut message = match &r.body {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    if message.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str("...[truncated]");
    }
    // What the task logged; the SDK's own bookkeeping (`$…`) and the run context, which the
    // run already is, are left out.
    let attributes: Map<String, Value> = r
        .attributes
        .into_iter()
        .filter(|(k, _)| !k.starts_with('$') && !k.starts_with("ctx."))
        .collect();
    let mut json = Value::Object(attributes).to_string();
    if json.len() > MAX_ATTRIBUTES_BYTES {
        json = json!({ "truncated": true }).to_string();
    }
    let severity = if r.severity_text.is_empty() {
        severity_name(r.severity_number).to_string()
    } else {
        r.severity_text.to_lowercase()
    };
    let time = i64::try_from(r.time_unix_nano)
        .ok()
        .filter(|n| *n > 0)
        .map(DateTime::<Utc>::from_timestamp_nanos)
        .unwrap_or_else(Utc::now);
    Some(NewRunLog {
        run_friendly_id: run_id.into(),
        attempt_number: attempt,
        time,
        severity,
        message,
        attributes: (json != "{}").then_some(json),
    })
}

/// A span, decoded from either encoding.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SpanRecord {
    /// Lowercase hex, as OTLP JSON spells ids.
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// OTLP's status code 2.
    pub is_error: bool,
    pub attributes: Map<String, Value>,
    pub resource: Map<String, Value>,
}

/// A run's span from an OTLP one, when it names a run and has ended (the SDK sends a partial
/// copy of a long span when it starts, then the span itself).
pub fn run_span(r: SpanRecord) -> Option<NewRunSpan> {
    let field = |k: &str| r.attributes.get(k).or_else(|| r.resource.get(k));
    let run_id = ["ctx.run.id", "$metadata.ctx.run.id"]
        .iter()
        .find_map(|k| field(k))
        .and_then(Value::as_str)?
        .to_string();
    if r.attributes.get("$span.partial").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let valid_id = |id: &str| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid_id(&r.span_id) {
        return None;
    }
    let attempt = ["ctx.attempt.number", "$metadata.ctx.attempt.number"]
        .iter()
        .find_map(|k| field(k))
        .and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        });
    let attributes: Map<String, Value> = r
        .attributes
        .into_iter()
        .filter(|(k, _)| !k.starts_with('$') && !k.starts_with("ctx."))
        .collect();
    let mut json = Value::Object(attributes).to_string();
    if json.len() > MAX_ATTRIBUTES_BYTES {
        json = json!({ "truncated": true }).to_string();
    }
    let time = |n: u64| {
        i64::try_from(n)
            .ok()
            .filter(|n| *n > 0)
            .map(DateTime::<Utc>::from_timestamp_nanos)
    };
    let start = time(r.start_unix_nano)?;
    let end = time(r.end_unix_nano).unwrap_or(start).max(start);
    let mut name = r.name;
    if name.len() > MAX_SPAN_NAME_BYTES {
        let mut cut = MAX_SPAN_NAME_BYTES;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
    }
    Some(NewRunSpan {
        run_friendly_id: run_id.into(),
        span: RunSpan {
            span_id: r.span_id.to_ascii_lowercase(),
            parent_span_id: valid_id(&r.parent_span_id)
                .then(|| r.parent_span_id.to_ascii_lowercase()),
            attempt_number: attempt,
            name,
            start,
            end,
            is_error: r.is_error,
            attributes: (json != "{}").then_some(json),
        },
    })
}

/// OTLP's severity numbers by range.
fn severity_name(n: i32) -> &'static str {
    match n {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => "log",
    }
}

/// An OTLP JSON `AnyValue` as plain JSON.
fn any_value(v: &Value) -> Value {
    let Some(o) = v.as_object() else {
        return Value::Null;
    };
    if let Some(s) = o.get("stringValue") {
        return s.clone();
    }
    if let Some(b) = o.get("boolValue") {
        return b.clone();
    }
    if let Some(i) = o.get("intValue") {
        // int64 is a string in OTLP JSON.
        return match i {
            Value::String(s) => s.parse::<i64>().map(Value::from).unwrap_or(Value::Null),
            other => other.clone(),
        };
    }
    if let Some(d) = o.get("doubleValue") {
        return d.clone();
    }
    if let Some(a) = o.get("arrayValue") {
        let values = a.get("values").and_then(Value::as_array);
        return Value::Array(
            values
                .map(|v| v.iter().map(any_value).collect())
                .unwrap_or_default(),
        );
    }
    if let Some(kv) = o.get("kvlistValue") {
        return Value::Object(attributes(kv.get("values")));
    }
    Value::Null
}

/// OTLP JSON `KeyValue`s as a map.
fn attributes(list: Option<&Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for kv in list.and_then(Value::as_array).into_iter().flatten() {
        if let Some(k) = kv.get("key").and_then(Value::as_str) {
            out.insert(
                k.to_string(),
                kv.get("value").map(any_value).unwrap_or(Value::Null),
            );
        }
    }
    out
}

/// The records of an OTLP JSON `ExportLogsServiceRequest`.
pub fn json_logs(body: &[u8]) -> Result<Vec<LogRecord>> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| Error::Invalid("Invalid OTLP JSON".into()))?;
    let mut out = Vec::new();
    for rl in v
        .get("resourceLogs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let resource = attributes(rl.get("resource").and_then(|r| r.get("attributes")));
        for sl in rl
            .get("scopeLogs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for r in sl
                .get("logRecords")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if out.len() >= MAX_RECORDS {
                    return Ok(out);
                }
                out.push(LogRecord {
                    time_unix_nano: nanos(r.get("timeUnixNano")),
                    severity_text: r
                        .get("severityText")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    severity_number: r
                        .get("severityNumber")
                        .and_then(Value::as_i64)
                        .and_then(|n| i32::try_from(n).ok())
                        .unwrap_or(0),
                    body: r.get("body").map(any_value),
                    attributes: attributes(r.get("attributes")),
                    resource: resource.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// A nanosecond time as OTLP JSON writes it: a string, or a number.
fn nanos(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

/// The spans of an OTLP JSON `ExportTraceServiceRequest`.
pub fn json_spans(body: &[u8]) -> Result<Vec<SpanRecord>> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| Error::Invalid("Invalid OTLP JSON".into()))?;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut out = Vec::new();
    for rs in v
        .get("resourceSpans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let resource = attributes(rs.get("resource").and_then(|r| r.get("attributes")));
        for ss in rs
            .get("scopeSpans")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for span in ss
                .get("spans")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if out.len() >= MAX_RECORDS {
                    return Ok(out);
                }
                let code = span.get("status").and_then(|s| s.get("code"));
                out.push(SpanRecord {
                    span_id: text(span, "spanId"),
                    parent_span_id: text(span, "parentSpanId"),
                    name: text(span, "name"),
                    start_unix_nano: nanos(span.get("startTimeUnixNano")),
                    end_unix_nano: nanos(span.get("endTimeUnixNano")),
                    is_error: code.and_then(Value::as_i64) == Some(2)
                        || code.and_then(Value::as_str) == Some("STATUS_CODE_ERROR"),
                    attributes: attributes(span.get("attributes")),
                    resource: resource.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// OTLP protobuf messages, as much of them as taskgate reads (unknown fields are skipped).
pub mod proto {
    use super::*;

    #[derive(Clone, PartialEq, Message)]
    pub struct ExportLogsServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_logs: Vec<ResourceLogs>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct ResourceLogs {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_logs: Vec<ScopeLogs>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct Resource {
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct ScopeLogs {
        #[prost(message, repeated, tag = "2")]
        pub log_records: Vec<ProtoLogRecord>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct ProtoLogRecord {
        #[prost(fixed64, tag = "1")]
        pub time_unix_nano: u64,
        #[prost(int32, tag = "2")]
        pub severity_number: i32,
        #[prost(string, tag = "3")]
        pub severity_text: String,
        #[prost(message, optional, tag = "5")]
        pub body: Option<AnyValue>,
        #[prost(message, repeated, tag = "6")]
        pub attributes: Vec<KeyValue>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct AnyValue {
        #[prost(oneof = "Value_", tags = "1, 2, 3, 4, 5, 6, 7")]
        pub value: Option<Value_>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value_ {
        #[prost(string, tag = "1")]
        StringValue(String),
        #[prost(bool, tag = "2")]
        BoolValue(bool),
        #[prost(int64, tag = "3")]
        IntValue(i64),
        #[prost(double, tag = "4")]
        DoubleValue(f64),
        #[prost(message, tag = "5")]
        ArrayValue(ArrayValue),
        #[prost(message, tag = "6")]
        KvlistValue(KeyValueList),
        #[prost(bytes, tag = "7")]
        BytesValue(Vec<u8>),
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct ArrayValue {
        #[prost(message, repeated, tag = "1")]
        pub values: Vec<AnyValue>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct KeyValueList {
        #[prost(message, repeated, tag = "1")]
        pub values: Vec<KeyValue>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct ExportTraceServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_spans: Vec<ResourceSpans>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct ResourceSpans {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_spans: Vec<ScopeSpans>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct ScopeSpans {
        #[prost(message, repeated, tag = "2")]
        pub spans: Vec<Span>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct Span {
        #[prost(bytes = "vec", tag = "2")]
        pub span_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "4")]
        pub parent_span_id: Vec<u8>,
        #[prost(string, tag = "5")]
        pub name: String,
        #[prost(fixed64, tag = "7")]
        pub start_time_unix_nano: u64,
        #[prost(fixed64, tag = "8")]
        pub end_time_unix_nano: u64,
        #[prost(message, repeated, tag = "9")]
        pub attributes: Vec<KeyValue>,
        #[prost(message, optional, tag = "15")]
        pub status: Option<Status>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct Status {
        #[prost(int32, tag = "3")]
        pub code: i32,
    }

    /// The spans of a protobuf `ExportTraceServiceRequest`.
    pub fn spans(body: &[u8]) -> Result<Vec<SpanRecord>> {
        let req = ExportTraceServiceRequest::decode(body)
            .map_err(|_| Error::Invalid("Invalid OTLP protobuf".into()))?;
        let mut out = Vec::new();
        for rs in &req.resource_spans {
            let resource = rs
                .resource
                .as_ref()
                .map(|r| map(&r.attributes))
                .unwrap_or_default();
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    if out.len() >= MAX_RECORDS {
                        return Ok(out);
                    }
                    out.push(SpanRecord {
                        span_id: hex::encode(&span.span_id),
                        parent_span_id: hex::encode(&span.parent_span_id),
                        name: span.name.clone(),
                        start_unix_nano: span.start_time_unix_nano,
                        end_unix_nano: span.end_time_unix_nano,
                        is_error: span.status.as_ref().is_some_and(|s| s.code == 2),
                        attributes: map(&span.attributes),
                        resource: resource.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    fn value(v: &AnyValue) -> Value {
        match &v.value {
            Some(Value_::StringValue(s)) => Value::String(s.clone()),
            Some(Value_::BoolValue(b)) => Value::Bool(*b),
            Some(Value_::IntValue(i)) => Value::from(*i),
            Some(Value_::DoubleValue(d)) => json!(d),
            Some(Value_::ArrayValue(a)) => Value::Array(a.values.iter().map(value).collect()),
            Some(Value_::KvlistValue(kv)) => Value::Object(map(&kv.values)),
            Some(Value_::BytesValue(b)) => Value::String(hex::encode(b)),
            None => Value::Null,
        }
    }

    fn map(list: &[KeyValue]) -> Map<String, Value> {
        list.iter()
            .map(|kv| {
                (
                    kv.key.clone(),
                    kv.value.as_ref().map(value).unwrap_or(Value::Null),
                )
            })
            .collect()
    }

    /// The records of a protobuf `ExportLogsServiceRequest`.
    pub fn logs(body: &[u8]) -> Result<Vec<LogRecord>> {
        let req = ExportLogsServiceRequest::decode(body)
            .map_err(|_| Error::Invalid("Invalid OTLP protobuf".into()))?;
        let mut out = Vec::new();
        for rl in &req.resource_logs {
            let resource = rl
                .resource
                .as_ref()
                .map(|r| map(&r.attributes))
                .unwrap_or_default();
            for sl in &rl.scope_logs {
                for r in &sl.log_records {
                    if out.len() >= MAX_RECORDS {
                        return Ok(out);
                    }
                    out.push(LogRecord {
                        time_unix_nano: r.time_unix_nano,
                        severity_text: r.severity_text.clone(),
                        severity_number: r.severity_number,
                        body: r.body.as_ref().map(value),
                        attributes: map(&r.attributes),
                        resource: resource.clone(),
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::proto::*;
    use super::*;

    fn kv(key: &str, v: Value_) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
        }
    }

    #[test]
    fn json_and_protobuf_spans_decode_alike_and_partial_copies_are_dropped() {
        let json_body = json!({ "resourceSpans": [{
            "resource": { "attributes": [{ "key": "ctx.run.id", "value": { "stringValue": "run_1" } }] },
            "scopeSpans": [{ "spans": [{
                "spanId": "00f067aa0ba902b7", "parentSpanId": "", "name": "fetch",
                "startTimeUnixNano": "1772366400000000000", "endTimeUnixNano": 1772366400500000000u64,
                "attributes": [{ "key": "ctx.attempt.number", "value": { "intValue": "2" } }],
                "status": { "code": 2 } }] }] }] })
        .to_string();
        let proto_body = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("ctx.run.id", Value_::StringValue("run_1".into()))],
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        span_id: hex::decode("00f067aa0ba902b7").unwrap_or_default(),
                        parent_span_id: vec![],
                        name: "fetch".into(),
                        start_time_unix_nano: 1_772_366_400_000_000_000,
                        end_time_unix_nano: 1_772_366_400_500_000_000,
                        attributes: vec![kv("ctx.attempt.number", Value_::IntValue(2))],
                        status: Some(Status { code: 2 }),
                    }],
                }],
            }],
        }
        .encode_to_vec();
        let from_json = json_spans(json_body.as_bytes()).unwrap_or_default();
        let from_proto = spans(&proto_body).unwrap_or_default();
        assert_eq!(from_json, from_proto);
        let span = run_span(from_json[0].clone()).map(|s| s.span);
        assert_eq!(span.as_ref().map(|s| s.attempt_number), Some(Some(2)));
        assert_eq!(span.as_ref().map(|s| s.is_error), Some(true));
        assert_eq!(span.as_ref().and_then(|s| s.parent_span_id.clone()), None);
        let mut partial = from_proto[0].clone();
        partial
            .attributes
            .insert("$span.partial".into(), json!(true));
        assert!(run_span(partial).is_none());
        assert!(json_spans(b"not json").is_err());
    }

    #[test]
    fn json_and_protobuf_exports_decode_to_the_same_records() {
        let json_body = json!({"resourceLogs": [{
            "resource": {"attributes": [{"key": "ctx.environment.id", "value": {"stringValue": "env1"}}]},
            "scopeLogs": [{"logRecords": [{
                "timeUnixNano": "1764244800000000000", "severityNumber": 9, "severityText": "INFO",
                "body": {"stringValue": "hello"},
                "attributes": [
                    {"key": "$metadata.ctx.run.id", "value": {"stringValue": "run_1"}},
                    {"key": "$metadata.ctx.attempt.number", "value": {"intValue": "2"}},
                    {"key": "user", "value": {"kvlistValue": {"values": [{"key": "n", "value": {"intValue": "1"}}]}}}
                ]
            }]}]
        }]});
        let from_json = json_logs(json_body.to_string().as_bytes()).unwrap();
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("ctx.environment.id", Value_::StringValue("env1".into()))],
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![ProtoLogRecord {
                        time_unix_nano: 1_764_244_800_000_000_000,
                        severity_number: 9,
                        severity_text: "INFO".into(),
                        body: Some(AnyValue {
                            value: Some(Value_::StringValue("hello".into())),
                        }),
                        attributes: vec![
                            kv("$metadata.ctx.run.id", Value_::StringValue("run_1".into())),
                            kv("$metadata.ctx.attempt.number", Value_::IntValue(2)),
                            kv(
                                "user",
                                Value_::KvlistValue(KeyValueList {
                                    values: vec![kv("n", Value_::IntValue(1))],
                                }),
                            ),
                        ],
                    }],
                }],
            }],
        };
        let from_proto = logs(&req.encode_to_vec()).unwrap();
        assert_eq!(from_json, from_proto);
        let log = run_log(from_json[0].clone()).unwrap();
        assert_eq!(
            (
                log.run_friendly_id.as_str(),
                log.attempt_number,
                log.severity.as_str(),
                log.message.as_str()
            ),
            ("run_1", Some(2), "info", "hello")
        );
        assert_eq!(log.attributes.as_deref(), Some("{\"user\":{\"n\":1}}"));
        assert_eq!(log.time.timestamp(), 1_764_244_800);
    }

    #[test]
    fn records_without_a_run_are_skipped_and_garbage_is_400() {
        let body = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "x"}}]}]}]});
        let records = json_logs(body.to_string().as_bytes()).unwrap();
        assert_eq!(records.len(), 1);
        assert!(run_log(records[0].clone()).is_none());
        assert!(json_logs(b"not json").is_err());
        assert!(proto::logs(b"\xff\xff\xff").is_err());
    }

    #[test]
    fn long_messages_are_cut() {
        let mut r = LogRecord {
            body: Some(Value::String("é".repeat(MAX_MESSAGE_BYTES))),
            ..Default::default()
        };
        r.attributes.insert("ctx.run.id".into(), json!("run_1"));
        let log = run_log(r).unwrap();
        assert!(log.message.len() <= MAX_MESSAGE_BYTES + 20);
        assert!(log.message.ends_with("...[truncated]"));
    }
}
