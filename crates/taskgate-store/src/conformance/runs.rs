//! Conformance cases: runs, batches and streams.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use taskgate_core::engine::{EngineError, Event, ExecutionStatus, RunState, RunStatus};
use taskgate_core::env::EnvType;
use taskgate_core::ids::{new_id, EnvironmentId, RunFriendlyId};

use super::*;
use crate::*;

pub(super) fn new_run(env_id: &EnvironmentId, task: &str, at: DateTime<Utc>, tags: &[&str]) -> Run {
    let state = RunState::triggered(at, None, None, false);
    Run {
        payload: Some("{\"a\":1}".into()),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..Run::triggered(env_id, task, &state, at)
    }
}

async fn prod_env(store: &dyn Store) -> EnvironmentId {
    let (_owner, _org, project) = fixture(store).await;
    store
        .find_root_environment(&project.id, EnvType::Production, None)
        .await
        .unwrap()
        .unwrap()
        .id
}

pub async fn runs_trigger_with_idempotency_and_one_time_tokens(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let idem = |exp| Idempotency {
        key: "k1".into(),
        user_key: Some("mine".into()),
        expires_at: exp,
    };
    let first = store
        .trigger_run(
            new_run(&env, "email", t0(), &["a"]),
            Some(idem(t0() + Duration::days(1))),
            None,
            None,
            t0(),
        )
        .await
        .unwrap();
    assert!(!first.cached);
    let again = store
        .trigger_run(
            new_run(&env, "email", t0(), &[]),
            Some(idem(t0() + Duration::days(1))),
            None,
            None,
            t0(),
        )
        .await
        .unwrap();
    assert!(again.cached);
    assert_eq!(again.run.friendly_id, first.run.friendly_id);
    assert_eq!(again.run.idempotency_key_user.as_deref(), Some("mine"));
    // Another task with the same key is another run.
    let other = store
        .trigger_run(
            new_run(&env, "sms", t0(), &[]),
            Some(idem(t0() + Duration::days(1))),
            None,
            None,
            t0(),
        )
        .await
        .unwrap();
    assert!(!other.cached);
    // An expired key is released to a new run.
    let later = t0() + Duration::days(2);
    let fresh = store
        .trigger_run(
            new_run(&env, "email", later, &[]),
            Some(idem(later + Duration::days(1))),
            None,
            None,
            later,
        )
        .await
        .unwrap();
    assert!(!fresh.cached);
    assert_ne!(fresh.run.friendly_id, first.run.friendly_id);
    // A one-time token works once.
    let once = store
        .trigger_run(
            new_run(&env, "email", t0(), &[]),
            None,
            Some("hash-1".into()),
            None,
            t0(),
        )
        .await;
    let once = once.unwrap();
    assert!(!once.cached, "the token's first use triggers a run");
    let twice = store
        .trigger_run(
            new_run(&env, "email", t0(), &[]),
            None,
            Some("hash-1".into()),
            None,
            t0(),
        )
        .await;
    assert!(
        matches!(
            twice,
            Err(StoreError::Conflict {
                kind: ConflictKind::OneTimeUseToken
            })
        ),
        "{twice:?}"
    );
    let got = store
        .get_run(&env, &first.run.friendly_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.tags, vec!["a".to_string()]);
    assert!(
        store
            .get_run(&"other-env".into(), &first.run.friendly_id)
            .await
            .unwrap()
            .is_none(),
        "runs are per environment"
    );
}

