-- The run engine (SQLite dialect): execution snapshots, attempts, registered workers and their
-- tasks, environment variables, run log records and development presence.

-- Execution snapshots live on the run row: a worker only ever needs the latest one, and one
-- row per run keeps a dequeue to one write. `due_at` is when time alone next changes the run
-- (a delay's end, a TTL, a stall, an exceeded duration), so the sweeper reads only due runs.
ALTER TABLE task_runs ADD COLUMN execution_status TEXT NOT NULL DEFAULT 'QUEUED';
ALTER TABLE task_runs ADD COLUMN snapshot_id TEXT NOT NULL DEFAULT '';
ALTER TABLE task_runs ADD COLUMN snapshot_description TEXT NOT NULL DEFAULT '';
ALTER TABLE task_runs ADD COLUMN snapshot_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE task_runs ADD COLUMN attempt_number BIGINT NOT NULL DEFAULT 0;
ALTER TABLE task_runs ADD COLUMN attempt_started_at BIGINT;
ALTER TABLE task_runs ADD COLUMN heartbeat_at BIGINT;
ALTER TABLE task_runs ADD COLUMN available_at BIGINT;
ALTER TABLE task_runs ADD COLUMN due_at BIGINT;
ALTER TABLE task_runs ADD COLUMN worker_id TEXT;
ALTER TABLE task_runs ADD COLUMN task_version TEXT;
ALTER TABLE task_runs ADD COLUMN max_duration_seconds BIGINT;
ALTER TABLE task_runs ADD COLUMN retry_config TEXT;
ALTER TABLE task_runs ADD COLUMN is_development BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE task_runs ADD COLUMN is_replay BOOLEAN NOT NULL DEFAULT FALSE;

-- Runs stored before the engine existed never executed: queued and delayed ones stay so,
-- everything else is finished.
UPDATE task_runs SET
    execution_status = CASE status WHEN 'PENDING' THEN 'QUEUED' WHEN 'DELAYED' THEN 'DELAYED' ELSE 'FINISHED' END,
    snapshot_id = 'snapshot_' || substr(id, 2),
    snapshot_description = 'Run was created',
    snapshot_at = updated_at,
    available_at = COALESCE(delay_until, created_at),
    is_development = EXISTS (SELECT 1 FROM runtime_environments e
                             WHERE e.id = task_runs.runtime_environment_id AND e.type = 'DEVELOPMENT');
UPDATE task_runs SET due_at = ttl_expires_at WHERE status = 'PENDING';
UPDATE task_runs SET due_at = CASE WHEN ttl_expires_at IS NOT NULL AND ttl_expires_at < delay_until
                                   THEN ttl_expires_at ELSE delay_until END
    WHERE status = 'DELAYED';

DROP INDEX task_runs_due_idx;
-- The queue: an environment's dequeueable runs in order, and the runs holding its slots.
CREATE INDEX task_runs_queue_idx ON task_runs (runtime_environment_id, execution_status, available_at);
CREATE INDEX task_runs_due_at_idx ON task_runs (due_at) WHERE due_at IS NOT NULL;

-- One row per ended attempt, numbered from 1 (the attempt in progress is the run row's
-- `attempt_number` and `attempt_started_at`: one write per attempt, not two).
CREATE TABLE task_run_attempts (
    run_id        TEXT NOT NULL REFERENCES task_runs(id) ON DELETE CASCADE,
    number        BIGINT NOT NULL,
    status        TEXT NOT NULL,
    worker_id     TEXT,
    started_at    BIGINT NOT NULL,
    completed_at  BIGINT,
    error         TEXT,
    PRIMARY KEY (run_id, number)
);

-- A registered build of an environment's tasks (`trigger.dev dev` registers one per build).
-- The newest of an environment is its current worker.
CREATE TABLE background_workers (
    id                      TEXT PRIMARY KEY,
    friendly_id             TEXT NOT NULL UNIQUE,
    runtime_environment_id  TEXT NOT NULL REFERENCES runtime_environments(id) ON DELETE CASCADE,
    version                 TEXT NOT NULL,
    content_hash            TEXT NOT NULL,
    sdk_version             TEXT,
    cli_version             TEXT,
    runtime                 TEXT,
    runtime_version         TEXT,
    created_at              BIGINT NOT NULL,
    UNIQUE (runtime_environment_id, version)
);
CREATE INDEX background_workers_env_idx ON background_workers (runtime_environment_id, created_at);

CREATE TABLE background_worker_tasks (
    worker_id             TEXT NOT NULL REFERENCES background_workers(id) ON DELETE CASCADE,
    slug                  TEXT NOT NULL,
    file_path             TEXT NOT NULL,
    export_name           TEXT,
    retry_config          TEXT,
    queue_name            TEXT,
    machine               TEXT,
    max_duration_seconds  BIGINT,
    ttl                   TEXT,
    payload_schema        TEXT,
    description           TEXT,
    trigger_source        TEXT,
    PRIMARY KEY (worker_id, slug)
);

-- An environment's variables; values are sealed under the master key, like keys. A secret one
-- is never shown again once set (listings redact it).
CREATE TABLE environment_variables (
    runtime_environment_id  TEXT NOT NULL REFERENCES runtime_environments(id) ON DELETE CASCADE,
    key                     TEXT NOT NULL,
    value_sealed            TEXT NOT NULL,
    is_secret               BOOLEAN NOT NULL DEFAULT FALSE,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    PRIMARY KEY (runtime_environment_id, key)
);

-- When each development environment's CLI was last seen (presence stream, dequeues).
CREATE TABLE dev_presence (
    runtime_environment_id  TEXT PRIMARY KEY REFERENCES runtime_environments(id) ON DELETE CASCADE,
    last_seen_at            BIGINT NOT NULL
);

-- Log records a run's worker exported over OTLP; read in time order, to the nanosecond the
-- worker stamped (lines logged in one millisecond keep their order), `seq` breaking ties.
CREATE TABLE task_run_logs (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT NOT NULL REFERENCES task_runs(id) ON DELETE CASCADE,
    attempt_number  BIGINT,
    time_unix_nano  BIGINT NOT NULL,
    severity        TEXT NOT NULL,
    message         TEXT NOT NULL,
    attributes      TEXT
);
CREATE INDEX task_run_logs_run_idx ON task_run_logs (run_id, time_unix_nano, seq);
