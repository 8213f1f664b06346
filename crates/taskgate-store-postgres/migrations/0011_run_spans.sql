-- The spans task processes export over OTLP, kept per run so that a run's trace shows the
-- work inside its attempts. A span is sent again when it ends (the first copy was partial);
-- the later copy replaces the earlier.
CREATE TABLE task_run_spans (
    run_id          TEXT NOT NULL REFERENCES task_runs(id) ON DELETE CASCADE,
    span_id         TEXT NOT NULL,
    parent_span_id  TEXT,
    attempt_number  BIGINT,
    name            TEXT NOT NULL,
    start_unix_nano BIGINT NOT NULL,
    end_unix_nano   BIGINT NOT NULL,
    is_error        BOOLEAN NOT NULL DEFAULT FALSE,
    attributes      TEXT,
    PRIMARY KEY (run_id, span_id)
);