pub async fn retried_requests_get_their_first_run(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let key = |hash: &str, expires_at| RequestKey {
        hash: hash.into(),
        expires_at,
    };
    // One attempt of a trigger request, at `now`.
    let attempt = |task: &str, one_time: Option<&str>, rk: RequestKey, now| {
        store.trigger_run(
            new_run(&env, task, now, &[]),
            None,
            one_time.map(str::to_string),
            Some(rk),
            now,
        )
    };
    let window = t0() + Duration::hours(1);
    // The first attempt spends a one-time token; its retry must not be refused for that.
    let first = attempt("email", Some("otu-1"), key("request-1", window), t0())
        .await
        .unwrap();
    let retry = attempt(
        "email",
        Some("otu-1"),
        key("request-1", window),
        t0() + Duration::seconds(5),
    )
    .await
    .unwrap();
    assert_eq!(retry.run.friendly_id, first.run.friendly_id);
    assert!(
        !retry.cached,
        "a retried request is not an idempotency-key hit"
    );
    // Concurrent attempts of one request create one run between them.
    let attempts = (0..6).map(|_| {
        let store = store.clone();
        let env = env.clone();
        tokio::spawn(async move {
            store
                .trigger_run(
                    new_run(&env, "sms", t0(), &[]),
                    None,
                    None,
                    Some(RequestKey {
                        hash: "request-2".into(),
                        expires_at: t0() + Duration::hours(1),
                    }),
                    t0(),
                )
                .await
                .unwrap()
                .run
                .friendly_id
        })
    });
    let mut ids = Vec::new();
    for a in attempts {
        ids.push(a.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1, "one run for one request: {ids:?}");
    // Past the window the key starts over with a new run.
    let later = window + Duration::seconds(1);
    let next_window = later + Duration::hours(1);
    let fresh = attempt("email", None, key("request-1", next_window), later)
        .await
        .unwrap();
    assert_ne!(fresh.run.friendly_id, first.run.friendly_id);
    let again = attempt("email", None, key("request-1", next_window), later)
        .await
        .unwrap();
    assert_eq!(again.run.friendly_id, fresh.run.friendly_id);
}

/// Pages of `filter` read newest first, then the same runs read back oldest first with
/// `before`, in pages of `limit`.
async fn page_through(
    store: &dyn Store,
    env: &EnvironmentId,
    filter: &RunFilter,
    limit: u32,
) -> Vec<RunFriendlyId> {
    let mut seen: Vec<Run> = Vec::new();
    loop {
        let rows = store
            .list_runs(
                env,
                filter,
                &RunPage {
                    limit,
                    after: seen.last().map(|r| (r.created_at, r.id.clone())),
                    before: None,
                },
            )
            .await
            .unwrap();
        if rows.is_empty() {
            break;
        }
        seen.extend(rows);
    }
    // Backwards from the oldest: each page comes newest first, pages from older to newer.
    let mut back: Vec<Run> = Vec::new();
    let mut cursor = seen.last().map(|r| (r.created_at, r.id.clone()));
    while let Some(c) = cursor.clone() {
        let rows = store
            .list_runs(
                env,
                filter,
                &RunPage {
                    limit,
                    after: None,
                    before: Some(c),
                },
            )
            .await
            .unwrap();
        cursor = rows.first().map(|r| (r.created_at, r.id.clone()));
        back.splice(0..0, rows);
    }
    let ids: Vec<RunFriendlyId> = seen.iter().map(|r| r.friendly_id.clone()).collect();
    let mut expected_back = ids.clone();
    expected_back.pop();
    assert_eq!(
        back.iter()
            .map(|r| r.friendly_id.clone())
            .collect::<Vec<_>>(),
        expected_back,
        "paging back gives the same runs"
    );
    ids
}

/// A tag carried by few runs is read from the tags' index, one carried by many by walking the
/// environment's runs: both give the same pages, each run once, only this environment's.
pub async fn runs_list_by_tag_alike_whether_few_or_many_runs_carry_it(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let mut common = Vec::new();
    let mut rare = Vec::new();
    for i in 0..2_100 {
        let tags: &[&str] = if i % 100 == 7 {
            &["common", "rare"]
        } else {
            &["common"]
        };
        let r = store
            .trigger_run(
                new_run(&env, "t", t0() + Duration::seconds(i / 3), tags),
                None,
                None,
                None,
                t0(),
            )
            .await
            .unwrap();
        if i % 100 == 7 {
            rare.push(r.run.friendly_id.clone());
        }
        common.push(r.run);
    }
    // Newest first; runs of the same second by id, descending.
    common.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    let common: Vec<RunFriendlyId> = common.into_iter().map(|r| r.friendly_id).collect();
    let rare: Vec<RunFriendlyId> = common
        .iter()
        .filter(|id| rare.contains(id))
        .cloned()
        .collect();
    // The rare tag in another environment too: its runs are not this one's.
    let other = prod_env(&*store).await;
    store
        .trigger_run(
            new_run(&other, "t", t0(), &["rare"]),
            None,
            None,
            None,
            t0(),
        )
        .await
        .unwrap();

    let by = |tags: &[&str]| RunFilter {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    };
    assert_eq!(page_through(&*store, &env, &by(&["rare"]), 7).await, rare);
    assert_eq!(
        page_through(&*store, &env, &by(&["rare", "nowhere"]), 7).await,
        rare,
        "a run with one of the tags"
    );
    assert_eq!(
        page_through(&*store, &env, &by(&["common", "rare"]), 250).await,
        common,
        "a run with both tags, once"
    );
    assert!(page_through(&*store, &env, &by(&["nowhere"]), 7)
        .await
        .is_empty());
}

pub async fn runs_list_in_pages_with_filters(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let task = if i % 2 == 0 { "even" } else { "odd" };
        let tags: &[&str] = if i == 4 { &["vip"] } else { &[] };
        let r = store
            .trigger_run(
                new_run(&env, task, t0() + Duration::seconds(i), tags),
                None,
                None,
                None,
                t0(),
            )
            .await
            .unwrap();
        ids.push(r.run.friendly_id);
    }
    ids.reverse();
    let page = |after: Option<&Run>| RunPage {
        limit: 2,
        after: after.map(|r| (r.created_at, r.id.clone())),
        before: None,
    };
    let mut seen = Vec::new();
    let mut last: Option<Run> = None;
    loop {
        let rows = store
            .list_runs(&env, &RunFilter::default(), &page(last.as_ref()))
            .await
            .unwrap();
        if rows.is_empty() {
            break;
        }
        seen.extend(rows.iter().map(|r| r.friendly_id.clone()));
        last = rows.last().cloned();
    }
    assert_eq!(seen, ids, "newest first, each once");
    let evens = RunFilter {
        task_identifiers: vec!["even".into()],
        ..Default::default()
    };
    assert_eq!(
        store
            .list_runs(
                &env,
                &evens,
                &RunPage {
                    limit: 10,
                    after: None,
                    before: None
                }
            )
            .await
            .unwrap()
            .len(),
        3
    );
    let vip = RunFilter {
        tags: vec!["vip".into()],
        ..Default::default()
    };
    assert_eq!(
        store
            .list_runs(
                &env,
                &vip,
                &RunPage {
                    limit: 10,
                    after: None,
                    before: None
                }
            )
            .await
            .unwrap()
            .len(),
        1
    );
    let window = RunFilter {
        created_from: Some(t0() + Duration::seconds(3)),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_runs(
                &env,
                &window,
                &RunPage {
                    limit: 10,
                    after: None,
                    before: None
                }
            )
            .await
            .unwrap()
            .len(),
        2
    );
    // Paging backwards from the oldest returns the newer ones, in newest-first order.
    let all = store
        .list_runs(
            &env,
            &RunFilter::default(),
            &RunPage {
                limit: 10,
                after: None,
                before: None,
            },
        )
        .await
        .unwrap();
    let oldest = all.last().unwrap();
    let back = RunPage {
        limit: 2,
        after: None,
        before: Some((oldest.created_at, oldest.id.clone())),
    };
    let newer: Vec<RunFriendlyId> = store
        .list_runs(&env, &RunFilter::default(), &back)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.friendly_id)
        .collect();
    assert_eq!(newer, ids[2..4].to_vec());
}

