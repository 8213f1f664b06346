-- What the queues API and page act on: a queue's id (`queue_…`), the limit its worker
-- declared beside the one in force (they differ while an administrator's override holds, and
-- a later registration changes only the declared one), who overrode it and when, and whether
-- it is paused (a dequeue takes none of its runs; runs already executing finish).
ALTER TABLE task_queues ADD COLUMN friendly_id TEXT;
ALTER TABLE task_queues ADD COLUMN declared_limit BIGINT;
ALTER TABLE task_queues ADD COLUMN overridden_at BIGINT;
ALTER TABLE task_queues ADD COLUMN overridden_by TEXT;
ALTER TABLE task_queues ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE task_queues
SET friendly_id = 'queue_' || substr(md5(random()::text || runtime_environment_id || name), 1, 24), declared_limit = concurrency_limit;
CREATE UNIQUE INDEX task_queues_friendly_id_idx ON task_queues (friendly_id);
