//! The run engine's state machine: typed run and execution statuses, and [`transition`], the
//! one function that decides what an event does to a run at a given time. Stores call it
//! inside the transaction that writes its result, so an illegal transition is refused here
//! and nowhere else, and no handler ever writes a status string.
//!
//! A run has two statuses. [`RunStatus`] is what clients see (mapped to the API's names by
//! [`RunStatus::api_status`]); [`ExecutionStatus`] is the execution snapshot's, what a worker
//! sees. Every change of the execution status is a new snapshot with a fresh id, which the
//! official CLI relies on to notice changes (it compares snapshot ids). Time-based changes
//! (delays, TTLs, stalls, exceeded durations) are [`Event::Tick`], applied by a sweeper at
//! [`RunState::next_due`].

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::task_error::TaskRunError;

/// A dequeued run that no worker started within this is put back in the queue (upstream's
/// PENDING_EXECUTING timeout).
pub const PENDING_EXECUTING_TIMEOUT: Duration = Duration::seconds(60);
/// An executing attempt without a heartbeat for this long has stalled: workers heartbeat every
/// 30 s, so this is ten missed heartbeats (upstream's EXECUTING timeout).
pub const HEARTBEAT_TIMEOUT: Duration = Duration::minutes(5);
/// A cancellation the worker does not confirm within this is finished without it: the worker
/// is gone or missed the notification twice over (its snapshot poll is every 5 s).
pub const PENDING_CANCEL_TIMEOUT: Duration = Duration::seconds(60);
/// Added to a task's `maxDuration` before the engine ends an attempt itself: the worker
/// enforces the limit on compute time and reports it, so this only catches a worker that
/// cannot (one heartbeat timeout's worth of leeway would leave runs far over; a minute does not).
pub const MAX_DURATION_GRACE: Duration = Duration::seconds(60);
/// Retries due sooner than this are started by the same worker at once (`RETRY_IMMEDIATELY`);
/// later ones go back to the queue (`RETRY_QUEUED`) so no worker slot sits idle (upstream's
/// warm-start threshold).
pub const RETRY_WARM_START_THRESHOLD_MS: u64 = 30_000;
/// Most attempts any run gets, whatever its settings (upstream's global ceiling).
pub const MAX_TASK_RUN_ATTEMPTS: u32 = 250;
/// TTL of a development run triggered without one: a run waiting for a `trigger.dev dev` that
/// never comes expires instead of waiting forever (upstream's default).
pub const DEFAULT_DEV_TTL: Duration = Duration::minutes(10);

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $variant),*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The wire and storage spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),* }
            }

            /// The value spelled `s` exactly (upper case), if any.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod waitpoint;

string_enum!(
    /// A run's status as stored (`TaskRunStatus`, 17 values).
    RunStatus {
        Delayed = "DELAYED",
        Pending = "PENDING",
        PendingVersion = "PENDING_VERSION",
        WaitingForDeploy = "WAITING_FOR_DEPLOY",
        Dequeued = "DEQUEUED",
        Executing = "EXECUTING",
        WaitingToResume = "WAITING_TO_RESUME",
        RetryingAfterFailure = "RETRYING_AFTER_FAILURE",
        Paused = "PAUSED",
        Canceled = "CANCELED",
        Interrupted = "INTERRUPTED",
        CompletedSuccessfully = "COMPLETED_SUCCESSFULLY",
        CompletedWithErrors = "COMPLETED_WITH_ERRORS",
        SystemFailure = "SYSTEM_FAILURE",
        Crashed = "CRASHED",
        Expired = "EXPIRED",
        TimedOut = "TIMED_OUT",
    }
);

string_enum!(
    /// An execution snapshot's status (`TaskRunExecutionStatus`).
    ExecutionStatus {
        RunCreated = "RUN_CREATED",
        Queued = "QUEUED",
        QueuedExecuting = "QUEUED_EXECUTING",
        PendingExecuting = "PENDING_EXECUTING",
        Executing = "EXECUTING",
        ExecutingWithWaitpoints = "EXECUTING_WITH_WAITPOINTS",
        Suspended = "SUSPENDED",
        PendingCancel = "PENDING_CANCEL",
        Finished = "FINISHED",
        Delayed = "DELAYED",
    }
);