/// An event through [`RunStore::apply_run_event`] with no snapshot check and no data.
pub(super) fn plain(event: Event) -> RunEvent {
    RunEvent {
        event,
        expected_snapshot: None,
        data: EventData::default(),
    }
}

pub async fn runs_change_state_once_and_stop_when_final(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let mut rx = store.subscribe();
    let r = store
        .trigger_run(new_run(&env, "t", t0(), &[]), None, None, None, t0())
        .await
        .unwrap()
        .run;
    let at = t0() + Duration::seconds(5);
    let cancel = || plain(Event::Cancel { finalize: false });
    let done = store
        .apply_run_event(&env, &r.friendly_id, cancel(), at)
        .await
        .unwrap()
        .unwrap()
        .run;
    assert_eq!(
        (
            done.status,
            done.execution_status,
            done.completed_at,
            done.version
        ),
        (RunStatus::Canceled, ExecutionStatus::Finished, Some(at), 2)
    );
    assert_ne!(done.snapshot_id, r.snapshot_id, "a new snapshot");
    let stored = store.get_run(&env, &r.friendly_id).await.unwrap().unwrap();
    assert_eq!(stored, done, "what was answered is what was stored");
    assert_eq!(
        store
            .apply_run_event(&env, &r.friendly_id, cancel(), at)
            .await
            .unwrap()
            .err(),
        Some(Refusal::Engine(EngineError::AlreadyFinished)),
        "a final run does not change"
    );
    assert!(matches!(
        store
            .apply_run_event(&env, &"run_nope".into(), cancel(), at)
            .await,
        Err(StoreError::NotFound)
    ));
    let other = store
        .trigger_run(new_run(&env, "t", t0(), &[]), None, None, None, t0())
        .await
        .unwrap()
        .run;
    let stale = RunEvent {
        expected_snapshot: Some("snapshot_old".into()),
        ..cancel()
    };
    assert_eq!(
        store
            .apply_run_event(&env, &other.friendly_id, stale, at)
            .await
            .unwrap()
            .err(),
        Some(Refusal::StaleSnapshot {
            latest: other.snapshot_id.to_string()
        })
    );
    let mut versions = Vec::new();
    while let Ok(Ok(ev)) =
        tokio::time::timeout(std::time::Duration::from_millis(500), rx.recv()).await
    {
        if let ChangeEvent::Run {
            run_id, version, ..
        } = ev
        {
            if r.id == run_id {
                versions.push(version);
            }
        }
        if versions.len() == 2 {
            break;
        }
    }
    assert_eq!(versions, vec![1, 2], "each change published once, in order");
}

