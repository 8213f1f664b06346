//! Error groups: what the stores keep of failed runs grouped by fingerprint, and the trait
//! the errors API reads and triages them through. What a fingerprint is, how versions compare
//! and when a group reopens are decided in `taskgate_core::errors`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use taskgate_core::errors::{GroupStatus, Ignore, TriageState};

use crate::StoreResult;

/// One (environment, task, fingerprint) group.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorGroup {
    pub id: String,
    pub environment_id: String,
    pub task_identifier: String,
    pub fingerprint: String,
    /// The algorithm the fingerprint was computed with (`taskgate_core::errors::FINGERPRINT_VERSION`).
    pub fingerprint_version: i32,
    pub error_type: String,
    pub error_message: String,
    pub sample_stack: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Every occurrence, all time.
    pub occurrence_count: i64,
    /// As stored; a read reports `triage.as_of(now)`.
    pub triage: TriageState,
}

/// A group on a list page.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedErrorGroup {
    pub group: ErrorGroup,
    /// Occurrences within the requested window (and versions).
    pub count: i64,
    /// First and last occurrence of the fingerprint under any task of the environment.
    pub fingerprint_first_seen: DateTime<Utc>,
    pub fingerprint_last_seen: DateTime<Utc>,
}

/// A group with what its detail adds.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorGroupDetail {
    pub group: ErrorGroup,
    pub fingerprint_first_seen: DateTime<Utc>,
    pub fingerprint_last_seen: DateTime<Utc>,
    /// Distinct worker versions that failed with the fingerprint (any task), newest first, up
    /// to 5.
    pub affected_versions: Vec<String>,
}

/// A list position: a row's window count, fingerprint and task.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorCursor {
    pub occurrence_count: i64,
    pub fingerprint: String,
    pub task_identifier: String,
}

/// Which way a page goes from its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageDirection {
    /// Rows after the cursor in list order (fewer occurrences).
    After,
    /// Rows before it.
    Before,
}

/// What a list asks for. Sorted by window count, then fingerprint, then task, descending.
#[derive(Debug, Clone)]
pub struct ErrorListQuery {
    pub task_identifiers: Vec<String>,
    /// Count only these versions' occurrences (all when empty).
    pub versions: Vec<String>,
    /// Only groups in these statuses, as of `now` (all when empty).
    pub statuses: Vec<GroupStatus>,
    /// Lower-cased; matched as a substring of the type or message.
    pub search: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub size: u32,
    pub cursor: Option<(ErrorCursor, PageDirection)>,
    pub now: DateTime<Utc>,
}

/// A list page in list order; `has_more` when rows lie beyond it in the page's direction.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorPage {
    pub rows: Vec<ListedErrorGroup>,
    pub has_more: bool,
}

/// A triage request.
#[derive(Debug, Clone, PartialEq)]
pub enum TriageAction {
    Resolve { in_version: Option<String> },
    Ignore(Ignore),
    Unresolve,
}

impl TriageAction {
    /// The activity entry's action.
    pub fn action(&self) -> &'static str {
        match self {
            TriageAction::Resolve { .. } => "resolved",
            TriageAction::Ignore(_) => "ignored",
            TriageAction::Unresolve => "unresolved",
        }
    }
}

/// Who triaged: the user a JWT acts for (none for an environment key), and the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriageActor {
    pub user_id: Option<String>,
    /// `secret_key`, `grace_key`, `public_jwt`, or `system` for the server's own changes.
    pub credential_kind: String,
    pub credential_id: Option<String>,
}

impl TriageActor {
    /// The server itself (a periodic un-ignore).
    pub fn system() -> Self {
        TriageActor {
            user_id: None,
            credential_kind: "system".into(),
            credential_id: None,
        }
    }
}

/// One entry of a group's history.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorActivity {
    pub seq: i64,
    pub task_identifier: String,
    /// `resolved`, `ignored`, `unresolved`, `regressed` or `unignored`.
    pub action: String,
    pub occurred_at: DateTime<Utc>,
    pub actor_user_id: Option<String>,
    pub credential_kind: String,
    pub credential_id: Option<String>,
    /// The reason an ignore gave.
    pub reason: Option<String>,
    /// What else the entry says: a resolve's version, an ignore's conditions, why a group
    /// reopened.
    pub detail: Option<String>,
}

/// One failed run's error, as recorded for its group (the engine records these itself when a
/// run fails; benchmarks and imports record them directly).
#[derive(Debug, Clone)]
pub struct ErrorOccurrence<'a> {
    pub environment_id: &'a str,
    pub task_identifier: &'a str,
    pub task_version: Option<&'a str>,
    /// The run's `TaskRunError` JSON.
    pub error: &'a serde_json::Value,
    /// The run's creation (the occurrence's time, as upstream).
    pub run_created_at: DateTime<Utc>,
}

#[async_trait]
pub trait ErrorStore: Send + Sync {
    /// A page of `environment_id`'s groups with occurrences in the query's window.
    async fn list_error_groups(
        &self,
        environment_id: &str,
        query: &ErrorListQuery,
    ) -> StoreResult<ErrorPage>;

    /// The group of `fingerprint` (the most recently seen, when several tasks share it).
    async fn get_error_group(
        &self,
        environment_id: &str,
        fingerprint: &str,
    ) -> StoreResult<Option<ErrorGroupDetail>>;

    /// Resolves, ignores or unresolves every group of `fingerprint` in the environment, and
    /// writes the history entry; `None` when there is no such group.
    async fn triage_error_group(
        &self,
        environment_id: &str,
        fingerprint: &str,
        action: TriageAction,
        actor: &TriageActor,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ErrorGroupDetail>>;

    /// The history of `fingerprint`'s groups, newest first, from before `before_seq`.
    async fn list_error_activity(
        &self,
        environment_id: &str,
        fingerprint: &str,
        before_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<ErrorActivity>>;

    /// Records occurrences in one transaction (what run completion does for one run inside
    /// its own); a group's occurrences are applied in the order given. Returns each one's
    /// fingerprint, in the order given, `None` for an error that is not grouped.
    async fn record_error_occurrences(
        &self,
        occurrences: &[ErrorOccurrence<'_>],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Option<String>>>;

    /// The counts of `group_ids` in the buckets of `granularity` starting in `from..to` (ms),
    /// for each of `versions` (all versions together when empty), as `(group id, version,
    /// bucket start, count)`, the version `*` for all: what an activity chart draws
    /// (`taskgate_core::errors::Series` chooses the granularity and range).
    async fn error_count_series(
        &self,
        environment_id: &str,
        group_ids: &[String],
        versions: &[String],
        granularity: i32,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<(String, String, i64, i64)>>;

    /// Reopens ignored groups whose duration has passed, recording why; how many.
    async fn reopen_expired_ignores(&self, now: DateTime<Utc>) -> StoreResult<u64>;

    /// Deletes minute and span buckets that end by `before` (all-time counts are kept);
    /// how many rows.
    async fn purge_error_buckets(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}
