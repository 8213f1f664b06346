//! Every (state, event) pair of the run state machine, then the behaviours built on it:
//! retries, cancellation in each state, stalls, limits, delays and TTLs. Time is passed in.

use chrono::TimeZone;

use super::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
        .single()
        .expect("valid time")
}

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

fn queued() -> RunState {
    RunState::triggered(t0(), None, None, true)
}

fn dequeued() -> RunState {
    transition(&queued(), &dequeue(Some(3)), t0())
        .unwrap()
        .state
}

fn executing() -> RunState {
    transition(&dequeued(), &Event::StartAttempt, t0())
        .unwrap()
        .state
}

fn dequeue(max_attempts: Option<u32>) -> Event {
    Event::Dequeue {
        max_attempts,
        retry: None,
        max_duration_seconds: None,
    }
}

fn failure(error: TaskRunError, retry_delay_ms: Option<u64>) -> Event {
    Event::Complete(Completion::Failure {
        error,
        retry_delay_ms,
        jitter: 0.0,
    })
}

fn user_error() -> TaskRunError {
    TaskRunError::BuiltIn {
        name: "Error".into(),
        message: "boom".into(),
        stack_trace: "Error: boom\n    at run (x.ts:1:1)".into(),
        causes: None,
    }
}

/// The states a run can be in, one per row of the table below.
fn states() -> Vec<(&'static str, RunState)> {
    let mut retrying = executing();
    retrying.status = RunStatus::RetryingAfterFailure;
    let mut retry_queued = queued();
    retry_queued.status = RunStatus::RetryingAfterFailure;
    retry_queued.attempt_number = 1;
    let mut pending_cancel = executing();
    pending_cancel.status = RunStatus::Canceled;
    pending_cancel.execution = ExecutionStatus::PendingCancel;
    let mut finished = executing();
    finished.status = RunStatus::CompletedSuccessfully;
    finished.execution = ExecutionStatus::Finished;
    let delayed = RunState::triggered(t0(), Some(t0() + secs(60)), None, true);
    let mut created = queued();
    created.execution = ExecutionStatus::RunCreated;
    let mut suspended = executing();
    suspended.execution = ExecutionStatus::Suspended;
    let waiting = transition(&executing(), &Event::Block, t0()).unwrap().state;
    vec![
        ("created", created),
        ("delayed", delayed),
        ("queued", queued()),
        ("retry-queued", retry_queued),
        ("dequeued", dequeued()),
        ("executing", executing()),
        ("waiting", waiting),
        ("retrying", retrying),
        ("suspended", suspended),
        ("pending-cancel", pending_cancel),
        ("finished", finished),
    ]
}

fn events() -> Vec<(&'static str, Event)> {
    vec![
        ("dequeue", dequeue(None)),
        ("start", Event::StartAttempt),
        ("heartbeat", Event::Heartbeat),
        ("success", Event::Complete(Completion::Success)),
        ("failure", failure(user_error(), None)),
        ("cancel", Event::Cancel { finalize: false }),
        ("disconnect", Event::Cancel { finalize: true }),
        ("tick", Event::Tick),
        ("block", Event::Block),
        ("continue", Event::Continue),
    ]
}

/// Expected outcome of an event applied at `t0` (nothing is due yet).
#[derive(Debug, PartialEq)]
enum Want {
    To(RunStatus, ExecutionStatus),
    Same,
    Finished,
    NoChange,
    Illegal,
}

use ExecutionStatus as X;
use RunStatus as R;
use Want::*;

