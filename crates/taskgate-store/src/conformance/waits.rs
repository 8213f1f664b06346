//! Conformance cases: waits. A parent blocked on a child, a batch, a point in time or a token
//! continues exactly when everything it waits for is complete, with every result, whatever
//! order things happen in; timers fire once; a run that waits holds no slot; queue limits
//! hold per concurrency key.

use std::sync::Arc;

use chrono::Duration;
use serde_json::Value;
use taskgate_core::engine::waitpoint::{
    TokenStatus, WaitpointKind, WaitpointOutput, WaitpointStatus,
};
use taskgate_core::engine::{Completion, Event, ExecutionStatus, RunState, RunStatus};
use taskgate_core::ids::{new_id, new_worker_friendly_id, EnvironmentId, RunFriendlyId};
use taskgate_core::task_error::TaskRunError;

use super::engine::{prod_env, register, take, LIMIT};
use super::runs::plain;
use super::*;
use crate::*;

fn at(secs: i64) -> chrono::DateTime<chrono::Utc> {
    t0() + Duration::seconds(secs)
}

async fn queue(store: &dyn Store, env: &EnvironmentId, task: &str, now_secs: i64) -> Run {
    let state = RunState::triggered(at(now_secs), None, None, false);
    store
        .trigger_run(
            Run::triggered(env, task, &state, at(now_secs)),
            None,
            None,
            None,
            at(now_secs),
        )
        .await
        .unwrap()
        .run
}

/// Dequeues the next run of `worker` and starts its attempt: the run, executing.
async fn start_next(store: &dyn Store, env: &EnvironmentId, worker: &Worker, secs: i64) -> Run {
    let d = take(store, env, &worker.id, LIMIT, at(secs))
        .await
        .expect("a run to dequeue");
    let start = RunEvent {
        event: Event::StartAttempt,
        expected_snapshot: Some(d.run.snapshot_id.clone()),
        data: EventData::default(),
    };
    store
        .apply_run_event(env, &d.run.friendly_id, start, at(secs))
        .await
        .unwrap()
        .unwrap()
        .run
}

async fn succeed(
    store: &dyn Store,
    env: &EnvironmentId,
    run: &RunFriendlyId,
    output: &str,
    secs: i64,
) {
    let done = RunEvent {
        event: Event::Complete(Completion::Success),
        expected_snapshot: None,
        data: EventData {
            output: Some((output.into(), "application/json".into())),
            metadata: None,
        },
    };
    store
        .apply_run_event(env, run, done, at(secs))
        .await
        .unwrap()
        .unwrap();
}

async fn fail(store: &dyn Store, env: &EnvironmentId, run: &RunFriendlyId, secs: i64) {
    let error = TaskRunError::BuiltIn {
        name: "Error".into(),
        message: "child failed".into(),
        stack_trace: String::new(),
        causes: None,
    };
    let done = plain(Event::Complete(Completion::Failure {
        error,
        retry_delay_ms: None,
        jitter: 0.0,
    }));
    store
        .apply_run_event(env, run, done, at(secs))
        .await
        .unwrap()
        .unwrap();
}

async fn get(store: &dyn Store, env: &EnvironmentId, run: &Run) -> Run {
    store.get_run(env, &run.friendly_id).await.unwrap().unwrap()
}

/// A child of `parent` triggered with `triggerAndWait`.
async fn child_of(
    store: &dyn Store,
    env: &EnvironmentId,
    parent: &Run,
    task: &str,
    idempotency: Option<&str>,
    secs: i64,
) -> Triggered {
    let state = RunState::triggered(at(secs), None, None, false);
    let mut run = Run::triggered(env, task, &state, at(secs));
    run.parent_run_id = Some(parent.id.clone());
    run.resume_parent_on_completion = true;
    store
        .trigger(
            NewTrigger {
                run,
                idempotency: idempotency.map(|k| Idempotency {
                    key: k.into(),
                    user_key: None,
                    expires_at: at(86_400),
                }),
                one_time_use: None,
                request_key: None,
                wait: Some(ParentWait {
                    parent_run_id: parent.id.clone(),
                    batch: None,
                }),
                debounce: None,
            },
            at(secs),
        )
        .await
        .unwrap()
}

/// The waitpoints a continued run's latest snapshot hands its process.
fn handed_to(run: &Run) -> Vec<Value> {
    serde_json::from_str(run.completed_waitpoints.as_deref().unwrap_or("[]")).unwrap()
}

