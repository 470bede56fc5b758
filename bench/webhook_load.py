"""bench/webhook_load.py: webhook ingestion throughput and latency, side by side with a bare
GET /healthz and with redeliveries of the same webhooks, against one running casetrail.
Prints figures and ratios; passes or fails nothing. Loopback only, bounded by --requests.

usage: python3 bench/webhook_load.py --port PORT --secret SECRET [--requests N] [--clients C]
"""
import argparse
import concurrent.futures
import hashlib
import hmac
import http.client
import json
import statistics
import time


def payload(i, run):
    wa = f"9230{(i % 5000):08d}"
    body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "923211234500", "phone_number_id": "117293845601928"},
        "contacts": [{"profile": {"name": f"Bench {i % 5000}"}, "wa_id": wa}],
        "messages": [{"from": wa, "id": f"wamid.bench-{run}-{i}", "timestamp": str(1760000000 + i),
                      "type": "text", "text": {"body": f"order {i} status please"}}]}}]}]}
    return json.dumps(body).encode()


def run(port, reqs, clients):
    """reqs: list of (method, path, body, headers). Returns (seconds, latencies, statuses)."""
    def one(r):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        t0 = time.perf_counter()
        conn.request(r[0], r[1], body=r[2], headers=r[3])
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return time.perf_counter() - t0, resp.status

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        out = list(pool.map(one, reqs))
    return time.perf_counter() - t0, [o[0] for o in out], [o[1] for o in out]


def report(name, secs, lat, statuses):
    lat = sorted(lat)
    rate = len(lat) / secs
    p50 = statistics.median(lat) * 1000
    p99 = lat[int(len(lat) * 0.99) - 1] * 1000
    bad = sum(1 for s in statuses if s != 200)
    print(f"{name:<28} {len(lat):>6} req  {rate:>8.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:7.2f} ms  non-200 {bad}")
    return rate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=16)
    a = ap.parse_args()
    runid = str(int(time.time()))
    hooks = []
    for i in range(a.requests):
        b = payload(i, runid)
        sig = "sha256=" + hmac.new(a.secret.encode(), b, hashlib.sha256).hexdigest()
        hooks.append(("POST", "/webhooks/whatsapp", b, {"Content-Type": "application/json", "X-Hub-Signature-256": sig}))
    health = [("GET", "/healthz", None, {})] * a.requests
    print(f"{a.requests} requests per row, {a.clients} concurrent clients, one message per webhook")
    h = report("GET /healthz (baseline)", *run(a.port, health, a.clients))
    w = report("POST webhook, new messages", *run(a.port, hooks, a.clients))
    d = report("POST webhook, redeliveries", *run(a.port, hooks, a.clients))
    print(f"ratio new-message webhooks / healthz:  {w / h:.3f}")
    print(f"ratio redeliveries / new messages:     {d / w:.3f}")


if __name__ == "__main__":
    main()
