//! Error groups: recording a failed run as an occurrence of its group (inside the
//! transaction that finalises the run), listing groups by their count in a window, triage,
//! and the history of every change.
//!
//! Compiled into both backends (`#[path]` modules of `taskgate-store-sqlite` and
//! `taskgate-store-postgres`) against their `backend` module: see `README.md` beside this file.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};
use taskgate_core::errors::{
    buckets_of, fingerprint, granularity, newest_versions, on_occurrence, on_tick, sample,
    window_buckets, GroupStatus, Occurrence, Reopening, TriageState, FINGERPRINT_VERSION,
};
use taskgate_core::ids::new_id;
use taskgate_core::time::to_millis;
use taskgate_store::*;

use crate::backend::*;
use crate::count;
use crate::error::map_err;
use crate::rows::{s, s_opt, ts, ts_opt};

/// The version of the all-versions buckets.
const ALL_VERSIONS: &str = "*";
/// Versions fetched for a detail's `affectedVersions` before the newest five are kept.
const VERSIONS_FETCHED: i64 = 100;
/// Groups sampled to judge how many a list's filter on the groups leaves.
const FILTER_SAMPLE: i64 = 1_000;
/// Expired ignores reopened per sweep (the rest wait for the next one).
const REOPEN_BATCH: i64 = 500;

/// The columns of a group, unqualified (for `RETURNING`).
const GROUP_FIELDS: &[&str] = &[
    "id",
    "environment_id",
    "task_identifier",
    "fingerprint",
    "fingerprint_version",
    "error_type",
    "error_message",
    "sample_stack",
    "first_seen",
    "last_seen",
    "occurrence_count",
    "status",
    "resolved_at",
    "resolved_in_version",
    "resolved_by",
    "ignored_at",
    "ignored_until",
    "ignored_until_occurrence_rate",
    "ignored_until_total_occurrences",
    "ignored_at_occurrence_count",
    "ignored_reason",
    "ignored_by_user_id",
];

