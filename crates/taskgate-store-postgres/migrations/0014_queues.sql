-- Queues as workers declare them (a task's own queue, or a shared `queue()`), with their
-- concurrency limits: a dequeue takes no run of a queue (or of one concurrency key of it)
-- that already holds its limit. A queue without a limit is bounded by its environment's.
CREATE TABLE task_queues (
    runtime_environment_id TEXT NOT NULL REFERENCES runtime_environments(id) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    concurrency_limit      BIGINT,
    updated_at             BIGINT NOT NULL,
    PRIMARY KEY (runtime_environment_id, name)
);
