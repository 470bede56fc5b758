"""The audit record (issue 5): hash chains, text digests, `GET /api/tickets/{id}/verify`,
`casetrail verify [--digest D]` and `casetrail digest` (plain and Ed25519-signed).

It guards that untouched chains verify with exact counts and heads (recomputed here from the
documented encoding, independently of the C code); that a changed event field, a changed or
removed free text, a changed message body, a removed event or a removed text row is reported at
exactly the seq where it happened; that a digest taken earlier catches what the chain alone
cannot (a deleted tail with a rewound head, a whole chain rewritten with fresh hashes) while
accepting events appended after it; that signatures are checked; that concurrent appends keep
seqs gapless; and that the database refuses UPDATE, DELETE and TRUNCATE on events.

Tampering goes around the append-only trigger as superuser, inside one transaction per change
(see `tamper`), and every tamper in a shared database is undone in a `finally`.

When it fails, look at server/audit/audit.c (encoding, ct_audit_verify_chain, digest and signature),
server/store/store_audit.c (what a chain load reads: events, event_texts, messages.body, the
head in tickets), server/store/store_events.c (appends and the digest lock), server/cli/cli.c
(verify/digest output) and server/http/api_tickets.c (the verify endpoint); the server log path is in
the assertion when a server misbehaves.
"""
import concurrent.futures
import hashlib
import hmac
import json
import re
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import harness  # noqa: E402
from harness import ServerTest, add_user, cli, post_webhook, text_payload  # noqa: E402

# seqs of the standard ticket built by AuditTest.workflow
SEQ_CREATED, SEQ_MESSAGE, SEQ_ASSIGN, SEQ_OPEN, SEQ_PENDING, SEQ_NOTE, SEQ_ESCALATE, \
    SEQ_APPROVAL_REQ, SEQ_APPROVAL_DEC = range(1, 10)
WORKFLOW_ACTIONS = ["ticket.created", "message.received", "assignment.changed", "status.changed",
                    "status.changed", "note.added", "escalation.raised", "approval.requested",
                    "approval.decided"]

US = "(extract(epoch FROM {0}) * 1000000)::bigint"


# ---- an independent implementation of the documented hash chain (README "The audit record")

def _field(key, value):
    if value is None:
        return key.encode() + b":-\n"
    v = value.encode("utf-8")
    return key.encode() + b":" + str(len(v)).encode() + b":" + v + b"\n"


def canonical_json(text):
    """Stored jsonb text -> the canonical form that was hashed (sorted keys, no spaces)."""
    if text is None:
        return None
    return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(prev_hex, chain, e):
    canon = (b"casetrail-event-v1\n" + _field("chain", chain) + _field("seq", str(e["seq"]))
             + _field("action", e["action"]) + _field("actor_type", e["actor_type"])
             + _field("actor_id", e["actor_id"]) + _field("from", e["from_value"])
             + _field("to", e["to_value"]) + _field("occurred_us", str(e["occurred_us"]))
             + _field("recorded_us", str(e["recorded_us"])) + _field("data", canonical_json(e["data"]))
             + _field("digests", canonical_json(e["digests"])))
    return hashlib.sha256(bytes.fromhex(prev_hex) + canon).hexdigest()


def digest_root_v1(heads):
    """heads: [(chain, seq, hash_hex)] -> the root of a version 1 digest."""
    h = hashlib.sha256(b"casetrail-root-v1\n")
    for chain, seq, hx in sorted(heads, key=lambda x: x[0].encode()):
        h.update(f"{chain} {seq} {hx}\n".encode())
    return h.hexdigest()


def merkle_root(heads):
    """heads: [(chain, seq, hash_hex)] -> the version 2 root `casetrail digest` publishes:
    RFC 9162's Merkle tree hash, written the recursive way the RFC states it."""
    leaves = [hashlib.sha256(b"\x00" + f"{c} {s} {h}".encode()).digest()
              for c, s, h in sorted(heads, key=lambda x: x[0].encode())]

    def mth(d):
        if len(d) == 0:
            return hashlib.sha256(b"").digest()
        if len(d) == 1:
            return d[0]
        k = 1
        while k * 2 < len(d):
            k *= 2
        return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()
    return mth(leaves).hex()


def flip(hexstr, i):
    """hexstr with character i replaced by a different hex digit."""
    c = "1" if hexstr[i] == "0" else "0"
    return hexstr[:i] + c + hexstr[i + 1:]


