"""Webhook ingestion (issue 4): verification handshake, signatures, limits and bad input,
evidence first, idempotency (sequential and concurrent), conversation-to-ticket threading,
every message type, delivery statuses, and the read API. When it fails, look at the server log
path in the assertion, server/whatsapp/webhook.c (parsing), server/domain/ingest.c (rules) and
server/store/store_ingest.c (queries)."""
import concurrent.futures
import datetime
import json
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import harness  # noqa: E402
from harness import (ServerTest, add_user, create_db, drop_db, fixture, post_webhook,  # noqa: E402
                     text_payload, status_payload, PNID_A, PNID_B)

FIXTURE_FILES = sorted(f for f in os.listdir(harness.FIXTURES) if f.endswith(".json"))


def counts(t):
    return t.q("SELECT (SELECT count(*) FROM webhook_receipts), (SELECT count(*) FROM messages),"
               " (SELECT count(*) FROM tickets), (SELECT count(*) FROM events),"
               " (SELECT count(*) FROM contacts), (SELECT count(*) FROM message_statuses)")[0]


class Verification(ServerTest):
    def test_handshake(self):
        r = self.srv.get("/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1158201444"
                         f"&hub.verify_token={harness.VERIFY_TOKEN}")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"1158201444")
        self.assertTrue(r.headers["content-type"].startswith("text/plain"))
        for q in ["hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong",
                  f"hub.mode=unsubscribe&hub.challenge=1&hub.verify_token={harness.VERIFY_TOKEN}",
                  f"hub.challenge=1&hub.verify_token={harness.VERIFY_TOKEN}", ""]:
            r = self.srv.get("/webhooks/whatsapp?" + q)
            self.assertEqual(r.status, 403, q)
            self.assertEqual(r.json()["error"]["code"], "verification_failed")
        self.assertNotIn(harness.VERIFY_TOKEN, self.srv.read_log())


class BadInput(ServerTest):
    server_env = {"CASETRAIL_MAX_BODY": "256K"}

    def assert_nothing_stored(self, before):
        self.assertEqual(counts(self), before)

    def test_signature_is_required(self):
        before = counts(self)
        body = fixture("text.json")
        for sig in ["", "sha256=", "sha1=" + "0" * 40, "sha256=" + "0" * 64, "sha256=zz" + "0" * 62,
                    harness.sign(body, "another-secret"), harness.sign(body + b" ")]:
            r = post_webhook(self.srv, body, signature=sig)
            self.assertEqual(r.status, 401, sig)
            self.assertEqual(r.json()["error"]["code"], "bad_signature")
        r = self.srv.request("POST", "/webhooks/whatsapp", body=body,
                             headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 401)
        self.assert_nothing_stored(before)

    def test_malformed_and_foreign_payloads(self):
        before = counts(self)
        for body, code in [(b"{not json", "invalid_json"), (b"", "invalid_json"),
                           (fixture("text.json") + b" ]]] trailing", "invalid_json"),
                           (b"[1,2]", "not_whatsapp"), (b'{"object":"page","entry":[]}', "not_whatsapp"),
                           (b'{"object":"whatsapp_business_account"}', "not_whatsapp"),
                           (b'{"object":"whatsapp_business_account","entry":[]}\xff', "invalid_json")]:
            r = post_webhook(self.srv, body)
            self.assertEqual(r.status, 400, body)
            self.assertEqual(r.json()["error"]["code"], code, body)
        self.assert_nothing_stored(before)

    def test_oversized_body_is_refused(self):
        before = counts(self)
        payload = text_payload("wamid.big", "923000000001", 1760431200, "x" * (300 * 1024))
        r = post_webhook(self.srv, payload)
        self.assertEqual(r.status, 413)
        self.assertEqual(r.json()["error"]["code"], "body_too_large")
        self.assert_nothing_stored(before)
        # just under the limit is fine
        payload = text_payload("wamid.fits", "923000000001", 1760431200, "y" * (200 * 1024))
        self.assertEqual(post_webhook(self.srv, payload).status, 200)

    def test_unknown_types_fields_and_changes_are_kept(self):
        payload = text_payload("wamid.future", "923000000002", 1760431300, "ignored", extra={
            "type": "poll_vote", "poll_vote": {"option": 2}, "brand_new_field": {"x": [1, 2]}})
        del payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]
        payload["entry"][0]["changes"].append({"field": "account_update", "value": {"event": "X"}})
        r = post_webhook(self.srv, payload)
        self.assertEqual(r.status, 200, r)
        row = self.q("SELECT type, payload->'poll_vote'->>'option', payload->'brand_new_field'->'x'->>1"
                     " FROM messages WHERE wamid = 'wamid.future'")
        self.assertEqual(row, [["poll_vote", "2", "2"]])

    def test_entries_without_ids_are_skipped_not_fatal(self):
        payload = text_payload("wamid.good", "923000000003", 1760431400, "hello")
        bad = dict(payload["entry"][0]["changes"][0]["value"]["messages"][0])
        del bad["id"]
        payload["entry"][0]["changes"][0]["value"]["messages"].append(bad)
        payload["entry"][0]["changes"][0]["value"]["messages"].append(
            {"from": "923000000003", "id": "wamid.badts", "timestamp": "soon", "type": "text"})
        payload["entry"][0]["changes"][0]["value"]["messages"].append(
            {"from": "923000000003", "id": "wamid.zerots", "timestamp": "0", "type": "text"})
        r = post_webhook(self.srv, payload)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["messages_new"], 1)
        self.assertEqual(self.one("SELECT count(*) FROM messages WHERE wamid IN"
                                  " ('wamid.good', 'wamid.badts', 'wamid.zerots')"), "1")