string_enum!(
    /// What an attempt's completion led to, as the worker is told.
    AttemptStatus {
        RunFinished = "RUN_FINISHED",
        RunPendingCancel = "RUN_PENDING_CANCEL",
        RetryQueued = "RETRY_QUEUED",
        RetryImmediately = "RETRY_IMMEDIATELY",
    }
);

string_enum!(
    /// How one attempt ended (taskgate's record of attempts).
    AttemptOutcome {
        Executing = "EXECUTING",
        Completed = "COMPLETED",
        Failed = "FAILED",
        Canceled = "CANCELED",
    }
);

impl RunStatus {
    /// Whether a run in this status will not run again. A canceled run may still be waiting
    /// for its worker to confirm (execution `PENDING_CANCEL`); its status no longer changes.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunStatus::CompletedSuccessfully
                | RunStatus::CompletedWithErrors
                | RunStatus::Canceled
                | RunStatus::Expired
                | RunStatus::SystemFailure
                | RunStatus::Crashed
                | RunStatus::TimedOut
                | RunStatus::Interrupted
        )
    }

    /// The status the API reports (`apiStatusFromRunStatusV2`, what the 4.8.3 SDK parses).
    pub fn api_status(self) -> &'static str {
        match self {
            RunStatus::Delayed => "DELAYED",
            RunStatus::PendingVersion | RunStatus::WaitingForDeploy => "PENDING_VERSION",
            RunStatus::Pending => "QUEUED",
            RunStatus::Paused | RunStatus::WaitingToResume => "WAITING",
            RunStatus::Dequeued => "DEQUEUED",
            RunStatus::Executing | RunStatus::RetryingAfterFailure => "EXECUTING",
            RunStatus::Canceled => "CANCELED",
            RunStatus::CompletedSuccessfully => "COMPLETED",
            RunStatus::CompletedWithErrors | RunStatus::Interrupted => "FAILED",
            RunStatus::SystemFailure => "SYSTEM_FAILURE",
            RunStatus::Crashed => "CRASHED",
            RunStatus::Expired => "EXPIRED",
            RunStatus::TimedOut => "TIMED_OUT",
        }
    }

    /// Whether an idempotency key on a run in this status may be taken by a new run: failed
    /// and expired runs give their key up; successful, canceled and live runs keep it.
    pub fn releases_idempotency_key(self) -> bool {
        matches!(
            self,
            RunStatus::Interrupted
                | RunStatus::CompletedWithErrors
                | RunStatus::SystemFailure
                | RunStatus::Crashed
                | RunStatus::TimedOut
                | RunStatus::Expired
        )
    }

    /// Whether a run that ended in this status is a failure that error grouping counts
    /// (canceled and expired runs are not).
    pub fn is_error_outcome(self) -> bool {
        matches!(
            self,
            RunStatus::SystemFailure
                | RunStatus::Crashed
                | RunStatus::Interrupted
                | RunStatus::CompletedWithErrors
                | RunStatus::TimedOut
        )
    }

    /// The final status of a run that failed with `error` and will not be retried
    /// (`runStatusFromError`): user errors are `COMPLETED_WITH_ERRORS`, the platform's are
    /// `SYSTEM_FAILURE`, the process's `CRASHED`; a stalled development run was most likely
    /// stopped by its developer, so it counts as canceled.
    pub fn from_error(error: &TaskRunError, development: bool) -> RunStatus {
        let Some(code) = error.code() else {
            return RunStatus::CompletedWithErrors;
        };
        match code {
            "RECURSIVE_WAIT_DEADLOCK"
            | "TASK_INPUT_ERROR"
            | "TASK_OUTPUT_ERROR"
            | "TASK_MIDDLEWARE_ERROR"
            | "TASK_RUN_UNCAUGHT_EXCEPTION" => RunStatus::CompletedWithErrors,
            "TASK_RUN_CANCELLED" => RunStatus::Canceled,
            "MAX_DURATION_EXCEEDED" => RunStatus::TimedOut,
            "TASK_RUN_STALLED_EXECUTING" | "TASK_RUN_STALLED_EXECUTING_WITH_WAITPOINTS" => {
                if development {
                    RunStatus::Canceled
                } else {
                    RunStatus::CompletedWithErrors
                }
            }
            "TASK_PROCESS_OOM_KILLED"
            | "TASK_PROCESS_MAYBE_OOM_KILLED"
            | "TASK_PROCESS_SIGSEGV"
            | "DISK_SPACE_EXCEEDED"
            | "OUTDATED_SDK_VERSION"
            | "HANDLE_ERROR_ERROR"
            | "TASK_RUN_CRASHED"
            | "TASK_PROCESS_EXITED_WITH_NON_ZERO_CODE" => RunStatus::Crashed,
            _ => RunStatus::SystemFailure,
        }
    }
}

