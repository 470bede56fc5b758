"""Viewer sign-in (issue 12): passwords set from stdin and kept as scrypt hashes, a session cookie
that is HttpOnly and SameSite=Strict, changes by cookie only with the CSRF header, sessions that
end on sign-out, idleness, age, role change, deactivation and a new password, and failed
sign-ins limited per name and per address. When it fails, look at server/domain/sessions.c,
server/http/api_session.c and authorize() in server/http/router.c."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import harness  # noqa: E402
from harness import ServerTest, add_user, cli, post_webhook, set_password, text_payload  # noqa: E402

PASSWORD = "correct horse battery"
CSRF = {"X-Casetrail-CSRF": "1"}


def cookie_of(r):
    """The casetrail_session value a response sets, or None."""
    m = re.match(r"casetrail_session=([^;]*)", r.headers.get("set-cookie", ""))
    return m.group(1) if m else None


class SessionTest(ServerTest):
    _n = [0]

    def user(self, role="agent", password=PASSWORD):
        """A new user with a password; returns (name, token)."""
        self._n[0] += 1
        name = f"{role}{self._n[0]}"
        token = add_user(self.dsn, name, role)
        if password is not None:
            set_password(self.dsn, name, password)
        return name, token

    def sign_in(self, name, password=PASSWORD, status=200, headers=None):
        r = self.srv.post("/api/session", {"name": name, "password": password},
                          headers=headers)
        self.assertEqual(r.status, status, r)
        return r

    def cookie(self, name, password=PASSWORD):
        c = cookie_of(self.sign_in(name, password))
        self.assertTrue(c)
        return c

    def me(self, cookie, status=200):
        r = self.srv.get("/api/me", headers={"Cookie": f"casetrail_session={cookie}"})
        self.assertEqual(r.status, status, r)
        return r


class Sessions(SessionTest):
    def test_set_password_reads_stdin_and_records_an_event(self):
        name, _ = self.user(password=None)
        r = cli(self.dsn, "user", "set-password", name, input="short\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("10 to 1024 characters", r.stderr)
        r = cli(self.dsn, "user", "set-password", name, "extra-arg", input=PASSWORD + "\n")
        self.assertNotEqual(r.returncode, 0)
        r = cli(self.dsn, "user", "set-password", "nobody-here", input=PASSWORD + "\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no user named", r.stderr)
        set_password(self.dsn, name, PASSWORD)
        stored = self.one("SELECT password_hash FROM users WHERE name = :'n'", n=name)
        self.assertRegex(stored, r"^scrypt\$15\$8\$1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$")
        self.assertNotIn(PASSWORD, stored)
        ev = self.q("SELECT e.action, e.actor_id, e.data::text FROM events e JOIN users u"
                    " ON u.id = e.user_id WHERE u.name = :'n' ORDER BY seq DESC LIMIT 1", n=name)
        self.assertEqual(ev[0][:2], ["user.password_set", "cli"])
        self.assertEqual(json.loads(ev[0][2])["algorithm"], "scrypt")
        # the same password twice gives two different hashes (a fresh salt each time)
        set_password(self.dsn, name, PASSWORD)
        self.assertNotEqual(stored, self.one("SELECT password_hash FROM users WHERE name ="
                                             " :'n'", n=name))
        self.assertEqual(cli(self.dsn, "verify").returncode, 0)

    def test_sign_in_sets_a_strict_http_only_cookie(self):
        name, _ = self.user("supervisor")
        r = self.sign_in(name)
        header = r.headers["set-cookie"]
        for attr in ("HttpOnly", "SameSite=Strict", "Path=/"):
            self.assertIn(attr, header)
        self.assertNotIn("Secure", header)  # no https CASETRAIL_PUBLIC_URL here
        body = r.json()
        self.assertEqual((body["user"]["name"], body["user"]["role"], body["timezone"]),
                         (name, "supervisor", "UTC"))
        me = self.me(cookie_of(r)).json()
        self.assertEqual((me["name"], me["role"], me["timezone"]), (name, "supervisor", "UTC"))
        # the token is never the cookie, and the session row keeps only a hash
        self.assertEqual(self.one("SELECT count(*) FROM sessions WHERE token_hash = :'c'",
                                  c=cookie_of(r)), "0")

    def test_every_kind_of_wrong_answers_the_same(self):
        name, _ = self.user()
        nopw, _ = self.user(password=None)
        gone, _ = self.user()
        self.assertEqual(cli(self.dsn, "user", "deactivate", gone).returncode, 0)
        answers = set()
        for n, p in ((name, "wrong password!"), ("no-such-user", PASSWORD), (nopw, PASSWORD),
                     (gone, PASSWORD), ("bad name!", PASSWORD)):
            r = self.sign_in(n, p, status=401)
            self.assertIsNone(cookie_of(r))
            answers.add(r.body)
        self.assertEqual(len(answers), 1, answers)
        self.assertEqual(json.loads(answers.pop())["error"]["code"], "bad_credentials")

    def test_bad_bodies_are_refused(self):
        for body in ('{"name":"a"}', '{"name":"a","password":"b","role":"admin"}',
                     '{"name":1,"password":"b"}', "[]", '{"name":"a","password":"b"'):
            r = self.srv.post("/api/session", body, headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 400, (body, r))
        # a cross-site form can post JSON-looking text/plain, but not this content type
        r = self.srv.post("/api/session", '{"name":"a","password":"b=c"}',
                          headers={"Content-Type": "text/plain"})
        self.assertEqual((r.status, r.json()["error"]["code"]), (403, "csrf"))

    def test_changes_by_cookie_need_the_csrf_header_and_our_origin(self):
        name, _ = self.user()
        c = {"Cookie": f"casetrail_session={self.cookie(name)}"}
        r = post_webhook(self.srv, text_payload("wamid.sess.1", "923450000001", 1767000000,
                                                "hello"))
        self.assertEqual(r.status, 200)
        tid = self.one("SELECT max(id) FROM tickets")
        note = {"body": "checked the courier"}
        r = self.srv.post(f"/api/tickets/{tid}/notes", note, headers=c)
        self.assertEqual((r.status, r.json()["error"]["code"]), (403, "csrf"))
        r = self.srv.post(f"/api/tickets/{tid}/notes", note,
                          headers={**c, **CSRF, "Origin": "https://evil.example"})
        self.assertEqual((r.status, r.json()["error"]["code"]), (403, "csrf"))
        self.assertEqual(self.one("SELECT count(*) FROM events WHERE ticket_id = :'t'"
                                  " AND action = 'note.added'", t=tid), "0")
        origin = f"http://127.0.0.1:{self.srv.port}"
        r = self.srv.post(f"/api/tickets/{tid}/notes", note,
                          headers={**c, **CSRF, "Origin": origin})
        self.assertEqual(r.status, 200, r)
        # the note's actor is the signed-in user
        self.assertEqual(self.one("SELECT u.name FROM events e JOIN users u ON u.id::text ="
                                  " e.actor_id WHERE e.ticket_id = :'t'"
                                  " AND e.action = 'note.added'", t=tid), name)
        # reads need no header
        self.assertEqual(self.srv.get(f"/api/tickets/{tid}", headers=c).status, 200)
        # API tokens keep working without any of it
        _, token = self.user()
        self.assertEqual(self.srv.get("/api/me", token=token).status, 200)

    def test_sign_out_ends_the_session(self):
        name, _ = self.user()
        cookie = self.cookie(name)
        c = {"Cookie": f"casetrail_session={cookie}"}
        self.assertEqual(self.srv.request("DELETE", "/api/session", headers=c).status, 403)
        r = self.srv.request("DELETE", "/api/session", headers={**c, **CSRF})
        self.assertEqual(r.status, 204, r)
        self.assertIn("Max-Age=0", r.headers["set-cookie"])
        self.assertNotIn("content-length", r.headers)
        r = self.me(cookie, status=401)
        self.assertIn("sign in again", r.json()["error"]["message"])

    def test_sessions_end_on_role_change_deactivation_and_new_password(self):
        for change in (["user", "set-role", None, "supervisor"], ["user", "deactivate", None],
                       ["user", "set-password", None]):
            name, _ = self.user()
            cookie = self.cookie(name)
            self.me(cookie)
            args = [name if a is None else a for a in change]
            r = cli(self.dsn, *args, input=PASSWORD + "!\n")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.me(cookie, status=401)

    def test_idle_and_old_sessions_end(self):
        name, _ = self.user()
        idle, old = self.cookie(name), self.cookie(name)
        self.q("UPDATE sessions SET last_seen_at = now() - interval '121 minutes'"
               " WHERE token_hash = encode(sha256(convert_to(:'c', 'UTF8')), 'hex')", c=idle)
        self.q("UPDATE sessions SET created_at = now() - interval '13 hours'"
               " WHERE token_hash = encode(sha256(convert_to(:'c', 'UTF8')), 'hex')", c=old)
        self.me(idle, status=401)
        self.me(old, status=401)
        # a session in use stays alive: last_seen_at moves (at most once a minute)
        live = self.cookie(name)
        self.q("UPDATE sessions SET last_seen_at = now() - interval '100 minutes'"
               " WHERE token_hash = encode(sha256(convert_to(:'c', 'UTF8')), 'hex')", c=live)
        self.me(live)
        self.assertEqual(self.one(
            "SELECT last_seen_at > now() - interval '1 minute' FROM sessions WHERE token_hash"
            " = encode(sha256(convert_to(:'c', 'UTF8')), 'hex')", c=live), "t")

    def test_garbage_cookies_are_401(self):
        for value in ("", "x", "ct_" + "A" * 43, "ct_" + "é" * 10, "a" * 500):
            r = self.srv.get("/api/me", headers={"Cookie": f"casetrail_session={value}"})
            self.assertEqual(r.status, 401, (value, r))

    def test_users_list_for_the_hand_off_picker(self):
        name, _ = self.user()
        r = self.srv.get("/api/users", headers={"Cookie": f"casetrail_session={self.cookie(name)}"})
        self.assertEqual(r.status, 200)
        users = r.json()["users"]
        me = [u for u in users if u["name"] == name][0]
        self.assertEqual(set(me), {"id", "name", "role", "active"})
        self.assertNotIn("scrypt", r.body.decode())

    def test_a_swapped_password_hash_breaks_verify(self):
        name, _ = self.user("supervisor")
        uid = self.one("SELECT id FROM users WHERE name = :'n'", n=name)
        orig = self.one("SELECT password_hash FROM users WHERE id = :'u'", u=uid)
        other, _ = self.user(password="attacker knows this")
        forged = self.one("SELECT password_hash FROM users WHERE name = :'n'", n=other)
        self.q("UPDATE users SET password_hash = :'h' WHERE id = :'u'", h=forged, u=uid)
        try:
            r = cli(self.dsn, "verify")
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertRegex(r.stdout + r.stderr,
                             rf"user {uid} .*users row {uid} field password_sha256")
        finally:
            self.q("UPDATE users SET password_hash = :'h' WHERE id = :'u'", h=orig, u=uid)
        self.assertEqual(cli(self.dsn, "verify").returncode, 0)


class Limits(SessionTest):
    def test_failed_sign_ins_are_limited_per_name(self):
        name, _ = self.user()
        for _ in range(5):
            self.sign_in(name, "not the password", status=401)
        r = self.sign_in(name, PASSWORD, status=429)  # even the right one, for a while
        self.assertEqual(r.json()["error"]["code"], "too_many_attempts")
        wait = int(r.headers["retry-after"])
        self.assertTrue(850 <= wait <= 900, wait)
        # another name from the same address is not locked out by this one
        other, _ = self.user()
        self.sign_in(other)
        # the window passes
        self.q("UPDATE sign_in_failures SET at = at - interval '16 minutes' WHERE name = :'n'",
               n=name)
        self.sign_in(name)
        # success forgets the name's failures
        self.assertEqual(self.one("SELECT count(*) FROM sign_in_failures WHERE name = :'n'",
                                  n=name), "0")

    def test_failed_sign_ins_are_limited_per_address(self):
        self.q("DELETE FROM sign_in_failures")
        for i in range(20):
            self.sign_in(f"guess{i}", "not the password", status=401)
        name, _ = self.user()
        r = self.sign_in(name, status=429)
        self.assertGreater(int(r.headers["retry-after"]), 0)
        self.q("DELETE FROM sign_in_failures")


class SecureCookies(SessionTest):
    server_env = {"CASETRAIL_PUBLIC_URL": "https://desk.example.com",
                  "CASETRAIL_TIMEZONE": "Asia/Karachi", "CASETRAIL_SESSION_IDLE": "5"}

    def test_https_public_url_makes_the_cookie_secure(self):
        name, _ = self.user()
        r = self.sign_in(name)
        self.assertIn("; Secure", r.headers["set-cookie"])
        self.assertEqual(r.json()["timezone"], "Asia/Karachi")
        self.assertEqual(r.json()["idle_minutes"], 5)
        c = {"Cookie": f"casetrail_session={cookie_of(r)}", **CSRF}
        # the public origin is ours even though the Host header says otherwise
        r = self.srv.request("DELETE", "/api/session",
                             headers={**c, "Origin": "https://desk.example.com"})
        self.assertEqual(r.status, 204, r)


if __name__ == "__main__":
    harness.main()
