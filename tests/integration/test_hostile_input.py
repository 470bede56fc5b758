"""Hostile bodies and requests (issue 9 items 1 and 4): deep nesting on the webhook and on a
staff body, NUL inside text, duplicate JSON keys, and the Content-Length forms RFC 9112 says
to refuse. Each was a real fault: a crash, a cut message, a body two parsers read differently.
When it fails, look at server/base/json.c (strict parsing), server/http/router.c (request
framing) and the server log path printed in the assertion."""
import json
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import harness  # noqa: E402
from harness import ServerTest, add_user, post_webhook, text_payload  # noqa: E402


def counts(t):
    return t.q("SELECT (SELECT count(*) FROM webhook_receipts), (SELECT count(*) FROM messages),"
               " (SELECT count(*) FROM events)")[0]


def raw_request(port, data, timeout=10):
    """Sends raw bytes and returns the status line's code (0 when the server closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    if not got.startswith(b"HTTP/1."):
        return 0, got
    return int(got.split(b" ", 2)[1]), got


class Nesting(ServerTest):
    """About 800 nested arrays used to overflow a worker's 100 KiB stack and kill the process."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = add_user(cls.dsn, "nina", "agent")

    def nested_webhook(self, depth):
        # the depth sits inside a message's unknown field, where a parser recurses into it
        p = text_payload("wamid.deep-%d" % depth, "923000000071", 1760490000, "hi")
        inner = "[" * depth + "1" + "]" * depth
        body = json.dumps(p).replace('"type": "text"', '"type": "text", "deep": ' + inner, 1)
        return body.encode()

    def test_webhook_nesting(self):
        before = counts(self)
        for depth in (1000, 100000):
            r = post_webhook(self.srv, self.nested_webhook(depth))
            self.assertEqual(r.status, 400, depth)
            self.assertEqual(r.json()["error"]["code"], "too_deep")
        self.assertEqual(counts(self), before)
        # Meta's real payloads are shallow: 32 levels in all are still accepted
        r = post_webhook(self.srv, self.nested_webhook(32 - 8))  # the envelope is 8 deep
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.srv.get("/healthz").status, 200)

    def test_staff_body_nesting(self):
        self.assertEqual(post_webhook(self.srv, text_payload(
            "wamid.staff-deep", "923000000072", 1760490000, "hi")).status, 200)
        tid = self.one("SELECT id FROM tickets WHERE contact_id = (SELECT id FROM contacts"
                       " WHERE wa_id = '923000000072')")
        for depth in (32, 1000, 100000):
            body = '{"body": "x", "extra": ' + "[" * depth + "]" * depth + "}"
            r = self.srv.post(f"/api/tickets/{tid}/notes", body=body, token=self.token,
                              headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 400, depth)
            self.assertEqual(r.json()["error"]["code"], "too_deep")
        self.assertEqual(self.srv.get("/healthz").status, 200)


class NulAndDuplicates(ServerTest):
    def test_nul_keeps_the_whole_message(self):
        p = text_payload("wamid.nul", "923000000081", 1760490000, "before")
        body = json.dumps(p).replace('"before"', '"before\\u0000after and more"').encode()
        r = post_webhook(self.srv, body)
        self.assertEqual(r.status, 200, r)
        text = self.one("SELECT body FROM messages WHERE wamid = 'wamid.nul'")
        self.assertEqual(text, "before\ufffdafter and more")
        payload = self.one("SELECT payload #>> '{text,body}' FROM messages WHERE wamid = 'wamid.nul'")
        self.assertEqual(payload, "before\ufffdafter and more")
        # the receipt keeps the exact bytes received, escape and all
        raw = self.one("SELECT convert_from(body, 'UTF8') FROM webhook_receipts"
                       " WHERE id = (SELECT receipt_id FROM messages WHERE wamid = 'wamid.nul')")
        self.assertIn("before\\u0000after", raw)
        # an escaped backslash followed by u0000 is text, not a NUL
        p = text_payload("wamid.nul2", "923000000081", 1760490001, "x")
        body = json.dumps(p).replace('"x"', '"a\\\\u0000b"').encode()
        self.assertEqual(post_webhook(self.srv, body).status, 200)
        self.assertEqual(self.one("SELECT body FROM messages WHERE wamid = 'wamid.nul2'"),
                         "a\\u0000b")

    def test_duplicate_keys_are_refused(self):
        before = counts(self)
        p = text_payload("wamid.dupkey", "923000000082", 1760490000, "I never ordered this")
        body = json.dumps(p).replace('"body": "I never ordered this"',
                                     '"body": "I never ordered this", "body": "I did order this"')
        r = post_webhook(self.srv, body.encode())
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"]["code"], "duplicate_key")
        self.assertEqual(counts(self), before)


class Framing(ServerTest):
    """RFC 9112 6.3: ambiguous message framing is an error, never a guess."""

    def post_raw(self, headers, body=b'{"object":"x"}'):
        head = b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n"
        return raw_request(self.srv.port, head + body)

    def test_ambiguous_lengths_are_400(self):
        before = counts(self)
        body = b'{"object":"x"}'
        n = str(len(body)).encode()
        cases = [b"Content-Length: " + n + b"\r\nContent-Length: 3\r\n",
                 b"Content-Length: 1e3\r\n",
                 b"Content-Length: +14\r\n",
                 b"Content-Length: " + n + b"\r\nTransfer-Encoding: chunked\r\n"]
        for h in cases:
            status, got = self.post_raw(h, body)
            self.assertEqual(status, 400, (h, got[:200]))
        self.assertEqual(counts(self), before)
        self.assertEqual(self.srv.get("/healthz").status, 200)
        # the same value twice is one length (RFC 9112 allows collapsing it)
        status, _ = self.post_raw(b"Content-Length: " + n + b"\r\nContent-Length: " + n + b"\r\n",
                                  body)
        self.assertEqual(status, 401)  # framing accepted; the missing signature answers


if __name__ == "__main__":
    harness.main()
