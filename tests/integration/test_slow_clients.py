"""Slow and hostile clients: headers trickled a byte at a time, bodies trickled or half sent.
The server bounds each (CASETRAIL_HEADER_TIMEOUT, CASETRAIL_BODY_TIMEOUT) and keeps answering
everyone else meanwhile. When this fails, look at server/http/watchdog.c (what ends a body read
that is overdue), ct_http_read_body in server/http/http_util.c, and the civetweb options in
server/http/server.c."""
import hashlib
import json
import os
import resource
import selectors
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import harness  # noqa: E402
from harness import ServerTest  # noqa: E402

HEADER_MS = 2000
BODY_MS = 2000
SLOW = 40           # slow connections at once: fewer than the default 128 workers
DRIP_EVERY = 0.5    # seconds between the bytes a slow client sends
GRACE = 1.5         # seconds past its timeout by which a slow connection must be gone
HEALTHZ_MAX = 0.100  # seconds: /healthz must answer this fast while the slow ones wait
GIVE_UP = 15.0      # seconds: a slow client stops by itself (the old code waited 30 s and more)

ENV = {"CASETRAIL_HEADER_TIMEOUT": str(HEADER_MS), "CASETRAIL_BODY_TIMEOUT": str(BODY_MS),
       "CASETRAIL_THREADS": ""}  # empty counts as unset: the default number of workers


class SlowGroup(threading.Thread):
    """n connections that each send head, then one byte of drip every DRIP_EVERY seconds (none
    when drip is empty) until the server answers (or, with past_answer, until it closes).
    Records, for each, what came back and how long after its head it ended."""

    def __init__(self, port, n, head, drip, past_answer=False):
        super().__init__(daemon=True)
        self.drip = drip
        self.past_answer = past_answer
        self.conns = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(head)
            s.setblocking(False)
            self.conns.append({"sock": s, "start": time.monotonic(), "end": None, "data": b""})
        self.sel = selectors.DefaultSelector()
        for c in self.conns:
            self.sel.register(c["sock"], selectors.EVENT_READ, c)
        self.start()

    def _end(self, c):
        c["end"] = time.monotonic() - c["start"]
        self.sel.unregister(c["sock"])
        c["sock"].close()

    def open_count(self):
        return sum(1 for c in self.conns if c["end"] is None)

    def run(self):
        give_up = time.monotonic() + GIVE_UP
        next_drip = time.monotonic() + DRIP_EVERY
        try:
            while self.open_count() > 0 and time.monotonic() < give_up:
                wait = max(0.0, min(next_drip, give_up) - time.monotonic())
                for key, _ in self.sel.select(wait):
                    c = key.data
                    try:
                        data = c["sock"].recv(65536)
                    except OSError:  # reset: the server closed with our bytes unread
                        data = b""
                    if data:
                        c["data"] += data  # an answer: stop dripping, wait for the close
                    else:
                        self._end(c)
                if time.monotonic() >= next_drip:
                    next_drip += DRIP_EVERY
                    for c in self.conns:
                        if self.drip and c["end"] is None and (self.past_answer or not c["data"]):
                            try:
                                c["sock"].send(self.drip)
                            except OSError:
                                self._end(c)
        finally:
            for c in self.conns:
                if c["end"] is None:
                    c["sock"].close()

    def finish(self):
        self.join(GIVE_UP + 5)
        return self.conns


def status_of(data):
    """The status code of a raw HTTP answer, or None when nothing came back."""
    if not data.startswith(b"HTTP/1."):
        return None
    return int(data.split(b" ", 2)[1])


def json_body(data):
    return json.loads(data.split(b"\r\n\r\n", 1)[1].decode())


def body_head(length, signature="sha256=" + "0" * 64):
    return (b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-Hub-Signature-256: " + signature.encode() + b"\r\n"
            b"Content-Length: " + str(length).encode() + b"\r\n\r\n")


