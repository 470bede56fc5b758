"""The timeline viewer in a real browser (issue 12): seeds staff with passwords and signed
webhooks (an Urdu complaint, a message carrying <img src=x onerror=alert(1)>, a customer who
writes right to left, a worked ticket with a note and an approval), starts casetrail, and runs
tests/browser/viewer.test.mjs in headless Debian chromium through playwright-core: sign in,
search by an Urdu word, read a timeline in order, take a ticket and set it pending, watch a
second browser see it live, keyboard-only use, no script from customer text, axe-core, phone
width. Screenshots go to <build dir>/artifacts/ (queue.png, timeline.png).

Skips (77) when /usr/bin/chromium, node or tests/browser/node_modules is missing, unless
CASETRAIL_REQUIRE_BROWSER is set; then a missing piece fails. tests/browser/setup installs
them. When it fails, read the node output printed below (each step names itself), then web/js/
(the app) and the server log named in the failure."""
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import harness  # noqa: E402
from harness import ServerTest, add_user, post_webhook, text_payload  # noqa: E402

SKIP = 77
ROOT = harness.ROOT
BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
CHROMIUM = "/usr/bin/chromium"

AGENT, AGENT_PW = "amna", "amna-correct-horse-1"
OTHER, OTHER_PW = "bilal", "bilal-battery-staple-2"
SUP, SUP_PW = "sara", "sara-purple-monkey-3"
QA = "qadir"

URDU_WA_ID = "923001110005"
URDU_WORD = "پارسل"  # "parcel", in the Urdu complaint below
URDU_TEXT = "السلام علیکم، میرا پارسل ابھی تک نہیں ملا۔ آرڈر 4471 کہاں ہے؟"
XSS_TEXT = "<img src=x onerror=alert(1)> hello, is my order shipped?"
RTL_NAME = "فاطمہ بی بی"
BIG_MESSAGES = 5000  # 10,000 timeline items with their message.received events
RTL_TEXT = "مجھے رقم واپس چاہیے، order 5512 was damaged"


def browser_missing():
    """What the browser tests lack on this machine, in words (empty when nothing)."""
    missing = []
    if not os.path.exists(CHROMIUM):
        missing.append(CHROMIUM)
    if shutil.which("node") is None:
        missing.append("node")
    if shutil.which("pdftotext") is None:
        missing.append("pdftotext")
    for mod in ("playwright-core", "axe-core"):
        if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", mod)):
            missing.append(f"tests/browser/node_modules/{mod}")
    return missing


def set_password(dsn, name, password):
    """casetrail user set-password NAME, with the password on stdin (never in argv)."""
    r = subprocess.run([harness.env_or_die("CASETRAIL_BIN"), "user", "set-password", name],
                       cwd=ROOT, env=harness.base_env(dsn), input=password + "\n",
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"user set-password {name} failed ({r.returncode}): {r.stderr}")


def artifacts_dir():
    d = os.path.join(os.path.dirname(os.path.abspath(harness.env_or_die("CASETRAIL_BIN"))),
                     "artifacts")
    os.makedirs(d, exist_ok=True)
    return d


# inbound messages fewer minutes ago than this are "today's" (see Viewer.inbound)
RECENT_MINUTES = 120