class AuditTest(ServerTest):
    """Users sup (supervisor, limit 100000), agt (agent), qa (qa); helpers for tickets, actions,
    tampering and both verifiers."""

    _wamid = [0]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sup = add_user(cls.dsn, "sup", "supervisor", limit=100000)
        cls.agt = add_user(cls.dsn, "agt", "agent")
        cls.qa = add_user(cls.dsn, "qa", "qa")

    # -- building tickets

    def new_ticket(self, wa_id, body="Hello, where is my order 1234?"):
        self._wamid[0] += 1
        r = post_webhook(self.srv, text_payload(f"wamid.audit.{os.getpid()}.{self._wamid[0]}", wa_id,
                                                1760431200 + self._wamid[0], body))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["messages_new"], 1, r)
        tid = self.one("SELECT t.id FROM tickets t JOIN contacts c ON c.id = t.contact_id"
                       " WHERE c.wa_id = :'w' ORDER BY t.id DESC LIMIT 1", w=wa_id)
        self.assertIsNotNone(tid)
        return int(tid)

    def act(self, path, body, token, status=200):
        r = self.srv.post(path, body, token=token)
        self.assertEqual(r.status, status, (path, body, r, self.srv.log_path))
        return r.json()

    def workflow(self, wa_id):
        """A ticket with the nine events SEQ_CREATED..SEQ_APPROVAL_DEC; returns its id."""
        tid = self.new_ticket(wa_id)
        t = f"/api/tickets/{tid}"
        self.act(t + "/assign", {"assignee": "agt"}, self.sup)             # 3 assignment, 4 open
        self.act(t + "/status", {"status": "pending", "reason": "awaiting_courier"}, self.agt)  # 5
        self.act(t + "/notes", {"body": "called the courier, parcel at hub"}, self.agt)  # 6
        self.act(t + "/escalate", {"level": 1, "reason": "late twice already"}, self.agt)  # 7
        ap = self.act(t + "/approvals", {"kind": "refund", "amount_minor": 5000,
                                         "reason": "goodwill for the delay"}, self.agt, status=201)  # 8
        self.act(f"/api/approvals/{ap['id']}/decision",
                 {"decision": "approved", "reason": "within policy"}, self.sup)  # 9
        self.assertEqual(self.actions(tid), WORKFLOW_ACTIONS)
        return tid

    # -- reading the record

    def actions(self, tid):
        return [r[0] for r in self.q("SELECT action FROM events WHERE ticket_id = :'t' ORDER BY seq", t=tid)]

    def events(self, tid):
        """Every event of the ticket as a dict, in seq order (NULLs kept as None)."""
        rows = self.one(
            "SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'seq', seq, 'action', action,"
            " 'actor_type', actor_type, 'actor_id', actor_id, 'from_value', from_value,"
            " 'to_value', to_value, 'data', data::text, 'digests', digests::text,"
            f" 'occurred_us', {US.format('occurred_at')}, 'recorded_us', {US.format('recorded_at')},"
            " 'prev', encode(prev_hash, 'hex'), 'hash', encode(hash, 'hex')) ORDER BY seq), '[]')"
            " FROM events WHERE ticket_id = :'t'", t=tid)
        return json.loads(rows)

    def head(self, tid):
        return self.q("SELECT last_seq, encode(chain_head, 'hex') FROM tickets WHERE id = :'t'", t=tid)[0]

    def event_id(self, tid, seq):
        return int(self.one("SELECT id FROM events WHERE ticket_id = :'t' AND seq = :'s'", t=tid, s=seq))

    # -- changing it behind the application's back

    def tamper(self, sql, **params):
        """Runs sql with the append-only trigger disabled, all in one transaction: on error the
        trigger stays enabled."""
        self.q("BEGIN;\nALTER TABLE events DISABLE TRIGGER events_no_update_delete;\n" + sql +
               ";\nALTER TABLE events ENABLE TRIGGER events_no_update_delete;\nCOMMIT;", **params)

    # -- the two verifiers

    def api_verify(self, tid, token=None):
        r = self.srv.get(f"/api/tickets/{tid}/verify", token=token or self.qa)
        self.assertEqual(r.status, 200, (r, self.srv.log_path))
        body = r.json()
        # which signed digest covers the ticket (test_evidence checks it): not the chain's check
        self.assertIn("digest", body)
        body.pop("digest")
        return body

    def cli_verify(self, *args, env=None):
        """(exit code, FAIL lines, summary dict, the whole output)"""
        r = cli(self.dsn, "verify", *args, env=env)
        lines = r.stdout.splitlines()
        self.assertTrue(lines, (r.returncode, r.stdout, r.stderr))
        self.assertNotIn("AddressSanitizer", r.stderr)
        summary = json.loads(lines[-1])
        fails = [line for line in lines if line.startswith("FAIL")]
        return r.returncode, fails, summary, r.stdout + r.stderr

    def digest(self, env=None):
        r = cli(self.dsn, "digest", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 1, r.stdout)
        return lines[0]

    def assert_intact(self, tid, nevents=None):
        v = self.api_verify(tid)
        evs = self.events(tid)
        self.assertEqual(v, {"ok": True, "events": len(evs), "head": evs[-1]["hash"], "redacted": 0})
        if nevents is not None:
            self.assertEqual(len(evs), nevents)
        code, fails, summary, out = self.cli_verify()
        self.assertEqual((code, fails, summary["ok"], summary["failures"]), (0, [], True, 0), out)

    def assert_broken_at(self, tid, seq, reason_re):
        """API and CLI both report this ticket, and only it, broken at seq."""
        v = self.api_verify(tid)
        self.assertEqual((v["ok"], v.get("first_bad_seq")), (False, seq), v)
        self.assertRegex(v["reason"], reason_re)
        self.assertIn(set(v), ({"ok", "first_bad_seq", "reason"},
                               {"ok", "first_bad_seq", "reason", "table", "row", "field"}))
        code, fails, summary, out = self.cli_verify()
        self.assertEqual(code, 1, out)
        self.assertEqual(len(fails), 1, out)
        self.assertTrue(fails[0].startswith(f"FAIL ticket {tid} seq {seq}: "), out)
        self.assertRegex(fails[0], reason_re)
        self.assertEqual((summary["ok"], summary["failures"]), (False, 1), out)


