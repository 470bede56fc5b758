-- 0017_drop_messages_ticket.sql: one index fewer to write for every stored message (issue 13).
-- messages_timeline (ticket_id, sent_at, received_at, id) serves every read messages_ticket
-- (ticket_id, sent_at, id) served: a ticket's messages by time (evidence bundles, search), and
-- the read mark's latest inbound message, where the planner adds an incremental sort on the
-- rare ties of sent_at. The write path paid for both on each message.
DROP INDEX messages_ticket;
