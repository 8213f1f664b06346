//! Conformance cases: schedules. Imperative schedules upsert by their key and stay in their
//! environment; each due fire is claimed by one caller, even when several claim at once; a
//! fire whose claimant vanished is taken over after its lease; missed times collapse into one
//! fire; declarative schedules follow the worker the environment runs.

use std::sync::Arc;

use chrono::Duration;
use taskgate_core::ids::{
    new_deployment_friendly_id, new_id, new_short_code, new_worker_friendly_id, EnvironmentId,
    RunFriendlyId,
};

use super::engine::prod_env;
use super::*;
use crate::*;

const LEASE: Duration = Duration::seconds(60);

fn every_minute(env: &EnvironmentId, key: &str) -> NewSchedule {
    NewSchedule {
        environment_id: env.clone(),
        deduplication_key: key.into(),
        definition: ScheduleDefinition {
            task: "report".into(),
            expression: "* * * * *".into(),
            timezone: "UTC".into(),
            window: None,
            external_id: Some(format!("ext-{key}")),
        },
    }
}

fn minutes(n: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(n)
}

pub async fn imperative_schedules_upsert_list_update_and_delete(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let other = prod_env(&*store).await;
    let (a, created) = store
        .upsert_schedule(every_minute(&env, "a"), t0())
        .await
        .unwrap();
    assert!(created);
    assert_eq!(a.kind, ScheduleKind::Imperative);
    assert!(a.friendly_id.starts_with("sched_"));
    assert_eq!((a.next_at, a.due_at), (Some(minutes(1)), Some(minutes(1))));
    assert_eq!(a.external_id.as_deref(), Some("ext-a"));

    // The same key updates the same schedule; a new expression moves its next fire.
    let mut again = every_minute(&env, "a");
    again.definition.expression = "0 3 * * *".into();
    again.definition.timezone = "Europe/London".into();
    again.definition.external_id = None;
    let (a2, created) = store.upsert_schedule(again, minutes(5)).await.unwrap();
    assert!(!created);
    assert_eq!(a2.friendly_id, a.friendly_id);
    assert_eq!(a2.expression, "0 3 * * *");
    assert_eq!(a2.external_id, None);
    assert_eq!(a2.next_at, Some(t0() + Duration::hours(3)));

    for (i, key) in ["b", "c"].into_iter().enumerate() {
        store
            .upsert_schedule(every_minute(&env, key), minutes(i as i64 + 1))
            .await
            .unwrap();
    }
    let (page, total) = store.list_schedules(&env, 1, 1).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].deduplication_key, "b");
    // Another environment sees none of them.
    assert_eq!(store.list_schedules(&other, 0, 10).await.unwrap().1, 0);
    assert!(store
        .get_schedule(&other, &a.friendly_id)
        .await
        .unwrap()
        .is_none());
    assert!(!store.delete_schedule(&other, &a.friendly_id).await.unwrap());

    let changed = store
        .update_schedule(
            &env,
            &a.friendly_id,
            ScheduleDefinition {
                task: "cleanup".into(),
                expression: "*/5 * * * *".into(),
                timezone: "UTC".into(),
                window: Some("2m".into()),
                external_id: Some("x".into()),
            },
            minutes(6),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.task, "cleanup");
    assert_eq!(changed.next_at, Some(minutes(10)));
    let due = changed.due_at.unwrap();
    assert!(
        due >= minutes(10) && due < minutes(12),
        "{due} is outside the window"
    );

    let off = store
        .set_schedule_active(&env, &a.friendly_id, false, minutes(7))
        .await
        .unwrap()
        .unwrap();
    assert!(!off.active);
    assert_eq!((off.next_at, off.due_at), (None, None));
    let on = store
        .set_schedule_active(&env, &a.friendly_id, true, minutes(21))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(on.next_at, Some(minutes(25)));

    assert!(store.delete_schedule(&env, &a.friendly_id).await.unwrap());
    assert!(store
        .get_schedule(&env, &a.friendly_id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.list_schedules(&env, 0, 10).await.unwrap().1, 2);
}