class IntactRecord(AuditTest):
    def test_untouched_chain_verifies_with_exact_counts_and_head(self):
        tid = self.workflow("923110000001")
        evs = self.events(tid)
        self.assertEqual([e["seq"] for e in evs], list(range(1, 10)))
        # the stored hashes are the documented function of the stored fields, linked by prev_hash
        prev = "00" * 32
        for e in evs:
            self.assertEqual(e["prev"], prev, e)
            self.assertEqual(e["hash"], event_hash(prev, f"ticket:{tid}", e), e)
            prev = e["hash"]
        self.assertEqual(self.head(tid), ["9", prev])
        # every text digest is the HMAC of the text under its scope's salt
        texts = self.q("SELECT e.seq, t.field, t.body, encode(s.salt, 'hex'), e.digests->>t.field"
                       " FROM event_texts t JOIN events e ON e.id = t.event_id"
                       " JOIN text_salts s ON s.scope = t.salt_scope WHERE e.ticket_id = :'t'", t=tid)
        self.assertGreaterEqual(len(texts), 14)
        for seq, field, body, salt, want in texts:
            self.assertEqual(hmac.new(bytes.fromhex(salt), body.encode(), hashlib.sha256).hexdigest(),
                             want, (seq, field))
        # API: any role with a token
        for token in (self.qa, self.agt, self.sup):
            self.assertEqual(self.api_verify(tid, token),
                             {"ok": True, "events": 9, "head": prev, "redacted": 0})
        self.assertEqual(self.srv.get(f"/api/tickets/{tid}/verify").status, 401)
        r = self.srv.get("/api/tickets/999999/verify", token=self.qa)
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json()["error"]["code"], "ticket_not_found")
        # CLI: every chain (this ticket and the users') verifies
        code, fails, summary, out = self.cli_verify()
        nchains = int(self.one("SELECT count(DISTINCT coalesce('t' || ticket_id, 'u' || user_id)) FROM events"))
        self.assertEqual((code, fails), (0, []), out)
        self.assertEqual(summary, {"ok": True, "chains": nchains, "failures": 0, "redacted": 0,
                                   "events": int(self.one("SELECT count(*) FROM events"))})
        self.assertGreaterEqual(nchains, 4)  # the ticket and three users

    def test_concurrent_notes_keep_the_chain_gapless(self):
        tid = self.new_ticket("923110000002")
        before = len(self.events(tid))
        bodies = [f"parallel note {i}" for i in range(12)]

        def note(body):
            return self.srv.post(f"/api/tickets/{tid}/notes", {"body": body}, token=self.sup)

        def take_digest(_):
            return cli(self.dsn, "digest")

        # notes race each other, and digests race the notes (the digest lock must make
        # "every event with id <= upto_id" a stable set even while appends are in flight)
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            notes = [pool.submit(note, b) for b in bodies]
            digs = [pool.submit(take_digest, i) for i in range(3)]
            results = [f.result() for f in notes]
            digests = [f.result() for f in digs]
        self.assertEqual([r.status for r in results], [200] * len(bodies), results)
        evs = self.events(tid)
        self.assertEqual([e["seq"] for e in evs], list(range(1, before + len(bodies) + 1)))
        self.assertEqual(sorted(self.q("SELECT t.body FROM event_texts t JOIN events e ON e.id = t.event_id"
                                       " WHERE e.ticket_id = :'t' AND t.field = 'note'", t=tid)),
                         sorted([b] for b in bodies))
        self.assertEqual(self.head(tid), [str(len(evs)), evs[-1]["hash"]])
        self.assert_intact(tid, before + len(bodies))
        for d in digests:
            self.assertEqual(d.returncode, 0, d.stderr)
            code, fails, summary, out = self.cli_verify("--digest", d.stdout.strip())
            self.assertEqual((code, fails, summary["failures"]), (0, [], 0), out)

    def test_events_are_append_only_even_for_the_superuser(self):
        tid = self.new_ticket("923110000003")
        before = self.events(tid)
        for sql in [f"UPDATE events SET to_value = 'closed' WHERE ticket_id = {tid}",
                    f"DELETE FROM events WHERE ticket_id = {tid} AND seq = 2",
                    "TRUNCATE events CASCADE"]:
            with self.assertRaises(AssertionError) as ctx:
                self.q(sql)
            self.assertIn("append-only", str(ctx.exception), sql)
        self.assertEqual(self.events(tid), before)
        self.assertEqual(self.q("SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'events'::regclass"
                                " AND NOT tgisinternal ORDER BY 1"),
                         [["events_no_truncate", "O"], ["events_no_update_delete", "O"]])


