-- bench/setbased_messages.sql: the same work as bench/naive_message.sql for 16 messages at once,
-- set-based, for pgbench (run by bench/pg_ceiling): one statement receives 16 text messages
-- from 16 different customers (their receipts, messages, message.received events chained to
-- each ticket's head, their texts and the heads' update), so PostgreSQL starts one executor,
-- takes one snapshot and flushes the WAL once for all of them. It measures how fast this
-- cluster stores messages when nothing is paid per message but the rows and their index
-- entries: the ceiling a set-based group commit could approach, beside the naive script's
-- one-message-per-transaction rate (issue 13's yardstick).
--
-- Needs every contact 0..N-1 to have its ticket and text salt (bench/pg_ceiling runs the
-- naive script first, which makes them); a group whose ticket is missing stores fewer rows,
-- and bench/pg_ceiling counts the rows, not the transactions. -D contacts=N (a multiple of 16),
-- -D run=R, -D n=0 as in bench/naive_message.sql.

\set g random(0, :contacts / 16 - 1)
\set n :n + 1
WITH src AS (
  SELECT i, :g::int * 16 + i AS c,
         '9230' || lpad((:g::int * 16 + i)::text, 8, '0') AS wa,
         format('wamid.sb-%s-%s-%s-%s', :run::bigint, :client_id::int, :n::bigint, i) AS wamid,
         format('order %s status please', :n::bigint) AS body,
         to_timestamp(1760000000 + :n::bigint) AS sent
  FROM generate_series(0, 15) i),
srcb AS (
  SELECT s.*, convert_to(format('{"object": "whatsapp_business_account", "entry": [{"id": "1", '
    '"changes": [{"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": '
    '{"display_phone_number": "923211234500", "phone_number_id": "117293845601928"}, '
    '"contacts": [{"profile": {"name": "Bench %s"}, "wa_id": "%s"}], "messages": [{"from": '
    '"%s", "id": "%s", "timestamp": "%s", "type": "text", "text": {"body": '
    '"%s"}}]}}]}]}', s.c, s.wa, s.wa, s.wamid, 1760000000 + :n::bigint, s.body), 'UTF8') AS b
  FROM src s),
rc AS (INSERT INTO webhook_receipts (body, body_sha256, body_length, signature_verified, signature, messages)
       SELECT b, sha256(b), length(b), true, 'sha256=' || encode(sha256(b), 'hex'), 1 FROM srcb
       RETURNING id, body_sha256),
ct AS (SELECT id, wa_id FROM contacts WHERE phone_number_id = '117293845601928'
         AND wa_id IN (SELECT wa FROM src) ORDER BY wa_id FOR UPDATE),
tk AS (SELECT t.id, t.contact_id, t.last_seq, t.chain_head FROM tickets t JOIN ct ON t.contact_id = ct.id
       WHERE t.status <> 'closed' ORDER BY t.id FOR UPDATE OF t),
msg AS (INSERT INTO messages (wamid, ticket_id, contact_id, direction, type, body, payload, sent_at, receipt_id, received_at)
        SELECT s.wamid, tk.id, ct.id, 'in', 'text', s.body,
               jsonb_build_object('from', s.wa, 'id', s.wamid, 'timestamp', extract(epoch from s.sent)::bigint::text,
                                  'type', 'text', 'text', jsonb_build_object('body', s.body)),
               s.sent, rc.id, clock_timestamp()
        FROM srcb s JOIN ct ON ct.wa_id = s.wa JOIN tk ON tk.contact_id = ct.id
             JOIN rc ON rc.body_sha256 = sha256(s.b)
        RETURNING id, wamid, ticket_id, contact_id, payload, body, sent_at, receipt_id),
ev AS (INSERT INTO events (ticket_id, seq, action, actor_type, actor_id, data, digests, occurred_at, recorded_at, prev_hash, hash)
       SELECT tk.id, tk.last_seq + 1, 'message.received', 'customer', s.wa, e.data, e.digests, g.sent_at, clock_timestamp(),
              coalesce(tk.chain_head, decode(repeat('00', 32), 'hex')),
              sha256(coalesce(tk.chain_head, decode(repeat('00', 32), 'hex')) ||
                     convert_to(concat_ws('|', 'ticket:' || tk.id, tk.last_seq + 1, 'message.received', 'customer', s.wa,
                                          g.sent_at, e.data, e.digests), 'UTF8'))
       FROM msg g JOIN tk ON tk.id = g.ticket_id JOIN src s ON s.wamid = g.wamid
            JOIN rc ON rc.id = g.receipt_id
            JOIN text_salts ts ON ts.scope = 'contact:' || g.contact_id,
            LATERAL (SELECT jsonb_build_object('message_id', g.id, 'type', 'text', 'wamid', g.wamid,
                         'receipt_id', rc.id, 'receipt_sha256', encode(rc.body_sha256, 'hex'),
                         'payload_sha256', encode(sha256(convert_to(g.payload::text, 'UTF8')), 'hex')) AS data,
                     jsonb_build_object('actor_name', encode(sha256(ts.salt || convert_to('Bench ' || s.c, 'UTF8')), 'hex'),
                                        'body', encode(sha256(ts.salt || convert_to(g.body, 'UTF8')), 'hex')) AS digests) e
       RETURNING id, ticket_id, seq, hash),
txt AS (INSERT INTO event_texts (event_id, field, body, salt_scope)
        SELECT ev.id, f.field, f.body, 'contact:' || tk.contact_id
        FROM ev JOIN tk ON tk.id = ev.ticket_id JOIN ct ON ct.id = tk.contact_id
             JOIN src s ON s.wa = ct.wa_id
             CROSS JOIN LATERAL (VALUES ('actor_name', 'Bench ' || s.c), ('body', s.body)) f(field, body))
UPDATE tickets t SET last_seq = ev.seq, chain_head = ev.hash, updated_at = now(),
       last_message_at = greatest(t.last_message_at, to_timestamp(1760000000 + :n::bigint))
FROM ev WHERE t.id = ev.ticket_id;
