-- 0016_timeline_order.sql: a ticket's timeline read in its own order (issue 13, benchmark 2).
-- A timeline page is ordered by (time, recorded time, kind, id) over the ticket's messages and
-- events. Without an index in that order every page sorted the keys of the whole ticket: a
-- 10,000-event ticket's first page took 50 to 100 ms (p50) under ingestion, growing with the
-- ticket. With these, each side of the page is an index range scan from the cursor that stops
-- after the page (store_tickets.c, TIMELINE_BRANCHES): about 7 ms, what a 100-event ticket's
-- page takes (docs/PERFORMANCE.md). messages_ticket (ticket_id, sent_at, id) stays for the
-- reads that order by it (evidence bundles, the read mark, search).
CREATE INDEX messages_timeline ON messages (ticket_id, sent_at, received_at, id);
CREATE INDEX events_timeline ON events (ticket_id, occurred_at, recorded_at, id)
    WHERE ticket_id IS NOT NULL;