/// Fires of this environment in a claim.
fn of(fires: &[ScheduleFire], env: &EnvironmentId) -> Vec<ScheduleFire> {
    fires
        .iter()
        .filter(|f| &f.schedule.environment_id == env)
        .cloned()
        .collect()
}

pub async fn schedule_fires_are_claimed_once_and_missed_times_collapse(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    let (s, _) = store
        .upsert_schedule(every_minute(&env, "tick"), t0())
        .await
        .unwrap();
    let claim = |at: DateTime<Utc>| {
        let store = store.clone();
        let env = env.clone();
        async move {
            of(
                &store.claim_schedule_fires(at, 100, LEASE).await.unwrap(),
                &env,
            )
        }
    };
    assert!(claim(t0() + Duration::seconds(59)).await.is_empty());
    let fires = claim(minutes(1)).await;
    assert_eq!(fires.len(), 1);
    assert_eq!(fires[0].nominal, minutes(1));
    assert_eq!(fires[0].last_at, None);
    assert_eq!(fires[0].env_type, EnvType::Production);
    assert_eq!(fires[0].schedule.next_at, Some(minutes(2)));
    // Pending: nobody else takes it.
    assert!(claim(minutes(1)).await.is_empty());
    let run: RunFriendlyId = "run_1".to_string().into();
    store
        .complete_schedule_fire(&s.id, minutes(1), Some(&run), minutes(1))
        .await
        .unwrap();
    let done = store
        .get_schedule(&env, &s.friendly_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.last_at, Some(minutes(1)));
    assert_eq!(done.last_run, Some(run));
    assert_eq!(done.due_at, Some(minutes(2)));

    // Nine minutes with no node: one fire, for the first missed time, then on from now.
    let fires = claim(minutes(10) + Duration::seconds(30)).await;
    assert_eq!(fires.len(), 1);
    assert_eq!(fires[0].nominal, minutes(2));
    assert_eq!(fires[0].last_at, Some(minutes(1)));
    assert_eq!(fires[0].schedule.next_at, Some(minutes(11)));
    store
        .complete_schedule_fire(&s.id, minutes(2), None, minutes(10))
        .await
        .unwrap();
    let skipped = store
        .get_schedule(&env, &s.friendly_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(skipped.last_at, Some(minutes(2)));
    assert_eq!(
        skipped.last_run.as_deref(),
        Some("run_1"),
        "a skipped fire keeps the last run"
    );

    // A claimant that never completes: its fire is taken over once the lease runs out, for
    // the same time, and completing the old claim afterwards changes nothing.
    let fires = claim(minutes(11)).await;
    assert_eq!(fires[0].nominal, minutes(11));
    assert!(claim(minutes(11) + LEASE - Duration::seconds(1))
        .await
        .is_empty());
    let retaken = claim(minutes(11) + LEASE).await;
    assert_eq!(retaken.len(), 1);
    assert_eq!(retaken[0].nominal, minutes(11));
    assert_eq!(retaken[0].schedule.next_at, Some(minutes(12)));
    store
        .complete_schedule_fire(
            &s.id,
            minutes(11),
            Some(&"run_2".to_string().into()),
            minutes(12),
        )
        .await
        .unwrap();
    store
        .complete_schedule_fire(
            &s.id,
            minutes(11),
            Some(&"run_3".to_string().into()),
            minutes(12),
        )
        .await
        .unwrap();
    let after = store
        .get_schedule(&env, &s.friendly_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.last_run.as_deref(), Some("run_2"));

    // An inactive schedule is never due.
    store
        .set_schedule_active(&env, &s.friendly_id, false, minutes(12))
        .await
        .unwrap();
    assert!(claim(minutes(30)).await.is_empty());
}

pub async fn concurrent_claims_hand_each_fire_to_one_caller(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    for i in 0..40 {
        store
            .upsert_schedule(every_minute(&env, &format!("s{i}")), t0())
            .await
            .unwrap();
    }
    let mut claims = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        claims.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let fires = store
                    .claim_schedule_fires(minutes(1), 7, LEASE)
                    .await
                    .unwrap();
                if fires.is_empty() {
                    return got;
                }
                got.extend(fires);
            }
        }));
    }
    let mut ids = Vec::new();
    for c in claims {
        for f in of(&c.await.unwrap(), &env) {
            assert_eq!(f.nominal, minutes(1));
            ids.push(f.schedule.id);
        }
    }
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (total, ids.len()),
        (40, 40),
        "each fire is claimed exactly once"
    );
}

