"""Reports for supervisors and coaching (issue 14): GET /api/reports/summary and
GET /api/agents/{name}/activity. A hand-built scenario in Asia/Karachi (UTC+5) with chosen
WhatsApp times either side of a local midnight, staff actions by two agents and a supervisor, a
reply through the fake Graph, echoes and priced status webhooks; every figure is checked against
the answer worked out by hand (times people acted at "now" are read back from the events and the
percentiles recomputed here). When it fails look at server/store/store_reports.c (the SQL of each
section), server/domain/reports.c (snapshot, access log) and server/http/api_reports.c
(parameters, roles)."""
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
import zoneinfo

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import harness  # noqa: E402
from fake_graph import FakeGraph  # noqa: E402
from harness import ServerTest, add_user, post_webhook, text_payload  # noqa: E402

KARACHI = zoneinfo.ZoneInfo("Asia/Karachi")
PNID_A, PNID_B = harness.PNID_A, harness.PNID_B
BROWSER_DIR = os.path.join(harness.ROOT, "tests", "browser")
SANA_PW = "sana-quiet-harbour-7"


def browser_missing():
    """What the browser step lacks here (as test_viewer.py checks it)."""
    missing = [m for m, ok in (("/usr/bin/chromium", os.path.exists("/usr/bin/chromium")),
                               ("node", shutil.which("node") is not None),
                               ("playwright-core", os.path.isdir(os.path.join(
                                   BROWSER_DIR, "node_modules", "playwright-core")))) if not ok]
    return missing


def change(field, value, pnid=PNID_A):
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "104857392016473", "changes": [{"field": field, "value": dict(
                {"messaging_product": "whatsapp",
                 "metadata": {"display_phone_number": "923211234500", "phone_number_id": pnid}},
                **value)}]}]}


def echo(wamid, to, ts, text):
    return change("smb_message_echoes", {"message_echoes": [
        {"from": "923211234500", "to": to, "id": wamid, "timestamp": str(ts), "type": "text",
         "text": {"body": text}}]})


def priced_status(wamid, status, ts, to, category, conversation):
    return change("messages", {"statuses": [
        {"id": wamid, "status": status, "timestamp": str(ts), "recipient_id": to,
         "conversation": {"id": conversation, "origin": {"type": category}},
         "pricing": {"billable": True, "pricing_model": "CBP", "category": category}}]})


def percentile_cont(values, q):
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    v = sorted(values)
    if not v:
        return None
    pos = q * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


