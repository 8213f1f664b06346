-- A trigger's `x-trigger-request-idempotency-key`: SDK clients send a fresh key per logical
-- call and reuse it across that call's retries. `key_hash` is the SHA-256 of the JSON
-- [key, environment id, task id]; a retry inside the window answers with the run its first
-- attempt created. Expired rows are reused by the same key and purged periodically.
CREATE TABLE request_idempotency_keys (
    key_hash    TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES task_runs(id) ON DELETE CASCADE,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX request_idempotency_keys_expiry_idx ON request_idempotency_keys (expires_at);
