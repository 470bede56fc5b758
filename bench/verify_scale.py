"""bench/verify_scale.py: the data and the measurements behind bench/verify_scale.

  generate  writes a realistic casetrail record of N events (tickets of --per-ticket events and
            one big ticket) as COPY files, computing every hash, text digest and payload SHA-256
            in Python from docs/audit-format.md (never by calling casetrail), and loads it with
            one COPY per table into the (migrated, empty) database psql reaches via PG* variables.
            --viewer varies the record for the viewer's queue (bench/viewer_scale): a second
            business number, unassigned and handed-off tickets, pending approvals, more Urdu and
            Roman Urdu text; without it the record is exactly what it was.
  api       times GET /api/tickets/{id}/verify on a running server: --calls calls, one at a time.
  report    prints the figures of one run from the files the wrapper left in --dir.

Stdlib only. The record is what casetrail writes, row for row: contacts, one webhook receipt per
message (the raw POST bytes), messages with their payloads, tickets whose status, priority,
escalation and assignee are what their events say, approvals, event_texts, text_salts, and the
two staff users (an agent and a supervisor) with their user.created events.
"""
import argparse
import base64
import hashlib
import heapq
import hmac
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import time

ZERO = bytes(32)
T0 = 1735689600                     # 2025-01-01T00:00:00Z: the first ticket
SPAN = 365 * 86400                  # tickets open over a year, so chains interleave in the heap
PHONE_NUMBER_ID = "117293845601928"
DISPLAY_NUMBER = "923211234500"
# --viewer: a second business number, for every fifth ticket
PHONE_NUMBER_ID_2 = "117293845601929"
DISPLAY_NUMBER_2 = "923211234511"
CURRENCY = "USD"
REFUND_RULE_ID = 1                  # 'refund' is the first row 0003_workflow.sql inserts

AGENT = (1, "agent.sana", "agent", 5000)
SUPERVISOR = (2, "supervisor.imran", "supervisor", 100000)

NAMES = ["Ayesha Khan", "Bilal Ahmed", "Fatima Noor", "Hamza Siddiqui", "Zainab Ali", "Usman Tariq",
         "Maryam Iqbal", "Ali Raza", "Hira Baig", "Omar Farooq", "Sara Malik", "عائشہ", "Danish"]
# No complaint keyword (0003_workflow.sql) in these: such a message escalates (see COMPLAINTS)
BODIES = ["Hello, where is my order {n}?", "Order {n} ka status kya hai?", "Any update on {n}?",
          "I paid for order {n} yesterday, please confirm", "Kab tak deliver hoga {n}?",
          "Thank you!", "Please call me back about order {n}", "آرڈر {n} کب آئے گا؟",
          "Can I change the address for {n}?", "Rider ne call nahi ki, order {n}",
          "Is cash on delivery available?", "ok shukriya", "Order {n}: size M instead of L please"]
# --viewer: more Urdu and Roman Urdu (and English) for the queue search to find; still no
# complaint keyword. "tracking" and "شکریہ" appear only here.
VIEWER_BODIES = ["Mera parcel abhi tak nahi pohncha, order {n}", "Delivery boy ka number de dein",
                 "شکریہ، آپ نے جلدی جواب دیا", "براہ کرم آرڈر {n} کی تفصیل بھیجیں",
                 "Jaldi bhej dein please, order {n}", "What is the tracking number for {n}?",
                 "Bhai tracking number kya hai?", "کیا میں ادائیگی کارڈ سے کر سکتا ہوں؟"]
HANDOFF_REASONS = ["shift change", "needs a supervisor", "customer asked for Urdu support"]
COMPLAINTS = ["I want a refund for order {n}", "Refund please, order {n}"]  # only 'refund' matches
NOTES = ["Called the courier, parcel at the hub", "Customer confirmed the new address",
         "Checked payment: received", "Asked the warehouse for a photo of the parcel",
         "Follow up tomorrow morning", "Courier booked for redelivery"]
PENDING = ["awaiting_customer", "awaiting_courier", "awaiting_internal"]
RESOLUTIONS = ["Delivered, customer confirmed", "Refund issued to the original card",
               "Address changed, parcel rebooked", "Answered the question"]
PRIORITY_REASONS = ["VIP customer", "Second contact about the same order", None]
APPROVAL_REASONS = ["Parcel lost by courier", "Goodwill gesture after two failed deliveries",
                    "Duplicate charge on the card"]
DECISION_REASONS = ["Checked with finance", "Within policy after review", "Not eligible: delivered"]


# ---- the format (docs/audit-format.md) ----