class Tampering(AuditTest):
    """One shared ticket; each case changes one thing, checks both verifiers name the seq, then
    puts it back and checks the chain verifies again."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tid = None

    def setUp(self):
        if Tampering.tid is None:
            Tampering.tid = self.workflow("923220000001")
        self.assert_intact(self.tid, 9)

    def check_event_change(self, seq, change, undo, reason_re=r"does not match its hash"):
        eid = self.event_id(self.tid, seq)
        self.tamper(f"UPDATE events SET {change} WHERE id = {eid}")
        try:
            self.assert_broken_at(self.tid, seq, reason_re)
        finally:
            self.tamper(f"UPDATE events SET {undo} WHERE id = {eid}")
        self.assert_intact(self.tid, 9)

    def test_changed_event_fields_are_found_at_their_seq(self):
        cases = [
            (SEQ_ASSIGN, "to_value = '1'", "to_value = :orig", "to_value"),
            (SEQ_ASSIGN, "action = 'note.added'", "action = 'assignment.changed'", None),
            (SEQ_ASSIGN, "occurred_at = occurred_at + interval '1 microsecond'",
             "occurred_at = occurred_at - interval '1 microsecond'", None),
            (SEQ_ASSIGN, "recorded_at = recorded_at - interval '1 second'",
             "recorded_at = recorded_at + interval '1 second'", None),
            (SEQ_ASSIGN, "actor_id = '3'", "actor_id = :orig", "actor_id"),
            (SEQ_PENDING, "from_value = 'new'", "from_value = 'open'", None),
            (SEQ_ESCALATE, "to_value = '3'", "to_value = '1'", None),
            (SEQ_APPROVAL_REQ, "data = jsonb_set(data, '{amount_minor}', '500000')",
             "data = jsonb_set(data, '{amount_minor}', '5000')", None),
            (SEQ_CREATED, "actor_type = 'system'", "actor_type = 'customer'", None),
            (SEQ_APPROVAL_DEC, "to_value = 'denied'", "to_value = 'approved'", None),
        ]
        for seq, change, undo, col in cases:
            with self.subTest(seq=seq, change=change):
                if col is not None:
                    orig = self.one(f"SELECT {col} FROM events WHERE ticket_id = :'t' AND seq = :'s'",
                                    t=self.tid, s=seq)
                    undo = undo.replace(":orig", "'" + orig + "'")
                self.check_event_change(seq, change, undo)

    def test_changed_links_and_hashes_are_found_at_their_seq(self):
        ev = {e["seq"]: e for e in self.events(self.tid)}
        h3, p5 = ev[SEQ_ASSIGN]["hash"], ev[SEQ_PENDING]["prev"]
        # a hash overwritten: its own content no longer matches it
        self.check_event_change(SEQ_ASSIGN, f"hash = decode('{flip(h3, 10)}', 'hex')",
                                f"hash = decode('{h3}', 'hex')")
        # a prev_hash overwritten: the link is broken at that event
        self.check_event_change(SEQ_PENDING, f"prev_hash = decode('{flip(p5, 0)}', 'hex')",
                                f"prev_hash = decode('{p5}', 'hex')", r"prev_hash")
        # a seq moved away: the gap is reported at the missing seq
        self.check_event_change(SEQ_NOTE, "seq = 1000", f"seq = {SEQ_NOTE}", r"seq 6 is missing")
        # the stored head overwritten: reported at the last event
        self.q(f"UPDATE tickets SET chain_head = decode('{flip(ev[9]['hash'], 5)}', 'hex') WHERE id = {self.tid}")
        try:
            self.assert_broken_at(self.tid, 9, r"head")
        finally:
            self.q(f"UPDATE tickets SET chain_head = decode('{ev[9]['hash']}', 'hex') WHERE id = {self.tid}")

    def check_text_change(self, seq, sql, undo, reason_re, **params):
        self.q(sql, **params)
        try:
            self.assert_broken_at(self.tid, seq, reason_re)
        finally:
            self.q(undo, **params)
        self.assert_intact(self.tid, 9)

    def test_changed_free_texts_are_found_at_their_seq(self):
        def text_sql(seq, field, body):
            return (f"UPDATE event_texts SET body = {body} WHERE field = '{field}' AND event_id ="
                    f" {self.event_id(self.tid, seq)}")
        cases = [
            (SEQ_PENDING, "reason", "awaiting_courier", "'awaiting_customer'"),
            (SEQ_NOTE, "note", "called the courier, parcel at hub", "'called the courier, parcel at hub.'"),
            (SEQ_ESCALATE, "reason", "late twice already", "'late twice already '"),
            (SEQ_APPROVAL_REQ, "reason", "goodwill for the delay", "'a different reason'"),
            (SEQ_APPROVAL_DEC, "reason", "within policy", "''"),
            (SEQ_ASSIGN, "actor_name", "sup", "'agt'"),
            (SEQ_CREATED, "actor_name", "Test Customer", "'Someone Else'"),
            (SEQ_MESSAGE, "body", "Hello, where is my order 1234?", "'Hello, where is my order 1235?'"),
        ]
        for seq, field, orig, new in cases:
            with self.subTest(seq=seq, field=field):
                self.check_text_change(seq, text_sql(seq, field, new), text_sql(seq, field, ":'orig'"),
                                       rf'"{field}" was changed', orig=orig)

    def test_changed_message_body_is_found_at_the_message_event(self):
        mid = self.one("SELECT data->>'message_id' FROM events WHERE ticket_id = :'t' AND seq = :'s'",
                       t=self.tid, s=SEQ_MESSAGE)
        orig = self.one("SELECT body FROM messages WHERE id = :'m'", m=mid)
        self.assertEqual(orig, "Hello, where is my order 1234?")
        self.check_text_change(SEQ_MESSAGE, "UPDATE messages SET body = 'Hello, order 1234 arrived, thanks'"
                               " WHERE id = :'m'", "UPDATE messages SET body = :'orig' WHERE id = :'m'",
                               r'"body" was changed', m=mid, orig=orig)

    def test_removed_text_row_is_found_at_its_seq(self):
        eid = self.event_id(self.tid, SEQ_NOTE)
        row = self.q("SELECT body, salt_scope FROM event_texts WHERE event_id = :'e' AND field = 'note'", e=eid)
        self.assertEqual(row, [["called the courier, parcel at hub", "staff"]])
        self.check_text_change(SEQ_NOTE, "DELETE FROM event_texts WHERE event_id = :'e' AND field = 'note'",
                               "INSERT INTO event_texts (event_id, field, body, salt_scope)"
                               " VALUES (:'e', 'note', :'b', 'staff')", r'"note" was removed',
                               e=eid, b=row[0][0])

    def test_changed_salt_is_found_at_the_first_text_it_keyed(self):
        scope = self.one("SELECT salt_scope FROM event_texts WHERE event_id = :'e' AND field = 'actor_name'",
                         e=self.event_id(self.tid, SEQ_CREATED))
        self.assertRegex(scope, r"^contact:\d+$")
        salt = self.one("SELECT encode(salt, 'hex') FROM text_salts WHERE scope = :'s'", s=scope)
        self.check_text_change(SEQ_CREATED, "UPDATE text_salts SET salt = decode(:'x', 'hex') WHERE scope = :'s'",
                               "UPDATE text_salts SET salt = decode(:'orig', 'hex') WHERE scope = :'s'",
                               r'"actor_name" was changed', s=scope, x=flip(salt, 0), orig=salt)

    def test_emptied_text_is_a_break_without_a_recorded_erasure(self):
        # issue 9 item 5: a missing text is "redacted" only when an erasure event says so
        eid = self.event_id(self.tid, SEQ_NOTE)
        self.q("UPDATE event_texts SET body = NULL WHERE event_id = :'e' AND field = 'note'", e=eid)
        try:
            self.assert_broken_at(self.tid, SEQ_NOTE, r'"note" was emptied, and the chain records no')
        finally:
            self.q("UPDATE event_texts SET body = 'called the courier, parcel at hub'"
                   " WHERE event_id = :'e' AND field = 'note'", e=eid)
        self.assert_intact(self.tid, 9)

    def test_changed_approval_reasons_are_detected(self):
        # approvals.reason and decision_reason are shown by GET /api/approvals, and migration 0003
        # says their digests are in the approval.requested / approval.decided events: a changed
        # copy that staff see must not pass verify silently.
        aid = self.one("SELECT data->>'approval_id' FROM events WHERE ticket_id = :'t' AND seq = :'s'",
                       t=self.tid, s=SEQ_APPROVAL_REQ)
        for col, seq, orig in [("reason", SEQ_APPROVAL_REQ, "goodwill for the delay"),
                               ("decision_reason", SEQ_APPROVAL_DEC, "within policy")]:
            with self.subTest(column=col):
                self.assertEqual(self.one(f"SELECT {col} FROM approvals WHERE id = :'a'", a=aid), orig)
                self.q(f"UPDATE approvals SET {col} = 'customer threatened us' WHERE id = :'a'", a=aid)
                try:
                    shown = [a[col] for a in self.srv.get("/api/approvals", token=self.qa).json()["approvals"]
                             if str(a["id"]) == aid]
                    if shown == ["customer threatened us"]:  # the changed copy is what staff see
                        v = self.api_verify(self.tid)
                        self.assertEqual((v["ok"], v.get("first_bad_seq")), (False, seq), v)
                finally:
                    self.q(f"UPDATE approvals SET {col} = :'o' WHERE id = :'a'", a=aid, o=orig)

    def test_event_added_behind_the_head_is_found_at_its_seq(self):
        # an INSERT is not stopped by the trigger: a well-formed, correctly linked event 10 that
        # the ticket's head does not know about
        evs = self.events(self.tid)
        fake = dict(evs[SEQ_NOTE - 1], seq=10, digests=None, recorded_us=evs[-1]["recorded_us"] + 1,
                    occurred_us=evs[-1]["recorded_us"] + 1)
        h = event_hash(evs[-1]["hash"], f"ticket:{self.tid}", fake)
        self.q("INSERT INTO events (ticket_id, seq, action, actor_type, actor_id, occurred_at, recorded_at,"
               " prev_hash, hash) VALUES (:'t', 10, :'a', :'at', :'ai',"
               " timestamptz 'epoch' + :'o' * interval '1 microsecond',"
               " timestamptz 'epoch' + :'o' * interval '1 microsecond', decode(:'p', 'hex'), decode(:'h', 'hex'))",
               t=self.tid, a=fake["action"], at=fake["actor_type"], ai=fake["actor_id"],
               o=fake["occurred_us"], p=evs[-1]["hash"], h=h)
        try:
            stored = self.events(self.tid)[-1]
            self.assertEqual((stored["seq"], stored["prev"], stored["hash"]), (10, evs[-1]["hash"], h))
            self.assertEqual(event_hash(evs[-1]["hash"], f"ticket:{self.tid}", stored), h)  # well-formed
            # the first event the head does not cover is 10 (there is no event 11)
            self.assert_broken_at(self.tid, 10, r".")
        finally:
            self.tamper(f"DELETE FROM events WHERE ticket_id = {self.tid} AND seq = 10")
        self.assert_intact(self.tid, 9)


class SuperuserEdits(AuditTest):
    """Issue 9 item 5: ten quiet edits a database superuser can make to what people see, each
    of which used to pass verify. Each must now be caught by both verifiers naming the table,
    row and field (or the text), and verify must pass again after the undo."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tid = None

    def setUp(self):
        if SuperuserEdits.tid is None:
            SuperuserEdits.tid = self.workflow("923440000001")
        self.assert_intact(self.tid, 9)

    def edit_and_undo(self, edit, undo, seq, reason_re, table=None, field=None, chain=None):
        self.q(edit)
        try:
            if chain is None:
                v = self.api_verify(self.tid)
                self.assertEqual((v["ok"], v["first_bad_seq"]), (False, seq), v)
                self.assertRegex(v["reason"], reason_re)
                if table is not None:
                    self.assertEqual((v.get("table"), v.get("field")), (table, field), v)
                self.assert_broken_at(self.tid, seq, reason_re)
            else:
                code, fails, summary, out = self.cli_verify()
                self.assertEqual(code, 1, out)
                self.assertTrue(any(f.startswith(chain) and re.search(reason_re, f)
                                    for f in fails), out)
        finally:
            self.q(undo)
        self.assert_intact(self.tid, 9)

    def ids(self):
        t = self.tid
        return {
            "m": self.one(f"SELECT id FROM messages WHERE ticket_id = {t}"),
            "r": self.one(f"SELECT receipt_id FROM messages WHERE ticket_id = {t}"),
            "a": self.one(f"SELECT id FROM approvals WHERE ticket_id = {t}"),
        }

    def test_receipt_body_rewritten_with_its_hash(self):
        r = self.ids()["r"]
        orig = self.one(f"SELECT encode(body, 'hex') FROM webhook_receipts WHERE id = {r}")
        forged = "replace(convert_from(body, 'UTF8'), 'where is my order', 'cancel my order')"
        self.edit_and_undo(
            f"UPDATE webhook_receipts SET body = convert_to({forged}, 'UTF8'),"
            f" body_sha256 = sha256(convert_to({forged}, 'UTF8')) WHERE id = {r}",
            f"UPDATE webhook_receipts SET body = decode('{orig}', 'hex'),"
            f" body_sha256 = sha256(decode('{orig}', 'hex')) WHERE id = {r}",
            SEQ_MESSAGE, r"webhook_receipts row \d+ field body_sha256 is", "webhook_receipts",
            "body_sha256")

    def test_message_payload_edited(self):
        m = self.ids()["m"]
        orig = self.one(f"SELECT payload::text FROM messages WHERE id = {m}")
        self.edit_and_undo(
            f"UPDATE messages SET payload = jsonb_set(payload, '{{text,body}}', '\"all good\"')"
            f" WHERE id = {m}",
            f"UPDATE messages SET payload = $${orig}$$::jsonb WHERE id = {m}",
            SEQ_MESSAGE, "field payload_sha256", "messages", "payload_sha256")

    def test_message_moved_to_another_ticket(self):
        m = self.ids()["m"]
        other = self.new_ticket("923440000002")
        self.edit_and_undo(f"UPDATE messages SET ticket_id = {other} WHERE id = {m}",
                           f"UPDATE messages SET ticket_id = {self.tid} WHERE id = {m}",
                           SEQ_MESSAGE, f"field ticket_id is {other}", None, None,
                           chain=f"FAIL ticket {self.tid} seq {SEQ_MESSAGE}")
        v = self.api_verify(other)
        self.assertTrue(v["ok"], v)

    def test_approval_amount_multiplied(self):
        a = self.ids()["a"]
        self.edit_and_undo(f"UPDATE approvals SET amount_minor = amount_minor * 100 WHERE id = {a}",
                           f"UPDATE approvals SET amount_minor = amount_minor / 100 WHERE id = {a}",
                           SEQ_APPROVAL_REQ, "field amount_minor is 500000 but the chain .* says 5000",
                           "approvals", "amount_minor")

    def test_approval_flipped_to_denied(self):
        a = self.ids()["a"]
        self.edit_and_undo(f"UPDATE approvals SET status = 'denied' WHERE id = {a}",
                           f"UPDATE approvals SET status = 'approved' WHERE id = {a}",
                           SEQ_APPROVAL_DEC, "field status is denied but the chain .* says approved",
                           "approvals", "status")

    def test_ticket_status_and_priority_changed(self):
        t = self.tid
        self.edit_and_undo(f"UPDATE tickets SET status = 'closed' WHERE id = {t}",
                           f"UPDATE tickets SET status = 'pending' WHERE id = {t}",
                           SEQ_PENDING, "field status is closed but the chain .* says pending",
                           "tickets", "status")
        self.edit_and_undo(f"UPDATE tickets SET priority = 'urgent' WHERE id = {t}",
                           f"UPDATE tickets SET priority = 'normal' WHERE id = {t}",
                           SEQ_CREATED, "field priority is urgent", "tickets", "priority")

    def test_agent_made_admin_with_a_large_limit(self):
        uid = self.one("SELECT id FROM users WHERE name = 'agt'")
        self.edit_and_undo(
            f"UPDATE users SET role = 'admin', approval_limit_minor = 99999999 WHERE id = {uid}",
            f"UPDATE users SET role = 'agent', approval_limit_minor = NULL WHERE id = {uid}",
            0, "users row \\d+ field role is admin but the chain .* says agent",
            chain=f"FAIL user {uid} seq 1")

    def test_staff_salt_destroyed(self):
        salt = self.one("SELECT encode(salt, 'hex') FROM text_salts WHERE scope = 'staff'")
        # a superuser turns off the foreign-key triggers to get past event_texts' reference
        self.edit_and_undo("SET session_replication_role = replica;"
                           " DELETE FROM text_salts WHERE scope = 'staff'",
                           f"INSERT INTO text_salts (scope, salt) VALUES ('staff',"
                           f" decode('{salt}', 'hex'))",
                           SEQ_ASSIGN, "lost its salt, and the chain records no erasure",
                           chain=f"FAIL ticket {self.tid} seq {SEQ_ASSIGN}")

    def test_note_text_nulled(self):
        eid = self.event_id(self.tid, SEQ_NOTE)
        self.edit_and_undo(f"UPDATE event_texts SET body = NULL WHERE event_id = {eid}"
                           " AND field = 'note'",
                           "UPDATE event_texts SET body = 'called the courier, parcel at hub'"
                           f" WHERE event_id = {eid} AND field = 'note'",
                           SEQ_NOTE, '"note" was emptied')

    def test_message_row_deleted_event_kept(self):
        m = self.ids()["m"]
        saved = self.one(f"SELECT row_to_json(m)::text FROM messages m WHERE id = {m}")
        self.edit_and_undo(f"DELETE FROM messages WHERE id = {m}",
                           "INSERT INTO messages SELECT * FROM json_populate_record(NULL::messages,"
                           f" $${saved}$$::json)",
                           SEQ_MESSAGE, "(messages row \\d+, recorded by event seq 2, no longer"
                           "|text \"body\" was removed)")