fn scheduled(slug: &str, cron: &str, environments: Option<&[&str]>) -> WorkerTask {
    WorkerTask {
        slug: slug.into(),
        file_path: format!("src/{slug}.ts"),
        export_name: None,
        retry_config: None,
        queue_name: None,
        machine: None,
        max_duration_seconds: None,
        ttl: None,
        payload_schema: None,
        description: None,
        trigger_source: Some("schedule".into()),
        schedule: Some(DeclaredSchedule {
            cron: cron.into(),
            timezone: "UTC".into(),
            environments: environments.map(|e| e.iter().map(|s| s.to_string()).collect()),
            window: None,
        }),
    }
}

async fn register(
    store: &dyn Store,
    env: &EnvironmentId,
    tasks: Vec<WorkerTask>,
    deployment: Option<&Deployment>,
    at: DateTime<Utc>,
) -> Worker {
    store
        .register_worker(
            NewWorker {
                id: new_id().into(),
                friendly_id: new_worker_friendly_id().into(),
                environment_id: env.clone(),
                content_hash: new_id(),
                sdk_version: None,
                cli_version: None,
                runtime: None,
                runtime_version: None,
                tasks,
                queues: Vec::new(),
                deployment_id: deployment.map(|d| d.id.clone()),
            },
            at,
        )
        .await
        .unwrap()
}

async fn declared(store: &dyn Store, env: &EnvironmentId) -> Vec<Schedule> {
    let (list, _) = store.list_schedules(env, 0, 100).await.unwrap();
    list.into_iter()
        .filter(|s| s.kind == ScheduleKind::Declarative)
        .collect()
}

pub async fn declarative_schedules_follow_the_current_worker(store: Arc<dyn Store>) {
    let env = prod_env(&*store).await;
    // A build registered as current (as a development CLI's is) brings its schedules; one
    // declared for other environment types does not fire here.
    register(
        &*store,
        &env,
        vec![
            scheduled("nightly", "0 3 * * *", None),
            scheduled("dev-only", "* * * * *", Some(&["DEVELOPMENT"])),
        ],
        None,
        t0(),
    )
    .await;
    let first = declared(&*store, &env).await;
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].task.as_str(), first[0].expression.as_str()),
        ("nightly", "0 3 * * *")
    );
    assert_eq!(first[0].next_at, Some(t0() + Duration::hours(3)));
    // The API's delete cannot remove it.
    assert!(!store
        .delete_schedule(&env, &first[0].friendly_id)
        .await
        .unwrap());

    // A new build changing the expression keeps the schedule and moves it.
    register(
        &*store,
        &env,
        vec![scheduled("nightly", "0 4 * * *", None)],
        None,
        minutes(1),
    )
    .await;
    let second = declared(&*store, &env).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].friendly_id, first[0].friendly_id);
    assert_eq!(second[0].next_at, Some(t0() + Duration::hours(4)));

    // A deployment's worker changes nothing until it is promoted.
    let (d, _) = store
        .create_deployment(
            NewDeployment {
                id: new_id().into(),
                friendly_id: new_deployment_friendly_id().into(),
                short_code: new_short_code(),
                environment_id: env.clone(),
                content_hash: "h".into(),
                artifact_key: None,
                external_id: None,
                runtime: None,
                triggered_via: None,
                git_meta: None,
            },
            false,
            minutes(2),
        )
        .await
        .unwrap();
    register(
        &*store,
        &env,
        vec![scheduled("hourly", "0 * * * *", None)],
        Some(&d),
        minutes(2),
    )
    .await;
    assert_eq!(declared(&*store, &env).await[0].task, "nightly");
    store.promote_deployment(&d.id, minutes(3)).await.unwrap();
    let promoted = declared(&*store, &env).await;
    assert_eq!(
        promoted.len(),
        1,
        "the task that lost its cron lost its schedule"
    );
    assert_eq!(promoted[0].task, "hourly");
    assert_eq!(promoted[0].next_at, Some(t0() + Duration::hours(1)));
}
