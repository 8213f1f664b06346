//! The conformance suite: behaviour every backend must show, run by each backend's own tests
//! through [`conformance_suite!`](crate::conformance_suite). Cases live by area in the
//! submodules; the helpers here build fixtures they share.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a failed step is a failed test"
)]

mod alerts;
mod deploys;
mod engine;
mod errors;
mod keys;
mod packets;
mod runs;
mod schedules;
mod sessions;
mod tenancy;
pub mod upgrades;
mod waits;

pub use alerts::*;
pub use deploys::*;
pub use engine::*;
pub use errors::*;
pub use keys::*;
pub use packets::*;
pub use runs::*;
pub use schedules::*;
pub use sessions::*;
pub use tenancy::*;
pub use waits::*;

use chrono::{DateTime, TimeZone, Utc};
use taskgate_core::env::EnvType;
use taskgate_core::hash::sha256_hex;
use taskgate_core::ids::new_id;

use crate::*;

/// Keys for tests: random values whose "sealed" form is the plaintext marked as such.
pub struct TestMinter;

impl TestMinter {
    pub fn material(plain: &str) -> KeyMaterial {
        KeyMaterial {
            hash: sha256_hex(plain),
            sealed: format!("sealed:{plain}"),
            last_four: plain[plain.len() - 4..].to_string(),
        }
    }
}

impl KeyMinter for TestMinter {
    fn mint(&self, env_type: EnvType) -> EnvKeys {
        EnvKeys {
            secret: Self::material(&format!("{}{}", env_type.key_prefix(), new_id())),
            public: Self::material(&format!("{}{}", env_type.pk_prefix(), new_id())),
        }
    }
}

/// The plaintext behind a [`TestMinter`] sealed value.
pub fn unseal(sealed: &str) -> String {
    sealed.trim_start_matches("sealed:").to_string()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn system() -> Actor {
    Actor {
        user_id: None,
        credential_id: None,
        credential_kind: "system".into(),
    }
}

async fn user(store: &dyn Store, email: &str) -> User {
    store
        .create_user(
            NewUser {
                email: email.into(),
                name: None,
                admin: false,
            },
            &system(),
            t0(),
        )
        .await
        .unwrap()
}

/// An org owned by a new user, with one project.
pub async fn fixture(store: &dyn Store) -> (User, Organization, Project) {
    let owner = user(store, &format!("{}@example.com", new_id())).await;
    let slug = format!("org-{}", new_id());
    let org = store
        .create_org("Acme", &slug, &owner.id, t0())
        .await
        .unwrap();
    let project = store
        .create_project(
            &org.id,
            "Web",
            "web",
            &format!("proj_{}", &new_id()[..20]),
            &TestMinter,
            t0(),
        )
        .await
        .unwrap();
    (owner, org, project)
}

/// Expands to one `#[tokio::test]` per conformance case. `$factory` is an async fn returning
/// `(Arc<dyn Store>, cleanup)` on a fresh, empty database; `cleanup` is a future that removes
/// that database once the case has passed.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@cases $factory;
            users_have_unique_emails, bootstrap_happens_once, pats_revoke_for_their_owner_only,
            pat_last_access_is_throttled, projects_get_environments_for_every_member,
            soft_deleted_projects_disappear, soft_deleted_orgs_take_their_keys_with_them,
            key_lookup_is_two_step_and_honours_grace,
            concurrent_rotations_lose_no_key,
            live_key_hashes_are_every_key_that_authenticates, branches_resolve_until_archived,
            audit_log_records_rotations_and_grace_changes, revoked_key_usage_accumulates,
            changes_are_published, runs_trigger_with_idempotency_and_one_time_tokens,
            retried_requests_get_their_first_run,
            runs_list_in_pages_with_filters, runs_list_by_tag_alike_whether_few_or_many_runs_carry_it,
            runs_change_state_once_and_stop_when_final,
            due_runs_start_or_expire, streams_append_and_resume,
            streaming_writers_resume_without_sending_a_line_twice, batches_dedupe_items_and_seal,
            batches_spend_one_time_tokens, workers_register_with_daily_versions,
            dequeue_takes_known_tasks_oldest_first, dequeue_honours_the_concurrency_limit,
            attempts_start_complete_and_are_recorded, failed_attempts_keep_their_errors_and_retry,
            the_sweeper_recovers_stalled_runs, env_vars_are_set_listed_and_deleted,
            run_logs_stay_in_their_environment,
            run_spans_replace_their_partial_copy_and_stay_in_their_environment,
            dev_presence_is_remembered,
            cancelling_a_queued_run_is_immediate_and_an_executing_one_waits,
            concurrent_idempotent_triggers_share_one_run,
            concurrent_idempotent_batches_share_one_batch,
            a_run_that_fails_for_good_is_one_occurrence_of_its_group,
            error_pages_are_the_same_whichever_groups_are_read_first,
            a_rare_filter_among_many_groups_lists_exactly_its_matches,
            groups_list_by_their_count_in_the_window, window_counts_are_exact_over_days_and_weeks,
            error_pages_go_both_ways,
            triage_is_recorded_with_its_actor, resolved_groups_reopen_when_they_fail_again,
            ignores_end_on_time_rate_or_total, a_resolve_racing_an_occurrence_loses_neither,
            purging_buckets_keeps_all_time_counts, purging_reaches_every_environment_and_version,
            purging_goes_in_chunks_through_large_ranges,
            concurrent_batches_sharing_groups_both_land,
            activity_series_count_each_bucket_of_a_group,
            members_change_role_and_leave_with_their_dev_environments,
            org_rate_limits_are_set_cleared_and_audited,
            sign_in_links_work_once_and_not_after_expiry,
            sessions_live_until_ended_expired_or_demoted,
            authorization_codes_are_approved_once_and_redeemed_once,
            a_child_finishing_continues_its_waiting_parent,
            a_failed_or_finished_child_hands_its_parent_the_outcome,
            a_batch_continues_its_parent_once_sealed_and_every_run_finished,
            points_in_time_fire_once_when_due, tokens_complete_time_out_and_list,
            a_cancelled_waiting_run_stops_waiting,
            queue_limits_hold_per_concurrency_key_and_not_for_waiting_runs,
            queues_count_their_runs_pause_and_keep_overrides,
            bundle_uploads_are_one_shot_sized_and_expire,
            deployments_are_versioned_indexed_failed_and_promoted,
            imperative_schedules_upsert_list_update_and_delete,
            schedule_fires_are_claimed_once_and_missed_times_collapse,
            concurrent_claims_hand_each_fire_to_one_caller,
            declarative_schedules_follow_the_current_worker,
            input_stream_waits_complete_with_the_next_record,
            workers_are_found_by_version_and_queues_by_name,
            packets_are_kept_per_environment_and_replaced,
            debounced_triggers_collapse_into_one_delayed_run,
            alerts_queue_once_per_channel_and_are_claimed_retried_and_kept);
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, cleanup) = $factory().await;
                $crate::conformance::$case(store.clone()).await;
                store.close().await;
                cleanup.await;
            }
        )*
    };
}
