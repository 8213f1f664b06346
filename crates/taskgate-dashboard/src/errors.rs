//! `…/env/{env}/errors` and `…/errors/{id}`: an environment's error groups with their filters
//! in the URL and an activity chart per group, and one group with its occurrences over time,
//! affected versions, the runs behind it, the triage actions and the history of who did what.
//! The list's rows can be checked and triaged together (`…/errors/bulk`), each group's change
//! recorded in its own history.
//!
//! Listing and triage go through the use cases the API shares (`taskgate_usecases::errors::{list_query,
//! resolve_action, ignore_action, apply_triage}`); a triage made here is recorded as the
//! signed-in user's, with the dashboard session as the credential.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use taskgate_api::errors::IgnoreErrorRequest;
use taskgate_core::errors::{group_id, GroupStatus, Series};
use taskgate_core::scope::Resource;
use taskgate_core::time::from_millis;
use taskgate_server::state::AppState;
use taskgate_store::{
    ErrorGroupDetail, PageDirection, RunFilter, RunPage, TriageAction, TriageActor,
};
use taskgate_usecases::errors::{
    apply_triage, cursor_of, fingerprint_of, ignore_action, list_query, resolve_action,
};

use crate::envs::{self, PageEnv};
use crate::layout::{page, send, send_with, time, PageError, PageResult, CSP};
use crate::session::{clearing_flash, encode, redirect_with_flash, take_flash, SignedIn};

/// Most bars in a list row's activity chart (a day is 25 hourly bars, its ends partial), and in
/// a detail's.
const LIST_BARS: usize = 25;
const DETAIL_BARS: usize = 48;
/// Periods the list offers ("Occurred in the last …"); the default is the first.
const PERIODS: [(&str, &str); 5] = [
    ("1d", "1 day"),
    ("1h", "1 hour"),
    ("7d", "7 days"),
    ("14d", "14 days"),
    ("30d", "30 days"),
];
/// The ignore presets: the bulk form's name for it, label and duration in milliseconds (`None`
/// is forever).
const IGNORE_PRESETS: [(&str, &str, Option<i64>); 3] = [
    ("1h", "Ignore for 1 hour", Some(3_600_000)),
    ("24h", "Ignore for 24 hours", Some(86_400_000)),
    ("forever", "Ignore forever", None),
];
/// Most groups one bulk action names: four list pages.
const MAX_BULK: usize = 100;

