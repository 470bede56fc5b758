"""The viewer's queue and live timeline reads (issue 12): GET /api/tickets filters by priority,
pending approval, business number and a search over message text that finds Urdu, Roman Urdu
and English words (each word somewhere in the ticket, any case, wildcards literal), with counts
per status; the timeline's resume_cursor continues after what was shown. When it fails, look
at ct_store_tickets_list and ct_store_timeline in server/store/store_tickets.c."""
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import harness  # noqa: E402
from harness import ServerTest, add_user, post_webhook, text_payload  # noqa: E402

URDU = "میرا آرڈر ابھی تک نہیں آیا"
ROMAN = "Mera order abhi tak nahi aya"


class Queue(ServerTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = add_user(cls.dsn, "sana", "supervisor", limit=100000)
        cls.agent = add_user(cls.dsn, "ali", "agent")
        ts = int(time.time()) - 600
        cls.t = {}
        seed = [("urdu", "923470000001", URDU, harness.PNID_A),
                ("roman", "923470000002", ROMAN, harness.PNID_A),
                ("refund", "923470000003", "I want a refund for the broken blender", harness.PNID_A),
                ("percent", "923470000004", "is the 50% sale_price real?", harness.PNID_A),
                ("other", "923470000005", "order status please", harness.PNID_B),
                ("split", "923470000006", "hello there", harness.PNID_A)]
        for i, (key, wa, body, pnid) in enumerate(seed):
            r = post_webhook(cls.srv, text_payload(f"wamid.q.{i}", wa, ts + i, body, pnid=pnid))
            assert r.status == 200, r
            cls.t[key] = int(harness.scalar(cls.dsn, "SELECT t.id FROM tickets t JOIN contacts c"
                                            " ON c.id = t.contact_id WHERE c.wa_id = :'w'", w=wa))
        r = post_webhook(cls.srv, text_payload("wamid.q.split2", "923470000006", ts + 20,
                                               "my parcel arrived DAMAGED"))
        assert r.status == 200, r

    def tickets(self, expect=200, **params):
        r = self.srv.get("/api/tickets?" + urllib.parse.urlencode(params), token=self.token)
        self.assertEqual(r.status, expect, r)
        return r.json()

    def ids(self, **params):
        return {t["id"] for t in self.tickets(**params)["tickets"]}

    def test_search_finds_urdu_roman_urdu_and_english(self):
        self.assertEqual(self.ids(q="آرڈر"), {self.t["urdu"]})
        self.assertEqual(self.ids(q="نہیں آیا"), {self.t["urdu"]})
        self.assertEqual(self.ids(q="nahi aya"), {self.t["roman"]})
        # any case; "order" is in three tickets, one of them on the other business number
        self.assertEqual(self.ids(q="ORDER"), {self.t["roman"], self.t["other"]})
        self.assertEqual(self.ids(q="order", phone_number_id=harness.PNID_B), {self.t["other"]})
        self.assertEqual(self.ids(q="refund blender"), {self.t["refund"]})
        # counts agree with the pages (they take another path to the same rule)
        for q in ("refund blender", "REFUND refund", "hello damaged", "ORDER", "آرڈر", "50%",
                  "hello refund"):
            page = self.tickets(q=q, limit=500)
            self.assertEqual(sum(page["counts"].values()), len(page["tickets"]), q)
        # every word must appear, but in any message of the ticket
        self.assertEqual(self.ids(q="hello damaged"), {self.t["split"]})
        self.assertEqual(self.ids(q="hello refund"), set())
        # % and _ are letters here, not wildcards
        self.assertEqual(self.ids(q="50%"), {self.t["percent"]})
        self.assertEqual(self.ids(q="%"), {self.t["percent"]})
        self.assertEqual(self.ids(q="sale_price"), {self.t["percent"]})
        self.assertEqual(self.ids(q="e_p"), {self.t["percent"]})
        self.assertEqual(self.ids(q="'; DROP TABLE messages; --"), set())
        self.assertEqual(self.one("SELECT count(*) > 0 FROM messages"), "t")

    def test_bad_filters_are_400(self):
        for params, code in (({"q": "   "}, "invalid_search"), ({"q": "a\x01b"}, "invalid_search"),
                             ({"priority": "asap"}, "invalid_priority"),
                             ({"pending_approval": "yes"}, "invalid_pending_approval")):
            r = self.srv.get("/api/tickets?" + urllib.parse.urlencode(params), token=self.token)
            self.assertEqual((r.status, r.json()["error"]["code"]), (400, code), params)

    def test_priority_pending_approval_and_counts(self):
        tid = self.t["refund"]
        r = self.srv.post(f"/api/tickets/{tid}/priority", {"priority": "urgent",
                                                           "reason": "second complaint"},
                          token=self.token)
        self.assertEqual(r.status, 200, r)
        r = self.srv.post(f"/api/tickets/{tid}/approvals",
                          {"kind": "refund", "amount_minor": 4500, "reason": "blender broken"},
                          token=self.agent)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.ids(priority="urgent"), {tid})
        self.assertEqual(self.ids(pending_approval="true"), {tid})
        self.assertNotIn(tid, self.ids(pending_approval="false"))
        # counts cover every status under the other filters, whatever status is asked for
        page = self.tickets(phone_number_id=harness.PNID_A, status="closed")
        self.assertEqual(page["tickets"], [])
        counts = page["counts"]
        self.assertEqual(set(counts), {"new", "open", "pending", "resolved", "closed"})
        self.assertEqual(sum(counts.values()), 5)
        self.assertEqual(self.tickets(q="other-words-nowhere")["counts"]["new"], 0)
        # decided: no longer pending
        aid = r.json()["id"]
        r = self.srv.post(f"/api/approvals/{aid}/decision", {"decision": "approved",
                                                             "reason": "photo shows damage"},
                          token=self.token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.ids(pending_approval="true"), set())

    def test_paging_keeps_filters(self):
        first = self.tickets(limit=2, phone_number_id=harness.PNID_A)
        self.assertEqual(len(first["tickets"]), 2)
        second = self.tickets(limit=2, phone_number_id=harness.PNID_A,
                              cursor=first["next_cursor"])
        # counts come with the first page only (they do not change as the reader pages on)
        self.assertIn("counts", first)
        self.assertNotIn("counts", second)
        seen = [t["id"] for t in first["tickets"] + second["tickets"]]
        self.assertEqual(len(set(seen)), 4)
        self.assertNotIn(self.t["other"], seen)

    def test_timeline_resume_cursor_returns_what_was_recorded_since(self):
        tid = self.t["roman"]
        page = self.srv.get(f"/api/tickets/{tid}/timeline", token=self.token).json()
        shown = len(page["items"])
        self.assertIsNone(page["next_cursor"])
        resume = page["resume_cursor"]
        self.assertRegex(resume, r"^s[1-9][0-9]*$")
        # nothing new: an empty page that resumes from the same place
        again = self.srv.get(f"/api/tickets/{tid}/timeline?cursor={resume}",
                             token=self.token).json()
        self.assertEqual((again["items"], again["resume_cursor"], again["next_cursor"]),
                         ([], resume, None))
        # staff act now, then a message Meta delivers late (written a minute ago, so it sorts
        # before that event): both come after the resume cursor
        r = self.srv.post(f"/api/tickets/{tid}/notes", {"body": "called the courier"},
                          token=self.token)
        self.assertEqual(r.status, 200, r)
        r = post_webhook(self.srv, text_payload("wamid.q.late", "923470000002",
                                                int(time.time()) - 60, "any update?"))
        self.assertEqual(r.status, 200)
        new = self.srv.get(f"/api/tickets/{tid}/timeline?cursor={resume}",
                           token=self.token).json()
        kinds = [(i["kind"], i.get("text") or i.get("action")) for i in new["items"]]
        self.assertIn(("message", "any update?"), kinds)
        self.assertIn(("event", "note.added"), kinds)
        self.assertIn(("event", "message.received"), kinds)
        self.assertEqual(len(new["items"]), 3, kinds)
        self.assertNotEqual(new["resume_cursor"], resume)
        full = self.srv.get(f"/api/tickets/{tid}/timeline", token=self.token).json()
        self.assertEqual(len(full["items"]), shown + 3)
        # a small limit pages through what came since
        one = self.srv.get(f"/api/tickets/{tid}/timeline?cursor={resume}&limit=1",
                           token=self.token).json()
        self.assertEqual([i.get("action") for i in one["items"]], ["note.added"])
        self.assertEqual(one["next_cursor"], one["resume_cursor"])
        two = self.srv.get(f"/api/tickets/{tid}/timeline?cursor={one['next_cursor']}&limit=1",
                           token=self.token).json()
        self.assertEqual(sorted(i["kind"] for i in two["items"]), ["event", "message"])
        self.assertIsNone(two["next_cursor"])
        for bad in ("s", "s-1", "s01", "x5"):
            r = self.srv.get(f"/api/tickets/{tid}/timeline?cursor={bad}", token=self.token)
            self.assertEqual(r.status, 400, bad)


