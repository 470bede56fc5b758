"""harness.py: shared helpers for casetrail's integration tests.

Each test class gets its own database copied from the migrated template (so ctest -j is safe),
starts the real casetrail binary (built with sanitizers) on a free loopback port, talks to it
over HTTP and checks PostgreSQL directly with psql. Stopping the server with SIGTERM must exit 0:
that is how LeakSanitizer reports reach the test result.
"""
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest
import urllib.parse

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared"))
FIXTURES = os.path.join(SHARED, "fixtures", "whatsapp")
APP_SECRET = "test-app-secret-not-for-production"
VERIFY_TOKEN = "test-verify-token"


def env_or_die(name):
    value = os.environ.get(name)
    if not value:
        sys.stderr.write(f"{name} is not set: run the suite through scripts/test\n")
        sys.exit(1)
    return value


def dsn_for(dsn, dbname):
    """Returns the admin DSN (conninfo or URI) pointed at another database."""
    if dsn.startswith("postgres://") or dsn.startswith("postgresql://"):
        u = urllib.parse.urlsplit(dsn)
        return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + dbname, u.query, u.fragment))
    if re.search(r"\bdbname=\S+", dsn):
        return re.sub(r"\bdbname=\S+", "dbname=" + dbname, dsn)
    return dsn + " dbname=" + dbname


def psql(dsn, sql, **params):
    """Runs sql through psql; params become psql variables (:'name' quotes them safely).
    Returns rows as lists of strings."""
    args = ["psql", dsn, "-AtX", "-q", "-v", "ON_ERROR_STOP=1", "-F", "\x1f"]
    for k, v in params.items():
        args += ["-v", f"{k}={v}"]
    out = subprocess.run(args, input=sql, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"psql failed: {out.stderr.strip()}\nSQL: {sql}")
    return [line.split("\x1f") for line in out.stdout.splitlines()]


def scalar(dsn, sql, **params):
    rows = psql(dsn, sql, **params)
    return rows[0][0] if rows else None


def env_int(name, default, low=1, high=10_000_000):
    """A size from the environment (the fault tests' CT_FAULT_* knobs, which bench/faults sets
    to full size): default when unset; a value that is not an integer in [low, high] stops the
    test with a message naming the variable."""
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw) or not low <= int(raw) <= high:
        sys.stderr.write(f"{name}={raw!r}: want an integer from {low} to {high}\n")
        sys.exit(2)
    return int(raw)


def fault_report(test, **fields):
    """One summary line of a fault test (sizes, what got 200 before the fault, what was resent,
    lost and doubled counts, seconds): printed to stderr, and appended as a JSON line to
    $CT_FAULT_REPORT when set (bench/faults prints them as a table). Call it before asserting,
    so a failing run still reports its counts."""
    rec = {"test": test, **fields}
    sys.stderr.write("fault report: " + json.dumps(rec) + "\n")
    path = os.environ.get("CT_FAULT_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")


_db_counter = [0]


def create_db(label, template=True):
    admin = env_or_die("CT_TEST_ADMIN_DSN")
    _db_counter[0] += 1
    name = f"ct_t_{re.sub(r'[^a-z0-9]', '_', label.lower())[:30]}_{os.getpid()}_{_db_counter[0]}"
    tmpl = env_or_die("CT_TEST_TEMPLATE") if template else "template0"
    psql(admin, f'CREATE DATABASE "{name}" TEMPLATE "{tmpl}"')
    return dsn_for(admin, name), name


def drop_db(name):
    admin = env_or_die("CT_TEST_ADMIN_DSN")
    psql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ed25519_keys(directory):
    """Two throw-away Ed25519 key pairs as PEM files in directory, made with openssl:
    (private key, its public key, another pair's public key)."""
    key, pub = os.path.join(directory, "k.pem"), os.path.join(directory, "pub.pem")
    other, other_pub = os.path.join(directory, "other.pem"), os.path.join(directory, "other_pub.pem")
    for args in (["genpkey", "-algorithm", "ed25519", "-out", key],
                 ["pkey", "-in", key, "-pubout", "-out", pub],
                 ["genpkey", "-algorithm", "ed25519", "-out", other],
                 ["pkey", "-in", other, "-pubout", "-out", other_pub]):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)
    return key, pub, other_pub


