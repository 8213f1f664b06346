-- Error groups: failed runs grouped by the fingerprint of their error, with their triage
-- state, occurrence counts in time buckets, and an append-only history of who did what.

-- The fingerprint a failed run was counted under (NULL for every other run).
ALTER TABLE task_runs ADD COLUMN error_fingerprint TEXT;
CREATE INDEX task_runs_error_fingerprint_idx ON task_runs (runtime_environment_id, error_fingerprint)
    WHERE error_fingerprint IS NOT NULL;

-- One row per (environment, task, fingerprint): all-time aggregates, the latest sample, and
-- the triage state (no separate state table: a group exists once it has an occurrence).
CREATE TABLE error_groups (
    id                               TEXT PRIMARY KEY,
    environment_id                   TEXT NOT NULL REFERENCES runtime_environments (id) ON DELETE CASCADE,
    task_identifier                  TEXT NOT NULL,
    fingerprint                      TEXT NOT NULL,
    -- taskgate_core::errors::FINGERPRINT_VERSION when the group was made.
    fingerprint_version              INTEGER NOT NULL,
    error_type                       TEXT NOT NULL,
    error_message                    TEXT NOT NULL,
    sample_stack                     TEXT NOT NULL,
    first_seen                       BIGINT NOT NULL,
    last_seen                        BIGINT NOT NULL,
    occurrence_count                 BIGINT NOT NULL,
    -- Arrivals in the current minute (for an ignore's occurrence rate).
    rate_minute                      BIGINT NOT NULL,
    rate_count                       BIGINT NOT NULL,
    status                           TEXT NOT NULL,
    resolved_at                      BIGINT,
    resolved_in_version              TEXT,
    resolved_by                      TEXT,
    ignored_at                       BIGINT,
    ignored_until                    BIGINT,
    ignored_until_occurrence_rate    DOUBLE PRECISION,
    ignored_until_total_occurrences  BIGINT,
    ignored_at_occurrence_count      BIGINT,
    ignored_reason                   TEXT,
    ignored_by_user_id               TEXT,
    updated_at                       BIGINT NOT NULL,
    UNIQUE (environment_id, task_identifier, fingerprint)
);
CREATE INDEX error_groups_fingerprint_idx ON error_groups (environment_id, fingerprint);
CREATE INDEX error_groups_ignored_until_idx ON error_groups (ignored_until) WHERE status = 'IGNORED';

-- Occurrences per group and worker version ('*': every version) in minute (0), hour (1) and
-- day (2) buckets, and all time (3, bucket 0). A window's count adds whole days, hours and
-- minutes, so it is exact to the minute and reads few rows. Buckets older than the
-- retention are deleted; the all-time rows are kept.
CREATE TABLE error_counts (
    environment_id  TEXT NOT NULL,
    version         TEXT NOT NULL,
    granularity     INTEGER NOT NULL,
    bucket          BIGINT NOT NULL,
    group_id        TEXT NOT NULL REFERENCES error_groups (id) ON DELETE CASCADE,
    count           BIGINT NOT NULL,
    PRIMARY KEY (environment_id, version, granularity, bucket, group_id)
);
CREATE INDEX error_counts_group_idx ON error_counts (group_id, granularity);

-- Every resolve, ignore, unresolve, regression and un-ignore, in order. Append-only.
CREATE TABLE error_group_activity (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    environment_id   TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,
    task_identifier  TEXT NOT NULL,
    action           TEXT NOT NULL,
    occurred_at      BIGINT NOT NULL,
    actor_user_id    TEXT,
    credential_kind  TEXT NOT NULL,
    credential_id    TEXT,
    reason           TEXT,
    detail           TEXT
);
CREATE INDEX error_group_activity_idx ON error_group_activity (environment_id, fingerprint, seq);

CREATE FUNCTION error_group_activity_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'error_group_activity is append-only';
END;
$$;
CREATE TRIGGER error_group_activity_no_update BEFORE UPDATE OR DELETE ON error_group_activity
    FOR EACH ROW EXECUTE FUNCTION error_group_activity_append_only();
