-- Offloaded payloads and outputs (the SDK uploads any packet of 128 KiB or more and sends its
-- path instead), kept in the database so that every node can serve them. They live as long
-- as their environment. Times are epoch milliseconds.
CREATE TABLE packets (
    runtime_environment_id TEXT NOT NULL REFERENCES runtime_environments(id) ON DELETE CASCADE,
    path                   TEXT NOT NULL,
    content_type           TEXT NOT NULL,
    size_bytes             BIGINT NOT NULL,
    data                   BYTEA NOT NULL,
    created_at             BIGINT NOT NULL,
    PRIMARY KEY (runtime_environment_id, path)
);
