-- Deployments: bundles the official CLI builds and uploads (`trigger.dev deploy`), their
-- indexing into a worker, and which one each environment runs. Times are epoch milliseconds.

-- An uploaded bundle, kept in the database so that every node can read it. The upload URL
-- carries a secret whose hash is kept here; the bundle arrives once.
CREATE TABLE artifacts (
    key                    TEXT PRIMARY KEY,
    runtime_environment_id TEXT NOT NULL REFERENCES runtime_environments(id) ON DELETE CASCADE,
    upload_secret_hash     TEXT NOT NULL,
    content_length         BIGINT NOT NULL,
    data                   BYTEA,
    uploaded_at            BIGINT,
    expires_at             BIGINT NOT NULL,
    created_at             BIGINT NOT NULL
);
CREATE INDEX artifacts_expiry ON artifacts (expires_at);

CREATE TABLE deployments (
    id                     TEXT PRIMARY KEY,
    friendly_id            TEXT NOT NULL UNIQUE,
    short_code             TEXT NOT NULL,
    runtime_environment_id TEXT NOT NULL REFERENCES runtime_environments(id) ON DELETE CASCADE,
    version                TEXT NOT NULL,
    content_hash           TEXT NOT NULL,
    -- PENDING, BUILDING, DEPLOYED, FAILED (upstream's names).
    status                 TEXT NOT NULL,
    artifact_key           TEXT,
    worker_id              TEXT,
    external_id            TEXT,
    -- {name, message, stack?, stderr?} of a failed deployment, as JSON.
    error                  TEXT,
    runtime                TEXT,
    triggered_via          TEXT,
    git_meta               TEXT,
    created_at             BIGINT NOT NULL,
    deployed_at            BIGINT,
    failed_at              BIGINT
);
CREATE UNIQUE INDEX deployments_version_uniq ON deployments (runtime_environment_id, version);
CREATE UNIQUE INDEX deployments_external_uniq ON deployments (runtime_environment_id, external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX deployments_env_created ON deployments (runtime_environment_id, created_at, id);

-- The deployment an environment runs (promoted); NULL for development environments.
ALTER TABLE runtime_environments ADD COLUMN current_deployment_id TEXT;
-- The deployment a worker was indexed from.
ALTER TABLE background_workers ADD COLUMN deployment_id TEXT;
