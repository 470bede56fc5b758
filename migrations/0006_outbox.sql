-- 0006_outbox.sql: agent replies through the WhatsApp Cloud API. A reply is a message row
-- (direction out) and an outbox row written in the same transaction as its event; sender
-- threads claim due rows, send them, and record the outcome.

-- a queued reply has no wamid until Graph accepts it
ALTER TABLE messages ALTER COLUMN wamid DROP NOT NULL;
ALTER TABLE messages ADD COLUMN author_id bigint REFERENCES users (id);

CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    message_id      bigint NOT NULL UNIQUE REFERENCES messages (id),
    phone_number_id text NOT NULL,
    recipient       text NOT NULL,            -- the phone number, else the BSUID: pacing key
    body            jsonb NOT NULL,           -- the Graph request body, exactly as sent
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_at         timestamptz NOT NULL DEFAULT now(),
    claimed_at      timestamptz,              -- state 'sending' since (crash recovery)
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_due ON outbox (next_at, id) WHERE state = 'queued';
CREATE INDEX outbox_recipient ON outbox (phone_number_id, recipient, id)
    WHERE state IN ('queued', 'sending');

-- Pacing: when the next message may go to one recipient (Meta's pair limit, 131056) and, with
-- recipient '', from one business number (its throughput cap).
CREATE TABLE outbox_pacing (
    phone_number_id text NOT NULL,
    recipient       text NOT NULL,
    next_allowed_at timestamptz NOT NULL,
    PRIMARY KEY (phone_number_id, recipient)
);

-- Idempotency-Key: the same key from the same user within 24 hours answers the first answer
-- again, byte for byte, and queues nothing.
CREATE TABLE idempotency_keys (
    user_id        bigint NOT NULL REFERENCES users (id),
    key            text NOT NULL,
    request_sha256 text NOT NULL,
    status         integer NOT NULL,
    response       text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
