"""WhatsApp as it is in 2026 (issue 10): customers known by a business-scoped user id (BSUID)
and a username with no phone number, one contact across phone-first and BSUID-first
deliveries, edited and deleted messages, and replies typed in the WhatsApp Business app
(echoes). Every shape goes through the real webhook path, and the chain verifies after it.
When it fails, look at server/whatsapp/webhook.c (parsing), server/domain/contacts.c
(identity), server/domain/ingest.c and the timeline SQL in server/store/store_tickets.c."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import harness  # noqa: E402
from harness import ServerTest, add_user, cli, fixture, post_webhook  # noqa: E402

PNID = "117293845601928"
AYESHA = "923001234567"
AYESHA_BSUID = "PK.9013377520164431"
SANA_BSUID = "PK.4471209953318802"
ORIGINAL = "wamid.HBgMOTIzMDAxMjM0NTY3FQIAEhgUMkJCNUFDRTI5RkQ3ODE0MDlBQkMA"


def envelope(messages=None, contacts=None, statuses=None, field="messages", echoes=None):
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550123456", "phone_number_id": PNID}}
    for k, v in (("contacts", contacts), ("messages", messages), ("statuses", statuses),
                 ("message_echoes", echoes)):
        if v is not None:
            value[k] = v
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "104857392016473", "changes": [{"field": field, "value": value}]}]}


def text(wamid, ts, body, wa_id=None, user_id=None):
    m = {"id": wamid, "timestamp": str(ts), "type": "text", "text": {"body": body}}
    if wa_id:
        m["from"] = wa_id
    if user_id:
        m["from_user_id"] = user_id
    return m


def msg(items, wamid):
    """The timeline's message item of wamid (events carry wamids in their data too)."""
    return next(i for i in items if i["kind"] == "message" and i["wamid"] == wamid)


def contact(name, wa_id=None, user_id=None, username=None):
    c = {"profile": {"name": name}}
    if username:
        c["profile"]["username"] = username
    if wa_id:
        c["wa_id"] = wa_id
    if user_id:
        c["user_id"] = user_id
    return c


