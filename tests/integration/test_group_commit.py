"""Group commit (issue 13): webhooks that arrive together share one transaction, and every rule
still holds: 200 only after COMMIT, each wamid stored once however it is raced (inside one group
and across groups), one open ticket per contact, gapless chains, `casetrail verify` clean; an
entry the database refuses costs only itself, not its group. When it fails, look at the lanes
and run_group in server/domain/ingest.c."""
import concurrent.futures
import json
import os
import random
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import harness  # noqa: E402
from harness import ServerTest, add_user, post_webhook, text_payload  # noqa: E402
from test_identity import contact, envelope, text  # noqa: E402

SENDERS = 24
CONTACTS = 40
PER_CONTACT = 4


def send_all(srv, bodies):
    with concurrent.futures.ThreadPoolExecutor(SENDERS) as pool:
        return list(pool.map(lambda b: post_webhook(srv, b), bodies))


def metric(srv, name):
    text = srv.get("/metrics").body.decode()
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


class GroupCommit(ServerTest):
    # one lane, so concurrent webhooks must queue behind each other's commits and group
    server_env = {"CASETRAIL_INGEST_LANES": "1", "CASETRAIL_INGEST_GROUP": "16"}

    def check_invariants(self, like):
        # one not-closed ticket per contact, and gapless chains
        self.assertEqual(self.one("SELECT count(*) FROM (SELECT contact_id FROM tickets WHERE"
                                  " status <> 'closed' GROUP BY contact_id HAVING count(*) > 1) x"),
                         "0")
        self.assertEqual(self.one("SELECT count(*) FROM (SELECT ticket_id FROM events WHERE"
                                  " ticket_id IS NOT NULL GROUP BY ticket_id"
                                  " HAVING max(seq) <> count(*) OR min(seq) <> 1) x"), "0")
        self.assertEqual(self.one("SELECT count(*) FROM (SELECT wamid FROM messages WHERE wamid"
                                  " LIKE :'l' GROUP BY wamid HAVING count(*) > 1) x", l=like), "0")
        r = harness.cli(self.dsn, "verify")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_raced_webhooks_share_commits_and_are_stored_exactly_once(self):
        rnd = random.Random(13)
        bodies, n = [], 0
        for c in range(CONTACTS):
            for k in range(PER_CONTACT):
                # some complain: the escalation's event joins the same chain in the same group
                text = (f"I want a refund for order {c}" if k == 2 and c % 3 == 0
                        else f"message {k} from customer {c}")
                bodies.append(json.dumps(text_payload(
                    f"wamid.gc.{c}.{k}", f"92340{c:07d}", 1760500000 + 10 * k, text)).encode())
                n += 1
        # Meta's redeliveries: the same bytes again, and the same wamid in another envelope
        again = [bodies[i] for i in rnd.sample(range(n), 40)]
        other = [json.dumps(text_payload(f"wamid.gc.{c}.0", f"92340{c:07d}", 1760500000,
                                         f"message 0 from customer {c}", name="Renamed"))
                 .encode() for c in rnd.sample(range(CONTACTS), 20)]
        every = bodies + again + other
        rnd.shuffle(every)
        groups0 = metric(self.srv, "casetrail_ingest_groups_total")
        grouped0 = metric(self.srv, "casetrail_ingest_grouped_webhooks_total")
        unbatched0 = metric(self.srv, "casetrail_ingest_unbatched_total")
        answers = send_all(self.srv, every)
        self.assertEqual([a.status for a in answers if a.status != 200], [])
        self.assertEqual(self.one("SELECT count(*) FROM messages WHERE wamid LIKE 'wamid.gc.%'"),
                         str(n))
        self.assertEqual(sum(a.json()["messages_new"] for a in answers), n)
        # a group's receipts go in together: one per distinct body, and a body sent twice is
        # the same receipt both times, whichever group each copy joined
        self.assertEqual(self.one("SELECT count(*) FROM webhook_receipts WHERE id = ANY(:'ids')",
                                  ids="{%s}" % ",".join(str(a.json()["receipt_id"])
                                                        for a in answers)),
                         str(n + len(other)))
        by_body = {}
        for body, a in zip(every, answers):
            by_body.setdefault(body, set()).add(a.json()["receipt_id"])
        self.assertEqual([b for b, ids in by_body.items() if len(ids) != 1], [])
        self.assertEqual(self.one("SELECT count(DISTINCT t.contact_id) FROM tickets t JOIN contacts c"
                                  " ON c.id = t.contact_id WHERE c.wa_id LIKE '92340%'"),
                         str(CONTACTS))
        self.check_invariants("wamid.gc.%")
        groups = metric(self.srv, "casetrail_ingest_groups_total") - groups0
        grouped = metric(self.srv, "casetrail_ingest_grouped_webhooks_total") - grouped0
        self.assertEqual(grouped, len(every))
        # 24 senders behind one lane: webhooks waited for each other's commits and went together
        self.assertLess(groups, grouped * 0.8, f"{groups} groups for {grouped} webhooks")
        # every group's rows went in set-based: none had to be written again row by row
        self.assertEqual(metric(self.srv, "casetrail_ingest_unbatched_total") - unbatched0, 0)
        # each complaining customer's ticket: created, its messages, one escalation, in order
        for c in range(0, CONTACTS, 3):
            actions = self.one("SELECT string_agg(e.action, ' ' ORDER BY e.seq) FROM events e"
                             " JOIN tickets t ON t.id = e.ticket_id JOIN contacts k"
                             " ON k.id = t.contact_id WHERE k.wa_id = :'w'",
                             w=f"92340{c:07d}").strip().split()
            self.assertEqual(actions[0], "ticket.created")
            self.assertEqual(actions.count("message.received"), PER_CONTACT)
            self.assertEqual(actions.count("escalation.raised"), 1, actions)

    def test_a_refused_entry_costs_only_itself_not_its_group(self):
        self.q("CREATE FUNCTION refuse_gc() RETURNS trigger LANGUAGE plpgsql AS $$"
               " BEGIN IF NEW.wamid LIKE 'wamid.gcp.poison%' THEN"
               " RAISE EXCEPTION 'refused by test' USING ERRCODE = '23514'; END IF;"
               " RETURN NEW; END $$")
        self.q("CREATE TRIGGER refuse_gc BEFORE INSERT ON messages"
               " FOR EACH ROW EXECUTE FUNCTION refuse_gc()")
        try:
            bodies = []
            for i in range(60):
                p = text_payload(f"wamid.gcp.{i}", f"92350{i % 20:07d}", 1760600000 + i,
                                 f"order {i}")
                if i % 10 == 3:  # six webhooks carry a poisoned entry beside a good one
                    value = p["entry"][0]["changes"][0]["value"]
                    value["messages"].append(dict(value["messages"][0],
                                                  id=f"wamid.gcp.poison.{i}"))
                bodies.append(json.dumps(p).encode())
            answers = send_all(self.srv, bodies)
            self.assertEqual([a.status for a in answers if a.status != 200], [])
            self.assertEqual(sum(a.json()["rejected"] for a in answers), 6)
            self.assertEqual(self.one("SELECT count(*) FROM messages WHERE wamid LIKE"
                                      " 'wamid.gcp.%'"), "60")
            self.assertEqual(self.one("SELECT count(*) FROM webhook_rejects WHERE position LIKE"
                                      " 'message wamid.gcp.poison.%'"), "6")
            # a refused row fails a group's set-based write: the group went again row by row,
            # which is how the refused entry was found
            self.assertGreater(metric(self.srv, "casetrail_ingest_unbatched_total"), 0)
        finally:
            self.q("DROP TRIGGER refuse_gc ON messages")
            self.q("DROP FUNCTION refuse_gc()")
        self.check_invariants("wamid.gcp.%")


    def test_a_row_the_set_based_write_loses_sends_the_group_row_by_row(self):
        # a trigger that silently drops some rows: the group's message insert returns fewer
        # rows than it was given, as when another transaction stored a wamid meanwhile. The
        # group must not commit with a message missing: it runs again row by row, where the
        # lost row is that entry's own (a reject) and the rest of the group is stored
        self.q("CREATE FUNCTION drop_gc() RETURNS trigger LANGUAGE plpgsql AS $$"
               " BEGIN IF NEW.wamid LIKE 'wamid.gcs.drop%' THEN RETURN NULL; END IF;"
               " RETURN NEW; END $$")
        self.q("CREATE TRIGGER drop_gc BEFORE INSERT ON messages"
               " FOR EACH ROW EXECUTE FUNCTION drop_gc()")
        unbatched0 = metric(self.srv, "casetrail_ingest_unbatched_total")
        try:
            bodies = []
            for i in range(60):
                p = text_payload(f"wamid.gcs.{i}", f"92370{i % 20:07d}", 1760800000 + i,
                                 f"order {i}")
                if i % 10 == 7:  # six webhooks carry a message the database drops
                    value = p["entry"][0]["changes"][0]["value"]
                    value["messages"].append(dict(value["messages"][0],
                                                  id=f"wamid.gcs.drop.{i}"))
                bodies.append(json.dumps(p).encode())
            answers = send_all(self.srv, bodies)
            self.assertEqual([a.status for a in answers if a.status != 200], [])
            self.assertEqual(sum(a.json()["messages_new"] for a in answers), 60)
            self.assertEqual(sum(a.json()["rejected"] for a in answers), 6)
            self.assertEqual(self.one("SELECT count(*) FROM messages WHERE wamid LIKE"
                                      " 'wamid.gcs.%'"), "60")
            self.assertEqual(self.one("SELECT count(*) FROM webhook_rejects WHERE position LIKE"
                                      " 'message wamid.gcs.drop.%'"), "6")
            # no event tells of a message that is not there
            self.assertEqual(self.one("SELECT count(*) FROM events WHERE data->>'wamid' LIKE"
                                      " 'wamid.gcs.drop.%'"), "0")
            self.assertGreater(metric(self.srv, "casetrail_ingest_unbatched_total"),
                               unbatched0)
        finally:
            self.q("DROP TRIGGER drop_gc ON messages")
            self.q("DROP FUNCTION drop_gc()")
        self.check_invariants("wamid.gcs.%")