pub async fn due_runs_start_or_expire(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let delayed_state = RunState::triggered(t0(), Some(t0() + Duration::minutes(1)), None, false);
    let delayed = Run {
        delay_until: Some(t0() + Duration::minutes(1)),
        ..Run::triggered(&env, "t", &delayed_state, t0())
    };
    let ttl_state = RunState::triggered(t0(), None, Some(t0() + Duration::minutes(5)), false);
    let ttl = Run::triggered(&env, "t", &ttl_state, t0());
    let d = store
        .trigger_run(delayed, None, None, None, t0())
        .await
        .unwrap()
        .run;
    let e = store
        .trigger_run(ttl, None, None, None, t0())
        .await
        .unwrap()
        .run;
    assert!(store.advance_due_runs(t0()).await.unwrap().is_empty());
    let moved = store
        .advance_due_runs(t0() + Duration::minutes(2))
        .await
        .unwrap();
    assert_eq!(
        moved
            .iter()
            .map(|r| (r.friendly_id.as_str(), r.status))
            .collect::<Vec<_>>(),
        vec![(d.friendly_id.as_str(), RunStatus::Pending)]
    );
    let expired = store
        .advance_due_runs(t0() + Duration::minutes(6))
        .await
        .unwrap();
    assert_eq!(expired.len(), 1);
    let got = store.get_run(&env, &e.friendly_id).await.unwrap().unwrap();
    assert_eq!(got.status, RunStatus::Expired);
    assert!(got.expired_at.is_some() && got.completed_at.is_some());
    assert!(
        store
            .advance_due_runs(t0() + Duration::days(1))
            .await
            .unwrap()
            .is_empty(),
        "nothing is due any more"
    );
}

