-- 0008_read_marks.sql: optional blue ticks (CASETRAIL_MARK_READ). When staff open a ticket the
-- newest inbound message is marked read on the Graph API. The request travels through the
-- outbox (crash-safe, retried, shared by instances) as a row of kind 'read' whose message_id
-- is the inbound message: UNIQUE makes opening a ticket twice queue one mark. It changes no
-- ticket and no message row, so it writes no chain event; the row itself records who opened
-- the ticket, when, and what Graph answered.
ALTER TABLE outbox ADD COLUMN kind text NOT NULL DEFAULT 'message'
    CHECK (kind IN ('message', 'read'));
ALTER TABLE outbox ADD COLUMN requested_by bigint REFERENCES users (id);
ALTER TABLE outbox ADD COLUMN done_at timestamptz;