class GroupPreload(ServerTest):
    """A batched group looks up all its contacts, live tickets and wamids in two statements
    before its messages (server/store/store_preload.c). What the group itself changes (a
    reopened or escalated ticket, a merged contact) must not be answered from that lookup.
    When it fails, look at the ct_preload_forget_* calls in server/store."""

    server_env = {"CASETRAIL_INGEST_LANES": "1", "CASETRAIL_INGEST_GROUP": "16"}

    def ticket_of(self, wa_id):
        return self.one("SELECT t.id FROM tickets t JOIN contacts c ON c.id = t.contact_id"
                        " WHERE c.wa_id = :'w'", w=wa_id)

    def actions(self, ticket_id):
        return self.one("SELECT string_agg(action, ' ' ORDER BY seq) FROM events"
                        " WHERE ticket_id = :'t'", t=ticket_id).split()

    def test_a_group_sees_what_it_changed_itself(self):
        sup = add_user(self.dsn, "gp-sup", "supervisor")
        back, angry = [f"92370{c:07d}" for c in range(8)], [f"92371{c:07d}" for c in range(8)]
        closed = [f"92374{c:07d}" for c in range(6)]
        first = [json.dumps(text_payload(f"wamid.gp.{w}.0", w, 1760800000, "hello")).encode()
                 for w in back + angry + closed]
        self.assertEqual([a.status for a in send_all(self.srv, first) if a.status != 200], [])
        for w in back:
            r = self.srv.post(f"/api/tickets/{self.ticket_of(w)}/status", token=sup,
                              body={"status": "resolved", "reason": "answered"})
            self.assertEqual(r.status, 200, r)
        for w in closed:
            r = self.srv.post(f"/api/tickets/{self.ticket_of(w)}/status", token=sup,
                              body={"status": "closed", "reason": "duplicate"})
            self.assertEqual(r.status, 200, r)
        preloaded0 = metric(self.srv, "casetrail_ingest_preloaded_contacts_total")
        unbatched0 = metric(self.srv, "casetrail_ingest_unbatched_total")
        # each resolved customer writes four times and each angry one complains three times,
        # all at once: one lane, so a customer's webhooks mostly share a group
        bodies = [json.dumps(text_payload(f"wamid.gp.{w}.{k}", w, 1760800000 + 10 * k,
                                          f"back again {k}")).encode()
                  for w in back for k in range(1, 5)]
        bodies += [json.dumps(text_payload(f"wamid.gp.{w}.{k}", w, 1760800000 + 10 * k,
                                           f"I want a refund now ({k})")).encode()
                   for w in angry for k in range(1, 4)]
        # and each customer whose ticket was closed writes three times: one new ticket
        bodies += [json.dumps(text_payload(f"wamid.gp.{w}.{k}", w, 1760800000 + 10 * k,
                                           f"new question {k}")).encode()
                   for w in closed for k in range(1, 4)]
        random.Random(7).shuffle(bodies)
        self.assertEqual([a.status for a in send_all(self.srv, bodies) if a.status != 200], [])
        self.assertGreater(metric(self.srv, "casetrail_ingest_preloaded_contacts_total"),
                           preloaded0)
        self.assertEqual(metric(self.srv, "casetrail_ingest_unbatched_total") - unbatched0, 0)
        for w in back:  # the first message reopened it; the others found it open
            t = self.ticket_of(w)
            acts = self.actions(t)
            self.assertEqual(acts.count("ticket.reopened"), 1, (w, acts))
            self.assertEqual(acts.count("message.received"), 5, (w, acts))
            self.assertEqual(self.one("SELECT status FROM tickets WHERE id = :'t'", t=t), "open")
        for w in closed:  # the first message made a ticket; the others found it
            live = self.q("SELECT t.id FROM tickets t JOIN contacts c ON c.id = t.contact_id"
                          " WHERE c.wa_id = :'w' AND t.status <> 'closed'", w=w)
            self.assertEqual(len(live), 1, (w, live))
            acts = self.actions(live[0][0])
            self.assertEqual((acts.count("ticket.created"), acts.count("message.received")),
                             (1, 3), (w, acts))
        for w in angry:  # escalated once, however many complaints shared its group
            acts = self.actions(self.ticket_of(w))
            self.assertEqual(acts.count("escalation.raised"), 1, (w, acts))
        GroupCommit.check_invariants(self, "wamid.gp.%")

    def test_a_merge_inside_a_group_moves_the_later_messages(self):
        merged, others = [], []
        for c in range(6):
            w, u = f"92372{c:07d}", f"PK.gp{c:04d}"
            for body in (envelope([text(f"wamid.gm.{c}.a", 1760900000, "hi", wa_id=w)],
                                  [contact("Zara", wa_id=w)]),
                         envelope([text(f"wamid.gm.{c}.b", 1760900010, "hi", user_id=u)],
                                  [contact("Zara", user_id=u)])):
                self.assertEqual(post_webhook(self.srv, body).status, 200)
            # one body: the message naming both ids merges the two contacts, then two more
            # by BSUID alone, which must follow the merge
            merged.append(json.dumps(envelope(
                [text(f"wamid.gm.{c}.c", 1760900020, "both", wa_id=w, user_id=u),
                 text(f"wamid.gm.{c}.d", 1760900030, "later", user_id=u),
                 text(f"wamid.gm.{c}.e", 1760900040, "later still", user_id=u)],
                [contact("Zara", user_id=u)])).encode())  # no wa_id: d and e name only u
            others += [json.dumps(text_payload(f"wamid.gm.{c}.x{k}", f"92373{c:03d}{k:04d}",
                                               1760900000 + k, "filler")).encode()
                       for k in range(4)]
        bodies = merged + others
        random.Random(11).shuffle(bodies)
        unbatched0 = metric(self.srv, "casetrail_ingest_unbatched_total")
        self.assertEqual([a.status for a in send_all(self.srv, bodies) if a.status != 200], [])
        self.assertEqual(metric(self.srv, "casetrail_ingest_unbatched_total") - unbatched0, 0)
        for c in range(6):
            w, u = f"92372{c:07d}", f"PK.gp{c:04d}"
            keep = self.one("SELECT id FROM contacts WHERE wa_id = :'w'", w=w)
            self.assertEqual(self.one("SELECT count(*) FROM contacts WHERE (wa_id = :'w' OR"
                                      " user_id = :'u') AND merged_into IS NULL", w=w, u=u), "1")
            self.assertEqual(self.one("SELECT string_agg(DISTINCT contact_id::text, ',') FROM"
                                      " messages WHERE wamid IN (:'c', :'d', :'e')",
                                      c=f"wamid.gm.{c}.c", d=f"wamid.gm.{c}.d",
                                      e=f"wamid.gm.{c}.e"), keep)
        # afterwards, groups that name either id (the group's live-ticket lookup must skip
        # the contact merged away) still land on the one kept, on its one live ticket
        later = [json.dumps(envelope([text(f"wamid.gm.{c}.f{k}", 1760900050 + k, "after",
                                           **({"user_id": f"PK.gp{c:04d}"} if k % 2 else
                                              {"wa_id": f"92372{c:07d}"}))],
                                     [contact("Zara", **({"user_id": f"PK.gp{c:04d}"} if k % 2
                                                         else {"wa_id": f"92372{c:07d}"}))]
                                     )).encode() for c in range(6) for k in range(4)]
        later += [json.dumps(text_payload(f"wamid.gm.y{k}", f"92374{k:07d}", 1760900000 + k,
                                          "filler")).encode() for k in range(24)]
        random.Random(12).shuffle(later)
        self.assertEqual([a.status for a in send_all(self.srv, later) if a.status != 200], [])
        for c in range(6):
            keep = self.one("SELECT id FROM contacts WHERE wa_id = :'w'", w=f"92372{c:07d}")
            self.assertEqual(self.one("SELECT string_agg(DISTINCT contact_id::text, ',') ||"
                                      " '/' || string_agg(DISTINCT ticket_id::text, ',') FROM"
                                      " messages WHERE wamid LIKE :'p'", p=f"wamid.gm.{c}.f%"),
                             keep + "/" + self.one("SELECT id FROM tickets WHERE contact_id ="
                                                   " :'k' AND status <> 'closed'", k=keep))
        GroupCommit.check_invariants(self, "wamid.gm.%")


class NoGroupCommit(ServerTest):
    """CASETRAIL_INGEST_LANES=0: each webhook in its own transaction, same results."""

    server_env = {"CASETRAIL_INGEST_LANES": "0"}

    def test_raced_webhooks_without_lanes(self):
        bodies = [json.dumps(text_payload(f"wamid.ng.{i}", f"92360{i % 10:07d}", 1760700000 + i,
                                          "hello")).encode() for i in range(40)]
        answers = send_all(self.srv, bodies + bodies[:10])
        self.assertEqual([a.status for a in answers if a.status != 200], [])
        self.assertEqual(self.one("SELECT count(*) FROM messages WHERE wamid LIKE 'wamid.ng.%'"),
                         "40")
        self.assertEqual(metric(self.srv, "casetrail_ingest_groups_total"), 0)


if __name__ == "__main__":
    harness.main()