#[rustfmt::skip]
const TABLE: &[(&str, &str, Want)] = &[
    ("created", "dequeue", Illegal), ("created", "start", Illegal), ("created", "heartbeat", Illegal),
    ("created", "success", Illegal), ("created", "failure", Illegal),
    ("created", "cancel", To(R::Canceled, X::Finished)), ("created", "disconnect", To(R::Canceled, X::Finished)),
    ("created", "tick", NoChange),
    ("created", "block", Illegal), ("created", "continue", NoChange),

    ("delayed", "dequeue", Illegal), ("delayed", "start", Illegal), ("delayed", "heartbeat", Illegal),
    ("delayed", "success", Illegal), ("delayed", "failure", Illegal),
    ("delayed", "cancel", To(R::Canceled, X::Finished)), ("delayed", "disconnect", To(R::Canceled, X::Finished)),
    ("delayed", "tick", NoChange),
    ("delayed", "block", Illegal), ("delayed", "continue", NoChange),

    ("queued", "dequeue", To(R::Dequeued, X::PendingExecuting)), ("queued", "start", Illegal),
    ("queued", "heartbeat", Illegal), ("queued", "success", Illegal), ("queued", "failure", Illegal),
    ("queued", "cancel", To(R::Canceled, X::Finished)), ("queued", "disconnect", To(R::Canceled, X::Finished)),
    ("queued", "tick", NoChange),
    ("queued", "block", Illegal), ("queued", "continue", NoChange),

    ("retry-queued", "dequeue", To(R::Dequeued, X::PendingExecuting)), ("retry-queued", "start", Illegal),
    ("retry-queued", "heartbeat", Illegal), ("retry-queued", "success", Illegal), ("retry-queued", "failure", Illegal),
    ("retry-queued", "cancel", To(R::Canceled, X::Finished)), ("retry-queued", "disconnect", To(R::Canceled, X::Finished)),
    ("retry-queued", "tick", NoChange),
    ("retry-queued", "block", Illegal), ("retry-queued", "continue", NoChange),

    ("dequeued", "dequeue", Illegal), ("dequeued", "start", To(R::Executing, X::Executing)),
    ("dequeued", "heartbeat", Same), ("dequeued", "success", Illegal), ("dequeued", "failure", Illegal),
    ("dequeued", "cancel", To(R::Canceled, X::Finished)), ("dequeued", "disconnect", To(R::Canceled, X::Finished)),
    ("dequeued", "tick", NoChange),
    ("dequeued", "block", Illegal), ("dequeued", "continue", NoChange),

    ("executing", "dequeue", Illegal), ("executing", "start", Illegal), ("executing", "heartbeat", Same),
    ("executing", "success", To(R::CompletedSuccessfully, X::Finished)),
    ("executing", "failure", To(R::CompletedWithErrors, X::Finished)),
    ("executing", "cancel", To(R::Canceled, X::PendingCancel)), ("executing", "disconnect", To(R::Canceled, X::Finished)),
    ("executing", "tick", NoChange),
    ("executing", "block", To(R::Executing, X::ExecutingWithWaitpoints)), ("executing", "continue", NoChange),

    ("waiting", "dequeue", Illegal), ("waiting", "start", Illegal), ("waiting", "heartbeat", Same),
    ("waiting", "success", To(R::CompletedSuccessfully, X::Finished)),
    ("waiting", "failure", To(R::CompletedWithErrors, X::Finished)),
    ("waiting", "cancel", To(R::Canceled, X::PendingCancel)), ("waiting", "disconnect", To(R::Canceled, X::Finished)),
    ("waiting", "tick", NoChange), ("waiting", "block", Same),
    ("waiting", "continue", To(R::Executing, X::Executing)),

    ("retrying", "dequeue", Illegal), ("retrying", "start", To(R::Executing, X::Executing)),
    ("retrying", "heartbeat", Same), ("retrying", "success", Illegal), ("retrying", "failure", Illegal),
    ("retrying", "cancel", To(R::Canceled, X::Finished)), ("retrying", "disconnect", To(R::Canceled, X::Finished)),
    ("retrying", "tick", NoChange),
    ("retrying", "block", Illegal), ("retrying", "continue", NoChange),

    ("suspended", "dequeue", Illegal), ("suspended", "start", Illegal), ("suspended", "heartbeat", Illegal),
    ("suspended", "success", Illegal), ("suspended", "failure", Illegal),
    ("suspended", "cancel", To(R::Canceled, X::Finished)), ("suspended", "disconnect", To(R::Canceled, X::Finished)),
    ("suspended", "tick", NoChange),
    ("suspended", "block", Illegal), ("suspended", "continue", NoChange),

    ("pending-cancel", "dequeue", Illegal), ("pending-cancel", "start", Finished),
    ("pending-cancel", "heartbeat", Same),
    ("pending-cancel", "success", To(R::Canceled, X::Finished)), ("pending-cancel", "failure", To(R::Canceled, X::Finished)),
    ("pending-cancel", "cancel", NoChange), ("pending-cancel", "disconnect", To(R::Canceled, X::Finished)),
    ("pending-cancel", "tick", NoChange),
    ("pending-cancel", "block", Illegal), ("pending-cancel", "continue", NoChange),

    ("finished", "dequeue", Finished), ("finished", "start", Finished), ("finished", "heartbeat", Finished),
    ("finished", "success", Finished), ("finished", "failure", Finished), ("finished", "cancel", Finished),
    ("finished", "disconnect", Finished), ("finished", "tick", NoChange),
    ("finished", "block", Finished), ("finished", "continue", Finished),
];