class VerifyLoad(AuditTest):
    """Issue 9 item 5: verify must not starve the pool. Forty verifies of a 30,000-event ticket
    at once made a webhook wait 10 s; now only CASETRAIL_VERIFY_CONCURRENCY run at once and the
    rest are 503 verify_busy with Retry-After, while webhooks go on."""

    server_env = {"CASETRAIL_VERIFY_CONCURRENCY": "1"}

    def test_a_second_verify_is_turned_away_while_one_runs(self):
        tid = self.workflow("923550000001")
        # hold a verify inside its facts query: a lock on approvals stalls its snapshot read
        locker = subprocess.Popen(["psql", self.dsn, "-AtXq", "-c",
                                   "BEGIN; LOCK TABLE approvals IN ACCESS EXCLUSIVE MODE;"
                                   " SELECT pg_sleep(3); COMMIT;"])
        try:
            time.sleep(0.5)
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                first = pool.submit(self.srv.get, f"/api/tickets/{tid}/verify", token=self.qa)
                time.sleep(0.7)
                second = self.srv.get(f"/api/tickets/{tid}/verify", token=self.qa)
                self.assertEqual(second.status, 503, second)
                self.assertEqual(second.json()["error"]["code"], "verify_busy")
                self.assertEqual(second.headers.get("retry-after"), "1")
                # webhooks are not held up by it
                t0 = time.time()
                r = post_webhook(self.srv, text_payload("wamid.during-verify", "923550000002",
                                                        1760499000, "still here?"))
                self.assertEqual(r.status, 200, r)
                self.assertLess(time.time() - t0, 2.0)
                self.assertEqual(first.result(timeout=30).status, 200)
        finally:
            locker.wait(timeout=30)
        self.assertTrue(self.api_verify(tid)["ok"])


