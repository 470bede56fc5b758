-- 0012_evidence.sql: evidence for disputes (issue 14). Each raw webhook receipt keeps the
-- X-Hub-Signature-256 value it arrived with, so whoever holds the app secret can re-check the
-- exact bytes the customer's message came in (NULL: signatures were not checked, or the
-- receipt is older than this migration). Reads of evidence, exports and reports are recorded in
-- an access log of their own: a read is not a change to a ticket, and chaining reads into the
-- ticket chains would make every read a write to the record it reads.
ALTER TABLE webhook_receipts ADD COLUMN signature text
    CHECK (signature ~ '^sha256=[0-9A-Fa-f]{64}$');

CREATE TABLE access_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    user_id   bigint NOT NULL REFERENCES users (id),
    what      text NOT NULL,              -- e.g. evidence, events.csv, approvals.csv, report
    ticket_id bigint REFERENCES tickets (id),
    filters   jsonb,                      -- the query as asked
    rows      bigint                      -- how many rows (or items) it returned
);
CREATE INDEX access_log_at ON access_log (at DESC, id DESC);

CREATE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'access_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER access_log_no_update_delete BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_append_only();
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_append_only();
