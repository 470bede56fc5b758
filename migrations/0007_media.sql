-- 0007_media.sql: customers' photos, voice notes and documents kept as evidence. Ingestion only
-- records what is to be fetched; a background worker downloads it through the Graph API,
-- checks it against the webhook's sha256 and stores it by hash.
CREATE TABLE media (
    id           bigserial PRIMARY KEY,
    message_id   bigint NOT NULL UNIQUE REFERENCES messages (id),
    media_id     text NOT NULL,               -- Graph's id, from the webhook
    mime_type    text,
    expect_sha256 text,                       -- from the webhook (base64 or hex)
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'stored', 'failed')),
    reason       text,                        -- why it failed, or the last retry's error
    attempts     integer NOT NULL DEFAULT 0,
    next_at      timestamptz NOT NULL DEFAULT now(),
    sha256       text,                        -- hex SHA-256 of the stored bytes
    size         bigint,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX media_due ON media (next_at, id) WHERE status = 'pending';
