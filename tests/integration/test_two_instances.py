"""Two casetrail instances behind HAProxy, through PgBouncer in transaction mode (issue 13):
the same webhooks delivered to both instances and to the balancer at once leave exactly the
record one instance leaves when it gets each webhook once: the same messages, one ticket per
contact with the same events, one receipt per body, `casetrail verify` clean. Debian's
pgbouncer and haproxy on loopback (scripts/test installs them). When it fails, look at the
group commit in server/domain/ingest.c and the logs named in the assertion."""
import concurrent.futures
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import harness  # noqa: E402
from harness import ServerTest, post_webhook, text_payload  # noqa: E402

SKIP = 77
WEBHOOKS = harness.env_int("CT_FAULT_TWO_WEBHOOKS", 240)  # bench/faults: full size
CONTACTS = harness.env_int("CT_FAULT_TWO_CONTACTS", 30)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workload():
    out = []
    for i in range(WEBHOOKS):
        c = i % CONTACTS
        out.append(json.dumps(text_payload(f"wamid.two.{i}", f"92390{c:07d}", 1761000000 + i,
                                           f"message {i}", name=f"Customer {c}")).encode())
    return out


def record(dsn):
    """What must be identical: messages by wamid and customer, each contact's tickets with
    their events (as a sorted list: concurrent deliveries about one customer may commit in
    either order), and the number of receipts."""
    msgs = harness.psql(dsn, "SELECT m.wamid, c.wa_id, m.body FROM messages m JOIN contacts c"
                             " ON c.id = m.contact_id ORDER BY 1")
    tickets = harness.psql(dsn, """
        SELECT c.wa_id, t.rn, t.status,
               (SELECT string_agg(x, ';' ORDER BY x) FROM (SELECT e.action || ':' ||
                   coalesce(e.from_value, '') || '>' || coalesce(e.to_value, '') || ':' ||
                   coalesce(e.data->>'wamid', '') AS x FROM events e WHERE e.ticket_id = t.id) y)
        FROM (SELECT *, row_number() OVER (PARTITION BY contact_id ORDER BY id) rn FROM tickets) t
        JOIN contacts c ON c.id = t.contact_id ORDER BY 1, 2""")
    receipts = harness.scalar(dsn, "SELECT count(*) FROM webhook_receipts")
    return msgs, tickets, receipts


class TwoInstances(ServerTest):
    @classmethod
    def setUpClass(cls):
        # scripts/test installs both: missing is a failure, not a skip
        assert shutil.which("pgbouncer") and shutil.which("haproxy"), "pgbouncer or haproxy missing"
        super().setUpClass()
        cls.procs, cls.servers, cls.tmp = [], [], tempfile.mkdtemp(prefix="ct-two-")
        cls.dsn2, cls.db2 = harness.create_db("two_instances")

    @classmethod
    def tearDownClass(cls):
        try:
            for s in cls.servers:
                s.stop()
        finally:
            for p in cls.procs:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
            harness.drop_db(cls.db2)
            shutil.rmtree(cls.tmp, ignore_errors=True)
            super().tearDownClass()

    def start_pgbouncer(self):
        m = re.search(r"\bhost=(\S+)", self.dsn2)
        if not m:
            self.skipTest("the test cluster is not a conninfo with host=")
        port = free_port()
        os.chmod(self.tmp, 0o755)
        users = os.path.join(self.tmp, "users.txt")
        with open(users, "w") as f:
            f.write('"postgres" ""\n')
        ini = os.path.join(self.tmp, "pgbouncer.ini")
        with open(ini, "w") as f:
            f.write(f"""[databases]
* = host={m.group(1)} port={os.environ.get('PGPORT', '5432')}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {users}
pool_mode = transaction
max_client_conn = 200
default_pool_size = 12
ignore_startup_parameters = extra_float_digits,options
logfile = {self.tmp}/pgbouncer.log
""")
        cmd = ["pgbouncer", ini]
        if os.geteuid() == 0:  # pgbouncer refuses to run as root: it runs as postgres
            for p in (self.tmp, users, ini):
                shutil.chown(p, "postgres")
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        self.procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))
        dsn = f"host=127.0.0.1 port={port} user=postgres dbname={self.db2}"
        deadline = time.time() + 10
        while time.time() < deadline:
            if subprocess.run(["psql", dsn, "-AtXc", "SELECT 1"], capture_output=True).returncode == 0:
                return dsn
            time.sleep(0.1)
        log = os.path.join(self.tmp, "pgbouncer.log")
        self.fail("pgbouncer did not start: " +
                  (open(log).read()[-2000:] if os.path.exists(log) else "(no log)"))

    def start_haproxy(self, ports):
        port = free_port()
        cfg = os.path.join(self.tmp, "haproxy.cfg")
        servers = "\n".join(f"    server s{i} 127.0.0.1:{p}" for i, p in enumerate(ports))
        with open(cfg, "w") as f:
            f.write(f"""global
    maxconn 400
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend in
    bind 127.0.0.1:{port}
    default_backend casetrail
backend casetrail
    balance roundrobin
{servers}
""")
        self.procs.append(subprocess.Popen(["haproxy", "-db", "-f", cfg],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return port
            except OSError:
                time.sleep(0.1)
        self.fail("haproxy did not start")

    def test_both_instances_at_once_leave_one_instances_record(self):
        t0 = time.monotonic()
        work = workload()
        # one instance, each webhook once: the reference record
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            self.assertEqual(set(pool.map(lambda b: post_webhook(self.srv, b).status, work)),
                             {200})
        referenced = time.monotonic()
        # two instances through PgBouncer (transaction mode: no prepared statements)
        bouncer = self.start_pgbouncer()
        env = {"CASETRAIL_DB_PREPARE": "0"}
        for label in ("A", "B"):
            s = harness.Server(bouncer, env, log_name=f"TwoInstances{label}").start()
            self.servers.append(s)
        lb = self.start_haproxy([s.port for s in self.servers])
        balancer = harness.Server(bouncer)  # only its request method: no process of its own
        balancer.port = lb
        targets = self.servers + [balancer]
        # every webhook to A, to B and through the balancer, at the same moment
        jobs = [(t, b) for b in work for t in targets]
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(24) as pool:
            statuses = list(pool.map(lambda j: post_webhook(j[0], j[1]).status, jobs))
        delivered = time.monotonic()
        want, got = record(self.dsn), record(self.dsn2)
        stored = {m[0] for m in got[0]}
        verified = harness.cli(self.dsn2, "verify", timeout=600)
        harness.fault_report(
            "two_instances", size=WEBHOOKS, contacts=CONTACTS, deliveries=len(jobs),
            ok=statuses.count(200), not_ok=len(statuses) - statuses.count(200),
            lost=len({json.loads(b)["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
                      for b in work} - stored),
            doubled=len(got[0]) - len(stored), receipts=int(got[2]),
            messages_match=got[0] == want[0], tickets_match=got[1] == want[1],
            verify=verified.returncode, reference_s=round(referenced - t0, 1),
            deliver_s=round(delivered - started, 1), seconds=round(time.monotonic() - t0, 1))
        self.assertEqual(set(statuses), {200}, [s.log_path for s in self.servers])
        self.assertEqual(len(got[0]), WEBHOOKS)
        self.assertEqual(got[0], want[0])
        self.assertEqual(got[1], want[1])
        self.assertEqual((got[2], want[2]), (str(WEBHOOKS), str(WEBHOOKS)))
        self.assertEqual(verified.returncode, 0, verified.stdout + verified.stderr)


if __name__ == "__main__":
    harness.main()