def sign(body, secret=APP_SECRET):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class Server:
    """A casetrail serve process on 127.0.0.1 with a free port."""

    def __init__(self, dsn, extra_env=None, log_name="server"):
        self.dsn = dsn
        self.env = base_env(dsn)
        self.env.update(extra_env or {})
        logdir = os.path.join(os.environ.get("CT_TEST_LOGDIR", "/tmp"), "casetrail-tests")
        os.makedirs(logdir, exist_ok=True)
        self.log_path = os.path.join(logdir, f"{log_name}-{os.getpid()}-{time.time_ns()}.log")
        self.proc = None
        self.port = None

    def start(self, timeout=30):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([env_or_die("CASETRAIL_BIN"), "serve"], cwd=ROOT,
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.log_path, "rb") as f:
                m = re.search(rb"listening on [0-9.]+:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.read_log()}")
            time.sleep(0.05)
        raise AssertionError(f"server did not start within {timeout}s:\n{self.read_log()}")

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout=30):
        """SIGTERM, wait, and fail when the exit status is not 0 (sanitizer reports)."""
        if self.proc is None or self.proc.poll() is not None:
            code = self.proc.returncode if self.proc else 0
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"server did not stop within {timeout}s:\n{self.read_log()}")
        self.log.close()
        if code != 0:
            raise AssertionError(f"server exited with status {code}:\n{self.read_log()}")

    def request(self, method, path, body=None, headers=None, token=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)


def base_env(dsn):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CASETRAIL_") and not k.startswith("WHATSAPP_")}
    env.update({
        "DATABASE_URL": dsn,
        "CASETRAIL_LISTEN": "127.0.0.1:0",
        "CASETRAIL_THREADS": "16",
        "CASETRAIL_DB_POOL": "4",
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "WHATSAPP_GRAPH_URL": "http://127.0.0.1:9/v21.0",
    })
    return env


def cli(dsn, *args, env=None, timeout=60, input=None):
    e = base_env(dsn)
    e.update(env or {})
    return subprocess.run([env_or_die("CASETRAIL_BIN"), *args], cwd=ROOT, env=e, input=input,
                          capture_output=True, text=True, timeout=timeout)


def set_password(dsn, name, password):
    """casetrail user set-password NAME, the password on stdin."""
    r = cli(dsn, "user", "set-password", name, input=password + "\n")
    if r.returncode != 0:
        raise AssertionError(f"set-password failed: {r.stderr}")


def add_user(dsn, name, role, limit=None):
    args = ["user", "add", name, "--role", role]
    if limit is not None:
        args += ["--approval-limit", str(limit)]
    r = cli(dsn, *args)
    if r.returncode != 0:
        raise AssertionError(f"user add failed: {r.stderr}")
    return r.stdout.strip().splitlines()[-1]


class ServerTest(unittest.TestCase):
    """A test class with its own database and a running server (self.srv, self.dsn)."""

    server_env = {}

    @classmethod
    def setUpClass(cls):
        cls.dsn, cls.dbname = create_db(cls.__name__)
        cls.srv = Server(cls.dsn, cls.server_env, log_name=cls.__name__).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.stop()
        finally:
            drop_db(cls.dbname)

    def q(self, sql, **params):
        return psql(self.dsn, sql, **params)

    def one(self, sql, **params):
        return scalar(self.dsn, sql, **params)

    def wait_one(self, sql, want, timeout, what, **params):
        """Polls the scalar of sql until it equals want; fails naming what (and the server log)
        with the last value seen when timeout seconds pass first."""
        deadline = time.time() + timeout
        got = None
        while time.time() < deadline:
            got = self.one(sql, **params)
            if got == want:
                return
            time.sleep(0.05)
        self.fail(f"{what} is {got}, not {want} ({self.srv.log_path})")


def main():
    unittest.main(verbosity=2)


def post_webhook(srv, body, secret=APP_SECRET, signature=None, headers=None):
    """Posts body (bytes, or a dict serialised to JSON) signed with secret."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    h = {"Content-Type": "application/json",
         "X-Hub-Signature-256": signature if signature is not None else sign(body, secret)}
    h.update(headers or {})
    return srv.request("POST", "/webhooks/whatsapp", body=body, headers=h)


PNID_A = "117293845601928"
PNID_B = "117293845609911"


def text_payload(wamid, wa_id, ts, body, name="Test Customer", pnid=PNID_A, extra=None):
    """A one-message text webhook in the documented envelope."""
    msg = {"from": wa_id, "id": wamid, "timestamp": str(ts), "type": "text", "text": {"body": body}}
    msg.update(extra or {})
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "923211234500", "phone_number_id": pnid},
             "messages": [msg]}
    if name is not None:
        value["contacts"] = [{"profile": {"name": name}, "wa_id": wa_id}]
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "104857392016473", "changes": [{"field": "messages", "value": value}]}]}


def status_payload(wamid, status, ts, recipient="923001234567", pnid=PNID_A, errors=None):
    st = {"id": wamid, "status": status, "timestamp": str(ts), "recipient_id": recipient}
    if errors:
        st["errors"] = errors
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "923211234500", "phone_number_id": pnid},
             "statuses": [st]}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "104857392016473", "changes": [{"field": "messages", "value": value}]}]}
