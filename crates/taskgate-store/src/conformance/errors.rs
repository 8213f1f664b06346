//! Conformance cases: error groups (ingestion with the run, listing, triage, history and the
//! lifecycle that reopens groups).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use taskgate_core::engine::{Completion, Event, RunState, RunStatus};
use taskgate_core::errors::{GroupStatus, Ignore};
use taskgate_core::task_error::TaskRunError;

use super::engine::{prod_env, register, take, LIMIT};
use super::runs::plain;
use super::*;
use crate::*;
use taskgate_core::ids::EnvironmentId;

/// A minute into the test's day (occurrences are bucketed by the minute).
fn at(minute: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minute)
}

fn string_error(raw: &str) -> Value {
    json!({ "type": "STRING_ERROR", "raw": raw })
}

async fn occur(
    store: &dyn Store,
    env: &EnvironmentId,
    task: &str,
    version: Option<&str>,
    error: &Value,
    minute: i64,
) -> String {
    store
        .record_error_occurrences(
            &[ErrorOccurrence {
                environment_id: env,
                task_identifier: task,
                task_version: version,
                error,
                run_created_at: at(minute),
            }],
            at(minute),
        )
        .await
        .unwrap()
        .remove(0)
        .expect("grouped")
}

fn query(from: i64, to: i64) -> ErrorListQuery {
    ErrorListQuery {
        task_identifiers: Vec::new(),
        versions: Vec::new(),
        statuses: Vec::new(),
        search: None,
        from: at(from),
        to: at(to),
        size: 25,
        cursor: None,
        now: at(to),
    }
}

async fn list(
    store: &dyn Store,
    env: &EnvironmentId,
    q: &ErrorListQuery,
) -> Vec<(String, String, i64)> {
    store
        .list_error_groups(env, q)
        .await
        .unwrap()
        .rows
        .into_iter()
        .map(|r| (r.group.task_identifier, r.group.fingerprint, r.count))
        .collect()
}

fn user(id: &str) -> TriageActor {
    TriageActor {
        user_id: Some(id.into()),
        credential_kind: "public_jwt".into(),
        credential_id: Some("env-1".into()),
    }
}