class RemovedEvents(AuditTest):
    def test_removed_last_event_and_rewound_head(self):
        tid = self.workflow("923330000001")
        d = self.digest()
        evs = self.events(tid)
        last = evs[-1]
        # the attacker removes the last event (its texts first: they reference it)
        self.tamper(f"DELETE FROM event_texts WHERE event_id = {last['id']};\n"
                    f"DELETE FROM events WHERE id = {last['id']}")
        self.assertEqual(len(self.events(tid)), 8)
        # the ticket still names 9 events: both verifiers report seq 9
        self.assert_broken_at(tid, 9, r"removed")
        # and the earlier digest fails too
        code, fails, summary, out = self.cli_verify("--digest", d)
        self.assertEqual(code, 1, out)
        self.assertEqual(len(fails), 2, out)
        self.assertTrue(fails[0].startswith(f"FAIL ticket {tid} seq 9: "), out)
        self.assertTrue(fails[1].startswith("FAIL digest: "), out)
        self.assertEqual((summary["ok"], summary["failures"]), (False, 2), out)

        # the attacker also rewinds the head: the chain alone now looks complete, but the
        # approval it decided still says approved, which the shortened chain does not
        self.q(f"UPDATE tickets SET last_seq = 8, chain_head = decode('{evs[-2]['hash']}', 'hex')"
               f" WHERE id = {tid}")
        v = self.api_verify(tid)
        self.assertEqual((v["ok"], v["first_bad_seq"], v["table"], v["field"]),
                         (False, 8, "approvals", "status"), v)
        self.assertRegex(v["reason"], r"field status is approved but the chain \(seq 8\) says pending")
        # with the approval row rewound too, only the digest catches it
        self.q(f"UPDATE approvals SET status = 'pending', decided_by = NULL WHERE ticket_id = {tid}")
        self.assertEqual(self.api_verify(tid), {"ok": True, "events": 8, "head": evs[-2]["hash"],
                                                "redacted": 0})
        code, fails, summary, out = self.cli_verify()
        self.assertEqual((code, fails, summary["ok"]), (0, [], True), out)
        code, fails, summary, out = self.cli_verify("--digest", d)
        self.assertEqual(code, 1, out)
        self.assertEqual(len(fails), 1, out)
        self.assertRegex(fails[0], r"^FAIL digest: .*altered or removed")
        self.assertEqual((summary["ok"], summary["failures"]), (False, 1), out)


