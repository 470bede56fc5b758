-- bench/naive_message.sql: one inbound text message stored the naive way, for pgbench (run by
-- bench/ingest_vs_pgbench against a database migrated like casetrail's): one transaction per
-- message, one statement per step, each a round trip, and one WAL flush at COMMIT. It is the
-- yardstick casetrail's ingestion is measured against (issue 13): the same tables, indexes
-- (the trigram index on messages.body included), foreign keys and hash chain, without HTTP.
--
-- Variables: -D contacts=N (contacts 0..N-1, as bench/loadgen numbers them), -D run=R (a number
-- unique to the round, so wamids and receipt hashes never collide with an earlier round's) and
-- -D n=0 (each client counts its messages in :n; pgbench keeps a client's variables from one
-- transaction to the next). :client_id is pgbench's own. Variables are cast where a function
-- takes any type, so the script runs in every pgbench query mode: -M simple (the default, and
-- the naive way: every statement parsed and planned again) or -M prepared (as casetrail runs
-- its statements, prepared once per connection).
--
-- What one real message does that this leaves out (see server/domain/ingest.c and the
-- statements `ingest_vs_pgbench --count-statements` lists: 17 for a known contact, 25 for a
-- new one, where this script sends 10 and 11):
-- - the two "is this wamid already stored" reads (the unique index on messages.wamid would
--   refuse a duplicate here), the complaint-rule match, and the receipt's count update (the
--   count goes in with the receipt);
-- - a new ticket's ticket.created event: only message.received is appended;
-- - the contact is upserted (a row version each time) where casetrail inserts a missing one
--   and then locks it, changing the name only when it differs;
-- - the chain is read under the lock the ticket lookup already holds, without the shared
--   advisory lock `casetrail digest` waits on, and the head is written in the same UPDATE as
--   the ticket's activity (casetrail: two UPDATEs); the event reads the receipt's and the
--   message's hashes back by primary key (casetrail has them from RETURNING);
-- - hashes are SHA-256 over a plain concatenation, not the canonical encoding of
--   docs/audit-format.md, and text digests are SHA-256(salt || text), not HMAC-SHA256; the
--   receipt's "signature" is not an HMAC either (computing them is casetrail's CPU, not
--   PostgreSQL's);
-- - the batched NOTIFY of changed tickets that each casetrail instance sends every 100 ms.

\set c random(0, :contacts - 1)
\set n :n + 1
BEGIN;

-- the raw receipt: the webhook's exact bytes (loadgen's payload, same shape and size)
INSERT INTO webhook_receipts (body, body_sha256, body_length, signature_verified, signature,
                              messages)
SELECT b, sha256(b), length(b), true, 'sha256=' || encode(sha256(b), 'hex'), 1
FROM (SELECT convert_to(format('{"object": "whatsapp_business_account", "entry": [{"id": "1", '
    '"changes": [{"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": '
    '{"display_phone_number": "923211234500", "phone_number_id": "117293845601928"}, '
    '"contacts": [{"profile": {"name": "Bench %s"}, "wa_id": "9230%s"}], "messages": [{"from": '
    '"9230%s", "id": "wamid.pgb-%s-%s-%s", "timestamp": "%s", "type": "text", "text": {"body": '
    '"order %s status please"}}]}}]}]}', :c::int, lpad(:c::text, 8, '0'), lpad(:c::text, 8, '0'),
    :run::bigint, :client_id::int, :n::bigint, 1760000000 + :n::bigint, :n::bigint), 'UTF8') AS b)
    AS received
RETURNING id AS receipt_id \gset

-- the contact, created on first sight; its row lock serialises everything about one customer
INSERT INTO contacts (phone_number_id, wa_id, name, name_at)
VALUES ('117293845601928', '9230' || lpad(:c::text, 8, '0'), 'Bench ' || :c,
        to_timestamp(1760000000 + :n))
ON CONFLICT (phone_number_id, wa_id) DO UPDATE SET name = excluded.name, updated_at = now()
RETURNING id AS contact_id \gset

