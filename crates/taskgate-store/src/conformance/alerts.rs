//! Conformance cases: alert channels and their outbox. A run failing for good and an error
//! group opening queue one delivery per matching channel in the same transaction; each
//! delivery is claimed by one caller at a time, retried, and kept when it dies.

use std::sync::Arc;

use chrono::Duration;
use taskgate_core::engine::{Completion, Event, RunState};
use taskgate_core::env::EnvType;
use taskgate_core::task_error::TaskRunError;

use super::engine::{register, take, LIMIT};
use super::runs::plain;
use super::*;
use crate::*;

fn channel(project: &str, key: Option<&str>, types: &[&str], envs: &[EnvType]) -> NewAlertChannel {
    NewAlertChannel {
        project_id: project.to_string(),
        deduplication_key: key.map(str::to_string),
        kind: AlertChannelKind::Webhook,
        name: "ops".into(),
        alert_types: types.iter().map(|t| t.to_string()).collect(),
        environment_types: envs.to_vec(),
        destination: "https://hooks.example.com/in".into(),
        secret_sealed: Some("sealed:s3cret".into()),
    }
}

pub async fn alerts_queue_once_per_channel_and_are_claimed_retried_and_kept(store: Arc<dyn Store>) {
    let (_, _, project) = fixture(&*store).await;
    let env = store
        .find_root_environment(&project.id, EnvType::Production, None)
        .await
        .unwrap()
        .unwrap()
        .id;
    let both = [EnvType::Staging, EnvType::Production];
    let (runs_ch, created) = store
        .upsert_alert_channel(
            channel(&project.id, Some("runs"), &[ALERT_TASK_RUN], &both),
            t0(),
        )
        .await
        .unwrap();
    assert!(created && runs_ch.friendly_id.starts_with("alert_channel_"));
    let (again, created) = store
        .upsert_alert_channel(
            channel(
                &project.id,
                Some("runs"),
                &[ALERT_TASK_RUN, ALERT_ERROR_GROUP],
                &both,
            ),
            t0(),
        )
        .await
        .unwrap();
    assert!(!created, "the same key updates the channel");
    assert_eq!(again.friendly_id, runs_ch.friendly_id);
    assert_eq!(again.alert_types, vec![ALERT_TASK_RUN, ALERT_ERROR_GROUP]);
    // Channels that must hear nothing: development only, and disabled.
    store
        .upsert_alert_channel(
            channel(
                &project.id,
                None,
                &[ALERT_TASK_RUN],
                &[EnvType::Development],
            ),
            t0(),
        )
        .await
        .unwrap();
    let (off, _) = store
        .upsert_alert_channel(
            channel(&project.id, Some("off"), &[ALERT_TASK_RUN], &both),
            t0(),
        )
        .await
        .unwrap();
    store
        .set_alert_channel_enabled(&project.id, &off.friendly_id, false, t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.list_alert_channels(&project.id).await.unwrap().len(),
        3
    );

    // A run that fails for good.
    let w = register(&*store, &env, &["a"]).await;
    let mut run = Run::triggered(
        &env,
        "a",
        &RunState::triggered(t0(), None, None, false),
        t0(),
    );
    run.max_attempts = Some(1);
    store
        .trigger_run(run, None, None, None, t0())
        .await
        .unwrap();
    let id = take(&*store, &env, &w.id, LIMIT, t0())
        .await
        .unwrap()
        .run
        .friendly_id;
    store
        .apply_run_event(&env, &id, plain(Event::StartAttempt), t0())
        .await
        .unwrap()
        .unwrap();
    let fail = plain(Event::Complete(Completion::Failure {
        error: TaskRunError::String { raw: "boom".into() },
        retry_delay_ms: None,
        jitter: 0.0,
    }));
    store
        .apply_run_event(&env, &id, fail, t0())
        .await
        .unwrap()
        .unwrap();

    let lease = Duration::seconds(60);
    let claimed = store.claim_alert_deliveries(t0(), 10, lease).await.unwrap();
    let fingerprint = claimed
        .iter()
        .find(|d| d.event == alert_event::ERROR_NEW_ISSUE)
        .map(|d| d.subject.clone())
        .unwrap_or_default();
    assert!(
        store
            .get_error_group(&env, &fingerprint)
            .await
            .unwrap()
            .is_some(),
        "an error alert names its group's fingerprint"
    );
    let mut events: Vec<(&str, &str)> = claimed
        .iter()
        .map(|d| (d.event.as_str(), d.subject.as_str()))
        .collect();
    events.sort();
    assert_eq!(
        events,
        vec![
            (alert_event::ERROR_NEW_ISSUE, fingerprint.as_str()),
            (alert_event::RUN_FAILED, id.as_str()),
        ],
        "one delivery per event to the one matching channel: {claimed:?}"
    );
    assert!(claimed
        .iter()
        .all(|d| d.channel.id == runs_ch.id && d.attempts == 1));
    assert!(
        store
            .claim_alert_deliveries(t0(), 10, lease)
            .await
            .unwrap()
            .is_empty(),
        "a leased delivery is nobody else's"
    );
    let run_alert = claimed
        .iter()
        .find(|d| d.event == alert_event::RUN_FAILED)
        .unwrap();
    let error_alert = claimed
        .iter()
        .find(|d| d.event != alert_event::RUN_FAILED)
        .unwrap();
    store
        .finish_alert_delivery(&error_alert.id, DeliveryOutcome::Sent, t0())
        .await
        .unwrap();
    let later = t0() + Duration::seconds(2);
    store
        .finish_alert_delivery(
            &run_alert.id,
            DeliveryOutcome::Retry {
                at: later,
                error: "HTTP 503".into(),
            },
            t0(),
        )
        .await
        .unwrap();
    assert!(store
        .claim_alert_deliveries(t0(), 10, lease)
        .await
        .unwrap()
        .is_empty());
    let retry = store
        .claim_alert_deliveries(later, 10, lease)
        .await
        .unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(
        (retry[0].id.as_str(), retry[0].attempts),
        (run_alert.id.as_str(), 2)
    );
    store
        .finish_alert_delivery(
            &run_alert.id,
            DeliveryOutcome::Dead {
                error: "HTTP 500".into(),
            },
            later,
        )
        .await
        .unwrap();
    // A lease that ran out hands the delivery over: not this one, it is dead.
    assert!(store
        .claim_alert_deliveries(later + Duration::hours(1), 10, lease)
        .await
        .unwrap()
        .is_empty());
    let listed = store.list_alert_deliveries(&project.id, 10).await.unwrap();
    let dead = listed.iter().find(|d| d.id == run_alert.id).unwrap();
    assert_eq!((dead.status.as_str(), dead.attempts), ("DEAD", 2));
    assert_eq!(dead.last_error.as_deref(), Some("HTTP 500"));
    let sent = listed.iter().find(|d| d.id == error_alert.id).unwrap();
    assert_eq!((sent.status.as_str(), sent.sent_at), ("SENT", Some(t0())));
    let (_, _, other) = fixture(&*store).await;
    assert!(!store
        .resend_alert_delivery(&other.id, &run_alert.id, later)
        .await
        .unwrap());
    assert!(store
        .resend_alert_delivery(&project.id, &run_alert.id, later)
        .await
        .unwrap());
    let resent = store
        .claim_alert_deliveries(later, 10, lease)
        .await
        .unwrap();
    assert_eq!(resent.len(), 1, "a resend is due at once");
    // A disabled channel's deliveries wait for it.
    store
        .finish_alert_delivery(
            &resent[0].id,
            DeliveryOutcome::Retry {
                at: later,
                error: "HTTP 502".into(),
            },
            later,
        )
        .await
        .unwrap();
    store
        .set_alert_channel_enabled(&project.id, &runs_ch.friendly_id, false, later)
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .claim_alert_deliveries(later, 10, lease)
        .await
        .unwrap()
        .is_empty());
    store
        .set_alert_channel_enabled(&project.id, &runs_ch.friendly_id, true, later)
        .await
        .unwrap()
        .unwrap();
    let resumed = store
        .claim_alert_deliveries(later, 10, lease)
        .await
        .unwrap();
    assert_eq!(resumed.len(), 1, "enabled again, it is delivered");
    assert_eq!(resumed[0].id, resent[0].id);
    // A deployment that fails tells a channel that asked for it.
    store
        .upsert_alert_channel(
            channel(
                &project.id,
                Some("deploys"),
                &[ALERT_DEPLOYMENT_FAILURE],
                &both,
            ),
            later,
        )
        .await
        .unwrap();
    let (dep, _) = store
        .create_deployment(super::deploys::deployment(&env, "h1", None), false, later)
        .await
        .unwrap();
    assert!(store
        .fail_deployment(
            &dep.id,
            r#"{"name":"IndexError","message":"no tasks"}"#,
            later
        )
        .await
        .unwrap());
    let claimed = store
        .claim_alert_deliveries(later, 10, lease)
        .await
        .unwrap();
    let failed: Vec<_> = claimed
        .iter()
        .filter(|d| d.event == alert_event::DEPLOYMENT_FAILED)
        .collect();
    assert_eq!(failed.len(), 1, "{claimed:?}");
    assert_eq!(failed[0].subject, dep.id.as_str());
    assert!(
        !store.fail_deployment(&dep.id, "{}", later).await.unwrap(),
        "a deployment fails once"
    );
    // Deleting the channel takes its deliveries.
    assert!(store
        .delete_alert_channel(&project.id, &runs_ch.friendly_id)
        .await
        .unwrap());
    assert!(store
        .list_alert_deliveries(&project.id, 10)
        .await
        .unwrap()
        .iter()
        .all(|d| d.channel_friendly_id != runs_ch.friendly_id));
}
