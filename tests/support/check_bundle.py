#!/usr/bin/env python3
"""check_bundle.py: checks a casetrail evidence bundle offline, written only from
docs/audit-format.md and the bundle itself (no casetrail code, no database), to prove the
format is enough to check the record in another language.

usage: check_bundle.py BUNDLE.json [--app-secret-file FILE] [--verify-key PUBLIC.pem]
Exit 0 and "ok ..." when every hash, link, digest, receipt and signature holds; exit 1 naming
the first bad item otherwise. Standard library only: Ed25519 is checked with RFC 8032's own
arithmetic below."""
import base64
import hashlib
import hmac
import json
import re
import sys


class Bad(Exception):
    pass


# ---- Ed25519 verification, RFC 8032 section 5.1.7 (slow and plain; one signature) ----
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _add(p, q):
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a, b = (y1 - x1) * (y2 - x2) % P, (y1 + x1) * (y2 + x2) % P
    c, d = 2 * t1 * t2 * D % P, 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, p):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _add(q, p)
        p, s = _add(p, p), s >> 1
    return q


def _x_of(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    return P - x if (x & 1) != sign else x


def _point(s):
    y = int.from_bytes(s, "little")
    x = _x_of(y & ((1 << 255) - 1), y >> 255)
    return None if x is None else (x, y & ((1 << 255) - 1), 1, x * (y & ((1 << 255) - 1)) % P)


_GY = 4 * pow(5, P - 2, P) % P
G = (_x_of(_GY, 0), _GY, 1, _x_of(_GY, 0) * _GY % P)


def ed25519_verify(public, msg, sig):
    if len(public) != 32 or len(sig) != 64:
        return False
    a, r, s = _point(public), _point(sig[:32]), int.from_bytes(sig[32:], "little")
    if a is None or r is None or s >= L:
        return False
    h = int.from_bytes(hashlib.sha512(sig[:32] + public + msg).digest(), "little") % L
    x1, y1, z1, _ = _mul(s, G)
    x2, y2, z2, _ = _add(r, _mul(h, a))
    return (x1 * z2 - x2 * z1) % P == 0 and (y1 * z2 - y2 * z1) % P == 0


def public_key(pem_text):
    """The 32 key bytes of a PEM "PUBLIC KEY" holding an Ed25519 key (RFC 8410)."""
    m = re.search(r"-----BEGIN PUBLIC KEY-----(.*?)-----END PUBLIC KEY-----", pem_text, re.S)
    der = base64.b64decode("".join(m.group(1).split())) if m else b""
    if len(der) != 44 or der[:12] != bytes.fromhex("302a300506032b6570032100"):
        raise ValueError("not an Ed25519 public key in PEM form")
    return der[12:]


# ---- the digest's Merkle tree (docs/audit-format.md, RFC 9162 section 2.1.3.2) ----
def merkle_fold(leaf, index, size, path):
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def is_count(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 9 * 10**15


def check_digest(bundle, chain, by_seq, key_path=None):
    """The signed digest covering the ticket: (time, seq covered, signature checked) or None."""
    dg = bundle.get("digest")
    if dg is None:
        if key_path is not None:
            raise Bad("digest: the bundle carries no signed digest to check the key with")
        return None
    payload = dg.get("payload")
    if not isinstance(payload, str):
        raise Bad("digest: no payload")
    try:
        d = json.loads(payload)
        printed = (f'{{"version":2,"time":"{d["time"]}","events":{d["events"]},'
                   f'"chains":{d["chains"]},"upto_id":{d["upto_id"]},"root":"{d["root"]}"}}')
        ok = (d["version"] == 2 and is_count(d["events"]) and is_count(d["chains"])
              and is_count(d["upto_id"]) and re.fullmatch(r"[0-9a-f]{64}", d["root"])
              and printed == payload)
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise Bad("digest: the payload is not a version 2 digest in its printed form")
    sig = dg.get("signature")
    if dg.get("alg") != "ed25519" or not isinstance(sig, str) \
            or not re.fullmatch(r"[0-9a-f]{128}", sig):
        raise Bad("digest: the signature is malformed")
    proof = dg.get("proof")
    if not isinstance(proof, dict):
        raise Bad(f"digest: no proof that it covers {chain}")
    seq = proof.get("seq")
    if not is_count(seq) or seq not in by_seq:
        raise Bad(f"digest: its proof names seq {seq if is_count(seq) else 0},"
                  " which is not in the bundle")
    if proof.get("hash") != by_seq[seq]["hash"]:
        raise Bad(f"digest: its proof's hash for seq {seq} is not the event's")
    path = proof.get("path")
    if not is_count(proof.get("leaf_index")) or proof.get("tree_size") != d["chains"] \
            or not isinstance(path, list) or len(path) > 64:
        raise Bad("digest: its proof is malformed or sized for another tree")
    if not all(isinstance(p, str) and re.fullmatch(r"[0-9a-f]{64}", p) for p in path):
        raise Bad("digest: its proof's path holds something other than hashes")
    leaf = hashlib.sha256(b"\x00" + f"{chain} {seq} {proof['hash']}".encode()).digest()
    root = merkle_fold(leaf, proof["leaf_index"], d["chains"], [bytes.fromhex(p) for p in path])
    if root is None or root.hex() != d["root"]:
        raise Bad(f"digest: the proof for seq {seq} does not lead to the signed root")
    if key_path is not None:
        with open(key_path) as f:
            key = public_key(f.read())
        if not ed25519_verify(key, payload.encode(), bytes.fromhex(sig)):
            raise Bad(f"digest: the digest's signature does not verify with {key_path}")
    return d["time"], seq, key_path is not None


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


def check(bundle, app_secret=None, key_path=None):
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
    digest = check_digest(bundle, chain, by_seq, key_path)
    return len(bundle["events"]), len(bundle["texts"]), len(receipts), digest


def main(argv):
    opts = dict(zip(argv[2::2], argv[3::2]))
    if len(argv) % 2 != 0 or len(argv) < 2 or \
            not set(opts) <= {"--app-secret-file", "--verify-key"}:
        print(__doc__, file=sys.stderr)
        return 2
    secret = None
    if "--app-secret-file" in opts:
        with open(opts["--app-secret-file"], "rb") as f:
            secret = f.read().split(b"\n")[0].rstrip(b"\r")
    try:
        with open(argv[1], "rb") as f:
            bundle = json.loads(f.read())
        events, texts, receipts, digest = check(bundle, secret, opts.get("--verify-key"))
    except Bad as e:
        print(f"BAD {e}")
        return 1
    except (ValueError, KeyError, TypeError) as e:
        print(f"BAD bundle: unreadable ({type(e).__name__}: {e})")
        return 1
    print(f"ok {events} events, {texts} texts, {receipts} receipts")
    if digest is not None:
        print(f"digest of {digest[0]} covers seq 1..{digest[1]}"
              + (", signature valid" if digest[2] else " (signature not checked: no key)"))
    else:
        print("no signed digest covers this ticket yet")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