/// The list's filters, as they stand in the URL.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorsQuery {
    search: Option<String>,
    status: Option<String>,
    task: Option<String>,
    version: Option<String>,
    period: Option<String>,
    after: Option<String>,
    before: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl ErrorsQuery {
    fn period(&self) -> &str {
        nonempty(&self.period).unwrap_or(PERIODS[0].0)
    }

    /// The filters as a query string, without the page position.
    fn filters(&self) -> String {
        [
            ("search", &self.search),
            ("status", &self.status),
            ("task", &self.task),
            ("version", &self.version),
            ("period", &self.period),
        ]
        .iter()
        .filter_map(|(k, v)| nonempty(v).map(|v| format!("{k}={}", encode(v))))
        .collect::<Vec<_>>()
        .join("&")
    }

    /// The filters and the page position, as a query string: where a form on the list goes
    /// back to.
    fn position(&self) -> String {
        let cursor = [("after", &self.after), ("before", &self.before)]
            .iter()
            .filter_map(|(k, v)| nonempty(v).map(|v| format!("{k}={}", encode(v))))
            .collect::<Vec<_>>();
        std::iter::once(self.filters())
            .filter(|f| !f.is_empty())
            .chain(cursor)
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The filters and page position as hidden fields, for a form that returns here.
    fn hidden_fields(&self) -> Markup {
        let fields = [
            ("search", &self.search),
            ("status", &self.status),
            ("task", &self.task),
            ("version", &self.version),
            ("period", &self.period),
            ("after", &self.after),
            ("before", &self.before),
        ];
        html! {
            @for (k, v) in fields {
                @if let Some(v) = nonempty(v) { input type="hidden" name=(k) value=(v); }
            }
        }
    }

    /// The API's query parameters for these filters.
    fn api_params(&self) -> HashMap<String, String> {
        let mut p = HashMap::new();
        let mut put = |k: &str, v: Option<&str>| {
            if let Some(v) = v {
                p.insert(k.to_string(), v.to_string());
            }
        };
        put("filter[search]", nonempty(&self.search));
        put("filter[status]", nonempty(&self.status));
        put("filter[taskIdentifier]", nonempty(&self.task));
        put("filter[version]", nonempty(&self.version));
        put("filter[period]", Some(self.period()));
        put("page[after]", nonempty(&self.after));
        put("page[before]", nonempty(&self.before));
        p
    }
}

/// An activity chart: one bar per bucket, each with its time and count, and a summary for
/// screen readers.
fn chart(series: &Series, bars: &[i64], width: u32, height: u32) -> Markup {
    let peak = bars.iter().copied().max().unwrap_or(0);
    let total: i64 = bars.iter().sum();
    let slot = f64::from(width) / bars.len().max(1) as f64;
    let label = format!(
        "{total} occurrences in {} bars; peak occurrences in a single time bucket: {peak}",
        bars.len()
    );
    html! {
        svg.chart role="img" aria-label=(label) width=(width) height=(height) viewBox=(format!("0 0 {width} {height}")) {
            title { (label) }
            @for (i, n) in bars.iter().enumerate() {
                @let h = if peak == 0 { 0.0 } else { (*n as f64 / peak as f64) * f64::from(height - 1) };
                @let at = from_millis(series.first + series.size * i as i64);
                rect x=(format!("{:.1}", i as f64 * slot)) y=(format!("{:.1}", f64::from(height) - h.max(1.0)))
                    width=(format!("{:.1}", (slot - 1.0).max(1.0))) height=(format!("{:.1}", h.max(1.0)))
                    fill=(if *n > 0 { "#3b4fd8" } else { "#d9dbe0" }) {
                    title { (at.format("%Y-%m-%d %H:%M UTC")) ": " (n) }
                }
            }
        }
    }
}

/// Bars over `from..to` by group and version (`*` for all versions when `versions` is empty).
async fn series_of(
    state: &AppState,
    env_id: &str,
    group_ids: &[String],
    versions: &[String],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    max_bars: usize,
) -> PageResult<(Option<Series>, HashMap<(String, String), Vec<i64>>)> {
    let Some(series) = Series::of(from.timestamp_millis(), to.timestamp_millis(), max_bars) else {
        return Ok((None, HashMap::new()));
    };
    let rows = state
        .store
        .error_count_series(
            env_id,
            group_ids,
            versions,
            series.granularity,
            series.first,
            series.end(),
        )
        .await?;
    let mut bars: HashMap<(String, String), Vec<i64>> = HashMap::new();
    for (group, version, bucket, count) in rows {
        if let Some(i) = series.bar_of(bucket) {
            bars.entry((group, version))
                .or_insert_with(|| vec![0; series.bars])[i] += count;
        }
    }
    Ok((Some(series), bars))
}

fn status_badge(status: GroupStatus) -> Markup {
    let class = match status {
        GroupStatus::Unresolved => "badge danger",
        GroupStatus::Resolved => "badge ok",
        GroupStatus::Ignored => "badge muted",
    };
    html! { span class=(class) { (status.as_api()) } }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// `GET …/errors`.
pub async fn errors_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env)): Path<(String, String, String)>,
    Query(q): Query<ErrorsQuery>,
) -> PageResult {
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    pe.require(&state, &who, "read", &[Resource::new("errors")])?;
    let now = state.now();
    let query = list_query(&q.api_params(), now, state.config.engine.error_retention)?;
    let env_id = pe.auth.environment.id.clone();
    let page_rows = state.store.list_error_groups(&env_id, &query).await?;
    let ids: Vec<String> = page_rows.rows.iter().map(|r| r.group.id.clone()).collect();
    let (series, bars) =
        series_of(&state, &env_id, &ids, &[], query.from, query.to, LIST_BARS).await?;
    let tasks: Vec<String> = match state.store.current_worker(&env_id).await? {
        Some((_, tasks)) => tasks.into_iter().map(|t| t.slug).collect(),
        None => Vec::new(),
    };
    let backward = matches!(query.cursor, Some((_, PageDirection::Before)));
    let (first, last) = (page_rows.rows.first(), page_rows.rows.last());
    let (prev, next) = if backward {
        (first.filter(|_| page_rows.has_more), last)
    } else {
        (
            first.filter(|_| query.cursor.is_some()),
            last.filter(|_| page_rows.has_more),
        )
    };
    let filters = q.filters();
    let sep = if filters.is_empty() { "" } else { "&" };
    let base = pe.base();
    let may_write = pe.can(&state, &who, "write", &[Resource::new("errors")]);
    let table = html! {
        table {
            thead { tr {
                @if may_write { th scope="col" { "Select" } }
                th scope="col" { "ID" }
                th scope="col" { "Status" }
                th scope="col" { "Task" }
                th scope="col" { "Error" }
                th scope="col" { "Occurrences" }
                th scope="col" { "Activity" }
                th scope="col" { "First seen" }
                th scope="col" { "Last seen" }
            } }
            tbody {
                @for r in &page_rows.rows {
                    @let id = group_id(&r.group.fingerprint);
                    tr {
                        @if may_write {
                            td { input type="checkbox" name="id" value=(id) aria-label=(format!("Select error {id}")); }
                        }
                        th scope="row" { a href=(format!("{base}/errors/{id}")) title=(id) { code { (&id[id.len() - 8..]) } } }
                        td { (status_badge(r.group.triage.as_of(now).status)) }
                        td { (r.group.task_identifier) }
                        td { strong { (r.group.error_type) } ": " (cut(&r.group.error_message, 128)) }
                        td { (r.count) }
                        td {
                            @if let Some(s) = &series {
                                (chart(s, bars.get(&(r.group.id.clone(), "*".to_string())).map(Vec::as_slice).unwrap_or(&vec![0; s.bars]), 120, 24))
                            }
                        }
                        td { (time(r.fingerprint_first_seen)) }
                        td { (time(r.fingerprint_last_seen)) }
                    }
                }
            }
        }
    };
    let (message, clear) = take_flash(&state, &headers);
    let body = html! {
        (pe.nav("errors"))
        h1 data-refresh="60" { "Errors" }
        @if let Some(m) = &message { div.panel.flash role="status" { (m) } }
        form.panel.row-actions method="get" aria-label="Filter errors" {
            div {
                label for="search" { "Search" }
                input #search name="search" type="search" placeholder="Search errors…" value=(q.search.as_deref().unwrap_or(""));
            }
            div {
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" { "Any" }
                    @for s in ["unresolved", "resolved", "ignored"] {
                        option value=(s) selected[nonempty(&q.status) == Some(s)] { (s) }
                    }
                }
            }
            div {
                label for="task" { "Task" }
                select #task name="task" {
                    option value="" { "Any" }
                    @for t in &tasks { option value=(t) selected[nonempty(&q.task) == Some(t.as_str())] { (t) } }
                    @if let Some(t) = nonempty(&q.task) {
                        @if !tasks.iter().any(|x| x == t) { option value=(t) selected { (t) } }
                    }
                }
            }
            div {
                label for="version" { "Version" }
                input #version name="version" size="12" value=(q.version.as_deref().unwrap_or(""));
            }
            div {
                label for="period" { "Occurred in the last" }
                select #period name="period" {
                    @for (p, label) in PERIODS { option value=(p) selected[q.period() == p] { (label) } }
                }
            }
            div { label { "\u{a0}" } button type="submit" { "Apply" } }
        }
        @if page_rows.rows.is_empty() {
            p.panel { "No errors found for this time period." }
        } @else if may_write {
            form #bulk method="post" action=(format!("{base}/errors/bulk")) {
                input type="hidden" name="_csrf" value=(who.csrf());
                (q.hidden_fields())
                div.panel.row-actions role="group" aria-labelledby="bulk-heading" {
                    span #bulk-heading { "Mark the selected errors as…" }
                    button type="submit" name="action" value="resolve" { "Resolved" }
                    @for (key, label, _) in IGNORE_PRESETS {
                        button type="submit" name="action" value=(format!("ignore-{key}")) { (label) }
                    }
                    button type="submit" name="action" value="unresolve" { "Unresolved" }
                }
                (table)
            }
        } @else {
            (table)
        }
        p.row-actions {
            @if let Some(r) = prev { a href=(format!("?{filters}{sep}before={}", cursor_of(r))) { "← More frequent" } }
            @if let Some(r) = next { a href=(format!("?{filters}{sep}after={}", cursor_of(r))) { "Less frequent →" } }
        }
    };
    Ok(clearing_flash(
        send(page("Errors", Some(&who.viewer()), body)),
        clear,
    ))
}