def canonical_json(obj):
    """Keys sorted bytewise, no white space, integers only. Our values are ids, enum names, hex
    and ASCII words: no control characters, which json.dumps would write differently (\\n vs
    \\u000a), and only BMP keys, where code point order is byte order."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def field(name, value):
    if value is None:
        return b"%s:-\n" % name
    v = value.encode()
    return b"%s:%d:%s\n" % (name, len(v), v)


def event_hash(prev, chain, seq, action, actor_type, actor_id, frm, to, occ_us, rec_us, data,
               digests):
    canon = b"".join((b"casetrail-event-v1\n", field(b"chain", chain), field(b"seq", str(seq)),
                      field(b"action", action), field(b"actor_type", actor_type),
                      field(b"actor_id", actor_id), field(b"from", frm), field(b"to", to),
                      field(b"occurred_us", str(occ_us)), field(b"recorded_us", str(rec_us)),
                      field(b"data", data), field(b"digests", digests)))
    return hashlib.sha256(prev + canon).digest()


def text_digest(salt, text):
    return hmac.digest(salt, text.encode(), "sha256").hex()


def jsonb_text(v):
    r"""How PostgreSQL prints a jsonb value (payload::text): object keys by length, then bytes;
    ", " and ": " separators. Strings as escape_json writes them: \" \\ \b \f \n \r \t, other
    control characters as \u00xx (lower case), the rest as UTF-8, which is exactly what
    json.dumps(ensure_ascii=False) writes."""
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: (len(k.encode()), k.encode()))
        return "{" + ", ".join(jsonb_text(k) + ": " + jsonb_text(v[k]) for k in keys) + "}"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    raise TypeError(type(v))


# ---- COPY text format ----

def cp(v):
    """One COPY text column: \\N for NULL, backslash, tab, newline and return escaped."""
    if v is None:
        return "\\N"
    if isinstance(v, (bytes, bytearray)):
        return "\\\\x" + v.hex()
    s = str(v)
    if "\\" in s or "\t" in s or "\n" in s or "\r" in s:
        s = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return s


def row(*cols):
    return "\t".join(cp(c) for c in cols) + "\n"


_DAYS = {}


def ts(us):
    """Unix microseconds as a timestamptz literal in UTC (exact to the microsecond)."""
    secs, frac = divmod(us, 1000000)
    day, sod = divmod(secs, 86400)
    d = _DAYS.get(day)
    if d is None:
        d = _DAYS[day] = time.strftime("%Y-%m-%d ", time.gmtime(day * 86400))
    h, rem = divmod(sod, 3600)
    return "%s%02d:%02d:%02d.%06d+00" % (d, h, rem // 60, rem % 60, frac)


# ---- the record ----

class Writer:
    """COPY files, one per table, and the counters that hand out ids."""

    TABLES = ["users", "text_salts", "contacts", "webhook_receipts", "tickets", "messages",
              "approvals", "events", "event_texts"]

    def __init__(self, folder):
        self.folder = folder
        self.f = {t: open(os.path.join(folder, t + ".copy"), "w", encoding="utf-8",
                          buffering=1 << 20) for t in self.TABLES}
        self.next_id = {"messages": 1, "webhook_receipts": 1, "approvals": 1, "events": 1}
        self.counts = {t: 0 for t in self.TABLES}

    def take(self, table):
        i = self.next_id[table]
        self.next_id[table] = i + 1
        return i

    def put(self, table, line):
        self.f[table].write(line)
        self.counts[table] += 1

    def close(self):
        for f in self.f.values():
            f.close()


class Ticket:
    """One ticket's chain, generated lazily in time order: events() yields each event as a tuple
    (recorded_us, ticket, seq, hashed fields ..., prev_hash, hash, texts), its hash already
    computed. Side rows (receipt, message, approval) are written when their event is made; the
    ticket and contact rows, which hold where the chain ends, by finish()."""

    def __init__(self, w, tid, length, final, salt, staff_salt, rnd, gap_max, viewer=False):
        self.w, self.id, self.length, self.final = w, tid, length, final
        self.salt, self.staff_salt, self.rnd, self.gap_max = salt, staff_salt, rnd, gap_max
        self.chain = "ticket:%d" % tid
        self.scope = "contact:%d" % tid          # one contact per ticket: ids coincide
        self.wa_id = "92300%07d" % tid
        self.name = "%s %d" % (rnd.choice(NAMES), tid)
        self.seq, self.prev = 0, ZERO
        self.status, self.priority, self.esc, self.assignee = "new", "normal", 0, None
        self.complaint_escalated = False
        self.t_us = (T0 + (tid * 7919 % 100000) * SPAN // 100000) * 1000000
        self.created_us = self.updated_us = self.last_msg_us = None
        self.contact_name_at = None
        # --viewer varies the record for the queue's filters (bench/viewer_scale); without it
        # nothing here changes, nor a single draw of rnd
        self.viewer = viewer
        self.pnid, self.display = PHONE_NUMBER_ID, DISPLAY_NUMBER
        if viewer and tid % 5 == 0:
            self.pnid, self.display = PHONE_NUMBER_ID_2, DISPLAY_NUMBER_2

    # -- clock --
    def tick(self, lo=20, hi=None):
        self.t_us += self.rnd.randint(lo, hi or self.gap_max) * 1000000 + self.rnd.randint(0, 999999)
        return self.t_us

    # -- one event --
    def event(self, action, actor_type, actor_id, frm, to, occ_us, rec_us, data, texts):
        """texts: [(field, body, salt, scope)]; returns the yielded tuple."""
        self.seq += 1
        digests = None
        if texts:
            digests = canonical_json({f: text_digest(s, b) for f, b, s, _ in texts})
        data_c = canonical_json(data) if data is not None else None
        prev = self.prev
        h = event_hash(prev, self.chain, self.seq, action, actor_type, actor_id, frm, to,
                       occ_us, rec_us, data_c, digests)
        self.prev = h
        self.updated_us = rec_us
        if self.created_us is None:
            self.created_us = rec_us
        return (rec_us, self.id, self.seq, action, actor_type, actor_id, frm, to, data_c, digests,
                occ_us, prev, h, [(f, b, scope) for f, b, _, scope in texts])

    def staff(self, who, action, frm=None, to=None, data=None, **texts):
        uid, uname = who[0], who[1]
        rec = self.tick()
        tx = [("actor_name", uname, self.staff_salt, "staff")]
        tx += [(f, b, self.staff_salt, "staff") for f, b in texts.items() if b is not None]
        return self.event(action, "agent", str(uid), frm, to, rec, rec, data, tx)

    # -- a customer's message: receipt, message row, events --
    def message(self, complaint=False):
        sent_s = self.tick(60, None) // 1000000
        n = self.rnd.randint(10000, 99999)
        pool = COMPLAINTS if complaint else BODIES + VIEWER_BODIES if self.viewer else BODIES
        body = self.rnd.choice(pool).format(n=n)
        mid = self.w.take("messages")
        rid = self.w.take("webhook_receipts")
        wamid = "wamid.HBgM%sFQIAEhgg%s" % (self.wa_id, base64.b32encode(
            hashlib.sha256(b"%d" % mid).digest()[:15]).decode())
        payload = {"from": self.wa_id, "id": wamid, "timestamp": str(sent_s), "type": "text",
                   "text": {"body": body}}
        hook = {"object": "whatsapp_business_account", "entry": [{"id": "1090001", "changes": [{
            "value": {"messaging_product": "whatsapp",
                      "metadata": {"display_phone_number": self.display,
                                   "phone_number_id": self.pnid},
                      "contacts": [{"profile": {"name": self.name}, "wa_id": self.wa_id}],
                      "messages": [payload]}, "field": "messages"}]}]}
        raw = json.dumps(hook, separators=(",", ":")).encode()    # Meta escapes non-ASCII
        rsha = hashlib.sha256(raw).digest()
        payload_text = jsonb_text(payload)
        psha = hashlib.sha256(payload_text.encode()).hexdigest()
        recv_us = sent_s * 1000000 + self.rnd.randint(300000, 2500000)
        self.w.put("webhook_receipts", row(rid, ts(recv_us), raw, rsha, len(raw), "t", 1, 0, 0))
        out = []
        occ = sent_s * 1000000
        rec = recv_us + 900
        cust = lambda: [("actor_name", self.name, self.salt, self.scope)]
        if self.seq == 0:
            out.append(self.event("ticket.created", "customer", self.wa_id, None, "new", occ, rec,
                                  {"contact_id": self.id, "phone_number_id": self.pnid,
                                   "wamid": wamid}, cust()))
            rec += 700
        elif self.status == "resolved":
            out.append(self.event("ticket.reopened", "customer", self.wa_id, "resolved", "open",
                                  occ, rec, None, cust()))
            self.status = "open"
            rec += 700
        self.w.put("messages", row(mid, wamid, self.id, self.id, "in", "text", body, payload_text,
                                   None, ts(occ), ts(recv_us + 400), rid, None, None, None, None))
        out.append(self.event("message.received", "customer", self.wa_id, None, None, occ, rec,
                              {"message_id": mid, "wamid": wamid, "type": "text",
                               "receipt_id": rid, "receipt_sha256": rsha.hex(),
                               "payload_sha256": psha},
                              cust() + [("body", body, self.salt, self.scope)]))
        self.last_msg_us = occ if self.last_msg_us is None else max(self.last_msg_us, occ)
        self.contact_name_at = occ
        if complaint:        # ct_workflow_detect_complaint, in the same transaction
            out.append(self.event("escalation.raised", "system", "complaint-rules", "0", "1", occ,
                                  rec + 650, {"rule_id": REFUND_RULE_ID},
                                  [("reason", "complaint rule matched: refund", self.staff_salt,
                                    "staff")]))
            self.esc, self.complaint_escalated = 1, True
        return out

    def message_size(self, complaint):
        return 1 + (self.status == "resolved") + complaint

    def approval(self):
        aid = self.w.take("approvals")
        refund = self.rnd.random() < 0.7
        amount = self.rnd.randint(5, 400) * 100 if refund else None
        data = {"approval_id": aid, "approval_kind": "refund" if refund else "exception",
                "requested_by": AGENT[0]}
        if refund:
            data.update(amount_minor=amount, currency=CURRENCY)
        reason = self.rnd.choice(APPROVAL_REASONS)
        req = self.staff(AGENT, "approval.requested", None, "pending", data, reason=reason)
        req_us = req[0]
        if self.viewer and self.rnd.random() < 0.35:     # still waiting for a supervisor
            self.w.put("approvals", row(aid, self.id, data["approval_kind"], amount,
                                        CURRENCY if refund else None, "pending", AGENT[0],
                                        ts(req_us), reason, None, None, None))
            return [req]
        decision = "approved" if self.rnd.random() < 0.8 else "denied"
        dreason = self.rnd.choice(DECISION_REASONS)
        dec = self.staff(SUPERVISOR, "approval.decided", "pending", decision, data, reason=dreason)
        self.w.put("approvals", row(aid, self.id, data["approval_kind"], amount,
                                    CURRENCY if refund else None, decision, AGENT[0], ts(req_us),
                                    reason, SUPERVISOR[0], ts(dec[0]), dreason))
        return [req, dec]

    def set_status(self, to, reason=None, who=AGENT):
        ev = self.staff(who, "status.changed", self.status, to, reason=reason)
        self.status = to
        return [ev]

    def note(self):
        return [self.staff(AGENT, "note.added", note=self.rnd.choice(NOTES))]

    def steps(self):
        """Yields lists of events until the chain holds self.length."""
        rnd = self.rnd
        yield self.message()                                   # ticket.created + message
        # --viewer: one ticket in eight of those that need not end open is still new and
        # nobody's
        untaken = self.viewer and self.final != "open" and rnd.random() < 0.125
        if self.length - self.seq >= 2 and not untaken:        # an agent takes it: assign, open
            yield [self.staff(AGENT, "assignment.changed", None, str(AGENT[0]))]
            self.assignee = AGENT[0]
            yield self.set_status("open")
        while True:
            left = self.length - self.seq
            if self.status == "closed":
                break
            # what the end needs: resolved takes one event, closed two (resolve, then close)
            need = {"open": 0, "resolved": 1, "closed": 2}[self.final]
            if self.status == "resolved" and self.final != "open":
                need -= 1
            if self.status == "new":
                need = 0
            if left <= need:
                if left == 0:
                    break
                if self.status in ("open", "pending"):
                    yield self.set_status("resolved", rnd.choice(RESOLUTIONS))
                else:
                    yield self.set_status("closed")
                continue
            room = left - need
            if self.viewer and self.assignee is not None:
                v = rnd.random()
                if v < 0.04:                                   # handed to the other one
                    to = SUPERVISOR if self.assignee == AGENT[0] else AGENT
                    ev = self.staff(SUPERVISOR, "assignment.changed", str(self.assignee),
                                    str(to[0]), reason=rnd.choice(HANDOFF_REASONS))
                    self.assignee = to[0]
                    yield [ev]
                    continue
                if v < 0.06:                                   # back to the queue
                    ev = self.staff(SUPERVISOR, "assignment.changed", str(self.assignee), None,
                                    reason="back to the queue")
                    self.assignee = None
                    yield [ev]
                    continue
            r = rnd.random()
            if r < 0.42:
                complaint = (self.esc == 0 and not self.complaint_escalated
                             and rnd.random() < 0.02)
                if self.message_size(complaint) <= room:
                    yield self.message(complaint)
                    continue
            elif r < 0.50 and self.status == "open":
                yield self.set_status("pending", rnd.choice(PENDING))
                continue
            elif r < 0.58 and self.status == "pending":
                yield self.set_status("open")
                continue
            elif r < 0.63:
                to = rnd.choice([p for p in ("low", "normal", "high", "urgent")
                                 if p != self.priority])
                ev = self.staff(AGENT, "priority.changed", self.priority, to,
                                reason=rnd.choice(PRIORITY_REASONS))
                self.priority = to
                yield [ev]
                continue
            elif r < 0.65 and self.esc < 3:
                ev = self.staff(AGENT, "escalation.raised", str(self.esc), str(self.esc + 1),
                                reason="Customer asked for a supervisor")
                self.esc += 1
                yield [ev]
                continue
            elif r < 0.67 and self.esc > 0:
                ev = self.staff(SUPERVISOR, "escalation.lowered", str(self.esc), str(self.esc - 1),
                                reason="Handled, back to normal handling")
                self.esc -= 1
                self.complaint_escalated = False
                yield [ev]
                continue
            elif r < 0.675 and room >= 2:
                yield self.approval()
                continue
            elif r < 0.71 and self.status in ("open", "pending") and room >= 2:
                # resolved mid-way; the customer's next message reopens it
                yield self.set_status("resolved", rnd.choice(RESOLUTIONS))
                continue
            yield self.note()

    def events(self):
        for batch in self.steps():
            for ev in batch:
                yield ev
        assert self.seq == self.length, (self.id, self.seq, self.length)

    def finish(self):
        w = self.w
        w.put("contacts", row(self.id, self.pnid, self.wa_id, self.name,
                              ts(self.contact_name_at), ts(self.created_us), ts(self.updated_us)))
        w.put("tickets", row(self.id, self.id, self.pnid, self.status, self.assignee,
                             self.esc, self.priority, ts(self.created_us), ts(self.updated_us),
                             ts(self.last_msg_us), self.seq, self.prev,
                             "t" if self.complaint_escalated else "f"))


def user_events(w, staff_salt, token_hash):
    """The agent and the supervisor as `casetrail user add` records them (actor: the CLI)."""
    for i, (uid, name, role, limit) in enumerate((AGENT, SUPERVISOR)):
        rec = (T0 - 86400 + 60 * i) * 1000000 + 123456
        data = canonical_json({"approval_limit_minor": limit})
        digests = canonical_json({"subject_name": text_digest(staff_salt, name)})
        h = event_hash(ZERO, "user:%d" % uid, 1, "user.created", "system", "cli", None, role,
                       rec, rec, data, digests)
        eid = w.take("events")
        w.put("events", row(eid, None, uid, 1, "user.created", "system", "cli", None, role, data,
                            digests, ts(rec), ts(rec), ZERO, h))
        w.put("event_texts", row(eid, "subject_name", name, "staff"))
        w.put("users", row(uid, name, role, limit, token_hash[uid], "t", ts(rec), ts(rec), 1, h))


def generate(a):
    os.makedirs(a.dir, exist_ok=True)
    w = Writer(a.dir)
    rnd = random.Random(a.seed)
    staff_salt = rnd.randbytes(32)
    # the agent's API token (the bench calls the API with it); the supervisor's is never used
    token = "ct_" + base64.urlsafe_b64encode(os.urandom(33)).decode()[:43]
    hashes = {AGENT[0]: hashlib.sha256(token.encode()).hexdigest(),
              SUPERVISOR[0]: hashlib.sha256(os.urandom(32)).hexdigest()}
    with open(os.path.join(a.dir, "token"), "w", opener=lambda p, f: os.open(p, f, 0o600)) as f:
        f.write(token)
    user_events(w, staff_salt, hashes)
    w.put("text_salts", row("staff", staff_salt, ts(T0 * 1000000 - 86400000000), None))

    # sizes: 2 user events, the big ticket, then tickets of per_ticket (the last takes the rest)
    rest = a.events - 2 - a.big
    if rest < a.per_ticket:
        sys.exit("verify_scale: --events must be at least 2 + --big + --per-ticket")
    sizes = [a.per_ticket] * (rest // a.per_ticket)
    sizes[-1] += rest % a.per_ticket
    big_index = len(sizes) // 2           # the big ticket sits among the others, id-wise
    sizes.insert(big_index, a.big)
    finals = ["open", "resolved", "closed"]
    tickets = []
    for i, n in enumerate(sizes):
        tid = i + 1
        trnd = random.Random(a.seed * 1000003 + tid)
        big = i == big_index
        salt = trnd.randbytes(32)
        w.put("text_salts", row("contact:%d" % tid, salt, ts(T0 * 1000000), None))
        gap_max = max(60, 2 * SPAN // n) if big else 3 * 3600
        tickets.append(Ticket(w, tid, n, "open" if big else finals[tid % 3], salt, staff_salt,
                              trnd, gap_max, a.viewer))
    big_id = big_index + 1

    # every chain advances in time at once: events of different tickets interleave by
    # recorded_us, as they do in a real database (ids and heap order follow recording order)
    merged = heapq.merge(*(t.events() for t in tickets), key=lambda e: e[0])
    ev_file, tx_file, take = w.f["events"], w.f["event_texts"], w.take
    nev = ntx = 0
    t0 = time.perf_counter()
    for (rec, tid, seq, action, atype, aid, frm, to, data, digests, occ, prev, h,
         texts) in merged:
        eid = take("events")
        ev_file.write("\t".join((str(eid), str(tid), "\\N", str(seq), action, atype, aid,
                                 cp(frm), cp(to), cp(data), cp(digests), ts(occ), ts(rec),
                                 "\\\\x" + prev.hex(), "\\\\x" + h.hex())) + "\n")
        nev += 1
        for f, body, scope in texts:
            tx_file.write(row(eid, f, body, scope))
            ntx += 1
    w.counts["events"] += nev
    w.counts["event_texts"] += ntx
    for t in tickets:
        t.finish()
    w.close()
    with open(os.path.join(a.dir, "meta.json"), "w") as f:
        json.dump({"events": w.next_id["events"] - 1, "tickets": len(tickets), "users": 2,
                   "big_ticket": big_id, "big_events": a.big, "per_ticket": a.per_ticket,
                   "sizes": sizes,
                   "rows": w.counts, "generate_s": round(time.perf_counter() - t0, 1)}
                  | ({"viewer": True} if a.viewer else {}), f)
    return w


LOAD_SQL = r"""\set ON_ERROR_STOP 1
BEGIN;
\copy users (id, name, role, approval_limit_minor, token_hash, active, created_at, updated_at, last_seq, chain_head) FROM '{d}/users.copy'
\copy text_salts (scope, salt, created_at, destroyed_at) FROM '{d}/text_salts.copy'
\copy contacts (id, phone_number_id, wa_id, name, name_at, created_at, updated_at) FROM '{d}/contacts.copy'
\copy webhook_receipts (id, received_at, body, body_sha256, body_length, signature_verified, messages, statuses, rejected) FROM '{d}/webhook_receipts.copy'
\copy tickets (id, contact_id, phone_number_id, status, assignee_id, escalation_level, priority, created_at, updated_at, last_message_at, last_seq, chain_head, complaint_escalated) FROM '{d}/tickets.copy'
\copy messages (id, wamid, ticket_id, contact_id, direction, type, body, payload, context_wamid, sent_at, received_at, receipt_id, status, status_at, error_code, error_title) FROM '{d}/messages.copy'
\copy approvals (id, ticket_id, kind, amount_minor, currency, status, requested_by, requested_at, reason, decided_by, decided_at, decision_reason) FROM '{d}/approvals.copy'
\copy events (id, ticket_id, user_id, seq, action, actor_type, actor_id, from_value, to_value, data, digests, occurred_at, recorded_at, prev_hash, hash) FROM '{d}/events.copy'
\copy event_texts (event_id, field, body, salt_scope) FROM '{d}/event_texts.copy'
SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM users), false);
SELECT setval(pg_get_serial_sequence('contacts', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM contacts), false);
SELECT setval(pg_get_serial_sequence('webhook_receipts', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM webhook_receipts), false);
SELECT setval(pg_get_serial_sequence('tickets', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM tickets), false);
SELECT setval(pg_get_serial_sequence('messages', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM messages), false);
SELECT setval(pg_get_serial_sequence('approvals', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM approvals), false);
SELECT setval(pg_get_serial_sequence('events', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM events), false);
COMMIT;
-- as a database that has been running a while: visibility map set, statistics gathered
VACUUM (ANALYZE) users, text_salts, contacts, webhook_receipts, tickets, messages, approvals,
    events, event_texts;
