"""Evidence bundles (issue 14): GET /api/tickets/{id}/evidence gives one self-contained JSON
document that an independent checker (tests/support/check_bundle.py, written from
docs/audit-format.md alone) verifies offline, signatures included; each single changed byte is
named; each bundle given out is in the append-only access log. When it fails, look at
server/domain/evidence.c and server/store/store_evidence.c."""
import base64
import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import check_bundle  # noqa: E402
import harness  # noqa: E402
from harness import ServerTest, add_user, post_webhook, text_payload  # noqa: E402

CHECKER = os.path.join(os.path.dirname(__file__), "..", "support", "check_bundle.py")


class Evidence(ServerTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agent = add_user(cls.dsn, "ayesha", "agent")
        cls.sup = add_user(cls.dsn, "bilal", "supervisor", limit=100000)
        cls.qa = add_user(cls.dsn, "qamar", "qa")
        ts = int(time.time()) - 300
        r = post_webhook(cls.srv, text_payload("wamid.ev.1", "923490000001", ts,
                                               "میرا آرڈر ٹوٹا ہوا آیا، refund please",
                                               name="Zara \"Z\" Khan"))
        assert r.status == 200, r
        cls.tid = int(harness.scalar(cls.dsn, "SELECT max(id) FROM tickets"))
        t = cls.tid
        steps = [(cls.agent, f"/api/tickets/{t}/assign", {"assignee": "ayesha"}),
                 (cls.agent, f"/api/tickets/{t}/notes", {"body": "photo shows a cracked jar"}),
                 (cls.agent, f"/api/tickets/{t}/approvals",
                  {"kind": "credit", "amount_minor": 50000, "reason": "second damaged delivery"}),
                 (cls.agent, f"/api/tickets/{t}/status",
                  {"status": "pending", "reason": "awaiting approval"})]
        for token, path, body in steps:
            r = cls.srv.post(path, body, token=token)
            assert r.status in (200, 201), (path, r)
            if path.endswith("/approvals"):
                cls.aid = r.json()["id"]
        r = cls.srv.post(f"/api/approvals/{cls.aid}/decision",
                         {"decision": "approved", "reason": "loyal customer, photos attached"},
                         token=cls.sup)
        assert r.status == 200, r
        # a signed digest now, then an unsigned one: the bundle carries the newest signed one,
        # and the message after it lies beyond what it covers
        cls.tmp = tempfile.TemporaryDirectory(prefix="ct-evidence-keys-")
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.key, cls.pub, cls.other_pub = harness.ed25519_keys(cls.tmp.name)
        r = harness.cli(cls.dsn, "digest", env={"CASETRAIL_SIGNING_KEY": cls.key})
        assert r.returncode == 0, r.stderr
        cls.digest_line = r.stdout.strip()
        cls.covered = int(harness.scalar(cls.dsn, f"SELECT last_seq FROM tickets WHERE id = {t}"))
        assert harness.cli(cls.dsn, "digest").returncode == 0
        r = post_webhook(cls.srv, text_payload("wamid.ev.2", "923490000001", ts + 60,
                                               "thank you"))
        assert r.status == 200, r

    def bundle(self, token=None, tid=None):
        r = self.srv.get(f"/api/tickets/{tid or self.tid}/evidence", token=token or self.qa)
        self.assertEqual(r.status, 200, r)
        return r

    def check(self, bundle, secret=harness.APP_SECRET, key=None):
        return check_bundle.check(bundle, secret.encode() if secret else None, key)

    def cli_check(self, body, secret=True, key=None, lines=1):
        """casetrail verify-bundle on body (bytes): (exit code, the first stdout lines)."""
        with tempfile.TemporaryDirectory() as d:
            path, sfile = os.path.join(d, "bundle.json"), os.path.join(d, "secret")
            with open(path, "wb") as f:
                f.write(body)
            with open(sfile, "w") as f:
                f.write(harness.APP_SECRET + "\n")
            args = ["verify-bundle", path] + (["--app-secret-file", sfile] if secret else [])
            args += ["--verify-key", key] if key else []
            r = harness.cli(self.dsn, *args)
            out = (r.stdout + r.stderr).strip().splitlines()
            return r.returncode, out[0] if lines == 1 else out[:lines]

    def test_bundle_checks_offline_with_the_independent_checker(self):
        r = self.bundle()
        self.assertIn('attachment; filename="ticket-', r.headers["content-disposition"])
        b = r.json()
        self.assertEqual(b["format"], "casetrail-evidence-v1")
        self.assertEqual(b["verification"]["ok"], True)
        self.assertEqual(b["verification"]["events"], len(b["events"]))
        self.assertEqual(b["generated_for"], "qamar")
        actions = [e["action"] for e in b["events"]]
        for a in ("ticket.created", "message.received", "assignment.changed", "note.added",
                  "approval.requested", "approval.decided", "status.changed"):
            self.assertIn(a, actions)
        # the $500 credit: who asked, who approved, both reasons, in the bundle
        (a,) = b["approvals"]
        self.assertEqual((a["kind"], a["amount_minor"], a["requested_by"], a["decided_by"],
                          a["reason"], a["decision_reason"]),
                         ("credit", 50000, "ayesha", "bilal", "second damaged delivery",
                          "loyal customer, photos attached"))
        # receipts whole, with the signature they came with
        self.assertEqual(len(b["receipts"]), 2)
        for rc in b["receipts"]:
            self.assertRegex(rc["signature"], r"^sha256=[0-9a-f]{64}$")
            self.assertIn(b"wamid.ev.", base64.b64decode(rc["body_base64"]))
        events, texts, receipts, digest = self.check(b, key=self.pub)
        self.assertEqual((events, receipts), (len(b["events"]), 2))
        self.assertGreater(texts, 5)
        # the newest signed digest, covering the ticket up to the message that came after it
        d = json.loads(self.digest_line)
        self.assertEqual(b["digest"]["payload"], self.digest_line[:self.digest_line.index(',"alg"')] + "}")
        self.assertEqual((b["digest"]["alg"], b["digest"]["signature"]), ("ed25519", d["signature"]))
        self.assertEqual(b["digest"]["proof"]["seq"], self.covered)
        self.assertLess(self.covered, len(b["events"]))
        self.assertEqual(b["digest"]["proof"]["tree_size"], d["chains"])
        self.assertEqual(digest, (d["time"], self.covered, True))
        # the command line form, with the secret from a file, as QA would run it
        with tempfile.TemporaryDirectory() as d:
            path, secret = os.path.join(d, "bundle.json"), os.path.join(d, "secret")
            with open(path, "wb") as f:
                f.write(r.body)
            with open(secret, "w") as f:
                f.write(harness.APP_SECRET + "\n")
            out = subprocess.run([sys.executable, CHECKER, path, "--app-secret-file", secret,
                                  "--verify-key", self.pub],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertTrue(out.stdout.startswith("ok "), out.stdout)
            self.assertIn(f"covers seq 1..{self.covered}, signature valid", out.stdout)

    def test_each_single_change_is_named(self):
        b = self.bundle().json()
        self.check(b)

        def seq_of(action):
            return next(e["seq"] for e in b["events"] if e["action"] == action)

        def text(field):
            return next(t for t in b["texts"] if t["field"] == field)

        def flip_hex(s):
            return ("1" if s[0] != "1" else "2") + s[1:]

        def receipt_byte(x):
            r = x["receipts"][0]
            raw = bytearray(base64.b64decode(r["body_base64"]))
            raw[raw.index(b"wamid")] ^= 0x01
            r["body_base64"] = base64.b64encode(bytes(raw)).decode()

        def receipt_and_hash(x):
            receipt_byte(x)
            r = x["receipts"][0]
            import hashlib
            r["body_sha256"] = hashlib.sha256(base64.b64decode(r["body_base64"])).hexdigest()

        def bump_time(payload):
            i = payload.index('Z"') - 1  # the time's last digit
            return payload[:i] + ("1" if payload[i] != "1" else "2") + payload[i + 1:]

        dec = seq_of("approval.decided")
        cases = [
            ("a note's text", lambda x: text_of(x, "note").__setitem__("text", "photo is fine"),
             "does not match its digest"),
            ("a text's salt", lambda x: text_of(x, "note").__setitem__(
                "salt", flip_hex(text_of(x, "note")["salt"])), "does not match its digest"),
            ("an event's action", lambda x: ev(x, dec).__setitem__("to", "denied"),
             f"event seq {dec}: canonical encoding"),
            ("an event's data", lambda x: ev(x, dec).__setitem__(
                "data", ev(x, dec)["data"].replace('"approval_id":', '"approval_id":9')),
             f"event seq {dec}"),
            ("a hash", lambda x: ev(x, 2).__setitem__("hash", flip_hex(ev(x, 2)["hash"])),
             "event seq 2: hash does not match"),
            ("a prev_hash", lambda x: ev(x, 3).__setitem__("prev_hash",
                                                            flip_hex(ev(x, 3)["prev_hash"])),
             "event seq 3: prev_hash"),
            ("a removed event", lambda x: x["events"].pop(1), "event seq 2: missing"),
            ("a raw body byte", receipt_byte, "body does not match its SHA-256"),
            ("a raw body with its new hash", receipt_and_hash, "receipt"),
            ("a signature", lambda x: x["receipts"][0].__setitem__(
                "signature", "sha256=" + flip_hex(x["receipts"][0]["signature"][7:])),
             "X-Hub-Signature-256 does not match"),
            ("a removed text", lambda x: x["texts"].remove(text_of(x, "note")), "missing"),
            ("the head", lambda x: x["head"].__setitem__("hash", flip_hex(x["head"]["hash"])),
             "head"),
            # the signed digest: its signature, what it signs, and the proof that it covers us
            ("a digest signature", lambda x: x["digest"].__setitem__(
                "signature", flip_hex(x["digest"]["signature"])),
             f"digest: the digest's signature does not verify with {self.pub}"),
            ("a digest signature's last byte", lambda x: x["digest"].__setitem__(
                "signature", x["digest"]["signature"][:-1]
                + ("0" if x["digest"]["signature"][-1] != "0" else "1")),
             "signature does not verify"),
            ("the digest's time", lambda x: x["digest"].__setitem__(
                "payload", bump_time(x["digest"]["payload"])), "signature does not verify"),
            ("the digest's root", lambda x: x["digest"].__setitem__(
                "payload", x["digest"]["payload"][:-10] + flip_hex(x["digest"]["payload"][-10:])),
             "does not lead to the signed root"),
            ("the digest's chain count", lambda x: x["digest"].__setitem__(
                "payload", re.sub(r'"chains":(\d+)', lambda m: f'"chains":{int(m[1]) + 1}',
                                  x["digest"]["payload"])),
             "sized for another tree"),
            ("a proof hash", lambda x: x["digest"]["proof"]["path"].__setitem__(
                0, flip_hex(x["digest"]["proof"]["path"][0])), "does not lead to the signed root"),
            ("the proof's leaf", lambda x: x["digest"]["proof"].__setitem__(
                "hash", flip_hex(x["digest"]["proof"]["hash"])),
             f"its proof's hash for seq {self.covered} is not the event's"),
            ("the proof's place", lambda x: x["digest"]["proof"].__setitem__(
                "leaf_index", x["digest"]["proof"]["leaf_index"] ^ 1),
             "does not lead to the signed root"),
            ("the proof's seq", lambda x: x["digest"]["proof"].__setitem__(
                "seq", self.covered + 1), "is not the event's"),
            ("the digest removed", lambda x: x.__setitem__("digest", None),
             "the bundle carries no signed digest"),
        ]

        def ev(x, seq):
            return x["events"][seq - 1]

        def text_of(x, field_part):
            return next(t for t in x["texts"]
                        if field_part in t["field"] and t["text"] is not None
                        and "note" in ev(x, t["seq"])["action"])

        for name, mutate, named in cases:
            x = copy.deepcopy(b)
            mutate(x)
            self.assertNotEqual(x, b, name)
            with self.assertRaises(check_bundle.Bad, msg=name) as ctx:
                self.check(x, key=self.pub)
            self.assertIn(named, str(ctx.exception), name)
            # casetrail's own checker names the same item, in the same words
            code, line = self.cli_check(json.dumps(x).encode(), key=self.pub)
            self.assertEqual((code, line), (1, f"BAD {ctx.exception}"), name)

    def test_verify_bundle_cli(self):
        body = self.bundle().body
        code, line = self.cli_check(body)
        self.assertEqual(code, 0, line)
        self.assertRegex(line, r"^ok \d+ events, \d+ texts, 2 receipts, signatures checked$")
        code, line = self.cli_check(body, secret=False)
        self.assertEqual(code, 0, line)
        self.assertIn("signatures not checked", line)
        # a wrong secret names the receipt; garbage and duplicate keys are refused
        with tempfile.TemporaryDirectory() as d:
            path, sfile = os.path.join(d, "b.json"), os.path.join(d, "s")
            with open(path, "wb") as f:
                f.write(body)
            with open(sfile, "w") as f:
                f.write("not-the-secret\n")
            r = harness.cli(self.dsn, "verify-bundle", path, "--app-secret-file", sfile)
            self.assertEqual(r.returncode, 1)
            self.assertIn("X-Hub-Signature-256 does not match", r.stdout)
        for junk in (b"", b"{", b"[]", b'{"format":"casetrail-evidence-v1","format":"x"}',
                     b'{"format":"other"}', b"\x00\xff"):
            code, line = self.cli_check(junk)
            self.assertEqual(code, 1, (junk, line))
            self.assertTrue(line.startswith("BAD "), line)
        r = harness.cli(self.dsn, "verify-bundle")
        self.assertEqual(r.returncode, 2)
        r = harness.cli(self.dsn, "verify-bundle", "/nonexistent/bundle.json")
        self.assertEqual(r.returncode, 1)

    def test_verify_key(self):
        body = self.bundle().body
        code, out = self.cli_check(body, key=self.pub, lines=2)
        self.assertEqual(code, 0, out)
        self.assertRegex(out[1], rf"^digest of \S+Z covers seq 1..{self.covered}, signature valid$")
        code, out = self.cli_check(body, lines=2)
        self.assertEqual(code, 0, out)
        self.assertIn("signature not checked: no --verify-key", out[1])
        # another key, a private key file, a missing file
        code, line = self.cli_check(body, key=self.other_pub)
        self.assertEqual((code, line), (1, "BAD digest: the digest's signature does not verify"
                                           f" with {self.other_pub}"))
        self.assertEqual(self.cli_check(body, key=self.key)[0], 0)  # its public half is inside
        code, line = self.cli_check(body, key="/nonexistent/pub.pem")
        self.assertEqual(code, 1)
        self.assertIn("could not open key file", line)
        with self.assertRaises(check_bundle.Bad):
            self.check(json.loads(body), key=self.other_pub)
        # a ticket begun after the last signed digest: no digest covers it yet, said plainly,
        # and a key asked for cannot be satisfied
        r = post_webhook(self.srv, text_payload("wamid.ev.late", "923490000077", int(time.time()),
                                                "hello"))
        self.assertEqual(r.status, 200)
        late = int(self.one("SELECT max(id) FROM tickets"))
        b = self.bundle(tid=late)
        self.assertIsNone(b.json()["digest"])
        code, out = self.cli_check(b.body, lines=2)
        self.assertEqual((code, out[1]), (0, "no signed digest covers this ticket yet"))
        code, line = self.cli_check(b.body, key=self.pub)
        self.assertEqual((code, line), (1, "BAD digest: the bundle carries no signed digest to"
                                           " check the key with"))
        self.assertEqual(self.check(b.json())[3], None)
        self.assertIsNone(self.srv.get(f"/api/tickets/{late}/verify", token=self.qa)
                          .json()["digest"])
        # a new signed digest covers it
        self.assertEqual(harness.cli(self.dsn, "digest", env={"CASETRAIL_SIGNING_KEY": self.key})
                         .returncode, 0)
        b = self.bundle(tid=late)
        self.assertEqual(self.check(b.json(), key=self.pub)[3][1:], (len(b.json()["events"]), True))
        # the verify endpoint (and so the print view) names it
        d = self.srv.get(f"/api/tickets/{late}/verify", token=self.qa).json()["digest"]
        self.assertEqual(d, {"time": json.loads(b.json()["digest"]["payload"])["time"],
                             "covers_seq": len(b.json()["events"])})
        self.assertEqual(self.cli_check(b.body, key=self.pub)[0], 0)

    def test_who_may_take_a_bundle_and_the_access_log(self):
        r = self.srv.get(f"/api/tickets/{self.tid}/evidence", token=self.agent)
        self.assertEqual(r.status, 403)
        self.assertEqual(self.srv.get("/api/tickets/99999/evidence", token=self.qa).status, 404)
        before = int(self.one("SELECT count(*) FROM access_log"))
        b = self.bundle(token=self.sup).json()
        rows = self.q("SELECT u.name, l.what, l.ticket_id, l.rows FROM access_log l"
                      " JOIN users u ON u.id = l.user_id ORDER BY l.id DESC LIMIT 1")
        self.assertEqual(rows, [["bilal", "evidence", str(self.tid), str(len(b["events"]))]])
        self.assertEqual(int(self.one("SELECT count(*) FROM access_log")), before + 1)
        # the refused and the unknown leave no row; the log is append-only
        for sql in ("UPDATE access_log SET what = 'x'", "DELETE FROM access_log",
                    "TRUNCATE access_log"):
            with self.assertRaises(AssertionError) as ctx:
                self.q(sql)
            self.assertIn("append-only", str(ctx.exception))

    def test_a_tampered_database_shows_in_the_bundle(self):
        # a superuser rewrites the approved amount with triggers off: the bundle still comes,
        # saying where the record breaks
        self.q(f"UPDATE approvals SET amount_minor = 5000000 WHERE id = {self.aid}")
        try:
            b = self.bundle().json()
            self.assertFalse(b["verification"]["ok"])
            self.assertIn("amount_minor", b["verification"]["reason"])
        finally:
            self.q(f"UPDATE approvals SET amount_minor = 50000 WHERE id = {self.aid}")
        self.assertTrue(self.bundle().json()["verification"]["ok"])


if __name__ == "__main__":
    harness.main()