class TimelineEnds(ServerTest):
    """A long ticket opens at its latest page (from=end) and reads backwards by prev_cursor;
    every page also leads forwards (next_cursor), and the pages join up without a gap."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = add_user(cls.dsn, "sana", "supervisor")
        r = post_webhook(cls.srv, text_payload("wamid.ends.1", "923470000050",
                                               int(time.time()) - 600, "where is my order"))
        assert r.status == 200, r
        cls.tid = int(harness.scalar(cls.dsn, "SELECT max(id) FROM tickets"))
        for i in range(9):
            r = cls.srv.post(f"/api/tickets/{cls.tid}/notes", {"body": f"note {i}"},
                             token=cls.token)
            assert r.status == 200, r

    def page(self, expect=200, **params):
        r = self.srv.get(f"/api/tickets/{self.tid}/timeline?" + urllib.parse.urlencode(params),
                         token=self.token)
        self.assertEqual(r.status, expect, r)
        return r.json()

    @staticmethod
    def keys(items):
        return [f"m{i['id']}" if i["kind"] == "message" else f"e{i['seq']}" for i in items]

    def test_latest_page_then_backwards_then_forwards(self):
        full = self.keys(self.page(limit=500)["items"])
        n = len(full)  # ticket.created, message.received, the message, 9 notes and the like
        self.assertGreaterEqual(n, 12)
        last = self.page(**{"from": "end", "limit": 5})
        self.assertEqual(self.keys(last["items"]), full[-5:])
        self.assertIsNone(last["next_cursor"])
        self.assertRegex(last["resume_cursor"], r"^s[1-9][0-9]*$")
        # backwards to the start: every item once, in order
        seen, page, pages = list(self.keys(last["items"])), last, [last]
        while page["prev_cursor"] is not None:
            self.assertTrue(page["prev_cursor"].startswith("b"), page["prev_cursor"])
            page = self.page(cursor=page["prev_cursor"], limit=5)
            seen = self.keys(page["items"]) + seen
            pages.append(page)
        self.assertEqual(seen, full)
        self.assertEqual(len(pages), (n + 4) // 5)
        self.assertEqual(len(pages[-1]["items"]), n - 5 * (len(pages) - 1))
        # a page read backwards leads forwards to what follows it
        after = self.page(cursor=pages[1]["next_cursor"], limit=5)
        self.assertEqual(self.keys(after["items"]), full[-5:])
        # and the first page, read from the start, has nothing before it
        first = self.page(limit=5)
        self.assertIsNone(first["prev_cursor"])
        second = self.page(cursor=first["next_cursor"], limit=5)
        back = self.page(cursor=second["prev_cursor"], limit=5)
        self.assertEqual(self.keys(back["items"]), full[:5])
        self.assertEqual(self.page(**{"from": "start", "limit": 5})["items"], first["items"])

    def test_a_new_item_shows_on_the_latest_page(self):
        before = self.page(**{"from": "end", "limit": 3})
        r = self.srv.post(f"/api/tickets/{self.tid}/notes", {"body": "latest word"},
                          token=self.token)
        self.assertEqual(r.status, 200, r)
        after = self.page(**{"from": "end", "limit": 3})
        self.assertEqual(after["items"][-1].get("note") or after["items"][-1].get("body"),
                         "latest word")
        self.assertEqual(self.keys(after["items"])[:2], self.keys(before["items"])[1:])

    def test_bad_from_and_cursors_are_400(self):
        last = self.page(**{"from": "end", "limit": 2})
        for params, code in (({"from": "middle"}, "invalid_from"),
                             ({"from": "end", "cursor": last["prev_cursor"]}, "invalid_from"),
                             ({"cursor": "b1_2_1_0"}, "invalid_cursor"),
                             ({"cursor": "b1_2_3"}, "invalid_cursor")):
            r = self.srv.get(f"/api/tickets/{self.tid}/timeline?" +
                             urllib.parse.urlencode(params), token=self.token)
            self.assertEqual((r.status, r.json()["error"]["code"]), (400, code), params)


class ActiveDays(ServerTest):
    """The queue's activity filter: active=yesterday means yesterday in CASETRAIL_TIMEZONE
    (here Asia/Karachi, UTC+5, where a day starts at 19:00 UTC the day before), computed by
    PostgreSQL; active_from/active_to take exact times."""

    server_env = {"CASETRAIL_TIMEZONE": "Asia/Karachi"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = add_user(cls.dsn, "sana", "supervisor")
        from datetime import datetime, timedelta
        from zoneinfo import ZoneInfo
        zone = ZoneInfo("Asia/Karachi")
        today = datetime.now(zone).date()
        cls.yesterday = today - timedelta(days=1)
        cls.y0 = datetime(cls.yesterday.year, cls.yesterday.month, cls.yesterday.day,
                          tzinfo=zone)
        cls.day_before = (today - timedelta(days=2)).isoformat()
        cls.t = {}
        # a: just after yesterday began there (still the day before in UTC); b: just before;
        # c: a few minutes ago
        for key, wa, when in (("a", "923470000061", cls.y0 + timedelta(minutes=30)),
                              ("b", "923470000062", cls.y0 - timedelta(minutes=30)),
                              ("c", "923470000063", datetime.now(zone) - timedelta(minutes=5))):
            r = post_webhook(cls.srv, text_payload(f"wamid.day.{key}", wa,
                                                   int(when.timestamp()), "hello"))
            assert r.status == 200, r
            cls.t[key] = int(harness.scalar(cls.dsn, "SELECT t.id FROM tickets t JOIN contacts c"
                                            " ON c.id = t.contact_id WHERE c.wa_id = :'w'",
                                            w=wa))

    def ids(self, expect=200, **params):
        r = self.srv.get("/api/tickets?" + urllib.parse.urlencode(params), token=self.token)
        self.assertEqual(r.status, expect, r)
        page = r.json()
        if expect != 200:
            return page["error"]["code"]
        got = {t["id"] for t in page["tickets"]}
        self.assertEqual(sum(page["counts"].values()), len(got), params)  # counts agree
        return got

    def test_days_are_the_configured_zones_days(self):
        t = self.t
        self.assertEqual(self.ids(active="yesterday"), {t["a"]})
        self.assertEqual(self.ids(active="today"), {t["c"]})
        self.assertEqual(self.ids(active=self.day_before), {t["b"]})
        self.assertEqual(self.ids(active=self.yesterday.isoformat()), {t["a"]})
        self.assertEqual(self.ids(active="7d"), set(t.values()))
        utc = self.y0.astimezone(__import__("datetime").timezone.utc)
        start = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        self.assertEqual(self.ids(active_from=start), {t["a"], t["c"]})
        self.assertEqual(self.ids(active_to=start), {t["b"]})
        end = (utc + __import__("datetime").timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.assertEqual(self.ids(active_from=start, active_to=end), {t["a"]})
        # a bare date is midnight in CASETRAIL_TIMEZONE, as everywhere in the API
        self.assertEqual(self.ids(active_from=self.yesterday.isoformat()), {t["a"], t["c"]})
        self.assertEqual(self.ids(active_to=self.yesterday.isoformat()), {t["b"]})

    def test_yesterdays_escalated_tickets(self):
        r = self.srv.post(f"/api/tickets/{self.t['a']}/escalate",
                          {"level": 1, "reason": "customer called twice"}, token=self.token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.ids(active="yesterday", escalated="true"), {self.t["a"]})
        self.assertEqual(self.ids(active="yesterday", escalated="false"), set())
        # the escalation itself is today's activity
        self.assertIn(self.t["a"], self.ids(active="today", escalated="true"))

    def test_bad_days_are_400(self):
        for params in ({"active": "tomorrow"}, {"active": "2026-02-30"},
                       {"active": "2026-2-3"}, {"active": "1969-12-31"},
                       {"active": "yesterday", "active_from": "2026-01-01"}):
            self.assertEqual(self.ids(expect=400, **params), "invalid_active", params)
        self.assertEqual(self.ids(expect=400, active_from="last week"), "invalid_active_from")
        self.assertEqual(self.ids(expect=400, active_to="2026-13-01"), "invalid_active_to")


class LiveStream:
    """GET /api/live read line by line on its own connection."""

    def __init__(self, srv, token=None, headers=None):
        import http.client
        self.conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        self.conn.request("GET", "/api/live", headers=h)
        self.sock = self.conn.sock  # http.client lets go of it once the answer says close
        self.r = self.conn.getresponse()

    def next_event(self, timeout=5):
        """(event, data) of the next event, skipping comments; None on timeout."""
        self.sock.settimeout(timeout)
        event, data = None, None
        try:
            while True:
                line = self.r.fp.readline().decode()
                if line == "":
                    return None
                line = line.rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and event is not None:
                    return event, data
        except OSError:
            return None

    def close(self):
        self.r.close()
        self.sock.close()
        self.conn.close()


class Live(ServerTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = add_user(cls.dsn, "lina", "qa")

    def test_a_commit_reaches_an_open_stream_within_a_second(self):
        s = LiveStream(self.srv, self.token)
        try:
            self.assertEqual(s.r.status, 200)
            self.assertEqual(s.r.getheader("content-type"), "text/event-stream; charset=utf-8")
            self.assertEqual(s.next_event(), ("hello", "{}"))
            t0 = time.monotonic()
            r = post_webhook(self.srv, text_payload("wamid.live.1", "923480000001",
                                                    int(time.time()), "is anyone there?"))
            self.assertEqual(r.status, 200)
            tid = int(self.one("SELECT max(id) FROM tickets"))
            got = s.next_event(timeout=2)
            self.assertEqual(got, ("change", '{"ticket_id":%d}' % tid))
            self.assertLess(time.monotonic() - t0, 1.0)
            # a change by staff too; a duplicate delivery changes nothing and says nothing
            agent = add_user(self.dsn, "lumi", "agent")
            r = self.srv.post(f"/api/tickets/{tid}/notes", {"body": "looking"}, token=agent)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(s.next_event(timeout=2), ("change", '{"ticket_id":%d}' % tid))
            r = post_webhook(self.srv, text_payload("wamid.live.1", "923480000001",
                                                    int(time.time()), "is anyone there?"))
            self.assertEqual(r.status, 200)
            self.assertIsNone(s.next_event(timeout=1.5))
        finally:
            s.close()


    def test_a_change_through_another_instance_reaches_this_stream(self):
        other = harness.Server(self.dsn, log_name="LiveOther").start()
        s = LiveStream(self.srv, self.token)
        try:
            self.assertEqual(s.next_event(), ("hello", "{}"))
            t0 = time.monotonic()
            r = post_webhook(other, text_payload("wamid.live.other", "923480000009",
                                                 int(time.time()), "sent to the other one"))
            self.assertEqual(r.status, 200)
            tid = int(self.one("SELECT t.id FROM tickets t JOIN contacts c ON c.id ="
                               " t.contact_id WHERE c.wa_id = '923480000009'"))
            self.assertEqual(s.next_event(timeout=2), ("change", '{"ticket_id":%d}' % tid))
            self.assertLess(time.monotonic() - t0, 1.0)
        finally:
            s.close()
            other.stop()


class LiveBounds(ServerTest):
    server_env = {"CASETRAIL_LIVE_MAX": "2"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = add_user(cls.dsn, "lior", "qa")

    def test_streams_need_auth_and_are_bounded(self):
        s = LiveStream(self.srv)
        self.assertEqual(s.r.status, 401)
        s.close()
        a, b = LiveStream(self.srv, self.token), LiveStream(self.srv, self.token)
        try:
            self.assertEqual((a.r.status, b.r.status), (200, 200))
            c = LiveStream(self.srv, self.token)
            self.assertEqual(c.r.status, 503)
            self.assertEqual(json.loads(c.r.read())["error"]["code"], "live_busy")
            c.close()
        finally:
            a.close()
            b.close()
        # a closed stream frees its place (noticed at its next write, within a ping or a change)
        deadline = time.time() + 20
        while time.time() < deadline:
            post_webhook(self.srv, text_payload(f"wamid.live.{time.time()}", "923480000002",
                                                int(time.time()), "ping"))
            d = LiveStream(self.srv, self.token)
            status = d.r.status
            d.close()
            if status == 200:
                break
            time.sleep(0.3)
        self.assertEqual(status, 200)


if __name__ == "__main__":
    harness.main()
