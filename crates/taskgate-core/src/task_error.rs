//! The error a task run fails with (`TaskRunError`), as workers report it in an attempt's
//! completion: the typed union, how the engine classifies a failure (retry it, look up the
//! task's retry settings, which final status it gives), and the sanitising every stored error
//! goes through first (NUL characters removed, messages and stacks truncated).
//!
//! Lengths are counted as JavaScript does, in UTF-16 code units, because the limits are the
//! SDK's; a cut never splits a character (JavaScript may leave half a surrogate pair, which
//! JSON cannot carry anyway).

use serde::{Deserialize, Serialize};

/// Frames kept in a stack trace.
pub const MAX_STACK_FRAMES: usize = 50;
/// Frames kept from the top of a long stack; the rest come from the bottom.
pub const KEEP_TOP_FRAMES: usize = 5;
/// Longest stack line kept whole.
pub const MAX_STACK_LINE_LENGTH: usize = 1024;
/// Longest message kept whole.
pub const MAX_MESSAGE_LENGTH: usize = 1000;
/// `cause` links kept.
pub const MAX_ERROR_CAUSES: usize = 5;
/// Frames kept in a cause's stack trace.
pub const MAX_CAUSE_STACK_FRAMES: usize = 10;
/// Longest cause name kept (cut without a marker, as the SDK does).
pub const MAX_ERROR_NAME_LENGTH: usize = 256;
/// What a cut text ends with.
const TRUNCATED: &str = "...[truncated]";

/// One link of a thrown error's `cause` chain.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorCause {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
}

/// A run's error, as the SDK's `TaskRunError` union (discriminated by `type`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "type")]
pub enum TaskRunError {
    /// A thrown `Error` (or subclass).
    #[serde(rename = "BUILT_IN_ERROR", rename_all = "camelCase")]
    BuiltIn {
        name: String,
        message: String,
        stack_trace: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        causes: Option<Vec<ErrorCause>>,
    },
    /// A thrown non-error value, as JSON text.
    #[serde(rename = "CUSTOM_ERROR")]
    Custom { raw: String },
    /// A thrown string.
    #[serde(rename = "STRING_ERROR")]
    String { raw: String },
    /// A failure of the runtime or the platform, named by `code`.
    #[serde(rename = "INTERNAL_ERROR", rename_all = "camelCase")]
    Internal {
        code: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stack_trace: Option<String>,
    },
}

impl TaskRunError {
    /// An internal error with a message, as the engine records for runs it ends itself
    /// (stalls, exceeded durations).
    pub fn internal(code: &str, message: impl Into<String>) -> Self {
        TaskRunError::Internal {
            code: code.to_string(),
            message: Some(message.into()),
            stack_trace: None,
        }
    }