#[test]
fn every_state_and_event_pair_is_decided() {
    let states = states();
    let events = events();
    assert_eq!(
        TABLE.len(),
        states.len() * events.len(),
        "the table covers every pair"
    );
    for (state_name, state) in &states {
        for (event_name, event) in &events {
            let want = TABLE
                .iter()
                .find(|(s, e, _)| s == state_name && e == event_name)
                .map(|(_, _, w)| w)
                .unwrap_or_else(|| panic!("no expectation for {state_name} + {event_name}"));
            let got = match transition(state, event, t0()) {
                Ok(t) if t.snapshot.is_none() && t.state.status == state.status => Same,
                Ok(t) => To(t.state.status, t.state.execution),
                Err(EngineError::AlreadyFinished) => Finished,
                Err(EngineError::NoChange) => NoChange,
                Err(EngineError::Illegal { .. }) => Illegal,
            };
            assert_eq!(&got, want, "{state_name} + {event_name}");
        }
    }
}

#[test]
fn every_execution_change_comes_with_a_new_snapshot() {
    for (state_name, state) in states() {
        for (event_name, event) in events() {
            if let Ok(t) = transition(&state, &event, t0()) {
                let changed =
                    t.state.execution != state.execution || t.state.status != state.status;
                assert_eq!(t.snapshot.is_some(), changed, "{state_name} + {event_name}");
            }
        }
    }
}

#[test]
fn statuses_round_trip_their_spelling() {
    for s in RunStatus::ALL {
        assert_eq!(RunStatus::parse(s.as_str()), Some(*s));
    }
    for s in ExecutionStatus::ALL {
        assert_eq!(ExecutionStatus::parse(s.as_str()), Some(*s));
    }
    assert_eq!(RunStatus::ALL.len(), 17);
    assert_eq!(RunStatus::parse("pending"), None, "case-sensitive");
}

#[test]
fn the_api_names_statuses_as_the_sdk_expects() {
    let table = [
        (R::Pending, "QUEUED"),
        (R::Delayed, "DELAYED"),
        (R::WaitingForDeploy, "PENDING_VERSION"),
        (R::WaitingToResume, "WAITING"),
        (R::Dequeued, "DEQUEUED"),
        (R::RetryingAfterFailure, "EXECUTING"),
        (R::CompletedSuccessfully, "COMPLETED"),
        (R::Interrupted, "FAILED"),
        (R::CompletedWithErrors, "FAILED"),
        (R::Expired, "EXPIRED"),
    ];
    for (stored, api) in table {
        assert_eq!(stored.api_status(), api, "{stored}");
    }
}

#[test]
fn attempts_are_numbered_from_one_and_lock_the_tasks_settings() {
    let retry = RetrySettings::from_json(&serde_json::json!({"maxAttempts": 4})).unwrap();
    let t = transition(
        &queued(),
        &Event::Dequeue {
            max_attempts: None,
            retry: Some(retry),
            max_duration_seconds: Some(60),
        },
        t0(),
    )
    .unwrap();
    assert_eq!(
        t.state.max_attempts,
        Some(4),
        "from the task's retry settings"
    );
    assert_eq!(t.state.max_duration_seconds, Some(60));
    let started = transition(&t.state, &Event::StartAttempt, t0() + secs(1)).unwrap();
    assert_eq!(started.attempt, AttemptChange::Started(1));
    assert_eq!(started.state.attempt_number, 1);
    assert_eq!(started.state.started_at, Some(t0() + secs(1)));
}

#[test]
fn a_triggers_max_attempts_overrides_the_tasks() {
    let mut run = queued();
    run.max_attempts = Some(1);
    let retry = RetrySettings::from_json(&serde_json::json!({"maxAttempts": 5})).unwrap();
    let t = transition(
        &run,
        &Event::Dequeue {
            max_attempts: None,
            retry: Some(retry),
            max_duration_seconds: None,
        },
        t0(),
    )
    .unwrap();
    assert_eq!(t.state.max_attempts, Some(1));
    let running = transition(&t.state, &Event::StartAttempt, t0())
        .unwrap()
        .state;
    let done = transition(&running, &failure(user_error(), Some(100)), t0()).unwrap();
    assert_eq!(
        (done.state.status, done.attempt_status),
        (R::CompletedWithErrors, Some(AttemptStatus::RunFinished)),
        "no attempt left, whatever the worker asks"
    );
    assert_eq!(done.error, Some(user_error()));
}