/// A task's retry settings (the SDK's `RetryOptions`), locked onto a run when it is first
/// dequeued. Absent fields take the SDK's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetrySettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(default = "RetrySettings::default_factor")]
    pub factor: f64,
    #[serde(default = "RetrySettings::default_min_timeout")]
    pub min_timeout_in_ms: u64,
    #[serde(default = "RetrySettings::default_max_timeout")]
    pub max_timeout_in_ms: u64,
    #[serde(default = "RetrySettings::default_randomize")]
    pub randomize: bool,
}

impl RetrySettings {
    /// Attempts when a task sets none (the SDK's `defaultRetryOptions`).
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

    fn default_factor() -> f64 {
        2.0
    }
    fn default_min_timeout() -> u64 {
        1000
    }
    fn default_max_timeout() -> u64 {
        60_000
    }
    fn default_randomize() -> bool {
        true
    }

    /// Reads a manifest's `retry` object leniently: values of the wrong type or range fall
    /// back to the defaults rather than failing the registration of a whole worker.
    pub fn from_json(v: &serde_json::Value) -> Option<RetrySettings> {
        let o = v.as_object()?;
        let num = |k: &str| o.get(k).and_then(serde_json::Value::as_f64);
        let whole = |k: &str| {
            num(k)
                .filter(|n| n.is_finite() && *n >= 0.0)
                .map(|n| n.min(u64::MAX as f64) as u64)
        };
        Some(RetrySettings {
            max_attempts: whole("maxAttempts").map(|n| n.min(u64::from(u32::MAX)) as u32),
            factor: num("factor")
                .filter(|f| f.is_finite() && *f > 0.0)
                .unwrap_or(2.0),
            min_timeout_in_ms: whole("minTimeoutInMs").unwrap_or(1000),
            max_timeout_in_ms: whole("maxTimeoutInMs").unwrap_or(60_000),
            randomize: o
                .get("randomize")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(true),
        })
    }

    /// The delay before the attempt after `attempt` (1 when the first failed), or `None` when
    /// no attempt is left (`calculateNextRetryDelay`). `jitter` is a number in `[0, 1)`,
    /// drawn by the caller, used when `randomize` is on (the delay is then scaled by
    /// `1 + jitter`).
    pub fn next_delay_ms(&self, attempt: u32, jitter: f64) -> Option<u64> {
        let max_attempts = self.max_attempts.unwrap_or(Self::DEFAULT_MAX_ATTEMPTS);
        if attempt >= max_attempts {
            return None;
        }
        let random = if self.randomize {
            1.0 + jitter.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let timeout = (random * self.min_timeout_in_ms as f64 * self.factor.powi(exponent))
            .min(self.max_timeout_in_ms as f64);
        Some(if timeout.is_finite() {
            timeout.max(0.0).round() as u64
        } else {
            self.max_timeout_in_ms
        })
    }
}

/// Everything about a run that its transitions read and write.
#[derive(Debug, Clone, PartialEq)]
pub struct RunState {
    pub status: RunStatus,
    pub execution: ExecutionStatus,
    /// Attempts started so far (0 before the first; the current attempt's number after).
    pub attempt_number: u32,
    /// Attempts allowed: the trigger's `maxAttempts`, else the task's, locked at dequeue.
    pub max_attempts: Option<u32>,
    /// The task's retry settings, locked at the first dequeue.
    pub retry: Option<RetrySettings>,
    /// The task's `maxDuration`, locked at the first dequeue.
    pub max_duration_seconds: Option<u32>,
    /// Development runs: a stall counts as a cancellation.
    pub is_development: bool,
    /// When the current snapshot began.
    pub snapshot_at: DateTime<Utc>,
    /// The current attempt's last heartbeat.
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// Not dequeued before this (a delay's end, a queued retry's time); the queue's order.
    pub available_at: Option<DateTime<Utc>>,
    /// Expires if not started by then.
    pub ttl_expires_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub expired_at: Option<DateTime<Utc>>,
}

impl RunState {
    /// A run just triggered: queued at `now`, or delayed until `delay_until` when that is later.
    pub fn triggered(
        now: DateTime<Utc>,
        delay_until: Option<DateTime<Utc>>,
        ttl_expires_at: Option<DateTime<Utc>>,
        is_development: bool,
    ) -> RunState {
        let delayed = delay_until.filter(|d| *d > now);
        RunState {
            status: if delayed.is_some() {
                RunStatus::Delayed
            } else {
                RunStatus::Pending
            },
            execution: if delayed.is_some() {
                ExecutionStatus::Delayed
            } else {
                ExecutionStatus::Queued
            },
            attempt_number: 0,
            max_attempts: None,
            retry: None,
            max_duration_seconds: None,
            is_development,
            snapshot_at: now,
            heartbeat_at: None,
            available_at: Some(delayed.unwrap_or(now)),
            ttl_expires_at,
            started_at: None,
            completed_at: None,
            expired_at: None,
        }
    }