class RewrittenHistory(AuditTest):
    def test_a_consistently_rewritten_chain_is_caught_only_by_the_digest(self):
        """Someone with database access changes a note and recomputes its digest, every later
        hash and the head (nothing in the chain is secret). The chain verifies; the digest
        published before does not."""
        tid = self.workflow("923440000001")
        d = self.digest()
        salt = bytes.fromhex(self.one("SELECT encode(salt, 'hex') FROM text_salts WHERE scope = 'staff'"))
        forged = "customer agreed to wait two weeks"
        evs = self.events(tid)
        note = evs[SEQ_NOTE - 1]
        digests = json.loads(note["digests"])
        digests["note"] = hmac.new(salt, forged.encode(), hashlib.sha256).hexdigest()
        note["digests"] = json.dumps(digests)
        sql = [f"UPDATE event_texts SET body = '{forged}' WHERE event_id = {note['id']} AND field = 'note'",
               f"UPDATE events SET digests = '{note['digests']}'::jsonb WHERE id = {note['id']}"]
        prev = evs[SEQ_NOTE - 2]["hash"]
        for e in evs[SEQ_NOTE - 1:]:
            h = event_hash(prev, f"ticket:{tid}", e)
            sql.append(f"UPDATE events SET prev_hash = decode('{prev}', 'hex'), hash = decode('{h}', 'hex')"
                       f" WHERE id = {e['id']}")
            prev = h
        sql.append(f"UPDATE tickets SET chain_head = decode('{prev}', 'hex') WHERE id = {tid}")
        self.tamper(";\n".join(sql))
        self.assertNotEqual(prev, evs[-1]["hash"])
        # the rewrite is self-consistent: the chain check cannot tell
        self.assertEqual(self.api_verify(tid), {"ok": True, "events": 9, "head": prev, "redacted": 0})
        code, fails, summary, out = self.cli_verify()
        self.assertEqual((code, fails), (0, []), out)
        # the earlier digest can
        code, fails, summary, out = self.cli_verify("--digest", d)
        self.assertEqual(code, 1, out)
        self.assertEqual(len(fails), 1, out)
        self.assertRegex(fails[0], r"^FAIL digest: .*altered or removed")