CHECKPOINT;
"""


def load(a):
    sql = os.path.join(a.dir, "load.sql")
    with open(sql, "w") as f:
        f.write(LOAD_SQL.replace("{d}", a.dir))
    t0 = time.perf_counter()
    subprocess.run(["psql", "-X", "-q", "-d", a.db, "-o", "/dev/null", "-f", sql], check=True,
                   env=dict(os.environ, PGCLIENTENCODING="UTF8"))
    return time.perf_counter() - t0


def cmd_generate(a):
    if a.per_ticket < 8:
        sys.exit("verify_scale: --per-ticket must be at least 8")
    t0 = time.perf_counter()
    w = generate(a)
    gen_s = time.perf_counter() - t0
    load_s = load(a)
    meta_path = os.path.join(a.dir, "meta.json")
    with open(meta_path) as f:
        meta = json.load(f)
    meta.update(generate_s=round(gen_s, 1), load_s=round(load_s, 1))
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    for t in Writer.TABLES:
        os.remove(os.path.join(a.dir, t + ".copy"))
    print("generated %d events in %d chains (%s) in %.1f s, loaded in %.1f s"
          % (meta["events"], meta["tickets"] + meta["users"],
             ", ".join("%s %d" % kv for kv in w.counts.items()), gen_s, load_s), file=sys.stderr)


def ticket_reads(db):
    """Scans of the tickets table so far: verify lists the tickets once, then reads each one's
    row twice (the chain head, then its fields), and nothing else reads it while verify runs.
    (Commits do not count chains: parallel workers commit too.)"""
    return int(subprocess.run(
        ["psql", "-X", "-Atq", "-d", db, "-c", "SELECT seq_scan + coalesce(idx_scan, 0)"
         " FROM pg_stat_user_tables WHERE relname = 'tickets'"],
        check=True, capture_output=True, text=True).stdout.strip())


def child_of(pid):
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        return int(d)
            except (OSError, ValueError, IndexError):
                pass
    return None


def peak_rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def cmd_cli_verify(a):
    """Runs `casetrail verify` under /usr/bin/time -v, at most --limit seconds. When the limit
    stops it, how far it got (tickets are verified in id order) and the peak RSS seen so far are
    what there is."""
    base = ticket_reads(a.db)
    out = open(os.path.join(a.dir, a.name + ".out"), "w")
    err = open(os.path.join(a.dir, a.name + ".err"), "w")
    t0 = time.perf_counter()
    proc = subprocess.Popen(["/usr/bin/time", "-v", "-o", os.path.join(a.dir, a.name + ".time"),
                             a.casetrail, "verify"], stdout=out, stderr=err)
    child, rss, samples, timed_out = None, 0, [], False
    try:
        while proc.poll() is None:
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            elapsed = time.perf_counter() - t0
            child = child or child_of(proc.pid)
            if child:
                rss = max(rss, peak_rss_kb(child))
            samples.append((round(elapsed, 1), ticket_reads(a.db) - base))
            if proc.poll() is None and a.limit > 0 and elapsed > a.limit:
                timed_out = True
                if child:
                    os.kill(child, 15)
                proc.wait()
    finally:
        if proc.poll() is None:          # interrupted: stop what we started
            if child:
                os.kill(child, 15)
            proc.terminate()
            proc.wait()
        out.close()
        err.close()
    wall = time.perf_counter() - t0
    # a stats flush waits for an idle moment: read the final count a little later
    time.sleep(1.5)
    done = {"rc": proc.returncode, "timed_out": timed_out, "wall_s": round(wall, 1),
            "ticket_reads": ticket_reads(a.db) - base, "rss_kb_seen": rss,
            "samples": samples[-5:]}
    with open(os.path.join(a.dir, a.name + ".json"), "w") as f:
        json.dump(done, f)
    print(json.dumps({k: v for k, v in done.items() if k != "samples"}), file=sys.stderr)


def api_calls(port, path, token, calls, timeout):
    out = []
    for _ in range(calls):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": "Bearer " + token})
        resp = conn.getresponse()
        body = resp.read()
        secs = time.perf_counter() - t0
        conn.close()
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {"raw": body[:200].decode(errors="replace")}
        doc.update(s=round(secs, 3), status=resp.status)
        out.append(doc)
    return out


def cmd_api(a):
    with open(a.token_file) as f:
        token = f.read().strip()
    json.dump(api_calls(a.port, "/api/tickets/%d/verify" % a.ticket, token, a.calls, a.timeout),
              sys.stdout)
    print()


def parse_time_v(path):
    """Elapsed, CPU and peak RSS from GNU time -v."""
    got = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().rpartition(": ")
            if k == "Maximum resident set size (kbytes)":
                got["rss_kb"] = int(v)
            elif k == "User time (seconds)":
                got["user_s"] = float(v)
            elif k == "System time (seconds)":
                got["sys_s"] = float(v)
            elif k.startswith("Elapsed (wall clock) time"):
                parts = [float(p) for p in v.split(":")]
                secs = 0.0
                for p in parts:
                    secs = secs * 60 + p
                got["wall_s"] = secs
    return got


def summary_line(path):
    """The JSON summary casetrail verify prints last."""
    with open(path) as f:
        lines = [l for l in f.read().splitlines() if l.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def cmd_report(a):
    d = a.dir
    load = lambda name: json.load(open(os.path.join(d, name)))
    meta = load("meta.json")
    chains = meta["tickets"] + meta["users"]
    v = load("verify.json")
    cli = summary_line(os.path.join(d, "verify.out"))
    tv = parse_time_v(os.path.join(d, "verify.time")) if not v["timed_out"] else {}
    api = load("api.json")
    sizes = meta["sizes"]
    last = "" if sizes[-1] == meta["per_ticket"] else " (the last %d)" % sizes[-1]
    print("verify at scale: %d events in %d chains: %d tickets of %d%s, one of %d (ticket %d), "
          "2 users" % (meta["events"], chains, meta["tickets"] - 1, meta["per_ticket"], last,
                       meta["big_events"], meta["big_ticket"]))
    print("  record: generated in %.1f s, loaded (COPY, VACUUM ANALYZE, CHECKPOINT) in %.1f s"
          % (meta["generate_s"], meta["load_s"]))
    print("    rows: " + ", ".join("%s %d" % (k, n) for k, n in meta["rows"].items()))
    if not v["timed_out"]:
        wall = tv.get("wall_s") or v["wall_s"]
        print("  casetrail verify (CLI, whole database): exit %s, ok %s, %s chains, %s events in "
              "%.1f s: %.0f events/s, %.1f chains/s; peak RSS %.1f MiB; CPU user %.1f s, sys %.1f s"
              % (v["rc"], cli.get("ok"), cli.get("chains"), cli.get("events"), wall,
                 (cli.get("events") or 0) / wall, chains / wall, tv.get("rss_kb", 0) / 1024.0,
                 tv.get("user_s", 0.0), tv.get("sys_s", 0.0)))
        print("    (scans of tickets: %d = 1 + 2 per ticket: %s)"
              % (v["ticket_reads"], v["ticket_reads"] == 1 + 2 * meta["tickets"]))
    else:
        done = min(meta["tickets"], max(0, v["ticket_reads"] - 1) // 2)
        # chains go in order: tickets by id, then users
        evs = sum(sizes[:done]) + max(0, done - len(sizes))
        wall = v["wall_s"]
        print("  casetrail verify (CLI, whole database): DID NOT FINISH within the limit of %d s "
              "(stopped after %.1f s)" % (a.limit, wall))
        print("    about %d of %d chains verified by then (scans of tickets), about %d "
              "events: %.0f events/s, %.2f chains/s; at that rate all %d chains would take about "
              "%.0f s (%.1f h); peak RSS seen %.1f MiB"
              % (done, chains, evs, evs / wall, done / wall, chains,
                 wall * chains / max(done, 1), wall * chains / max(done, 1) / 3600,
                 v["rss_kb_seen"] / 1024.0))
    ok = [c["s"] for c in api if c["status"] == 200 and c.get("ok")]
    print("  GET /api/tickets/%d/verify (%d events, Release server): %s; p50 %s s over %d calls "
          "(%s s)" % (meta["big_ticket"], meta["big_events"],
                      "ok, %s events each" % api[0].get("events") if len(ok) == len(api)
                      else "NOT ALL OK: %s" % api,
                      "%.3f" % statistics.median(ok) if ok else "n/a", len(api),
                      ", ".join("%.3f" % c["s"] for c in api)))
    with open(os.path.join(d, "tamper.txt")) as f:
        print("  tamper check: %s" % f.read().strip())
    t = load("tamper_api.json")[0]
    print("    GET /api/tickets/{id}/verify: HTTP %s in %.3f s, ok %s, table %s, row %s, field %s: "
          "%s" % (t["status"], t["s"], t.get("ok"), t.get("table"), t.get("row"), t.get("field"),
                  t.get("reason")))
    if os.path.exists(os.path.join(d, "tamper.json")):
        tj = load("tamper.json")
        with open(os.path.join(d, "tamper.out")) as f:
            fails = [l for l in f.read().splitlines() if l.startswith("FAIL")]
        print("    casetrail verify: exit %s in %.1f s, summary %s; %s"
              % (tj["rc"], tj["wall_s"], json.dumps(summary_line(os.path.join(d, "tamper.out"))),
                 " | ".join(fails) if fails else "no FAIL line"))
    else:
        print("    casetrail verify: not run again (the first run did not finish within the limit)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--dir", required=True)
    g.add_argument("--db", required=True)
    g.add_argument("--events", type=int, default=1000000)
    g.add_argument("--per-ticket", type=int, default=100)
    g.add_argument("--big", type=int, default=30000)
    g.add_argument("--seed", type=int, default=9)
    g.add_argument("--viewer", action="store_true",
                   help="vary the record for the viewer's queue filters and search (bench/viewer_scale):"
                        " a second business number, unassigned tickets, hand-offs, pending"
                        " approvals, more Urdu and Roman Urdu text")
    g.set_defaults(fn=cmd_generate)
    v = sub.add_parser("cli-verify")
    v.add_argument("--dir", required=True)
    v.add_argument("--db", required=True)
    v.add_argument("--name", required=True)
    v.add_argument("--limit", type=float, required=True)
    v.add_argument("--casetrail", default="build-release/casetrail")
    v.set_defaults(fn=cmd_cli_verify)
    c = sub.add_parser("api")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--ticket", type=int, required=True)
    c.add_argument("--token-file", required=True)
    c.add_argument("--calls", type=int, default=5)
    c.add_argument("--timeout", type=float, default=300)
    c.set_defaults(fn=cmd_api)
    r = sub.add_parser("report")
    r.add_argument("--dir", required=True)
    r.add_argument("--limit", type=int, required=True)
    r.set_defaults(fn=cmd_report)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