pub async fn a_child_finishing_continues_its_waiting_parent(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let w = register(&*store, &env, &["parent", "child"]).await;
    queue(&*store, &env, "parent", 0).await;
    let parent = start_next(&*store, &env, &w, 1).await;
    let child = child_of(&*store, &env, &parent, "child", None, 2).await.run;
    let waiting = get(&*store, &env, &parent).await;
    assert_eq!(
        (waiting.status, waiting.execution_status),
        (
            RunStatus::Executing,
            ExecutionStatus::ExecutingWithWaitpoints
        )
    );
    assert_ne!(waiting.snapshot_id, parent.snapshot_id, "a new snapshot");
    assert_eq!(child.parent_run_id.as_ref(), Some(&parent.id));
    let waits = store.run_waits(&parent.id).await.unwrap();
    assert_eq!(waits.len(), 1);
    assert_eq!(waits[0].waitpoint.kind, WaitpointKind::Run);
    assert_eq!(
        waits[0].waitpoint.completed_by_run.as_ref(),
        Some(&child.friendly_id)
    );
    // The parent holds no slot while it waits: with a limit of one, the child still runs.
    let one = DequeueLimits { concurrency: 1 };
    let d = take(&*store, &env, &w.id, one, at(3))
        .await
        .expect("the child runs");
    assert_eq!(d.run.friendly_id, child.friendly_id);
    let start = RunEvent {
        event: Event::StartAttempt,
        expected_snapshot: Some(d.run.snapshot_id.clone()),
        data: EventData::default(),
    };
    store
        .apply_run_event(&env, &child.friendly_id, start, at(3))
        .await
        .unwrap()
        .unwrap();
    let mut rx = store.subscribe();
    succeed(&*store, &env, &child.friendly_id, "{\"n\":1}", 4).await;
    let resumed = get(&*store, &env, &parent).await;
    assert_eq!(
        (
            resumed.execution_status,
            resumed.snapshot_description.as_str()
        ),
        (
            ExecutionStatus::Executing,
            "Run was continued, whilst still executing"
        )
    );
    let handed = handed_to(&resumed);
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0]["type"], "RUN");
    assert_eq!(
        handed[0]["completedByTaskRun"]["friendlyId"],
        child.friendly_id.to_string()
    );
    assert_eq!(handed[0]["output"], "{\"n\":1}");
    assert_eq!(handed[0]["outputIsError"], false);
    assert!(
        store.run_waits(&parent.id).await.unwrap().is_empty(),
        "edges go"
    );
    // The worker running the parent is told.
    let mut told = false;
    while let Ok(e) = rx.try_recv() {
        if let ChangeEvent::Run {
            friendly_id,
            notify_worker,
            ..
        } = e
        {
            told |= parent.friendly_id == friendly_id && notify_worker;
        }
    }
    assert!(told, "the continuation is a change its worker acts on");
    // The next snapshot carries nothing.
    let beat = store
        .apply_run_event(&env, &parent.friendly_id, plain(Event::Heartbeat), at(5))
        .await
        .unwrap()
        .unwrap()
        .run;
    assert!(
        beat.completed_waitpoints.is_some(),
        "a heartbeat makes no snapshot"
    );
    succeed(&*store, &env, &parent.friendly_id, "{}", 6).await;
    let done = get(&*store, &env, &parent).await;
    assert_eq!(done.completed_waitpoints, None);
}