class Digests(AuditTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.TemporaryDirectory(prefix="ct-audit-keys-")
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.key, cls.pub, cls.other_pub = harness.ed25519_keys(cls.tmp.name)
        cls.tid = None

    def setUp(self):
        if Digests.tid is None:
            Digests.tid = self.workflow("923550000001")

    def verify_digest(self, digest, env=None):
        return self.cli_verify("--digest", digest, env=env)

    def assert_digest_ok(self, digest, env=None, signed=False):
        code, fails, summary, out = self.verify_digest(digest, env)
        self.assertEqual((code, fails, summary["ok"], summary["failures"]), (0, [], True, 0), out)
        self.assertRegex(out, r"digest of \S+: \d+ events unchanged" + (", signature valid" if signed else ""))
        return out

    def assert_digest_fails(self, digest, reason_re, env=None):
        code, fails, summary, out = self.verify_digest(digest, env)
        self.assertEqual(code, 1, out)
        self.assertEqual(len(fails), 1, out)
        self.assertRegex(fails[0], r"^FAIL digest: " + reason_re)
        self.assertEqual((summary["ok"], summary["failures"]), (False, 1), out)

    def test_digest_states_count_last_id_and_root_of_all_chain_heads(self):
        stored = int(self.one("SELECT count(*) FROM digests"))
        line = self.digest()
        d = json.loads(line)
        self.assertEqual(list(d), ["version", "time", "events", "chains", "upto_id", "root"])
        self.assertEqual(d["version"], 2)
        self.assertRegex(d["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        self.assertEqual(d["events"], int(self.one("SELECT count(*) FROM events")))
        self.assertEqual(d["upto_id"], int(self.one("SELECT max(id) FROM events")))
        heads = self.q("SELECT DISTINCT ON (c) c, seq, encode(hash, 'hex') FROM (SELECT CASE WHEN"
                       " ticket_id IS NOT NULL THEN 'ticket:' || ticket_id ELSE 'user:' || user_id END c,"
                       " seq, hash FROM events) x ORDER BY c, seq DESC")
        heads = [(c, int(s), h) for c, s, h in heads]
        self.assertEqual(d["chains"], len(heads))
        self.assertEqual(d["root"], merkle_root(heads))
        # each head is the chain head the owner row stores
        self.assertIn((f"ticket:{self.tid}", 9, self.head(self.tid)[1]), heads)
        self.assert_digest_ok(line)
        # kept, unsigned, exactly as printed; and append-only like the events
        self.assertEqual(int(self.one("SELECT count(*) FROM digests")), stored + 1)
        self.assertEqual(self.q("SELECT payload, alg, signature FROM digests ORDER BY id DESC"
                                " LIMIT 1"), [[line, "", ""]])
        for sql in ("UPDATE digests SET upto_id = 1", "DELETE FROM digests", "TRUNCATE digests"):
            with self.assertRaises(AssertionError) as ctx:
                self.q(sql)
            self.assertIn("append-only", str(ctx.exception))
        # a version 1 line (made before Merkle roots) keeps verifying, and catches changes
        v1 = {"version": 1, "time": d["time"], "events": d["events"], "upto_id": d["upto_id"],
              "root": digest_root_v1(heads)}
        self.assert_digest_ok(json.dumps(v1, separators=(",", ":")))
        self.assert_digest_fails(json.dumps(dict(v1, root=flip(v1["root"], 5)),
                                            separators=(",", ":")), r".*altered or removed")

    def test_events_appended_after_the_digest_keep_it_valid(self):
        line = self.digest()
        self.act(f"/api/tickets/{self.tid}/notes", {"body": "after the digest"}, self.sup)
        self.new_ticket("923550000002")
        add_user(self.dsn, "late", "agent")
        self.assertGreater(int(self.one("SELECT max(id) FROM events")), json.loads(line)["upto_id"])
        out = self.assert_digest_ok(line)
        self.assertIn(f"{json.loads(line)['events']} events unchanged", out)
        # from a file as well
        path = os.path.join(self.tmp.name, "digest.json")
        with open(path, "w") as f:
            f.write(line + "\n")
        self.assert_digest_ok("@" + path)
        # an unsigned digest with a changed root or count fails
        d = json.loads(line)
        for k, v in [("root", flip(d["root"], 7)), ("events", d["events"] - 1), ("upto_id", d["upto_id"] - 1)]:
            with self.subTest(field=k):
                bad = dict(d, **{k: v})
                self.assert_digest_fails(json.dumps(bad, separators=(",", ":")), r".*altered or removed")
        for bad in ["{not json", '{"version":2,"time":"x","events":1,"upto_id":1,"root":"' + "0" * 64 + '"}',
                    json.dumps(dict(d, root="abc"))]:
            with self.subTest(digest=bad):
                self.assert_digest_fails(bad, r"the digest")

    def test_signed_digest_verifies_with_the_public_key_only_as_issued(self):
        line = self.digest(env={"CASETRAIL_SIGNING_KEY": self.key})
        d = json.loads(line)
        self.assertEqual(d["alg"], "ed25519")
        self.assertRegex(d["signature"], r"^[0-9a-f]{128}$")
        self.assertEqual(list(d)[-2:], ["alg", "signature"])
        # an outside auditor can check it with openssl alone: the signed text is the line
        # without alg and signature
        payload = line[:line.index(',"alg":')] + "}"
        self.assertEqual(json.loads(payload),
                         {k: d[k] for k in ("version", "time", "events", "chains", "upto_id", "root")})
        # kept with its signature, the payload as signed
        self.assertEqual(self.q("SELECT payload, alg, signature FROM digests ORDER BY id DESC"
                                " LIMIT 1"), [[payload, "ed25519", d["signature"]]])
        pf, sf = os.path.join(self.tmp.name, "payload"), os.path.join(self.tmp.name, "sig")
        with open(pf, "w") as f:
            f.write(payload)
        with open(sf, "wb") as f:
            f.write(bytes.fromhex(d["signature"]))
        r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", self.pub, "-rawin",
                            "-in", pf, "-sigfile", sf], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        pub = {"CASETRAIL_VERIFY_KEY": self.pub}
        self.assert_digest_ok(line, pub, signed=True)
        self.assert_digest_ok(line, {"CASETRAIL_SIGNING_KEY": self.key}, signed=True)
        # without any key the signature cannot be checked: say so, still check the content
        code, fails, summary, out = self.verify_digest(line)
        self.assertEqual((code, fails), (0, []), out)
        self.assertIn("not checked", out)
        # one character changed anywhere that is signed, or in the signature: refused
        for name, bad in [("root", dict(d, root=flip(d["root"], 0))),
                          ("root last", dict(d, root=flip(d["root"], 63))),
                          ("signature", dict(d, signature=flip(d["signature"], 0))),
                          ("signature last", dict(d, signature=flip(d["signature"], 127))),
                          ("time", dict(d, time=d["time"].replace("Z", "").rstrip("0123456789") + "000001Z")),
                          ("events", dict(d, events=d["events"] + 1)),
                          ("chains", dict(d, chains=d["chains"] + 1))]:
            with self.subTest(changed=name):
                self.assertNotEqual(bad, d)
                self.assert_digest_fails(json.dumps(bad, separators=(",", ":")), r".*signature", pub)
        # another key's public half: refused
        self.assert_digest_fails(line, r".*signature does not verify", {"CASETRAIL_VERIFY_KEY": self.other_pub})
        # a key is configured but the digest is unsigned: refused
        unsigned = self.digest()
        self.assertNotIn("signature", json.loads(unsigned))
        self.assert_digest_fails(unsigned, r"the digest is not signed", pub)
        stripped = json.dumps({k: v for k, v in d.items() if k not in ("alg", "signature")})
        self.assert_digest_fails(stripped, r"the digest is not signed", pub)

    def test_digest_with_a_bad_signing_key_fails(self):
        stored = self.one("SELECT count(*) FROM digests")
        r = cli(self.dsn, "digest", env={"CASETRAIL_SIGNING_KEY": self.pub})
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertEqual(r.stdout, "")
        self.assertIn("CASETRAIL_SIGNING_KEY", r.stderr)
        self.assertEqual(self.one("SELECT count(*) FROM digests"), stored)  # nothing kept


if __name__ == "__main__":
    harness.main()
