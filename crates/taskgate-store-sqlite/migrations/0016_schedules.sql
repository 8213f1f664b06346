-- Schedules: cron expressions that trigger a task, one row per environment. Declarative ones
-- come from a worker's manifest (`schedules.task({cron})`), imperative ones from the API.
-- Times are epoch milliseconds.
CREATE TABLE task_schedules (
    id                     TEXT PRIMARY KEY,
    friendly_id            TEXT NOT NULL UNIQUE,
    runtime_environment_id TEXT NOT NULL REFERENCES runtime_environments(id) ON DELETE CASCADE,
    -- DECLARATIVE or IMPERATIVE.
    kind                   TEXT NOT NULL,
    task_identifier        TEXT NOT NULL,
    expression             TEXT NOT NULL,
    timezone               TEXT NOT NULL,
    time_window            TEXT,
    -- The client's key; a declarative schedule's task.
    deduplication_key      TEXT NOT NULL,
    external_id            TEXT,
    active                 BOOLEAN NOT NULL,
    -- The nominal time of the next fire, and when it runs (spread by the window). due_at is
    -- NULL while inactive or while a fire is pending, so the due index holds only what may
    -- be claimed.
    next_at                BIGINT,
    due_at                 BIGINT,
    -- A fire claimed and not yet completed: its nominal time, and when its lease runs out
    -- and another node may take it over.
    pending_at             BIGINT,
    pending_until          BIGINT,
    last_at                BIGINT,
    last_run_id            TEXT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE UNIQUE INDEX task_schedules_dedup_uniq
    ON task_schedules (runtime_environment_id, kind, deduplication_key);
CREATE INDEX task_schedules_due ON task_schedules (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX task_schedules_pending ON task_schedules (pending_until) WHERE pending_until IS NOT NULL;
CREATE INDEX task_schedules_env_created ON task_schedules (runtime_environment_id, created_at, id);

-- A task's declared `cron` ({cron, timezone, environments?, window?} as JSON).
ALTER TABLE background_worker_tasks ADD COLUMN schedule TEXT;

-- The schedule (friendly id) whose fire triggered a run.
ALTER TABLE task_runs ADD COLUMN schedule_id TEXT;
