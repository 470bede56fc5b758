"""fake_graph.py: a fake WhatsApp Cloud (Graph) API on loopback for integration tests.

It answers POST /{version}/{pnid}/messages from a script of answers (success with a fresh
wamid, rate limits, documented error codes, a hang past the client's timeout), serves media
lookups and downloads, and records every request so tests can check what casetrail sent and
when. Shapes follow /work/shared/whatsapp.md sections 8-11. Python 3 standard library only.

    g = FakeGraph(); g.start()      # g.url: "http://127.0.0.1:PORT/v21.0" (WHATSAPP_GRAPH_URL)
    g.script("429"); g.script("ok", n=3)
    ... run casetrail against g.url ...
    g.requests                      # snapshot list of dicts, oldest first
    g.stop()
"""
import hashlib
import http.server
import json
import re
import socket
import sys
import threading
import time

# kind -> (HTTP status, error code, message, error_data.details, extra headers). Messages are
# the documented titles in Graph's "(#code) title" form, except 190 and 2, which Graph words
# without the prefix.
ERRORS = {
    "429": (429, 130429, "(#130429) Rate limit hit",
            "Cloud API message throughput has been reached.", {"Retry-After": "1"}),
    "500": (500, 2, "An unexpected error has occurred. Please retry your request later.",
            None, {}),
    "131056": (400, 131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit",
               "Message failed to send because there were too many messages sent from this "
               "phone number to the same phone number in a short period of time.", {}),
    "131047": (400, 131047, "(#131047) Re-engagement message",
               "Message failed to send because more than 24 hours have passed since the "
               "customer last replied to this number.", {}),
    "131026": (400, 131026, "(#131026) Message undeliverable",
               "Message Undeliverable: the recipient is not on WhatsApp or has not accepted "
               "the latest terms.", {}),
    "131051": (400, 131051, "(#131051) Unsupported message type",
               "Message type is not currently supported.", {}),
    "131062": (400, 131062, "(#131062) Business-scoped user ID recipients not supported",
               "This message must be sent to a phone number, not a business-scoped user ID.",
               {}),
    "100": (400, 100, "(#100) Invalid parameter",
            "Parameter value is not valid.", {}),
    "190": (401, 190, "Error validating access token: Session has expired on Friday, "
            "01-May-26 10:00:00 PDT.", None, {}),
}
KINDS = ("ok", "hang") + tuple(ERRORS)
MEDIA_FAILS = ("404", "lookup_404", "wrong_bytes")
MESSAGES_PATH = re.compile(r"^/(v\d+\.\d+)/(\d+)/messages$")
MEDIA_PATH = re.compile(r"^/(v\d+\.\d+)/([A-Za-z0-9_.-]+)$")
BYTES_PATH = re.compile(r"^/media-bytes/([A-Za-z0-9_.-]+)$")


