-- 0009_sessions.sql: staff sign in to the viewer with a name and password. The password is kept
-- only as a memory-hard hash with its parameters (scrypt$LOG2N$r$p$salt$hash, base64), so the
-- cost can be raised later without resetting anyone. A session is a random cookie of which only
-- the SHA-256 is stored; it dies when idle too long, when too old, when signed out, when the
-- user is deactivated, when their role changes (role is copied at sign-in) or when a new
-- password is set.
ALTER TABLE users ADD COLUMN password_hash text;

CREATE TABLE sessions (
    token_hash   text PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id),
    role         text NOT NULL,               -- the role at sign-in: a change ends the session
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    ended_at     timestamptz,                 -- signed out or revoked
    address      text NOT NULL,               -- the client address it was made from
    user_agent   text
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE ended_at IS NULL;

-- Failed sign-ins, per name and per client address, for the limit (429 with Retry-After).
CREATE TABLE sign_in_failures (
    id      bigserial PRIMARY KEY,
    name    text NOT NULL,
    address text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_failures_name ON sign_in_failures (name, at);
CREATE INDEX sign_in_failures_address ON sign_in_failures (address, at);