/// The group columns, each prefixed with `prefix` (`"g."`, or `""`).
fn group_cols(prefix: &str) -> String {
    GROUP_FIELDS
        .iter()
        .map(|f| format!("{prefix}{f}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn triage(row: &DbRow) -> StoreResult<TriageState> {
    let status: String = s(row, "status")?;
    Ok(TriageState {
        status: GroupStatus::from_db(&status)
            .ok_or_else(|| StoreError::Other(format!("corrupt error group status {status:?}")))?,
        resolved_at: ts_opt(row, "resolved_at")?,
        resolved_in_version: s_opt(row, "resolved_in_version")?,
        resolved_by: s_opt(row, "resolved_by")?,
        ignored_at: ts_opt(row, "ignored_at")?,
        ignored_until: ts_opt(row, "ignored_until")?,
        ignored_until_occurrence_rate: row
            .try_get("ignored_until_occurrence_rate")
            .map_err(map_err)?,
        ignored_until_total_occurrences: row
            .try_get("ignored_until_total_occurrences")
            .map_err(map_err)?,
        ignored_at_occurrence_count: row
            .try_get("ignored_at_occurrence_count")
            .map_err(map_err)?,
        ignored_reason: s_opt(row, "ignored_reason")?,
        ignored_by_user_id: s_opt(row, "ignored_by_user_id")?,
    })
}

fn group(row: &DbRow) -> StoreResult<ErrorGroup> {
    Ok(ErrorGroup {
        id: s(row, "id")?,
        environment_id: s(row, "environment_id")?,
        task_identifier: s(row, "task_identifier")?,
        fingerprint: s(row, "fingerprint")?,
        fingerprint_version: row.try_get("fingerprint_version").map_err(map_err)?,
        error_type: s(row, "error_type")?,
        error_message: s(row, "error_message")?,
        sample_stack: s(row, "sample_stack")?,
        first_seen: ts(row, "first_seen")?,
        last_seen: ts(row, "last_seen")?,
        occurrence_count: row.try_get("occurrence_count").map_err(map_err)?,
        triage: triage(row)?,
    })
}

fn activity(row: &DbRow) -> StoreResult<ErrorActivity> {
    Ok(ErrorActivity {
        seq: row.try_get("seq").map_err(map_err)?,
        task_identifier: s(row, "task_identifier")?,
        action: s(row, "action")?,
        occurred_at: ts(row, "occurred_at")?,
        actor_user_id: s_opt(row, "actor_user_id")?,
        credential_kind: s(row, "credential_kind")?,
        credential_id: s_opt(row, "credential_id")?,
        reason: s_opt(row, "reason")?,
        detail: s_opt(row, "detail")?,
    })
}

/// Writes `state` onto group `id`.
async fn write_triage(
    conn: &mut DbConn,
    id: &str,
    state: &TriageState,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    count("write_error_triage");
    sqlx::query(
        "UPDATE error_groups SET status = $2, resolved_at = $3, resolved_in_version = $4, resolved_by = $5,
             ignored_at = $6, ignored_until = $7, ignored_until_occurrence_rate = $8,
             ignored_until_total_occurrences = $9, ignored_at_occurrence_count = $10,
             ignored_reason = $11, ignored_by_user_id = $12, updated_at = $13
         WHERE id = $1",
    )
    .bind(id)
    .bind(state.status.as_db())
    .bind(state.resolved_at.map(to_millis))
    .bind(state.resolved_in_version.as_deref())
    .bind(state.resolved_by.as_deref())
    .bind(state.ignored_at.map(to_millis))
    .bind(state.ignored_until.map(to_millis))
    .bind(state.ignored_until_occurrence_rate)
    .bind(state.ignored_until_total_occurrences)
    .bind(state.ignored_at_occurrence_count)
    .bind(state.ignored_reason.as_deref())
    .bind(state.ignored_by_user_id.as_deref())
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// One history entry.
struct Entry<'a> {
    group: &'a ErrorGroup,
    action: &'a str,
    actor: &'a TriageActor,
    reason: Option<&'a str>,
    detail: Option<String>,
    at: DateTime<Utc>,
}

async fn append_activity(conn: &mut DbConn, e: Entry<'_>) -> StoreResult<()> {
    count("append_error_activity");
    sqlx::query(
        "INSERT INTO error_group_activity (environment_id, fingerprint, task_identifier, action, occurred_at,
             actor_user_id, credential_kind, credential_id, reason, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&e.group.environment_id)
    .bind(&e.group.fingerprint)
    .bind(&e.group.task_identifier)
    .bind(e.action)
    .bind(to_millis(e.at))
    .bind(e.actor.user_id.as_deref())
    .bind(&e.actor.credential_kind)
    .bind(e.actor.credential_id.as_deref())
    .bind(e.reason)
    .bind(e.detail)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Reopens `g` for `why`: unresolved, every triage field cleared, the history told.
async fn reopen(
    conn: &mut DbConn,
    g: &ErrorGroup,
    why: &Reopening,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    write_triage(conn, &g.id, &TriageState::unresolved(), now).await?;
    let event = match why {
        Reopening::Regressed { .. } => alert_event::ERROR_REGRESSION,
        _ => alert_event::ERROR_UNIGNORED,
    };
    crate::alerts::enqueue_alerts(
        conn,
        &g.environment_id,
        ALERT_ERROR_GROUP,
        event,
        &g.fingerprint,
        Some(&g.task_identifier),
        now,
    )
    .await?;
    append_activity(
        conn,
        Entry {
            group: g,
            action: why.action(),
            actor: &TriageActor::system(),
            reason: None,
            detail: Some(why.detail()),
            at: now,
        },
    )
    .await
}

/// The detail of `fingerprint`'s most recently seen group, read within `conn`.
async fn detail(
    conn: &mut DbConn,
    environment_id: &str,
    fingerprint: &str,
) -> StoreResult<Option<ErrorGroupDetail>> {
    count("get_error_group");
    let row = sqlx::query(&format!(
        "SELECT {},
             (SELECT MIN(f.first_seen) FROM error_groups f WHERE f.environment_id = g.environment_id AND f.fingerprint = g.fingerprint) AS fp_first_seen,
             (SELECT MAX(f.last_seen) FROM error_groups f WHERE f.environment_id = g.environment_id AND f.fingerprint = g.fingerprint) AS fp_last_seen
         FROM error_groups g WHERE g.environment_id = $1 AND g.fingerprint = $2
         ORDER BY g.last_seen DESC, g.task_identifier LIMIT 1",
        group_cols("g.")
    ))
    .bind(environment_id)
    .bind(fingerprint)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?;
    let Some(row) = row else {
        return Ok(None);
    };
    count("error_group_versions");
    let versions: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT c.version FROM error_counts c JOIN error_groups g ON g.id = c.group_id
         WHERE g.environment_id = $1 AND g.fingerprint = $2 AND c.granularity = $3 AND c.version <> $4
         LIMIT $5",
    )
    .bind(environment_id)
    .bind(fingerprint)
    .bind(granularity::ALL_TIME)
    .bind(ALL_VERSIONS)
    .bind(VERSIONS_FETCHED)
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(Some(ErrorGroupDetail {
        group: group(&row)?,
        fingerprint_first_seen: ts(&row, "fp_first_seen")?,
        fingerprint_last_seen: ts(&row, "fp_last_seen")?,
        affected_versions: newest_versions(versions.into_iter().map(|(v,)| v).collect(), 5),
    }))
}

impl Backend {
    /// Records a failed run as an occurrence of its group, in the caller's transaction: the
    /// group's aggregates and buckets, the run's fingerprint, and a reopening when the
    /// occurrence calls for one. `None` (and nothing written) for an error that is not
    /// grouped.
    pub(crate) async fn record_occurrence(
        &self,
        conn: &mut DbConn,
        o: &ErrorOccurrence<'_>,
        run_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>> {
        self.record_fingerprinted(conn, o, fingerprint(o.error), run_id, now)
            .await
    }

    /// [`Self::record_occurrence`] with the error's fingerprint already computed.
    async fn record_fingerprinted(
        &self,
        conn: &mut DbConn,
        o: &ErrorOccurrence<'_>,
        fp: String,
        run_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>> {
        if fp.is_empty() {
            return Ok(None);
        }
        let sample = sample(o.error);
        let created = to_millis(o.run_created_at);
        let now_ms = to_millis(now);
        let minute = now_ms - now_ms.rem_euclid(60_000);
        count("upsert_error_group");
        let row = sqlx::query(&format!(
            "INSERT INTO error_groups (id, environment_id, task_identifier, fingerprint, fingerprint_version,
                 error_type, error_message, sample_stack, first_seen, last_seen, occurrence_count,
                 rate_minute, rate_count, status, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 1, $10, 1, 'UNRESOLVED', $11)
             ON CONFLICT (environment_id, task_identifier, fingerprint) DO UPDATE SET
                 first_seen = CASE WHEN excluded.first_seen < error_groups.first_seen
                                   THEN excluded.first_seen ELSE error_groups.first_seen END,
                 last_seen = CASE WHEN excluded.last_seen > error_groups.last_seen
                                  THEN excluded.last_seen ELSE error_groups.last_seen END,
                 occurrence_count = error_groups.occurrence_count + 1,
                 error_type = excluded.error_type,
                 error_message = excluded.error_message,
                 sample_stack = excluded.sample_stack,
                 rate_count = CASE WHEN error_groups.rate_minute = excluded.rate_minute
                                   THEN error_groups.rate_count + 1 ELSE 1 END,
                 rate_minute = excluded.rate_minute,
                 updated_at = excluded.updated_at
             RETURNING {}, rate_count",
            group_cols("")
        ))
        .bind(new_id())
        .bind(o.environment_id)
        .bind(o.task_identifier)
        .bind(&fp)
        .bind(FINGERPRINT_VERSION)
        .bind(&sample.error_type)
        .bind(&sample.error_message)
        .bind(&sample.stack)
        .bind(created)
        .bind(minute)
        .bind(now_ms)
        .fetch_one(&mut *conn)
        .await
        .map_err(map_err)?;
        let g = group(&row)?;
        let this_minute: i64 = row.try_get("rate_count").map_err(map_err)?;

        let versions: Vec<&str> = std::iter::once(ALL_VERSIONS)
            .chain(
                o.task_version
                    .filter(|v| !v.is_empty() && *v != ALL_VERSIONS),
            )
            .collect();
        count("count_error_occurrence");
        let mut q: QueryBuilder<Db> = QueryBuilder::new(
            "INSERT INTO error_counts (environment_id, version, granularity, bucket, group_id, count) ",
        );
        q.push_values(
            versions
                .iter()
                .flat_map(|v| buckets_of(created).map(|b| (*v, b))),
            |mut row, (version, (gran, bucket))| {
                row.push_bind(o.environment_id)
                    .push_bind(version)
                    .push_bind(gran)
                    .push_bind(bucket)
                    .push_bind(&g.id)
                    .push_bind(1i64);
            },
        );
        q.push(
            " ON CONFLICT (environment_id, version, granularity, bucket, group_id)
              DO UPDATE SET count = error_counts.count + 1",
        );
        q.build().execute(&mut *conn).await.map_err(map_err)?;

        if let Some(run_id) = run_id {
            count("mark_run_fingerprint");
            sqlx::query("UPDATE task_runs SET error_fingerprint = $2 WHERE id = $1")
                .bind(run_id)
                .bind(&fp)
                .execute(&mut *conn)
                .await
                .map_err(map_err)?;
        }

        if g.occurrence_count == 1 {
            crate::alerts::enqueue_alerts(
                conn,
                o.environment_id,
                ALERT_ERROR_GROUP,
                alert_event::ERROR_NEW_ISSUE,
                &fp,
                Some(o.task_identifier),
                now,
            )
            .await?;
        }
        let occurrence = Occurrence {
            version: o.task_version,
            total: g.occurrence_count,
            this_minute,
            at: now,
        };
        if let Some(why) = on_occurrence(&g.triage, &occurrence) {
            reopen(conn, &g, &why, now).await?;
        }
        Ok(Some(fp))
    }
}

/// Whether the list filters on the groups themselves (task, status, search) rather than only
/// on their counts (window, versions).
fn has_group_filters(query: &ErrorListQuery) -> bool {
    !query.task_identifiers.is_empty()
        || status_filter(query).is_some()
        || query.search.as_deref().is_some_and(|t| !t.is_empty())
}

/// The statuses asked for, unless they are all of them (or none: no filter).
fn status_filter(query: &ErrorListQuery) -> Option<Vec<GroupStatus>> {
    let mut statuses = query.statuses.clone();
    statuses.dedup();
    let all = [
        GroupStatus::Unresolved,
        GroupStatus::Resolved,
        GroupStatus::Ignored,
    ];
    (!statuses.is_empty() && !all.iter().all(|s| statuses.contains(s))).then_some(statuses)
}

/// ` AND …` for the list's filters on the groups `g`.
fn push_group_filters(q: &mut QueryBuilder<'_, Db>, query: &ErrorListQuery) {
    if !query.task_identifiers.is_empty() {
        q.push(" AND g.task_identifier IN (");
        let mut tasks = q.separated(", ");
        for t in &query.task_identifiers {
            tasks.push_bind(t.clone());
        }
        q.push(")");
    }
    if let Some(statuses) = status_filter(query) {
        // As a read at `now` sees it: an ignore past its time is unresolved.
        q.push(
            " AND (CASE WHEN g.status = 'IGNORED' AND g.ignored_until IS NOT NULL AND g.ignored_until <= ",
        )
        .push_bind(to_millis(query.now))
        .push(" THEN 'UNRESOLVED' ELSE g.status END) IN (");
        let mut wanted = q.separated(", ");
        for st in &statuses {
            wanted.push_bind(st.as_db());
        }
        q.push(")");
    }
    if let Some(term) = query.search.as_deref().filter(|t| !t.is_empty()) {
        let escaped = term
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("%{escaped}%");
        q.push(" AND (LOWER(g.error_type) LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR LOWER(g.error_message) LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    }
}

impl Backend {
    /// How many of the environment's groups (the first `sample` in fingerprint order, which
    /// is a hash's and so as good as random, or all) there are, and how many of them the
    /// list's filters on the groups keep.
    async fn filter_share(
        &self,
        environment_id: &str,
        query: &ErrorListQuery,
        sample: Option<i64>,
    ) -> StoreResult<(i64, i64)> {
        let mut c: QueryBuilder<Db> =
            QueryBuilder::new("SELECT COUNT(*) AS groups, COALESCE(SUM(CASE WHEN 1 = 1");
        push_group_filters(&mut c, query);
        c.push(
            " THEN 1 ELSE 0 END), 0) AS matching FROM (SELECT g.task_identifier, g.status, g.ignored_until, g.error_type, g.error_message FROM error_groups g WHERE g.environment_id = ",
        )
        .push_bind(environment_id);
        if let Some(n) = sample {
            c.push(" ORDER BY g.fingerprint LIMIT ").push_bind(n);
        }
        c.push(") g");
        count("count_filtered_error_groups");
        let row = c.build().fetch_one(&self.reader).await.map_err(map_err)?;
        Ok((
            row.try_get("groups").map_err(map_err)?,
            row.try_get("matching").map_err(map_err)?,
        ))
    }

    /// Up to a page and one more of the list, in list order (reversed for a page before its
    /// cursor), chosen among the groups whose window count reaches the `candidates`-th
    /// largest (beyond the cursor), or among all of them.
    async fn list_error_rows(
        &self,
        environment_id: &str,
        query: &ErrorListQuery,
        ranges: &[(i32, i64, i64, i64)],
        candidates: Option<i64>,
    ) -> StoreResult<Vec<ListedErrorGroup>> {
        let mut q: QueryBuilder<Db> = QueryBuilder::new(
            "WITH w AS (SELECT u.group_id, CAST(SUM(u.count) AS BIGINT) AS n FROM (",
        );
        // One index range per bucket range: an OR across them would read every bucket of
        // the environment's versions.
        for (i, (gran, from, to, sign)) in ranges.iter().enumerate() {
            if i > 0 {
                q.push(" UNION ALL ");
            }
            let count = if *sign < 0 { "-c.count" } else { "c.count" };
            q.push(format!(
                "SELECT c.group_id, {count} AS count FROM error_counts c WHERE c.environment_id = "
            ))
            .push_bind(environment_id)
            .push(" AND c.version IN (");
            {
                let mut versions = q.separated(", ");
                if query.versions.is_empty() {
                    versions.push_bind(ALL_VERSIONS);
                }
                for v in &query.versions {
                    versions.push_bind(v.clone());
                }
            }
            q.push(") AND c.granularity = ")
                .push_bind(*gran)
                .push(" AND c.bucket >= ")
                .push_bind(*from)
                .push(" AND c.bucket < ")
                .push_bind(*to);
        }
        // The page is chosen first; the fingerprint-wide first and last occurrence are read
        // for its rows only.
        q.push(format!(
            ") u GROUP BY u.group_id HAVING SUM(u.count) > 0)
             SELECT p.*,
                 (SELECT MIN(f.first_seen) FROM error_groups f WHERE f.environment_id = p.environment_id AND f.fingerprint = p.fingerprint) AS fp_first_seen,
                 (SELECT MAX(f.last_seen) FROM error_groups f WHERE f.environment_id = p.environment_id AND f.fingerprint = p.fingerprint) AS fp_last_seen
             FROM (SELECT {}, w.n FROM w JOIN error_groups g ON g.id = w.group_id WHERE g.environment_id = ",
            group_cols("g.")
        ));
        q.push_bind(environment_id);
        push_group_filters(&mut q, query);
        let backward = matches!(query.cursor, Some((_, PageDirection::Before)));
        // The list runs by count descending; a page before its cursor is read ascending.
        let (op, order) = if backward {
            (">", "ASC")
        } else {
            ("<", "DESC")
        };
        if let Some(k) = candidates {
            // The count of the k-th group strictly past the cursor's count (none: fewer than
            // k, and all are candidates); the groups at the cursor's count are candidates too,
            // the cursor's own condition choosing among them.
            let (at_least, floor) = if backward {
                ("<=", i64::MAX)
            } else {
                (">=", 0)
            };
            q.push(format!(" AND w.n {at_least} COALESCE((SELECT x.n FROM w x"));
            if let Some((c, _)) = &query.cursor {
                q.push(format!(" WHERE x.n {op} "))
                    .push_bind(c.occurrence_count);
            }
            q.push(format!(" ORDER BY x.n {order} LIMIT 1 OFFSET "))
                .push_bind(k - 1)
                .push("), ")
                .push_bind(floor)
                .push(")");
        }
        if let Some((c, _)) = &query.cursor {
            q.push(format!(" AND (w.n {op} "))
                .push_bind(c.occurrence_count)
                .push(" OR (w.n = ")
                .push_bind(c.occurrence_count)
                .push(format!(" AND (g.fingerprint{BYTEWISE} {op} "))
                .push_bind(c.fingerprint.clone())
                .push(format!("{BYTEWISE} OR (g.fingerprint = "))
                .push_bind(c.fingerprint.clone())
                .push(format!(" AND g.task_identifier{BYTEWISE} {op} "))
                .push_bind(c.task_identifier.clone())
                .push(format!("{BYTEWISE}))))"));
        }
        q.push(format!(
            " ORDER BY w.n {order}, g.fingerprint{BYTEWISE} {order}, g.task_identifier{BYTEWISE} {order} LIMIT "
        ))
        .push_bind(i64::from(query.size) + 1)
        .push(format!(
            ") p ORDER BY p.n {order}, p.fingerprint{BYTEWISE} {order}, p.task_identifier{BYTEWISE} {order}"
        ));
        count("list_error_groups");
        let rows = q.build().fetch_all(&self.reader).await.map_err(map_err)?;
        rows.iter()
            .map(|row| {
                Ok(ListedErrorGroup {
                    group: group(row)?,
                    count: row.try_get("n").map_err(map_err)?,
                    fingerprint_first_seen: ts(row, "fp_first_seen")?,
                    fingerprint_last_seen: ts(row, "fp_last_seen")?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl ErrorStore for Backend {
    async fn list_error_groups(
        &self,
        environment_id: &str,
        query: &ErrorListQuery,
    ) -> StoreResult<ErrorPage> {
        // A window that runs to the present may take spans that reach past its end, less
        // the minutes after it (which are empty): fewer buckets per group.
        let open_end = query.to >= query.now;
        let ranges = window_buckets(to_millis(query.from), to_millis(query.to), open_end);
        if ranges.is_empty() {
            return Ok(ErrorPage {
                rows: Vec::new(),
                has_more: false,
            });
        }
        let rows = query.size as usize + 1;
        // A list is ordered by each group's count in the window, so every group with an
        // occurrence in it is counted; reading all of their rows to choose a page is what
        // costs. So the page is first chosen among the groups whose count reaches that of the
        // `candidates`-th largest, which reads only those groups' rows: with no filter on the
        // groups themselves, the page's rows are always among them. With one, the candidates
        // are as many more as the filter's share of the environment's groups suggests, and
        // when they turn out too few, every counted group is read.
        let candidates = if has_group_filters(query) {
            // The filter's share of a sample of the groups, or of all of them when none of the
            // sample matches (a search for something rare, or absent).
            let (mut groups, mut matching) = self
                .filter_share(environment_id, query, Some(FILTER_SAMPLE))
                .await?;
            if matching == 0 && groups == FILTER_SAMPLE {
                (groups, matching) = self.filter_share(environment_id, query, None).await?;
            }
            if matching == 0 {
                return Ok(ErrorPage {
                    rows: Vec::new(),
                    has_more: false,
                });
            }
            // Twice the expected need, so an uneven spread of counts seldom runs short.
            let wanted = (2 * rows as i64).saturating_mul(groups) / matching;
            (groups == FILTER_SAMPLE || wanted < groups).then_some(wanted)
        } else {
            Some(rows as i64)
        };
        let mut listed = Vec::new();
        if let Some(k) = candidates {
            listed = self
                .list_error_rows(environment_id, query, &ranges, Some(k))
                .await?;
        }
        let complete = listed.len() >= rows || !has_group_filters(query);
        if candidates.is_none() || !complete {
            listed = self
                .list_error_rows(environment_id, query, &ranges, None)
                .await?;
        }
        let has_more = listed.len() > query.size as usize;
        listed.truncate(query.size as usize);
        if matches!(query.cursor, Some((_, PageDirection::Before))) {
            listed.reverse();
        }
        Ok(ErrorPage {
            rows: listed,
            has_more,
        })
    }

    async fn get_error_group(
        &self,
        environment_id: &str,
        fingerprint: &str,
    ) -> StoreResult<Option<ErrorGroupDetail>> {
        let mut conn = self.reader.acquire().await.map_err(map_err)?;
        detail(&mut conn, environment_id, fingerprint).await
    }

    async fn triage_error_group(
        &self,
        environment_id: &str,
        fingerprint: &str,
        action: TriageAction,
        actor: &TriageActor,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ErrorGroupDetail>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("lock_error_groups");
        let rows = sqlx::query(&format!(
            "SELECT {} FROM error_groups g WHERE g.environment_id = $1 AND g.fingerprint = $2
             ORDER BY g.task_identifier{FOR_UPDATE}",
            group_cols("g.")
        ))
        .bind(environment_id)
        .bind(fingerprint)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        if rows.is_empty() {
            tx.rollback().await.map_err(map_err)?;
            return Ok(None);
        }
        for row in &rows {
            let g = group(row)?;
            let (state, reason, detail) = match &action {
                TriageAction::Resolve { in_version } => (
                    TriageState::resolved(now, in_version.clone(), actor.user_id.clone()),
                    None,
                    in_version.as_ref().map(|v| format!("in version {v}")),
                ),
                TriageAction::Ignore(ignore) => (
                    TriageState::ignored(now, ignore, g.occurrence_count, actor.user_id.clone()),
                    ignore.reason.as_deref(),
                    ignore_conditions(ignore),
                ),
                TriageAction::Unresolve => (TriageState::unresolved(), None, None),
            };
            write_triage(&mut tx, &g.id, &state, now).await?;
            append_activity(
                &mut tx,
                Entry {
                    group: &g,
                    action: action.action(),
                    actor,
                    reason,
                    detail,
                    at: now,
                },
            )
            .await?;
        }
        let answer = detail(&mut tx, environment_id, fingerprint).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(answer)
    }

    async fn list_error_activity(
        &self,
        environment_id: &str,
        fingerprint: &str,
        before_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<ErrorActivity>> {
        count("list_error_activity");
        let rows = sqlx::query(
            "SELECT seq, task_identifier, action, occurred_at, actor_user_id, credential_kind, credential_id,
                    reason, detail
             FROM error_group_activity
             WHERE environment_id = $1 AND fingerprint = $2 AND seq < $3
             ORDER BY seq DESC LIMIT $4",
        )
        .bind(environment_id)
        .bind(fingerprint)
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(activity).collect()
    }

    async fn record_error_occurrences(
        &self,
        occurrences: &[ErrorOccurrence<'_>],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Option<String>>> {
        // Groups are written in one order (task, then fingerprint) whatever the callers'
        // order, so concurrent batches that share groups cannot deadlock; one group's
        // occurrences keep their order.
        let mut order: Vec<(usize, &str, String)> = occurrences
            .iter()
            .enumerate()
            .map(|(i, o)| (i, o.task_identifier, fingerprint(o.error)))
            .collect();
        order.sort_by(|a, b| (a.1, &a.2).cmp(&(b.1, &b.2)));
        let mut fingerprints = vec![None; occurrences.len()];
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        for (i, _, fp) in order {
            fingerprints[i] = self
                .record_fingerprinted(&mut tx, &occurrences[i], fp, None, now)
                .await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(fingerprints)
    }

    async fn error_count_series(
        &self,
        environment_id: &str,
        group_ids: &[String],
        versions: &[String],
        granularity: i32,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<(String, String, i64, i64)>> {
        if group_ids.is_empty() {
            return Ok(Vec::new());
        }
        count("error_count_series");
        // From the groups (of this environment) to their buckets, by group: the primary key
        // would read every group's buckets in the period.
        let mut q: QueryBuilder<Db> = QueryBuilder::new(
            "SELECT c.group_id, c.version, c.bucket, c.count FROM error_groups g JOIN error_counts c ON c.group_id = g.id WHERE g.environment_id = ",
        );
        q.push_bind(environment_id).push(" AND g.id IN (");
        {
            let mut ids = q.separated(", ");
            for id in group_ids {
                ids.push_bind(id.clone());
            }
        }
        q.push(") AND c.version IN (");
        {
            let mut vs = q.separated(", ");
            if versions.is_empty() {
                vs.push_bind(ALL_VERSIONS);
            }
            for v in versions {
                vs.push_bind(v.clone());
            }
        }
        q.push(") AND c.granularity = ")
            .push_bind(granularity)
            .push(" AND c.bucket >= ")
            .push_bind(from)
            .push(" AND c.bucket < ")
            .push_bind(to)
            .push(" ORDER BY c.group_id, c.version, c.bucket");
        let rows = q.build().fetch_all(&self.reader).await.map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    s(r, "group_id")?,
                    s(r, "version")?,
                    r.try_get::<i64, _>("bucket").map_err(map_err)?,
                    r.try_get::<i64, _>("count").map_err(map_err)?,
                ))
            })
            .collect()
    }

    async fn reopen_expired_ignores(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        count("expired_ignores");
        let rows = sqlx::query(&format!(
            "SELECT {} FROM error_groups g
             WHERE g.status = 'IGNORED' AND g.ignored_until IS NOT NULL AND g.ignored_until <= $1
             ORDER BY g.ignored_until LIMIT $2{FOR_UPDATE}",
            group_cols("g.")
        ))
        .bind(to_millis(now))
        .bind(REOPEN_BATCH)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let mut reopened = 0;
        for row in &rows {
            let g = group(row)?;
            if let Some(why) = on_tick(&g.triage, now) {
                reopen(&mut tx, &g, &why, now).await?;
                reopened += 1;
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(reopened)
    }

    async fn purge_error_buckets(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        count("purge_error_buckets");
        // A bucket goes once it ends before `before`: a span that started earlier but runs
        // past it is kept (no window reads it, since none starts before the retention, but
        // new occurrences still land in it and deleting it would only have them write it
        // again).
        //
        // One `DELETE` over the table has no index to serve it (buckets come fourth in the
        // key), reads every count and, on SQLite, holds the write lock meanwhile (28 s to
        // delete 1.5 million old buckets). So the purge walks the key's (environment,
        // version) pairs, each found by one index probe, and deletes each pair's old buckets
        // per granularity as key ranges of at most `PURGE_CHUNK` rows, each in a transaction
        // of its own: every statement reads only what it deletes, and a writer waits for one
        // chunk at most.
        let before = to_millis(before);
        let mut deleted = 0;
        let mut pair = next_count_pair(&self.reader, None).await?;
        while let Some((env, version)) = pair {
            for (granularity, length) in granularity::with_lengths() {
                let old = CountRange {
                    env: &env,
                    version: &version,
                    granularity,
                    last_bucket: before.saturating_sub(length),
                };
                deleted += self.purge_count_range(&old).await?;
            }
            pair = next_count_pair(&self.reader, Some((&env, &version))).await?;
        }
        Ok(deleted)
    }
}

/// Rows deleted by one transaction of the purge at most (but for a single bucket holding more
/// groups, which goes whole).
const PURGE_CHUNK: i64 = 1_000;

/// The bucket of the row just past a chunk of a range: what comes before it is one chunk.
const PAST_A_CHUNK: &str = "SELECT bucket FROM error_counts
     WHERE environment_id = $1 AND version = $2 AND granularity = $3 AND bucket <= $4
     ORDER BY bucket LIMIT 1 OFFSET $5";
const DELETE_BELOW: &str = "DELETE FROM error_counts
     WHERE environment_id = $1 AND version = $2 AND granularity = $3 AND bucket < $4";
const DELETE_THROUGH: &str = "DELETE FROM error_counts
     WHERE environment_id = $1 AND version = $2 AND granularity = $3 AND bucket <= $4";

/// One (environment, version, granularity)'s buckets up to `last_bucket`: one range of the
/// primary key.
struct CountRange<'a> {
    env: &'a str,
    version: &'a str,
    granularity: i32,
    last_bucket: i64,
}

impl Backend {
    /// Deletes `range` in chunks of about [`PURGE_CHUNK`] rows, each committed on its own.
    async fn purge_count_range(&self, range: &CountRange<'_>) -> StoreResult<u64> {
        let mut deleted = 0;
        loop {
            let past: Option<i64> = sqlx::query_scalar(PAST_A_CHUNK)
                .bind(range.env)
                .bind(range.version)
                .bind(range.granularity)
                .bind(range.last_bucket)
                .bind(PURGE_CHUNK)
                .fetch_optional(&self.writer)
                .await
                .map_err(map_err)?;
            let delete = |sql: &'static str, bound: i64| {
                sqlx::query(sql)
                    .bind(range.env)
                    .bind(range.version)
                    .bind(range.granularity)
                    .bind(bound)
            };
            let Some(past) = past else {
                // What is left is at most one chunk.
                let done = delete(DELETE_THROUGH, range.last_bucket)
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?;
                return Ok(deleted + done.rows_affected());
            };
            let mut done = delete(DELETE_BELOW, past)
                .execute(&self.writer)
                .await
                .map_err(map_err)?
                .rows_affected();
            if done == 0 {
                // The chunk is all one bucket (more groups than a chunk): it goes whole.
                done = delete(DELETE_THROUGH, past)
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
            }
            deleted += done;
        }
    }
}

/// The (environment, version) pair of error counts after `after` in key order, or the first:
/// one probe of the primary key each (a loose index scan, which neither database does itself).
async fn next_count_pair(
    pool: &Pool,
    after: Option<(&str, &str)>,
) -> StoreResult<Option<(String, String)>> {
    const COLS: &str = "SELECT environment_id, version FROM error_counts";
    let row = match after {
        None => {
            sqlx::query(&format!("{COLS} ORDER BY environment_id, version LIMIT 1"))
                .fetch_optional(pool)
                .await
        }
        Some((env, version)) => {
            let same_env = sqlx::query(&format!(
                "{COLS} WHERE environment_id = $1 AND version > $2 ORDER BY version LIMIT 1"
            ))
            .bind(env)
            .bind(version)
            .fetch_optional(pool)
            .await
            .map_err(map_err)?;
            match same_env {
                Some(row) => Ok(Some(row)),
                None => {
                    sqlx::query(&format!(
                        "{COLS} WHERE environment_id > $1
                         ORDER BY environment_id, version LIMIT 1"
                    ))
                    .bind(env)
                    .fetch_optional(pool)
                    .await
                }
            }
        }
    }
    .map_err(map_err)?;
    row.map(|r| Ok((s(&r, "environment_id")?, s(&r, "version")?)))
        .transpose()
}

/// What an ignore's history entry says of its conditions.
fn ignore_conditions(i: &taskgate_core::errors::Ignore) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(ms) = i.duration_ms {
        parts.push(format!("for {ms} ms"));
    }
    if let Some(rate) = i.occurrence_rate {
        parts.push(format!("until more than {rate} per minute"));
    }
    if let Some(total) = i.total_occurrences {
        parts.push(format!("until {total} more occurrences"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}
