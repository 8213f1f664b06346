-- Runs, batches and streams. Times are epoch milliseconds, as everywhere.

CREATE TABLE task_runs (
    id                          TEXT PRIMARY KEY,
    friendly_id                 TEXT NOT NULL UNIQUE,
    runtime_environment_id      TEXT NOT NULL REFERENCES runtime_environments(id) ON DELETE CASCADE,
    task_identifier             TEXT NOT NULL,
    status                      TEXT NOT NULL,
    payload                     TEXT,
    payload_type                TEXT NOT NULL,
    output                      TEXT,
    output_type                 TEXT,
    error                       TEXT,
    tags                        TEXT NOT NULL DEFAULT '[]',
    metadata                    TEXT,
    metadata_type               TEXT,
    idempotency_key             TEXT,
    idempotency_key_user        TEXT,
    idempotency_key_expires_at  BIGINT,
    queue                       TEXT,
    concurrency_key             TEXT,
    max_attempts                BIGINT,
    machine                     TEXT,
    ttl                         TEXT,
    ttl_expires_at              BIGINT,
    delay_until                 BIGINT,
    batch_id                    TEXT,
    is_test                     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL,
    started_at                  BIGINT,
    completed_at                BIGINT,
    expired_at                  BIGINT,
    version                     BIGINT NOT NULL DEFAULT 1
);
-- An idempotency key names at most one run per environment and task.
CREATE UNIQUE INDEX task_runs_idempotency_uniq
    ON task_runs (runtime_environment_id, task_identifier, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX task_runs_listing_idx ON task_runs (runtime_environment_id, created_at, id);
CREATE INDEX task_runs_due_idx ON task_runs (status, delay_until, ttl_expires_at);

-- Tags, one row each, for the list filter; the run row keeps them in order for reading.
CREATE TABLE task_run_tags (
    run_id  TEXT NOT NULL REFERENCES task_runs(id) ON DELETE CASCADE,
    tag     TEXT NOT NULL,
    PRIMARY KEY (run_id, tag)
);
CREATE INDEX task_run_tags_tag_idx ON task_run_tags (tag);

-- The hash of every one-time-use public token that triggered something.
CREATE TABLE one_time_use_tokens (
    token_hash  TEXT PRIMARY KEY,
    run_id      TEXT,
    used_at     BIGINT NOT NULL
);

CREATE TABLE batches (
    id                      TEXT PRIMARY KEY,
    friendly_id             TEXT NOT NULL UNIQUE,
    runtime_environment_id  TEXT NOT NULL REFERENCES runtime_environments(id) ON DELETE CASCADE,
    run_count               BIGINT NOT NULL,
    idempotency_key         TEXT,
    created_at              BIGINT NOT NULL,
    sealed                  BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX batches_idempotency_uniq
    ON batches (runtime_environment_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE batch_items (
    batch_id         TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
    item_index       BIGINT NOT NULL,
    run_friendly_id  TEXT NOT NULL,
    PRIMARY KEY (batch_id, item_index)
);

-- Output and input stream chunks; they survive restarts, and a reader resumes after a seq.
CREATE TABLE stream_chunks (
    run_id      TEXT NOT NULL REFERENCES task_runs(id) ON DELETE CASCADE,
    stream_id   TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    data        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (run_id, stream_id, seq)
);
