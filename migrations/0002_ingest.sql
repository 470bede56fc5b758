-- 0002_ingest.sql: raw webhook receipts, contacts, tickets, messages and delivery statuses.

-- Evidence first: every accepted webhook POST exactly as received.
CREATE TABLE webhook_receipts (
    id                 bigserial PRIMARY KEY,
    received_at        timestamptz NOT NULL DEFAULT now(),
    body               bytea,                 -- the exact bytes; NULL only after a lawful erasure
    -- a byte-identical redelivery is the same evidence: stored once (DECISIONS: a duplicate
    -- delivery adds no row)
    body_sha256        bytea NOT NULL UNIQUE CHECK (length(body_sha256) = 32),
    body_length        integer NOT NULL,
    signature_verified boolean NOT NULL,
    messages           integer NOT NULL DEFAULT 0, -- new messages it brought
    statuses           integer NOT NULL DEFAULT 0  -- new statuses it brought
);

-- A customer as seen by one business phone number.
CREATE TABLE contacts (
    id              bigserial PRIMARY KEY,
    phone_number_id text NOT NULL,
    wa_id           text NOT NULL,
    name            text,
    name_at         timestamptz,              -- send time of the message that gave the name
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (phone_number_id, wa_id)
);

CREATE TABLE tickets (
    id               bigserial PRIMARY KEY,
    contact_id       bigint NOT NULL REFERENCES contacts (id),
    phone_number_id  text NOT NULL,
    status           text NOT NULL DEFAULT 'new'
                     CHECK (status IN ('new', 'open', 'pending', 'resolved', 'closed')),
    assignee_id      bigint REFERENCES users (id),
    escalation_level integer NOT NULL DEFAULT 0 CHECK (escalation_level BETWEEN 0 AND 3),
    priority         text NOT NULL DEFAULT 'normal'
                     CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    last_message_at  timestamptz,
    last_seq         bigint NOT NULL DEFAULT 0,
    chain_head       bytea
);
-- B-ingest 7: at most one ticket that is not closed per contact (and so per business number).
CREATE UNIQUE INDEX tickets_one_live_per_contact ON tickets (contact_id) WHERE status <> 'closed';
CREATE INDEX tickets_activity ON tickets (updated_at DESC, id DESC);
CREATE INDEX tickets_status ON tickets (status, updated_at DESC, id DESC);

ALTER TABLE events ADD CONSTRAINT events_ticket_fk FOREIGN KEY (ticket_id) REFERENCES tickets (id);

CREATE TABLE messages (
    id            bigserial PRIMARY KEY,
    wamid         text NOT NULL UNIQUE,       -- B-ingest 6: the idempotency key
    ticket_id     bigint REFERENCES tickets (id),
    contact_id    bigint NOT NULL REFERENCES contacts (id),
    direction     text NOT NULL CHECK (direction IN ('in', 'out')),
    type          text NOT NULL,
    body          text,                       -- text, caption or other human-readable content
    payload       jsonb NOT NULL,             -- the message object as received, unknown fields kept
    context_wamid text,                       -- the message this one replies to
    sent_at       timestamptz NOT NULL,       -- WhatsApp timestamp (the customer's send time)
    received_at   timestamptz NOT NULL DEFAULT now(),
    receipt_id    bigint REFERENCES webhook_receipts (id),
    status        text,                       -- outbound: sent, delivered, read, failed
    status_at     timestamptz,
    error_code    integer,
    error_title   text
);
CREATE INDEX messages_ticket ON messages (ticket_id, sent_at, id);
CREATE INDEX messages_context ON messages (context_wamid) WHERE context_wamid IS NOT NULL;

-- Each delivery receipt once per (wamid, status), for outbound messages we know.
CREATE TABLE message_statuses (
    id           bigserial PRIMARY KEY,
    message_id   bigint NOT NULL REFERENCES messages (id),
    wamid        text NOT NULL,
    status       text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    recipient_id text,
    errors       jsonb,
    receipt_id   bigint REFERENCES webhook_receipts (id),
    UNIQUE (wamid, status)
);