#[test]
fn short_retries_run_at_once_and_long_ones_are_queued() {
    let soon = transition(&executing(), &failure(user_error(), Some(500)), t0()).unwrap();
    assert_eq!(soon.attempt_status, Some(AttemptStatus::RetryImmediately));
    assert_eq!(
        soon.attempt,
        AttemptChange::Ended {
            outcome: AttemptOutcome::Failed,
            error: Some(user_error())
        }
    );
    let again = transition(&soon.state, &Event::StartAttempt, t0() + secs(1)).unwrap();
    assert_eq!(again.attempt, AttemptChange::Started(2));

    let later = transition(&executing(), &failure(user_error(), Some(45_000)), t0()).unwrap();
    assert_eq!(later.attempt_status, Some(AttemptStatus::RetryQueued));
    assert_eq!(
        (later.state.status, later.state.execution),
        (R::RetryingAfterFailure, X::Queued)
    );
    assert_eq!(later.state.available_at, Some(t0() + secs(45)));
    assert!(!later.state.is_dequeueable(t0() + secs(44)));
    assert!(later.state.is_dequeueable(t0() + secs(45)));
    let redo = transition(&later.state, &dequeue(None), t0() + secs(45)).unwrap();
    let third = transition(&redo.state, &Event::StartAttempt, t0() + secs(46)).unwrap();
    assert_eq!(third.attempt, AttemptChange::Started(2));
}

#[test]
fn the_last_attempt_fails_the_run() {
    let mut run = executing();
    run.attempt_number = 3;
    let t = transition(&run, &failure(user_error(), Some(100)), t0()).unwrap();
    assert_eq!(t.state.status, R::CompletedWithErrors);
    assert_eq!(t.state.completed_at, Some(t0()));
}

#[test]
fn a_failure_without_a_retry_from_the_worker_ends_the_run() {
    let t = transition(&executing(), &failure(user_error(), None), t0()).unwrap();
    assert_eq!(
        (t.state.status, t.state.execution),
        (R::CompletedWithErrors, X::Finished)
    );
}

#[test]
fn a_crashed_process_is_retried_with_the_tasks_settings() {
    let mut run = executing();
    run.retry = RetrySettings::from_json(&serde_json::json!({
        "maxAttempts": 3, "minTimeoutInMs": 2000, "factor": 3, "randomize": false
    }));
    let crash = TaskRunError::internal("TASK_PROCESS_EXITED_WITH_NON_ZERO_CODE", "exit 1");
    let t = transition(&run, &failure(crash.clone(), None), t0()).unwrap();
    // The worker sent no retry of its own, so it cannot start one: the retry is queued for
    // the task's first delay (2 s), however short.
    assert_eq!(t.attempt_status, Some(AttemptStatus::RetryQueued));
    assert_eq!(
        (t.state.status, t.state.execution),
        (R::RetryingAfterFailure, X::Queued)
    );
    assert_eq!(
        t.state.available_at,
        Some(t0() + Duration::milliseconds(2000))
    );
    run.attempt_number = 3;
    let t = transition(&run, &failure(crash, None), t0()).unwrap();
    assert_eq!(t.state.status, R::Crashed);
}

#[test]
fn errors_that_cannot_be_retried_end_the_run_with_their_status() {
    let cases = [
        ("MAX_DURATION_EXCEEDED", R::TimedOut),
        ("TASK_PROCESS_OOM_KILLED", R::Crashed),
        ("COULD_NOT_FIND_TASK", R::SystemFailure),
    ];
    for (code, status) in cases {
        let t = transition(
            &executing(),
            &failure(TaskRunError::internal(code, "x"), Some(100)),
            t0(),
        )
        .unwrap();
        assert_eq!(t.state.status, status, "{code}");
    }
}

#[test]
fn a_cancelled_completion_cancels_the_run() {
    let cancelled = TaskRunError::Internal {
        code: "TASK_RUN_CANCELLED".into(),
        message: None,
        stack_trace: None,
    };
    let t = transition(&executing(), &failure(cancelled, None), t0()).unwrap();
    assert_eq!(
        (t.state.status, t.state.execution),
        (R::Canceled, X::Finished)
    );
}