    /// Whether the task's settings allow another attempt after the current one.
    pub fn attempts_left(&self) -> bool {
        self.max_attempts
            .is_some_and(|max| self.attempt_number < max.min(MAX_TASK_RUN_ATTEMPTS))
    }

    /// Whether nothing will happen to this run any more.
    pub fn is_finished(&self) -> bool {
        self.execution == ExecutionStatus::Finished
    }

    /// Whether a worker may dequeue this run at `now`.
    pub fn is_dequeueable(&self, now: DateTime<Utc>) -> bool {
        self.execution == ExecutionStatus::Queued
            && matches!(
                self.status,
                RunStatus::Pending | RunStatus::RetryingAfterFailure
            )
            && self.available_at.is_none_or(|at| at <= now)
    }

    /// Whether an attempt is in progress, running or waiting (what a worker may complete).
    pub fn is_running_attempt(&self) -> bool {
        self.status == RunStatus::Executing
            && matches!(
                self.execution,
                ExecutionStatus::Executing | ExecutionStatus::ExecutingWithWaitpoints
            )
    }

    /// Whether the run waits for waitpoints.
    pub fn is_waiting(&self) -> bool {
        self.execution == ExecutionStatus::ExecutingWithWaitpoints
    }

    /// Whether a worker holds this run (it counts against the concurrency limit). A run that
    /// waits holds none: its slot goes to the runs it waits for, so a parent and its child on
    /// a queue of one cannot deadlock.
    pub fn holds_a_slot(&self) -> bool {
        matches!(
            self.execution,
            ExecutionStatus::PendingExecuting
                | ExecutionStatus::Executing
                | ExecutionStatus::PendingCancel
        )
    }

    /// When [`Event::Tick`] will next change this run, if ever: a delay's end, a TTL, a
    /// stall or a duration limit. Stores index it so a sweeper reads only due runs.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        let unstarted_ttl = || {
            if self.attempt_number == 0 {
                self.ttl_expires_at
            } else {
                None
            }
        };
        match self.execution {
            ExecutionStatus::Finished => None,
            ExecutionStatus::Delayed | ExecutionStatus::Queued
                if self.status == RunStatus::Delayed =>
            {
                earliest(self.available_at, unstarted_ttl())
            }
            ExecutionStatus::Queued => unstarted_ttl(),
            ExecutionStatus::PendingExecuting => Some(self.snapshot_at + PENDING_EXECUTING_TIMEOUT),
            ExecutionStatus::Executing => {
                let alive = self
                    .heartbeat_at
                    .map_or(self.snapshot_at, |h| h.max(self.snapshot_at));
                let stall = alive + HEARTBEAT_TIMEOUT;
                let limit = (self.status == RunStatus::Executing)
                    .then_some(self.max_duration_seconds)
                    .flatten()
                    .map(|s| {
                        self.snapshot_at + Duration::seconds(i64::from(s)) + MAX_DURATION_GRACE
                    });
                earliest(Some(stall), limit)
            }
            ExecutionStatus::ExecutingWithWaitpoints => Some(
                self.heartbeat_at
                    .map_or(self.snapshot_at, |h| h.max(self.snapshot_at))
                    + HEARTBEAT_TIMEOUT,
            ),
            ExecutionStatus::PendingCancel => Some(self.snapshot_at + PENDING_CANCEL_TIMEOUT),
            _ => None,
        }
    }
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// How an attempt ended, as the worker reported it.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    Success,
    Failure {
        /// The error, sanitised before it reaches here.
        error: TaskRunError,
        /// The worker's retry delay, when it decided to retry (`completion.retry.delay`).
        retry_delay_ms: Option<u64>,
        /// In `[0, 1)`: the randomness of a delay the engine computes itself.
        jitter: f64,
    },
}

