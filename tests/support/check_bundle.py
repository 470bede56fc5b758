#!/usr/bin/env python3
"""check_bundle.py: checks a casetrail evidence bundle offline, written only from
docs/audit-format.md and the bundle itself (no casetrail code, no database), to prove the
format is enough to check the record in another language.

usage: check_bundle.py BUNDLE.json [--app-secret-file FILE]
Exit 0 and "ok ..." when every hash, link, digest, receipt and signature holds; exit 1 naming
the first bad item otherwise."""
import base64
import hashlib
import hmac
import json
import sys


class Bad(Exception):
    pass


def field(name, value):
    if value is None:
        return f"{name}:-\n".encode()
    raw = str(value).encode()
    return f"{name}:{len(raw)}:".encode() + raw + b"\n"


def canonical(chain, ev):
    """The canonical encoding of docs/audit-format.md "One event's hash"."""
    return (b"casetrail-event-v1\n" + field("chain", chain) + field("seq", ev["seq"])
            + field("action", ev["action"]) + field("actor_type", ev["actor_type"])
            + field("actor_id", ev["actor_id"]) + field("from", ev["from"])
            + field("to", ev["to"]) + field("occurred_us", ev["occurred_us"])
            + field("recorded_us", ev["recorded_us"]) + field("data", ev["data"])
            + field("digests", ev["digests"]))


def check(bundle, app_secret=None):
    if bundle.get("format") != "casetrail-evidence-v1":
        raise Bad("format: not a casetrail-evidence-v1 bundle")
    chain = bundle["chain"]
    if chain != f"ticket:{bundle['ticket']['id']}":
        raise Bad(f"chain: {chain} is not the ticket's chain")
    prev = bytes(32)
    by_seq = {}
    for i, ev in enumerate(bundle["events"]):
        seq = ev["seq"]
        if seq != i + 1:
            raise Bad(f"event seq {i + 1}: missing")
        if bytes.fromhex(ev["prev_hash"]) != prev:
            raise Bad(f"event seq {seq}: prev_hash does not link to the event before")
        canon = canonical(chain, ev)
        if ev.get("canonical") is not None and ev["canonical"].encode() != canon:
            raise Bad(f"event seq {seq}: canonical encoding does not match its fields")
        h = hashlib.sha256(prev + canon).digest()
        if h.hex() != ev["hash"]:
            raise Bad(f"event seq {seq}: hash does not match its content")
        prev = h
        by_seq[seq] = ev
    head = bundle["head"]
    if head["seq"] != len(bundle["events"]) or (bundle["events"] and head["hash"] != prev.hex()):
        raise Bad("head: the chain head does not match the last event")
    # every text against its digest, with the salt of its scope
    seen = set()
    for t in bundle["texts"]:
        ev = by_seq.get(t["seq"])
        if ev is None:
            raise Bad(f"text {t['field']}: names event seq {t['seq']}, which is not in the bundle")
        digests = json.loads(ev["digests"]) if ev["digests"] else {}
        want = digests.get(t["field"])
        if want is None:
            raise Bad(f"text {t['field']} of seq {t['seq']}: the event has no digest for it")
        seen.add((t["seq"], t["field"]))
        if t["text"] is None or t["salt"] is None:
            continue  # erased: only its digest remains
        got = hmac.new(bytes.fromhex(t["salt"]), t["text"].encode(), hashlib.sha256).hexdigest()
        if got != want:
            raise Bad(f"text {t['field']} of seq {t['seq']}: does not match its digest")
    for ev in bundle["events"]:
        for name in (json.loads(ev["digests"]) if ev["digests"] else {}):
            if (ev["seq"], name) not in seen:
                raise Bad(f"text {name} of seq {ev['seq']}: missing from the bundle")
    # raw receipts: bytes against their SHA-256, and against the signature when we can
    receipts = {}
    for r in bundle["receipts"]:
        body = base64.b64decode(r["body_base64"], validate=True)
        if hashlib.sha256(body).hexdigest() != r["body_sha256"]:
            raise Bad(f"receipt {r['id']}: body does not match its SHA-256")
        if app_secret is not None and r["signature"] is not None:
            sig = "sha256=" + hmac.new(app_secret, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(sig, r["signature"].lower()):
                raise Bad(f"receipt {r['id']}: X-Hub-Signature-256 does not match the body")
        receipts[r["id"]] = r
    # what the chain says of receipts and messages must be what the bundle holds
    messages = {m["id"]: m for m in bundle["messages"]}
    for ev in bundle["events"]:
        data = json.loads(ev["data"]) if ev["data"] else {}
        if "receipt_sha256" in data:
            r = receipts.get(data.get("receipt_id"))
            if r is None or r["body_sha256"] != data["receipt_sha256"]:
                raise Bad(f"event seq {ev['seq']}: its receipt {data.get('receipt_id')} is "
                          "missing or different")
        if "payload_sha256" in data:
            m = messages.get(data.get("message_id"))
            if m is None or m["payload_sha256"] != data["payload_sha256"]:
                raise Bad(f"event seq {ev['seq']}: its message {data.get('message_id')} is "
                          "missing or different")
    for m in bundle["messages"]:
        if m["receipt_id"] is not None and m["receipt_id"] not in receipts:
            raise Bad(f"message {m['id']}: its receipt {m['receipt_id']} is not in the bundle")
    return len(bundle["events"]), len(bundle["texts"]), len(receipts)


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--app-secret-file"):
        print(__doc__, file=sys.stderr)
        return 2
    secret = None
    if len(argv) == 4:
        with open(argv[3], "rb") as f:
            secret = f.read().rstrip(b"\r\n")
    try:
        with open(argv[1], "rb") as f:
            bundle = json.loads(f.read())
        events, texts, receipts = check(bundle, secret)
    except Bad as e:
        print(f"BAD {e}")
        return 1
    except (ValueError, KeyError, TypeError) as e:
        print(f"BAD bundle: unreadable ({type(e).__name__}: {e})")
        return 1
    print(f"ok {events} events, {texts} texts, {receipts} receipts")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