pub async fn streams_append_and_resume(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let r = store
        .trigger_run(new_run(&env, "t", t0(), &[]), None, None, None, t0())
        .await
        .unwrap()
        .run;
    for (i, chunk) in ["one", "two", "three"].iter().enumerate() {
        assert_eq!(
            store
                .append_stream_chunk(&r.id, "out", chunk, t0())
                .await
                .unwrap(),
            i as i64 + 1
        );
    }
    store
        .append_stream_chunk(&r.id, "other", "x", t0())
        .await
        .unwrap();
    let all: Vec<String> = store
        .read_stream(&r.id, "out", 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.data)
        .collect();
    assert_eq!(all, vec!["one", "two", "three"]);
    let rest = store.read_stream(&r.id, "out", 2, 100).await.unwrap();
    assert_eq!(
        (rest.len(), rest[0].seq, rest[0].data.as_str()),
        (1, 3, "three")
    );
    assert_eq!(
        store.read_stream(&r.id, "out", 0, 2).await.unwrap().len(),
        2
    );
}

/// A one-time token creates one batch; its second use is refused even when the batch would be
/// an idempotent hit, and the refused attempt creates nothing.
pub async fn batches_spend_one_time_tokens(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let batch = |key: &str| Batch {
        id: new_id().into(),
        friendly_id: taskgate_core::ids::new_batch_friendly_id().into(),
        environment_id: env.clone(),
        run_count: 1,
        idempotency_key: Some(key.into()),
        created_at: t0(),
        sealed: false,
        parent_run_id: None,
        resume_parent_on_completion: false,
    };
    let first = batch("k1");
    let (created, cached) = store
        .create_batch(first.clone(), Some("marker-1".into()), t0())
        .await
        .unwrap();
    assert_eq!(
        (created.friendly_id.as_str(), cached),
        (first.friendly_id.as_str(), false)
    );
    for again in [batch("k1"), batch("k2")] {
        let refused = store
            .create_batch(again.clone(), Some("marker-1".into()), t0())
            .await;
        assert!(
            matches!(
                refused,
                Err(StoreError::Conflict {
                    kind: ConflictKind::OneTimeUseToken
                })
            ),
            "{refused:?}"
        );
        assert_eq!(
            store.get_batch(&env, &again.friendly_id).await.unwrap(),
            None
        );
    }
    let (_, cached) = store
        .create_batch(batch("k3"), Some("marker-2".into()), t0())
        .await
        .unwrap();
    assert!(!cached, "another token creates its own batch");
}

pub async fn batches_dedupe_items_and_seal(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let b = Batch {
        id: new_id().into(),
        friendly_id: taskgate_core::ids::new_batch_friendly_id().into(),
        environment_id: env.clone(),
        run_count: 2,
        idempotency_key: Some("bk".into()),
        created_at: t0(),
        sealed: false,
        parent_run_id: None,
        resume_parent_on_completion: false,
    };
    let (created, cached) = store.create_batch(b.clone(), None, t0()).await.unwrap();
    assert!(!cached);
    let (again, cached) = store
        .create_batch(
            Batch {
                id: new_id().into(),
                friendly_id: "batch_other".into(),
                ..b.clone()
            },
            None,
            t0(),
        )
        .await
        .unwrap();
    assert!(cached && again.friendly_id == created.friendly_id);
    assert!(store
        .add_batch_item(&created.id, 0, &"run_a".into())
        .await
        .unwrap());
    assert!(
        !store
            .add_batch_item(&created.id, 0, &"run_a".into())
            .await
            .unwrap(),
        "duplicate index"
    );
    assert_eq!(
        store.seal_batch(&created.id, t0()).await.unwrap(),
        (1, false)
    );
    assert!(store
        .add_batch_item(&created.id, 1, &"run_b".into())
        .await
        .unwrap());
    assert_eq!(
        store.seal_batch(&created.id, t0()).await.unwrap(),
        (2, true)
    );
    assert!(
        store
            .get_batch(&env, &created.friendly_id)
            .await
            .unwrap()
            .unwrap()
            .sealed
    );
}