class Reports(ServerTest):
    """Summary figures and activity for a known scenario, time-zone days, roles, bad input."""

    server_env = {"CASETRAIL_TIMEZONE": "Asia/Karachi"}

    @classmethod
    def setUpClass(cls):
        cls.graph = FakeGraph()
        cls.graph.start()
        cls.server_env = {"CASETRAIL_TIMEZONE": "Asia/Karachi", "WHATSAPP_GRAPH_URL": cls.graph.url,
                          "WHATSAPP_ACCESS_TOKEN": "test-token", "CASETRAIL_SEND_RATE": "0"}
        super().setUpClass()
        cls.asad = add_user(cls.dsn, "asad", "agent")
        cls.bushra = add_user(cls.dsn, "bushra", "agent")
        cls.sana = add_user(cls.dsn, "sana", "supervisor", limit=100000)
        cls.qadir = add_user(cls.dsn, "qadir", "qa")
        cls.adil = add_user(cls.dsn, "adil", "admin")
        harness.set_password(cls.dsn, "sana", SANA_PW)

        # day D is three days ago in Karachi; M is the midnight that ends it (UTC M - 5 h)
        today = datetime.datetime.now(KARACHI).date()
        cls.D = today - datetime.timedelta(days=3)
        cls.D1 = cls.D + datetime.timedelta(days=1)
        cls.D2 = cls.D + datetime.timedelta(days=2)
        cls.tomorrow = today + datetime.timedelta(days=1)
        M = int(datetime.datetime.combine(cls.D1, datetime.time(), KARACHI).timestamp())
        cls.M = M
        cls.t_created = {}

        def customer(wamid, wa, ts, text, pnid=PNID_A):
            r = post_webhook(cls.srv, text_payload(wamid, wa, ts, text, name="Cust " + wa[-1],
                                                   pnid=pnid))
            assert r.status == 200, r
            cls.t_created[wa] = ts
            return int(harness.scalar(cls.dsn, "SELECT t.id FROM tickets t JOIN contacts c ON"
                                      " c.id = t.contact_id WHERE c.wa_id = :'w'", w=wa))

        # T1 30 s before local midnight (day D), T2 30 s after (day D + 1), T3 a complaint,
        # T4 on the other business number
        cls.t1 = customer("wamid.r.1", "923000000001", M - 30, "hello, where is my order?")
        cls.t2 = customer("wamid.r.2", "923000000002", M + 30, "salam, order status please")
        cls.t3 = customer("wamid.r.3", "923000000003", M + 3600, "I want a refund now")
        cls.t4 = customer("wamid.r.4", "923000000004", M + 7200, "hi there", pnid=PNID_B)
        # T5 ten minutes ago: the one a reply may still go to (WhatsApp's 24-hour window)
        cls.t5_at = int(time.time()) - 600
        cls.t5 = customer("wamid.r.5", "923000000005", cls.t5_at, "thanks, one more question")
        # first responses by echo: 120 s on T1, 600 s on T2, 60 s on T5 (before the reply)
        for wamid, wa, ts in (("wamid.e.1", "923000000001", M - 30 + 120),
                              ("wamid.e.2", "923000000002", M + 30 + 600),
                              ("wamid.e.5", "923000000005", cls.t5_at + 60)):
            r = post_webhook(cls.srv, echo(wamid, wa, ts, "we are looking into it"))
            assert r.status == 200, r
        # what WhatsApp bills: one service conversation seen twice, one utility conversation
        for args in (("wamid.e.1", "sent", M + 100, "923000000001", "service", "conv-A"),
                     ("wamid.e.1", "delivered", M + 110, "923000000001", "service", "conv-A"),
                     ("wamid.e.2", "sent", M + 700, "923000000002", "utility", "conv-B")):
            r = post_webhook(cls.srv, priced_status(*args))
            assert r.status == 200, r

        def act(tid, what, body, token, status=200):
            r = cls.srv.post(f"/api/tickets/{tid}/{what}", body, token=token)
            assert r.status == status, (what, r)
            return r.json()

        act(cls.t1, "assign", {"assignee": "asad"}, cls.asad)
        act(cls.t1, "notes", {"body": "customer called twice"}, cls.asad)
        act(cls.t2, "escalate", {"level": 2, "reason": "VIP customer"}, cls.asad)
        big = act(cls.t2, "approvals", {"kind": "refund", "amount_minor": 5000, "reason": "late"},
                  cls.asad, 201)["id"]
        small = act(cls.t2, "approvals", {"kind": "credit", "amount_minor": 700, "reason": "sorry"},
                    cls.asad, 201)["id"]
        act(cls.t1, "assign", {"assignee": "bushra", "note": "shift ends"}, cls.asad)
        act(cls.t1, "approvals", {"kind": "refund", "amount_minor": 1200, "reason": "broken"},
            cls.bushra, 201)
        r = cls.srv.post(f"/api/approvals/{big}/decision", {"decision": "approved", "reason": "ok"},
                         token=cls.sana)
        assert r.status == 200, r
        r = cls.srv.post(f"/api/approvals/{small}/decision", {"decision": "denied", "reason": "no"},
                         token=cls.sana)
        assert r.status == 200, r
        act(cls.t1, "notes", {"body": "replacement sent"}, cls.bushra)
        act(cls.t1, "status", {"status": "resolved", "reason": "replaced"}, cls.bushra)
        act(cls.t1, "status", {"status": "open", "reason": "customer not happy"}, cls.sana)
        act(cls.t1, "status", {"status": "closed", "reason": "goodwill given"}, cls.sana)
        # a reply by asad on T5 (unassigned: he takes it), sent through the fake Graph
        r = cls.srv.post(f"/api/tickets/{cls.t5}/messages", {"text": "Your refund is on its way"},
                         token=cls.asad)
        assert r.status == 202, r
        deadline = time.time() + 15
        while harness.scalar(cls.dsn, "SELECT count(*) FROM events WHERE action ="
                             " 'message.sent'") != "1":
            assert time.time() < deadline, "the reply was not sent"
            time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.graph.stop()

    def summary(self, query, token=None, status=200):
        r = self.srv.get("/api/reports/summary?" + query, token=token or self.sana)
        self.assertEqual(r.status, status, r)
        return r.json()

    def access_rows(self):
        return int(self.one("SELECT count(*) FROM access_log"))

    def last_access(self):
        row = self.q("SELECT u.name, l.what, l.filters::text, l.rows, l.complete FROM access_log l"
                     " JOIN users u ON u.id = l.user_id ORDER BY l.id DESC LIMIT 1")[0]
        return row[0], row[1], json.loads(row[2]), int(row[3]), row[4] == "t"

    def event_time(self, tid, action, to_value):
        us = self.one("SELECT (extract(epoch FROM occurred_at) * 1000000)::bigint FROM events"
                      " WHERE ticket_id = :'t' AND action = :'a' AND to_value = :'v'"
                      " ORDER BY id LIMIT 1", t=tid, a=action, v=to_value)
        return int(us) / 1e6

    def test_summary_figures(self):
        s = self.summary(f"from={self.D}&to={self.tomorrow}")
        self.assertEqual(s["timezone"], "Asia/Karachi")
        # a bare date is the start of that day in Karachi, given back in UTC
        start = datetime.datetime.combine(self.D, datetime.time(), KARACHI)
        self.assertEqual(s["from"], start.astimezone(datetime.timezone.utc)
                         .strftime("%Y-%m-%dT%H:%M:%S.000000Z"))
        self.assertIsNone(s["phone_number_id"])
        self.assertEqual(s["tickets"], {"created": 5, "resolved": 1, "closed": 1, "reopened": 1})

        # first response: 60, 120 and 600 s (T3, T4 unanswered); resolution: T1 only
        resolved = self.event_time(self.t1, "status.changed", "resolved") - (self.M - 30)
        t = s["times"]
        self.assertEqual(t["tickets"], 5)
        self.assertEqual(t["first_response_seconds"], {"count": 3, "median": 120, "p90": 504})
        self.assertEqual(percentile_cont([60, 120, 600], 0.9), 504)
        self.assertEqual(t["resolution_seconds"]["count"], 1)
        self.assertAlmostEqual(t["resolution_seconds"]["median"], round(resolved, 3), places=3)
        self.assertAlmostEqual(t["resolution_seconds"]["p90"], round(resolved, 3), places=3)

        rule = int(self.one("SELECT id FROM complaint_rules WHERE pattern = 'refund'"))
        self.assertEqual(s["escalations"], {
            "raised": 2, "lowered": 0, "manual": 1, "by_level": {"1": 1, "2": 1},
            "by_rule": [{"rule_id": rule, "pattern": "refund", "count": 1}]})
        self.assertEqual(s["approvals"], [
            {"kind": "credit", "decision": "denied", "count": 1, "amount_minor": 700,
             "currency": "USD"},
            {"kind": "refund", "decision": "approved", "count": 1, "amount_minor": 5000,
             "currency": "USD"},
            {"kind": "refund", "decision": "pending", "count": 1, "amount_minor": 1200,
             "currency": "USD"}])

        def agent(user, role, handled, replies=0, notes=0, given=0, received=0, requested=0,
                  approved=0, denied=0):
            return {"user": user, "role": role, "tickets_handled": handled, "replies": replies,
                    "notes": notes, "handoffs_given": given, "handoffs_received": received,
                    "approvals_requested": requested, "approvals_approved": approved,
                    "approvals_denied": denied}
        self.assertEqual(s["agents"], [
            # T1 (assigned, noted, handed off), T2 (escalated, approvals), T5 (reply)
            agent("asad", "agent", 3, replies=1, notes=1, given=1, requested=2),
            # T1: received it, asked an approval, noted and resolved it
            agent("bushra", "agent", 1, notes=1, received=1, requested=1),
            # decided the two approvals on T2, reopened and closed T1
            agent("sana", "supervisor", 2, approved=1, denied=1)])
        # four customers' messages on number A, one on B; three echoes and one reply
        self.assertEqual(s["messages"], {"in": 5, "out": 4})
        self.assertEqual(s["conversations"], [
            {"category": "service", "conversations": 1, "statuses": 2},
            {"category": "utility", "conversations": 1, "statuses": 1}])
        days = s["by_day"]
        self.assertEqual(days[:3], [{"day": str(self.D), "created": 1},
                                    {"day": str(self.D1), "created": 3},
                                    {"day": str(self.D2), "created": 0}])
        self.assertEqual(len(days), (self.tomorrow - self.D).days)
        self.assertEqual(sum(d["created"] for d in days), 5)
        t5_day = datetime.datetime.fromtimestamp(self.t5_at, KARACHI).date()
        self.assertEqual(days[(t5_day - self.D).days], {"day": str(t5_day), "created": 1})
        self.assertEqual(self.last_access(),
                         ("sana", "report.summary",
                          {"from": str(self.D), "to": str(self.tomorrow),
                           "timezone": "Asia/Karachi"}, 1, True))

    def test_time_zone_day_boundary(self):
        # day D in Karachi holds T1 only (23:59:30); T2 at 00:00:30 is the next day's
        s = self.summary(f"from={self.D}&to={self.D1}")
        self.assertEqual(s["tickets"]["created"], 1)
        self.assertEqual(s["by_day"], [{"day": str(self.D), "created": 1}])
        self.assertEqual(s["messages"], {"in": 1, "out": 0})
        self.assertEqual(s["agents"], [])  # people acted today, not then
        self.assertEqual(s["times"]["first_response_seconds"],
                         {"count": 1, "median": 120, "p90": 120})
        s = self.summary(f"from={self.D1}&to={self.D2}")
        self.assertEqual(s["tickets"]["created"], 3)
        self.assertEqual(s["escalations"]["raised"], 1)  # the complaint rule; asad's is today
        # the same midnight written as a timestamp, with its own offset or in UTC
        for frm in (f"{self.D1}T00:00:00%2B05:00", f"{self.D}T19:00:00Z"):
            s = self.summary(f"from={frm}&to={self.D2}")
            self.assertEqual(s["tickets"]["created"], 3, frm)
        s = self.summary(f"from={self.D}T19:00:31Z&to={self.D2}")  # just after T2
        self.assertEqual(s["tickets"]["created"], 2)
        # in UTC, T1 to T4 all fall on day D (18:59:30 to 21:00): the zone is what splits them
        utc_d = datetime.datetime.fromtimestamp(self.M - 30, datetime.timezone.utc).date()
        self.assertEqual(utc_d, self.D)
        s = self.summary(f"from={utc_d}T00:00:00Z&to={self.D1}T00:00:00Z")
        self.assertEqual(s["tickets"]["created"], 4)
        self.assertEqual([d["created"] for d in s["by_day"]], [1, 3])  # still Karachi days

    def test_ticket_held_at_the_start_is_handled(self):
        # from just after asad's reply on T5: he still holds T5 (open) and acts no more; T1 is
        # closed by then and counts for nobody
        frm = self.one("SELECT to_char((occurred_at + interval '1 microsecond') AT TIME ZONE"
                       " 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM events"
                       " WHERE action = 'message.queued'")
        s = self.summary(f"from={frm}&to={self.tomorrow}")
        self.assertEqual(s["agents"], [
            {"user": "asad", "role": "agent", "tickets_handled": 1, "replies": 0, "notes": 0,
             "handoffs_given": 0, "handoffs_received": 0, "approvals_requested": 0,
             "approvals_approved": 0, "approvals_denied": 0}])
        self.assertEqual(s["tickets"], {"created": 0, "resolved": 0, "closed": 0, "reopened": 0})

    def test_phone_number_filter(self):
        s = self.summary(f"from={self.D}&to={self.tomorrow}&phone_number_id={PNID_B}")
        self.assertEqual(s["phone_number_id"], PNID_B)
        self.assertEqual(s["tickets"], {"created": 1, "resolved": 0, "closed": 0, "reopened": 0})
        self.assertEqual(s["messages"], {"in": 1, "out": 0})
        self.assertEqual(s["agents"], [])
        self.assertEqual(s["approvals"], [])
        s = self.summary(f"from={self.D}&to={self.tomorrow}&phone_number_id={PNID_A}")
        self.assertEqual(s["tickets"]["created"], 4)
        self.assertEqual(s["messages"], {"in": 4, "out": 4})
        self.assertEqual(self.last_access()[2]["phone_number_id"], PNID_A)

    def test_bad_input_and_roles(self):
        before = self.access_rows()
        ok = f"from={self.D}&to={self.tomorrow}"
        for query, code in ((ok + "&foo=1", "unknown_parameter"),
                            (ok + "&FROM=2026-01-01", "unknown_parameter"),
                            (ok + f"&from={self.D}", "duplicate_parameter"),
                            (f"from=2026-13-01&to={self.tomorrow}", "invalid_time"),
                            (f"from={self.D}&to=yesterday", "invalid_time"),
                            (f"from={self.D}", "range_required"),
                            (f"to={self.D}", "range_required"),
                            (f"from={self.tomorrow}&to={self.D}", "range_reversed"),
                            ("from=2024-01-01&to=2026-01-01", "range_too_long"),
                            (ok + "&phone_number_id=abc", "invalid_phone_number_id")):
            r = self.srv.get("/api/reports/summary?" + query, token=self.qadir)
            self.assertEqual(r.status, 400, (query, r))
            self.assertEqual(r.json()["error"]["code"], code, query)
            self.assertTrue(r.json()["error"]["message"])
        r = self.srv.get("/api/reports/summary?" + ok, token=self.asad)
        self.assertEqual((r.status, r.json()["error"]["code"]), (403, "forbidden"))
        r = self.srv.get("/api/reports/summary?" + ok)
        self.assertEqual(r.status, 401)
        # nothing refused was recorded
        self.assertEqual(self.access_rows(), before)
        for token in (self.qadir, self.adil):
            self.summary(ok, token=token)
        self.assertEqual(self.access_rows(), before + 2)

    def activity(self, name, query, token, limit=None):
        items, cursor = [], None
        while True:
            q = query + (f"&limit={limit}" if limit else "") + (f"&cursor={cursor}" if cursor else "")
            r = self.srv.get(f"/api/agents/{name}/activity?{q}", token=token)
            self.assertEqual(r.status, 200, r)
            body = r.json()
            self.assertEqual(body["user"], name)
            items += body["events"]
            cursor = body["next_cursor"]
            if cursor is None:
                return items

    def test_agent_activity(self):
        q = f"from={self.D}&to={self.tomorrow}"
        items = self.activity("asad", q, self.sana, limit=3)
        self.assertEqual([(e["action"], e["ticket_id"]) for e in items], [
            ("assignment.changed", self.t1), ("status.changed", self.t1),
            ("note.added", self.t1), ("escalation.raised", self.t2),
            ("approval.requested", self.t2), ("approval.requested", self.t2),
            ("assignment.changed", self.t1),
            ("assignment.changed", self.t5), ("status.changed", self.t5),
            ("message.queued", self.t5)])
        self.assertEqual((items[0]["from"], items[0]["to"]), (None, "asad"))
        self.assertEqual(items[2]["note"], "customer called twice")
        self.assertEqual((items[3]["from"], items[3]["to"], items[3]["reason"]),
                         ("0", "2", "VIP customer"))
        self.assertEqual(items[4]["data"]["amount_minor"], 5000)
        self.assertEqual((items[6]["from"], items[6]["to"], items[6]["note"]),
                         ("asad", "bushra", "shift ends"))
        self.assertNotIn("body", items[9])  # the reply's text stays on the ticket
        times = [e["at"] for e in items]
        self.assertEqual(times, sorted(times))
        # one page is the same list
        self.assertEqual(self.activity("asad", q, self.qadir), items)
        self.assertEqual(self.last_access(), ("qadir", "agent.activity",
                                              {"agent": "asad", "from": str(self.D),
                                               "to": str(self.tomorrow),
                                               "timezone": "Asia/Karachi"}, 10, True))
        # the supervisor's decisions are her activity
        sana = self.activity("sana", q, self.adil)
        self.assertEqual([e["action"] for e in sana],
                         ["approval.decided", "approval.decided", "status.changed",
                          "status.changed"])
        self.assertEqual([e["to"] for e in sana], ["approved", "denied", "open", "closed"])
        # nothing on day D: people acted today
        self.assertEqual(self.activity("asad", f"from={self.D}&to={self.D1}", self.sana), [])

    def test_activity_roles_and_bad_input(self):
        q = f"from={self.D}&to={self.tomorrow}"
        # an agent reads their own, not a colleague's
        self.assertEqual([e["action"] for e in self.activity("bushra", q, self.bushra)],
                         ["approval.requested", "note.added", "status.changed"])
        r = self.srv.get(f"/api/agents/asad/activity?{q}", token=self.bushra)
        self.assertEqual((r.status, r.json()["error"]["code"]), (403, "forbidden"))
        before = self.access_rows()
        r = self.srv.get(f"/api/agents/nobody/activity?{q}", token=self.sana)
        self.assertEqual((r.status, r.json()["error"]["code"]), (404, "user_not_found"))
        r = self.srv.get(f"/api/agents/.bad/activity?{q}", token=self.sana)
        self.assertEqual((r.status, r.json()["error"]["code"]), (404, "user_not_found"))
        for query, code in ((q + "&phone_number_id=1", "unknown_parameter"),
                            (q + "&limit=501", "invalid_limit"),
                            (q + "&cursor=zzz", "invalid_cursor"),
                            (f"from={self.tomorrow}&to={self.D}", "range_reversed"),
                            ("to=2026-01-01", "range_required")):
            r = self.srv.get(f"/api/agents/asad/activity?{query}", token=self.sana)
            self.assertEqual(r.status, 400, (query, r))
            self.assertEqual(r.json()["error"]["code"], code, query)
        self.assertEqual(self.access_rows(), before)

    def test_viewer_pages(self):
        """The report and activity pages in headless chromium (tests/browser/reports.test.mjs)."""
        missing = browser_missing()
        if missing:
            if os.environ.get("CASETRAIL_REQUIRE_BROWSER"):
                self.fail(f"CASETRAIL_REQUIRE_BROWSER is set but these are missing: {missing}")
            self.skipTest(f"{', '.join(missing)} missing (run tests/browser/setup)")
        # asad acted today: the range runs from day D up to tomorrow
        frm, to = str(self.D), str(self.tomorrow)
        days = self.summary(f"from={frm}&to={to}")["by_day"]
        artifacts = os.path.join(os.path.dirname(os.path.abspath(
            harness.env_or_die("CASETRAIL_BIN"))), "artifacts")
        env = dict(os.environ, CASETRAIL_URL=f"http://127.0.0.1:{self.srv.port}",
                   CASETRAIL_SUPERVISOR="sana", CASETRAIL_SUPERVISOR_PASSWORD=SANA_PW,
                   CASETRAIL_ARTIFACTS=artifacts,
                   CASETRAIL_SEED=json.dumps({"from": frm, "to": to, "days": days,
                                              "agent": "asad", "agent_actions": 10}))
        r = subprocess.run(["node", os.path.join(BROWSER_DIR, "reports.test.mjs")],
                           cwd=harness.ROOT, env=env, capture_output=True, text=True, timeout=90)
        print(r.stdout)
        self.assertEqual(r.returncode, 0, f"{r.stdout}\n{r.stderr}\nserver log: {self.srv.log_path}")


if __name__ == "__main__":
    harness.main()