/// Something that happens to a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A worker takes the run; the task's settings are locked unless the run has its own.
    Dequeue {
        max_attempts: Option<u32>,
        retry: Option<RetrySettings>,
        max_duration_seconds: Option<u32>,
    },
    /// The worker starts an attempt.
    StartAttempt,
    /// The worker says the attempt is alive.
    Heartbeat,
    /// The worker reports how the attempt ended.
    Complete(Completion),
    /// A user cancels; `finalize` when no worker will confirm (its CLI disconnected).
    Cancel { finalize: bool },
    /// The executing attempt waits for waitpoints (a child run, a batch, a time, a token). Its
    /// process keeps running, so the run stays `EXECUTING` while its execution becomes
    /// `EXECUTING_WITH_WAITPOINTS`, which holds no concurrency slot.
    Block,
    /// Every waitpoint the run waited for is complete: a new `EXECUTING` snapshot, which
    /// carries them to the waiting process.
    Continue,
    /// Time passed: delays, TTLs, stalls and limits take effect.
    Tick,
}

impl Event {
    /// A short name for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Dequeue { .. } => "dequeue",
            Event::StartAttempt => "start an attempt of",
            Event::Heartbeat => "heartbeat",
            Event::Complete(_) => "complete an attempt of",
            Event::Cancel { .. } => "cancel",
            Event::Block => "block",
            Event::Continue => "continue",
            Event::Tick => "advance",
        }
    }
}

/// What happened to the current attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptChange {
    None,
    /// Attempt `n` began.
    Started(u32),
    /// The current attempt ended.
    Ended {
        outcome: AttemptOutcome,
        error: Option<TaskRunError>,
    },
}

/// The result of a transition.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub state: RunState,
    /// A new execution snapshot, with its description, when the execution changed (a
    /// heartbeat makes none).
    pub snapshot: Option<&'static str>,
    pub attempt: AttemptChange,
    /// The answer to a completing worker.
    pub attempt_status: Option<AttemptStatus>,
    /// The run's final error, when it failed.
    pub error: Option<TaskRunError>,
}

/// Why an event does not apply.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// The run has finished.
    #[error("Run is already finished")]
    AlreadyFinished,
    /// The event is valid but changes nothing now (a tick before anything is due, a repeated
    /// cancellation).
    #[error("nothing to do")]
    NoChange,
    /// The event cannot happen in this state.
    #[error("cannot {event} a run whose execution is {execution}")]
    Illegal {
        event: &'static str,
        execution: ExecutionStatus,
    },
}

