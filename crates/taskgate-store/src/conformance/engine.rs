//! Conformance cases: the run engine's storage (workers, the queue, attempts, stalls,
//! variables, logs, presence).

use std::sync::Arc;

use chrono::Duration;
use taskgate_core::engine::{
    AttemptOutcome, AttemptStatus, Completion, EngineError, Event, ExecutionStatus, RunState,
    RunStatus,
};
use taskgate_core::env::EnvType;
use taskgate_core::ids::{new_id, new_worker_friendly_id, EnvironmentId};
use taskgate_core::task_error::TaskRunError;

use super::runs::plain;
use super::*;
use crate::*;

pub(super) async fn prod_env(store: &dyn Store) -> EnvironmentId {
    let (_owner, _org, project) = fixture(store).await;
    store
        .find_root_environment(&project.id, EnvType::Production, None)
        .await
        .unwrap()
        .unwrap()
        .id
}

fn task(slug: &str, retry: Option<&str>) -> WorkerTask {
    WorkerTask {
        slug: slug.into(),
        file_path: format!("src/trigger/{slug}.ts"),
        export_name: Some(slug.replace('-', "_")),
        retry_config: retry.map(str::to_string),
        queue_name: None,
        machine: None,
        max_duration_seconds: None,
        ttl: None,
        payload_schema: None,
        description: None,
        trigger_source: Some("STANDARD".into()),
        schedule: None,
    }
}

/// A dequeue for the worker `worker_id` (as the server calls it, with the worker's tasks).
async fn dequeue(
    store: &dyn Store,
    env: &EnvironmentId,
    worker_id: &str,
    limits: DequeueLimits,
    now: chrono::DateTime<chrono::Utc>,
) -> StoreResult<DequeueOutcome> {
    let Some((worker, tasks)) = store.get_worker(env, worker_id).await? else {
        return Err(StoreError::NotFound);
    };
    store.dequeue_run(env, &worker, &tasks, limits, now).await
}

