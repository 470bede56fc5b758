-- 0015_digests.sql: signed digests as `casetrail digest` makes them, kept so an evidence bundle
-- can carry the newest one that covers its ticket (with the proof that it does). A stored
-- digest is a convenience, not the safeguard: whoever needs to catch a rewrite of the database
-- keeps the printed line elsewhere too, since a superuser could remove rows here as anywhere.
CREATE TABLE digests (
    id        bigserial PRIMARY KEY,
    made_at   timestamptz NOT NULL DEFAULT now(),
    upto_id   bigint NOT NULL,            -- the digest point, as in the payload
    payload   text NOT NULL,              -- the exact text that is signed (docs/audit-format.md)
    alg       text,                       -- 'ed25519', or NULL when made without a key
    signature text,                       -- hex, over payload's bytes
    CHECK ((alg IS NULL) = (signature IS NULL))
);
-- the bundle looks for the newest signed digest at or after the ticket's first event
CREATE INDEX digests_signed ON digests (upto_id DESC) WHERE signature IS NOT NULL;

CREATE FUNCTION digests_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'digests are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER digests_no_update_delete BEFORE UPDATE OR DELETE ON digests
    FOR EACH ROW EXECUTE FUNCTION digests_append_only();
CREATE TRIGGER digests_no_truncate BEFORE TRUNCATE ON digests
    FOR EACH STATEMENT EXECUTE FUNCTION digests_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON digests FROM PUBLIC;