/// What `event` does to a run in `state` at `now`.
pub fn transition(
    state: &RunState,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<Transition, EngineError> {
    use ExecutionStatus as X;
    if state.is_finished() {
        return Err(if *event == Event::Tick {
            EngineError::NoChange
        } else {
            EngineError::AlreadyFinished
        });
    }
    let illegal = || EngineError::Illegal {
        event: event.name(),
        execution: state.execution,
    };
    let mut next = Next::new(state, now);
    match event {
        Event::Dequeue {
            max_attempts,
            retry,
            max_duration_seconds,
        } => {
            if !state.is_dequeueable(now) {
                return Err(illegal());
            }
            next.s.max_attempts = state
                .max_attempts
                .or(*max_attempts)
                .or(retry.as_ref().and_then(|r| r.max_attempts));
            next.s.retry = state.retry.or(*retry);
            next.s.max_duration_seconds = state.max_duration_seconds.or(*max_duration_seconds);
            next.s.available_at = None;
            Ok(next.to(RunStatus::Dequeued, X::PendingExecuting, "Run was dequeued"))
        }
        Event::StartAttempt => {
            let resuming_retry =
                state.execution == X::Executing && state.status == RunStatus::RetryingAfterFailure;
            if state.execution == X::PendingCancel {
                return Err(EngineError::AlreadyFinished);
            }
            if !(state.execution == X::PendingExecuting || resuming_retry) {
                return Err(illegal());
            }
            if state.attempt_number >= MAX_TASK_RUN_ATTEMPTS {
                let error = TaskRunError::internal("TASK_RUN_CRASHED", "Max attempts reached.");
                return Ok(next.fail(RunStatus::Crashed, error, "Max attempts reached"));
            }
            let number = state.attempt_number + 1;
            next.s.attempt_number = number;
            next.s.started_at = state.started_at.or(Some(now));
            next.s.heartbeat_at = Some(now);
            next.attempt = AttemptChange::Started(number);
            Ok(next.to(RunStatus::Executing, X::Executing, "Attempt created"))
        }
        Event::Heartbeat => match state.execution {
            X::Executing | X::ExecutingWithWaitpoints | X::PendingExecuting | X::PendingCancel => {
                next.s.heartbeat_at = Some(now);
                Ok(next.unchanged_snapshot())
            }
            _ => Err(illegal()),
        },
        Event::Complete(completion) => {
            if state.execution == X::PendingCancel {
                next.attempt = AttemptChange::Ended {
                    outcome: AttemptOutcome::Canceled,
                    error: None,
                };
                next.attempt_status = Some(AttemptStatus::RunFinished);
                return Ok(next.to(RunStatus::Canceled, X::Finished, "Run was cancelled"));
            }
            if !(state.is_running_attempt()) {
                return Err(illegal());
            }
            Ok(complete(next, completion))
        }
        Event::Cancel { finalize } => match state.execution {
            X::PendingCancel if !finalize => Err(EngineError::NoChange),
            // An attempt is running: its worker is told and confirms. Waiting to start a retry,
            // no attempt runs, so the run ends at once like a queued one.
            X::Executing | X::ExecutingWithWaitpoints
                if !finalize && state.status == RunStatus::Executing =>
            {
                next.s.completed_at = Some(now);
                Ok(next.to(RunStatus::Canceled, X::PendingCancel, "Run was cancelled"))
            }
            _ => {
                if state.status == RunStatus::Executing || state.execution == X::PendingCancel {
                    next.attempt = AttemptChange::Ended {
                        outcome: AttemptOutcome::Canceled,
                        error: None,
                    };
                }
                Ok(next.to(
                    RunStatus::Canceled,
                    X::Finished,
                    "Run was cancelled, not finished",
                ))
            }
        },
        Event::Block => match state.execution {
            _ if !state.is_running_attempt() => Err(illegal()),
            X::ExecutingWithWaitpoints => Ok(next.unchanged_snapshot()),
            _ => Ok(next.to(
                RunStatus::Executing,
                X::ExecutingWithWaitpoints,
                "Run was blocked by a waitpoint",
            )),
        },
        Event::Continue => match state.execution {
            X::ExecutingWithWaitpoints if state.status == RunStatus::Executing => {
                // The stall clock starts again: the process was idle by design.
                next.s.heartbeat_at = Some(now);
                Ok(next.to(
                    RunStatus::Executing,
                    X::Executing,
                    "Run was continued, whilst still executing",
                ))
            }
            _ => Err(EngineError::NoChange),
        },
        Event::Tick => tick(next),
    }
}

/// The outcome of a completion of a running attempt.
fn complete(mut next: Next<'_>, completion: &Completion) -> Transition {
    let (error, retry_delay_ms, jitter) = match completion {
        Completion::Success => {
            next.attempt = AttemptChange::Ended {
                outcome: AttemptOutcome::Completed,
                error: None,
            };
            next.attempt_status = Some(AttemptStatus::RunFinished);
            return next.to(
                RunStatus::CompletedSuccessfully,
                ExecutionStatus::Finished,
                "Task completed successfully",
            );
        }
        Completion::Failure {
            error,
            retry_delay_ms,
            jitter,
        } => (error, *retry_delay_ms, *jitter),
    };
    if error.is_cancellation() {
        next.attempt = AttemptChange::Ended {
            outcome: AttemptOutcome::Canceled,
            error: None,
        };
        next.attempt_status = Some(AttemptStatus::RunFinished);
        return next.to(
            RunStatus::Canceled,
            ExecutionStatus::Finished,
            "Run was cancelled",
        );
    }
    let state = next.prev;
    let final_status = RunStatus::from_error(error, state.is_development);
    let attempts_left = state.attempts_left();
    // The worker decides the delay when its process could; when the process died first (an
    // uncaught exception, a crash) the engine looks it up in the task's retry settings, and
    // the retry always goes back to the queue: the worker has no retry of its own to start.
    let (delay, looked_up) = if !error.should_retry() || !attempts_left {
        (None, false)
    } else if retry_delay_ms.is_some() {
        (retry_delay_ms, false)
    } else if error.needs_retry_lookup() {
        let delay = state
            .retry
            .and_then(|r| r.next_delay_ms(state.attempt_number, jitter));
        (delay, true)
    } else {
        (None, false)
    };
    let Some(delay) = delay else {
        return next.fail(final_status, error.clone(), "Attempt failed");
    };
    next.attempt = AttemptChange::Ended {
        outcome: AttemptOutcome::Failed,
        error: Some(error.clone()),
    };
    if delay < RETRY_WARM_START_THRESHOLD_MS && !looked_up {
        next.attempt_status = Some(AttemptStatus::RetryImmediately);
        next.to(
            RunStatus::RetryingAfterFailure,
            ExecutionStatus::Executing,
            "Attempt failed with a short delay, starting a new attempt",
        )
    } else {
        let delay = Duration::milliseconds(i64::try_from(delay).unwrap_or(i64::MAX));
        next.s.available_at = Some(next.now.checked_add_signed(delay).unwrap_or(next.now));
        next.attempt_status = Some(AttemptStatus::RetryQueued);
        next.to(
            RunStatus::RetryingAfterFailure,
            ExecutionStatus::Queued,
            "Attempt failed, retrying later",
        )
    }
}

/// What time alone does to a run.
fn tick(mut next: Next<'_>) -> Result<Transition, EngineError> {
    use ExecutionStatus as X;
    let state = next.prev;
    let now = next.now;
    let due = |at: Option<DateTime<Utc>>| at.is_some_and(|at| at <= now);
    let unstarted = state.attempt_number == 0;
    match state.execution {
        X::Delayed | X::Queued
            if unstarted
                && matches!(state.status, RunStatus::Delayed | RunStatus::Pending)
                && due(state.ttl_expires_at) =>
        {
            next.s.expired_at = Some(now);
            Ok(next.to(
                RunStatus::Expired,
                X::Finished,
                "Run expired because the TTL was reached",
            ))
        }
        X::Delayed | X::Queued if state.status == RunStatus::Delayed && due(state.available_at) => {
            Ok(next.to(RunStatus::Pending, X::Queued, "Run delay elapsed"))
        }
        X::PendingExecuting if due(Some(state.snapshot_at + PENDING_EXECUTING_TIMEOUT)) => {
            let status = if unstarted {
                RunStatus::Pending
            } else {
                RunStatus::RetryingAfterFailure
            };
            next.s.available_at = Some(now);
            Ok(next.to(
                status,
                X::Queued,
                "Run was not started in time and was put back in the queue",
            ))
        }
        X::Executing => {
            let limit = (state.status == RunStatus::Executing)
                .then_some(state.max_duration_seconds)
                .flatten();
            if let Some(secs) = limit {
                if due(Some(
                    state.snapshot_at + Duration::seconds(i64::from(secs)) + MAX_DURATION_GRACE,
                )) {
                    let error = TaskRunError::internal(
                        "MAX_DURATION_EXCEEDED",
                        format!(
                            "Run exceeded maximum compute time (maxDuration) of {secs} seconds"
                        ),
                    );
                    return Ok(next.fail(
                        RunStatus::TimedOut,
                        error,
                        "Run exceeded its maxDuration",
                    ));
                }
            }
            let alive = state
                .heartbeat_at
                .map_or(state.snapshot_at, |h| h.max(state.snapshot_at));
            if due(Some(alive + HEARTBEAT_TIMEOUT)) {
                let error = TaskRunError::internal(
                    "TASK_RUN_STALLED_EXECUTING",
                    "Run stalled: its worker stopped sending heartbeats",
                );
                // As upstream: a deployed run whose process vanished (its machine or the
                // server that ran it died) goes back to the queue for another attempt while
                // it has attempts left. A development run's worker is a person's CLI.
                if !state.is_development && state.attempts_left() {
                    next.attempt = AttemptChange::Ended {
                        outcome: AttemptOutcome::Failed,
                        error: Some(error),
                    };
                    next.s.available_at = Some(now);
                    next.attempt_status = Some(AttemptStatus::RetryQueued);
                    return Ok(next.to(
                        RunStatus::RetryingAfterFailure,
                        X::Queued,
                        "Run stalled and was put back in the queue",
                    ));
                }
                let status = RunStatus::from_error(&error, state.is_development);
                return Ok(next.fail(status, error, "Run stalled"));
            }
            Err(EngineError::NoChange)
        }
        // A waiting attempt's process keeps sending heartbeats; no duration limit runs while
        // it waits.
        X::ExecutingWithWaitpoints => {
            let alive = state
                .heartbeat_at
                .map_or(state.snapshot_at, |h| h.max(state.snapshot_at));
            if due(Some(alive + HEARTBEAT_TIMEOUT)) {
                let error = TaskRunError::internal(
                    "TASK_RUN_STALLED_EXECUTING_WITH_WAITPOINTS",
                    "Run stalled while waiting: its worker stopped sending heartbeats",
                );
                let status = RunStatus::from_error(&error, state.is_development);
                return Ok(next.fail(status, error, "Run stalled while waiting"));
            }
            Err(EngineError::NoChange)
        }
        X::PendingCancel if due(Some(state.snapshot_at + PENDING_CANCEL_TIMEOUT)) => {
            next.attempt = AttemptChange::Ended {
                outcome: AttemptOutcome::Canceled,
                error: None,
            };
            Ok(next.to(
                RunStatus::Canceled,
                X::Finished,
                "Run was cancelled; its worker did not confirm",
            ))
        }
        _ => Err(EngineError::NoChange),
    }
}

/// A transition under construction.
struct Next<'a> {
    prev: &'a RunState,
    s: RunState,
    now: DateTime<Utc>,
    attempt: AttemptChange,
    attempt_status: Option<AttemptStatus>,
}

