-- 0011_live.sql: live updates for the viewer. Every event appended to a ticket's chain (a
-- message, a status change, a receipt ...) notifies channel casetrail_ticket with the ticket
-- id and nothing else (no names, no text): listeners fetch what changed through the API, under
-- its rules. NOTIFY is sent at COMMIT, so a viewer never hears of a change that rolled back,
-- and it reaches every casetrail instance listening on the same database. Identical payloads in
-- one transaction are delivered once.
CREATE FUNCTION casetrail_notify_ticket() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.ticket_id IS NOT NULL THEN
        PERFORM pg_notify('casetrail_ticket', NEW.ticket_id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION casetrail_notify_ticket();