pub async fn a_failed_or_finished_child_hands_its_parent_the_outcome(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let w = register(&*store, &env, &["parent", "child"]).await;
    queue(&*store, &env, "parent", 0).await;
    let parent = start_next(&*store, &env, &w, 1).await;
    let child = child_of(&*store, &env, &parent, "child", Some("k1"), 2)
        .await
        .run;
    let running = start_next(&*store, &env, &w, 3).await;
    assert_eq!(running.friendly_id, child.friendly_id);
    fail(&*store, &env, &child.friendly_id, 4).await;
    let resumed = get(&*store, &env, &parent).await;
    let handed = handed_to(&resumed);
    assert_eq!(handed[0]["outputIsError"], true);
    let error: TaskRunError = serde_json::from_str(handed[0]["output"].as_str().unwrap()).unwrap();
    assert!(
        matches!(error, TaskRunError::BuiltIn { ref message, .. } if message == "child failed")
    );
    // An idempotent triggerAndWait of a child that finished continues at once, with its
    // result (a failed run gives its key up, so this one succeeds).
    let second = child_of(&*store, &env, &resumed, "child", Some("k2"), 5)
        .await
        .run;
    start_next(&*store, &env, &w, 6).await;
    succeed(&*store, &env, &second.friendly_id, "\"second\"", 7).await;
    let resumed = get(&*store, &env, &parent).await;
    let again = child_of(&*store, &env, &resumed, "child", Some("k2"), 8).await;
    assert!(again.cached);
    assert_eq!(again.run.friendly_id, second.friendly_id);
    let resumed_again = get(&*store, &env, &parent).await;
    assert_eq!(resumed_again.execution_status, ExecutionStatus::Executing);
    assert_ne!(resumed_again.snapshot_id, resumed.snapshot_id);
    assert_eq!(handed_to(&resumed_again)[0]["output"], "\"second\"");
    // A parent that is not executing cannot wait.
    succeed(&*store, &env, &parent.friendly_id, "{}", 9).await;
    let state = RunState::triggered(at(7), None, None, false);
    let late = store
        .trigger(
            NewTrigger {
                run: Run::triggered(&env, "child", &state, at(7)),
                idempotency: None,
                one_time_use: None,
                request_key: None,
                wait: Some(ParentWait {
                    parent_run_id: parent.id.clone(),
                    batch: None,
                }),
                debounce: None,
            },
            at(7),
        )
        .await;
    assert!(matches!(
        late,
        Err(StoreError::Conflict {
            kind: ConflictKind::ParentRun
        })
    ));
}

pub async fn a_batch_continues_its_parent_once_sealed_and_every_run_finished(
    store: Arc<dyn Store>,
) {
    let env = prod_env(&*store).await;
    let w = register(&*store, &env, &["parent", "item"]).await;
    queue(&*store, &env, "parent", 0).await;
    let parent = start_next(&*store, &env, &w, 1).await;
    let b = Batch {
        id: new_id().into(),
        friendly_id: taskgate_core::ids::new_batch_friendly_id().into(),
        environment_id: env.clone(),
        run_count: 3,
        idempotency_key: Some("batch-key".into()),
        created_at: at(2),
        sealed: false,
        parent_run_id: Some(parent.id.clone()),
        resume_parent_on_completion: true,
    };
    let (batch, cached) = store.create_batch(b.clone(), None, at(2)).await.unwrap();
    assert!(!cached);
    let waiting = get(&*store, &env, &parent).await;
    assert_eq!(
        waiting.execution_status,
        ExecutionStatus::ExecutingWithWaitpoints
    );
    assert_eq!(waiting.snapshot_batch_id.as_ref(), Some(&batch.friendly_id));
    let mut items = Vec::new();
    for index in 0..3 {
        let state = RunState::triggered(at(3), None, None, false);
        let mut run = Run::triggered(&env, "item", &state, at(3));
        run.batch_id = Some(batch.friendly_id.clone());
        run.parent_run_id = Some(parent.id.clone());
        let t = store
            .trigger(
                NewTrigger {
                    run,
                    idempotency: None,
                    one_time_use: None,
                    request_key: None,
                    wait: Some(ParentWait {
                        parent_run_id: parent.id.clone(),
                        batch: Some((batch.friendly_id.clone(), index)),
                    }),
                    debounce: None,
                },
                at(3),
            )
            .await
            .unwrap();
        store
            .add_batch_item(&batch.id, index, &t.run.friendly_id)
            .await
            .unwrap();
        items.push(t.run.clone());
        // The first two items finish before the batch is sealed: the parent keeps waiting.
        if index < 2 {
            start_next(&*store, &env, &w, 4).await;
            if index == 0 {
                succeed(&*store, &env, &t.run.friendly_id, "\"zero\"", 5).await;
            } else {
                fail(&*store, &env, &t.run.friendly_id, 5).await;
            }
            let (_, sealed) = store.seal_batch(&batch.id, at(5)).await.unwrap();
            assert!(!sealed);
            assert_eq!(
                get(&*store, &env, &parent).await.execution_status,
                ExecutionStatus::ExecutingWithWaitpoints
            );
        }
    }
    let (count, sealed) = store.seal_batch(&batch.id, at(6)).await.unwrap();
    assert_eq!((count, sealed), (3, true));
    assert_eq!(
        get(&*store, &env, &parent).await.execution_status,
        ExecutionStatus::ExecutingWithWaitpoints,
        "one item is still to run"
    );
    start_next(&*store, &env, &w, 7).await;
    succeed(&*store, &env, &items[2].friendly_id, "\"two\"", 8).await;
    let resumed = get(&*store, &env, &parent).await;
    assert_eq!(resumed.execution_status, ExecutionStatus::Executing);
    assert_eq!(resumed.snapshot_batch_id.as_ref(), Some(&batch.friendly_id));
    let handed = handed_to(&resumed);
    let runs: Vec<_> = handed.iter().filter(|w| w["type"] == "RUN").collect();
    assert_eq!(runs.len(), 3);
    for (i, w) in runs.iter().enumerate() {
        assert_eq!(w["index"], i as i64, "items in order");
        assert_eq!(
            w["completedByTaskRun"]["batch"]["friendlyId"],
            batch.friendly_id.to_string()
        );
    }
    assert_eq!(runs[0]["output"], "\"zero\"");
    assert_eq!(runs[1]["outputIsError"], true);
    assert_eq!(runs[2]["output"], "\"two\"");
    assert_eq!(handed.iter().filter(|w| w["type"] == "BATCH").count(), 1);
    // The same batch again (its idempotency key) from the running parent: every result at
    // once, since every item has finished.
    let again = Batch {
        id: new_id().into(),
        friendly_id: taskgate_core::ids::new_batch_friendly_id().into(),
        ..b
    };
    let (cached_batch, cached) = store.create_batch(again, None, at(101)).await.unwrap();
    assert!(cached);
    assert_eq!(cached_batch.friendly_id, batch.friendly_id);
    let resumed = get(&*store, &env, &parent).await;
    assert_eq!(resumed.execution_status, ExecutionStatus::Executing);
    assert_eq!(
        handed_to(&resumed)
            .iter()
            .filter(|w| w["type"] == "RUN")
            .count(),
        3,
        "a cached batch hands every item"
    );
}

