-- Debounce keys (`debounce: {key, delay}`): per environment and task, the run the key's
-- triggers collapse into while it is delayed, and when that run's first trigger came (what
-- `maxDelay` is measured from). The row is made before its first run (with an empty run id),
-- so concurrent first triggers of a key queue on it rather than each making a run.
CREATE TABLE debounced_runs (
    runtime_environment_id TEXT NOT NULL REFERENCES runtime_environments(id) ON DELETE CASCADE,
    task_identifier        TEXT NOT NULL,
    debounce_key           TEXT NOT NULL,
    run_id                 TEXT NOT NULL,
    first_at               BIGINT NOT NULL,
    PRIMARY KEY (runtime_environment_id, task_identifier, debounce_key)
);