/// The group a path names, if the user may read it.
async fn group(
    state: &AppState,
    who: &SignedIn,
    pe: &PageEnv,
    error_id: &str,
) -> PageResult<(String, ErrorGroupDetail)> {
    let fp = fingerprint_of(error_id)?;
    pe.require(state, who, "read", &[Resource::with_id("errors", error_id)])?;
    let found = state
        .store
        .get_error_group(&pe.auth.environment.id, &fp)
        .await?
        .ok_or_else(PageError::not_found)?;
    Ok((fp, found))
}

/// `GET …/errors/{id}`.
pub async fn error_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env, error_id)): Path<(String, String, String, String)>,
) -> PageResult {
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    let (message, clear) = take_flash(&state, &headers);
    let resp = render_detail(&state, &who, &pe, &error_id, message.as_deref(), None).await?;
    Ok(clearing_flash(resp, clear))
}

/// The detail page, with a message after an action, or the custom-ignore form's error.
async fn render_detail(
    state: &AppState,
    who: &SignedIn,
    pe: &PageEnv,
    error_id: &str,
    message: Option<&str>,
    ignore_error: Option<(&str, &CustomIgnore)>,
) -> PageResult {
    let (fp, d) = group(state, who, pe, error_id).await?;
    let now = state.now();
    let triage = d.group.triage.as_of(now);
    let env_id = &pe.auth.environment.id;
    let id = group_id(&fp);
    let from = now - Duration::days(7);
    let (series, bars) = series_of(
        state,
        env_id,
        std::slice::from_ref(&d.group.id),
        &d.affected_versions,
        from,
        now,
        DETAIL_BARS,
    )
    .await?;
    let runs = state
        .store
        .list_runs(
            env_id,
            &RunFilter {
                error_fingerprint: Some(fp.clone()),
                ..RunFilter::default()
            },
            &RunPage {
                limit: 10,
                after: None,
                before: None,
            },
        )
        .await?;
    let activity = state
        .store
        .list_error_activity(env_id, &fp, None, 50)
        .await?;
    // Who is who: the emails of the users the history and the state name.
    let mut user_ids: BTreeSet<String> = activity
        .iter()
        .filter_map(|a| a.actor_user_id.clone())
        .collect();
    user_ids.extend(triage.resolved_by.clone());
    user_ids.extend(triage.ignored_by_user_id.clone());
    let mut emails = HashMap::new();
    for uid in user_ids {
        if let Ok(u) = state.store.get_user(&uid).await {
            emails.insert(uid, u.email);
        }
    }
    let who_is = |uid: &Option<String>, kind: &str| -> String {
        match uid {
            Some(u) => emails
                .get(u)
                .cloned()
                .unwrap_or_else(|| format!("user {u}")),
            None if kind == "system" => "taskgate".to_string(),
            None => format!("an environment key ({kind})"),
        }
    };
    let may_write = pe.can(state, who, "write", &[Resource::with_id("errors", &id)]);
    let here = format!("{}/errors/{id}", pe.base());
    let csrf = who.csrf();
    let status = triage.status;
    let body = html! {
        (pe.nav("errors"))
        h1 { "Error " code { (id) } }
        @if let Some(m) = message { div.panel.flash role="status" { (m) } }
        div.panel {
            p { strong { (d.group.error_type) } ": " (d.group.error_message) }
            @if !d.group.sample_stack.is_empty() {
                details { summary { "Stack trace" } pre tabindex="0" { code { (d.group.sample_stack) } } }
            }
            dl {
                dt { "Status" } dd { (status_badge(status)) }
                @if status == GroupStatus::Resolved {
                    dt { "Resolved" } dd {
                        @if let Some(at) = triage.resolved_at { (time(at)) }
                        @if let Some(v) = &triage.resolved_in_version { " in version " (v) }
                        " by " (who_is(&triage.resolved_by, "session"))
                    }
                }
                @if status == GroupStatus::Ignored {
                    dt { "Ignored" } dd {
                        @if let Some(at) = triage.ignored_at { (time(at)) }
                        " by " (who_is(&triage.ignored_by_user_id, "session"))
                        @if let Some(r) = &triage.ignored_reason { ": " em { (r) } }
                    }
                    dt { "Will revert to \"unresolved\"" } dd {
                        @if let Some(until) = triage.ignored_until { "at " (time(until)) }
                        @if let Some(rate) = triage.ignored_until_occurrence_rate { " when more than " (rate) " occur in a minute" }
                        @if let Some(total) = triage.ignored_until_total_occurrences {
                            " after " (total) " more occurrences"
                            @if let Some(base) = triage.ignored_at_occurrence_count {
                                " (" ((d.group.occurrence_count - base).max(0)) " since ignored)"
                            }
                        }
                        @if triage.ignored_until.is_none() && triage.ignored_until_occurrence_rate.is_none() && triage.ignored_until_total_occurrences.is_none() { "never" }
                    }
                }
                dt { "Task" } dd { (d.group.task_identifier) }
                dt { "Occurrences" } dd { (d.group.occurrence_count) }
                dt { "First seen" } dd { (time(d.fingerprint_first_seen)) }
                dt { "Last seen" } dd { (time(d.fingerprint_last_seen)) }
                dt { "Affected versions" } dd {
                    @if d.affected_versions.is_empty() { span.muted { "none recorded" } }
                    @else { (d.affected_versions.join(", ")) }
                }
            }
        }
        @if may_write {
            section.panel aria-labelledby="actions-heading" {
                h2 #actions-heading { "Mark error as…" }
                div.row-actions {
                    @if status != GroupStatus::Resolved {
                        form method="post" action=(format!("{here}/resolve")) {
                            input type="hidden" name="_csrf" value=(csrf);
                            label.inline for="version" { "In version (optional) " }
                            input #version name="version" size="12" placeholder="20261127.1";
                            " "
                            button.primary type="submit" { "Resolved" }
                        }
                    }
                    @if status == GroupStatus::Unresolved {
                        @for (_, label, ms) in IGNORE_PRESETS {
                            form method="post" action=(format!("{here}/ignore")) {
                                input type="hidden" name="_csrf" value=(csrf);
                                @if let Some(ms) = ms { input type="hidden" name="duration" value=(ms); }
                                button type="submit" { (label) }
                            }
                        }
                    }
                    @if status != GroupStatus::Unresolved {
                        form method="post" action=(format!("{here}/unresolve")) {
                            input type="hidden" name="_csrf" value=(csrf);
                            button type="submit" { "Unresolved" }
                        }
                    }
                }
                @if status == GroupStatus::Unresolved {
                    details #custom-ignore open[ignore_error.is_some()] {
                        summary { "Ignored with custom condition…" }
                        form method="post" action=(format!("{here}/ignore")) {
                            input type="hidden" name="_csrf" value=(csrf);
                            input type="hidden" name="custom" value="1";
                            @if let Some((e, _)) = ignore_error {
                                p.danger #custom-ignore-error role="alert" { (e) }
                            }
                            @let previous = ignore_error.map(|(_, f)| f);
                            label for="rate" { "Unignore when occurrence rate exceeds (per minute)" }
                            input #rate name="rate" inputmode="decimal" value=(previous.and_then(|f| f.rate.clone()).unwrap_or_default())
                                aria-describedby=[ignore_error.map(|_| "custom-ignore-error")];
                            label for="total" { "Unignore when total occurrences exceed" }
                            input #total name="total" inputmode="numeric" value=(previous.and_then(|f| f.total.clone()).unwrap_or_default())
                                aria-describedby=[ignore_error.map(|_| "custom-ignore-error")];
                            label for="reason" { "Reason (optional)" }
                            input #reason name="reason" size="40" maxlength="1000" value=(previous.and_then(|f| f.reason.clone()).unwrap_or_default());
                            " "
                            button type="submit" { "Ignore" }
                        }
                    }
                }
            }
        }
        h2 { "Occurrences in the last 7 days, by version" }
        @if let Some(s) = &series {
            @if d.affected_versions.is_empty() { p.muted { "No version recorded." } }
            @for v in &d.affected_versions {
                figure {
                    figcaption { "Version " (v) }
                    (chart(s, bars.get(&(d.group.id.clone(), v.clone())).map(Vec::as_slice).unwrap_or(&vec![0; s.bars]), 720, 48))
                }
            }
        }
        h2 { "Runs" }
        @if runs.is_empty() {
            p.muted { "No run of this error is in the runs list." }
        } @else {
            table {
                thead { tr { th scope="col" { "Run" } th scope="col" { "Version" } th scope="col" { "Created" } } }
                tbody {
                    @for r in &runs {
                        tr {
                            th scope="row" { a href=(format!("{}/runs/{}", pe.base(), r.friendly_id)) { code { (r.friendly_id) } } }
                            td { (r.task_version.as_deref().unwrap_or("–")) }
                            td { (time(r.created_at)) }
                        }
                    }
                }
            }
        }
        h2 { "History" }
        @if activity.is_empty() {
            p.muted { "Nobody has triaged this error yet." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "When" }
                    th scope="col" { "What" }
                    th scope="col" { "Who" }
                    th scope="col" { "Credential" }
                    th scope="col" { "Details" }
                } }
                tbody {
                    @for a in &activity {
                        tr {
                            td { (time(a.occurred_at)) }
                            td { (a.action) }
                            td { (who_is(&a.actor_user_id, &a.credential_kind)) }
                            td { (a.credential_kind) }
                            td {
                                @if let Some(r) = &a.reason { em { (r) } " " }
                                @if let Some(d) = &a.detail { span.muted { (d) } }
                            }
                        }
                    }
                }
            }
        }
    };
    let status_code = if ignore_error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(send_with(
        status_code,
        page(&format!("Error {id}"), Some(&who.viewer()), body),
        CSP,
    ))
}

