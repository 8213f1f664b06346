-- Where each streaming writer of a run's output stream got to (the SDK's `streams.pipe`
-- sends its chunks as lines of one long request, numbered from 0, and resumes after a lost
-- connection from the next line the server has), so a resumed writer sends nothing twice.
CREATE TABLE stream_writers (
    run_id      TEXT NOT NULL REFERENCES task_runs(id) ON DELETE CASCADE,
    stream_id   TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    last_index  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (run_id, stream_id, client_id)
);
