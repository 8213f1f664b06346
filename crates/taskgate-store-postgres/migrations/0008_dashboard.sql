-- Dashboard sign-in, sessions, and the CLI's browser login. Every secret is stored as the
-- SHA-256 of its plaintext; the plaintext exists only in the link, cookie or terminal.

-- One-time sign-in links (`taskgate login-link`, or an emailed link).
CREATE TABLE sign_in_links (
    token_hash  TEXT PRIMARY KEY,
    email       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX sign_in_links_by_email ON sign_in_links (email, created_at);

-- Dashboard sessions. `admin` is the user's flag when the session began: a session of an
-- administrator ends when that flag is cleared.
CREATE TABLE dashboard_sessions (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    user_id     TEXT NOT NULL REFERENCES users (id),
    admin       BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    ended_at    BIGINT
);
CREATE INDEX dashboard_sessions_by_user ON dashboard_sessions (user_id);

-- Authorization codes of `trigger.dev login`: created by the CLI, approved by a signed-in
-- user on the consent page, redeemed once for a personal access token.
CREATE TABLE authorization_codes (
    code_hash           TEXT PRIMARY KEY,
    code_challenge      TEXT,
    callback_port       INTEGER,
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL,
    approved_by         TEXT REFERENCES users (id),
    approved_at         BIGINT,
    approval_code_hash  TEXT,
    redeemed_at         BIGINT,
    pat_id              TEXT
);
