"""Exports for finance and QA (issue 14): GET /api/approvals?format=csv and GET /api/events (JSON
pages with keyset paging, or CSV), the access log of every export and page, and
GET /api/access-log for admins. CSV is parsed back with Python's csv module and compared cell by
cell, and byte for byte with what Python's own writer makes of the expected cells. A large export
is streamed while the server's peak RSS is watched, and one is cut off by its client. When it
fails look at server/http/api_exports.c (parameters, CSV writer), server/domain/exports.c (the
access log) and server/store/store_export.c (SQL, cursor)."""
import csv
import datetime
import http.client
import io
import json
import os
import socket
import sys
import time
import zoneinfo

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import bulk_events  # noqa: E402
import harness  # noqa: E402
from harness import ServerTest, add_user, post_webhook, text_payload  # noqa: E402

KARACHI = zoneinfo.ZoneInfo("Asia/Karachi")

# every kind of cell a spreadsheet could misread: separators, quotes, line breaks, other
# scripts, and each formula prefix (= + - @ TAB CR), alone and combined
TRICKY = [
    "plain words",
    "comma, inside",
    'say "hello"',
    "two\nlines",
    "crlf\r\nline",
    "emoji 🙂📦 done",
    "میرا آرڈر ٹوٹا ہوا آیا، پیسے واپس",
    '=HYPERLINK("http://evil.example","click")',
    "+92 300 1234567",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=cmd|' /C calc'!A0",
    "\r=1+1",
    '=1,2"3"\n4',
]

APPROVAL_COLUMNS = ["approval_id", "ticket_id", "contact_name", "contact_number", "kind",
                    "amount_minor", "amount", "currency", "requested_by", "request_reason",
                    "requested_at", "decision", "decided_by", "decision_reason", "decided_at"]
EVENT_COLUMNS = ["event_id", "ticket_id", "seq", "occurred_at", "recorded_at", "actor_type",
                 "actor_id", "actor_name", "action", "from", "to", "reason", "data", "hash"]


def neutral(s):
    """What a text cell must read back as: empty for none, an apostrophe before a formula."""
    if s is None or s == "":
        return ""
    return "'" + s if s[0] in "=+-@\t\r" else s


def in_zone(utc, zone):
    """An API time (UTC, Z) as the export writes it: ISO 8601 in zone with +HH:MM."""
    if utc is None:
        return ""
    t = datetime.datetime.fromisoformat(utc.replace("Z", "+00:00")).astimezone(zone)
    return t.isoformat(timespec="microseconds")


def python_csv(rows, bom=False):
    """What Python's csv writer makes of rows with RFC 4180's CRLF: the bytes expected."""
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return ("\ufeff" if bom else "").encode() + out.getvalue().encode()


def parse(body):
    """The rows of a CSV body (UTF-8, BOM allowed), parsed by Python's csv module."""
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def pages(test, path, token, key):
    """Every item of a paged list, following next_cursor; and how many pages it took."""
    items, cursor, n = [], None, 0
    while True:
        sep = "&" if "?" in path else "?"
        r = test.srv.get(path + (f"{sep}cursor={cursor}" if cursor else ""), token=token)
        test.assertEqual(r.status, 200, r)
        body = r.json()
        items += body[key]
        n += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, n