pub async fn a_run_that_fails_for_good_is_one_occurrence_of_its_group(store: Arc<dyn Store>) {
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
    let fail = || {
        plain(Event::Complete(Completion::Failure {
            error: TaskRunError::String {
                raw: "boom for user 12345".into(),
            },
            retry_delay_ms: Some(100),
            jitter: 0.0,
        }))
    };
    for _ in 0..2 {
        store
            .apply_run_event(&env, &id, plain(Event::StartAttempt), t0())
            .await
            .unwrap()
            .unwrap();
        store
            .apply_run_event(&env, &id, fail(), t0())
            .await
            .unwrap()
            .unwrap();
    }
    let group = store
        .get_error_group(&env, "120ca518cbb995ad")
        .await
        .unwrap()
        .expect("the final failure made a group (upstream's fingerprint)");
    assert_eq!(
        group.group.occurrence_count, 1,
        "a retried attempt is not an occurrence"
    );
    assert_eq!(
        (
            group.group.error_type.as_str(),
            group.group.error_message.as_str()
        ),
        ("Error", "boom for user 12345")
    );
    assert_eq!(group.group.first_seen, t0(), "the run's creation");
    let runs = store
        .list_runs(
            &env,
            &RunFilter {
                error_fingerprint: Some("120ca518cbb995ad".into()),
                ..RunFilter::default()
            },
            &RunPage {
                limit: 10,
                after: None,
                before: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        runs.iter()
            .map(|r| r.friendly_id.as_str())
            .collect::<Vec<_>>(),
        vec![id.as_str()]
    );
    assert_eq!(
        store.get_run(&env, &id).await.unwrap().map(|r| r.status),
        Some(RunStatus::CompletedWithErrors)
    );
}

pub async fn groups_list_by_their_count_in_the_window(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let e = |s: &str| string_error(s);
    // Three occurrences of A (minutes 10, 70, 2000), two of B, one of C in another task.
    let a = occur(&*store, &env, "t1", Some("20260101.1"), &e("alpha"), 10).await;
    occur(&*store, &env, "t1", Some("20260101.2"), &e("alpha"), 70).await;
    occur(&*store, &env, "t1", Some("20260101.2"), &e("alpha"), 2000).await;
    let b = occur(&*store, &env, "t1", None, &e("beta 100% done"), 20).await;
    occur(&*store, &env, "t1", None, &e("beta 100% done"), 21).await;
    let c = occur(&*store, &env, "t2", Some("20260101.1"), &e("Gamma"), 30).await;
    // Another environment's occurrences never show.
    let other = prod_env(&*store).await;
    occur(&*store, &other, "t1", None, &e("alpha"), 10).await;

    assert_eq!(
        list(&*store, &env, &query(0, 3000)).await,
        vec![
            ("t1".into(), a.clone(), 3),
            ("t1".into(), b.clone(), 2),
            ("t2".into(), c.clone(), 1)
        ]
    );
    // Exact to the minute at both ends: minutes 20..=70.
    assert_eq!(
        list(&*store, &env, &query(20, 70)).await,
        vec![
            ("t1".into(), b.clone(), 2),
            ("t1".into(), a.clone(), 1),
            ("t2".into(), c.clone(), 1)
        ]
    );
    assert_eq!(
        list(&*store, &env, &query(22, 69)).await,
        vec![("t2".into(), c.clone(), 1)]
    );
    // Versions restrict what is counted.
    let mut q = query(0, 3000);
    q.versions = vec!["20260101.2".into()];
    assert_eq!(
        list(&*store, &env, &q).await,
        vec![("t1".into(), a.clone(), 2)]
    );
    // Tasks, and a search that is a substring of type or message, case-insensitive and
    // literal (`%` is not a wildcard).
    let mut q = query(0, 3000);
    q.task_identifiers = vec!["t2".into()];
    assert_eq!(list(&*store, &env, &q).await.len(), 1);
    let mut q = query(0, 3000);
    q.search = Some("gamma".into());
    assert_eq!(list(&*store, &env, &q).await[0].1, c);
    q.search = Some("0% d".into());
    assert_eq!(list(&*store, &env, &q).await[0].1, b);
    q.search = Some("a%a".into());
    assert!(list(&*store, &env, &q).await.is_empty());
    // The group keeps all-time figures.
    let detail = store.get_error_group(&env, &a).await.unwrap().unwrap();
    assert_eq!(detail.group.occurrence_count, 3);
    assert_eq!(
        (detail.fingerprint_first_seen, detail.fingerprint_last_seen),
        (at(10), at(2000))
    );
    assert_eq!(detail.affected_versions, vec!["20260101.2", "20260101.1"]);
}

pub async fn error_pages_go_both_ways(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    // Groups with 5, 4, 3, 2, 1 occurrences.
    let mut expected = Vec::new();
    for (i, n) in [5, 4, 3, 2, 1].iter().enumerate() {
        let fp = {
            let mut fp = String::new();
            for _ in 0..*n {
                fp = occur(
                    &*store,
                    &env,
                    "t",
                    None,
                    &string_error(&format!("error {}", ["a", "b", "c", "d", "e"][i])),
                    5,
                )
                .await;
            }
            fp
        };
        expected.push((fp, *n as i64));
    }
    let page = |cursor: Option<(ErrorCursor, PageDirection)>| {
        let store = store.clone();
        let env = env.clone();
        async move {
            let mut q = query(0, 10);
            q.size = 2;
            q.cursor = cursor;
            store.list_error_groups(&env, &q).await.unwrap()
        }
    };
    let cursor_of = |r: &ListedErrorGroup| ErrorCursor {
        occurrence_count: r.count,
        fingerprint: r.group.fingerprint.clone(),
        task_identifier: r.group.task_identifier.clone(),
    };
    let counts = |p: &ErrorPage| p.rows.iter().map(|r| r.count).collect::<Vec<_>>();
    let first = page(None).await;
    assert_eq!((counts(&first), first.has_more), (vec![5, 4], true));
    let second = page(Some((cursor_of(&first.rows[1]), PageDirection::After))).await;
    assert_eq!((counts(&second), second.has_more), (vec![3, 2], true));
    let third = page(Some((cursor_of(&second.rows[1]), PageDirection::After))).await;
    assert_eq!((counts(&third), third.has_more), (vec![1], false));
    let back = page(Some((cursor_of(&third.rows[0]), PageDirection::Before))).await;
    assert_eq!((counts(&back), back.has_more), (vec![3, 2], true));
    let start = page(Some((cursor_of(&back.rows[0]), PageDirection::Before))).await;
    assert_eq!((counts(&start), start.has_more), (vec![5, 4], false));
    assert_eq!(start.rows[0].group.fingerprint, expected[0].0);
}

/// Every page of `q` in sizes of 3, forwards and then back from the last row, as (task,
/// fingerprint, count).
async fn every_page(
    store: &dyn Store,
    env: &EnvironmentId,
    q: &ErrorListQuery,
) -> Vec<(String, String, i64)> {
    let cursor_of = |r: &ListedErrorGroup| ErrorCursor {
        occurrence_count: r.count,
        fingerprint: r.group.fingerprint.clone(),
        task_identifier: r.group.task_identifier.clone(),
    };
    let row = |r: &ListedErrorGroup| {
        (
            r.group.task_identifier.clone(),
            r.group.fingerprint.clone(),
            r.count,
        )
    };
    let mut q = q.clone();
    q.size = 3;
    q.cursor = None;
    let mut forward: Vec<ListedErrorGroup> = Vec::new();
    loop {
        let page = store.list_error_groups(env, &q).await.unwrap();
        assert!(page.rows.len() <= 3);
        forward.extend(page.rows);
        if !page.has_more {
            break;
        }
        q.cursor = Some((cursor_of(forward.last().unwrap()), PageDirection::After));
    }
    let mut back: Vec<ListedErrorGroup> = Vec::new();
    if let Some(last) = forward.last() {
        q.cursor = Some((cursor_of(last), PageDirection::Before));
        loop {
            let page = store.list_error_groups(env, &q).await.unwrap();
            let more = page.has_more;
            let Some(first) = page.rows.first().map(cursor_of) else {
                break;
            };
            back.splice(0..0, page.rows);
            if !more {
                break;
            }
            q.cursor = Some((first, PageDirection::Before));
        }
    }
    let forward: Vec<_> = forward.iter().map(row).collect();
    assert_eq!(
        back.iter().map(row).collect::<Vec<_>>(),
        forward[..forward.len().saturating_sub(1)],
        "paging back gives the same rows"
    );
    forward
}

/// A page is chosen among the groups with the highest counts when that is enough, and among
/// all of them when a filter leaves too few there: the pages are the same either way.
pub async fn error_pages_are_the_same_whichever_groups_are_read_first(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    // 40 groups, with counts 1 to 7 (many ties); task "b" and the word "needle" only on the
    // groups with the fewest, so a filter on them finds few among the most frequent.
    let mut occurrences = Vec::new();
    let mut shape = Vec::new();
    for i in 0..40i64 {
        let n = i % 7 + 1;
        let task = if n <= 2 && i % 2 == 0 { "b" } else { "a" };
        // Letters, not digits: the fingerprint would normalise a number away.
        let word: String = [b'a' + (i / 26) as u8, b'a' + (i % 26) as u8]
            .iter()
            .map(|&c| c as char)
            .collect();
        let message = if n == 1 {
            format!("needle {word}")
        } else {
            format!("error {word}")
        };
        shape.push((task, string_error(&message), n));
    }
    for (task, error, n) in &shape {
        for k in 0..*n {
            occurrences.push(ErrorOccurrence {
                environment_id: &env,
                task_identifier: task,
                task_version: Some(if k % 2 == 0 { "v1" } else { "v2" }),
                error,
                run_created_at: at(5 + k),
            });
        }
    }
    let fingerprints = store
        .record_error_occurrences(&occurrences, at(20))
        .await
        .unwrap();
    let mut groups: Vec<(String, String, i64)> = Vec::new();
    for (o, fp) in occurrences.iter().zip(fingerprints) {
        let fp = fp.expect("grouped");
        match groups
            .iter_mut()
            .find(|g| g.1 == fp && g.0 == o.task_identifier)
        {
            Some(g) => g.2 += 1,
            None => groups.push((o.task_identifier.to_string(), fp, 1)),
        }
    }
    // List order: count, then fingerprint and task bytewise, all descending.
    groups.sort_by(|a, b| (b.2, &b.1, &b.0).cmp(&(a.2, &a.1, &a.0)));
    let q = query(0, 30);
    assert_eq!(every_page(&*store, &env, &q).await, groups);

    let only = |keep: &dyn Fn(&(String, String, i64)) -> bool| {
        groups
            .iter()
            .filter(|g| keep(g))
            .cloned()
            .collect::<Vec<_>>()
    };
    let mut by_task = q.clone();
    by_task.task_identifiers = vec!["b".into()];
    assert_eq!(
        every_page(&*store, &env, &by_task).await,
        only(&|g| g.0 == "b")
    );
    let mut searched = q.clone();
    searched.search = Some("needle".into());
    assert_eq!(
        every_page(&*store, &env, &searched).await,
        only(&|g| g.2 == 1)
    );
    let mut nothing = q.clone();
    nothing.search = Some("no such words".into());
    assert!(every_page(&*store, &env, &nothing).await.is_empty());

    // Half of them, the most frequent, resolved: the unresolved ones are not among the groups
    // with the highest counts, where a list looks first.
    for g in &groups[..20] {
        store
            .triage_error_group(
                &env,
                &g.1,
                TriageAction::Resolve { in_version: None },
                &user("u1"),
                at(20),
            )
            .await
            .unwrap()
            .unwrap();
    }
    let mut unresolved = q.clone();
    unresolved.statuses = vec![GroupStatus::Unresolved];
    assert_eq!(
        every_page(&*store, &env, &unresolved).await,
        groups[20..].to_vec()
    );

    // One version's counts: the odd occurrences are v2's.
    let mut v2 = q.clone();
    v2.versions = vec!["v2".into()];
    let mut in_v2: Vec<_> = groups
        .iter()
        .filter(|g| g.2 > 1)
        .map(|g| (g.0.clone(), g.1.clone(), g.2 / 2))
        .collect();
    in_v2.sort_by(|a, b| (b.2, &b.1, &b.0).cmp(&(a.2, &a.1, &a.0)));
    assert_eq!(every_page(&*store, &env, &v2).await, in_v2);
}

/// Past the groups a filter's share is judged from, a filter that keeps a few groups, or none,
/// still lists exactly those.
pub async fn a_rare_filter_among_many_groups_lists_exactly_its_matches(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let words: Vec<String> = (0..1_010u32)
        .map(|i| {
            [i / 676, i / 26 % 26, i % 26]
                .iter()
                .map(|&d| (b'a' + d as u8) as char)
                .collect()
        })
        .collect();
    let errors: Vec<Value> = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let kind = if i % 400 == 399 { "needle" } else { "oops" };
            string_error(&format!("{kind} {w}"))
        })
        .collect();
    let occurrences: Vec<ErrorOccurrence<'_>> = errors
        .iter()
        .map(|error| ErrorOccurrence {
            environment_id: &env,
            task_identifier: "t",
            task_version: None,
            error,
            run_created_at: at(5),
        })
        .collect();
    store
        .record_error_occurrences(&occurrences, at(6))
        .await
        .unwrap();
    let mut q = query(0, 10);
    q.search = Some("needle".into());
    let found = every_page(&*store, &env, &q).await;
    assert_eq!(found.len(), 2, "{found:?}");
    q.search = Some("no such words".into());
    assert!(every_page(&*store, &env, &q).await.is_empty());
    q.search = Some("oops".into());
    let page = store.list_error_groups(&env, &q).await.unwrap();
    assert!(page.rows.len() == 25 && page.has_more);
    assert!(page
        .rows
        .iter()
        .all(|r| r.group.error_message.starts_with("oops")));
}

