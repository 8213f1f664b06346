-- taskgate schema, PostgreSQL dialect. Times are milliseconds since the Unix epoch (UTC) in
-- BIGINT columns, the same as on SQLite, so both backends share one set of column names
-- and types (a test compares them). Secrets never appear in plaintext: keys are stored as a
-- SHA-256 lookup hash plus an AEAD-sealed copy.

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,
    name        TEXT,
    admin       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE personal_access_tokens (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    hashed_token      TEXT NOT NULL UNIQUE,
    obfuscated_token  TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    revoked_at        BIGINT,
    last_accessed_at  BIGINT
);
CREATE INDEX personal_access_tokens_user_idx ON personal_access_tokens (user_id);

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    slug        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    deleted_at  BIGINT
);

CREATE TABLE org_members (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role             TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    UNIQUE (organization_id, user_id)
);
CREATE INDEX org_members_user_idx ON org_members (user_id);

CREATE TABLE projects (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    slug             TEXT NOT NULL,
    external_ref     TEXT NOT NULL UNIQUE,
    created_at       BIGINT NOT NULL,
    deleted_at       BIGINT,
    UNIQUE (organization_id, slug)
);

CREATE TABLE runtime_environments (
    id                     TEXT PRIMARY KEY,
    project_id             TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    organization_id        TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    type                   TEXT NOT NULL,
    slug                   TEXT NOT NULL,
    org_member_id          TEXT REFERENCES org_members(id) ON DELETE CASCADE,
    parent_environment_id  TEXT REFERENCES runtime_environments(id) ON DELETE CASCADE,
    branch_name            TEXT,
    archived_at            BIGINT,
    api_key_hash           TEXT NOT NULL UNIQUE,
    api_key_sealed         TEXT NOT NULL,
    api_key_last_four      TEXT NOT NULL,
    pk_api_key_hash        TEXT NOT NULL UNIQUE,
    pk_api_key_sealed      TEXT NOT NULL,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
-- One STAGING / PRODUCTION / PREVIEW root per project, one DEVELOPMENT root per member, one
-- child per branch name.
CREATE UNIQUE INDEX runtime_environments_shared_root_uniq
    ON runtime_environments (project_id, type)
    WHERE parent_environment_id IS NULL AND org_member_id IS NULL;
CREATE UNIQUE INDEX runtime_environments_dev_root_uniq
    ON runtime_environments (project_id, org_member_id)
    WHERE parent_environment_id IS NULL AND org_member_id IS NOT NULL;
CREATE UNIQUE INDEX runtime_environments_branch_uniq
    ON runtime_environments (parent_environment_id, branch_name)
    WHERE parent_environment_id IS NOT NULL;
CREATE INDEX runtime_environments_project_idx ON runtime_environments (project_id);

-- Previously current secret keys, accepted until expires_at (strictly later than now).
-- Nothing deletes expired rows: an administrator may re-open a lapsed grace window.
CREATE TABLE revoked_api_keys (
    id                      TEXT PRIMARY KEY,
    runtime_environment_id  TEXT NOT NULL REFERENCES runtime_environments(id) ON DELETE CASCADE,
    api_key_hash            TEXT NOT NULL,
    api_key_sealed          TEXT NOT NULL,
    last_four               TEXT NOT NULL,
    expires_at              BIGINT NOT NULL,
    created_at              BIGINT NOT NULL,
    use_count               BIGINT NOT NULL DEFAULT 0,
    last_used_at            BIGINT
);
CREATE INDEX revoked_api_keys_hash_idx ON revoked_api_keys (api_key_hash);
CREATE INDEX revoked_api_keys_env_idx ON revoked_api_keys (runtime_environment_id);

-- Append-only: triggers refuse UPDATE and DELETE.
CREATE TABLE audit_events (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    occurred_at      BIGINT NOT NULL,
    action           TEXT NOT NULL,
    actor_user_id    TEXT,
    credential_id    TEXT,
    credential_kind  TEXT NOT NULL,
    organization_id  TEXT,
    environment_id   TEXT,
    target_id        TEXT,
    old_expires_at   BIGINT,
    new_expires_at   BIGINT
);
CREATE INDEX audit_events_env_idx ON audit_events (environment_id, seq);
CREATE INDEX audit_events_action_idx ON audit_events (action, seq);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