class Exports(ServerTest):
    """CSV content and format, roles, bad input and time zones, in Asia/Karachi."""

    server_env = {"CASETRAIL_TIMEZONE": "Asia/Karachi"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agent = add_user(cls.dsn, "ayesha", "agent")
        cls.sup = add_user(cls.dsn, "bilal", "supervisor", limit=10**9)
        cls.qa = add_user(cls.dsn, "qamar", "qa")
        cls.admin = add_user(cls.dsn, "root.admin", "admin")
        ts = int(time.time()) - 3600
        cls.aids = []
        for i, text in enumerate(TRICKY):
            wa = f"92349{i:07d}"
            r = post_webhook(cls.srv, text_payload(f"wamid.x.{i}", wa, ts + i, "order help", name=text))
            assert r.status == 200, r
            tid = int(harness.scalar(cls.dsn, "SELECT t.id FROM tickets t JOIN contacts c"
                                     " ON c.id = t.contact_id WHERE c.wa_id = :'w'", w=wa))
            r = cls.srv.post(f"/api/tickets/{tid}/approvals",
                             {"kind": "refund", "amount_minor": 150000 + i, "reason": text},
                             token=cls.agent)
            assert r.status == 201, r
            aid = r.json()["id"]
            cls.aids.append(aid)
            if i % 3 != 2:  # some stay pending
                r = cls.srv.post(f"/api/approvals/{aid}/decision",
                                 {"decision": "approved" if i % 2 else "denied", "reason": text},
                                 token=cls.sup)
                assert r.status == 200, r
        # one without an amount
        r = cls.srv.post(f"/api/tickets/{tid}/approvals",
                         {"kind": "exception", "reason": "policy exception"}, token=cls.agent)
        assert r.status == 201, r

    def last_access(self):
        row = self.q("SELECT u.name, l.what, l.filters::text, l.rows, l.complete FROM access_log l"
                     " JOIN users u ON u.id = l.user_id ORDER BY l.id DESC LIMIT 1")[0]
        return row[0], row[1], json.loads(row[2]), int(row[3]), row[4] == "t"

    def expected_approvals(self, query=""):
        """The JSON list (any role) turned into the rows the CSV must hold, in its order."""
        items, _ = pages(self, "/api/approvals?limit=500" + query, self.qa, "approvals")
        rows = []
        for a in items:
            t = self.srv.get(f"/api/tickets/{a['ticket_id']}", token=self.qa).json()
            amount = a["amount_minor"]
            rows.append([str(a["id"]), str(a["ticket_id"]), neutral(t["contact"]["name"]),
                         t["contact"]["wa_id"], a["kind"],
                         "" if amount is None else str(amount),
                         "" if amount is None else f"{amount // 100}.{amount % 100:02d}",
                         a["currency"] or "", a["requested_by"], neutral(a["reason"]),
                         in_zone(a["requested_at"], KARACHI), a["status"], a["decided_by"] or "",
                         neutral(a["decision_reason"]), in_zone(a["decided_at"], KARACHI)])
        return rows

    def test_approvals_csv_cell_by_cell(self):
        r = self.srv.get("/api/approvals?format=csv", token=self.sup)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], "text/csv; charset=utf-8")
        today = datetime.datetime.now(KARACHI).strftime("%Y%m%d")
        self.assertEqual(r.headers["content-disposition"],
                         f'attachment; filename="approvals-{today}.csv"')
        self.assertEqual(r.headers.get("transfer-encoding"), "chunked")
        self.assertNotIn("content-length", r.headers)
        self.assertFalse(r.body.startswith(b"\xef\xbb\xbf"))
        rows = parse(r.body)
        want = self.expected_approvals()
        self.assertEqual(rows[0], APPROVAL_COLUMNS)
        self.assertEqual(len(rows), len(want) + 1)
        for got, exp in zip(rows[1:], want):
            for name, g, e in zip(APPROVAL_COLUMNS, got, exp):
                self.assertEqual(g, e, f"approval {exp[0]} column {name}")
        # and exactly the bytes an RFC 4180 writer makes of them (CRLF, minimal quoting)
        self.assertEqual(r.body, python_csv([APPROVAL_COLUMNS] + want))
        # each tricky text came back neutralised, whatever column it was in
        reasons = {row[9] for row in rows[1:]}
        for text in TRICKY:
            self.assertIn(neutral(text), reasons)
        self.assertIn("'=HYPERLINK(\"http://evil.example\",\"click\")", reasons)
        self.assertIn("'\r=1+1", reasons)
        # amounts of ours are numbers, never prefixed; one without an amount is empty
        self.assertTrue(all(row[5] == "" or row[5].isdigit() for row in rows[1:]))
        self.assertIn(["1500.13", "USD"], [row[6:8] for row in rows[1:]])
        self.assertEqual(self.last_access(), ("bilal", "approvals.csv", {"timezone": "Asia/Karachi"},
                                              len(want), True))

    def test_bom_and_filters(self):
        r = self.srv.get("/api/approvals?format=csv&bom=1&status=approved&kind=refund", token=self.qa)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.body.startswith(b"\xef\xbb\xbfapproval_id,"))
        want = self.expected_approvals("&status=approved&kind=refund")
        self.assertTrue(want and all(w[11] == "approved" for w in want))
        self.assertEqual(r.body, python_csv([APPROVAL_COLUMNS] + want, bom=True))
        self.assertEqual(self.last_access(),
                         ("qamar", "approvals.csv",
                          {"status": "approved", "kind": "refund", "timezone": "Asia/Karachi"},
                          len(want), True))
        # bom=0 is the default; an empty result is still a header row
        r = self.srv.get("/api/approvals?format=csv&bom=0&requested_by=nobody", token=self.admin)
        self.assertEqual(r.body, python_csv([APPROVAL_COLUMNS]))
        self.assertEqual(self.last_access()[3:], (0, True))

    def test_events_csv_matches_the_json_pages(self):
        events, _ = pages(self, "/api/events?limit=7", self.sup, "events")
        self.assertGreater(len(events), 3 * len(TRICKY))
        r = self.srv.get("/api/events?format=csv", token=self.sup)
        self.assertEqual(r.status, 200, r)
        self.assertIn('filename="events-', r.headers["content-disposition"])
        rows = parse(r.body)
        self.assertEqual(rows[0], EVENT_COLUMNS)
        self.assertEqual([int(x[0]) for x in rows[1:]], [e["id"] for e in events])
        for got, e in zip(rows[1:], events):
            want = [str(e["id"]), str(e["ticket_id"]), str(e["seq"]), in_zone(e["at"], KARACHI),
                    in_zone(e["recorded_at"], KARACHI), e["actor"]["type"], e["actor"]["id"],
                    neutral(e["actor"]["name"]), e["action"], neutral(e["from"]),
                    neutral(e["to"]), neutral(e["reason"])]
            self.assertEqual(got[:12], want, f"event {e['id']}")
            self.assertEqual(json.loads(got[12]) if got[12] else None, e["data"])
            if got[12]:  # compact: no white space between items
                self.assertEqual(got[12], json.dumps(json.loads(got[12]), separators=(",", ":"),
                                                     ensure_ascii=False))
            self.assertRegex(got[13], "^[0-9a-f]{64}$")
            self.assertEqual(got[13], e["hash"])
        # customers' names (actor) and staff reasons with every tricky text, neutralised
        names = {row[7] for row in rows[1:]}
        reasons = {row[11] for row in rows[1:]}
        for text in TRICKY:
            self.assertIn(neutral(text), names)
            self.assertIn(neutral(text), reasons)
        self.assertEqual(self.last_access()[:2], ("bilal", "events.csv"))
        self.assertEqual(self.last_access()[3:], (len(events), True))

    def test_roles(self):
        for path in ("/api/approvals?format=csv", "/api/events", "/api/events?format=csv",
                     "/api/access-log"):
            r = self.srv.get(path, token=self.agent)
            self.assertEqual((r.status, r.json()["error"]["code"]), (403, "forbidden"), path)
        # agents still read the approvals list itself
        self.assertEqual(self.srv.get("/api/approvals", token=self.agent).status, 200)
        for token in (self.sup, self.qa, self.admin):
            self.assertEqual(self.srv.get("/api/events?format=csv", token=token).status, 200)
            self.assertEqual(self.srv.get("/api/approvals?format=csv", token=token).status, 200)
        for token in (self.sup, self.qa):
            self.assertEqual(self.srv.get("/api/access-log", token=token).status, 403)
        self.assertEqual(self.srv.get("/api/access-log", token=self.admin).status, 200)
        self.assertEqual(self.srv.get("/api/events?format=csv").status, 401)

    def test_bad_input_is_400_and_records_nothing(self):
        before = self.one("SELECT count(*) FROM access_log")
        cases = [
            ("/api/approvals?format=csv&from=2026-13-01", "invalid_time"),
            ("/api/approvals?format=csv&from=yesterday", "invalid_time"),
            ("/api/approvals?format=csv&to=2026-03-01T10:00:00", "invalid_time"),
            ("/api/approvals?format=csv&to=2026-02-30", "invalid_time"),
            ("/api/approvals?format=csv&colour=red", "unknown_parameter"),
            ("/api/approvals?colour=red", "unknown_parameter"),
            ("/api/approvals?format=csv&status=approved&status=denied", "duplicate_parameter"),
            ("/api/approvals?FORMAT=csv", "unknown_parameter"),
            ("/api/approvals?form%61t=csv", "unknown_parameter"),
            ("/api/approvals?format=xml", "invalid_format"),
            ("/api/approvals?format=csv&bom=2", "invalid_bom"),
            ("/api/approvals?bom=1", "bom_without_csv"),
            ("/api/approvals?format=csv&limit=10", "paging_in_csv"),
            ("/api/approvals?format=csv&cursor=a5", "paging_in_csv"),
            ("/api/approvals?format=csv&status=maybe", "invalid_status"),
            ("/api/approvals?format=csv&requested_by=%FF%FE", "invalid_user"),
            ("/api/approvals?decided_by=a%20b", "invalid_user"),
            ("/api/events?from=2026-01-01T00:00:00", "invalid_time"),
            ("/api/events?format=csv&to=tomorrow", "invalid_time"),
            ("/api/events?ticket=abc", "invalid_ticket"),
            ("/api/events?ticket=0", "invalid_ticket"),
            ("/api/events?actor=%3Dcmd", "invalid_actor"),
            ("/api/events?action=DROP%20TABLE", "invalid_action"),
            ("/api/events?cursor=a12", "invalid_cursor"),
            ("/api/events?cursor=e1_0", "invalid_cursor"),
            ("/api/events?limit=501", "invalid_limit"),
            ("/api/events?format=csv&limit=5", "paging_in_csv"),
            ("/api/events?tickets=1", "unknown_parameter"),
            ("/api/access-log?user=x&user=y", "duplicate_parameter"),
            ("/api/access-log?from=2026-1-1", "invalid_time"),
            ("/api/access-log?cursor=e1_1", "invalid_cursor"),
            ("/api/access-log?format=csv", "unknown_parameter"),
        ]
        for path, code in cases:
            r = self.srv.get(path, token=self.admin)
            self.assertEqual(r.status, 400, (path, r))
            self.assertEqual(r.headers["content-type"], "application/json", path)
            err = r.json()["error"]
            self.assertEqual(err["code"], code, path)
            self.assertTrue(err["message"], path)
        self.assertEqual(self.one("SELECT count(*) FROM access_log"), before)

    def test_days_are_karachi_days_and_to_is_exclusive(self):
        # three approvals moved to either side of midnight in Karachi (UTC+5) on 2 March 2026
        a, b, c = self.aids[:3]
        for aid, at in ((a, "2026-03-01 18:59:59.999999+00"), (b, "2026-03-01 19:00:00+00"),
                        (c, "2026-03-02 18:59:59.999999+00")):
            self.q("UPDATE approvals SET requested_at = :'at' WHERE id = :'id'", at=at, id=aid)
        try:
            def ids(query, token=self.qa):
                rows = parse(self.srv.get("/api/approvals?format=csv&" + query, token=token).body)
                js = self.srv.get("/api/approvals?limit=500&" + query, token=token).json()
                self.assertEqual([int(x[0]) for x in rows[1:]], [x["id"] for x in js["approvals"]])
                return sorted(int(x[0]) for x in rows[1:]), rows
            got, rows = ids("from=2026-03-02&to=2026-03-03")
            self.assertEqual(got, sorted([b, c]))
            times = {int(x[0]): x[10] for x in rows[1:]}
            self.assertEqual(times[b], "2026-03-02T00:00:00.000000+05:00")
            self.assertEqual(times[c], "2026-03-02T23:59:59.999999+05:00")
            self.assertEqual(ids("from=2026-03-01&to=2026-03-02")[0], [a])  # to is exclusive
            self.assertEqual(ids("to=2026-03-02")[0], [a])
            # a full timestamp keeps its own offset
            self.assertEqual(ids("from=2026-03-01T19:00:00Z&to=2026-03-02T00:00:00%2B05:00")[0], [])
            self.assertEqual(ids("from=2026-03-01T19:00:00Z&to=2026-03-01T19:00:00.000001Z")[0], [b])
            self.assertEqual(self.last_access()[2]["to"], "2026-03-01T19:00:00.000001Z")
        finally:
            self.q("UPDATE approvals SET requested_at = now() WHERE id IN (:'a', :'b', :'c')",
                   a=a, b=b, c=c)