class FakeGraph:
    """A fake Graph API in a background thread. Not started until start(); stop() ends it
    (hanging answers included) and may be called twice."""

    def __init__(self, version="v21.0", token=None):
        # token: when set, every request must carry "Authorization: Bearer <token>" (else 401
        # with code 190, as Graph answers). When None any bearer token is accepted, and a
        # media download must repeat the Authorization header of the lookup that gave its URL.
        self.version = version
        self.token = token
        self.default = "ok"          # the answer when the script is empty
        self.hang_seconds = 30.0     # how long "hang" holds a request before answering "ok"
        self.delay = 0.0             # seconds an "ok" send takes (Graph's latency): the message
                                     # is accepted (its wamid recorded) on arrival, answered after
        self._lock = threading.Lock()
        self._requests = []
        self._queue = []
        self._wamids = 0
        self._media = {}             # id -> data, mime, fail, fail_left, auth, size_str
        self._conns = set()          # open client sockets, closed by stop()
        self._stopping = threading.Event()
        self._httpd = None
        self._thread = None
        self.port = None
        self.base = None             # "http://127.0.0.1:PORT"
        self.url = None              # base + "/" + version

    # --- life cycle ---------------------------------------------------------------------

    def start(self, port=0):
        """Listens on 127.0.0.1:port (0: a free one). A stopped fake can start again, on its
        old port (start(g.port)) to play a Graph outage that ends."""
        handler = type("Handler", (_Handler,), {"fake": self})
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", port), handler)
        self.port = self._httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/{self.version}"
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name="fake-graph")
        self._thread.start()
        return self

    def stop(self):
        """Stops listening and closes every open connection, kept-alive ones included: a
        client must not keep talking to a stopped Graph."""
        if self._httpd is None:
            return
        self._stopping.set()        # wakes hanging answers first: they close without a reply
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass                # already closed by its client
        self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- scripting ----------------------------------------------------------------------

    def script(self, kind, n=1):
        """Queues kind as the answer to the next n message POSTs."""
        if kind not in KINDS:
            raise ValueError(f"unknown answer kind {kind!r}; known: {', '.join(KINDS)}")
        with self._lock:
            self._queue.extend([kind] * n)

    def pending(self):
        """Scripted answers not used yet."""
        with self._lock:
            return list(self._queue)

    def add_media(self, media_id, data, mime, file_size_as_string=True):
        """Registers media: GET /{version}/{media_id} describes it, its URL serves data.
        Graph has been seen sending file_size as a string and as a number (section 8)."""
        with self._lock:
            self._media[str(media_id)] = {"data": bytes(data), "mime": mime, "fail": None,
                                          "fail_left": None, "auth": None,
                                          "size_str": file_size_as_string}

    def media_fail(self, media_id, kind, n=None):
        """Makes media fail: "404" the download answers 404 (an expired URL: the client must
        look the media up again), "lookup_404" the lookup answers 404 with a Graph error,
        "wrong_bytes" the download serves other bytes of the same length (only the sha256
        check catches it). n: for the next n attempts only (None: until media_fail(id, None))."""
        if kind is not None and kind not in MEDIA_FAILS:
            raise ValueError(f"unknown media failure {kind!r}; known: {', '.join(MEDIA_FAILS)}")
        with self._lock:
            m = self._media[str(media_id)]
            m["fail"] = kind
            m["fail_left"] = n

    # --- inspection ---------------------------------------------------------------------

    @property
    def requests(self):
        """Every request so far, oldest first: dicts with method, path (query included),
        headers (lower-case keys), body (bytes), json (parsed or None), t (time.monotonic()
        on arrival), client ((host, port): the same port means the same connection), and for
        a send answered "ok", wamid (the id Graph accepted it as)."""
        with self._lock:
            return list(self._requests)

    def sends(self):
        """The message POSTs only."""
        return [r for r in self.requests
                if r["method"] == "POST" and MESSAGES_PATH.match(r["path"].split("?")[0])]

    def wait_requests(self, n, timeout=10.0, sends_only=False):
        """Waits until at least n requests (or message POSTs) arrived; returns them or raises
        AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.sends() if sends_only else self.requests
            if len(got) >= n:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"fake Graph: {len(got)} of {n} requests after {timeout}s")
            time.sleep(0.02)

    def clear(self):
        """Forgets recorded requests (not the script or the media)."""
        with self._lock:
            self._requests.clear()

    # --- used by the handler ------------------------------------------------------------

    def _record(self, rec):
        with self._lock:
            self._requests.append(rec)

    def _next_kind(self):
        with self._lock:
            return self._queue.pop(0) if self._queue else self.default

    def _next_wamid(self):
        with self._lock:
            self._wamids += 1
            return f"wamid.FAKE.{self._wamids}"


def _graph_error(code, message, details=None, etype="OAuthException"):
    err = {"message": message, "type": etype, "code": code,
           "fbtrace_id": "AFakeTrace" + hashlib.sha1(message.encode()).hexdigest()[:12]}
    if details is not None:
        err["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": err}


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a client that gives up (casetrail's timeout on "hang") resets its connection: that
        # is the test working, not a traceback for the test log
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"    # keep-alive, as Graph: casetrail reuses its connection
    # headers and body leave in two writes; with Nagle on, the body waits ~40 ms for the
    # client's delayed ACK, and pacing tests would measure that instead of casetrail
    disable_nagle_algorithm = True
    fake = None                      # set by FakeGraph.start on a subclass

    def log_message(self, fmt, *args):
        pass                          # tests read g.requests, not stderr noise

    def setup(self):
        super().setup()
        with self.fake._lock:
            self.fake._conns.add(self.connection)
        if self.fake._stopping.is_set():
            # accepted just before stop() took its list of connections
            self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self):
        with self.fake._lock:
            self.fake._conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass                      # stop() shut the socket under us

    # -- plumbing --

    def _read(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        rec = {"method": self.command, "path": self.path,
               "headers": {k.lower(): v for k, v in self.headers.items()},
               "body": body, "json": parsed, "t": time.monotonic(),
               "client": self.client_address}
        self.fake._record(rec)
        return rec

    def _send(self, status, body, ctype="application/json", headers=None):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout): nothing to answer

    def _auth_ok(self, rec):
        auth = rec["headers"].get("authorization", "")
        if self.fake.token is not None:
            return auth == f"Bearer {self.fake.token}"
        return auth.startswith("Bearer ") and len(auth) > len("Bearer ")

    def _unauthorized(self):
        self._send(401, _graph_error(190, "Invalid OAuth access token - Cannot parse access "
                                          "token"))

    def _unknown(self, path):
        self._send(400, _graph_error(100, f"Unsupported request - method type: "
                                          f"{self.command.lower()}, path {path}",
                                     etype="GraphMethodException"))

    # -- routes --

    def do_POST(self):
        rec = self._read()
        path = self.path.split("?")[0]
        m = MESSAGES_PATH.match(path)
        if not m or m.group(1) != self.fake.version:
            return self._unknown(path)
        if not self._auth_ok(rec):
            return self._unauthorized()
        kind = self.fake._next_kind()
        if kind == "hang":
            # hold the request past the client's timeout; the stop event ends it early
            if self.fake._stopping.wait(self.fake.hang_seconds):
                self.close_connection = True
                return
            kind = "ok"                # Graph took the message after all: the ambiguous case
        if kind == "ok":
            answer = self._success(rec["json"])
            if answer.get("messages"):
                rec["wamid"] = answer["messages"][0]["id"]  # what Graph accepted it as
            if self.fake.delay > 0 and self.fake._stopping.wait(self.fake.delay):
                self.close_connection = True
                return
            return self._send(200, answer)
        status, code, message, details, headers = ERRORS[kind]
        self._send(status, _graph_error(code, message, details), headers=headers)

    def _success(self, req):
        req = req if isinstance(req, dict) else {}
        if req.get("status") == "read":
            return {"success": True}  # marking a message read
        if "to" in req:
            to = str(req["to"])
            contact = {"input": to, "wa_id": re.sub(r"\D", "", to)}
        else:
            contact = {"input": str(req.get("recipient", "")),
                       "user_id": str(req.get("recipient", ""))}
        msg = {"id": self.fake._next_wamid(), "message_status": "accepted"}
        return {"messaging_product": "whatsapp", "contacts": [contact], "messages": [msg]}

    def do_GET(self):
        rec = self._read()
        path = self.path.split("?")[0]
        m = BYTES_PATH.match(path)
        if m:
            return self._media_bytes(rec, m.group(1))
        m = MEDIA_PATH.match(path)
        if not m or m.group(1) != self.fake.version:
            return self._unknown(path)
        if not self._auth_ok(rec):
            return self._unauthorized()
        self._media_lookup(rec, m.group(2))

    def _take_fail(self, media, kinds):
        """The failure media should show now (one of kinds), counting down limited ones."""
        with self.fake._lock:
            if media["fail"] not in kinds:
                return None
            if media["fail_left"] is not None:
                if media["fail_left"] <= 0:
                    return None
                media["fail_left"] -= 1
            return media["fail"]

    def _media_lookup(self, rec, media_id):
        with self.fake._lock:
            media = self.fake._media.get(media_id)
        if media is None or self._take_fail(media, ("lookup_404",)):
            return self._send(404, _graph_error(
                100, f"Unsupported get request. Object with ID '{media_id}' does not exist, "
                     f"cannot be loaded due to missing permissions, or does not support this "
                     f"operation.", etype="GraphMethodException"))
        with self.fake._lock:
            media["auth"] = rec["headers"].get("authorization")
        size = len(media["data"])
        self._send(200, {"url": f"{self.fake.base}/media-bytes/{media_id}",
                         "mime_type": media["mime"],
                         "sha256": hashlib.sha256(media["data"]).hexdigest(),
                         "file_size": str(size) if media["size_str"] else size,
                         "id": media_id, "messaging_product": "whatsapp"})

    def _media_bytes(self, rec, media_id):
        with self.fake._lock:
            media = self.fake._media.get(media_id)
        auth = rec["headers"].get("authorization")
        if media is None:
            return self._send(404, b"Not Found", ctype="text/plain")
        if self.fake.token is not None:
            allowed = auth == f"Bearer {self.fake.token}"
        else:
            allowed = auth is not None and auth == media["auth"]
        if not allowed:
            return self._unauthorized()
        fail = self._take_fail(media, ("404", "wrong_bytes"))
        if fail == "404":
            return self._send(404, b"URL signature expired", ctype="text/plain")
        data = media["data"]
        if fail == "wrong_bytes":
            # the same length, other content: only the sha256 check can catch it
            data = bytes(b ^ 0xFF for b in data) if data else b"X"
        self._send(200, data, ctype=media["mime"])


# --- self-test -----------------------------------------------------------------------------

def _self_test():
    import urllib.error
    import urllib.request

    def call(method, url, body=None, token="tok", timeout=5):
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def check(cond, what):
        if not cond:
            raise AssertionError(what)

    text = {"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": "+92 300 1234567", "type": "text",
            "text": {"preview_url": False, "body": "hi"}}
    g = FakeGraph().start()
    try:
        check(re.match(r"^http://127\.0\.0\.1:\d+/v21\.0$", g.url), g.url)
        send = f"{g.url}/123456789/messages"

        # the script, in order, then the default
        g.script("ok", n=2)
        for kind in ("429", "500", "131056", "131047", "131026", "131051", "131062", "100",
                     "190"):
            g.script(kind)
        s1, _, b1 = call("POST", send, text)
        bsuid = {k: v for k, v in text.items() if k != "to"} | {"recipient": "PK.15025"}
        s2, _, b2 = call("POST", send, bsuid)
        check(s1 == 200 and s2 == 200, (s1, s2))
        j1, j2 = json.loads(b1), json.loads(b2)
        check(j1["messages"][0]["id"] == "wamid.FAKE.1", j1)
        check(j2["messages"][0]["id"] == "wamid.FAKE.2", j2)
        check(j1["contacts"] == [{"input": "+92 300 1234567", "wa_id": "923001234567"}], j1)
        check(j2["contacts"] == [{"input": "PK.15025", "user_id": "PK.15025"}], j2)
        s, h, b = call("POST", send, text)
        check(s == 429 and h.get("Retry-After") == "1", (s, h))
        check(json.loads(b)["error"]["code"] == 130429, b)
        expect = {"500": 500, "131056": 400, "131047": 400, "131026": 400, "131051": 400,
                  "131062": 400, "100": 400, "190": 401}
        for kind, status in expect.items():
            s, _, b = call("POST", send, text)
            err = json.loads(b)["error"]
            check(s == status and err["code"] == int(ERRORS[kind][1]), (kind, s, b))
            check(err["type"] == "OAuthException" and err["fbtrace_id"], err)
        s, _, b = call("POST", send, text)
        check(s == 200 and json.loads(b)["messages"][0]["id"] == "wamid.FAKE.3", b)
        check(g.pending() == [], g.pending())
        g.default = "131047"
        s, _, _ = call("POST", send, text)
        check(s == 400, s)
        g.default = "ok"

        # recording
        reqs = g.sends()
        check(len(reqs) == 13, len(reqs))
        r = reqs[0]
        check(r["method"] == "POST" and r["path"] == "/v21.0/123456789/messages", r)
        check(r["headers"]["authorization"] == "Bearer tok", r["headers"])
        check(r["json"] == text and r["body"] == json.dumps(text).encode(), r)
        check(all(a["t"] <= b["t"] for a, b in zip(reqs, reqs[1:])), "times not monotonic")

        # routing and authorization
        s, _, _ = call("POST", send, text, token=None)
        check(s == 401, s)
        s, _, _ = call("POST", f"{g.url}/12ab/messages", text)
        check(s == 400, s)
        s, _, b = call("POST", f"{g.base}/v1.0/123/messages", text)
        check(s == 400 and json.loads(b)["error"]["code"] == 100, b)

        # a hang outlasts the client's timeout and still records the request
        g.hang_seconds = 1.0
        g.script("hang")
        n = len(g.requests)
        try:
            call("POST", send, text, timeout=0.3)
            check(False, "hang answered early")
        except (TimeoutError, OSError):
            pass
        check(len(g.requests) == n + 1, "hang not recorded")

        # media
        jpeg = b"\xff\xd8\xff\xe0fake-jpeg" * 10
        g.add_media("777", jpeg, "image/jpeg")
        s, _, b = call("GET", f"{g.url}/777")
        info = json.loads(b)
        check(s == 200 and info["url"] == f"{g.base}/media-bytes/777", b)
        check(info["sha256"] == hashlib.sha256(jpeg).hexdigest(), info)
        check(info["file_size"] == str(len(jpeg)) and info["mime_type"] == "image/jpeg", info)
        s, h, b = call("GET", info["url"])
        check(s == 200 and b == jpeg and h["Content-Type"] == "image/jpeg", (s, h))
        s, _, _ = call("GET", info["url"], token=None)
        check(s == 401, s)
        s, _, _ = call("GET", info["url"], token="other")
        check(s == 401, s)
        s, _, b = call("GET", f"{g.url}/888")
        check(s == 404 and json.loads(b)["error"]["code"] == 100, b)
        g.media_fail("777", "wrong_bytes")
        s, _, b = call("GET", info["url"])
        check(s == 200 and b != jpeg and len(b) == len(jpeg), s)
        g.media_fail("777", "404", n=1)
        s, _, _ = call("GET", info["url"])
        check(s == 404, s)
        s, _, b = call("GET", info["url"])
        check(s == 200 and b == jpeg, s)
        g.media_fail("777", "lookup_404")
        s, _, _ = call("GET", f"{g.url}/777")
        check(s == 404, s)
        g.media_fail("777", None)

        # stop() ends a hanging request and closes kept-alive connections at once
        g.script("hang")
        g.hang_seconds = 30.0
        n = len(g.sends())
        holder = threading.Thread(target=_swallow, args=(call, "POST", send, text))
        holder.start()
        g.wait_requests(n + 1, timeout=5, sends_only=True)
        t0 = time.monotonic()
        g.stop()
        holder.join(timeout=5)
        check(not holder.is_alive(), "stop() left a hanging request behind")
        check(time.monotonic() - t0 < 3, "stop() waited for a hanging request")
        try:
            call("POST", send, text, timeout=2)
            check(False, "a stopped fake answered")
        except urllib.error.URLError:
            pass

        # and it starts again on the same port
        g.start(g.port)
        s, _, b = call("POST", send, text)
        check(s == 200 and json.loads(b)["messages"][0]["id"].startswith("wamid.FAKE."), b)
    finally:
        g.stop()
        g.stop()
    print("fake_graph self-test: ok")


def _swallow(fn, *args):
    try:
        fn(*args)
    except OSError:
        pass


if __name__ == "__main__":
    _self_test()
    sys.exit(0)
