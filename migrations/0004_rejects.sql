-- 0004_rejects.sql: webhook entries that could not be stored, kept beside their receipt.
-- A malformed entry (a 3,000-character wamid, a missing sender ...) costs only itself: the rest
-- of its batch is stored and acknowledged, and the entry is recorded here with its reason, so
-- Meta does not redeliver the valid part forever and an operator can see what was refused.

CREATE TABLE webhook_rejects (
    id          bigserial PRIMARY KEY,
    receipt_id  bigint NOT NULL REFERENCES webhook_receipts (id),
    kind        text NOT NULL CHECK (kind IN ('message', 'status')),
    position    text NOT NULL,             -- e.g. entry[0].changes[0].value.messages[2]
    reason      text NOT NULL,
    item        jsonb,                     -- the entry as received (also in the raw receipt)
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (receipt_id, position)
);

ALTER TABLE webhook_receipts ADD COLUMN rejected integer NOT NULL DEFAULT 0;