pub async fn triage_is_recorded_with_its_actor(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let fp = occur(&*store, &env, "t", None, &string_error("boom"), 1).await;
    occur(&*store, &env, "t2", None, &string_error("boom"), 2).await;
    assert_eq!(
        store
            .triage_error_group(
                &env,
                "0000000000000000",
                TriageAction::Unresolve,
                &user("u1"),
                at(3)
            )
            .await
            .unwrap(),
        None
    );
    let resolved = store
        .triage_error_group(
            &env,
            &fp,
            TriageAction::Resolve {
                in_version: Some("20260101.5".into()),
            },
            &user("u1"),
            at(3),
        )
        .await
        .unwrap()
        .unwrap();
    let t = &resolved.group.triage;
    assert_eq!(
        (
            t.status,
            t.resolved_at,
            t.resolved_in_version.as_deref(),
            t.resolved_by.as_deref()
        ),
        (
            GroupStatus::Resolved,
            Some(at(3)),
            Some("20260101.5"),
            Some("u1")
        )
    );
    let ignore = Ignore {
        duration_ms: Some(3_600_000),
        occurrence_rate: Some(2.5),
        total_occurrences: Some(10),
        reason: Some("known flake".into()),
    };
    let key = TriageActor {
        user_id: None,
        credential_kind: "secret_key".into(),
        credential_id: Some("env-1".into()),
    };
    let ignored = store
        .triage_error_group(&env, &fp, TriageAction::Ignore(ignore), &key, at(4))
        .await
        .unwrap()
        .unwrap();
    let t = &ignored.group.triage;
    assert_eq!(t.status, GroupStatus::Ignored);
    assert_eq!(t.resolved_at, None, "an ignore clears the resolve");
    assert_eq!(t.ignored_until, Some(at(64)));
    assert_eq!(t.ignored_until_occurrence_rate, Some(2.5));
    assert_eq!(t.ignored_until_total_occurrences, Some(10));
    assert_eq!(t.ignored_by_user_id, None, "a key acts for nobody");
    store
        .triage_error_group(&env, &fp, TriageAction::Unresolve, &user("u2"), at(5))
        .await
        .unwrap()
        .unwrap();
    let history = store
        .list_error_activity(&env, &fp, None, 10)
        .await
        .unwrap();
    // Two tasks share the fingerprint: each of their groups has its entries.
    let actions: Vec<(&str, &str, Option<&str>)> = history
        .iter()
        .map(|a| {
            (
                a.action.as_str(),
                a.task_identifier.as_str(),
                a.actor_user_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("unresolved", "t2", Some("u2")),
            ("unresolved", "t", Some("u2")),
            ("ignored", "t2", None),
            ("ignored", "t", None),
            ("resolved", "t2", Some("u1")),
            ("resolved", "t", Some("u1")),
        ]
    );
    assert_eq!(history[3].reason.as_deref(), Some("known flake"));
    assert_eq!(history[3].credential_kind, "secret_key");
    let older = store
        .list_error_activity(&env, &fp, Some(history[1].seq), 2)
        .await
        .unwrap();
    assert_eq!(older.len(), 2);
    assert_eq!(older[0].seq, history[2].seq);
}

pub async fn resolved_groups_reopen_when_they_fail_again(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let e = string_error("regress");
    let fp = occur(&*store, &env, "t", Some("20260101.1"), &e, 1).await;
    let resolve = |version: Option<&str>, minute: i64| {
        let store = store.clone();
        let (env, fp) = (env.clone(), fp.clone());
        let version = version.map(str::to_string);
        async move {
            store
                .triage_error_group(
                    &env,
                    &fp,
                    TriageAction::Resolve {
                        in_version: version,
                    },
                    &user("u"),
                    at(minute),
                )
                .await
                .unwrap()
        }
    };
    let status = |store: Arc<dyn Store>, env: String, fp: String| async move {
        store
            .get_error_group(&env, &fp)
            .await
            .unwrap()
            .unwrap()
            .group
            .triage
            .status
    };
    resolve(None, 2).await;
    occur(&*store, &env, "t", Some("20260101.1"), &e, 3).await;
    assert_eq!(
        status(store.clone(), env.to_string(), fp.clone()).await,
        GroupStatus::Unresolved,
        "reopened at once, without any job"
    );
    // Resolved in .10: an occurrence from .9 is counted but does not reopen; .10 does.
    resolve(Some("20260101.10"), 4).await;
    occur(&*store, &env, "t", Some("20260101.9"), &e, 5).await;
    assert_eq!(
        status(store.clone(), env.to_string(), fp.clone()).await,
        GroupStatus::Resolved
    );
    occur(&*store, &env, "t", Some("20260101.10"), &e, 6).await;
    assert_eq!(
        status(store.clone(), env.to_string(), fp.clone()).await,
        GroupStatus::Unresolved
    );
    let history = store
        .list_error_activity(&env, &fp, None, 10)
        .await
        .unwrap();
    assert_eq!(
        history
            .iter()
            .map(|a| (a.action.as_str(), a.detail.as_deref()))
            .collect::<Vec<_>>(),
        vec![
            ("regressed", Some("failed again in version 20260101.10")),
            ("resolved", Some("in version 20260101.10")),
            ("regressed", Some("failed again in version 20260101.1")),
            ("resolved", None),
        ]
    );
    assert_eq!(history[0].credential_kind, "system");
    let detail = store.get_error_group(&env, &fp).await.unwrap().unwrap();
    assert_eq!(detail.group.occurrence_count, 4);
}

pub async fn ignores_end_on_time_rate_or_total(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let ignore = |fp: String, i: Ignore, minute: i64| {
        let store = store.clone();
        let env = env.clone();
        async move {
            store
                .triage_error_group(&env, &fp, TriageAction::Ignore(i), &user("u"), at(minute))
                .await
                .unwrap()
                .unwrap()
        }
    };
    let status = |fp: String| {
        let store = store.clone();
        let env = env.clone();
        async move {
            store
                .get_error_group(&env, &fp)
                .await
                .unwrap()
                .unwrap()
                .group
                .triage
                .status
        }
    };
    // By time: a list at a later time already sees it unresolved; the sweep records it.
    let timed = occur(&*store, &env, "t", None, &string_error("timed"), 0).await;
    ignore(
        timed.clone(),
        Ignore {
            duration_ms: Some(60_000),
            ..Ignore::default()
        },
        1,
    )
    .await;
    let mut q = query(0, 10);
    q.statuses = vec![GroupStatus::Ignored];
    q.now = at(1);
    assert_eq!(list(&*store, &env, &q).await.len(), 1);
    q.now = at(2);
    assert!(list(&*store, &env, &q).await.is_empty(), "past its time");
    q.statuses = vec![GroupStatus::Unresolved];
    assert_eq!(list(&*store, &env, &q).await.len(), 1);
    assert_eq!(store.reopen_expired_ignores(at(1)).await.unwrap(), 0);
    assert_eq!(store.reopen_expired_ignores(at(2)).await.unwrap(), 1);
    assert_eq!(status(timed.clone()).await, GroupStatus::Unresolved);

    // By total: the third occurrence after the ignore ends it.
    let total = occur(&*store, &env, "t", None, &string_error("total"), 0).await;
    ignore(
        total.clone(),
        Ignore {
            total_occurrences: Some(3),
            ..Ignore::default()
        },
        1,
    )
    .await;
    for minute in [2, 3] {
        occur(&*store, &env, "t", None, &string_error("total"), minute).await;
    }
    assert_eq!(status(total.clone()).await, GroupStatus::Ignored);
    occur(&*store, &env, "t", None, &string_error("total"), 4).await;
    assert_eq!(status(total.clone()).await, GroupStatus::Unresolved);

    // By rate: more than 2 arrivals within one minute.
    let rate = occur(&*store, &env, "t", None, &string_error("rate"), 0).await;
    ignore(
        rate.clone(),
        Ignore {
            occurrence_rate: Some(2.0),
            ..Ignore::default()
        },
        1,
    )
    .await;
    for minute in [5, 6, 7] {
        occur(&*store, &env, "t", None, &string_error("rate"), minute).await;
    }
    assert_eq!(
        status(rate.clone()).await,
        GroupStatus::Ignored,
        "one a minute"
    );
    for _ in 0..3 {
        occur(&*store, &env, "t", None, &string_error("rate"), 8).await;
    }
    assert_eq!(status(rate.clone()).await, GroupStatus::Unresolved);
    let history = store
        .list_error_activity(&env, &rate, None, 1)
        .await
        .unwrap();
    assert_eq!(
        history[0].detail.as_deref(),
        Some("3 occurrences within a minute")
    );
}

/// A resolve and occurrences racing: both kinds are kept, in one order, and the final state
/// follows from it.
pub async fn a_resolve_racing_an_occurrence_loses_neither(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let e = string_error("race");
    let fp = occur(&*store, &env, "t", None, &e, 0).await;
    for round in 0..10 {
        let resolving = {
            let (store, env, fp) = (store.clone(), env.clone(), fp.clone());
            tokio::spawn(async move {
                store
                    .triage_error_group(
                        &env,
                        &fp,
                        TriageAction::Resolve { in_version: None },
                        &user("u"),
                        at(10 + round),
                    )
                    .await
                    .unwrap()
            })
        };
        let failing = {
            let (store, env, e) = (store.clone(), env.clone(), e.clone());
            tokio::spawn(async move {
                store
                    .record_error_occurrences(
                        &[ErrorOccurrence {
                            environment_id: &env,
                            task_identifier: "t",
                            task_version: None,
                            error: &e,
                            run_created_at: at(10 + round),
                        }],
                        at(10 + round),
                    )
                    .await
                    .unwrap()
            })
        };
        resolving.await.unwrap();
        failing.await.unwrap();
        let detail = store.get_error_group(&env, &fp).await.unwrap().unwrap();
        let last = store
            .list_error_activity(&env, &fp, None, 1)
            .await
            .unwrap()
            .remove(0);
        match last.action.as_str() {
            // The occurrence came after the resolve: it reopened the group.
            "regressed" => assert_eq!(detail.group.triage.status, GroupStatus::Unresolved),
            // The resolve came last: resolved, the occurrence counted before it.
            "resolved" => assert_eq!(detail.group.triage.status, GroupStatus::Resolved),
            other => panic!("unexpected {other}"),
        }
        assert_eq!(
            detail.group.occurrence_count,
            2 + round,
            "no occurrence lost"
        );
    }
    let history = store
        .list_error_activity(&env, &fp, None, 100)
        .await
        .unwrap();
    assert_eq!(
        history.iter().filter(|a| a.action == "resolved").count(),
        10,
        "no resolve lost"
    );
}

/// Counts in windows of every shape, open at the end or not, match a count of the
/// occurrences themselves: the spans a window reads cover each of its minutes once.
pub async fn window_counts_are_exact_over_days_and_weeks(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    const LAST: i64 = 20 * 24 * 60;
    // 90 occurrences of three errors in two versions, spread over 20 days by a fixed LCG.
    let mut seed: i64 = 17;
    let mut occurred: Vec<(String, &str, i64)> = Vec::new();
    for i in 0..90 {
        seed = (seed * 1_103_515_245 + 12_345).rem_euclid(1 << 31);
        let minute = seed % LAST;
        let message = ["alpha", "beta", "gamma"][i % 3];
        let version = ["1.0", "2.0"][i % 2];
        let fp = occur(
            &*store,
            &env,
            "t",
            Some(version),
            &string_error(message),
            minute,
        )
        .await;
        occurred.push((fp, version, minute));
    }
    let expected = |from: i64, to: i64, version: Option<&str>| {
        let mut counts: Vec<(String, i64)> = Vec::new();
        for (fp, v, minute) in &occurred {
            if (from..=to).contains(minute) && version.is_none_or(|want| want == *v) {
                match counts.iter_mut().find(|(f, _)| f == fp) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((fp.clone(), 1)),
                }
            }
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
        counts
    };
    let windows = [
        (0, LAST),
        (7, 61),
        (59, 121),
        (90, 3 * 24 * 60 + 17),
        (24 * 60 - 1, 9 * 24 * 60 + 1),
        (1000, 1000 + 7 * 24 * 60),
        (LAST - 24 * 60, LAST),
        (5 * 60 + 30, LAST - 301),
    ];
    for (from, to) in windows {
        for version in [None, Some("2.0")] {
            for open_end in [false, true] {
                let mut q = query(from, to);
                q.versions = version.map(|v| vec![v.to_string()]).unwrap_or_default();
                // Open at the end only when nothing is stored past it, as at a real `now`.
                q.now = if open_end && to >= LAST {
                    at(to)
                } else {
                    at(LAST + 60)
                };
                let got: Vec<(String, i64)> = list(&*store, &env, &q)
                    .await
                    .into_iter()
                    .map(|(_, fp, n)| (fp, n))
                    .collect();
                assert_eq!(
                    got,
                    expected(from, to, version),
                    "minutes {from}..={to} {version:?}"
                );
            }
        }
    }
}

pub async fn purging_buckets_keeps_all_time_counts(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let fp = occur(&*store, &env, "t", Some("1.0"), &string_error("old"), 0).await;
    occur(
        &*store,
        &env,
        "t",
        Some("1.0"),
        &string_error("old"),
        3 * 24 * 60,
    )
    .await;
    let purged = store.purge_error_buckets(at(2 * 24 * 60)).await.unwrap();
    assert_eq!(
        purged, 16,
        "for * and 1.0: the first occurrence's minute and its spans of up to 64 hours, which \
         end by hour 48 (the 32- and 64-hour ones began 16 hours before it); its longer \
         spans run past hour 48 and stay"
    );
    // A window inside what is kept still counts the second occurrence.
    assert_eq!(
        list(&*store, &env, &query(2 * 24 * 60, 4 * 24 * 60)).await,
        vec![("t".into(), fp.clone(), 1)]
    );
    let detail = store.get_error_group(&env, &fp).await.unwrap().unwrap();
    assert_eq!(detail.group.occurrence_count, 2);
    assert_eq!(detail.affected_versions, vec!["1.0"]);
}

/// The purge reaches the old buckets of every environment and version (it walks them one
/// pair at a time), keeps the new ones, and has nothing left to do when run again.
pub async fn purging_reaches_every_environment_and_version(store: Arc<dyn Store>) {
    let (_owner, _org, project) = fixture(&*store).await;
    let mut envs = Vec::new();
    for env_type in [EnvType::Production, EnvType::Staging] {
        let env = store
            .find_root_environment(&project.id, env_type, None)
            .await
            .unwrap()
            .unwrap();
        envs.push(env.id);
    }
    let (prod, staging) = (&envs[0], &envs[1]);
    let error = string_error("old and new");
    occur(&*store, prod, "t", Some("1.0"), &error, 0).await;
    occur(&*store, staging, "t", Some("2.0"), &error, 0).await;
    occur(&*store, staging, "t", Some("3.0"), &error, 0).await;
    for env in [prod, staging] {
        occur(&*store, env, "t", Some("4.0"), &error, 3 * 24 * 60).await;
    }
    let purged = store.purge_error_buckets(at(2 * 24 * 60)).await.unwrap();
    assert_eq!(
        purged,
        5 * 8,
        "the minute and the spans of up to 64 hours of the first occurrences, for five \
         (environment, version) pairs: production's * and 1.0, staging's *, 2.0 and 3.0"
    );
    assert_eq!(
        store.purge_error_buckets(at(2 * 24 * 60)).await.unwrap(),
        0,
        "nothing is left to purge"
    );
    for env in [prod, staging] {
        let got = list(&*store, env, &query(2 * 24 * 60, 4 * 24 * 60)).await;
        assert_eq!(got.len(), 1, "{env}: {got:?}");
        assert_eq!(got[0].2, 1, "the new occurrence still counts in {env}");
    }
}

/// The purge deletes a long range in chunks (of 1,000 rows), and a bucket holding more
/// groups than a chunk whole: every old bucket goes, whatever its size, and all-time counts
/// stay.
pub async fn purging_goes_in_chunks_through_large_ranges(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let error = string_error("in chunks");
    let tasks: Vec<String> = (0..1_100).map(|i| format!("task-{i}")).collect();
    // 1,100 groups in minute 0 (one bucket larger than a chunk), then 30 of them in each of
    // minutes 10 to 49 (1,200 minute buckets: a range of more than one chunk).
    let mut occurrences: Vec<(&str, i64)> = tasks.iter().map(|t| (t.as_str(), 0)).collect();
    for minute in 10..50 {
        occurrences.extend(tasks[..30].iter().map(|t| (t.as_str(), minute)));
    }
    let mut fingerprint = None;
    for batch in occurrences.chunks(500) {
        let batch: Vec<ErrorOccurrence> = batch
            .iter()
            .map(|&(task, minute)| ErrorOccurrence {
                environment_id: &env,
                task_identifier: task,
                task_version: None,
                error: &error,
                run_created_at: at(minute),
            })
            .collect();
        let recorded = store
            .record_error_occurrences(&batch, at(50))
            .await
            .unwrap();
        fingerprint = fingerprint.or(recorded[0].clone());
    }
    let purged = store.purge_error_buckets(at(2 * 24 * 60)).await.unwrap();
    assert_eq!(
        purged,
        1_100 + 1_200 + 1_100 * 7,
        "every minute bucket, and each group's spans of up to 64 hours"
    );
    assert_eq!(
        store.purge_error_buckets(at(2 * 24 * 60)).await.unwrap(),
        0,
        "nothing is left to purge"
    );
    // The group shown for the shared fingerprint is one of the 30 seen last, 41 times each.
    let detail = store
        .get_error_group(&env, &fingerprint.expect("grouped"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.group.occurrence_count, 41, "all-time counts stay");
}

/// Two batches that share groups, given in opposite orders, both land: the store writes
/// groups in one order, so neither waits on the other in a cycle.
pub async fn concurrent_batches_sharing_groups_both_land(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let errors: Vec<Value> = (0..40)
        .map(|i| string_error(&format!("shared {i}")))
        .collect();
    let mut batches = Vec::new();
    for reversed in [false, true] {
        let (store, env, errors) = (store.clone(), env.clone(), errors.clone());
        batches.push(tokio::spawn(async move {
            let mut occurrences: Vec<ErrorOccurrence<'_>> = errors
                .iter()
                .map(|error| ErrorOccurrence {
                    environment_id: &env,
                    task_identifier: "t",
                    task_version: None,
                    error,
                    run_created_at: at(1),
                })
                .collect();
            if reversed {
                occurrences.reverse();
            }
            let recorded = store
                .record_error_occurrences(&occurrences, at(2))
                .await
                .map(|fps| fps.into_iter().flatten().count())
                .map_err(|e| e.to_string());
            (recorded, reversed)
        }));
    }
    for batch in batches {
        let (recorded, reversed) = batch.await.unwrap();
        assert_eq!(recorded, Ok(40), "reversed: {reversed}");
    }
    let page = list(&*store, &env, &query(0, 10)).await;
    assert_eq!(page.len(), 25, "the first page of 40 groups");
    assert!(page.iter().all(|(_, _, n)| *n == 2), "{page:?}");
}

pub async fn activity_series_count_each_bucket_of_a_group(store: Arc<dyn Store>) {
    use taskgate_core::errors::Series;
    let env = prod_env(&*store).await;
    let e = string_error("flaky");
    // Occurrences at minutes 5, 6 and 125: hours 0, 0 and 2 of the test's day.
    occur(&*store, &env, "t", Some("20260101.1"), &e, 5).await;
    occur(&*store, &env, "t", Some("20260101.2"), &e, 6).await;
    occur(&*store, &env, "t", None, &e, 125).await;
    occur(&*store, &env, "t", None, &string_error("other"), 7).await;
    let page = store.list_error_groups(&env, &query(0, 200)).await.unwrap();
    let flaky = page
        .rows
        .iter()
        .find(|r| r.group.error_message == "flaky")
        .unwrap()
        .group
        .id
        .clone();
    let from = at(0).timestamp_millis();
    let series = Series::of(from, at(179).timestamp_millis(), 48).unwrap();
    assert_eq!(series.bars, 3, "three hours, one bar each");
    let bars_of = |rows: &[(String, String, i64, i64)], version: &str| {
        let mut bars = vec![0; series.bars];
        for (group, v, bucket, count) in rows {
            assert_eq!(group, &flaky);
            if v == version {
                bars[series.bar_of(*bucket).unwrap()] += count;
            }
        }
        bars
    };
    let rows = store
        .error_count_series(
            &env,
            std::slice::from_ref(&flaky),
            &[],
            series.granularity,
            series.first,
            series.end(),
        )
        .await
        .unwrap();
    assert_eq!(bars_of(&rows, "*"), vec![2, 0, 1]);
    let versions = ["20260101.1".to_string(), "20260101.2".to_string()];
    let by_version = store
        .error_count_series(
            &env,
            std::slice::from_ref(&flaky),
            &versions,
            series.granularity,
            series.first,
            series.end(),
        )
        .await
        .unwrap();
    assert_eq!(bars_of(&by_version, "20260101.1"), vec![1, 0, 0]);
    assert_eq!(bars_of(&by_version, "20260101.2"), vec![1, 0, 0]);
    assert_eq!(
        bars_of(&by_version, "*"),
        vec![0, 0, 0],
        "only the versions asked for"
    );
    assert!(store
        .error_count_series(
            &env,
            &[],
            &[],
            series.granularity,
            series.first,
            series.end()
        )
        .await
        .unwrap()
        .is_empty());
}
