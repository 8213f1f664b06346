-- Runs waiting for the next record of one of their input streams (`inputStream.wait()`): the
-- waitpoint, pending until a record is sent to that stream or it times out. A row leaves this
-- table when its waitpoint completes, so the table holds only waits in progress.
CREATE TABLE input_stream_waits (
    waitpoint_id  TEXT PRIMARY KEY REFERENCES waitpoints(id) ON DELETE CASCADE,
    run_id        TEXT NOT NULL REFERENCES task_runs(id) ON DELETE CASCADE,
    stream_id     TEXT NOT NULL
);
CREATE INDEX input_stream_waits_stream ON input_stream_waits (run_id, stream_id);
