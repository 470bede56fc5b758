-- docs/least-privilege.sql: a role for `casetrail serve` that cannot rewrite the record.
--
-- Run as the owner of the casetrail database (the role that runs `casetrail migrate`), after
-- migrating, and again after each new migration:
--     psql "$OWNER_DATABASE_URL" -v app_role=casetrail_app -f docs/least-privilege.sql
-- then give the role a password (ALTER ROLE casetrail_app PASSWORD '...') and start
-- `casetrail serve` with DATABASE_URL naming casetrail_app. `serve` finds the schema current
-- and needs no DDL. The role gets no UPDATE, DELETE or TRUNCATE on events: besides the trigger,
-- the privilege system itself refuses a rewrite.

SELECT format('CREATE ROLE %I LOGIN', :'app_role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_role') \gexec

GRANT USAGE ON SCHEMA public TO :"app_role";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_role";

-- the append-only record: insert and read, nothing else
GRANT INSERT ON events, event_texts, text_salts, webhook_receipts, webhook_rejects, access_log,
    digests TO :"app_role";
REVOKE UPDATE, DELETE, TRUNCATE ON events, access_log, digests FROM :"app_role";

-- working state
GRANT INSERT, UPDATE ON users, contacts, tickets, messages, message_statuses, approvals
    TO :"app_role";
GRANT UPDATE (messages, statuses, rejected) ON webhook_receipts TO :"app_role";
GRANT INSERT, DELETE ON complaint_rules TO :"app_role";
GRANT INSERT, UPDATE ON outbox, outbox_pacing, idempotency_keys, media TO :"app_role";
-- viewer sessions; failed sign-ins are forgotten after a day or on success
GRANT INSERT, UPDATE ON sessions TO :"app_role";
GRANT INSERT, DELETE ON sign_in_failures TO :"app_role";
