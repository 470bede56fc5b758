"""Who looked (issue 14): a person opening a ticket in the viewer is a `ticket.view` row in the
access log, its print view a `ticket.print` row; one row per open (not per page, not per jump
or live re-read), none for bearer-token reads; `purpose` is checked strictly; timeline events
carry their chain hash for the print view. When it fails, look at access_kind() and
timeline_tx() in server/http/api_tickets.c and EVENT_ITEM in server/store/store_tickets.c."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import harness  # noqa: E402
from harness import ServerTest, add_user, post_webhook, set_password, text_payload  # noqa: E402

PASSWORD = "correct horse battery"


class TicketViews(ServerTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = add_user(cls.dsn, "hina", "agent")
        cls.admin = add_user(cls.dsn, "root", "admin")
        set_password(cls.dsn, "hina", PASSWORD)
        cls.uid = int(harness.scalar(cls.dsn, "SELECT id FROM users WHERE name = 'hina'"))
        ts = int(time.time()) - 120
        for i in range(3):
            r = post_webhook(cls.srv, text_payload(f"wamid.views.{os.getpid()}.{i}", "923005550101",
                                                   ts + i, f"message {i}", name="Saima"))
            if r.status != 200:
                raise AssertionError(f"webhook refused: {r}")
        cls.tid = int(harness.scalar(cls.dsn, "SELECT t.id FROM tickets t JOIN contacts c ON"
                                     " c.id = t.contact_id WHERE c.wa_id = '923005550101'"))
        r = cls.srv.post("/api/session", {"name": "hina", "password": PASSWORD})
        m = re.match(r"casetrail_session=([^;]*)", r.headers.get("set-cookie", ""))
        if r.status != 200 or not m:
            raise AssertionError(f"sign-in failed: {r}")
        cls.cookie = {"Cookie": f"casetrail_session={m.group(1)}"}

    def rows(self, what):
        """The access-log rows of this ticket of one kind, as (user_id, rows)."""
        out = self.q("SELECT user_id, rows FROM access_log WHERE ticket_id = :'t' AND what = :'w'"
                     " ORDER BY id", t=str(self.tid), w=what)
        return [tuple(int(x) for x in row) for row in out]

    def timeline(self, query="", session=True, status=200):
        path = f"/api/tickets/{self.tid}/timeline{query}"
        r = (self.srv.get(path, headers=self.cookie) if session
             else self.srv.get(path, token=self.token))
        self.assertEqual(r.status, status, r)
        return r.json()

    def test_a_session_open_is_one_view_row_and_its_pages_are_none(self):
        before = len(self.rows("ticket.view"))
        page = self.timeline("?limit=2&from=end")
        views = self.rows("ticket.view")
        self.assertEqual(len(views), before + 1, "opening the ticket did not write one row")
        self.assertEqual(views[-1], (self.uid, len(page["items"])))
        # reading on from that page, and re-reads of the open ticket, add nothing
        self.assertIsNotNone(page["prev_cursor"])
        self.timeline(f"?limit=2&cursor={page['prev_cursor']}")
        self.timeline("?limit=2&from=start&purpose=refresh")
        self.timeline("?limit=2&from=end&purpose=refresh")
        self.assertEqual(len(self.rows("ticket.view")), before + 1)
        # purpose=view says the default out loud
        self.timeline("?purpose=view")
        self.assertEqual(len(self.rows("ticket.view")), before + 2)

    def test_admins_list_views(self):
        self.timeline("?from=end")
        r = self.srv.get("/api/access-log?what=ticket.view&user=hina", token=self.admin)
        self.assertEqual(r.status, 200, r)
        row = r.json()["entries"][0]
        self.assertEqual((row["what"], row["user"], row["ticket_id"]),
                         ("ticket.view", "hina", self.tid))

    def test_a_bearer_read_writes_no_row(self):
        before = self.one("SELECT count(*) FROM access_log")
        self.timeline(session=False)
        self.timeline("?purpose=print&from=start", session=False)
        self.assertEqual(self.one("SELECT count(*) FROM access_log"), before)

    def test_the_print_view_is_a_print_row_not_a_view(self):
        views, prints = len(self.rows("ticket.view")), len(self.rows("ticket.print"))
        page = self.timeline("?limit=500&from=start&purpose=print")
        self.assertEqual(self.rows("ticket.print")[prints:], [(self.uid, len(page["items"]))])
        self.assertEqual(len(self.rows("ticket.view")), views)

    def test_purpose_is_checked_strictly(self):
        before = self.one("SELECT count(*) FROM access_log")
        for q in ("?purpose=", "?purpose=VIEW", "?purpose=print%00", "?purpose=print%00x",
                  "?purpose=pdf", "?purpose=refresh&purpose=print"):
            err = self.timeline(q, status=400)
            self.assertEqual(err["error"]["code"], "invalid_purpose", q)
        first = self.timeline("?limit=1")
        self.assertIsNotNone(first["next_cursor"])
        err = self.timeline(f"?limit=1&cursor={first['next_cursor']}&purpose=print", status=400)
        self.assertEqual(err["error"]["code"], "invalid_purpose")
        # the one good read above (no cursor) is the only row the whole test wrote
        self.assertEqual(int(self.one("SELECT count(*) FROM access_log")), int(before) + 1)

    def test_an_unknown_ticket_is_404_and_no_row(self):
        before = self.one("SELECT count(*) FROM access_log")
        r = self.srv.get("/api/tickets/987654/timeline", headers=self.cookie)
        self.assertEqual(r.status, 404, r)
        self.assertEqual(self.one("SELECT count(*) FROM access_log"), before)

    def test_events_carry_their_chain_hash(self):
        items = self.timeline("?limit=500", session=False)["items"]
        events = [i for i in items if i["kind"] == "event"]
        self.assertTrue(events)
        stored = dict(self.q("SELECT seq, encode(hash, 'hex') FROM events WHERE ticket_id = :'t'",
                             t=str(self.tid)))
        for e in events:
            self.assertRegex(e["hash"], r"^[0-9a-f]{64}$")
            self.assertEqual(e["hash"], stored[str(e["seq"])], e)


if __name__ == "__main__":
    harness.main()