class Viewer(ServerTest):
    """One server and database seeded with a small helpdesk's day, then the browser run."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.tokens = {AGENT: add_user(cls.dsn, AGENT, "agent"),
                          OTHER: add_user(cls.dsn, OTHER, "agent"),
                          SUP: add_user(cls.dsn, SUP, "supervisor", limit=500000),
                          QA: add_user(cls.dsn, QA, "qa")}
            for name, pw in ((AGENT, AGENT_PW), (OTHER, OTHER_PW), (SUP, SUP_PW)):
                set_password(cls.dsn, name, pw)
            cls.ids = cls.seed()
        except BaseException:
            # unittest does not call tearDownClass when setUpClass fails: stop the server and
            # drop the database here, or they outlive the test
            try:
                super().tearDownClass()
            except AssertionError as e:
                sys.stderr.write(f"{e}\n")
            raise

    _n = [0]

    @classmethod
    def inbound(cls, wa_id, name, body, minutes_ago, pnid=harness.PNID_A, extra=None):
        cls._n[0] += 1
        wamid = f"wamid.viewer.{os.getpid()}.{cls._n[0]}"
        now = time.time()
        if minutes_ago < RECENT_MINUTES:
            # "recent" means today (UTC, the server's days here) at any time of day: shortly
            # after midnight the offsets shrink in proportion, keeping their order, so no
            # recent ticket counts as yesterday's (the Active filter step expects one)
            since_midnight = (now % 86400) / 60
            minutes_ago *= max(0.001, min(1.0, (since_midnight - 0.2) / RECENT_MINUTES))
        ts = int(now) - int(minutes_ago * 60)
        r = post_webhook(cls.srv, text_payload(wamid, wa_id, ts, body, name=name, pnid=pnid,
                                               extra=extra))
        if r.status != 200:
            raise AssertionError(f"webhook refused: {r}")
        return wamid

    @classmethod
    def ticket_of(cls, wa_id):
        return int(harness.scalar(cls.dsn, "SELECT t.id FROM tickets t JOIN contacts c ON"
                                  " c.id = t.contact_id WHERE c.wa_id = :'w'"
                                  " ORDER BY t.id DESC LIMIT 1", w=wa_id))

    @classmethod
    def act(cls, who, path, body, want=(200, 201, 202)):
        r = cls.srv.post(path, body, token=cls.tokens[who])
        if r.status not in want:
            raise AssertionError(f"{who} POST {path}: {r} ({cls.srv.log_path})")
        return r.json()

    @classmethod
    def seed(cls):
        """A worked ticket, an escalated Roman Urdu complaint, the hostile message, the right-
        to-left customer and, last, the Urdu complaint the browser searches for."""
        big = cls.seed_big("923001110009", BIG_MESSAGES)
        worked = "923001110001"
        w1 = cls.inbound(worked, "Imran Qureshi", "Hi, I was charged twice for order 5512.", 95)
        tid = cls.ticket_of(worked)
        cls.act(AGENT, f"/api/tickets/{tid}/assign", {"assignee": AGENT})
        cls.act(AGENT, f"/api/tickets/{tid}/notes",
                {"body": "Checked the payment gateway: two captures of PKR 2,500."})
        cls.act(AGENT, f"/api/tickets/{tid}/priority", {"priority": "high",
                                                         "reason": "double charge"})
        cls.inbound(worked, "Imran Qureshi", "Please refund the extra payment soon.", 80,
                    extra={"context": {"from": worked, "id": w1}})
        appr = cls.act(AGENT, f"/api/tickets/{tid}/approvals",
                       {"kind": "refund", "amount_minor": 250000,
                        "reason": "duplicate capture on order 5512"})
        cls.act(SUP, f"/api/approvals/{appr['id']}/decision",
                {"decision": "approved", "reason": "gateway log confirms the duplicate"})
        cls.act(AGENT, f"/api/tickets/{tid}/assign", {"assignee": OTHER,
                                                       "note": "handoff: shift change"})

        roman = "923001110002"
        cls.inbound(roman, "Usman Tariq", "bhai mera parcel abhi tak nahi mila, 3 din ho gaye", 60)
        xss = "923001110003"
        cls.inbound(xss, "Hamza <b>Test</b>", XSS_TEXT, 45)
        rtl = "923001110004"
        cls.inbound(rtl, RTL_NAME, RTL_TEXT, 30)
        cls.act(SUP, f"/api/tickets/{cls.ticket_of(rtl)}/escalate",
                {"level": 2, "reason": "damaged goods, customer upset"})
        # yesterday's escalated ticket (the server's days are UTC here): it wrote at noon
        # yesterday, and a supervisor escalated it today
        now = datetime.now(timezone.utc)
        noon = datetime(now.year, now.month, now.day, 12, tzinfo=timezone.utc) - timedelta(days=1)
        yday = "923001110007"
        cls.inbound(yday, "Bilal Ahmed", "The kettle I got is leaking from the bottom",
                    (now - noon).total_seconds() / 60)
        cls.act(SUP, f"/api/tickets/{cls.ticket_of(yday)}/escalate",
                {"level": 2, "reason": "leaking appliance, safety"})
        urdu = URDU_WA_ID
        cls.inbound(urdu, "Ayesha Khan", URDU_TEXT, 12)
        cls.inbound(urdu, "Ayesha Khan", "Tracking number TCS-88120 dikh raha hai", 11)
        return {"big": big, "worked": tid, "roman": cls.ticket_of(roman), "xss": cls.ticket_of(xss),
                "rtl": cls.ticket_of(rtl), "urdu": cls.ticket_of(urdu),
                "yesterday": cls.ticket_of(yday)}

    @classmethod
    def seed_big(cls, wa_id, n):
        """A long story: n messages (and as many message.received events) in batches of 500,
        the way Meta batches them, for the "opens in under a second" check."""
        t0 = int(time.time()) - 7 * 24 * 3600
        for start in range(0, n, 500):
            msgs = [{"from": wa_id, "id": f"wamid.viewer.big.{os.getpid()}.{i}",
                     "timestamp": str(t0 + i * 60), "type": "text",
                     "text": {"body": f"message {i + 1} of a long conversation"}}
                    for i in range(start, min(n, start + 500))]
            value = {"messaging_product": "whatsapp",
                     "metadata": {"display_phone_number": "923211234500",
                                  "phone_number_id": harness.PNID_A},
                     "contacts": [{"profile": {"name": "Long Story"}, "wa_id": wa_id}],
                     "messages": msgs}
            body = {"object": "whatsapp_business_account",
                    "entry": [{"id": "104857392016473",
                               "changes": [{"field": "messages", "value": value}]}]}
            r = post_webhook(cls.srv, body)
            if r.status != 200:
                raise AssertionError(f"webhook refused: {r}")
        return cls.ticket_of(wa_id)

    def test_viewer_in_chromium(self):
        env = dict(os.environ)
        env.update({
            "CASETRAIL_URL": f"http://127.0.0.1:{self.srv.port}",
            "CASETRAIL_AGENT": AGENT, "CASETRAIL_AGENT_PASSWORD": AGENT_PW,
            "CASETRAIL_SUPERVISOR": SUP, "CASETRAIL_SUPERVISOR_PASSWORD": SUP_PW,
            "CASETRAIL_ARTIFACTS": artifacts_dir(),
            "CASETRAIL_APP_SECRET": harness.APP_SECRET,
            "CASETRAIL_CLI_ENV": json.dumps(harness.base_env(self.dsn)),
            "CASETRAIL_SEED": json.dumps({"ids": self.ids, "big_items": 2 * BIG_MESSAGES,
                                          "pnid": harness.PNID_A, "urdu_wa_id": URDU_WA_ID, "urdu_word": URDU_WORD,
                                          "urdu_text": URDU_TEXT, "xss_text": XSS_TEXT,
                                          "rtl_name": RTL_NAME, "rtl_text": RTL_TEXT}),
        })
        try:
            r = subprocess.run(["node", os.path.join(BROWSER_DIR, "viewer.test.mjs")], cwd=ROOT,
                               env=env, capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired as e:
            self.fail(f"the browser test ran past 180 s:\n{e.stdout or ''}\n{e.stderr or ''}")
        print(r.stdout)
        if r.returncode != 0:
            self.fail(f"the browser test failed (exit {r.returncode}):\n{r.stdout}\n{r.stderr}\n"
                      f"server log: {self.srv.log_path}")
        # who looked: the agent printed the worked ticket twice (before and after the digest
        # sealed it), and opened it (and others); each print is its own access record
        self.assertEqual(self.looked("ticket.print", AGENT, self.ids["worked"]), 2)
        self.assertGreaterEqual(self.looked("ticket.view", AGENT, self.ids["worked"]), 1)
        self.assertGreaterEqual(self.looked("ticket.view", SUP, self.ids["urdu"]), 1)

    def looked(self, what, who, ticket):
        return int(self.one("SELECT count(*) FROM access_log l JOIN users u ON u.id = l.user_id"
                            " WHERE l.what = :'w' AND u.name = :'u' AND l.ticket_id = :'t'",
                            w=what, u=who, t=str(ticket)))


if __name__ == "__main__":
    missing = browser_missing()
    if missing:
        if os.environ.get("CASETRAIL_REQUIRE_BROWSER"):
            print(f"CASETRAIL_REQUIRE_BROWSER is set but these are missing: {', '.join(missing)}"
                  " (run tests/browser/setup as root)")
            sys.exit(1)
        print(f"skipped: {', '.join(missing)} missing (run tests/browser/setup as root)")
        sys.exit(SKIP)
    harness.main()