/// The run a dequeue took, or `None` when it took none.
pub(super) async fn take(
    store: &dyn Store,
    env: &EnvironmentId,
    worker: &str,
    limits: DequeueLimits,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Dequeued> {
    match dequeue(store, env, worker, limits, now).await.unwrap() {
        DequeueOutcome::Taken(d) => Some(*d),
        _ => None,
    }
}

pub(super) async fn register(store: &dyn Store, env: &EnvironmentId, tasks: &[&str]) -> Worker {
    store
        .register_worker(
            NewWorker {
                id: new_id().into(),
                friendly_id: new_worker_friendly_id().into(),
                environment_id: env.into(),
                content_hash: "abc".into(),
                sdk_version: Some("4.8.3".into()),
                cli_version: Some("4.8.3".into()),
                runtime: Some("node".into()),
                runtime_version: Some("20.20.2".into()),
                tasks: tasks.iter().map(|t| task(t, None)).collect(),
                queues: Vec::new(),
                deployment_id: None,
            },
            t0(),
        )
        .await
        .unwrap()
}

async fn trigger(
    store: &dyn Store,
    env: &EnvironmentId,
    task: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Run {
    let state = RunState::triggered(at, None, None, false);
    store
        .trigger_run(Run::triggered(env, task, &state, at), None, None, None, at)
        .await
        .unwrap()
        .run
}

pub(super) const LIMIT: DequeueLimits = DequeueLimits { concurrency: 10 };

pub async fn workers_register_with_daily_versions(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    assert!(store.current_worker(&env).await.unwrap().is_none());
    let first = register(&*store, &env, &["b-task", "a-task"]).await;
    let second = register(&*store, &env, &["a-task"]).await;
    assert_eq!(
        (first.version.as_str(), second.version.as_str()),
        ("20260101.1", "20260101.2")
    );
    let (current, tasks) = store.current_worker(&env).await.unwrap().unwrap();
    assert_eq!(current.friendly_id, second.friendly_id);
    assert_eq!(tasks.len(), 1);
    let (found, tasks) = store
        .get_worker(&env, &first.friendly_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, first);
    assert_eq!(
        tasks.iter().map(|t| t.slug.as_str()).collect::<Vec<_>>(),
        ["a-task", "b-task"]
    );
    assert_eq!(tasks[0], task("a-task", None));
    assert!(store
        .get_worker(&"another-env".into(), &first.friendly_id)
        .await
        .unwrap()
        .is_none());
}

pub async fn dequeue_takes_known_tasks_oldest_first(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let w = register(&*store, &env, &["a", "b"]).await;
    let unknown = trigger(&*store, &env, "c", t0()).await;
    let a = trigger(&*store, &env, "a", t0() + Duration::seconds(1)).await;
    let b = trigger(&*store, &env, "b", t0() + Duration::seconds(2)).await;
    let now = t0() + Duration::seconds(3);
    let first = take(&*store, &env, &w.id, LIMIT, now).await.unwrap();
    assert_eq!(first.run.friendly_id, a.friendly_id);
    assert_eq!(
        (first.run.status, first.run.execution_status),
        (RunStatus::Dequeued, ExecutionStatus::PendingExecuting)
    );
    assert_eq!(first.run.worker_id.as_deref(), Some(w.id.as_str()));
    assert_eq!(first.run.task_version.as_deref(), Some(w.version.as_str()));
    assert_eq!(first.task.slug, "a");
    assert_eq!(first.worker.friendly_id, w.friendly_id);
    assert_ne!(first.run.snapshot_id, a.snapshot_id);
    let second = take(&*store, &env, &w.id, LIMIT, now).await.unwrap();
    assert_eq!(second.run.friendly_id, b.friendly_id);
    assert!(
        matches!(
            dequeue(&*store, &env, &w.id, LIMIT, now).await.unwrap(),
            DequeueOutcome::Empty {
                next_available_at: None
            }
        ),
        "a run of a task the worker does not know waits"
    );
    let c = store
        .get_run(&env, &unknown.friendly_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.status, RunStatus::Pending);
    assert_eq!(store.queue_length(&env, 100).await.unwrap(), 1);
    // The runs list filters by the worker version a run was locked to.
    let page = RunPage {
        limit: 10,
        after: None,
        before: None,
    };
    let of_version = |v: &str| RunFilter {
        versions: vec![v.to_string()],
        ..RunFilter::default()
    };
    let listed = store
        .list_runs(&env, &of_version(&w.version), &page)
        .await
        .unwrap();
    let mut ids: Vec<_> = listed.iter().map(|r| r.friendly_id.clone()).collect();
    ids.sort();
    let mut want = vec![a.friendly_id.clone(), b.friendly_id.clone()];
    want.sort();
    assert_eq!(ids, want);
    assert!(store
        .list_runs(&env, &of_version("19990101.1"), &page)
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        dequeue(&*store, &env, "no-such-worker", LIMIT, now).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn dequeue_honours_the_concurrency_limit(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let w = register(&*store, &env, &["a"]).await;
    for i in 0..8 {
        trigger(&*store, &env, "a", t0() + Duration::milliseconds(i)).await;
    }
    let now = t0() + Duration::seconds(1);
    let limits = DequeueLimits { concurrency: 3 };
    // Concurrent dequeues, as from several nodes: the limit holds exactly.
    let attempts = (0..8).map(|_| {
        let (store, env, w) = (store.clone(), env.clone(), w.id.clone());
        tokio::spawn(async move { take(&*store, &env, &w, limits, now).await })
    });
    let mut taken = Vec::new();
    for h in attempts {
        if let Some(d) = h.await.unwrap() {
            taken.push(d.run);
        }
    }
    assert_eq!(taken.len(), 3);
    let mut ids: Vec<&str> = taken.iter().map(|r| r.friendly_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "no run handed out twice");
    // Ending one frees its slot.
    store
        .apply_run_event(
            &env,
            &taken[0].friendly_id,
            plain(Event::Cancel { finalize: true }),
            now,
        )
        .await
        .unwrap()
        .unwrap();
    assert!(take(&*store, &env, &w.id, limits, now).await.is_some());
    assert!(matches!(
        dequeue(&*store, &env, &w.id, limits, now).await.unwrap(),
        DequeueOutcome::AtCapacity
    ));
}

pub async fn attempts_start_complete_and_are_recorded(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let w = register(&*store, &env, &["a"]).await;
    trigger(&*store, &env, "a", t0()).await;
    let d = take(&*store, &env, &w.id, LIMIT, t0()).await.unwrap();
    let id = d.run.friendly_id.clone();
    let start = |snapshot: &str| RunEvent {
        event: Event::StartAttempt,
        expected_snapshot: Some(snapshot.into()),
        data: EventData::default(),
    };
    assert_eq!(
        store
            .apply_run_event(&env, &id, start("snapshot_stale"), t0())
            .await
            .unwrap()
            .err(),
        Some(Refusal::StaleSnapshot {
            latest: d.run.snapshot_id.to_string()
        })
    );
    let at = t0() + Duration::seconds(1);
    let started = store
        .apply_run_event(&env, &id, start(&d.run.snapshot_id), at)
        .await
        .unwrap()
        .unwrap()
        .run;
    assert_eq!(
        (started.status, started.attempt_number, started.started_at),
        (RunStatus::Executing, 1, Some(at))
    );
    let in_progress = store.list_attempts(&started).await.unwrap();
    assert_eq!(
        in_progress
            .iter()
            .map(|a| (a.number, a.status, a.started_at, a.completed_at))
            .collect::<Vec<_>>(),
        vec![(1, AttemptOutcome::Executing, at, None)],
        "the attempt in progress is listed"
    );
    let done_at = t0() + Duration::seconds(3);
    let complete = RunEvent {
        event: Event::Complete(Completion::Success),
        expected_snapshot: Some(started.snapshot_id.clone()),
        data: EventData {
            output: Some(("{\"ok\":true}".into(), "application/json".into())),
            metadata: None,
        },
    };
    let applied = store
        .apply_run_event(&env, &id, complete, done_at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        applied.transition.attempt_status,
        Some(AttemptStatus::RunFinished)
    );
    let run = store.get_run(&env, &id).await.unwrap().unwrap();
    assert_eq!(
        (run.status, run.output.as_deref(), run.completed_at),
        (
            RunStatus::CompletedSuccessfully,
            Some("{\"ok\":true}"),
            Some(done_at)
        )
    );
    assert_eq!(run.due_at(), None);
    let attempts = store.list_attempts(&run).await.unwrap();
    assert_eq!(
        attempts,
        vec![Attempt {
            number: 1,
            status: AttemptOutcome::Completed,
            worker_id: Some(w.id.clone()),
            started_at: at,
            completed_at: Some(done_at),
            error: None,
        }]
    );
    // A finished run answers as finished, whatever snapshot the caller holds.
    assert_eq!(
        store
            .apply_run_event(&env, &id, start(&started.snapshot_id), done_at)
            .await
            .unwrap()
            .err(),
        Some(Refusal::Engine(EngineError::AlreadyFinished))
    );
}

pub async fn failed_attempts_keep_their_errors_and_retry(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let w = register(&*store, &env, &["a"]).await;
    let mut run = Run::triggered(
        &env,
        "a",
        &RunState::triggered(t0(), None, None, false),
        t0(),
    );
    run.max_attempts = Some(2);
    store
        .trigger_run(run, None, None, None, t0())
        .await
        .unwrap();
    let d = take(&*store, &env, &w.id, LIMIT, t0()).await.unwrap();
    let id = d.run.friendly_id;
    let error = |n: u32| TaskRunError::String {
        raw: format!("boom {n}"),
    };
    let fail = |n: u32| {
        plain(Event::Complete(Completion::Failure {
            error: error(n),
            retry_delay_ms: Some(100),
            jitter: 0.0,
        }))
    };
    store
        .apply_run_event(&env, &id, plain(Event::StartAttempt), t0())
        .await
        .unwrap()
        .unwrap();
    let retry = store
        .apply_run_event(&env, &id, fail(1), t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        retry.transition.attempt_status,
        Some(AttemptStatus::RetryImmediately)
    );
    store
        .apply_run_event(&env, &id, plain(Event::StartAttempt), t0())
        .await
        .unwrap()
        .unwrap();
    let last = store
        .apply_run_event(&env, &id, fail(2), t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.run.status, RunStatus::CompletedWithErrors);
    let stored: TaskRunError =
        serde_json::from_str(last.run.error.as_deref().unwrap_or("null")).unwrap();
    assert_eq!(stored, error(2));
    let attempts = store.list_attempts(&last.run).await.unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|a| (a.number, a.status, a.error.clone()))
            .collect::<Vec<_>>(),
        vec![
            (1, AttemptOutcome::Failed, Some(error(1))),
            (2, AttemptOutcome::Failed, Some(error(2)))
        ]
    );
}

/// Each run's id, status and execution status, for comparing what a pass changed.
fn states(runs: &[Run]) -> Vec<(&str, RunStatus, ExecutionStatus)> {
    runs.iter()
        .map(|r| (r.friendly_id.as_str(), r.status, r.execution_status))
        .collect()
}

pub async fn the_sweeper_recovers_stalled_runs(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let w = register(&*store, &env, &["a"]).await;
    trigger(&*store, &env, "a", t0()).await;
    trigger(&*store, &env, "a", t0() + Duration::milliseconds(1)).await;
    let now = t0() + Duration::seconds(1);
    let never_started = take(&*store, &env, &w.id, LIMIT, now).await.unwrap();
    let silent = take(&*store, &env, &w.id, LIMIT, now).await.unwrap();
    store
        .apply_run_event(
            &env,
            &silent.run.friendly_id,
            plain(Event::StartAttempt),
            now,
        )
        .await
        .unwrap()
        .unwrap();
    let requeued = store
        .advance_due_runs(now + Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(
        states(&requeued),
        vec![(
            never_started.run.friendly_id.as_str(),
            RunStatus::Pending,
            ExecutionStatus::Queued
        )]
    );
    let stalled = store
        .advance_due_runs(now + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(stalled.len(), 1);
    assert_eq!(
        (stalled[0].status, stalled[0].execution_status),
        (RunStatus::CompletedWithErrors, ExecutionStatus::Finished)
    );
    let attempts = store.list_attempts(&stalled[0]).await.unwrap();
    assert_eq!(attempts[0].status, AttemptOutcome::Failed);
    assert_eq!(
        attempts[0].error.as_ref().and_then(TaskRunError::code),
        Some("TASK_RUN_STALLED_EXECUTING")
    );
    // A deployed run that may be attempted again goes back to the queue instead (its process
    // went with the machine or the server that ran it), and is taken again.
    let later = now + Duration::minutes(10);
    let env = prod_env(&*store).await;
    let w = register(&*store, &env, &["a"]).await;
    let mut run = Run::triggered(
        &env,
        "a",
        &RunState::triggered(later, None, None, false),
        later,
    );
    run.max_attempts = Some(2);
    store
        .trigger_run(run, None, None, None, later)
        .await
        .unwrap();
    let d = take(&*store, &env, &w.id, LIMIT, later).await.unwrap();
    store
        .apply_run_event(&env, &d.run.friendly_id, plain(Event::StartAttempt), later)
        .await
        .unwrap()
        .unwrap();
    let requeued = store
        .advance_due_runs(later + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(
        states(&requeued),
        vec![(
            d.run.friendly_id.as_str(),
            RunStatus::RetryingAfterFailure,
            ExecutionStatus::Queued
        )]
    );
    let again = take(&*store, &env, &w.id, LIMIT, later + Duration::minutes(5))
        .await
        .expect("the stalled run is taken again");
    assert_eq!(again.run.friendly_id, d.run.friendly_id);
    let attempts = store.list_attempts(&requeued[0]).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status, AttemptOutcome::Failed);
}

pub async fn env_vars_are_set_listed_and_deleted(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let var = |k: &str, v: &str, secret: bool| NewEnvVar {
        key: k.into(),
        value_sealed: v.into(),
        is_secret: secret,
    };
    let written = store
        .set_env_vars(
            &env,
            &[
                var("B", "v1.sealed-b", true),
                var("A", "v1.sealed-a", false),
            ],
            true,
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(written, 2);
    let later = t0() + Duration::seconds(1);
    store
        .set_env_vars(&env, &[var("A", "v1.sealed-a2", false)], true, later)
        .await
        .unwrap();
    store
        .set_env_vars(
            &env,
            &[
                var("B", "v1.not-written", false),
                var("C", "v1.sealed-c", false),
            ],
            false,
            later,
        )
        .await
        .unwrap();
    let listed = store.list_env_vars(&env).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|v| (
                v.key.as_str(),
                v.value_sealed.as_str(),
                v.is_secret,
                v.created_at,
                v.updated_at
            ))
            .collect::<Vec<_>>(),
        vec![
            ("A", "v1.sealed-a2", false, t0(), later),
            ("B", "v1.sealed-b", true, t0(), t0()),
            ("C", "v1.sealed-c", false, later, later)
        ],
        "overwrite replaces; without it, existing values stay"
    );
    assert!(store.delete_env_var(&env, "A").await.unwrap());
    assert!(!store.delete_env_var(&env, "A").await.unwrap());
    assert_eq!(store.list_env_vars(&env).await.unwrap().len(), 2);
}

pub async fn run_logs_stay_in_their_environment(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let r = trigger(&*store, &env, "a", t0()).await;
    let log = |run: &str, message: &str, secs: i64| NewRunLog {
        run_friendly_id: run.into(),
        attempt_number: Some(1),
        time: t0() + Duration::seconds(secs),
        severity: "info".into(),
        message: message.into(),
        attributes: Some("{\"k\":1}".into()),
    };
    let stored = store
        .append_run_logs(
            &env,
            &[
                log(&r.friendly_id, "second", 2),
                log("run_unknown", "x", 0),
                log(&r.friendly_id, "first", 1),
                log(&r.friendly_id, "third", 2),
            ],
        )
        .await
        .unwrap();
    assert_eq!(stored, 3);
    assert_eq!(
        store
            .append_run_logs(&"another-env".into(), &[log(&r.friendly_id, "injected", 0)])
            .await
            .unwrap(),
        0,
        "another environment cannot write to this run"
    );
    let logs = store.list_run_logs(&r.id, None, 100).await.unwrap();
    assert_eq!(
        logs.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
        ["first", "second", "third"],
        "time order; arrival order among equal times"
    );
    let rest = store
        .list_run_logs(&r.id, Some((logs[1].time, logs[1].seq)), 100)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
        ["third"]
    );
    assert_eq!(rest[0].attributes.as_deref(), Some("{\"k\":1}"));
}

pub async fn run_spans_replace_their_partial_copy_and_stay_in_their_environment(
    store: Arc<dyn Store>,
) {
    let env = prod_env(&*store).await;
    let r = trigger(&*store, &env, "a", t0()).await;
    let span = |run: &str, id: &str, name: &str, start: i64, end: i64| NewRunSpan {
        run_friendly_id: run.into(),
        span: RunSpan {
            span_id: id.into(),
            parent_span_id: (id != "a1").then(|| "a1".to_string()),
            attempt_number: Some(1),
            name: name.into(),
            start: t0() + Duration::seconds(start),
            end: t0() + Duration::seconds(end),
            is_error: name == "boom",
            attributes: Some("{\"k\":1}".into()),
        },
    };
    let stored = store
        .append_run_spans(
            &env,
            &[
                span(&r.friendly_id, "b2", "fetch", 2, 2),
                span(&r.friendly_id, "a1", "Attempt 1", 1, 5),
                span("run_unknown", "x", "x", 0, 0),
            ],
        )
        .await
        .unwrap();
    assert_eq!(stored, 2);
    // The span again, now ended and failed.
    store
        .append_run_spans(&env, &[span(&r.friendly_id, "b2", "boom", 2, 4)])
        .await
        .unwrap();
    assert_eq!(
        store
            .append_run_spans(
                &"another-env".into(),
                &[span(&r.friendly_id, "c3", "injected", 0, 0)]
            )
            .await
            .unwrap(),
        0,
        "another environment cannot write to this run"
    );
    let spans = store.list_run_spans(&r.id, 100).await.unwrap();
    assert_eq!(
        spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["Attempt 1", "boom"],
        "start order; the later copy replaced the partial one"
    );
    assert!(spans[1].is_error);
    assert_eq!(spans[1].end, t0() + Duration::seconds(4));
    assert_eq!(spans[1].parent_span_id.as_deref(), Some("a1"));
    assert_eq!(spans[0].parent_span_id, None);
    assert_eq!(store.list_run_spans(&r.id, 1).await.unwrap().len(), 1);
}

pub async fn dev_presence_is_remembered(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    assert_eq!(store.dev_presence(&env).await.unwrap(), None);
    store.touch_dev_presence(&env, t0()).await.unwrap();
    store
        .touch_dev_presence(&env, t0() + Duration::seconds(5))
        .await
        .unwrap();
    assert_eq!(
        store.dev_presence(&env).await.unwrap(),
        Some(t0() + Duration::seconds(5))
    );
}

pub async fn cancelling_a_queued_run_is_immediate_and_an_executing_one_waits(
    store: Arc<dyn Store>,
) {
    let env = prod_env(&*store).await;
    let w = register(&*store, &env, &["a"]).await;
    let queued = trigger(&*store, &env, "a", t0() + Duration::seconds(1)).await;
    let running = trigger(&*store, &env, "a", t0()).await;
    let d = take(&*store, &env, &w.id, LIMIT, t0() + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(d.run.friendly_id, running.friendly_id);
    store
        .apply_run_event(&env, &running.friendly_id, plain(Event::StartAttempt), t0())
        .await
        .unwrap()
        .unwrap();
    let cancel = || plain(Event::Cancel { finalize: false });
    let q = store
        .apply_run_event(&env, &queued.friendly_id, cancel(), t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(q.run.execution_status, ExecutionStatus::Finished);
    let e = store
        .apply_run_event(&env, &running.friendly_id, cancel(), t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (e.run.status, e.run.execution_status),
        (RunStatus::Canceled, ExecutionStatus::PendingCancel)
    );
    assert_eq!(
        store
            .apply_run_event(&env, &running.friendly_id, cancel(), t0())
            .await
            .unwrap()
            .err(),
        Some(Refusal::Engine(EngineError::NoChange))
    );
    let confirm = plain(Event::Complete(Completion::Failure {
        error: TaskRunError::internal("TASK_RUN_CANCELLED", "canceled"),
        retry_delay_ms: None,
        jitter: 0.0,
    }));
    let done = store
        .apply_run_event(
            &env,
            &running.friendly_id,
            confirm,
            t0() + Duration::seconds(2),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.run.execution_status, ExecutionStatus::Finished);
    assert_eq!(
        store.list_attempts(&done.run).await.unwrap()[0].status,
        AttemptOutcome::Canceled
    );
}

pub async fn workers_are_found_by_version_and_queues_by_name(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let other = prod_env(&*store).await;
    let mut new = NewWorker {
        id: new_id().into(),
        friendly_id: new_worker_friendly_id().into(),
        environment_id: env.clone(),
        content_hash: "abc".into(),
        sdk_version: None,
        cli_version: None,
        runtime: None,
        runtime_version: None,
        tasks: vec![task("approver", None)],
        queues: vec![QueueLimit {
            name: "shared".into(),
            concurrency_limit: Some(2),
        }],
        deployment_id: None,
    };
    let first = store.register_worker(new.clone(), t0()).await.unwrap();
    new.id = new_id().into();
    new.friendly_id = new_worker_friendly_id().into();
    new.tasks = vec![task("approver", None), task("later", None)];
    let second = store.register_worker(new, t0()).await.unwrap();
    let (w, tasks) = store
        .worker_by_version(&env, &first.version)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.id, first.id);
    assert_eq!(
        tasks.iter().map(|t| t.slug.as_str()).collect::<Vec<_>>(),
        vec!["approver"]
    );
    let (_, tasks) = store
        .worker_by_version(&env, &second.version)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tasks.len(), 2);
    assert!(store
        .worker_by_version(&env, "19990101.1")
        .await
        .unwrap()
        .is_none());
    assert!(
        store
            .worker_by_version(&other, &first.version)
            .await
            .unwrap()
            .is_none(),
        "another environment's versions are its own"
    );
    assert!(store.queue_declared(&env, "shared").await.unwrap());
    assert!(!store.queue_declared(&env, "nope").await.unwrap());
    assert!(!store.queue_declared(&other, "shared").await.unwrap());
}
