-- Alert channels of a project: where alerts go (a webhook URL, an email address, a Slack
-- incoming webhook), for which alert types and environment types (each list kept as
-- `,A,B,` so a channel matches with one LIKE), and whether it is enabled. A webhook's
-- signing secret is sealed with the master key.
CREATE TABLE alert_channels (
    id                     TEXT PRIMARY KEY,
    friendly_id            TEXT NOT NULL UNIQUE,
    project_id             TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    deduplication_key      TEXT NOT NULL,
    user_deduplication_key BOOLEAN NOT NULL,
    enabled                BOOLEAN NOT NULL,
    kind                   TEXT NOT NULL,
    name                   TEXT NOT NULL,
    alert_types            TEXT NOT NULL,
    environment_types      TEXT NOT NULL,
    destination            TEXT NOT NULL,
    secret_sealed          TEXT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    UNIQUE (project_id, deduplication_key)
);

-- The outbox: one row per alert event and channel, written in the transaction that made the
-- event (a run failing for good, an error group opening or reopening). `due_at` (indexed) is
-- when a node may next try it; a claim moves it past a lease, so one node delivers it at a
-- time and a node that dies mid-delivery leaves it to another. Sent and dead rows have none.
CREATE TABLE alert_deliveries (
    id              TEXT PRIMARY KEY,
    channel_id      TEXT NOT NULL REFERENCES alert_channels(id) ON DELETE CASCADE,
    environment_id  TEXT NOT NULL REFERENCES runtime_environments(id) ON DELETE CASCADE,
    event           TEXT NOT NULL,
    subject         TEXT NOT NULL,
    task_identifier TEXT,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    due_at          BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX alert_deliveries_due_idx ON alert_deliveries (due_at);
CREATE INDEX alert_deliveries_channel_idx ON alert_deliveries (channel_id, created_at);
