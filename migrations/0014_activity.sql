-- 0014_activity.sql: the queue's activity filter ("yesterday's escalated tickets") finds the
-- tickets with an event in a time range; without this index it reads every event.
CREATE INDEX events_occurred ON events (occurred_at, ticket_id) WHERE ticket_id IS NOT NULL;
