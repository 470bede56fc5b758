-- 0013_notify_outside_commits.sql: live updates no longer NOTIFY from inside each writing
-- transaction. PostgreSQL serialises the commits of notifying transactions, which cost webhook
-- ingestion a third of its throughput (bench/notify_ab: 313 vs 486 new-message webhooks/s).
-- Each casetrail instance now collects the tickets its commits changed and sends them in one
-- NOTIFY transaction every 100 ms (server/store/store_listen.c), on the same channel with the
-- same ids-only payload, so several instances still hear each other.
DROP TRIGGER events_notify ON events;
DROP FUNCTION casetrail_notify_ticket();