/// Fifty triggers racing with one idempotency key create one run; every other answers with
/// it, as a cached hit (on PostgreSQL the losers' inserts meet the unique index).
pub async fn concurrent_idempotent_triggers_share_one_run(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let attempts = (0..50).map(|_| {
        let (store, env) = (store.clone(), env.clone());
        tokio::spawn(async move {
            store
                .trigger_run(
                    new_run(&env, "email", t0(), &[]),
                    Some(Idempotency {
                        key: "race".into(),
                        user_key: None,
                        expires_at: t0() + Duration::days(1),
                    }),
                    None,
                    None,
                    t0(),
                )
                .await
        })
    });
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for a in futures::future::join_all(attempts).await {
        let triggered = a
            .unwrap()
            .expect("every racer is answered, none with a conflict");
        created += usize::from(!triggered.cached);
        ids.insert(triggered.run.friendly_id);
    }
    assert_eq!(created, 1, "one racer creates the run");
    assert_eq!(ids.len(), 1, "every racer answers with it");
}

/// The same for batches.
pub async fn concurrent_idempotent_batches_share_one_batch(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let attempts = (0..50).map(|_| {
        let (store, env) = (store.clone(), env.clone());
        tokio::spawn(async move {
            store
                .create_batch(
                    Batch {
                        id: new_id().into(),
                        friendly_id: taskgate_core::ids::new_batch_friendly_id().into(),
                        environment_id: env,
                        run_count: 1,
                        idempotency_key: Some("race".into()),
                        created_at: t0(),
                        sealed: false,
                        parent_run_id: None,
                        resume_parent_on_completion: false,
                    },
                    None,
                    t0(),
                )
                .await
        })
    });
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for a in futures::future::join_all(attempts).await {
        let (b, cached) = a
            .unwrap()
            .expect("every racer is answered, none with a conflict");
        created += usize::from(!cached);
        ids.insert(b.friendly_id);
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
}

pub async fn streaming_writers_resume_without_sending_a_line_twice(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let r = store
        .trigger_run(new_run(&env, "t", t0(), &[]), None, None, None, t0())
        .await
        .unwrap()
        .run;
    let lines = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        store.stream_writer_index(&r.id, "out", "w1").await.unwrap(),
        None
    );
    let at = store
        .append_stream_lines(&r.id, "out", "w1", 0, &lines(&["0", "1", "2"]), t0())
        .await
        .unwrap();
    assert_eq!(at, 2);
    // The connection dropped after line 2 arrived; the writer resumes from line 1 (it did
    // not hear back) and sends 1 to 4: only 3 and 4 are new.
    let at = store
        .append_stream_lines(&r.id, "out", "w1", 1, &lines(&["1", "2", "3", "4"]), t0())
        .await
        .unwrap();
    assert_eq!(at, 4);
    // A repeat of what it has already sent adds nothing.
    let at = store
        .append_stream_lines(&r.id, "out", "w1", 3, &lines(&["3"]), t0())
        .await
        .unwrap();
    assert_eq!(at, 4);
    // Another writer of the same stream counts its own lines.
    store
        .append_stream_lines(&r.id, "out", "w2", 0, &lines(&["a"]), t0())
        .await
        .unwrap();
    assert_eq!(
        store.stream_writer_index(&r.id, "out", "w1").await.unwrap(),
        Some(4)
    );
    assert_eq!(
        store.stream_writer_index(&r.id, "out", "w2").await.unwrap(),
        Some(0)
    );
    let chunks = store.read_stream(&r.id, "out", 0, 100).await.unwrap();
    let data: Vec<&str> = chunks.iter().map(|c| c.data.as_str()).collect();
    assert_eq!(data, vec!["0\n1\n2", "3\n4", "a"]);
    assert_eq!(
        chunks.iter().map(|c| c.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

/// A run as a debounced trigger at `secs` makes it: delayed by `delay` seconds.
fn debounced_run(env: &EnvironmentId, secs: i64, delay: i64, payload: &str, tags: &[&str]) -> Run {
    let at = t0() + Duration::seconds(secs);
    let state = RunState::triggered(at, Some(at + Duration::seconds(delay)), None, false);
    Run {
        payload: Some(payload.into()),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        delay_until: Some(at + Duration::seconds(delay)),
        ..Run::triggered(env, "digest", &state, at)
    }
}

pub async fn debounced_triggers_collapse_into_one_delayed_run(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let debounce = |key: &str, trailing: bool, max: Option<i64>| Debounce {
        key: key.into(),
        delay: Duration::seconds(5),
        max_delay: max.map(Duration::seconds),
        trailing,
    };
    let trigger = |run: Run, d: Debounce, secs: i64| {
        let store = store.clone();
        async move {
            store
                .trigger(
                    NewTrigger {
                        run,
                        idempotency: None,
                        one_time_use: None,
                        request_key: None,
                        wait: None,
                        debounce: Some(d),
                    },
                    t0() + Duration::seconds(secs),
                )
                .await
                .unwrap()
                .run
        }
    };
    // Leading: the first trigger's data stays; each trigger pushes the run 5 s past itself.
    let first = trigger(
        debounced_run(&env, 0, 5, "1", &["a"]),
        debounce("u1", false, None),
        0,
    )
    .await;
    let second = trigger(
        debounced_run(&env, 3, 5, "2", &["b"]),
        debounce("u1", false, None),
        3,
    )
    .await;
    assert_eq!(second.id, first.id, "one run for the key");
    let stored = store
        .get_run(&env, &first.friendly_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.payload.as_deref(), Some("1"));
    assert_eq!(stored.tags, vec!["a"]);
    assert_eq!(stored.available_at, Some(t0() + Duration::seconds(8)));
    assert_eq!(stored.delay_until, Some(t0() + Duration::seconds(8)));
    assert_eq!(stored.execution_status, ExecutionStatus::Delayed);
    // Another key, and another task with the same key, are runs of their own.
    let other = trigger(
        debounced_run(&env, 3, 5, "x", &[]),
        debounce("u2", false, None),
        3,
    )
    .await;
    assert_ne!(other.id, first.id);

    // Trailing: the last trigger's payload and tags replace the run's.
    let t1 = trigger(
        debounced_run(&env, 10, 5, "1", &["a"]),
        debounce("t", true, None),
        10,
    )
    .await;
    let t2 = trigger(
        debounced_run(&env, 12, 5, "2", &["b", "c"]),
        debounce("t", true, None),
        12,
    )
    .await;
    assert_eq!(t2.id, t1.id);
    let stored = store.get_run(&env, &t1.friendly_id).await.unwrap().unwrap();
    assert_eq!(stored.payload.as_deref(), Some("2"));
    assert_eq!(stored.tags, vec!["b", "c"]);
    let tagged = store
        .list_runs(
            &env,
            &RunFilter {
                tags: vec!["c".into()],
                ..Default::default()
            },
            &RunPage {
                limit: 10,
                after: None,
                before: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(tagged.len(), 1, "the tag index follows the run's tags");

    // maxDelay 8 s from the first trigger: a push to 9 s would pass it, so a new run starts
    // the key over and the first runs at its time.
    let m1 = trigger(
        debounced_run(&env, 20, 5, "1", &[]),
        debounce("m", false, Some(8)),
        20,
    )
    .await;
    let m2 = trigger(
        debounced_run(&env, 22, 5, "2", &[]),
        debounce("m", false, Some(8)),
        22,
    )
    .await;
    assert_eq!(m2.id, m1.id, "27 s is within 28 s");
    let m3 = trigger(
        debounced_run(&env, 24, 5, "3", &[]),
        debounce("m", false, Some(8)),
        24,
    )
    .await;
    assert_ne!(m3.id, m1.id, "29 s would pass 28 s");
    let kept = store.get_run(&env, &m1.friendly_id).await.unwrap().unwrap();
    assert_eq!(kept.available_at, Some(t0() + Duration::seconds(27)));

    // Once the key's run has left the delayed state, the next trigger makes a new run.
    let started = store
        .advance_due_runs(t0() + Duration::seconds(9))
        .await
        .unwrap();
    assert!(
        started.iter().any(|r| r.id == first.id),
        "the pushed run is due at 8 s"
    );
    let after = trigger(
        debounced_run(&env, 10, 5, "3", &[]),
        debounce("u1", false, None),
        10,
    )
    .await;
    assert_ne!(after.id, first.id);
}
