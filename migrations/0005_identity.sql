-- 0005_identity.sql: customers without a phone number (2026 usernames and business-scoped user
-- ids), edited and deleted messages, and replies sent from the WhatsApp Business app.

-- A contact is known by its BSUID (user_id) when it has one, by its phone number (wa_id)
-- otherwise, and keeps whichever of the two (plus parent BSUID and username) it was seen with.
ALTER TABLE contacts ALTER COLUMN wa_id DROP NOT NULL;
ALTER TABLE contacts
    ADD COLUMN user_id        text,
    ADD COLUMN parent_user_id text,
    ADD COLUMN username       text,
    ADD COLUMN username_at    timestamptz,   -- send time of the message that gave the username
    -- two rows found to be one customer (first seen by number, then by BSUID alone): the later
    -- one points at the earlier, which receives everything from then on
    ADD COLUMN merged_into    bigint REFERENCES contacts (id),
    ADD CONSTRAINT contacts_known_by_something CHECK (wa_id IS NOT NULL OR user_id IS NOT NULL);
CREATE UNIQUE INDEX contacts_user_id ON contacts (phone_number_id, user_id)
    WHERE user_id IS NOT NULL;

-- An edit or a deletion names the message it changes; the original row is never touched.
ALTER TABLE messages ADD COLUMN target_wamid text;
CREATE INDEX messages_target ON messages (target_wamid) WHERE target_wamid IS NOT NULL;

-- Statuses of replies sent to a BSUID name it instead of a phone number.
ALTER TABLE message_statuses
    ADD COLUMN recipient_user_id text,
    ADD COLUMN username          text;

-- The first reply to the customer (from casetrail or from the Business app).
ALTER TABLE tickets ADD COLUMN first_response_at timestamptz;
