"""bench/loadgen, the load generator of bench/ingest_vs_pgbench, against a test server, so it
cannot rot unnoticed: its webhooks are signed as Meta signs them (a wrong secret gets 401 and
stores nothing), every 200 it counts is a stored message with a unique wamid, and it stops by
itself at its count or its time. It is built in every build folder; ctest passes its path in
CASETRAIL_LOADGEN (tests/CMakeLists.txt). When it fails, look at bench/loadgen.c and the
server log path in the assertion."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import harness  # noqa: E402
from harness import ServerTest  # noqa: E402

SKIP = 77


def loadgen(port, *args, env=None):
    """Runs loadgen; returns (exit status, its one JSON line parsed or None, stderr)."""
    e = dict(os.environ)
    e.pop("WHATSAPP_APP_SECRET", None)
    e.update(env or {})
    out = subprocess.run([os.environ["CASETRAIL_LOADGEN"], "--port", str(port), *args],
                         capture_output=True, text=True, timeout=60, env=e)
    lines = out.stdout.splitlines()
    return out.returncode, json.loads(lines[0]) if len(lines) == 1 else None, out.stderr


def run_id(label):
    return f"{label}-{os.getpid()}-{time.time_ns()}"


class Loadgen(ServerTest):
    def stored(self, run):
        return self.one("SELECT count(*) FROM messages WHERE wamid LIKE :'p'",
                        p=f"wamid.bench-{run}-%")

    def test_every_200_is_a_stored_message(self):
        run = run_id("all")
        code, r, err = loadgen(self.srv.port, "--count", "200", "--concurrency", "8",
                               "--contacts", "50", "--run", run,
                               env={"WHATSAPP_APP_SECRET": harness.APP_SECRET})
        self.assertEqual(code, 0, err)
        self.assertEqual((r["requests"], r["ok"], r["non200"], r["transport_errors"]),
                         (200, 200, {}, 0), f"{r} ({self.srv.log_path})")
        self.assertEqual((r["run"], r["concurrency"], r["contacts"], r["stopped_by"]),
                         (run, 8, 50, "count"))
        self.assertGreater(r["webhooks_per_s"], 0)
        # one connection per request with Connection: close, fewer once keep-alive is on
        self.assertTrue(1 <= r["connections"] <= 200, r)
        self.assertTrue(0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"], r)
        self.assertAlmostEqual(r["webhooks_per_s"], 200 / r["seconds"],
                               delta=r["webhooks_per_s"] * 0.01 + 0.1)
        # unique wamids over 50 contacts, each with its one ticket; every receipt signed
        self.assertEqual(self.stored(run), "200")
        self.assertEqual(self.q("SELECT count(DISTINCT m.contact_id), count(DISTINCT m.ticket_id),"
                                " bool_and(w.signature_verified) FROM messages m"
                                " JOIN webhook_receipts w ON w.id = m.receipt_id"
                                " WHERE m.wamid LIKE :'p'", p=f"wamid.bench-{run}-%"),
                         [["50", "50", "t"]])

    def test_a_wrong_secret_is_refused(self):
        run = run_id("bad")
        code, r, err = loadgen(self.srv.port, "--count", "16", "--concurrency", "4",
                               "--run", run, "--secret", "not-the-app-secret")
        self.assertEqual(code, 0, err)
        self.assertEqual((r["requests"], r["ok"], r["non200"]), (16, 0, {"401": 16}), r)
        self.assertEqual(r["webhooks_per_s"], 0)
        self.assertEqual(self.stored(run), "0")

    def test_a_rate_paces_the_requests(self):
        # 30 at 20/s: request i starts no sooner than i/20 s after the first, so the last (29)
        # at 1.45 s at the earliest, however fast the server answers
        run = run_id("rate")
        code, r, err = loadgen(self.srv.port, "--count", "30", "--rate", "20", "--concurrency",
                               "4", "--run", run, "--secret", harness.APP_SECRET)
        self.assertEqual(code, 0, err)
        self.assertEqual((r["requests"], r["ok"], r["stopped_by"]), (30, 30, "count"), r)
        self.assertGreaterEqual(r["seconds"], 1.45, r)
        self.assertLess(r["seconds"], 5, r)
        self.assertEqual(self.stored(run), "30")
        code, _, err = loadgen(self.srv.port, "--rate", "0", "--secret", harness.APP_SECRET)
        self.assertEqual(code, 2, err)

    def test_it_stops_at_its_time(self):
        run = run_id("time")
        t0 = time.monotonic()
        code, r, err = loadgen(self.srv.port, "--seconds", "1", "--count", "20000",
                               "--concurrency", "2", "--run", run, "--secret", harness.APP_SECRET)
        self.assertEqual(code, 0, err)
        self.assertEqual(r["stopped_by"], "time", r)
        self.assertLess(r["requests"], 20000)
        self.assertTrue(1.0 <= r["seconds"] < 5, r)
        self.assertLess(time.monotonic() - t0, 30)
        self.assertEqual((r["ok"], r["non200"]), (r["requests"], {}), r)
        self.assertEqual(self.stored(run), str(r["ok"]))

    def test_get_mode_reads_over_kept_alive_connections(self):
        # bench/http_floor's mode: GETs, no secret, an extra header; keep-alive reuses sockets
        token = harness.add_user(self.dsn, "bench.reader", "qa")
        code, r, err = loadgen(self.srv.port, "--get", "/api/me", "--count", "200",
                               "--concurrency", "4", "--header", "Authorization: Bearer " + token)
        self.assertEqual(code, 0, err)
        self.assertEqual((r["requests"], r["ok"], r["non200"]), (200, 200, {}), r)
        self.assertLessEqual(r["connections"], 8, r)
        code, r, err = loadgen(self.srv.port, "--get", "/api/me", "--count", "10")
        self.assertEqual((code, r["non200"]), (0, {"401": 10}), err)
        for bad in ("healthz", "/a b"):
            self.assertEqual(loadgen(self.srv.port, "--get", bad)[0], 2, bad)

    def test_usage_errors_exit_2(self):
        for args in (["--count", "0"], ["--concurrency", "x"], ["--run", "a b"], ["--bogus", "1"]):
            code, r, err = loadgen(self.srv.port, *args, "--secret", "s")
            self.assertEqual((code, r), (2, None), args)
            self.assertIn("loadgen:", err)
        # no secret at all: it refuses rather than sending unsigned webhooks
        code, r, err = loadgen(self.srv.port)
        self.assertEqual((code, r), (2, None))


if __name__ == "__main__":
    if not os.environ.get("CASETRAIL_LOADGEN"):
        print("skipped: bench/loadgen was not built (CASETRAIL_BENCH=OFF)")
        sys.exit(SKIP)
    harness.main()
