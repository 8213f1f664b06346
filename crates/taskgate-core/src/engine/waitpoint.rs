//! Waitpoints: what a running task waits for (a child run, a batch of them, a point in time,
//! a token that someone completes), and the packet its process is handed when one completes.
//!
//! A run blocked on waitpoints moves to `EXECUTING_WITH_WAITPOINTS` ([`super::Event::Block`]);
//! once every waitpoint it waits for is complete it continues ([`super::Event::Continue`])
//! with a new snapshot listing them, which is how the SDK learns each result.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::engine::RunStatus;
use crate::task_error::TaskRunError;

string_enum!(
    /// What completes a waitpoint.
    WaitpointKind {
        /// A run finishing (a `triggerAndWait` child, or an item of a batch).
        Run = "RUN",
        /// Every run of a batch finishing (`batchTriggerAndWait`).
        Batch = "BATCH",
        /// A point in time (`wait.for`, `wait.until`).
        DateTime = "DATETIME",
        /// Someone completing it, or its timeout (a wait token).
        Manual = "MANUAL",
    }
);

string_enum!(
    /// A waitpoint's status as stored.
    WaitpointStatus {
        Pending = "PENDING",
        Completed = "COMPLETED",
    }
);

/// The packet a waitpoint completed with, as the waiting process receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitpointOutput {
    pub data: Option<String>,
    /// `application/json`, `application/super+json`, `text/plain`, …
    pub data_type: String,
    /// The packet is a `TaskRunError` (a failed child) or a timeout.
    pub is_error: bool,
}

/// The code of the error a timed-out token resumes its waiters with (the SDK's
/// `WaitpointTimeoutError` reads its message).
pub const TIMEOUT_CODE: &str = "TRIGGER_WAITPOINT_TIMEOUT";

impl WaitpointOutput {
    /// No packet: a point in time that passed, a batch whose runs all finished.
    pub fn empty() -> WaitpointOutput {
        WaitpointOutput {
            data: None,
            data_type: "application/json".into(),
            is_error: false,
        }
    }

    /// A token's timeout at `at`.
    pub fn timed_out(at: DateTime<Utc>) -> WaitpointOutput {
        let message = format!(
            "Waitpoint timed out at {}",
            at.to_rfc3339_opts(SecondsFormat::Millis, true)
        );
        WaitpointOutput {
            data: Some(json!({ "code": TIMEOUT_CODE, "message": message }).to_string()),
            data_type: "application/json".into(),
            is_error: true,
        }
    }

    /// What a finished run gives those waiting for it: its output when it succeeded, else its
    /// error as a `TaskRunError` (one is made up for runs that ended without one: cancelled,
    /// expired).
    pub fn of_run(
        status: RunStatus,
        output: Option<&str>,
        output_type: Option<&str>,
        error: Option<&str>,
    ) -> WaitpointOutput {
        if status == RunStatus::CompletedSuccessfully {
            return WaitpointOutput {
                data: output.map(str::to_string),
                data_type: output_type.unwrap_or("application/json").to_string(),
                is_error: false,
            };
        }
        let error = error
            .filter(|e| serde_json::from_str::<TaskRunError>(e).is_ok())
            .map(str::to_string)
            .unwrap_or_else(|| {
                let made_up = match status {
                    RunStatus::Canceled => {
                        TaskRunError::internal("TASK_RUN_CANCELLED", "Run was cancelled")
                    }
                    RunStatus::Expired => TaskRunError::String {
                        raw: "Run expired because its TTL was reached before it started".into(),
                    },
                    other => TaskRunError::String {
                        raw: format!("Run ended with status {}", other.api_status()),
                    },
                };
                serde_json::to_string(&made_up).unwrap_or_default()
            });
        WaitpointOutput {
            data: Some(error),
            data_type: "application/json".into(),
            is_error: true,
        }
    }
}

/// A wait token's status as the API names it: pending tokens are `WAITING`; a completed one
/// is `TIMED_OUT` when its packet is the timeout error.
pub fn token_status(status: WaitpointStatus, output_is_error: bool) -> &'static str {
    match (status, output_is_error) {
        (WaitpointStatus::Pending, _) => "WAITING",
        (WaitpointStatus::Completed, false) => "COMPLETED",
        (WaitpointStatus::Completed, true) => "TIMED_OUT",
    }
}

/// The statuses a token listing filters by, as the API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenStatus {
    #[serde(rename = "WAITING")]
    Waiting,
    #[serde(rename = "COMPLETED")]
    Completed,
    #[serde(rename = "TIMED_OUT")]
    TimedOut,
}

impl TokenStatus {
    pub fn parse(s: &str) -> Option<TokenStatus> {
        match s {
            "WAITING" => Some(TokenStatus::Waiting),
            "COMPLETED" => Some(TokenStatus::Completed),
            "TIMED_OUT" => Some(TokenStatus::TimedOut),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_timeout_is_the_error_the_sdk_reads() {
        let at = Utc
            .with_ymd_and_hms(2026, 12, 7, 10, 0, 0)
            .single()
            .expect("valid time");
        let out = WaitpointOutput::timed_out(at);
        assert!(out.is_error);
        let v: serde_json::Value =
            serde_json::from_str(out.data.as_deref().unwrap_or("")).expect("json");
        assert_eq!(v["code"], "TRIGGER_WAITPOINT_TIMEOUT");
        assert_eq!(
            v["message"],
            "Waitpoint timed out at 2026-12-07T10:00:00.000Z"
        );
    }

    #[test]
    fn a_failed_or_cancelled_child_hands_its_parent_an_error() {
        let ok = WaitpointOutput::of_run(
            RunStatus::CompletedSuccessfully,
            Some("{\"n\":1}"),
            Some("application/json"),
            None,
        );
        assert_eq!(
            (ok.data.as_deref(), ok.is_error),
            (Some("{\"n\":1}"), false)
        );
        let stored = r#"{"type":"BUILT_IN_ERROR","name":"Error","message":"boom","stackTrace":""}"#;
        let failed =
            WaitpointOutput::of_run(RunStatus::CompletedWithErrors, None, None, Some(stored));
        assert_eq!(
            (failed.data.as_deref(), failed.is_error),
            (Some(stored), true)
        );
        let cancelled = WaitpointOutput::of_run(RunStatus::Canceled, None, None, None);
        let error: TaskRunError =
            serde_json::from_str(cancelled.data.as_deref().unwrap_or("")).expect("an error");
        assert_eq!(error.code(), Some("TASK_RUN_CANCELLED"));
    }

    #[test]
    fn token_statuses_are_named_as_the_api_does() {
        assert_eq!(token_status(WaitpointStatus::Pending, false), "WAITING");
        assert_eq!(token_status(WaitpointStatus::Completed, false), "COMPLETED");
        assert_eq!(token_status(WaitpointStatus::Completed, true), "TIMED_OUT");
        assert_eq!(TokenStatus::parse("TIMED_OUT"), Some(TokenStatus::TimedOut));
        assert_eq!(TokenStatus::parse("PENDING"), None);
    }
}