#[test]
fn cancelling_a_running_attempt_waits_for_the_worker() {
    let t = transition(&executing(), &Event::Cancel { finalize: false }, t0()).unwrap();
    assert_eq!(
        (t.state.status, t.state.execution),
        (R::Canceled, X::PendingCancel)
    );
    assert!(t.state.status.is_final(), "clients see CANCELED at once");
    let confirmed = transition(
        &t.state,
        &failure(TaskRunError::internal("TASK_RUN_CANCELLED", ""), None),
        t0() + secs(1),
    )
    .unwrap();
    assert_eq!(confirmed.state.execution, X::Finished);
    assert_eq!(confirmed.attempt_status, Some(AttemptStatus::RunFinished));
    assert_eq!(
        confirmed.attempt,
        AttemptChange::Ended {
            outcome: AttemptOutcome::Canceled,
            error: None
        }
    );
}

#[test]
fn an_unconfirmed_cancellation_finishes_after_its_timeout() {
    let pending = transition(&executing(), &Event::Cancel { finalize: false }, t0())
        .unwrap()
        .state;
    assert_eq!(pending.next_due(), Some(t0() + PENDING_CANCEL_TIMEOUT));
    assert_eq!(
        transition(&pending, &Event::Tick, t0() + secs(59)),
        Err(EngineError::NoChange)
    );
    let t = transition(&pending, &Event::Tick, t0() + PENDING_CANCEL_TIMEOUT).unwrap();
    assert_eq!(
        (t.state.status, t.state.execution),
        (R::Canceled, X::Finished)
    );
}

#[test]
fn a_dequeued_run_not_started_in_time_goes_back_to_the_queue() {
    let run = dequeued();
    assert_eq!(run.next_due(), Some(t0() + PENDING_EXECUTING_TIMEOUT));
    let t = transition(&run, &Event::Tick, t0() + PENDING_EXECUTING_TIMEOUT).unwrap();
    assert_eq!((t.state.status, t.state.execution), (R::Pending, X::Queued));
    assert!(t.state.is_dequeueable(t0() + PENDING_EXECUTING_TIMEOUT));
}

#[test]
fn an_attempt_without_heartbeats_stalls() {
    let run = executing();
    let beat = transition(&run, &Event::Heartbeat, t0() + secs(200))
        .unwrap()
        .state;
    assert_eq!(beat.next_due(), Some(t0() + secs(200) + HEARTBEAT_TIMEOUT));
    assert_eq!(
        transition(&beat, &Event::Tick, t0() + HEARTBEAT_TIMEOUT),
        Err(EngineError::NoChange),
        "the heartbeat kept it alive"
    );
    let t = transition(&beat, &Event::Tick, t0() + secs(200) + HEARTBEAT_TIMEOUT).unwrap();
    assert_eq!(
        t.state.status,
        R::Canceled,
        "a stalled development run counts as canceled"
    );
    assert_eq!(
        t.error.as_ref().and_then(TaskRunError::code),
        Some("TASK_RUN_STALLED_EXECUTING")
    );
    // A deployed run whose process vanished is attempted again while it may be.
    let mut deployed = beat.clone();
    deployed.is_development = false;
    deployed.max_attempts = Some(2);
    let stalled_at = t0() + secs(200) + HEARTBEAT_TIMEOUT;
    let t = transition(&deployed, &Event::Tick, stalled_at).unwrap();
    assert_eq!(
        (t.state.status, t.state.execution),
        (R::RetryingAfterFailure, X::Queued)
    );
    assert!(t.state.is_dequeueable(stalled_at));
    assert_eq!(t.attempt_status, Some(AttemptStatus::RetryQueued));
    assert!(matches!(
        &t.attempt,
        AttemptChange::Ended { outcome: AttemptOutcome::Failed, error: Some(e) }
            if e.code() == Some("TASK_RUN_STALLED_EXECUTING")
    ));
    // Its last attempt stalling fails it.
    deployed.max_attempts = Some(1);
    let t = transition(&deployed, &Event::Tick, stalled_at).unwrap();
    assert_eq!(t.state.status, R::CompletedWithErrors);
    assert_eq!(
        t.error.as_ref().and_then(TaskRunError::code),
        Some("TASK_RUN_STALLED_EXECUTING")
    );
}