pub async fn points_in_time_fire_once_when_due(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let w = register(&*store, &env, &["sleeper"]).await;
    queue(&*store, &env, "sleeper", 0).await;
    let run = start_next(&*store, &env, &w, 1).await;
    let until = |secs: i64| {
        let mut w = Waitpoint::new(&env, WaitpointKind::DateTime, at(1));
        w.completed_after = Some(at(secs));
        w
    };
    let key = WaitpointIdempotency {
        key: "sleep-1".into(),
        expires_at: at(3600),
    };
    let blocked = store
        .block_run(
            &env,
            &run.friendly_id,
            WaitFor::DateTime {
                waitpoint: Box::new(until(20)),
                idempotency: Some(key.clone()),
            },
            at(1),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        blocked.run.execution_status,
        ExecutionStatus::ExecutingWithWaitpoints
    );
    assert_eq!(store.next_waitpoint_due().await.unwrap(), Some(at(20)));
    let early = store.fire_due_waitpoints(at(19), 100).await.unwrap();
    assert_eq!((early.completed, early.next_due), (0, Some(at(20))));
    // Two nodes firing at once: the timer fires once.
    let (a, b) = tokio::join!(
        store.fire_due_waitpoints(at(20), 100),
        store.fire_due_waitpoints(at(20), 100)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.completed + b.completed, 1);
    assert_eq!(a.continued + b.continued, 1);
    let resumed = get(&*store, &env, &run).await;
    assert_eq!(resumed.execution_status, ExecutionStatus::Executing);
    let handed = handed_to(&resumed);
    assert_eq!(handed[0]["type"], "DATETIME");
    assert_eq!(
        handed[0]["friendlyId"],
        blocked.waitpoint.friendly_id.to_string()
    );
    assert!(handed[0].get("output").is_none());
    assert_eq!(store.next_waitpoint_due().await.unwrap(), None);
    // The same key again: the first waitpoint, already complete, so the run does not wait.
    let again = store
        .block_run(
            &env,
            &run.friendly_id,
            WaitFor::DateTime {
                waitpoint: Box::new(until(500)),
                idempotency: Some(key),
            },
            at(21),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.waitpoint.friendly_id, blocked.waitpoint.friendly_id);
    assert_eq!(again.run.execution_status, ExecutionStatus::Executing);
    assert_ne!(
        again.run.snapshot_id, resumed.snapshot_id,
        "a new continuation"
    );
    // A run that is not executing cannot wait.
    let queued = queue(&*store, &env, "sleeper", 22).await;
    let refused = store
        .block_run(
            &env,
            &queued.friendly_id,
            WaitFor::DateTime {
                waitpoint: Box::new(until(30)),
                idempotency: None,
            },
            at(22),
        )
        .await
        .unwrap();
    assert!(matches!(refused, Err(WaitRefusal::Run(_))));
}