class IngestTest(ServerTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = add_user(cls.dsn, "reader", "qa")

    def api(self, path):
        r = self.srv.get(path, token=self.token)
        self.assertEqual(r.status, 200, (path, r))
        return r.json()

    def ticket_of(self, wa_id, pnid=PNID_A):
        # a number the customer changed away from stays as an alias (merged_into) of them
        return self.one("SELECT t.id FROM tickets t JOIN contacts c ON c.id = t.contact_id"
                        " JOIN contacts k ON c.id = coalesce(k.merged_into, k.id)"
                        " WHERE k.wa_id = :'w' AND k.phone_number_id = :'p'"
                        " ORDER BY t.id DESC LIMIT 1", w=wa_id, p=pnid)


class ReplayOrder(harness.unittest.TestCase):
    """Done means: replaying a day's webhooks in any order, once or twice, leaves the same
    tickets, messages and events (ids and recording times aside)."""

    STATE = [
        # each contact's tickets: status, escalation, its messages, and its events by action
        "SELECT c.phone_number_id, c.wa_id, coalesce(c.name, ''), t.status, t.escalation_level,"
        " (SELECT string_agg(m.wamid || ':' || m.type || ':' || coalesce(m.body, ''), ',' ORDER BY m.wamid)"
        "  FROM messages m WHERE m.ticket_id = t.id),"
        " (SELECT string_agg(a || '=' || n, ',' ORDER BY a) FROM (SELECT action AS a, count(*) AS n"
        "  FROM events e WHERE e.ticket_id = t.id GROUP BY action) x)"
        " FROM tickets t JOIN contacts c ON c.id = t.contact_id ORDER BY 1, 2, 4",
        "SELECT count(*) FROM messages", "SELECT count(*) FROM events WHERE ticket_id IS NOT NULL",
    ]

    def replay(self, order, times):
        dsn, name = create_db("replay_order")
        srv = harness.Server(dsn, log_name="replay_order").start()
        try:
            for _ in range(times):
                for f in order:
                    self.assertEqual(post_webhook(srv, fixture(f)).status, 200, f)
            return [harness.psql(dsn, q) for q in self.STATE]
        finally:
            srv.stop()
            drop_db(name)

    def test_any_order_once_or_twice_gives_the_same_record(self):
        forward = self.replay(FIXTURE_FILES, 1)
        backward = self.replay(list(reversed(FIXTURE_FILES)), 2)
        shuffled = list(FIXTURE_FILES)
        random.Random(11).shuffle(shuffled)
        self.assertEqual(forward, backward)
        self.assertEqual(forward, self.replay(shuffled, 2))
        self.assertGreater(int(forward[1][0][0]), 20)


class FirstMessage(IngestTest):
    """A fresh database: the fixture's first delivery."""

    def test_first_message_opens_a_ticket_with_events(self):
        body = fixture("text.json")
        r = post_webhook(self.srv, body)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["messages_new"], 1)
        # evidence first: the exact bytes, marked verified
        row = self.q("SELECT encode(body, 'hex'), signature_verified, body_length FROM webhook_receipts"
                     " WHERE id = :'id'", id=r.json()["receipt_id"])
        self.assertEqual(row, [[body.hex(), "t", str(len(body))]])
        tid = self.ticket_of("923001234567")
        t = self.api(f"/api/tickets/{tid}")
        self.assertEqual(t["status"], "new")
        self.assertIsNone(t["assignee"])
        self.assertEqual(t["contact"], {"wa_id": "923001234567", "name": "Ayesha Khan",
                                        "user_id": None, "username": None,
                                        "phone_number_id": PNID_A})
        self.assertEqual(t["last_message_at"], "2025-10-14T08:40:00.000000Z")
        items = self.api(f"/api/tickets/{tid}/timeline")["items"]
        events = [i for i in items if i["kind"] == "event"]
        self.assertEqual([(e["seq"], e["action"]) for e in events][:2],
                         [(1, "ticket.created"), (2, "message.received")])
        created = events[0]
        self.assertEqual(created["at"], "2025-10-14T08:40:00.000000Z")
        self.assertEqual(created["actor"], {"type": "customer", "id": "923001234567", "name": "Ayesha Khan"})
        self.assertEqual(created["to"], "new")
        self.assertEqual(items[0]["action"] if items[0]["kind"] == "event" else items[0]["kind"], "ticket.created")
        msg = [i for i in items if i["kind"] == "message"][0]
        self.assertEqual(msg["direction"], "in")
        self.assertEqual(msg["type"], "text")
        self.assertTrue(msg["text"].startswith("Assalam o alaikum"))


