-- Waitpoints: what a running task waits for (a child run, a batch of runs, a point in time,
-- a token someone completes), and which runs wait for which. Times are epoch milliseconds.
CREATE TABLE waitpoints (
    id                         TEXT PRIMARY KEY,
    friendly_id                TEXT NOT NULL UNIQUE,
    runtime_environment_id     TEXT NOT NULL REFERENCES runtime_environments(id) ON DELETE CASCADE,
    kind                       TEXT NOT NULL,
    status                     TEXT NOT NULL,
    completed_at               BIGINT,
    completed_after            BIGINT,
    timeout_at                 BIGINT,
    -- When the timer fires (a point in time, a token's timeout); NULL once complete, so the
    -- timer index holds pending timers only.
    due_at                     BIGINT,
    output                     TEXT,
    output_type                TEXT,
    output_is_error            BOOLEAN NOT NULL DEFAULT FALSE,
    idempotency_key            TEXT,
    idempotency_key_expires_at BIGINT,
    -- A JSON array, as listed; waitpoint_tags indexes them for filters.
    tags                       TEXT NOT NULL DEFAULT '[]',
    completed_by_run_id        TEXT REFERENCES task_runs(id) ON DELETE CASCADE,
    completed_by_batch_id      TEXT REFERENCES batches(id) ON DELETE CASCADE,
    created_at                 BIGINT NOT NULL
);
CREATE INDEX waitpoints_due ON waitpoints (due_at) WHERE due_at IS NOT NULL;
CREATE UNIQUE INDEX waitpoints_idempotency_uniq
    ON waitpoints (runtime_environment_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX waitpoints_env_kind_created ON waitpoints (runtime_environment_id, kind, created_at, id);
CREATE UNIQUE INDEX waitpoints_run_uniq ON waitpoints (completed_by_run_id)
    WHERE completed_by_run_id IS NOT NULL;
CREATE UNIQUE INDEX waitpoints_batch_uniq ON waitpoints (completed_by_batch_id)
    WHERE completed_by_batch_id IS NOT NULL;

CREATE TABLE waitpoint_tags (
    waitpoint_id TEXT NOT NULL REFERENCES waitpoints(id) ON DELETE CASCADE,
    tag          TEXT NOT NULL,
    PRIMARY KEY (waitpoint_id, tag)
);
CREATE INDEX waitpoint_tags_tag ON waitpoint_tags (tag);

-- Which run waits for which waitpoint; an item of a batch the run waits for carries its
-- batch and index. Edges go when the run continues or finishes.
CREATE TABLE run_waitpoints (
    run_id       TEXT NOT NULL REFERENCES task_runs(id) ON DELETE CASCADE,
    waitpoint_id TEXT NOT NULL REFERENCES waitpoints(id) ON DELETE CASCADE,
    batch_id     TEXT,
    batch_index  BIGINT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (run_id, waitpoint_id)
);
CREATE INDEX run_waitpoints_waitpoint ON run_waitpoints (waitpoint_id);

ALTER TABLE task_runs ADD COLUMN parent_run_id TEXT;
ALTER TABLE task_runs ADD COLUMN resume_parent_on_completion BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE task_runs ADD COLUMN completed_waitpoints TEXT;
ALTER TABLE task_runs ADD COLUMN snapshot_batch_id TEXT;
CREATE INDEX task_runs_parent ON task_runs (parent_run_id, created_at) WHERE parent_run_id IS NOT NULL;

-- A run that finishes completes the waitpoints of every batch listing it (an item may be a
-- run another batch made, found by its idempotency key).
CREATE INDEX batch_items_run ON batch_items (run_friendly_id);

ALTER TABLE batches ADD COLUMN parent_run_id TEXT;
ALTER TABLE batches ADD COLUMN resume_parent_on_completion BOOLEAN NOT NULL DEFAULT FALSE;