#[test]
fn max_duration_is_enforced_after_its_grace() {
    let mut run = executing();
    run.max_duration_seconds = Some(10);
    let due = t0() + secs(10) + MAX_DURATION_GRACE;
    assert_eq!(run.next_due(), Some(due));
    let t = transition(&run, &Event::Tick, due).unwrap();
    assert_eq!(t.state.status, R::TimedOut);
    assert_eq!(
        t.error.as_ref().and_then(TaskRunError::code),
        Some("MAX_DURATION_EXCEEDED")
    );
}

#[test]
fn delayed_runs_queue_when_due_and_expire_at_their_ttl() {
    let run = RunState::triggered(t0(), Some(t0() + secs(30)), Some(t0() + secs(90)), false);
    assert_eq!((run.status, run.execution), (R::Delayed, X::Delayed));
    assert!(
        !run.is_dequeueable(t0() + secs(40)),
        "a delayed run waits for its tick"
    );
    assert_eq!(run.next_due(), Some(t0() + secs(30)));
    let queued = transition(&run, &Event::Tick, t0() + secs(30))
        .unwrap()
        .state;
    assert_eq!((queued.status, queued.execution), (R::Pending, X::Queued));
    assert_eq!(queued.next_due(), Some(t0() + secs(90)));
    let expired = transition(&queued, &Event::Tick, t0() + secs(90))
        .unwrap()
        .state;
    assert_eq!(expired.status, R::Expired);
    assert_eq!(expired.expired_at, Some(t0() + secs(90)));
    assert_eq!(expired.next_due(), None);
}

#[test]
fn a_ttl_only_applies_before_the_first_attempt() {
    let mut run = queued();
    run.ttl_expires_at = Some(t0() + secs(10));
    let started = transition(
        &transition(&run, &dequeue(Some(3)), t0()).unwrap().state,
        &Event::StartAttempt,
        t0(),
    )
    .unwrap()
    .state;
    let requeued = transition(&started, &failure(user_error(), Some(60_000)), t0())
        .unwrap()
        .state;
    assert_eq!(requeued.next_due(), None, "a queued retry does not expire");
    assert_eq!(
        transition(&requeued, &Event::Tick, t0() + secs(3600)),
        Err(EngineError::NoChange)
    );
}

#[test]
fn a_past_delay_queues_at_once() {
    let run = RunState::triggered(t0(), Some(t0() - secs(5)), None, false);
    assert_eq!((run.status, run.execution), (R::Pending, X::Queued));
}

#[test]
fn retry_delays_follow_the_sdks_formula() {
    let r = RetrySettings::from_json(&serde_json::json!({
        "maxAttempts": 5, "factor": 2, "minTimeoutInMs": 1000, "maxTimeoutInMs": 5000, "randomize": false
    }))
    .unwrap();
    assert_eq!(r.next_delay_ms(1, 0.9), Some(1000));
    assert_eq!(r.next_delay_ms(2, 0.0), Some(2000));
    assert_eq!(r.next_delay_ms(3, 0.0), Some(4000));
    assert_eq!(
        r.next_delay_ms(4, 0.0),
        Some(5000),
        "capped at maxTimeoutInMs"
    );
    assert_eq!(r.next_delay_ms(5, 0.0), None, "no attempt left");
    let random = RetrySettings {
        randomize: true,
        ..r
    };
    assert_eq!(random.next_delay_ms(1, 0.5), Some(1500));
    let defaults = RetrySettings::from_json(&serde_json::json!({})).unwrap();
    assert_eq!(
        defaults.next_delay_ms(3, 0.0),
        None,
        "three attempts by default"
    );
    assert_eq!(
        RetrySettings::from_json(&serde_json::json!({"factor": "x", "maxAttempts": -1}))
            .unwrap()
            .factor,
        2.0,
        "bad values fall back to defaults"
    );
    assert!(RetrySettings::from_json(&serde_json::json!(null)).is_none());
}

#[test]
fn the_global_attempt_ceiling_ends_a_run() {
    let mut run = executing();
    run.status = R::RetryingAfterFailure;
    run.attempt_number = MAX_TASK_RUN_ATTEMPTS;
    let t = transition(&run, &Event::StartAttempt, t0()).unwrap();
    assert_eq!(t.state.status, R::Crashed);
}