impl<'a> Next<'a> {
    fn new(prev: &'a RunState, now: DateTime<Utc>) -> Self {
        Next {
            prev,
            s: prev.clone(),
            now,
            attempt: AttemptChange::None,
            attempt_status: None,
        }
    }

    /// Moves to `status` and `execution` with a new snapshot.
    fn to(
        mut self,
        status: RunStatus,
        execution: ExecutionStatus,
        description: &'static str,
    ) -> Transition {
        self.s.status = status;
        self.s.execution = execution;
        self.s.snapshot_at = self.now;
        if execution == ExecutionStatus::Queued && self.s.available_at.is_none() {
            self.s.available_at = Some(self.now);
        }
        if execution == ExecutionStatus::Finished || status.is_final() {
            self.s.completed_at = self.s.completed_at.or(Some(self.now));
        }
        Transition {
            state: self.s,
            snapshot: Some(description),
            attempt: self.attempt,
            attempt_status: self.attempt_status,
            error: None,
        }
    }

    /// Ends the run as failed with `error`, ending the attempt if one was running.
    fn fail(
        mut self,
        status: RunStatus,
        error: TaskRunError,
        description: &'static str,
    ) -> Transition {
        if self.prev.status == RunStatus::Executing {
            self.attempt = AttemptChange::Ended {
                outcome: AttemptOutcome::Failed,
                error: Some(error.clone()),
            };
        }
        self.attempt_status = Some(AttemptStatus::RunFinished);
        let mut t = self.to(status, ExecutionStatus::Finished, description);
        t.error = Some(error);
        t
    }

    fn unchanged_snapshot(self) -> Transition {
        Transition {
            state: self.s,
            snapshot: None,
            attempt: self.attempt,
            attempt_status: None,
            error: None,
        }
    }
}

#[cfg(test)]
mod tests;