class EventPaging(ServerTest):
    """Keyset paging of events across tickets: every event exactly once, under each filter,
    the same rows as the CSV; each page in the access log. Default zone: UTC."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sup = add_user(cls.dsn, "sana", "supervisor", limit=10**9)
        cls.admin = add_user(cls.dsn, "root.admin", "admin")
        bulk_events.load(cls.dsn, 1234, per_ticket=7, approvals=50)
        cls.agent = add_user(cls.dsn, "late.agent", "agent")
        # a few real events on top, some at the very same time as a bulk one (ties by id)
        r = post_webhook(cls.srv, text_payload("wamid.p.1", "923450000001", 1735693200, "hi"))
        assert r.status == 200, r

    def sql_ids(self, where="true"):
        return [int(x[0]) for x in self.q(
            f"SELECT id FROM events e WHERE ticket_id IS NOT NULL AND {where}"
            " ORDER BY occurred_at, id")]

    def csv_ids(self, query):
        r = self.srv.get("/api/events?format=csv" + query, token=self.sup)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.body.endswith(b"\r\n"))
        return [int(x[0]) for x in parse(r.body)[1:]]

    def test_every_event_exactly_once(self):
        want = self.sql_ids()
        self.assertGreater(len(want), 1234)
        before = int(self.one("SELECT count(*) FROM access_log"))
        got, n = pages(self, "/api/events?limit=100", self.sup, "events")
        ids = [e["id"] for e in got]
        self.assertEqual(ids, want)
        self.assertEqual(len(set(ids)), len(ids))
        self.assertEqual(n, (len(want) + 99) // 100)
        # one access-log row a page, with its rows
        logged = self.q("SELECT what, rows, filters::text FROM access_log WHERE id > "
                        "(SELECT coalesce(max(id), 0) FROM access_log) - :'n' ORDER BY id", n=n)
        self.assertEqual(int(self.one("SELECT count(*) FROM access_log")), before + n)
        self.assertEqual(sum(int(r[1]) for r in logged), len(want))
        self.assertTrue(all(r[0] == "events" and json.loads(r[2]) == {"timezone": "UTC"}
                            for r in logged))
        self.assertEqual(self.csv_ids(""), want)
        # two events at the very same time (a ticket opens at its first message's time): a page
        # boundary between them loses neither
        tied = self.sql_ids("occurred_at = '2025-01-01T01:00:00Z'")
        self.assertEqual(len(tied), 2)
        got, n = pages(self, "/api/events?limit=1&from=2025-01-01T01:00:00Z"
                             "&to=2025-01-01T01:00:00.000001Z", self.sup, "events")
        self.assertEqual(([e["id"] for e in got], n), (tied, 2))

    def test_filters_page_and_export_the_same_rows(self):
        tid = int(self.one("SELECT min(id) FROM tickets")) + 3
        uid = self.one("SELECT id FROM users WHERE name = 'bulk.agent.4'")
        cases = [
            ("&actor=bulk.agent.4", f"actor_type = 'agent' AND actor_id = '{uid}'"),
            ("&action=status.changed", "action = 'status.changed'"),
            (f"&ticket={tid}", f"ticket_id = {tid}"),
            ("&from=2025-03-01&to=2025-04-01",
             "occurred_at >= '2025-03-01T00:00:00Z' AND occurred_at < '2025-04-01T00:00:00Z'"),
            ("&from=2025-06-01T12:00:00%2B05:00&action=note.added&actor=bulk.agent.2",
             "occurred_at >= '2025-06-01T07:00:00Z' AND action = 'note.added' AND actor_id ="
             " (SELECT id::text FROM users WHERE name = 'bulk.agent.2')"),
            ("&actor=nobody", "false"),
            ("&ticket=999999999", "false"),
        ]
        for query, where in cases:
            want = self.sql_ids(where)
            got, _ = pages(self, "/api/events?limit=37" + query, self.sup, "events")
            self.assertEqual([e["id"] for e in got], want, query)
            self.assertEqual(self.csv_ids(query), want, query)
        self.assertEqual(json.loads(self.one(
            "SELECT filters::text FROM access_log WHERE what = 'events.csv' ORDER BY id DESC LIMIT 1")),
            {"ticket": "999999999", "timezone": "UTC"})
        # UTC with Z in JSON, +00:00 in CSV (the zone is UTC by default)
        r = self.srv.get("/api/events?format=csv&ticket=%d" % tid, token=self.sup)
        self.assertTrue(parse(r.body)[1][3].endswith("+00:00"))
        self.assertTrue(self.srv.get("/api/events?limit=1", token=self.sup).json()["events"][0]
                        ["at"].endswith("Z"))

    def test_nothing_leaves_whole_unrecorded(self):
        # the access log refuses this export's row: the rows went out, but the body's last chunk
        # is withheld, so the client cannot take the file for a whole one; a page is not sent
        self.q("CREATE FUNCTION refuse_log() RETURNS trigger LANGUAGE plpgsql AS"
               " $$BEGIN RAISE EXCEPTION 'no room in the log'; END$$;"
               " CREATE TRIGGER refuse_log BEFORE INSERT ON access_log FOR EACH ROW"
               " WHEN (NEW.what IN ('events.csv', 'events')) EXECUTE FUNCTION refuse_log()")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=60)
            conn.request("GET", "/api/events?format=csv&action=ticket.created",
                         headers={"Authorization": "Bearer " + self.sup})
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            with self.assertRaises(http.client.IncompleteRead) as cut:
                r.read()
            conn.close()
            rows = parse(cut.exception.partial)
            self.assertEqual(len(rows) - 1, len(self.sql_ids("action = 'ticket.created'")))
            r = self.srv.get("/api/events?limit=5", token=self.sup)
            self.assertEqual((r.status, r.json()["error"]["code"]), (500, "internal"))
            self.assertNotIn("events", r.json())
        finally:
            self.q("DROP TRIGGER refuse_log ON access_log; DROP FUNCTION refuse_log()")
        self.assertIn("not recorded in the access log, so its end is withheld", self.srv.read_log())
        self.assertEqual(self.srv.get("/api/events?limit=5", token=self.sup).status, 200)

    def test_access_log_listing(self):
        self.srv.get("/api/events?format=csv&action=ticket.created", token=self.sup)
        self.srv.get("/api/approvals?format=csv&kind=refund", token=self.admin)
        rows, _ = pages(self, "/api/access-log?limit=3", self.admin, "entries")
        want = [int(x[0]) for x in self.q("SELECT id FROM access_log ORDER BY at DESC, id DESC")]
        self.assertEqual([e["id"] for e in rows], want)  # newest first, each once
        latest = rows[0]
        self.assertEqual((latest["user"], latest["what"], latest["filters"], latest["complete"]),
                         ("root.admin", "approvals.csv", {"kind": "refund", "timezone": "UTC"}, True))
        self.assertEqual(latest["rows"], int(self.one("SELECT count(*) FROM approvals WHERE kind = 'refund'")))
        self.assertRegex(latest["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        only = self.srv.get("/api/access-log?what=events.csv&user=sana", token=self.admin).json()
        self.assertTrue(only["entries"])
        self.assertTrue(all((e["what"], e["user"]) == ("events.csv", "sana") for e in only["entries"]))
        created = [e for e in only["entries"] if e["filters"].get("action") == "ticket.created"][0]
        self.assertEqual(created["rows"], len(self.sql_ids("action = 'ticket.created'")))
        today = datetime.datetime.now(datetime.timezone.utc).date()
        day = self.srv.get(f"/api/access-log?from={today}&to={today + datetime.timedelta(days=1)}",
                           token=self.admin).json()["entries"]
        self.assertEqual(len(day), min(50, len(want)))
        self.assertEqual(self.srv.get(f"/api/access-log?to={today}", token=self.admin)
                         .json()["entries"], [])
        self.assertEqual(self.srv.get("/api/access-log", token=self.sup).status, 403)


def vm(pid, field):
    """A /proc/PID/status figure in KiB (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


class Streaming(ServerTest):
    """200,000 events exported while the server's peak RSS is watched; an export cut off by its
    client stops its query, frees its connection and is still in the access log."""

    EVENTS = 200000
    # ASan keeps freed memory in quarantine (256 MB by default) before reusing it, which would
    # count every freed batch as resident; a small quarantine lets RSS show what is held
    server_env = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") +
                  ":quarantine_size_mb=4:thread_local_quarantine_size_kb=256",
                  "CASETRAIL_TIMEZONE": "Asia/Karachi"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.qa = add_user(cls.dsn, "qamar", "qa")
        bulk_events.load(cls.dsn, cls.EVENTS, per_ticket=20, approvals=10)

    def open_export(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=120)
        conn.request("GET", path, headers={"Authorization": "Bearer " + self.qa})
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        return conn, r

    def test_large_export_streams_in_constant_memory(self):
        pid = self.srv.proc.pid
        self.srv.get("/api/events?format=csv&ticket=1", token=self.qa)  # warm up the code paths
        rss0 = vm(pid, "VmRSS")
        try:  # reset the peak to now (Linux 4.0+), so it measures this export alone
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        conn, r = self.open_export("/api/events?format=csv")
        size, lines, tail, t0 = 0, 0, b"", time.time()
        while True:
            chunk = r.read(1 << 16)
            if not chunk:
                break
            size += len(chunk)
            lines += (tail[-1:] + chunk).count(b"\r\n")  # a CRLF may straddle two reads
            tail = (tail + chunk)[-200:]
        conn.close()
        seconds = time.time() - t0
        # without clear_refs the peak may predate the export: the growth is then overstated,
        # which can only fail the bound, never pass it wrongly
        growth = vm(pid, "VmHWM") - rss0
        print(f"\nexport of {self.EVENTS} events: {size / 1e6:.1f} MB in {seconds:.1f} s; server"
              f" RSS before {rss0 // 1024} MiB, peak grew by {growth // 1024} MiB", file=sys.stderr)
        self.assertEqual(lines, self.EVENTS + 1)  # no text cell here holds a line break
        self.assertRegex(tail, rb",[0-9a-f]{64}\r\n$")
        self.assertGreater(size, 60_000_000)
        # holding the export (or its query result) in memory would grow the server by more
        # than the CSV itself; streaming holds one batch and one chunk
        self.assertLess(growth * 1024, size // 4,
                        f"peak RSS grew {growth} KiB during a {size}-byte export")
        row = self.q("SELECT what, rows, complete FROM access_log ORDER BY id DESC LIMIT 1")[0]
        self.assertEqual(row, ["events.csv", str(self.EVENTS), "t"])

    def test_a_client_that_leaves_stops_the_export(self):
        before = int(self.one("SELECT count(*) FROM access_log"))
        sock = socket.create_connection(("127.0.0.1", self.srv.port), timeout=60)
        sock.sendall(b"GET /api/events?format=csv&bom=1 HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + self.qa.encode() + b"\r\n\r\n")
        got = b""
        while len(got) < 1 << 20:
            got += sock.recv(1 << 16)
        head, _, body = got.partition(b"\r\n\r\n")
        self.assertIn(b"Transfer-Encoding: chunked", head)
        self.assertTrue(body.split(b"\r\n", 1)[1].startswith(b"\xef\xbb\xbfevent_id,"))
        # a hard close (RST), as a browser tab closed mid-download
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
        self.wait_one("SELECT count(*) FROM access_log", str(before + 1), 60, "access log rows")
        what, rows, complete = self.q("SELECT what, rows, complete FROM access_log"
                                      " ORDER BY id DESC LIMIT 1")[0]
        self.assertEqual((what, complete), ("events.csv", "f"))
        self.assertLess(int(rows), self.EVENTS)
        # the query is gone and its connection back in the pool, idle and out of any transaction
        self.wait_one("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                      " AND application_name = 'casetrail' AND (state <> 'idle' OR query LIKE 'FETCH%')"
                      " AND pid <> pg_backend_pid()", "0", 10, "busy casetrail connections")
        # and the server goes on serving exports
        small = self.srv.get("/api/events?format=csv&ticket=2", token=self.qa)
        self.assertEqual(len(parse(small.body)), 21)
        self.assertIn("export events.csv by user", self.srv.read_log())

    def raw_export(self, path):
        """Starts an export on a raw socket and reads its head only: the server is then held
        writing to a client that does not read."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(60)
        sock.connect(("127.0.0.1", self.srv.port))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {self.qa}"
                     "\r\n\r\n".encode())
        self.assertTrue(sock.recv(1024).startswith(b"HTTP/1.1 200 OK"))
        return sock

    def test_exports_at_once_are_bounded(self):
        # each export holds a database connection while it streams: half the pool (4) at once
        before = int(self.one("SELECT count(*) FROM access_log"))
        held = [self.raw_export("/api/events?format=csv"), self.raw_export("/api/approvals?format=csv&bom=1")]
        # the approvals export is small and ends at once; events stay held by their reader
        self.wait_one("SELECT count(*) FROM access_log", str(before + 1), 10, "access log rows")
        held.append(self.raw_export("/api/events?format=csv&action=note.added"))
        r = self.srv.get("/api/events?format=csv", token=self.qa)
        self.assertEqual((r.status, r.json()["error"]["code"]), (503, "export_busy"), r)
        self.assertIn("retry-after", r.headers)
        # pages are not exports: they still answer
        self.assertEqual(self.srv.get("/api/events?limit=5", token=self.qa).status, 200)
        for sock in held:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()
        self.wait_one("SELECT count(*) FROM access_log WHERE NOT complete AND what = 'events.csv'"
                      " AND id > (SELECT max(id) FROM access_log) - 4", "2", 60, "cut exports")
        small = self.srv.get("/api/events?format=csv&ticket=3", token=self.qa)
        self.assertEqual((small.status, len(parse(small.body))), (200, 21))

    def test_a_cut_export_is_incomplete_to_the_client(self):
        # the server stops mid-way (here: shutting down), so the last chunk never comes and the
        # client's HTTP library reports the body incomplete rather than a shorter valid file
        srv = self.srv
        conn, r = self.open_export("/api/events?format=csv")
        r.read(1 << 20)
        srv.proc.send_signal(__import__("signal").SIGTERM)
        with self.assertRaises(http.client.IncompleteRead):
            while r.read(1 << 16):
                pass
        conn.close()
        srv.stop()
        row = self.q("SELECT what, rows::bigint < :'n', complete FROM access_log"
                     " ORDER BY id DESC LIMIT 1", n=self.EVENTS)[0]
        self.assertEqual(row, ["events.csv", "t", "f"])
        # a fresh server for whatever runs after this in the class
        type(self).srv = type(srv)(self.dsn, self.server_env, log_name="Streaming2").start()


if __name__ == "__main__":
    import unittest
    unittest.main(verbosity=2)
