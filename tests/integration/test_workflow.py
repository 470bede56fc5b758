"""Ticket workflow (issue 5): every action's happy path and its event (actor, from, to,
reason), permission denials, invalid transitions, missing reasons, approvals end to end,
concurrent assigns, complaint rules. When it fails look at server/domain/tickets.c (rules),
server/domain/workflow.c (sequencing) and server/http/api_workflow.c (request decoding)."""
import concurrent.futures
import itertools
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import harness  # noqa: E402
from harness import ServerTest, add_user, post_webhook, text_payload  # noqa: E402

_wa = itertools.count(1)


class Workflow(ServerTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agent = add_user(cls.dsn, "aisha", "agent")
        cls.agent2 = add_user(cls.dsn, "bilal", "agent")
        cls.sup = add_user(cls.dsn, "sup", "supervisor", limit=50000)
        cls.sup2 = add_user(cls.dsn, "sup2", "supervisor", limit=100)
        cls.admin = add_user(cls.dsn, "root.admin", "admin", limit=10**9)
        cls.qa = add_user(cls.dsn, "quinn", "qa")

    def new_ticket(self, text="hello there"):
        n = next(_wa)
        wa = f"92399{n:07d}"
        r = post_webhook(self.srv, text_payload(f"wamid.wf-{n}", wa, 1760500000 + n, text))
        self.assertEqual(r.status, 200, r)
        return int(self.one("SELECT t.id FROM tickets t JOIN contacts c ON c.id = t.contact_id"
                            " WHERE c.wa_id = :'w'", w=wa))

    def act(self, tid, action, body, token, status=200, code=None):
        r = self.srv.post(f"/api/tickets/{tid}/{action}", body=body, token=token)
        self.assertEqual(r.status, status, (action, body, r))
        if code is not None:
            self.assertEqual(r.json()["error"]["code"], code, r)
        return r.json()

    def events(self, tid):
        items = self.srv.get(f"/api/tickets/{tid}/timeline?limit=500", token=self.qa).json()["items"]
        return [i for i in items if i["kind"] == "event"]

    def last_event(self, tid):
        return self.events(tid)[-1]

    def test_assign_take_handoff_unassign(self):
        tid = self.new_ticket()
        t = self.act(tid, "assign", {"assignee": "aisha"}, self.agent)
        self.assertEqual((t["assignee"], t["status"]), ("aisha", "open"))
        ev = self.events(tid)[-2:]
        self.assertEqual([(e["action"], e["from"], e["to"]) for e in ev],
                         [("assignment.changed", None, "aisha"), ("status.changed", "new", "open")])
        self.assertEqual(ev[0]["actor"]["type"], "agent")
        self.assertEqual(ev[0]["actor"]["name"], "aisha")
        self.assertEqual(ev[1]["actor"]["name"], "aisha")
        # another agent may not take it or act on it
        self.act(tid, "assign", {"assignee": "bilal"}, self.agent2, 403, "forbidden")
        self.act(tid, "notes", {"body": "mine now"}, self.agent2, 403, "forbidden")
        # hand-off by the owner, with a note
        t = self.act(tid, "assign", {"assignee": "bilal", "note": "shift ends"}, self.agent)
        self.assertEqual(t["assignee"], "bilal")
        e = self.last_event(tid)
        self.assertEqual((e["action"], e["from"], e["to"], e["note"]), ("assignment.changed", "aisha", "bilal", "shift ends"))
        # supervisor reassigns; same assignee is a conflict
        self.act(tid, "assign", {"assignee": "aisha"}, self.sup)
        self.act(tid, "assign", {"assignee": "aisha"}, self.sup, 409, "already_assigned")
        # unassign needs a reason
        self.act(tid, "unassign", {}, self.agent, 400, "reason_required")
        self.act(tid, "unassign", {"reason": "  "}, self.agent, 400, "reason_required")
        t = self.act(tid, "unassign", {"reason": "going home"}, self.agent)
        self.assertIsNone(t["assignee"])
        e = self.last_event(tid)
        self.assertEqual((e["from"], e["to"], e["reason"]), ("aisha", None, "going home"))
        self.act(tid, "unassign", {"reason": "again"}, self.sup, 409, "not_assigned")
        # agents take from the queue for themselves only
        self.act(tid, "assign", {"assignee": "bilal"}, self.agent, 403, "forbidden")
        # bad assignees
        self.act(tid, "assign", {"assignee": "nobody"}, self.sup, 422, "unknown_assignee")
        self.act(tid, "assign", {"assignee": "quinn"}, self.sup, 422, "assignee_not_agent")
        # qa reads only
        self.act(tid, "assign", {"assignee": "aisha"}, self.qa, 403, "forbidden")

    def test_status_transitions_and_reasons(self):
        tid = self.new_ticket()
        self.act(tid, "status", {"status": "pending"}, self.agent, 400, "reason_required")
        t = self.act(tid, "status", {"status": "pending", "reason": "awaiting_courier"}, self.agent)
        self.assertEqual(t["status"], "pending")
        e = self.last_event(tid)
        self.assertEqual((e["action"], e["from"], e["to"], e["reason"]),
                         ("status.changed", "new", "pending", "awaiting_courier"))
        self.act(tid, "status", {"status": "pending", "reason": "x"}, self.agent, 409, "invalid_transition")
        self.act(tid, "status", {"status": "resolved"}, self.agent, 400, "reason_required")
        self.act(tid, "status", {"status": "resolved", "reason": "replacement shipped"}, self.agent)
        r = self.srv.post(f"/api/tickets/{tid}/status", body={"status": "pending", "reason": "x"}, token=self.agent)
        self.assertEqual(r.status, 409)
        self.assertIn("resolved", r.json()["error"]["message"])
        self.assertIn("pending", r.json()["error"]["message"])
        self.act(tid, "status", {"status": "open"}, self.agent)  # reopen
        self.act(tid, "status", {"status": "closed", "reason": "dup"}, self.agent, 403)
        self.act(tid, "status", {"status": "closed"}, self.sup, 400, "reason_required")
        self.act(tid, "status", {"status": "closed", "reason": "duplicate of another ticket"}, self.sup)
        # closed is final for people
        for action, body, tok in [("status", {"status": "open"}, self.admin),
                                  ("notes", {"body": "late"}, self.sup),
                                  ("assign", {"assignee": "aisha"}, self.admin),
                                  ("escalate", {"level": 1, "reason": "x"}, self.agent),
                                  ("priority", {"priority": "low"}, self.sup),
                                  ("approvals", {"kind": "exception", "reason": "x"}, self.agent)]:
            self.act(tid, action, body, tok, 409, "ticket_closed")
        # resolved -> closed needs no reason and is open to the agent
        tid2 = self.new_ticket()
        self.act(tid2, "status", {"status": "resolved", "reason": "fixed"}, self.agent)
        self.act(tid2, "status", {"status": "closed"}, self.agent)

    def test_bad_input_changes_nothing(self):
        tid = self.new_ticket()
        before = self.one("SELECT count(*) FROM events WHERE ticket_id = :'t'", t=tid)
        cases = [("status", b"{not json", 400, "invalid_json"),
                 ("status", b"[]", 400, "invalid_json"),
                 ("status", {"status": "archived"}, 400, "invalid_status"),
                 ("status", {"status": 3}, 400, "wrong_type"),
                 ("status", {"status": "open", "colour": "red"}, 400, "unknown_field"),
                 ("escalate", {"level": 4, "reason": "x"}, 400, "wrong_type"),
                 ("escalate", {"level": "1", "reason": "x"}, 400, "wrong_type"),
                 ("escalate", {"level": 1.5, "reason": "x"}, 400, "wrong_type"),
                 ("escalate", {"level": 1}, 400, "reason_required"),
                 ("priority", {"priority": "asap"}, 400, "invalid_priority"),
                 ("notes", {"body": ""}, 400, "missing_field"),
                 ("notes", {}, 400, "missing_field"),
                 ("assign", {}, 400, "missing_field"),
                 ("priority", b'{"priority":"high"} trailing', 400, "invalid_json"),
                 ("notes", {"b\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9": 1},
                  400, "unknown_field")]
        for action, body, status, code in cases:
            self.act(tid, action, body, self.sup, status, code)
        self.assertEqual(self.one("SELECT count(*) FROM events WHERE ticket_id = :'t'", t=tid), before)
        self.act(999999, "notes", {"body": "x"}, self.sup, 404, "ticket_not_found")
        self.act("abc", "notes", {"body": "x"}, self.sup, 404, "ticket_not_found")
        r = self.srv.post(f"/api/tickets/{tid}/notes", body={"body": "x"})
        self.assertEqual(r.status, 401)

    def test_escalation_priority_notes(self):
        tid = self.new_ticket()
        self.act(tid, "escalate", {"level": 2, "reason": "VIP customer"}, self.agent)
        e = self.last_event(tid)
        self.assertEqual((e["action"], e["from"], e["to"], e["reason"]), ("escalation.raised", "0", "2", "VIP customer"))
        self.act(tid, "escalate", {"level": 1, "reason": "x"}, self.agent, 409, "already_escalated")
        self.act(tid, "deescalate", {"reason": "calm"}, self.agent, 403)
        self.act(tid, "deescalate", {}, self.sup, 400, "reason_required")
        t = self.act(tid, "deescalate", {"reason": "resolved by phone", "level": 1}, self.sup)
        self.assertEqual((t["escalation_level"], t["escalated"]), (1, True))
        e = self.last_event(tid)
        self.assertEqual((e["action"], e["from"], e["to"]), ("escalation.lowered", "2", "1"))
        self.act(tid, "deescalate", {"reason": "x", "level": 1}, self.sup, 400)
        t = self.act(tid, "deescalate", {"reason": "all good"}, self.sup)
        self.assertFalse(t["escalated"])
        self.act(tid, "deescalate", {"reason": "x"}, self.sup, 409, "not_escalated")
        t = self.act(tid, "priority", {"priority": "urgent", "reason": "sale day"}, self.agent)
        self.assertEqual(t["priority"], "urgent")
        e = self.last_event(tid)
        self.assertEqual((e["action"], e["from"], e["to"], e["reason"]), ("priority.changed", "normal", "urgent", "sale day"))
        self.act(tid, "priority", {"priority": "urgent"}, self.agent, 409, "unchanged")
        self.act(tid, "notes", {"body": "<script>alert(1)</script> =HYPERLINK(\"x\")"}, self.agent)
        e = self.last_event(tid)
        self.assertEqual((e["action"], e["note"]), ("note.added", "<script>alert(1)</script> =HYPERLINK(\"x\")"))
        # listing filters see escalation
        self.act(tid, "escalate", {"level": 3, "reason": "legal"}, self.sup)
        ids = [t["id"] for t in self.srv.get("/api/tickets?escalated=true&limit=500", token=self.qa).json()["tickets"]]
        self.assertIn(tid, ids)

    def test_approvals_end_to_end(self):
        tid = self.new_ticket()
        self.act(tid, "approvals", {"kind": "credit", "reason": "goodwill"}, self.agent, 400, "amount_required")
        self.act(tid, "approvals", {"kind": "gift", "amount_minor": 5, "reason": "x"}, self.agent, 400, "invalid_kind")
        self.act(tid, "approvals", {"kind": "credit", "amount_minor": 500}, self.agent, 400, "reason_required")
        self.act(tid, "approvals", {"kind": "credit", "amount_minor": 500, "currency": "EUR", "reason": "x"},
                 self.agent, 422, "wrong_currency")
        self.act(tid, "approvals", {"kind": "credit", "amount_minor": -1, "reason": "x"}, self.agent, 400, "wrong_type")
        self.act(tid, "approvals", {"kind": "exception", "reason": "x"}, self.qa, 403)
        a = self.act(tid, "approvals", {"kind": "credit", "amount_minor": 50000, "currency": "USD",
                                        "reason": "screen cracked on arrival"}, self.agent, 201)
        self.assertEqual((a["status"], a["requested_by"], a["amount_minor"], a["currency"]),
                         ("pending", "aisha", 50000, "USD"))
        e = self.last_event(tid)
        self.assertEqual((e["action"], e["to"], e["reason"], e["amount_minor"]),
                         ("approval.requested", "pending", "screen cracked on arrival", 50000))
        aid = a["id"]

        def decide(token, body, status, code=None):
            r = self.srv.post(f"/api/approvals/{aid}/decision", body=body, token=token)
            self.assertEqual(r.status, status, r)
            if code:
                self.assertEqual(r.json()["error"]["code"], code)
            return r.json()

        decide(self.agent2, {"decision": "approved", "reason": "x"}, 403)
        decide(self.sup, {"decision": "approved"}, 400, "reason_required")
        decide(self.sup, {"decision": "maybe", "reason": "x"}, 400, "invalid_decision")
        r = decide(self.sup2, {"decision": "approved", "reason": "ok"}, 403, "over_limit")
        self.assertIn("100", r["error"]["message"])
        d = decide(self.sup, {"decision": "approved", "reason": "within policy for damaged goods"}, 200)
        self.assertEqual((d["status"], d["decided_by"], d["decision_reason"]),
                         ("approved", "sup", "within policy for damaged goods"))
        self.assertIsNotNone(d["decided_at"])
        decide(self.admin, {"decision": "denied", "reason": "changed my mind"}, 409, "already_decided")
        e = self.last_event(tid)
        self.assertEqual((e["action"], e["from"], e["to"], e["actor"]["name"], e["reason"]),
                         ("approval.decided", "pending", "approved", "sup", "within policy for damaged goods"))
        # nobody decides their own request
        mine = self.act(tid, "approvals", {"kind": "refund", "amount_minor": 10, "reason": "own"}, self.sup, 201)
        r = self.srv.post(f"/api/approvals/{mine['id']}/decision", body={"decision": "denied", "reason": "x"},
                          token=self.sup)
        self.assertEqual((r.status, r.json()["error"]["code"]), (403, "own_request"))
        # any supervisor may deny, whatever the amount
        r = self.srv.post(f"/api/approvals/{mine['id']}/decision", body={"decision": "denied", "reason": "not eligible"},
                          token=self.sup2)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.srv.post("/api/approvals/99999/decision", body={"decision": "denied", "reason": "x"},
                                       token=self.sup).status, 404)
        # the list answers "who approved the $500 credit, when and why"
        lst = self.srv.get("/api/approvals?kind=credit&status=approved&decided_by=sup", token=self.qa).json()
        self.assertEqual([(x["id"], x["requested_by"], x["decided_by"]) for x in lst["approvals"]], [(aid, "aisha", "sup")])
        lst = self.srv.get("/api/approvals?requested_by=sup&from=2020-01-01&to=2999-01-01T00:00:00Z", token=self.qa).json()
        self.assertEqual([x["status"] for x in lst["approvals"]], ["denied"])
        self.assertEqual(self.srv.get("/api/approvals?from=2999-01-01", token=self.qa).json()["approvals"], [])
        for good in ["from=2024-02-29", "from=2020-01-01T10:00:00.123456789%2B05:00", "to=2999-12-31T23:59:59Z"]:
            self.assertEqual(self.srv.get("/api/approvals?" + good, token=self.qa).status, 200, good)
        for bad in ["status=maybe", "from=yesterday", "limit=0", "cursor=x", "from=2024-02-30",
                    "from=2023-02-29", "from=2024-01-01T00:00:00Zjunk", "from=2024-01-01T00:00:nanZ",
                    "from=2024-01-01T-1:00:00Z", "from=2024-01-01T10:00:00", "to=2024-13-01"]:
            self.assertEqual(self.srv.get("/api/approvals?" + bad, token=self.qa).status, 400, bad)

    def test_concurrent_assigns_serialise(self):
        tid = self.new_ticket()
        names = ["aisha", "bilal", "sup", "root.admin"] * 3
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            codes = list(pool.map(lambda n: self.srv.post(f"/api/tickets/{tid}/assign", body={"assignee": n},
                                                          token=self.admin).status, names))
        self.assertTrue(all(c in (200, 409) for c in codes), codes)
        seqs = [int(r[0]) for r in self.q("SELECT seq FROM events WHERE ticket_id = :'t' ORDER BY seq", t=tid)]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)))
        assigns = self.q("SELECT count(*) FROM events WHERE ticket_id = :'t' AND action = 'assignment.changed'", t=tid)
        self.assertEqual(int(assigns[0][0]), codes.count(200))
        # each assignment's from is the previous one's to: they landed in order
        rows = self.q("SELECT coalesce(from_value, '-'), to_value FROM events WHERE ticket_id = :'t'"
                      " AND action = 'assignment.changed' ORDER BY seq", t=tid)
        for prev, cur in zip(rows, rows[1:]):
            self.assertEqual(cur[0], prev[1])
        self.assertTrue(self.srv.get(f"/api/tickets/{tid}/verify", token=self.qa).json()["ok"])

    def test_complaint_rules(self):
        tid = self.new_ticket("Bhai mera order abhi tak nahi aya")
        t = self.srv.get(f"/api/tickets/{tid}", token=self.qa).json()
        self.assertEqual(t["escalation_level"], 1)
        e = [x for x in self.events(tid) if x["action"] == "escalation.raised"]
        self.assertEqual(len(e), 1)
        self.assertEqual((e[0]["actor"]["type"], e[0]["actor"]["name"], e[0]["to"]), ("system", "system", "1"))
        self.assertIn("nahi aya", e[0]["reason"])
        # once per ticket until de-escalated
        n = next(_wa)
        wa = self.one("SELECT c.wa_id FROM tickets t JOIN contacts c ON c.id = t.contact_id WHERE t.id = :'t'", t=tid)
        post_webhook(self.srv, text_payload(f"wamid.wf-again-{n}", wa, 1760600000 + n, "REFUND now, worst service"))
        self.assertEqual(len([x for x in self.events(tid) if x["action"] == "escalation.raised"]), 1)
        self.act(tid, "deescalate", {"reason": "spoke to customer"}, self.sup)
        post_webhook(self.srv, text_payload(f"wamid.wf-again2-{n}", wa, 1760600100 + n, "still a fraud"))
        self.assertEqual(len([x for x in self.events(tid) if x["action"] == "escalation.raised"]), 2)
        # Urdu script and case-insensitive non-ASCII
        tid2 = self.new_ticket("میرا آرڈر ابھی تک نہیں آیا")
        self.assertEqual(self.srv.get(f"/api/tickets/{tid2}", token=self.qa).json()["escalation_level"], 1)
        tid3 = self.new_ticket("thanks, all good")
        self.assertEqual(self.srv.get(f"/api/tickets/{tid3}", token=self.qa).json()["escalation_level"], 0)

    def test_rules_api(self):
        r = self.srv.get("/api/rules/complaints", token=self.qa)
        self.assertEqual(r.status, 200)
        patterns = [x["pattern"] for x in r.json()["rules"]]
        self.assertIn("refund", patterns)
        self.assertIn("nahi mila", patterns)
        body = {"rules": [{"pattern": "ÜBERWEISUNG"}, {"pattern": r"\mscam+ed\M", "match": "regex"},
                          {"pattern": "refund", "enabled": False}]}
        self.assertEqual(self.srv.request("PUT", "/api/rules/complaints", body=body, token=self.sup).status, 403)
        for bad, code in [({"rules": [{"pattern": "(unclosed", "match": "regex"}]}, "invalid_regex"),
                          ({"rules": [{"pattern": ""}]}, "missing_field"),
                          ({"rules": [{"pattern": "x", "match": "glob"}]}, "invalid_match"),
                          ({"rules": [{"pattern": "x", "weight": 2}]}, "unknown_field"),
                          ({"rules": "refund"}, "wrong_type"),
                          ({"rules": [{"pattern": "ش" * 201}]}, "too_long")]:
            r = self.srv.request("PUT", "/api/rules/complaints", body=bad, token=self.admin)
            self.assertEqual((r.status, r.json()["error"]["code"]), (400, code), bad)
        self.assertIn("refund", [x["pattern"] for x in self.srv.get("/api/rules/complaints", token=self.qa).json()["rules"]])
        r = self.srv.request("PUT", "/api/rules/complaints", body=body, token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([(x["pattern"], x["match"], x["enabled"]) for x in r.json()["rules"]],
                         [("ÜBERWEISUNG", "keyword", True), (r"\mscam+ed\M", "regex", True), ("refund", "keyword", False)])
        ev = self.q("SELECT e.action, e.data->>'count' FROM events e JOIN users u ON u.id = e.user_id"
                    " WHERE u.name = 'root.admin' ORDER BY e.seq DESC LIMIT 1")
        self.assertEqual(ev, [["rules.complaints_replaced", "3"]])
        try:
            self.assertEqual(self.srv.get(f"/api/tickets/{self.new_ticket('refund please')}", token=self.qa).json()["escalation_level"], 0)
            self.assertEqual(self.srv.get(f"/api/tickets/{self.new_ticket('die überweisung fehlt')}", token=self.qa).json()["escalation_level"], 1)
            self.assertEqual(self.srv.get(f"/api/tickets/{self.new_ticket('I got SCAMMMED')}", token=self.qa).json()["escalation_level"], 1)
        finally:
            self.q("DELETE FROM complaint_rules; INSERT INTO complaint_rules (pattern) VALUES ('refund'), ('nahi aya'),"
                   " ('نہیں آیا'), ('worst'), ('fraud')")


if __name__ == "__main__":
    harness.main()