class SlowTest(ServerTest):
    server_env = ENV

    def probe(self, n=20, pause=0.0):
        """n sequential GET /healthz on new connections, each 200; returns the slowest
        (seconds)."""
        worst = 0.0
        for _ in range(n):
            t0 = time.monotonic()
            r = self.srv.get("/healthz", timeout=5)
            worst = max(worst, time.monotonic() - t0)
            self.assertEqual(r.status, 200, r)
            time.sleep(pause)
        sys.stderr.write(f"{self.id()}: /healthz slowest of {n}: {worst * 1000:.1f} ms\n")
        return worst

    def healthz_while(self, group, n=20):
        """n sequential GET /healthz while group's connections are held; returns the slowest."""
        time.sleep(0.3)  # let every slow connection reach a worker
        worst = self.probe(n)
        # measured under the load this is about: every slow connection was still waiting
        self.assertEqual(group.open_count(), len(group.conns))
        self.assertLess(worst, HEALTHZ_MAX, f"/healthz took {worst * 1000:.0f} ms")
        return worst

    def assert_all_ended_by(self, conns, limit):
        ends = [c["end"] for c in conns if c["end"] is not None]
        answers = [status_of(c["data"]) for c in conns]
        sys.stderr.write(f"{self.id()}: ended {min(ends, default=0):.2f} to "
                         f"{max(ends, default=0):.2f} s after their head; answers "
                         f"{ {a: answers.count(a) for a in set(answers)} }\n")
        late = [round(c["end"], 2) if c["end"] is not None else None for c in conns
                if c["end"] is None or c["end"] > limit]
        self.assertEqual(late, [], f"connections still open {limit} s after their head")

    def assert_answers(self, conns, status, code):
        """Each got a JSON error status/code, or nothing: a client still sending when the server
        closes may get a reset instead of the answer."""
        statuses = [status_of(c["data"]) for c in conns]
        self.assertEqual([s for s in statuses if s not in (status, None)], [])
        self.assertGreater(statuses.count(status), 0, statuses)
        for c in conns:
            if status_of(c["data"]) == status:
                self.assertEqual(json_body(c["data"])["error"]["code"], code, c["data"])

    def receipts(self):
        return self.one("SELECT count(*) FROM webhook_receipts")


class SlowHeaders(SlowTest):
    def test_trickled_headers_are_cut_off_and_others_are_served(self):
        head = b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\n"
        group = SlowGroup(self.srv.port, SLOW, head, b"X")
        self.healthz_while(group)
        conns = group.finish()
        # civetweb measures the head from its first byte: it ends the request, whatever trickles
        self.assert_all_ended_by(conns, HEADER_MS / 1000 + GRACE)
        self.assert_answers(conns, 400, "head_incomplete")
        self.assertEqual(self.receipts(), "0")


class SlowBodies(SlowTest):
    def test_trickled_bodies_get_408_and_others_are_served(self):
        group = SlowGroup(self.srv.port, SLOW, body_head(1000) + b'{"object":', b" ")
        self.healthz_while(group)
        # a real delivery meanwhile is stored and acknowledged
        good = json.dumps(harness.text_payload("wamid.slow-1", "923000000001", 1760800000,
                                               "hello")).encode()
        r = harness.post_webhook(self.srv, good)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(group.open_count(), SLOW, "the slow ones were cut off too early")
        conns = group.finish()
        self.assert_all_ended_by(conns, BODY_MS / 1000 + GRACE)
        self.assert_answers(conns, 408, "body_timeout")
        # nothing of the slow ones was stored: only the real delivery
        rows = self.q("SELECT encode(body_sha256, 'hex') FROM webhook_receipts")
        self.assertEqual(rows, [[hashlib.sha256(good).hexdigest()]])
        self.assert_counted(SLOW)
        log = self.srv.read_log()
        # cut off by the watchdog (they never fell silent long enough for civetweb to stop)
        self.assertEqual(log.count(f"arrived within {BODY_MS} ms"), SLOW, log[-3000:])
        self.assertNotIn("no socket found", log)

    def assert_counted(self, n):
        # requests are counted after their answer is sent: poll briefly
        deadline = time.time() + 10
        while True:
            text = self.srv.get("/metrics").body.decode()
            counted = [int(line.split()[1]) for line in text.splitlines()
                       if line.startswith("casetrail_http_body_timeouts_total ")]
            if (counted and counted[0] >= n) or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(counted, [n])


class StalledBodies(SlowTest):
    def test_half_sent_bodies_get_408(self):
        # half a body, then silence: civetweb's read ends at the header timeout, the watchdog at
        # the body timeout, whichever comes first; either way the answer is 408
        before = self.receipts()
        group = SlowGroup(self.srv.port, SLOW, body_head(1000) + b'{"object":"whatsapp', b"")
        self.healthz_while(group)
        conns = group.finish()
        self.assert_all_ended_by(conns, max(HEADER_MS, BODY_MS) / 1000 + GRACE)
        self.assertEqual([status_of(c["data"]) for c in conns], [408] * SLOW)
        self.assertEqual({json_body(c["data"])["error"]["code"] for c in conns}, {"body_timeout"})
        self.assertEqual(self.receipts(), before)

    def test_a_refused_oversized_body_cannot_hold_its_worker(self):
        # 413 is sent from Content-Length at once, then the rest is read and thrown away (so the
        # client sees the 413): that read has the same deadline as any body, however the client
        # keeps trickling
        group = SlowGroup(self.srv.port, 5, body_head(5 * 1024 * 1024), b" ", past_answer=True)
        conns = group.finish()
        self.assertEqual([status_of(c["data"]) for c in conns], [413] * 5)
        self.assert_all_ended_by(conns, BODY_MS / 1000 + GRACE)

    def test_a_whole_body_is_still_accepted(self):
        # the deadline covers slow bodies only: a prompt one is stored as ever
        good = json.dumps(harness.text_payload("wamid.prompt-1", "923000000002", 1760800000,
                                               "hi")).encode()
        r = harness.post_webhook(self.srv, good)
        self.assertEqual(r.status, 200, r)



