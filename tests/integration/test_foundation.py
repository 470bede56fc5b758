"""Foundation: health, readiness, tokens and roles, access log, metrics, static files, the CLI,
identity events and the append-only events table. When this fails, look at the server log path
printed in the assertion and at server/http/router.c (routing/auth) or server/cli/cli.c (CLI)."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import harness  # noqa: E402
from harness import ServerTest, cli, add_user, create_db, drop_db, Server  # noqa: E402


class Foundation(ServerTest):
    def test_healthz_and_readyz(self):
        r = self.srv.get("/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"status": "ok"})
        r = self.srv.get("/readyz")
        self.assertEqual(r.status, 200, r)
        latest = max(int(f[:4]) for f in os.listdir(os.path.join(harness.ROOT, "migrations"))
                     if f.endswith(".sql"))
        self.assertEqual(r.json(), {"status": "ready", "schema_version": latest})

    def test_me_requires_a_valid_token(self):
        r = self.srv.get("/api/me")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["error"]["code"], "unauthorized")
        self.assertEqual(r.headers["content-type"], "application/json")
        r = self.srv.get("/api/me", token="ct_" + "A" * 43)
        self.assertEqual(r.status, 401)
        r = self.srv.get("/api/me", token="garbage")
        self.assertEqual(r.status, 401)
        r = self.srv.get("/api/me", headers={"Authorization": "Basic Zm9vOmJhcg=="})
        self.assertEqual(r.status, 401)

        token = add_user(self.dsn, "amna", "supervisor", limit=50000)
        self.assertRegex(token, r"^ct_[A-Za-z0-9_-]{43}$")
        r = self.srv.get("/api/me", token=token)
        self.assertEqual(r.status, 200, r)
        me = r.json()
        self.assertEqual(me, {"id": me["id"], "name": "amna", "role": "supervisor",
                              "approval_limit_minor": 50000, "timezone": "UTC"})
        # only the hash is stored
        self.assertEqual(self.one("SELECT count(*) FROM users WHERE token_hash = :'t'", t=token), "0")

        d = cli(self.dsn, "user", "deactivate", "amna")
        self.assertEqual(d.returncode, 0, d.stderr)
        self.assertEqual(self.srv.get("/api/me", token=token).status, 401)

    def test_rotate_token_replaces_the_old_one(self):
        old = add_user(self.dsn, "rotator", "agent")
        r = cli(self.dsn, "user", "rotate-token", "rotator")
        self.assertEqual(r.returncode, 0, r.stderr)
        new = r.stdout.strip().splitlines()[-1]
        self.assertNotEqual(old, new)
        self.assertEqual(self.srv.get("/api/me", token=old).status, 401)
        self.assertEqual(self.srv.get("/api/me", token=new).json()["role"], "agent")

    def test_unknown_routes_and_methods(self):
        r = self.srv.get("/api/nope")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["error"]["code"], "not_found")
        r = self.srv.post("/healthz", body="{}")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.json()["error"]["code"], "method_not_allowed")

    def test_static_files(self):
        r = self.srv.get("/")
        self.assertEqual(r.status, 200)
        self.assertIn(b"casetrail", r.body)
        self.assertEqual(r.headers.get("x-content-type-options"), "nosniff")
        for path in ["/../CMakeLists.txt", "/%2e%2e/CMakeLists.txt", "/.git/config", "/nope.html"]:
            r = self.srv.get(path)
            self.assertEqual(r.status, 404, path)

    def test_access_log_is_json_without_secrets(self):
        token = add_user(self.dsn, "logcheck", "qa")
        healthz_before = self.srv.read_log().count('"path":"/healthz"')
        self.srv.get("/api/me", token=token)
        self.srv.get("/healthz?hub.verify_token=SUPERSECRETVALUE")
        # access lines are written after each answer is sent, so they may land in either
        # order and late under load: wait for both
        deadline = time.time() + 10
        while time.time() < deadline:
            log = self.srv.read_log()
            if '"user":"logcheck"' in log and log.count('"path":"/healthz"') > healthz_before:
                break
            time.sleep(0.05)
        log = self.srv.read_log()
        self.assertNotIn(token, log)
        self.assertNotIn("SUPERSECRETVALUE", log)
        self.assertNotIn(harness.APP_SECRET, log)
        lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        access = [e for e in lines if e.get("msg") == "request"]
        me = [e for e in access if e["path"] == "/api/me" and e.get("user") == "logcheck"]
        self.assertTrue(me, access[-5:])
        self.assertEqual(me[-1]["status"], 200)
        self.assertEqual(me[-1]["method"], "GET")
        self.assertIsInstance(me[-1]["ms"], (int, float))
        self.assertIn("ts", me[-1])

    def test_metrics(self):
        self.srv.get("/healthz")
        self.srv.get("/api/me")
        # requests are counted after their answer is sent: poll briefly under load
        deadline = time.time() + 10
        while True:
            r = self.srv.get("/metrics")
            text = r.body.decode()
            if ('route="GET /api/me",status="401"' in text and 'route="GET /healthz",status="200"' in text) \
                    or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(r.status, 200)
        self.assertRegex(text, r'casetrail_http_requests_total\{route="GET /healthz",status="200"\} [1-9]')
        self.assertRegex(text, r'casetrail_http_requests_total\{route="GET /api/me",status="401"\} [1-9]')
        self.assertIn('casetrail_http_request_duration_seconds_bucket{le="+Inf"}', text)
        self.assertRegex(text, r"casetrail_db_pool_connections_in_use \d+")
        self.assertIn("casetrail_db_up 1", text)

    def test_identity_changes_are_events(self):
        add_user(self.dsn, "sana", "agent")
        r = cli(self.dsn, "user", "set-role", "sana", "supervisor")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = cli(self.dsn, "user", "set-role", "sana", "supervisor")  # no change, no event
        self.assertEqual(r.returncode, 0, r.stderr)
        r = cli(self.dsn, "user", "deactivate", "sana")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = cli(self.dsn, "user", "deactivate", "sana")
        self.assertEqual(r.returncode, 1)
        self.assertIn("already deactivated", r.stderr)
        rows = self.q("SELECT e.seq, e.action, e.actor_type, e.actor_id, coalesce(e.from_value, '-'),"
                      " coalesce(e.to_value, '-'), length(e.hash), e.ticket_id IS NULL"
                      " FROM events e JOIN users u ON u.id = e.user_id"
                      " WHERE u.name = 'sana' ORDER BY e.seq")
        self.assertEqual(rows, [
            ["1", "user.created", "system", "cli", "-", "agent", "32", "t"],
            ["2", "user.role_changed", "system", "cli", "agent", "supervisor", "32", "t"],
            ["3", "user.deactivated", "system", "cli", "active", "inactive", "32", "t"],
        ])
        # the chain links: each prev_hash is the previous hash
        links = self.q("SELECT bool_and(e.prev_hash = p.hash) FROM events e JOIN events p"
                       " ON p.user_id = e.user_id AND p.seq = e.seq - 1"
                       " JOIN users u ON u.id = e.user_id WHERE u.name = 'sana'")
        self.assertEqual(links, [["t"]])
        # the user's name is free text: kept beside the event, digested in the hash
        self.assertEqual(self.one("SELECT t.body FROM event_texts t JOIN events e ON e.id = t.event_id"
                                  " JOIN users u ON u.id = e.user_id WHERE u.name = 'sana'"
                                  " AND t.field = 'subject_name'"), "sana")
        self.assertRegex(self.one("SELECT e.digests->>'subject_name' FROM events e JOIN users u"
                                  " ON u.id = e.user_id WHERE u.name = 'sana' AND e.seq = 1"),
                         r"^[0-9a-f]{64}$")

    def test_sessions_commit_synchronously_whatever_the_settings(self):
        # the test cluster defaults to synchronous_commit=off, and this DATABASE_URL asks for it
        # too: casetrail sets it on after connecting, which /readyz checks (a 200 must never
        # precede a durable COMMIT)
        self.assertEqual(harness.scalar(harness.env_or_die("CT_TEST_ADMIN_DSN"),
                                        "SELECT current_setting('synchronous_commit')"), "off")
        self.assertEqual(self.srv.get("/readyz").status, 200)
        if self.dsn.startswith("postgres"):
            return
        srv = Server(self.dsn + " options='-c synchronous_commit=off'", log_name="not_durable").start()
        try:
            r = srv.get("/readyz")
            self.assertEqual(r.status, 200, r)
        finally:
            srv.stop()

    def test_static_files_are_streamed_with_types(self):
        r = self.srv.request("HEAD", "/index.html")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "text/html; charset=utf-8")
        self.assertIn("default-src 'self'", r.headers["content-security-policy"])
        self.assertEqual(r.body, b"")
        self.assertEqual(int(r.headers["content-length"]),
                         os.path.getsize(os.path.join(harness.ROOT, "web", "index.html")))
        self.assertRegex(r.headers["date"], r"^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$")

    def test_static_files_are_locked_down_and_revalidated(self):
        r = self.srv.get("/")
        csp = r.headers["content-security-policy"]
        for part in ("default-src 'self'", "frame-ancestors 'none'", "object-src 'none'"):
            self.assertIn(part, csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertEqual(r.headers["referrer-policy"], "no-referrer")
        self.assertEqual(r.headers["x-content-type-options"], "nosniff")
        self.assertEqual(r.headers["cache-control"], "no-cache")
        etag, modified = r.headers["etag"], r.headers["last-modified"]
        r = self.srv.get("/", headers={"If-None-Match": etag})
        self.assertEqual((r.status, r.body), (304, b""))
        self.assertEqual(r.headers["etag"], etag)
        self.assertNotIn("content-length", r.headers)
        self.assertEqual(self.srv.get("/", headers={"If-None-Match": '"other"'}).status, 200)
        self.assertEqual(self.srv.get("/", headers={"If-Modified-Since": modified}).status, 304)
        self.assertEqual(self.srv.get("/", headers={
            "If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status, 200)
        self.assertEqual(self.srv.get("/", headers={"If-Modified-Since": "garbage"}).status, 200)
        # the API is never cached
        self.assertEqual(self.srv.get("/healthz").headers["cache-control"], "no-store")

    def test_events_are_append_only(self):
        add_user(self.dsn, "immutable", "agent")
        for sql in ["UPDATE events SET action = 'x'", "DELETE FROM events", "TRUNCATE events CASCADE"]:
            with self.assertRaises(AssertionError) as ctx:
                self.q(sql)
            self.assertIn("append-only", str(ctx.exception))
        self.assertNotEqual(self.one("SELECT count(*) FROM events"), "0")


class Drain(harness.unittest.TestCase):
    """SIGTERM while a webhook waits on a row lock: the request finishes (its rows commit) before
    the process exits 0."""

    def test_sigterm_finishes_in_flight_requests(self):
        dsn, name = create_db("drain")
        srv = Server(dsn, log_name="drain").start()
        try:
            r = harness.post_webhook(srv, harness.text_payload("wamid.drain-1", "923666000001", 1760800000, "a"))
            self.assertEqual(r.status, 200)
            # hold the contact's row lock so the next webhook blocks inside its transaction
            holder = subprocess.Popen(["psql", dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            holder.stdin.write("BEGIN; SELECT id FROM contacts WHERE wa_id = '923666000001' FOR UPDATE;\n")
            holder.stdin.flush()
            holder.stdout.readline()
            result = {}

            def post():
                result["r"] = harness.post_webhook(srv, harness.text_payload(
                    "wamid.drain-2", "923666000001", 1760800001, "b"))
            t = threading.Thread(target=post)
            t.start()
            deadline = time.time() + 60
            waiting = "0"
            while time.time() < deadline and waiting != "1":
                time.sleep(0.05)
                waiting = harness.scalar(
                    harness.env_or_die("CT_TEST_ADMIN_DSN"),
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = :'d' AND wait_event_type = 'Lock'",
                    d=name)
            self.assertEqual(waiting, "1", "the webhook never reached the locked row")
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            self.assertIsNone(srv.proc.poll(), "the server exited with a request in flight")
            # while draining, new work is refused (Meta retries it later)
            r = srv.get("/healthz")
            self.assertEqual((r.status, r.json()["error"]["code"]), (503, "shutting_down"))
            # issue 9: clients still sending their request when the in-flight one ends used to
            # be reset unanswered; the quiet period answers them. Open 8 connections now with
            # half a request each, and finish them just after the in-flight request commits.
            socks = []
            for _ in range(8):
                sk = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                sk.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                socks.append(sk)
            holder.communicate("COMMIT;\n", timeout=30)
            time.sleep(0.1)
            answers = []
            for sk in socks:
                sk.sendall(b"\r\n")
                got = b""
                try:
                    while b"\r\n\r\n" not in got:
                        chunk = sk.recv(4096)
                        if not chunk:
                            break
                        got += chunk
                except OSError:
                    pass
                sk.close()
                answers.append(got.split(b"\r\n", 1)[0])
            self.assertEqual(answers, [b"HTTP/1.1 503 Service Unavailable"] * 8, answers)
            t.join(timeout=30)
            self.assertEqual(srv.proc.wait(timeout=30), 0, srv.read_log())
            self.assertEqual(harness.scalar(dsn, "SELECT count(*) FROM messages WHERE wamid = 'wamid.drain-2'"), "1")
            self.assertEqual(result["r"].status, 200)  # the in-flight request got its answer
        finally:
            srv.stop()
            drop_db(name)


class Cli(harness.unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dsn, cls.dbname = create_db(cls.__name__)

    @classmethod
    def tearDownClass(cls):
        drop_db(cls.dbname)

    def test_help_and_usage_errors(self):
        r = cli(self.dsn, "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("casetrail user", r.stdout)
        r = cli(self.dsn, "user", "add", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--approval-limit", r.stdout)
        for args in [["frobnicate"], ["--frob"], ["user", "frob"], ["user", "add", "x"],
                     ["user", "add", "x", "--role", "king"], ["user", "add", "x", "--role", "qa", "--bogus"],
                     ["user", "add", "x", "--role", "qa", "--approval-limit", "-5"],
                     ["user", "add", "bad name", "--role", "qa"],
                     ["user", "set-role", "x"], ["serve", "extra"], ["migrate", "--now"]]:
            r = cli(self.dsn, *args)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
            self.assertIn("casetrail:", r.stderr)

    def test_user_add_list_and_duplicates(self):
        r = cli(self.dsn, "user", "add", "farah", "--role", "admin")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.splitlines()[-1], r"^ct_[A-Za-z0-9_-]{43}$")
        self.assertTrue(r.stdout.endswith("\n"))
        r = cli(self.dsn, "user", "add", "farah", "--role", "agent")
        self.assertEqual(r.returncode, 1)
        self.assertIn("already exists", r.stderr)
        r = cli(self.dsn, "user", "list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        users = json.loads(r.stdout)
        self.assertEqual([(u["name"], u["role"], u["active"]) for u in users], [("farah", "admin", True)])
        r = cli(self.dsn, "user", "list")
        self.assertIn("farah", r.stdout)
        self.assertNotIn("ct_", r.stdout)
        r = cli(self.dsn, "user", "set-role", "nobody", "qa")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no user named", r.stderr)

    def test_bad_configuration_names_the_variable(self):
        for var, value in [("CASETRAIL_LISTEN", "nowhere"), ("CASETRAIL_MAX_BODY", "huge"),
                           ("CASETRAIL_DB_POOL", "0"), ("WHATSAPP_GRAPH_URL", "graph.facebook.com")]:
            r = cli(self.dsn, "serve", env={var: value})
            self.assertEqual(r.returncode, 1, var)
            self.assertIn(var, r.stderr)

    def test_serve_refuses_without_app_secret(self):
        r = cli(self.dsn, "serve", env={"WHATSAPP_APP_SECRET": ""})
        self.assertEqual(r.returncode, 1)
        self.assertIn("WHATSAPP_APP_SECRET", r.stderr)

    def test_insecure_mode_warns_loudly(self):
        srv = Server(self.dsn, {"WHATSAPP_APP_SECRET": "", "CASETRAIL_INSECURE_NO_SIGNATURE": "1"},
                     log_name="insecure").start()
        try:
            self.assertEqual(srv.get("/healthz").status, 200)
        finally:
            srv.stop()
        self.assertIn("INSECURE", srv.read_log())


class Migrations(harness.unittest.TestCase):
    def test_concurrent_migrate_on_an_empty_database(self):
        dsn, name = create_db("migrate_empty", template=False)
        try:
            env = harness.base_env(dsn)
            procs = [subprocess.Popen([harness.env_or_die("CASETRAIL_BIN"), "migrate"], cwd=harness.ROOT,
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for _ in range(3)]
            outs = [p.communicate(timeout=60) for p in procs]
            for p, (out, err) in zip(procs, outs):
                self.assertEqual(p.returncode, 0, err)
            applied = sorted(int(out.strip().split(": ")[1]) for out, _ in outs)
            nfiles = len([f for f in os.listdir(os.path.join(harness.ROOT, "migrations")) if f.endswith(".sql")])
            self.assertEqual(applied, [0, 0, nfiles])
            self.assertEqual(harness.scalar(dsn, "SELECT count(*) FROM schema_migrations"), str(nfiles))
            r = cli(dsn, "migrate")
            self.assertEqual(r.stdout.strip(), "migrations applied: 0")
        finally:
            drop_db(name)

    def test_readyz_503_when_schema_is_behind(self):
        dsn, name = create_db("schema_behind")
        try:
            srv = Server(dsn, log_name="schema_behind").start()
            try:
                harness.psql(dsn, "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)")
                r = srv.get("/readyz")
                self.assertEqual(r.status, 503)
                self.assertEqual(r.json()["error"]["code"], "schema_not_current")
            finally:
                srv.stop()
        finally:
            drop_db(name)


if __name__ == "__main__":
    harness.main()