/// The signed-in user as the history records them.
fn actor(who: &SignedIn) -> TriageActor {
    TriageActor {
        user_id: Some(who.session.user.id.clone()),
        credential_kind: "dashboard_session".into(),
        credential_id: Some(who.session.id.clone()),
    }
}

/// Applies `action` and goes back to the group's page with a message.
async fn act(
    state: &AppState,
    headers: &HeaderMap,
    who: &SignedIn,
    pe: &PageEnv,
    error_id: &str,
    action: TriageAction,
    message: &str,
) -> PageResult<Response> {
    let fp = fingerprint_of(error_id)?;
    pe.require(
        state,
        who,
        "write",
        &[Resource::with_id("errors", error_id)],
    )?;
    apply_triage(
        &state.usecases,
        &pe.auth.environment.id,
        &fp,
        action,
        &actor(who),
    )
    .await?;
    Ok(redirect_with_flash(
        state,
        headers,
        &format!("{}/errors/{}", pe.base(), group_id(&fp)),
        message,
    ))
}

#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    version: Option<String>,
}

/// `POST …/errors/{id}/resolve`.
pub async fn resolve(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env, error_id)): Path<(String, String, String, String)>,
    Form(form): Form<ResolveForm>,
) -> PageResult {
    who.check_csrf(&state, form.csrf.as_deref())?;
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    let version = nonempty(&form.version).map(str::to_string);
    let message = match &version {
        Some(v) => format!("Marked as resolved in version {v}."),
        None => "Marked as resolved.".to_string(),
    };
    let action = resolve_action(version)?;
    act(&state, &headers, &who, &pe, &error_id, action, &message).await
}