# CASETRAIL_THREADS for the tests of more slow connections than workers, and how many more
# than the workers those are (16 fill most of civetweb's queue of 20); bench/faults raises them
WORKERS = harness.env_int("CT_FAULT_SLOW_WORKERS", 8, 2, 1024)
BEYOND = harness.env_int("CT_FAULT_SLOW_BEYOND", 16, 1, 4096)


def raise_fd_limit():
    """bench/faults holds hundreds of connections at once: more than a soft limit of 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Besieger(threading.Thread):
    """Keeps n connections open to the server at all times, as a slowloris attacker does: each
    sends head and then one byte of drip every DRIP_EVERY seconds (nothing when drip is empty),
    and when the server closes one, a new one takes its place. Records what the closed ones got
    back."""

    def __init__(self, port, n, head, drip):
        super().__init__(daemon=True)
        self.port, self.n, self.head, self.drip = port, n, head, drip
        self.sel = selectors.DefaultSelector()
        self.answers = []    # what each closed connection got back (bytes, maybe empty)
        self.opened = 0
        self.stop = threading.Event()
        raise_fd_limit()
        for _ in range(n):
            self._open()
        self.start()

    def _open(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.sendall(self.head)
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ, {"sock": s, "data": b""})
        self.opened += 1

    def open_count(self):
        """Connections held now: at least n from the start until finish."""
        return len(self.sel.get_map())

    def run(self):
        give_up = time.monotonic() + GIVE_UP
        next_drip = time.monotonic() + DRIP_EVERY
        try:
            while not self.stop.is_set() and time.monotonic() < give_up:
                for key, _ in self.sel.select(0.05):
                    c = key.data
                    try:
                        data = c["sock"].recv(65536)
                    except OSError:
                        data = b""
                    c["data"] += data
                    if not data:
                        self._open()  # first: open_count never dips while one is replaced
                        self.sel.unregister(c["sock"])
                        c["sock"].close()
                        self.answers.append(c["data"])
                if self.drip and time.monotonic() >= next_drip:
                    next_drip += DRIP_EVERY
                    for key in list(self.sel.get_map().values()):
                        try:
                            key.fileobj.send(self.drip)
                        except OSError:
                            pass  # closed by the server: the select loop will see it
        finally:
            for key in list(self.sel.get_map().values()):
                key.fileobj.close()

    def finish(self):
        self.stop.set()
        self.join(GIVE_UP + 5)
        return self.answers


class BeyondWorkers(SlowTest):
    """More slow or idle connections than workers: civetweb gives each connection a worker for
    as long as it stays open, so without help the rest wait in its queue until one times out.
    The watchdog takes workers back from connections that only wait for a request head while
    another connection waits (see reclaim in server/http/watchdog.c), and a probe keeps being
    served within 100 ms."""

    server_env = dict(ENV, CASETRAIL_THREADS=str(WORKERS), CASETRAIL_BODY_TIMEOUT="10000")

    def reclaimed(self):
        text = self.srv.get("/metrics").body.decode()
        return [int(line.split()[1]) for line in text.splitlines()
                if line.startswith("casetrail_http_connections_reclaimed_total ")][0]

    def siege(self, head, drip, wamid, wa_id, probes):
        """Keeps WORKERS + BEYOND connections sending head then drip (a Besieger) while probes
        /healthz ask on new connections and a webhook is posted (acknowledged 200). Returns the
        slowest probe and the webhook's time (seconds), the attacker and what its closed
        connections got back."""
        attacker = Besieger(self.srv.port, WORKERS + BEYOND, head, drip)
        try:
            time.sleep(0.5)  # every worker taken, the queue full
            self.assertGreaterEqual(attacker.open_count(), WORKERS + BEYOND)
            worst = self.probe(n=probes, pause=0.05)
            good = json.dumps(harness.text_payload(wamid, wa_id, 1760800000, "hello")).encode()
            t0 = time.monotonic()
            r = harness.post_webhook(self.srv, good)
            took = time.monotonic() - t0
            self.assertEqual(r.status, 200, r)
            self.assertGreaterEqual(attacker.open_count(), WORKERS + BEYOND)  # the siege went on
        finally:
            answers = attacker.finish()
        return worst, took, attacker, answers

    def assert_told_busy(self, statuses, answers, reclaimed_before):
        """Each closed attacker was answered 503 server_busy with Retry-After (or reset, when
        it was still sending), at least one was, and each was counted."""
        self.assertEqual([x for x in statuses if x not in (503, None)], [], statuses)
        busy = [a for a in answers if status_of(a) == 503]
        self.assertGreater(len(busy), 0)
        for a in busy:
            self.assertEqual(json_body(a)["error"]["code"], "server_busy", a)
            self.assertIn(b"Retry-After:", a)
        self.assertGreaterEqual(self.reclaimed() - reclaimed_before, len(busy))

    def test_trickled_heads_beyond_the_workers_cannot_starve_a_probe(self):
        head = b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\n"
        before, receipts = self.reclaimed(), int(self.receipts())
        t_start = time.monotonic()
        worst, took, attacker, answers = self.siege(head, b"X", "wamid.besieged-1",
                                                    "923000000003", 20)
        t_end = time.monotonic()
        statuses = [status_of(a) for a in answers]
        stored = int(self.one("SELECT count(*) FROM messages WHERE wamid = 'wamid.besieged-1'"))
        harness.fault_report(
            "slow_clients", size=WORKERS + BEYOND, workers=WORKERS, lost=1 - min(stored, 1),
            doubled=max(stored - 1, 0), seconds=round(t_end - t_start, 1),
            probe_worst_ms=round(worst * 1000, 1), webhook_ms=round(took * 1000, 1),
            attacker_opened=attacker.opened, attacker_closed=len(answers),
            answered_503=statuses.count(503), reset=statuses.count(None),
            reclaimed=self.reclaimed() - before)
        self.assertLess(worst, HEALTHZ_MAX, f"/healthz took {worst * 1000:.0f} ms")
        self.assertLess(took, 0.5)
        self.assertEqual(stored, 1)
        self.assert_told_busy(statuses, answers, before)  # a cut-off head is told why
        self.assertEqual(int(self.receipts()), receipts + 1)  # the cut-off heads left none
        self.assertIn("connections waiting only for a request head, or trickling a body, were "
                      "closed", self.srv.read_log())

    def test_idle_kept_alive_connections_give_way(self):
        # WORKERS + BEYOND clients each make one request and then keep their connection open,
        # idle (CASETRAIL_KEEPALIVE_TIMEOUT is 5 s): closing an idle one is allowed in HTTP/1.1
        before = self.reclaimed()
        conns = []
        try:
            for _ in range(WORKERS + BEYOND):
                s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                conns.append(s)
            time.sleep(0.5)
            worst = self.probe(pause=0.05)
            self.assertLess(worst, HEALTHZ_MAX, f"/healthz took {worst * 1000:.0f} ms")
            # every idle client got its answer before its connection was taken back
            for s in conns:
                s.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.assertEqual(status_of(data), 200, data)
        finally:
            for s in conns:
                s.close()
        self.assertGreater(self.reclaimed(), before)

    def test_trickled_bodies_beyond_the_workers_give_way(self):
        # bodies trickled a byte every DRIP_EVERY on more connections than workers, each
        # replaced when closed: with no head left to take back, the watchdog takes workers from
        # bodies arriving at under CT_RECLAIM_BODY_RATE (503 server_busy), long before
        # CASETRAIL_BODY_TIMEOUT (10 s here) would free them
        before, receipts = self.reclaimed(), int(self.receipts())
        worst, took, attacker, answers = self.siege(body_head(1000) + b'{"object":', b" ",
                                                    "wamid.besieged-2", "923000000004", 10)
        statuses = [status_of(a) for a in answers]
        counted = {x: statuses.count(x) for x in set(statuses)}
        sys.stderr.write(f"{self.id()}: webhook {took * 1000:.0f} ms; attacker opened "
                         f"{attacker.opened}, answers {counted}\n")
        self.assertLess(worst, BODY_GIVE_WAY, f"/healthz took {worst * 1000:.0f} ms")
        self.assertLess(took, BODY_GIVE_WAY)
        self.assertEqual(self.one("SELECT count(*) FROM messages WHERE wamid = 'wamid.besieged-2'"),
                         "1")
        self.assert_told_busy(statuses, answers, before)
        self.assertEqual(int(self.receipts()), receipts + 1)  # the cut-off bodies left none
        self.assertIn("too slowly to keep a worker others were waiting for", self.srv.read_log())

    def test_bodies_arriving_steadily_keep_their_workers(self):
        # every worker but one holds a trickled body; the last one reads a body sent steadily
        # at 25 KB/s (above CT_RECLAIM_BODY_RATE) while another connection waits: the waiting
        # one is served by taking a trickled body's worker, and the steady body is read whole
        # (answered for its made-up signature, never 503)
        slow = SlowGroup(self.srv.port, WORKERS - 1, body_head(1000) + b'{"object":', b" ")
        time.sleep(0.3)
        size, piece = 16384, 512
        steady = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
        extra = None
        try:
            steady.sendall(body_head(size))
            time.sleep(0.05)
            extra = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            for i in range(0, size, piece):
                steady.sendall(b" " * piece)
                time.sleep(0.02)
            steady.settimeout(5)
            answer = steady.recv(65536)
            extra.settimeout(5)
            self.assertEqual(status_of(extra.recv(65536)), 200)
        finally:
            steady.close()
            if extra is not None:
                extra.close()
            conns = slow.finish()
        self.assertIsNotNone(status_of(answer), answer)
        self.assertNotEqual(status_of(answer), 503, answer)
        self.assertIn(503, [status_of(c["data"]) for c in conns])


BODY_GIVE_WAY = 1.0  # seconds: served this fast while bodies trickle in on every worker


class KeepAlive(ServerTest):
    """Connections are kept alive between requests (Meta reuses its connections) for at most
    CASETRAIL_KEEPALIVE_TIMEOUT idle, and closed after an answer that may leave a body unread,
    so civetweb never reads a refused body to its end. See may_keep_alive in
    server/http/http_util.c."""

    server_env = {"CASETRAIL_KEEPALIVE_TIMEOUT": "1000", "CASETRAIL_BODY_TIMEOUT": str(BODY_MS)}

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
        return s, s.makefile("rb")

    @staticmethod
    def answer(f):
        """Reads one answer with its Content-Length body: (status, headers, body)."""
        status = int(f.readline().split()[1])
        headers = {}
        for line in iter(f.readline, b"\r\n"):
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers, f.read(int(headers.get("content-length", "0")))

    def test_requests_share_a_connection_until_it_idles_out(self):
        s, f = self.connect()
        with s:
            for _ in range(3):
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                status, headers, _ = self.answer(f)
                self.assertEqual(status, 200)
                self.assertNotEqual(headers.get("connection"), "close")
            # idle past CASETRAIL_KEEPALIVE_TIMEOUT: the server closes it
            t0 = time.monotonic()
            s.settimeout(5)
            self.assertEqual(s.recv(1), b"")
            self.assertLess(time.monotonic() - t0, 3.0)

    def test_answers_on_a_kept_alive_connection_are_not_held_back(self):
        # head and body are two writes: with Nagle's algorithm on, the body waited for the
        # client's delayed ACK, 40 ms a request (TCP_NODELAY: tcp_nodelay in server.c)
        s, f = self.connect()
        with s:
            t0 = time.monotonic()
            for _ in range(20):
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(self.answer(f)[0], 200)
            took = time.monotonic() - t0
        self.assertLess(took, 0.5, f"20 requests on one connection took {took:.3f} s")

    def refused(self, path, length, want, closes_within):
        """Sends a head declaring `length` body bytes and a few of them; the answer must be
        `want` with Connection: close, and the connection closed within closes_within s."""
        s, f = self.connect()
        with s:
            s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n{\"body\"" % (path, length))
            status, headers, body = self.answer(f)
            self.assertEqual(status, want, body)
            self.assertEqual(headers.get("connection"), "close")
            s.settimeout(closes_within)
            self.assertEqual(s.recv(1), b"")  # closed, not reading the rest first

    def test_a_refused_body_closes_the_connection(self):
        # unauthenticated: 401 before the body is read, and closed at once
        self.refused(b"/api/tickets/1/notes", 1000000, 401, 5)
        # too large: 413 from the header; what follows is read for at most the body timeout
        # (so the client sees the answer rather than a reset), then the connection closes
        self.refused(b"/webhooks/whatsapp", 100000000, 413, BODY_MS / 1000 + 3 * GRACE)

    def test_a_client_asking_to_close_is_closed(self):
        s, f = self.connect()
        with s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            self.assertEqual(self.answer(f)[0], 200)
            s.settimeout(5)
            self.assertEqual(s.recv(1), b"")


if __name__ == "__main__":
    harness.main()