    /// The internal error code, if this is an internal error.
    pub fn code(&self) -> Option<&str> {
        match self {
            TaskRunError::Internal { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the worker reported a cancellation (`TASK_RUN_CANCELLED`).
    pub fn is_cancellation(&self) -> bool {
        self.code() == Some("TASK_RUN_CANCELLED")
    }

    /// Whether another attempt could succeed (`shouldRetryError`): user errors can, and the
    /// internal errors that mean "try again"; configuration, cancellation and resource
    /// failures cannot. Unknown codes are not retried.
    pub fn should_retry(&self) -> bool {
        match self {
            TaskRunError::Internal { code, .. } => matches!(
                code.as_str(),
                "TASK_RUN_STALLED_EXECUTING"
                    | "TASK_RUN_STALLED_EXECUTING_WITH_WAITPOINTS"
                    | "GRACEFUL_EXIT_TIMEOUT"
                    | "HANDLE_ERROR_ERROR"
                    | "TASK_INPUT_ERROR"
                    | "TASK_OUTPUT_ERROR"
                    | "TASK_MIDDLEWARE_ERROR"
                    | "POD_EVICTED"
                    | "POD_UNKNOWN_ERROR"
                    | "TASK_EXECUTION_ABORTED"
                    | "TASK_EXECUTION_FAILED"
                    | "TASK_RUN_CRASHED"
                    | "TASK_RUN_UNCAUGHT_EXCEPTION"
                    | "TASK_PROCESS_EXITED_WITH_NON_ZERO_CODE"
                    | "TASK_PROCESS_SIGTERM"
                    | "TASK_PROCESS_SIGSEGV"
            ),
            _ => true,
        }
    }

    /// Whether the engine, rather than the worker, decides the retry delay from the task's
    /// retry settings (`shouldLookupRetrySettings`): the worker process died before it could.
    pub fn needs_retry_lookup(&self) -> bool {
        matches!(
            self.code(),
            Some(
                "TASK_PROCESS_EXITED_WITH_NON_ZERO_CODE"
                    | "TASK_PROCESS_SIGTERM"
                    | "TASK_PROCESS_SIGSEGV"
                    | "TASK_RUN_UNCAUGHT_EXCEPTION"
                    | "TASK_MIDDLEWARE_ERROR"
            )
        )
    }

    /// Removes NUL characters and truncates oversized fields (`sanitizeError`): what the
    /// server stores, and what error grouping reads.
    pub fn sanitized(&self) -> TaskRunError {
        let clean = |s: &str| s.replace('\0', "");
        match self {
            TaskRunError::BuiltIn {
                name,
                message,
                stack_trace,
                causes,
            } => TaskRunError::BuiltIn {
                name: clean(name),
                message: truncate_message(&clean(message)),
                stack_trace: truncate_stack(&clean(stack_trace), MAX_STACK_FRAMES),
                causes: causes.as_ref().map(|c| {
                    c.iter()
                        .take(MAX_ERROR_CAUSES)
                        .map(|cause| ErrorCause {
                            name: cause
                                .name
                                .as_deref()
                                .map(|n| cut_units(&clean(n), MAX_ERROR_NAME_LENGTH).to_string()),
                            message: truncate_message(&clean(&cause.message)),
                            stack_trace: cause
                                .stack_trace
                                .as_deref()
                                .map(|s| truncate_stack(&clean(s), MAX_CAUSE_STACK_FRAMES))
                                .filter(|s| !s.is_empty()),
                        })
                        .collect()
                }),
            },
            TaskRunError::String { raw } => TaskRunError::String {
                raw: truncate_message(&clean(raw)),
            },
            TaskRunError::Custom { raw } => {
                let raw = clean(raw);
                // The raw text is JSON that readers parse: a cut would break it, so a long one
                // becomes a small valid JSON envelope with a preview.
                let raw = if utf16_len(&raw) > MAX_MESSAGE_LENGTH {
                    serde_json::json!({
                        "truncated": true,
                        "preview": cut_units(&raw, MAX_MESSAGE_LENGTH),
                    })
                    .to_string()
                } else {
                    raw
                };
                TaskRunError::Custom { raw }
            }
            TaskRunError::Internal {
                code,
                message,
                stack_trace,
            } => TaskRunError::Internal {
                code: code.clone(),
                message: message.as_deref().map(|m| truncate_message(&clean(m))),
                stack_trace: stack_trace
                    .as_deref()
                    .map(|s| truncate_stack(&clean(s), MAX_STACK_FRAMES)),
            },
        }
    }
}

/// Length in UTF-16 code units, JavaScript's `length`.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// The longest prefix of `s` of at most `max` UTF-16 units that ends on a character boundary.
pub fn cut_units(s: &str, max: usize) -> &str {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &s[..i];
        }
    }
    s
}

/// `truncateMessage`: a message over [`MAX_MESSAGE_LENGTH`] units is cut and marked.
pub fn truncate_message(message: &str) -> String {
    if utf16_len(message) > MAX_MESSAGE_LENGTH {
        format!("{}{TRUNCATED}", cut_units(message, MAX_MESSAGE_LENGTH))
    } else {
        message.to_string()
    }
}

/// `truncateStack`: every line capped at [`MAX_STACK_LINE_LENGTH`] units; a stack with more
/// than `max_frames` frame lines keeps its message lines, the first [`KEEP_TOP_FRAMES`] frames,
/// a marker line and the last frames, `max_frames` frames in all. The first line whose trimmed
/// start is `at ` and every line after it are frames.
pub fn truncate_stack(stack: &str, max_frames: usize) -> String {
    if stack.is_empty() {
        return String::new();
    }
    let lines: Vec<String> = stack
        .split('\n')
        .map(|l| {
            if utf16_len(l) > MAX_STACK_LINE_LENGTH {
                format!("{}{TRUNCATED}", cut_units(l, MAX_STACK_LINE_LENGTH))
            } else {
                l.to_string()
            }
        })
        .collect();
    let first_frame = stack
        .split('\n')
        .position(|l| l.trim_start().starts_with("at "))
        .unwrap_or(lines.len());
    let (message, frames) = lines.split_at(first_frame);
    if frames.len() <= max_frames {
        return lines.join("\n");
    }
    let keep_top = KEEP_TOP_FRAMES.min(max_frames);
    let keep_bottom = max_frames - keep_top;
    let omitted = frames.len() - max_frames;
    let mut out: Vec<String> = message.to_vec();
    out.extend_from_slice(&frames[..keep_top]);
    out.push(format!("    ... {omitted} frames omitted ..."));
    out.extend_from_slice(&frames[frames.len() - keep_bottom..]);
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stack(frames: usize) -> String {
        let mut lines = vec![
            "Error: boom".to_string(),
            "  second message line".to_string(),
        ];
        lines.extend((1..=frames).map(|i| format!("    at frame{i} (file.js:{i}:1)")));
        lines.join("\n")
    }

    #[test]
    fn the_sdks_error_shapes_parse_and_serialise_unchanged() {
        let cases = [
            json!({"type":"BUILT_IN_ERROR","name":"Error","message":"m","stackTrace":"Error: m\n    at x"}),
            json!({"type":"BUILT_IN_ERROR","name":"E","message":"m","stackTrace":"s","causes":[{"name":"C","message":"c"}]}),
            json!({"type":"CUSTOM_ERROR","raw":"{\"a\":1}"}),
            json!({"type":"STRING_ERROR","raw":"boom"}),
            json!({"type":"INTERNAL_ERROR","code":"TASK_RUN_CANCELLED"}),
            json!({"type":"INTERNAL_ERROR","code":"MAX_DURATION_EXCEEDED","message":"m","stackTrace":"s"}),
        ];
        for case in cases {
            let parsed: TaskRunError = serde_json::from_value(case.clone()).unwrap();
            assert_eq!(serde_json::to_value(&parsed).unwrap(), case);
        }
        assert!(serde_json::from_value::<TaskRunError>(json!({"type":"NOPE"})).is_err());
        assert!(
            serde_json::from_value::<TaskRunError>(json!({"type":"STRING_ERROR"})).is_err(),
            "raw is required"
        );
    }

    #[test]
    fn a_short_stack_is_kept_whole() {
        assert_eq!(truncate_stack(&stack(50), 50), stack(50));
        assert_eq!(truncate_stack("", 50), "");
    }

    #[test]
    fn a_long_stack_keeps_the_top_five_and_the_bottom_frames() {
        let out = truncate_stack(&stack(60), 50);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2 + 50 + 1);
        assert_eq!(lines[0], "Error: boom");
        assert_eq!(lines[2], "    at frame1 (file.js:1:1)");
        assert_eq!(lines[6], "    at frame5 (file.js:5:1)");
        assert_eq!(lines[7], "    ... 10 frames omitted ...");
        assert_eq!(lines[8], "    at frame16 (file.js:16:1)");
        assert_eq!(lines[52], "    at frame60 (file.js:60:1)");
    }

