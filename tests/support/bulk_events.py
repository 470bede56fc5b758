"""bulk_events.py: many ticket events and approvals written straight into a migrated database
with SQL (generate_series), for export tests and bench/export_scale. Seconds for a million rows.

The rows have the shape casetrail writes (tickets of --per-ticket events with actors, names,
reasons and data; approvals requested by agents and decided by a supervisor) but their chains
are not real: hashes are SHA-256 of the event id, so `casetrail verify` would fail on them.
That is fine for what they are for: exports read rows, they do not verify chains.

Usage as a script: python3 tests/support/bulk_events.py DSN EVENTS [PER_TICKET [APPROVALS]]
"""
import subprocess
import sys

# one business number; customers' numbers start 9239 (the tests' own use 92300 and 92349)
PNID = "117293845601928"
AGENTS = 10
# every event carries a reason of about this many characters, so rows are realistically fat:
# an export of N events is then about 420 bytes a row
REASON = ("customer says the parcel never arrived; courier tracking shows it at the hub since "
          "Tuesday, asked the warehouse to rebook delivery for the morning slot")


def sql(events, per_ticket=20, approvals=None):
    """The SQL that adds `events` ticket events in tickets of `per_ticket` (the last ticket may
    be shorter) and `approvals` approvals (default: one per ticket) after whatever is there."""
    tickets = (events + per_ticket - 1) // per_ticket
    if approvals is None:
        approvals = tickets
    return f"""
BEGIN;
CREATE TEMP TABLE bulk_base ON COMMIT DROP AS SELECT
  (SELECT coalesce(max(id), 0) FROM users) AS u0,
  (SELECT coalesce(max(id), 0) FROM contacts) AS c0,
  (SELECT coalesce(max(id), 0) FROM tickets) AS t0,
  (SELECT coalesce(max(id), 0) FROM events) AS e0,
  (SELECT coalesce(max(id), 0) FROM approvals) AS a0;
INSERT INTO text_salts (scope, salt) VALUES ('staff', sha256('bulk staff salt'::bytea))
  ON CONFLICT (scope) DO NOTHING;
-- agents u0+1 .. u0+{AGENTS}, a supervisor u0+{AGENTS + 1}
INSERT INTO users (id, name, role, token_hash, approval_limit_minor)
  SELECT u0 + g, CASE WHEN g <= {AGENTS} THEN 'bulk.agent.' || g ELSE 'bulk.supervisor' END,
         CASE WHEN g <= {AGENTS} THEN 'agent' ELSE 'supervisor' END,
         encode(sha256(('bulk token ' || (u0 + g) || ' ' || random())::bytea), 'hex'),
         CASE WHEN g > {AGENTS} THEN 100000000 END
  FROM bulk_base, generate_series(1, {AGENTS + 1}) g;
INSERT INTO contacts (id, phone_number_id, wa_id, name)
  SELECT c0 + g, '{PNID}', '9239' || lpad((c0 + g)::text, 8, '0'), 'Customer ' || (c0 + g)
  FROM bulk_base, generate_series(1, {tickets}) g;
-- tickets open one after another over a year, so their events interleave in time
INSERT INTO tickets (id, contact_id, phone_number_id, status, created_at, updated_at, last_seq)
  SELECT t0 + g, c0 + g, '{PNID}', 'open', t, t, {per_ticket}
  FROM bulk_base, generate_series(1, {tickets}) g,
       LATERAL (SELECT timestamptz '2025-01-01 00:00:00+00'
                       + (g - 1) * (interval '365 days' / {tickets}) AS t) x;
INSERT INTO events (id, ticket_id, seq, action, actor_type, actor_id, from_value, to_value, data,
                    occurred_at, recorded_at, prev_hash, hash)
  SELECT e0 + i, t0 + k, s,
         CASE WHEN s = 1 THEN 'ticket.created' WHEN s % 5 = 0 THEN 'status.changed'
              WHEN s % 3 = 0 THEN 'note.added' ELSE 'message.received' END,
         CASE WHEN s = 1 OR (s % 5 <> 0 AND s % 3 <> 0) THEN 'customer' ELSE 'agent' END,
         CASE WHEN s = 1 OR (s % 5 <> 0 AND s % 3 <> 0) THEN '9239' || lpad((c0 + k)::text, 8, '0')
              ELSE (u0 + 1 + k % {AGENTS})::text END,
         CASE WHEN s % 5 = 0 THEN 'open' END,
         CASE WHEN s = 1 THEN 'new' WHEN s % 5 = 0 THEN 'pending' END,
         jsonb_build_object('message_id', e0 + i, 'wamid', 'wamid.bulk.' || (e0 + i)),
         t, t + interval '2 seconds',
         sha256(int8send(e0 + i - 1)), sha256(int8send(e0 + i))
  FROM bulk_base, generate_series(1, {events}) i,
       LATERAL (SELECT (i - 1) / {per_ticket} + 1 AS k, (i - 1) % {per_ticket} + 1 AS s) ks,
       LATERAL (SELECT timestamptz '2025-01-01 00:00:00+00'
                       + (k - 1) * (interval '365 days' / {tickets})
                       + s * interval '3 minutes' AS t) x;
INSERT INTO event_texts (event_id, field, body, salt_scope)
  SELECT e.id, 'actor_name', CASE WHEN e.actor_type = 'agent' THEN u.name ELSE c.name END, 'staff'
  FROM bulk_base b JOIN events e ON e.id > b.e0
  LEFT JOIN users u ON e.actor_type = 'agent' AND u.id = e.actor_id::bigint
  LEFT JOIN contacts c ON c.id = b.c0 + (e.ticket_id - b.t0);
INSERT INTO event_texts (event_id, field, body, salt_scope)
  SELECT e.id, 'reason', '{REASON} (' || e.id || ')', 'staff'
  FROM bulk_base b JOIN events e ON e.id > b.e0;
INSERT INTO approvals (id, ticket_id, kind, amount_minor, currency, status, requested_by,
                       requested_at, reason, decided_by, decided_at, decision_reason)
  SELECT a0 + g, t0 + 1 + (g - 1) % {tickets}, CASE WHEN g % 2 = 0 THEN 'refund' ELSE 'credit' END,
         1000 + g, 'USD', CASE WHEN g % 4 = 0 THEN 'pending' WHEN g % 4 = 1 THEN 'denied' ELSE 'approved' END,
         u0 + 1 + g % {AGENTS}, t, 'Parcel lost by courier (' || g || ')',
         CASE WHEN g % 4 <> 0 THEN u0 + {AGENTS + 1} END,
         CASE WHEN g % 4 <> 0 THEN t + interval '1 hour' END,
         CASE WHEN g % 4 <> 0 THEN 'Checked with finance' END
  FROM bulk_base, generate_series(1, {approvals}) g,
       LATERAL (SELECT timestamptz '2025-01-01 00:00:00+00'
                       + (g - 1) * (interval '365 days' / {max(approvals, 1)}) AS t) x;
SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT coalesce(max(id), 1) FROM users));
SELECT setval(pg_get_serial_sequence('contacts', 'id'), (SELECT coalesce(max(id), 1) FROM contacts));
SELECT setval(pg_get_serial_sequence('tickets', 'id'), (SELECT coalesce(max(id), 1) FROM tickets));
SELECT setval(pg_get_serial_sequence('events', 'id'), (SELECT coalesce(max(id), 1) FROM events));
SELECT setval(pg_get_serial_sequence('approvals', 'id'), (SELECT coalesce(max(id), 1) FROM approvals));
COMMIT;
ANALYZE users, contacts, tickets, events, event_texts, approvals;
"""


def load(dsn, events, per_ticket=20, approvals=None):
    """Runs sql() through psql against dsn (a conninfo or URI; None: PG* variables)."""
    args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"] + ([dsn] if dsn else [])
    out = subprocess.run(args, input=sql(events, per_ticket, approvals), capture_output=True,
                         text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError("bulk load failed: " + out.stderr.strip())


if __name__ == "__main__":
    a = sys.argv[1:]
    load(a[0] or None, int(a[1]), int(a[2]) if len(a) > 2 else 20,
         int(a[3]) if len(a) > 3 else None)