class Ingestion(IngestTest):
    def test_every_fixture_is_stored_with_its_fields(self):
        for f in FIXTURE_FILES:
            r = post_webhook(self.srv, fixture(f))
            self.assertEqual(r.status, 200, (f, r))
        def m(wamid_like, cols):
            rows = self.q(f"SELECT {cols} FROM messages WHERE payload->>'type' = :'t'", t=wamid_like)
            self.assertTrue(rows, wamid_like)
            return rows[0]
        self.assertEqual(m("image", "payload->'image'->>'mime_type', body IS NOT NULL, payload->'image'->>'id' IS NOT NULL"),
                         ["image/jpeg", "t", "t"])
        self.assertEqual(m("audio", "payload->'audio'->>'voice', payload->'audio'->>'mime_type'"),
                         ["true", "audio/ogg; codecs=opus"])
        self.assertEqual(m("document", "payload->'document'->>'filename' IS NOT NULL"), ["t"])
        self.assertEqual(m("sticker", "payload->'sticker'->>'mime_type'"), ["image/webp"])
        self.assertEqual(m("location", "(payload->'location'->>'latitude')::float <> 0"), ["t"])
        self.assertEqual(m("contacts", "jsonb_array_length(payload->'contacts')"), ["1"])
        self.assertEqual(m("order", "jsonb_array_length(payload->'order'->'product_items') > 0"), ["t"])
        self.assertEqual(m("unsupported", "payload->'errors'->0->>'code'"), ["131051"])
        self.assertEqual(m("button", "body IS NOT NULL, context_wamid IS NOT NULL"), ["t", "t"])
        self.assertEqual(m("interactive", "body IS NOT NULL, context_wamid IS NOT NULL"), ["t", "t"])
        self.assertEqual(m("system", "body IS NOT NULL"), ["t"])
        # a reaction links to the message it reacts to (the text.json message)
        target = json.loads(fixture("text.json"))["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        self.assertEqual(m("reaction", "context_wamid"), [target])
        # a reply links to the earlier message by context.id
        reply = json.loads(fixture("text_reply_context.json"))["entry"][0]["changes"][0]["value"]["messages"][0]
        self.assertEqual(self.one("SELECT context_wamid FROM messages WHERE wamid = :'w'", w=reply["id"]),
                         reply["context"]["id"])
        # referral kept with the message
        self.assertEqual(self.one("SELECT payload->'referral'->>'source_type' FROM messages"
                                  " WHERE payload ? 'referral'"), "ad")
        # non-ASCII text and names are stored intact
        urdu = json.loads(fixture("non_ascii_roman_urdu.json"))["entry"][0]["changes"][0]["value"]
        self.assertEqual(self.one("SELECT body FROM messages WHERE wamid = :'w'", w=urdu["messages"][0]["id"]),
                         urdu["messages"][0]["text"]["body"])
        # the timeline shows each type's object
        tid = self.ticket_of("923001234567")
        items = self.api(f"/api/tickets/{tid}/timeline?limit=500")["items"]
        kinds = {i["type"]: i for i in items if i["kind"] == "message"}
        self.assertIn("image", kinds)
        self.assertEqual(kinds["image"]["image"]["mime_type"], "image/jpeg")

    def test_batch_and_two_business_numbers(self):
        r = post_webhook(self.srv, fixture("two_business_numbers.json"))
        self.assertEqual(r.status, 200)
        a, b = self.ticket_of("923001234567", PNID_A), self.ticket_of("923001234567", PNID_B)
        self.assertIsNotNone(b)
        self.assertNotEqual(a, b)

    def test_duplicates_change_nothing(self):
        payloads = [fixture(f) for f in FIXTURE_FILES]
        for p in payloads:
            post_webhook(self.srv, p)
        before_counts = counts(self)
        tickets = self.srv.get("/api/tickets?limit=500", token=self.token).body
        tid = self.ticket_of("923001234567")
        timeline = self.srv.get(f"/api/tickets/{tid}/timeline?limit=500", token=self.token).body
        updated = self.q("SELECT id, updated_at FROM tickets UNION ALL SELECT id, updated_at FROM contacts")
        random.Random(7).shuffle(payloads)
        for p in payloads:
            r = post_webhook(self.srv, p)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["messages_new"], 0)
        after = counts(self)
        # docs/DECISIONS.md#ingestion-idempotency: a duplicate delivery adds no row at all, not even a second receipt
        self.assertEqual(after, before_counts)
        self.assertEqual(self.srv.get("/api/tickets?limit=500", token=self.token).body, tickets)
        self.assertEqual(self.srv.get(f"/api/tickets/{tid}/timeline?limit=500", token=self.token).body, timeline)
        self.assertEqual(self.q("SELECT id, updated_at FROM tickets UNION ALL SELECT id, updated_at FROM contacts"), updated)

    def test_redelivery_under_another_number_creates_nothing(self):
        post_webhook(self.srv, text_payload("wamid.other-number", "923123000001", 1760420000, "hi"))
        before = counts(self)
        r = post_webhook(self.srv, text_payload("wamid.other-number", "923123000001", 1760420000, "hi",
                                                pnid=PNID_B))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["messages_duplicate"], 1)
        after = counts(self)
        self.assertEqual(after[1:], before[1:])  # a new receipt (other bytes), nothing else

    def test_concurrent_duplicates_and_first_messages(self):
        same = json.dumps(text_payload("wamid.race-dup", "923111000001", 1760440000, "race")).encode()
        firsts = [json.dumps(text_payload(f"wamid.race-first-{i}", "923111000002", 1760440000 + i, f"m{i}")).encode()
                  for i in range(8)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda b: post_webhook(self.srv, b).status, [same] * 8 + firsts))
        self.assertEqual(results, [200] * 16)
        self.assertEqual(self.one("SELECT count(*) FROM messages WHERE wamid = 'wamid.race-dup'"), "1")
        self.assertEqual(self.one("SELECT count(*) FROM events WHERE data->>'wamid' = 'wamid.race-dup'"
                                  " AND action = 'message.received'"), "1")
        for wa in ["923111000001", "923111000002"]:
            self.assertEqual(self.one("SELECT count(*) FROM tickets t JOIN contacts c ON c.id = t.contact_id"
                                      " WHERE c.wa_id = :'w'", w=wa), "1")
        tid = self.ticket_of("923111000002")
        seqs = self.q("SELECT seq FROM events WHERE ticket_id = :'t' ORDER BY seq", t=tid)
        self.assertEqual([int(s[0]) for s in seqs], list(range(1, 10)))  # gapless: created + 8 received

    def test_resolved_reopens_closed_starts_anew(self):
        post_webhook(self.srv, text_payload("wamid.th-1", "923222000001", 1760450000, "first"))
        tid = self.ticket_of("923222000001")
        self.q("UPDATE tickets SET status = 'resolved' WHERE id = :'t'", t=tid)
        post_webhook(self.srv, text_payload("wamid.th-2", "923222000001", 1760450100, "again"))
        self.assertEqual(self.ticket_of("923222000001"), tid)
        t = self.api(f"/api/tickets/{tid}")
        self.assertEqual(t["status"], "open")
        ev = [i for i in self.api(f"/api/tickets/{tid}/timeline")["items"] if i["kind"] == "event"]
        reopened = [e for e in ev if e["action"] == "ticket.reopened"]
        self.assertEqual(len(reopened), 1)
        self.assertEqual((reopened[0]["from"], reopened[0]["to"], reopened[0]["actor"]["type"]),
                         ("resolved", "open", "customer"))
        self.q("UPDATE tickets SET status = 'closed' WHERE id = :'t'", t=tid)
        post_webhook(self.srv, text_payload("wamid.th-3", "923222000001", 1760450200, "new problem"))
        new = self.ticket_of("923222000001")
        self.assertNotEqual(new, tid)
        self.assertEqual(self.api(f"/api/tickets/{new}")["status"], "new")
        self.assertEqual(self.api(f"/api/tickets/{tid}")["status"], "closed")

    def test_profile_name_kept_current(self):
        post_webhook(self.srv, text_payload("wamid.nm-2", "923333000001", 1760460200, "b", name="New Name"))
        post_webhook(self.srv, text_payload("wamid.nm-1", "923333000001", 1760460100, "a", name="Old Name"))
        self.assertEqual(self.one("SELECT name FROM contacts WHERE wa_id = '923333000001'"), "New Name")
        post_webhook(self.srv, text_payload("wamid.nm-3", "923333000001", 1760460300, "c", name="Newest"))
        self.assertEqual(self.one("SELECT name FROM contacts WHERE wa_id = '923333000001'"), "Newest")

    def outbound(self, wamid, wa_id):
        post_webhook(self.srv, text_payload(f"{wamid}-in", wa_id, 1760470000, "hi"))
        tid = self.ticket_of(wa_id)
        cid = self.one("SELECT contact_id FROM tickets WHERE id = :'t'", t=tid)
        self.q("INSERT INTO messages (wamid, ticket_id, contact_id, direction, type, body, payload, sent_at)"
               " VALUES (:'w', :'t', :'c', 'out', 'text', 'reply', '{}', now())", w=wamid, t=tid, c=cid)
        return tid

    def test_statuses_apply_monotonically(self):
        tid = self.outbound("wamid.out-1", "923444000001")
        for st, ts in [("sent", 1760470010), ("read", 1760470030), ("delivered", 1760470020),
                       ("read", 1760470030)]:
            r = post_webhook(self.srv, status_payload("wamid.out-1", st, ts, "923444000001"))
            self.assertEqual(r.status, 200)
        self.assertEqual(self.one("SELECT status FROM messages WHERE wamid = 'wamid.out-1'"), "read")
        self.assertEqual(self.one("SELECT count(*) FROM message_statuses WHERE wamid = 'wamid.out-1'"), "3")
        ev = [i for i in self.api(f"/api/tickets/{tid}/timeline")["items"]
              if i["kind"] == "event" and i["action"] == "message.status"]
        self.assertEqual(sorted((e["to"], e["applied"]) for e in ev),
                         [("delivered", False), ("read", True), ("sent", True)])
        # failed keeps its error and is terminal
        self.outbound("wamid.out-2", "923444000002")
        errors = [{"code": 131026, "title": "Message undeliverable"}]
        post_webhook(self.srv, status_payload("wamid.out-2", "failed", 1760470040, "923444000002", errors=errors))
        post_webhook(self.srv, status_payload("wamid.out-2", "delivered", 1760470050, "923444000002"))
        self.assertEqual(self.q("SELECT status, error_code, error_title FROM messages WHERE wamid = 'wamid.out-2'"),
                         [["failed", "131026", "Message undeliverable"]])

    def test_status_for_unknown_message_is_kept_raw_only(self):
        before = counts(self)
        r = post_webhook(self.srv, status_payload("wamid.never-sent-by-us", "failed", 1760432700,
                                                  errors=[{"code": 131026, "title": "Message undeliverable"}]))
        self.assertEqual(r.status, 200)
        after = counts(self)
        self.assertEqual(int(after[0]), int(before[0]) + 1)
        self.assertEqual(after[1:], before[1:])

    def test_timeline_items_carry_what_was_stored(self):
        """The timeline builds each item from the stored columns: a message's type object (under
        content for a type the viewer does not know), its errors and forward flag with their null
        members dropped at any depth (nulls in arrays kept), its times to the microsecond; an
        event's fields, its data merged in, and its hash as stored."""
        ts = 1760431500
        payload = text_payload("wamid.shape", "923000000077", ts, "ignored", extra={
            "type": "poll_vote",
            "poll_vote": {"option": 2, "gone": None, "nested": {"keep": "x", "drop": None},
                          "list": [None, 1]},
            "context": {"forwarded": True},
            "errors": [{"code": 131051, "title": "Message type unknown", "details": None}]})
        del payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]
        self.assertEqual(post_webhook(self.srv, payload).status, 200)
        tid = self.ticket_of("923000000077")
        items = self.api(f"/api/tickets/{tid}/timeline?limit=50")["items"]
        msg = [i for i in items if i["kind"] == "message"][0]
        self.assertEqual(msg["content"], {"option": 2, "nested": {"keep": "x"}, "list": [None, 1]})
        self.assertNotIn("poll_vote", msg)
        self.assertIs(msg["forwarded"], True)
        self.assertEqual(msg["errors"], [{"code": 131051, "title": "Message type unknown"}])
        self.assertNotIn("reply_to", msg)
        self.assertIsNone(msg["text"])  # kept as null: the message has no text
        self.assertEqual(msg["at"], datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
                         .strftime("%Y-%m-%dT%H:%M:%S.000000Z"))
        received = self.one("SELECT to_char(received_at AT TIME ZONE 'UTC',"
                            " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM messages WHERE wamid = 'wamid.shape'")
        self.assertEqual(msg["received_at"], received)
        self.assertEqual(msg["id"], int(self.one("SELECT id FROM messages WHERE wamid = 'wamid.shape'")))
        for ev in (i for i in items if i["kind"] == "event"):
            row = self.q("SELECT encode(hash, 'hex'), coalesce(data, '{}'::jsonb)::text, actor_type,"
                         " to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
                         " FROM events WHERE ticket_id = :'t' AND seq = :'s'", t=tid, s=ev["seq"])[0]
            self.assertEqual(ev["hash"], row[0])
            for k, v in json.loads(row[1]).items():
                self.assertEqual(ev[k], v, (ev["action"], k))
            self.assertEqual(ev["actor"]["type"], row[2])
            self.assertEqual(ev["recorded_at"], row[3])
            self.assertIn("reason", ev)

    def test_read_api(self):
        for i in range(5):
            post_webhook(self.srv, text_payload(f"wamid.list-{i}", f"92355500000{i}", 1760480000 + i,
                                                f"msg {i}", name=f"Lister Person{i}"))
        r = self.api("/api/tickets?contact=lister%20PERSON3")
        self.assertEqual([t["contact"]["wa_id"] for t in r["tickets"]], ["923555000003"])
        r = self.api("/api/tickets?contact=923555000001")
        self.assertEqual([t["contact"]["name"] for t in r["tickets"]], ["Lister Person1"])
        r = self.api("/api/tickets?contact=lister&status=new&escalated=false&assignee=none")
        self.assertEqual(len(r["tickets"]), 5)
        self.assertEqual(self.api("/api/tickets?contact=lister&status=closed")["tickets"], [])
        # newest activity first, keyset pages of 2 that cover everything once
        seen, cursor = [], None
        for _ in range(10):
            r = self.api("/api/tickets?contact=lister&limit=2" + (f"&cursor={cursor}" if cursor else ""))
            seen += [t["contact"]["wa_id"] for t in r["tickets"]]
            cursor = r["next_cursor"]
            if cursor is None:
                break
        self.assertEqual(seen, [f"92355500000{i}" for i in range(4, -1, -1)])
        for bad in ["limit=0", "limit=501", "limit=abc", "status=archived", "escalated=maybe", "cursor=zzz",
                    "status=closedclosedclosedX", "escalated=truetrue", "contact=" + "x" * 201,
                    "cursor=t-99999999999999999_1", "cursor=t1_0"]:
            r = self.srv.get("/api/tickets?" + bad, token=self.token)
            self.assertEqual(r.status, 400, bad)
            self.assertIn("error", r.json())
        self.assertEqual(self.srv.get("/api/tickets?limit=500", token=self.token).status, 200)
        for path in ["/api/tickets/999999", "/api/tickets/abc", "/api/tickets/999999/timeline"]:
            r = self.srv.get(path, token=self.token)
            self.assertEqual(r.status, 404, path)
            self.assertEqual(r.json()["error"]["code"], "ticket_not_found")
        self.assertEqual(self.srv.get("/api/tickets").status, 401)
        # errors quoting bad bytes stay valid JSON
        r = self.srv.get("/api/tickets/%FF%C3", token=self.token)
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["error"]["code"], "ticket_not_found")
        # timeline pagination
        tid = self.ticket_of("923555000000")
        full = self.api(f"/api/tickets/{tid}/timeline")["items"]
        page1 = self.api(f"/api/tickets/{tid}/timeline?limit=1")
        page2 = self.api(f"/api/tickets/{tid}/timeline?limit=5&cursor={page1['next_cursor']}")
        self.assertEqual(page1["items"] + page2["items"], full)
        self.assertIsNone(page2["next_cursor"])


if __name__ == "__main__":
    harness.main()