/// The custom-ignore form's fields, kept to show again with its error.
#[derive(Debug, Default, Deserialize)]
pub struct CustomIgnore {
    rate: Option<String>,
    total: Option<String>,
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct IgnoreForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    duration: Option<String>,
    custom: Option<String>,
    #[serde(flatten)]
    fields: CustomIgnore,
}

/// A number typed into the form, or the sentence saying why it is not one.
fn typed_number(label: &str, v: &Option<String>) -> Result<Option<f64>, String> {
    match nonempty(v) {
        None => Ok(None),
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n > 0.0)
            .map(Some)
            .ok_or_else(|| format!("{label} must be a number greater than 0.")),
    }
}

/// `POST …/errors/{id}/ignore`: a preset duration, or a custom condition.
pub async fn ignore(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env, error_id)): Path<(String, String, String, String)>,
    Form(form): Form<IgnoreForm>,
) -> PageResult {
    who.check_csrf(&state, form.csrf.as_deref())?;
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    let request = if form.custom.is_some() {
        let f = &form.fields;
        let checked = typed_number("The occurrence rate", &f.rate).and_then(|rate| {
            let total = typed_number("The total", &f.total)?;
            if rate.is_none() && total.is_none() {
                return Err("Give an occurrence rate, a total, or both: the error is unignored when it is exceeded.".to_string());
            }
            Ok((rate, total))
        });
        let (rate, total) = match checked {
            Ok(v) => v,
            Err(e) => {
                return render_detail(&state, &who, &pe, &error_id, None, Some((&e, &form.fields)))
                    .await
            }
        };
        IgnoreErrorRequest {
            duration: None,
            occurrence_rate: rate,
            total_occurrences: total,
            reason: nonempty(&f.reason).map(str::to_string),
        }
    } else {
        let duration = match nonempty(&form.duration) {
            None => None,
            Some(d) => Some(
                d.parse::<f64>()
                    .map_err(|_| PageError::bad_request("Choose one of the offered durations."))?,
            ),
        };
        IgnoreErrorRequest {
            duration,
            occurrence_rate: None,
            total_occurrences: None,
            reason: None,
        }
    };
    let action = match ignore_action(request) {
        Ok(a) => a,
        Err(e) if form.custom.is_some() => {
            let message = PageError::from(e).message;
            return render_detail(
                &state,
                &who,
                &pe,
                &error_id,
                None,
                Some((&message, &form.fields)),
            )
            .await;
        }
        Err(e) => return Err(e.into()),
    };
    act(
        &state,
        &headers,
        &who,
        &pe,
        &error_id,
        action,
        "Marked as ignored.",
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct UnresolveForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

/// `POST …/errors/{id}/unresolve`.
pub async fn unresolve(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env, error_id)): Path<(String, String, String, String)>,
    Form(form): Form<UnresolveForm>,
) -> PageResult {
    who.check_csrf(&state, form.csrf.as_deref())?;
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    act(
        &state,
        &headers,
        &who,
        &pe,
        &error_id,
        TriageAction::Unresolve,
        "Marked as unresolved.",
    )
    .await
}

