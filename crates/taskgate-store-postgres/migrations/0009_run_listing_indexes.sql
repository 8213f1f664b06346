-- Filtered run lists read in creation order from an index that holds their filter: the runs of
-- a task, and the runs behind an error group (the dashboard's group page, `filter[error]`).
-- Without them, a filter that matches few runs walks every run of the environment in order.
DROP INDEX task_runs_error_fingerprint_idx;
CREATE INDEX task_runs_error_listing_idx ON task_runs (runtime_environment_id, error_fingerprint, created_at, id)
    WHERE error_fingerprint IS NOT NULL;
CREATE INDEX task_runs_task_listing_idx ON task_runs (runtime_environment_id, task_identifier, created_at, id);