    #[test]
    fn lines_after_the_first_frame_count_as_frames() {
        let s = format!("{}\nnot a frame", stack(50));
        let out = truncate_stack(&s, 50);
        assert!(out.contains("... 1 frames omitted ..."), "{out}");
    }

    #[test]
    fn long_lines_and_messages_are_cut_and_marked() {
        let long = "x".repeat(2000);
        let out = truncate_stack(&format!("E\n    at {long}"), 50);
        assert_eq!(
            out.lines().nth(1).unwrap(),
            format!("    at {}{TRUNCATED}", "x".repeat(1024 - 7))
        );
        assert_eq!(
            truncate_message(&"y".repeat(1001)),
            format!("{}{TRUNCATED}", "y".repeat(1000))
        );
        assert_eq!(truncate_message(&"y".repeat(1000)), "y".repeat(1000));
        // Counted in UTF-16 units: an astral character is two.
        let astral = "😀".repeat(600);
        let cut = truncate_message(&astral);
        assert_eq!(utf16_len(cut.trim_end_matches(TRUNCATED)), 1000);
    }

    #[test]
    fn sanitising_removes_nuls_and_keeps_custom_errors_valid_json() {
        let e = TaskRunError::BuiltIn {
            name: "Er\0ror".into(),
            message: "a\0b".into(),
            stack_trace: stack(70),
            causes: Some(
                (0..7)
                    .map(|i| ErrorCause {
                        name: Some("n".repeat(300)),
                        message: format!("cause {i}"),
                        stack_trace: Some(stack(20)),
                    })
                    .collect(),
            ),
        };
        let TaskRunError::BuiltIn {
            name,
            message,
            stack_trace,
            causes,
        } = e.sanitized()
        else {
            panic!("kind changed")
        };
        assert_eq!((name.as_str(), message.as_str()), ("Error", "ab"));
        assert!(stack_trace.contains("20 frames omitted"));
        let causes = causes.unwrap();
        assert_eq!(causes.len(), MAX_ERROR_CAUSES);
        assert_eq!(causes[0].name.as_deref().map(str::len), Some(256));
        assert!(causes[0]
            .stack_trace
            .as_deref()
            .unwrap()
            .contains("10 frames omitted"));

        let raw = serde_json::to_string(&"z".repeat(5000)).unwrap();
        let TaskRunError::Custom { raw } = (TaskRunError::Custom { raw }).sanitized() else {
            panic!()
        };
        let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(v["truncated"], true);
        assert_eq!(v["preview"].as_str().map(str::len), Some(1000));

        let internal = TaskRunError::Internal {
            code: "TASK_RUN_CANCELLED".into(),
            message: None,
            stack_trace: None,
        };
        assert_eq!(internal.sanitized(), internal, "absent stays absent");
    }

    #[test]
    fn failures_are_classified_as_the_sdk_does() {
        let internal = |c: &str| TaskRunError::Internal {
            code: c.into(),
            message: None,
            stack_trace: None,
        };
        assert!(TaskRunError::String { raw: "x".into() }.should_retry());
        assert!(internal("TASK_PROCESS_SIGTERM").should_retry());
        assert!(internal("TASK_PROCESS_SIGTERM").needs_retry_lookup());
        assert!(!internal("TASK_RUN_CANCELLED").should_retry());
        assert!(internal("TASK_RUN_CANCELLED").is_cancellation());
        assert!(!internal("MAX_DURATION_EXCEEDED").should_retry());
        assert!(!internal("SOMETHING_NEW").should_retry());
        assert!(!TaskRunError::String { raw: "x".into() }.needs_retry_lookup());
    }
}