/// What a bulk button asks for, and the word its message uses.
fn bulk_action(name: Option<&str>) -> PageResult<(TriageAction, &'static str)> {
    let ignore = |ms: Option<i64>| {
        ignore_action(IgnoreErrorRequest {
            duration: ms.map(|ms| ms as f64),
            occurrence_rate: None,
            total_occurrences: None,
            reason: None,
        })
    };
    Ok(match name {
        Some("resolve") => (resolve_action(None)?, "resolved"),
        Some("unresolve") => (TriageAction::Unresolve, "unresolved"),
        Some(other) => {
            let preset = other
                .strip_prefix("ignore-")
                .and_then(|key| IGNORE_PRESETS.iter().find(|(k, _, _)| *k == key))
                .ok_or_else(|| PageError::bad_request("Choose one of the offered actions."))?;
            (ignore(preset.2)?, "ignored")
        }
        None => return Err(PageError::bad_request("Choose one of the offered actions.")),
    })
}

/// `POST …/errors/bulk`: one action on the groups checked on a list page, each recorded in
/// its own history as the signed-in user's; back to the same list position with a message.
pub async fn bulk(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env)): Path<(String, String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> PageResult {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_string())
    };
    who.check_csrf(&state, field("_csrf").as_deref())?;
    let pe = envs::resolve(&state, &who, &org, &project, &env).await?;
    let back = ErrorsQuery {
        search: field("search"),
        status: field("status"),
        task: field("task"),
        version: field("version"),
        period: field("period"),
        after: field("after"),
        before: field("before"),
    }
    .position();
    let back = match back.as_str() {
        "" => format!("{}/errors", pe.base()),
        q => format!("{}/errors?{q}", pe.base()),
    };
    let ids: BTreeSet<&str> = fields
        .iter()
        .filter(|(k, _)| k == "id")
        .map(|(_, v)| v.as_str())
        .collect();
    if ids.len() > MAX_BULK {
        return Err(PageError::bad_request(format!(
            "Select at most {MAX_BULK} errors at once."
        )));
    }
    let (action, done) = bulk_action(field("action").as_deref())?;
    if ids.is_empty() {
        return Ok(redirect_with_flash(
            &state,
            &headers,
            &back,
            "Select at least one error first.",
        ));
    }
    // Every id is checked and allowed before anything changes.
    let mut fingerprints = Vec::with_capacity(ids.len());
    for id in &ids {
        fingerprints.push(fingerprint_of(id)?);
        pe.require(&state, &who, "write", &[Resource::with_id("errors", id)])?;
    }
    let env_id = &pe.auth.environment.id;
    let actor = actor(&who);
    let mut missing = 0;
    for fp in &fingerprints {
        match apply_triage(&state.usecases, env_id, fp, action.clone(), &actor).await {
            Ok(_) => {}
            Err(e) if e.kind == taskgate_core::problem::Kind::NotFound => missing += 1,
            Err(e) => return Err(e.into()),
        }
    }
    let changed = fingerprints.len() - missing;
    let errors = |n: usize| if n == 1 { "error" } else { "errors" };
    let mut message = format!("Marked {changed} {} as {done}.", errors(changed));
    if missing > 0 {
        message.push_str(&format!(
            " {missing} selected {} no longer {}.",
            errors(missing),
            if missing == 1 { "exists" } else { "exist" }
        ));
    }
    Ok(redirect_with_flash(&state, &headers, &back, &message))
}
