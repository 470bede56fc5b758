-- 0001_init.sql: staff users, the append-only hash-chained events table and the free-text rows
-- that sit beside it (so a lawful erasure can overwrite text without breaking any hash).

CREATE TABLE users (
    id                   bigserial PRIMARY KEY,
    name                 text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    role                 text NOT NULL CHECK (role IN ('agent', 'supervisor', 'qa', 'admin')),
    approval_limit_minor bigint CHECK (approval_limit_minor >= 0),
    token_hash           text NOT NULL UNIQUE,
    active               boolean NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    -- head of this user's event chain, kept under the row lock that serialises appends
    last_seq             bigint NOT NULL DEFAULT 0,
    chain_head           bytea
);

-- One secret salt per scope ('staff', 'contact:<id>'): text digests are HMACs keyed with it, so
-- a short text (a phone number) cannot be guessed from its digest. Erasure sets salt to NULL.
CREATE TABLE text_salts (
    scope        text PRIMARY KEY,
    salt         bytea CHECK (salt IS NULL OR length(salt) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz
);

CREATE TABLE events (
    id          bigserial PRIMARY KEY,          -- order of recording (timeline tie-break)
    ticket_id   bigint,                         -- NULL for user events; FK added with tickets
    user_id     bigint REFERENCES users (id),   -- subject of a user event; NULL for ticket events
    seq         bigint NOT NULL CHECK (seq >= 1),
    action      text NOT NULL,
    actor_type  text NOT NULL CHECK (actor_type IN ('agent', 'system', 'customer')),
    actor_id    text NOT NULL,
    from_value  text,
    to_value    text,
    data        jsonb,                          -- ids, enums, amounts only: never free text
    digests     jsonb,                          -- {"field": "hex HMAC-SHA256"} of event_texts
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    prev_hash   bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash        bytea NOT NULL CHECK (length(hash) = 32),
    CHECK ((ticket_id IS NULL) <> (user_id IS NULL))
);
CREATE UNIQUE INDEX events_ticket_seq ON events (ticket_id, seq) WHERE ticket_id IS NOT NULL;
CREATE UNIQUE INDEX events_user_seq ON events (user_id, seq) WHERE ticket_id IS NULL;

-- Free text of an event (reason, note, actor name as it was). Its digest is in events.digests.
CREATE TABLE event_texts (
    event_id   bigint NOT NULL REFERENCES events (id),
    field      text NOT NULL,
    body       text,                            -- NULL once erased
    salt_scope text NOT NULL REFERENCES text_salts (scope),
    PRIMARY KEY (event_id, field)
);

-- Append-only in the database itself, whatever the application does.
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON events FROM PUBLIC;