proptest::proptest! {
    /// Whatever sequence of events arrives, at whatever times, a finished run stays finished
    /// and its status never leaves a final value.
    #[test]
    fn finished_runs_stay_finished(events in proptest::collection::vec(0usize..10, 1..40), step in 0i64..400) {
        let all = events_list();
        let mut state = queued();
        let mut now = t0();
        let mut was_final: Option<RunStatus> = None;
        for i in events {
            now += secs(step);
            if let Ok(t) = transition(&state, &all[i], now) {
                if let Some(f) = was_final {
                    proptest::prop_assert!(t.state.status == f, "a final status changed");
                }
                state = t.state;
            }
            if state.is_finished() {
                was_final = Some(state.status);
            }
        }
    }
}

fn events_list() -> Vec<Event> {
    events().into_iter().map(|(_, e)| e).collect()
}

#[test]
fn an_uncaught_exception_is_retried_from_the_queue_and_its_next_attempt_starts() {
    let mut run = executing();
    run.retry = RetrySettings::from_json(&serde_json::json!({"maxAttempts": 3}));
    let uncaught = TaskRunError::internal("TASK_RUN_UNCAUGHT_EXCEPTION", "boom");
    let t = transition(&run, &failure(uncaught, None), t0()).unwrap();
    assert_eq!(t.attempt_status, Some(AttemptStatus::RetryQueued));
    let due = t.state.available_at.expect("a queued retry has a time");
    assert!(!t.state.is_dequeueable(due - Duration::milliseconds(1)));
    let again = transition(&t.state, &dequeue(None), due).unwrap();
    let started = transition(&again.state, &Event::StartAttempt, due).unwrap();
    assert_eq!(started.attempt, AttemptChange::Started(2));
}

#[test]
fn a_waiting_run_holds_no_slot_and_continues_with_a_new_snapshot() {
    let run = executing();
    assert!(run.holds_a_slot());
    let blocked = transition(&run, &Event::Block, t0() + secs(1)).unwrap();
    assert_eq!(blocked.snapshot, Some("Run was blocked by a waitpoint"));
    assert_eq!(
        blocked.state.status,
        R::Executing,
        "clients still see it executing"
    );
    assert!(!blocked.state.holds_a_slot());
    // A second wait while waiting changes nothing.
    let again = transition(&blocked.state, &Event::Block, t0() + secs(2)).unwrap();
    assert_eq!(again.snapshot, None);
    let resumed = transition(&blocked.state, &Event::Continue, t0() + secs(3)).unwrap();
    assert_eq!(
        resumed.snapshot,
        Some("Run was continued, whilst still executing")
    );
    assert_eq!(resumed.state.execution, X::Executing);
    assert_eq!(resumed.state.heartbeat_at, Some(t0() + secs(3)));
    assert!(resumed.state.holds_a_slot());
}

#[test]
fn a_waiting_run_is_not_limited_by_max_duration_but_stalls_without_heartbeats() {
    let mut run = executing();
    run.max_duration_seconds = Some(10);
    let waiting = transition(&run, &Event::Block, t0()).unwrap().state;
    let late = t0() + secs(200);
    assert_eq!(
        transition(&waiting, &Event::Tick, late),
        Err(EngineError::NoChange),
        "waiting is not compute time"
    );
    let beat = transition(&waiting, &Event::Heartbeat, late).unwrap().state;
    assert_eq!(beat.next_due(), Some(late + HEARTBEAT_TIMEOUT));
    let stalled = transition(&beat, &Event::Tick, late + HEARTBEAT_TIMEOUT).unwrap();
    assert_eq!(stalled.state.execution, X::Finished);
    let error = stalled.error.expect("a stalled run has an error");
    assert_eq!(
        error.code(),
        Some("TASK_RUN_STALLED_EXECUTING_WITH_WAITPOINTS")
    );
    assert_eq!(
        stalled.state.status,
        R::Canceled,
        "a development run counts as cancelled"
    );
}

#[test]
fn cancelling_a_waiting_run_tells_its_worker() {
    let waiting = transition(&executing(), &Event::Block, t0()).unwrap().state;
    let t = transition(&waiting, &Event::Cancel { finalize: false }, t0()).unwrap();
    assert_eq!(
        (t.state.status, t.state.execution),
        (R::Canceled, X::PendingCancel)
    );
    // What continues it later changes nothing: it is being cancelled.
    assert_eq!(
        transition(&t.state, &Event::Continue, t0()),
        Err(EngineError::NoChange)
    );
}
