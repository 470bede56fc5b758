-- 0014_exports.sql: exports for finance and audit (issue 14).
-- An export streams for as long as its client reads, so it is recorded in the access log when
-- it ends, with the rows that actually went out; complete says whether it was handed out whole
-- (false: the client left, the database failed, or casetrail stopped mid-way). Rows written
-- before this migration (evidence bundles, built whole before they are sent) are complete.
ALTER TABLE access_log ADD COLUMN complete boolean NOT NULL DEFAULT true;

-- Events across tickets are read in time order (GET /api/events, pages and CSV). Without this
-- index every page sorted the whole table, and an export's first FETCH sorted all of it before
-- the first row: at 1,000,000 events a page took 160 to 300 ms and the first FETCH 6.4 s (past
-- the 5 s CASETRAIL_DB_TIMEOUT). With it: a page 0.2 to 0.7 ms, the first FETCH 11 ms. Built in
-- 0.8 s at 1,000,000 events (EXPLAIN ANALYZE figures in docs/PERFORMANCE.md). Ticket events only,
-- as the reads are; one ticket's events keep using events_ticket_seq.
CREATE INDEX events_occurred ON events (occurred_at, id) WHERE ticket_id IS NOT NULL;
