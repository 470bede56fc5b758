"""Least privilege: casetrail serves with the role docs/least-privilege.sql creates, and that
role cannot rewrite events even without the trigger (the privilege system refuses it). When
this fails, compare the grants in docs/least-privilege.sql with the tables the code writes."""
import os
import unittest
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import harness  # noqa: E402
from harness import Server, cli, create_db, drop_db, post_webhook, text_payload  # noqa: E402

SQL = os.path.join(harness.ROOT, "docs", "least-privilege.sql")


def as_role(dsn, role):
    if dsn.startswith("postgres"):
        raise unittest.SkipTest("URI DSNs are not rewritten here")
    return dsn.replace("user=postgres", f"user={role}") if "user=" in dsn else dsn + f" user={role}"


class LeastPrivilege(harness.unittest.TestCase):
    def test_app_role_serves_and_cannot_rewrite(self):
        role = f"ct_app_{os.getpid()}"
        dsn, name = create_db("least_priv")
        try:
            out = harness.subprocess.run(["psql", dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v",
                                          f"app_role={role}", "-f", SQL],
                                         capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            app = as_role(dsn, role)
            r = cli(app, "user", "add", "lp.agent", "--role", "supervisor", "--approval-limit", "100")
            self.assertEqual(r.returncode, 0, r.stderr)
            token = r.stdout.strip().splitlines()[-1]
            srv = Server(app, log_name="least_priv").start()
            try:
                self.assertEqual(srv.get("/readyz").status, 200)
                r = post_webhook(srv, text_payload("wamid.lp-1", "923888000001", 1760700000, "refund please"))
                self.assertEqual(r.status, 200, r)
                tid = harness.scalar(dsn, "SELECT max(id) FROM tickets")
                for action, body in [("assign", {"assignee": "lp.agent"}),
                                     ("notes", {"body": "checked"}),
                                     ("status", {"status": "resolved", "reason": "refunded"})]:
                    r = srv.post(f"/api/tickets/{tid}/{action}", body=body, token=token)
                    self.assertEqual(r.status, 200, (action, r, srv.read_log()[-2000:]))
                self.assertTrue(srv.get(f"/api/tickets/{tid}/verify", token=token).json()["ok"])
                # the viewer's sign-in writes sessions and failed attempts
                harness.set_password(app, "lp.agent", "least privilege pw")
                r = srv.post("/api/session", {"name": "lp.agent", "password": "wrong password"})
                self.assertEqual(r.status, 401, r)
                r = srv.post("/api/session", {"name": "lp.agent", "password": "least privilege pw"})
                self.assertEqual(r.status, 200, (r, srv.read_log()[-2000:]))
                cookie = r.headers["set-cookie"].split(";")[0]
                r = srv.get(f"/api/tickets?q=refund", headers={"Cookie": cookie})
                self.assertEqual(len(r.json()["tickets"]), 1, r)
                r = srv.request("DELETE", "/api/session",
                                headers={"Cookie": cookie, "X-Casetrail-CSRF": "1"})
                self.assertEqual(r.status, 204, r)
            finally:
                srv.stop()
            r = cli(app, "digest")
            self.assertEqual(r.returncode, 0, r.stderr)
            r = cli(app, "verify", "--digest", r.stdout.strip())
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            # the privilege system, not only the trigger, refuses a rewrite
            harness.psql(dsn, "ALTER TABLE events DISABLE TRIGGER events_no_update_delete")
            harness.psql(dsn, "ALTER TABLE digests DISABLE TRIGGER digests_no_update_delete")
            for sql in ["UPDATE events SET action = 'x'", "DELETE FROM events", "TRUNCATE events",
                        "UPDATE digests SET upto_id = 0", "DELETE FROM digests"]:
                with self.assertRaises(AssertionError) as ctx:
                    harness.psql(app, sql)
                self.assertIn("permission denied", str(ctx.exception))
        finally:
            drop_db(name)
            harness.psql(harness.env_or_die("CT_TEST_ADMIN_DSN"), f'DROP ROLE IF EXISTS "{role}"')


if __name__ == "__main__":
    harness.main()