class Identity(ServerTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = add_user(cls.dsn, "ops", "supervisor")

    def post(self, body):
        r = post_webhook(self.srv, body)
        self.assertEqual(r.status, 200, (r, self.srv.log_path))
        return r.json()

    def tickets(self, contact):
        r = self.srv.get("/api/tickets?contact=" + contact, token=self.token)
        self.assertEqual(r.status, 200, r)
        return r.json()["tickets"]

    def contacts_of(self, where, **params):
        return self.q("SELECT id, coalesce(wa_id, ''), coalesce(user_id, ''),"
                      " coalesce(username, ''), coalesce(merged_into::text, '') FROM contacts"
                      " WHERE " + where + " ORDER BY id", **params)

    def linked(self, tid):
        return [r[0] for r in self.q("SELECT to_value FROM events WHERE ticket_id = :'t' AND"
                                     " action = 'contact.linked' ORDER BY seq", t=tid)]

    def assert_verified(self):
        r = cli(self.dsn, "verify")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_username_only_customer_gets_a_ticket(self):
        out = self.post(fixture("username_only_bsuid.json"))
        self.assertEqual(out["messages_new"], 1)
        self.assertEqual(out["rejected"], 0)
        rows = self.contacts_of("user_id = :'u'", u=SANA_BSUID)
        self.assertEqual([r[1:4] for r in rows], [["", SANA_BSUID, "@sana.t"]])
        for key in (SANA_BSUID, "@sana.t", "sana.t", "SANA.T"):
            found = self.tickets(key)
            self.assertEqual(len(found), 1, key)
        t = found[0]
        self.assertEqual((t["contact"]["user_id"], t["contact"]["username"]),
                         (SANA_BSUID, "@sana.t"))
        self.assertIsNone(t["contact"].get("wa_id"))
        items = self.srv.get(f"/api/tickets/{t['id']}/timeline", token=self.token).json()["items"]
        self.assertEqual([i.get("text") for i in items if i["kind"] == "message"],
                         ["Order 77-1020 arrived broken, I want a replacement"])
        # a status to that BSUID names it; usernames on statuses are kept
        self.post(fixture("status_delivered_to_bsuid.json"))
        self.assert_verified()

    def test_phone_first_then_bsuid_is_one_contact(self):
        w, u = "923001110001", "PK.1110001"
        self.post(envelope([text("wamid.pf1", 1760431800, "hello", wa_id=w)],
                           [contact("Hina", wa_id=w)]))
        self.post(envelope([text("wamid.pf2", 1760431900, "again", wa_id=w, user_id=u)],
                           [contact("Hina", wa_id=w, user_id=u)]))
        self.post(envelope([text("wamid.pf3", 1760432000, "hidden number now", user_id=u)],
                           [contact("Hina", user_id=u, username="@hina")]))
        rows = self.contacts_of("wa_id = :'w' OR user_id = :'u'", w=w, u=u)
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0][1:4], [w, u, "@hina"])
        tickets = self.tickets(w)
        self.assertEqual(len(tickets), 1)
        self.assertEqual(self.tickets(u), tickets)
        self.assertEqual(self.linked(tickets[0]["id"]), ["bsuid_added"])
        self.assertEqual(self.one("SELECT count(*) FROM messages WHERE ticket_id = :'t'",
                                  t=tickets[0]["id"]), "3")
        self.assert_verified()

    def test_bsuid_first_then_phone_is_one_contact(self):
        w, u = "923001110002", "PK.1110002"
        self.post(envelope([text("wamid.bf1", 1760431800, "hi", user_id=u)],
                           [contact("Omar", user_id=u, username="@omar")]))
        self.post(envelope([text("wamid.bf2", 1760431900, "my number", wa_id=w, user_id=u)],
                           [contact("Omar", wa_id=w, user_id=u)]))
        self.post(envelope([text("wamid.bf3", 1760432000, "old app", wa_id=w)],
                           [contact("Omar", wa_id=w)]))
        rows = self.contacts_of("wa_id = :'w' OR user_id = :'u'", w=w, u=u)
        self.assertEqual([r[1:3] for r in rows], [[w, u]])
        tickets = self.tickets(u)
        self.assertEqual(len(tickets), 1)
        self.assertEqual(self.linked(tickets[0]["id"]), ["phone_added"])
        self.assert_verified()

    def test_two_contacts_found_to_be_one_are_merged(self):
        w, u = "923001110003", "PK.1110003"
        self.post(envelope([text("wamid.m1", 1760431800, "by number", wa_id=w)],
                           [contact("Rida", wa_id=w)]))
        # the number is hidden this time: nothing links it yet, so a second contact appears
        self.post(envelope([text("wamid.m2", 1760431900, "by username", user_id=u)],
                           [contact("Rida", user_id=u, username="@rida")]))
        self.assertEqual(len(self.contacts_of("wa_id = :'w' OR user_id = :'u'", w=w, u=u)), 2)
        # both ids together: the later contact folds into the earlier one
        self.post(envelope([text("wamid.m3", 1760432000, "both", wa_id=w, user_id=u)],
                           [contact("Rida", wa_id=w, user_id=u)]))
        rows = self.contacts_of("wa_id = :'w' OR user_id = :'u'", w=w, u=u)
        self.assertEqual(rows[1][4], rows[0][0], rows)  # merged_into the first
        later = self.post(envelope([text("wamid.m4", 1760432100, "after", user_id=u)],
                                   [contact("Rida", user_id=u)]))
        self.assertEqual(later["messages_new"], 1, (later, self.srv.read_log()[-3000:]))
        survivor = self.one("SELECT contact_id FROM messages WHERE wamid = 'wamid.m4'")
        self.assertEqual(survivor, rows[0][0])
        self.assertIn("merged", sum((self.linked(t["id"]) for t in self.tickets(w)), []))
        self.assert_verified()

    def test_edits_and_deletions_keep_every_version(self):
        self.post(fixture("text_with_bsuid.json"))
        self.post(fixture("edit_text.json"))
        second = envelope([{"from": AYESHA, "from_user_id": AYESHA_BSUID, "id": "wamid.edit2",
                            "timestamp": "1760432050", "type": "edit",
                            "edit": {"original_message_id": ORIGINAL,
                                     "message": {"type": "text",
                                                 "text": {"body": "third version"}}}}],
                          [contact("Ayesha Khan", wa_id=AYESHA, user_id=AYESHA_BSUID)])
        self.post(second)
        self.post(fixture("revoke.json"))
        tid = self.one("SELECT ticket_id FROM messages WHERE wamid = :'w'", w=ORIGINAL)
        items = self.srv.get(f"/api/tickets/{tid}/timeline", token=self.token).json()["items"]
        original = msg(items, ORIGINAL)
        self.assertEqual(original["text"], "any update on my refund?")  # kept whole
        self.assertEqual([e["text"] for e in original["edits"]],
                         ["any update on my refund? it has been 10 days", "third version"])
        self.assertEqual(original["deleted"]["by"], "customer")
        self.assertEqual(original["deleted"]["at"], "2025-10-14T08:55:00.000000Z")
        edit = msg(items, "wamid.HBgMOTIzMDAxMjM0NTY3FQIAEhgUQ0U0NTBGMzQ4MjE3RTBCQTg2QjIA")
        self.assertEqual(edit["original"]["text"], "any update on my refund?")
        self.assertEqual(edit["text"], "any update on my refund? it has been 10 days")
        revoke = next(i for i in items if i["kind"] == "message" and i["type"] == "revoke")
        self.assertEqual(revoke["target_wamid"], ORIGINAL)
        self.assert_verified()

    def test_edit_before_its_original_is_linked_when_it_arrives(self):
        w = "923001110004"
        early = envelope([{"from": w, "id": "wamid.early-edit", "timestamp": "1760432200",
                           "type": "edit", "edit": {"original_message_id": "wamid.late-orig",
                                                    "message": {"type": "text",
                                                                "text": {"body": "fixed"}}}}],
                         [contact("Zoya", wa_id=w)])
        self.post(early)
        self.post(envelope([text("wamid.late-orig", 1760432100, "typo", wa_id=w)],
                           [contact("Zoya", wa_id=w)]))
        tid = self.one("SELECT ticket_id FROM messages WHERE wamid = 'wamid.late-orig'")
        items = self.srv.get(f"/api/tickets/{tid}/timeline", token=self.token).json()["items"]
        orig = msg(items, "wamid.late-orig")
        self.assertEqual([e["text"] for e in orig["edits"]], ["fixed"])
        edit = msg(items, "wamid.early-edit")
        self.assertEqual(edit["original"]["text"], "typo")
        self.assert_verified()

    def test_business_app_replies_are_outbound_messages(self):
        self.post(fixture("text_with_bsuid.json"))
        out = self.post(fixture("smb_message_echo.json"))
        self.assertEqual(out["messages_new"], 1)
        row = self.q("SELECT direction, ticket_id, body FROM messages WHERE wamid ="
                     " 'wamid.HBgMOTIzMDAxMjM0NTY3FQIAERgSOUFCQzEyMzQ1Njc4OUFCQ0RFAA=='")[0]
        self.assertEqual(row[0], "out")
        self.assertEqual(row[2], "Assalam o alaikum, your refund was sent today.")
        tid = row[1]
        self.assertEqual(self.one("SELECT ticket_id FROM messages WHERE wamid = :'w'",
                                  w=ORIGINAL), tid)
        t = self.srv.get(f"/api/tickets/{tid}", token=self.token).json()
        self.assertEqual(t["first_response_at"], "2025-10-14T08:56:40.000000Z")
        ev = self.q("SELECT actor_type, actor_id FROM events WHERE ticket_id = :'t'"
                    " AND action = 'message.echoed'", t=tid)
        self.assertEqual(ev, [["system", "business-app"]])
        items = self.srv.get(f"/api/tickets/{tid}/timeline", token=self.token).json()["items"]
        echo = next(i for i in items if i["kind"] == "message" and i["direction"] == "out")
        self.assertEqual(echo["sent_from"], "business_app")
        # an echo edited from the phone keeps both versions
        edit = envelope(echoes=[{"from": "15550123456", "to": AYESHA, "to_user_id": AYESHA_BSUID,
                                 "id": "wamid.echo-edit", "timestamp": "1760432300",
                                 "type": "edit", "edit": {
                                     "original_message_id": echo["wamid"],
                                     "message": {"type": "text", "text": {"body": "sent now"}}}}],
                        field="smb_message_echoes")
        self.post(edit)
        items = self.srv.get(f"/api/tickets/{tid}/timeline", token=self.token).json()["items"]
        echo = msg(items, echo["wamid"])
        self.assertEqual([e["text"] for e in echo["edits"]], ["sent now"])
        # an echo of a message already stored (same wamid) changes nothing
        before = self.q("SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM events)")
        again = json.loads(fixture("smb_message_echo.json"))
        again["entry"][0]["id"] = "104857392016474"  # other bytes, same wamid
        self.assertEqual(self.post(again)["messages_duplicate"], 1)
        self.assertEqual(self.q("SELECT (SELECT count(*) FROM messages),"
                                " (SELECT count(*) FROM events)"), before)
        self.assert_verified()

    def test_changed_bsuid_keeps_one_history(self):
        w, u1, u2 = "923001110005", "PK.1110005", "PK.2220005"
        self.post(envelope([text("wamid.cb1", 1760431800, "hi", wa_id=w, user_id=u1)],
                           [contact("Adil", wa_id=w, user_id=u1)]))
        sysmsg = {"from": w, "from_user_id": u1, "id": "wamid.cb-sys", "timestamp": "1760431900",
                  "type": "system", "system": {"type": "user_changed_user_id", "user_id": u2,
                                               "body": "User changed their user id"}}
        self.post(envelope([sysmsg], [contact("Adil", wa_id=w, user_id=u1)]))
        self.post(envelope([text("wamid.cb2", 1760432000, "new id", user_id=u2)],
                           [contact("Adil", user_id=u2)]))
        rows = self.contacts_of("wa_id = :'w' OR user_id IN (:'a', :'b')", w=w, a=u1, b=u2)
        # the contact now carries the new BSUID; the old one is an alias that points at it
        self.assertEqual([r[1:5] for r in rows], [[w, u2, "", ""], ["", u1, "", rows[0][0]]])
        self.assertEqual(self.tickets(u1), self.tickets(u2))
        tickets = self.tickets(u2)
        self.assertEqual(len(tickets), 1)
        self.assertEqual(self.linked(tickets[0]["id"]), ["bsuid_changed"])
        # a user_id_update webhook moves the contact again, recorded in its ticket
        u3 = "PK.3330005"
        update = envelope(field="user_id_update")
        update["entry"][0]["changes"][0]["value"]["user_id_update"] = [
            {"old_user_id": u2, "new_user_id": u3, "timestamp": "1760432100"}]
        self.post(update)
        self.assertEqual(self.one("SELECT user_id FROM contacts WHERE wa_id = :'w'", w=w), u3)
        # late deliveries under any earlier id still reach the same customer
        late = self.post(envelope([text("wamid.cb-late", 1760431950, "late", user_id=u1)],
                                  [contact("Adil", user_id=u1)]))
        self.assertEqual(late["messages_new"], 1)
        self.assertEqual(self.one("SELECT ticket_id FROM messages WHERE wamid = 'wamid.cb-late'"),
                         str(tickets[0]["id"]))
        self.assertEqual(self.linked(tickets[0]["id"]), ["bsuid_changed", "bsuid_changed"])
        self.assertEqual(len(self.tickets(u3)), 1)
        self.assert_verified()

    def test_changed_number_keeps_one_history(self):
        # the older customer_changed_number shape (fixture), then a message from the new number
        self.post(fixture("text.json"))
        self.post(fixture("system_customer_changed_number.json"))
        new = "923451239876"
        self.post(envelope([text("wamid.cn1", 1760432500, "new phone, same me", wa_id=new)],
                           [contact("Ayesha Khan", wa_id=new)]))
        rows = self.contacts_of("(wa_id IN (:'a', :'b')) AND merged_into IS NULL", a=AYESHA, b=new)
        self.assertEqual(len(rows), 1, rows)
        tickets = self.tickets(new)
        self.assertEqual(len(tickets), 1)
        self.assertEqual(self.tickets(AYESHA), tickets)  # the old number still finds her
        self.assertIn("number_changed", self.linked(tickets[0]["id"]))
        # the 2026 shape: a new number comes with a new BSUID
        w1, u1, w2, u2 = "923001110006", "PK.1110006", "923001110007", "PK.2220006"
        self.post(envelope([text("wamid.cn2", 1760431800, "hi", wa_id=w1, user_id=u1)],
                           [contact("Bina", wa_id=w1, user_id=u1)]))
        sysmsg = {"from": w1, "from_user_id": u1, "id": "wamid.cn-sys", "timestamp": "1760431900",
                  "type": "system", "system": {"type": "user_changed_number", "wa_id": w2,
                                               "user_id": u2, "body": "changed number"}}
        self.post(envelope([sysmsg], [contact("Bina", wa_id=w1, user_id=u1)]))
        self.post(envelope([text("wamid.cn3", 1760432000, "from new", wa_id=w2, user_id=u2)],
                           [contact("Bina", wa_id=w2, user_id=u2)]))
        rows = self.contacts_of("(wa_id IN (:'a', :'b') OR user_id IN (:'c', :'d'))"
                                " AND merged_into IS NULL", a=w1, b=w2, c=u1, d=u2)
        self.assertEqual([r[1:3] for r in rows], [[w2, u2]])
        self.assertEqual(len(self.tickets(u2)), 1)
        self.assert_verified()

    def test_statuses_keep_bsuid_and_username(self):
        self.post(fixture("text_with_bsuid.json"))
        self.post(fixture("smb_message_echo.json"))
        echo = "wamid.HBgMOTIzMDAxMjM0NTY3FQIAERgSOUFCQzEyMzQ1Njc4OUFCQ0RFAA=="
        st = envelope(statuses=[{"id": echo, "status": "read", "timestamp": "1760432400",
                                 "recipient_user_id": AYESHA_BSUID}],
                      contacts=[{"profile": {"username": "@ayesha"}, "user_id": AYESHA_BSUID}])
        self.post(st)
        row = self.q("SELECT recipient_id, recipient_user_id, username FROM message_statuses"
                     " WHERE wamid = :'w' AND status = 'read'", w=echo)
        self.assertEqual(row, [["", AYESHA_BSUID, "@ayesha"]])
        # a failed status with no contacts at all is stored as well
        failed = envelope(statuses=[{"id": echo, "status": "failed", "timestamp": "1760432500",
                                     "errors": [{"code": 131026, "title": "Undeliverable"}]}])
        self.assertEqual(self.post(failed)["statuses_new"], 1)
        self.assert_verified()


if __name__ == "__main__":
    harness.main()