pub async fn tokens_complete_time_out_and_list(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let other_env = prod_env(&*store).await;
    let w = register(&*store, &env, &["approver"]).await;
    let token = |tags: &[&str], timeout: Option<i64>, secs: i64| {
        let mut t = Waitpoint::new(&env, WaitpointKind::Manual, at(secs));
        t.timeout_at = timeout.map(at);
        t.tags = tags.iter().map(|s| s.to_string()).collect();
        t
    };
    let (approval, cached) = store
        .create_token(
            token(&["user:1"], None, 1),
            Some(WaitpointIdempotency {
                key: "approve-1".into(),
                expires_at: at(3600),
            }),
            at(1),
        )
        .await
        .unwrap();
    assert!(!cached);
    let (same, cached) = store
        .create_token(
            token(&[], None, 2),
            Some(WaitpointIdempotency {
                key: "approve-1".into(),
                expires_at: at(3600),
            }),
            at(2),
        )
        .await
        .unwrap();
    assert!(cached && same.friendly_id == approval.friendly_id);
    let (expiring, _) = store
        .create_token(token(&["user:2"], Some(60), 3), None, at(3))
        .await
        .unwrap();
    queue(&*store, &env, "approver", 4).await;
    let run = start_next(&*store, &env, &w, 5).await;
    // Another environment's token is not there.
    assert!(matches!(
        store
            .block_run(
                &other_env,
                &run.friendly_id,
                WaitFor::Token(approval.friendly_id.clone()),
                at(5)
            )
            .await,
        Err(StoreError::NotFound) | Ok(Err(WaitRefusal::NoToken))
    ));
    store
        .block_run(
            &env,
            &run.friendly_id,
            WaitFor::Token(approval.friendly_id.clone()),
            at(6),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .complete_token(
            &other_env,
            &approval.friendly_id,
            WaitpointOutput::empty(),
            at(7)
        )
        .await
        .unwrap()
        .is_none());
    let packet = WaitpointOutput {
        data: Some("{\"json\":{\"ok\":true}}".into()),
        data_type: "application/super+json".into(),
        is_error: false,
    };
    let done = store
        .complete_token(&env, &approval.friendly_id, packet.clone(), at(8))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, WaitpointStatus::Completed);
    let resumed = get(&*store, &env, &run).await;
    let handed = handed_to(&resumed);
    assert_eq!(handed[0]["type"], "MANUAL");
    assert_eq!(handed[0]["outputType"], "application/super+json");
    // Completing again changes nothing.
    let again = store
        .complete_token(&env, &approval.friendly_id, WaitpointOutput::empty(), at(9))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.output, packet.data);
    // A token that times out resumes its waiter with the timeout error.
    store
        .block_run(
            &env,
            &run.friendly_id,
            WaitFor::Token(expiring.friendly_id.clone()),
            at(10),
        )
        .await
        .unwrap()
        .unwrap();
    let fired = store.fire_due_waitpoints(at(60), 100).await.unwrap();
    assert_eq!((fired.completed, fired.continued), (1, 1));
    let resumed = get(&*store, &env, &run).await;
    let handed = handed_to(&resumed);
    assert_eq!(handed[0]["outputIsError"], true);
    let out: Value = serde_json::from_str(handed[0]["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["code"], "TRIGGER_WAITPOINT_TIMEOUT");
    // Listing: newest first, filtered by status, tag and key, in pages both ways.
    let page = |limit| TokenPage {
        limit,
        after: None,
        before: None,
    };
    let all = store
        .list_tokens(&env, &TokenFilter::default(), &page(10))
        .await
        .unwrap();
    assert_eq!(
        all.iter()
            .map(|t| t.friendly_id.clone())
            .collect::<Vec<_>>(),
        vec![expiring.friendly_id.clone(), approval.friendly_id.clone()]
    );
    let by = |f: TokenFilter| {
        let store = store.clone();
        let env = env.clone();
        async move {
            store
                .list_tokens(&env, &f, &page(10))
                .await
                .unwrap()
                .into_iter()
                .map(|t| t.friendly_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        by(TokenFilter {
            statuses: vec![TokenStatus::TimedOut],
            ..Default::default()
        })
        .await,
        vec![expiring.friendly_id.clone()]
    );
    assert_eq!(
        by(TokenFilter {
            statuses: vec![TokenStatus::Completed],
            ..Default::default()
        })
        .await,
        vec![approval.friendly_id.clone()]
    );
    assert_eq!(
        by(TokenFilter {
            tags: vec!["user:1".into(), "nobody".into()],
            ..Default::default()
        })
        .await,
        vec![approval.friendly_id.clone()]
    );
    assert_eq!(
        by(TokenFilter {
            idempotency_key: Some("approve-1".into()),
            ..Default::default()
        })
        .await,
        vec![approval.friendly_id.clone()]
    );
    let first = store
        .list_tokens(&env, &TokenFilter::default(), &page(1))
        .await
        .unwrap();
    let after = TokenPage {
        limit: 1,
        after: Some((first[0].created_at, first[0].id.clone())),
        before: None,
    };
    let second = store
        .list_tokens(&env, &TokenFilter::default(), &after)
        .await
        .unwrap();
    assert_eq!(second[0].friendly_id, approval.friendly_id);
    let before = TokenPage {
        limit: 1,
        after: None,
        before: Some((second[0].created_at, second[0].id.clone())),
    };
    let back = store
        .list_tokens(&env, &TokenFilter::default(), &before)
        .await
        .unwrap();
    assert_eq!(back[0].friendly_id, expiring.friendly_id);
    assert!(store
        .list_tokens(&other_env, &TokenFilter::default(), &page(10))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .find_waitpoint(&approval.friendly_id)
            .await
            .unwrap()
            .map(|w| w.environment_id),
        Some(env.clone())
    );
}

pub async fn a_cancelled_waiting_run_stops_waiting(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let w = register(&*store, &env, &["parent", "child"]).await;
    queue(&*store, &env, "parent", 0).await;
    let parent = start_next(&*store, &env, &w, 1).await;
    let child = child_of(&*store, &env, &parent, "child", None, 2).await.run;
    let cancelled = store
        .apply_run_event(
            &env,
            &parent.friendly_id,
            plain(Event::Cancel { finalize: false }),
            at(3),
        )
        .await
        .unwrap()
        .unwrap()
        .run;
    assert_eq!(
        (cancelled.status, cancelled.execution_status),
        (RunStatus::Canceled, ExecutionStatus::PendingCancel)
    );
    assert!(store.run_waits(&parent.id).await.unwrap().is_empty());
    let children = store.child_runs(&env, &parent.id, true, 10).await.unwrap();
    assert_eq!(
        children
            .iter()
            .map(|r| r.friendly_id.clone())
            .collect::<Vec<_>>(),
        vec![child.friendly_id.clone()]
    );
    start_next(&*store, &env, &w, 4).await;
    succeed(&*store, &env, &child.friendly_id, "{}", 5).await;
    let still = get(&*store, &env, &parent).await;
    assert_eq!(still.execution_status, ExecutionStatus::PendingCancel);
    assert!(store
        .child_runs(&env, &parent.id, true, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn register_with_queue(
    store: &dyn Store,
    env: &EnvironmentId,
    tasks: &[(&str, Option<&str>)],
    queues: Vec<QueueLimit>,
) -> Worker {
    store
        .register_worker(
            NewWorker {
                id: new_id().into(),
                friendly_id: new_worker_friendly_id().into(),
                environment_id: env.clone(),
                content_hash: "q".into(),
                sdk_version: None,
                cli_version: None,
                runtime: None,
                runtime_version: None,
                tasks: tasks
                    .iter()
                    .map(|(slug, queue)| WorkerTask {
                        slug: slug.to_string(),
                        file_path: format!("src/{slug}.ts"),
                        export_name: None,
                        retry_config: None,
                        queue_name: queue.map(str::to_string),
                        machine: None,
                        max_duration_seconds: None,
                        ttl: None,
                        payload_schema: None,
                        description: None,
                        trigger_source: None,
                        schedule: None,
                    })
                    .collect(),
                queues,
                deployment_id: None,
            },
            t0(),
        )
        .await
        .unwrap()
}

pub async fn queue_limits_hold_per_concurrency_key_and_not_for_waiting_runs(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let w = register_with_queue(
        &*store,
        &env,
        &[
            ("solo", None),
            ("shared-a", Some("shared")),
            ("shared-b", Some("shared")),
        ],
        vec![
            QueueLimit {
                name: "task/solo".into(),
                concurrency_limit: Some(1),
            },
            QueueLimit {
                name: "shared".into(),
                concurrency_limit: Some(1),
            },
        ],
    )
    .await;
    let first = queue(&*store, &env, "solo", 0).await;
    queue(&*store, &env, "solo", 1).await;
    let taken = start_next(&*store, &env, &w, 2).await;
    assert_eq!(taken.friendly_id, first.friendly_id);
    assert!(
        take(&*store, &env, &w.id, LIMIT, at(3)).await.is_none(),
        "the queue holds its one run"
    );
    // A run that waits gives its queue's slot up.
    store
        .block_run(
            &env,
            &taken.friendly_id,
            WaitFor::DateTime {
                waitpoint: Box::new({
                    let mut w = Waitpoint::new(&env, WaitpointKind::DateTime, at(3));
                    w.completed_after = Some(at(60));
                    w
                }),
                idempotency: None,
            },
            at(3),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(take(&*store, &env, &w.id, LIMIT, at(4)).await.is_some());
    // Two tasks sharing a queue share its limit; each concurrency key has a limit of its own.
    let keyed = |task: &'static str, key: Option<&'static str>, secs: i64| {
        let store = store.clone();
        let env = env.clone();
        async move {
            let state = RunState::triggered(at(secs), None, None, false);
            let mut run = Run::triggered(&env, task, &state, at(secs));
            run.concurrency_key = key.map(str::to_string);
            store
                .trigger_run(run, None, None, None, at(secs))
                .await
                .unwrap()
                .run
        }
    };
    keyed("shared-a", Some("tenant-1"), 10).await;
    keyed("shared-b", Some("tenant-1"), 11).await;
    keyed("shared-b", Some("tenant-2"), 12).await;
    let a = take(&*store, &env, &w.id, LIMIT, at(13)).await.unwrap().run;
    assert_eq!(a.concurrency_key.as_deref(), Some("tenant-1"));
    assert_eq!(
        a.queue.as_deref(),
        Some("shared"),
        "a run holds its task's queue"
    );
    let b = take(&*store, &env, &w.id, LIMIT, at(14)).await.unwrap().run;
    assert_eq!(
        b.concurrency_key.as_deref(),
        Some("tenant-2"),
        "tenant-1's second run waits for its key's slot"
    );
    assert!(take(&*store, &env, &w.id, LIMIT, at(15)).await.is_none());
}

pub async fn queues_count_their_runs_pause_and_keep_overrides(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let other = prod_env(&*store).await;
    let declare = |shared: u32| {
        vec![
            QueueLimit {
                name: "task/solo".into(),
                concurrency_limit: None,
            },
            QueueLimit {
                name: "shared".into(),
                concurrency_limit: Some(shared),
            },
        ]
    };
    let tasks: &[(&str, Option<&str>)] = &[("solo", None), ("fan", Some("shared"))];
    let w = register_with_queue(&*store, &env, tasks, declare(2)).await;
    let (_, current) = store.current_worker(&env).await.unwrap().unwrap();
    // Two runs of `fan` (counted in `shared` although they name no queue yet), one started.
    queue(&*store, &env, "fan", 0).await;
    queue(&*store, &env, "fan", 1).await;
    queue(&*store, &env, "solo", 2).await;
    let started = start_next(&*store, &env, &w, 3).await;
    assert_eq!(started.task_identifier, "fan");
    let (list, total) = store.list_queues(&env, &current, 0, 10).await.unwrap();
    assert_eq!(total, 2);
    let names: Vec<_> = list.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, vec!["shared", "task/solo"]);
    let shared = &list[0];
    assert!(shared.friendly_id.starts_with("queue_"));
    assert_eq!((shared.running, shared.queued), (1, 1));
    assert_eq!((list[1].running, list[1].queued), (0, 1));
    assert_eq!(shared.concurrency_limit, Some(2));
    assert!(!shared.is_task_queue() && list[1].is_task_queue());
    let (page, _) = store.list_queues(&env, &current, 1, 10).await.unwrap();
    assert_eq!(
        page.len(),
        1,
        "the second page starts after the first queue"
    );
    let by_id = store
        .get_queue(&env, &current, QueueRef::Id(&shared.friendly_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&by_id, shared);
    assert!(
        store
            .get_queue(&other, &current, QueueRef::Id(&shared.friendly_id))
            .await
            .unwrap()
            .is_none(),
        "another environment does not see the queue"
    );
    assert!(store
        .change_queue(
            &other,
            &current,
            QueueRef::Name("shared"),
            QueueChange::Pause,
            at(4)
        )
        .await
        .unwrap()
        .is_none());
    // A paused queue gives nothing to a dequeue; the others still do.
    let paused = store
        .change_queue(
            &env,
            &current,
            QueueRef::Name("task/solo"),
            QueueChange::Pause,
            at(4),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(paused.paused);
    let next = take(&*store, &env, &w.id, LIMIT, at(5)).await.unwrap().run;
    assert_eq!(
        next.task_identifier, "fan",
        "the paused queue's run is skipped"
    );
    assert!(take(&*store, &env, &w.id, LIMIT, at(6)).await.is_none());
    store
        .change_queue(
            &env,
            &current,
            QueueRef::Name("task/solo"),
            QueueChange::Resume,
            at(7),
        )
        .await
        .unwrap()
        .unwrap();
    let solo = take(&*store, &env, &w.id, LIMIT, at(8)).await.unwrap().run;
    assert_eq!(solo.task_identifier, "solo");
    // An override holds over later registrations until it is reset.
    let admin = user(&*store, "queues-admin@example.com").await;
    let over = store
        .change_queue(
            &env,
            &current,
            QueueRef::Id(&shared.friendly_id),
            QueueChange::Override {
                limit: 5,
                by: Some(admin.id.clone().into()),
            },
            at(9),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(over.concurrency_limit, Some(5));
    assert_eq!(over.declared_limit, Some(2));
    assert_eq!(over.overridden_at, Some(at(9)));
    assert_eq!(
        over.overridden_by.as_deref(),
        Some("queues-admin@example.com")
    );
    register_with_queue(&*store, &env, tasks, declare(3)).await;
    let kept = store
        .get_queue(&env, &current, QueueRef::Name("shared"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (kept.concurrency_limit, kept.declared_limit),
        (Some(5), Some(3))
    );
    let reset = store
        .change_queue(
            &env,
            &current,
            QueueRef::Name("shared"),
            QueueChange::Reset,
            at(10),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reset.concurrency_limit, Some(3));
    assert_eq!((reset.overridden_at, reset.overridden_by), (None, None));
    assert_eq!(
        reset.friendly_id, shared.friendly_id,
        "a queue keeps its id"
    );
}

pub async fn input_stream_waits_complete_with_the_next_record(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let r = store
        .trigger_run(
            super::runs::new_run(&env, "asker", at(0), &[]),
            None,
            None,
            None,
            at(0),
        )
        .await
        .unwrap()
        .run;
    let stream = "$trigger.input:answers";
    let wait = |after: i64, secs: i64| {
        let store = store.clone();
        let (env, run) = (env.clone(), r.id.clone());
        async move {
            let mut t = Waitpoint::new(&env, WaitpointKind::Manual, at(secs));
            t.timeout_at = Some(at(secs + 3600));
            store
                .create_input_stream_wait(t, &run, "answers", after, None, at(secs))
                .await
                .unwrap()
                .0
        }
    };
    let output = |v: &str| WaitpointOutput {
        data: Some(v.into()),
        data_type: "application/json".into(),
        is_error: false,
    };
    // Nothing sent: pending, until a record comes to that stream.
    let pending = wait(0, 1).await;
    assert_eq!(pending.status, WaitpointStatus::Pending);
    assert_eq!(
        store
            .complete_input_stream_waits(&r.id, "other", output("1"), at(2))
            .await
            .unwrap(),
        0,
        "another stream's record"
    );
    assert_eq!(
        store
            .complete_input_stream_waits(&r.id, "answers", output("{\"n\":1}"), at(3))
            .await
            .unwrap(),
        1
    );
    let done = store
        .get_waitpoint(&env, &pending.friendly_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, WaitpointStatus::Completed);
    assert_eq!(done.output.as_deref(), Some("{\"n\":1}"));
    // Completed once: a second record finds no wait.
    assert_eq!(
        store
            .complete_input_stream_waits(&r.id, "answers", output("2"), at(4))
            .await
            .unwrap(),
        0
    );
    // Records already in the stream: a wait after chunk 1 completes at once with chunk 2's
    // data; one after chunk 2 waits.
    for data in ["{\"data\":{\"n\":1}}", "{\"data\":\"two\"}"] {
        store
            .append_stream_chunk(&r.id, stream, data, at(5))
            .await
            .unwrap();
    }
    let at_once = wait(1, 6).await;
    assert_eq!(at_once.status, WaitpointStatus::Completed);
    assert_eq!(at_once.output.as_deref(), Some("\"two\""));
    assert_eq!(wait(2, 7).await.status, WaitpointStatus::Pending);
}