-- the contact's ticket that is not closed, else a new one
SELECT coalesce((SELECT id FROM tickets WHERE contact_id = :contact_id AND status <> 'closed'
                 FOR UPDATE), 0) AS ticket_id \gset
\if :ticket_id = 0
INSERT INTO tickets (contact_id, phone_number_id, created_at, updated_at)
VALUES (:contact_id, '117293845601928', now(), now())
RETURNING id AS ticket_id \gset
\endif

-- the message
INSERT INTO messages (wamid, ticket_id, contact_id, direction, type, body, payload, sent_at,
                      receipt_id, received_at)
VALUES (format('wamid.pgb-%s-%s-%s', :run::bigint, :client_id::int, :n::bigint), :ticket_id,
        :contact_id, 'in', 'text', format('order %s status please', :n::bigint),
        jsonb_build_object('from', '9230' || lpad(:c::text, 8, '0'),
                           'id', format('wamid.pgb-%s-%s-%s', :run::bigint, :client_id::int,
                                        :n::bigint),
                           'timestamp', (1760000000 + :n::bigint)::text, 'type', 'text',
                           'text', jsonb_build_object('body', format('order %s status please',
                                                                     :n::bigint))),
        to_timestamp(1760000000 + :n::bigint), :receipt_id, clock_timestamp())
RETURNING id AS message_id \gset

-- its event: the contact's text salt, then message.received chained to the ticket's head
INSERT INTO text_salts (scope, salt)
VALUES ('contact:' || :contact_id, sha256(convert_to(random()::text, 'UTF8')))
ON CONFLICT (scope) DO NOTHING;

INSERT INTO events (ticket_id, seq, action, actor_type, actor_id, data, digests, occurred_at,
                    recorded_at, prev_hash, hash)
SELECT t.id, t.last_seq + 1, 'message.received', 'customer', m.wa, e.data, e.digests, m.sent,
       m.recorded, coalesce(t.chain_head, decode(repeat('00', 32), 'hex')),
       sha256(coalesce(t.chain_head, decode(repeat('00', 32), 'hex')) ||
              convert_to(concat_ws('|', 'ticket:' || t.id, t.last_seq + 1, 'message.received',
                                   'customer', m.wa, m.sent, m.recorded, e.data, e.digests),
                         'UTF8'))
FROM tickets t,
     text_salts s,
     webhook_receipts r,
     messages g,
     LATERAL (SELECT '9230' || lpad(:c::text, 8, '0') AS wa,
                     to_timestamp(1760000000 + :n::bigint) AS sent,
                     clock_timestamp() AS recorded) m,
     LATERAL (SELECT jsonb_build_object('message_id', g.id, 'type', 'text', 'wamid', g.wamid,
                         'receipt_id', r.id, 'receipt_sha256', encode(r.body_sha256, 'hex'),
                         'payload_sha256', encode(sha256(convert_to(g.payload::text, 'UTF8')),
                                                  'hex')) AS data,
                     jsonb_build_object('actor_name', encode(sha256(s.salt ||
                                            convert_to('Bench ' || :c::int, 'UTF8')), 'hex'),
                                        'body', encode(sha256(s.salt ||
                                            convert_to(g.body, 'UTF8')), 'hex')) AS digests) e
WHERE t.id = :ticket_id AND s.scope = 'contact:' || :contact_id AND r.id = :receipt_id
  AND g.id = :message_id
RETURNING id AS event_id, seq AS event_seq \gset

INSERT INTO event_texts (event_id, field, body, salt_scope)
VALUES (:event_id, 'actor_name', 'Bench ' || :c, 'contact:' || :contact_id),
       (:event_id, 'body', format('order %s status please', :n::bigint), 'contact:' || :contact_id);

UPDATE tickets SET last_seq = :event_seq,
                   chain_head = (SELECT hash FROM events WHERE id = :event_id),
                   updated_at = now(),
                   last_message_at = greatest(last_message_at,
                                              to_timestamp(1760000000 + :n::bigint))
WHERE id = :ticket_id;

COMMIT;
