"""bench/webhook_load.py: webhook ingestion throughput and latency against one or more running
casetrail servers, side by side in one run: a bare GET /healthz, new-message webhooks, and
redeliveries of the same webhooks. Rows for the servers alternate over --rounds rounds and the
median is reported, because these machines are shared and noisy. Prints figures and ratios;
passes or fails nothing. Loopback only, bounded by --requests per row.

usage: python3 bench/webhook_load.py --server LABEL=PORT [--server LABEL=PORT ...] --secret S
                                     [--requests N] [--clients C] [--rounds R]
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
    """reqs: (method, path, body, headers) tuples. Returns (req/s, p50 ms, p99 ms, non-200)."""
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
    secs = time.perf_counter() - t0
    lat = sorted(o[0] for o in out)
    return (len(lat) / secs, statistics.median(lat) * 1000, lat[int(len(lat) * 0.99) - 1] * 1000,
            sum(1 for o in out if o[1] != 200))


def signed(secret, n, run_id):
    hooks = []
    for i in range(n):
        b = payload(i, run_id)
        sig = "sha256=" + hmac.new(secret.encode(), b, hashlib.sha256).hexdigest()
        hooks.append(("POST", "/webhooks/whatsapp", b,
                      {"Content-Type": "application/json", "X-Hub-Signature-256": sig}))
    return hooks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", action="append", required=True, help="LABEL=PORT")
    ap.add_argument("--secret", required=True)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    servers = [(s.split("=")[0], int(s.split("=")[1])) for s in a.server]
    rows = {}
    for rnd in range(a.rounds):
        for label, port in servers:
            hooks = signed(a.secret, a.requests, f"{int(time.time())}-{label}-{rnd}")
            for kind, reqs in [("healthz", [("GET", "/healthz", None, {})] * a.requests),
                               ("new", hooks), ("redelivery", hooks)]:
                rows.setdefault((label, kind), []).append(run(port, reqs, a.clients))
    print(f"{a.requests} requests per row, {a.clients} concurrent clients, one message per webhook, "
          f"median of {a.rounds} alternating rounds")
    med = {}
    for (label, kind), results in rows.items():
        rate = statistics.median(r[0] for r in results)
        med[(label, kind)] = rate
        print(f"{label:<12} {kind:<11} {rate:>8.0f} req/s  p50 {statistics.median(r[1] for r in results):6.2f} ms"
              f"  p99 {statistics.median(r[2] for r in results):7.2f} ms  non-200 {sum(r[3] for r in results)}")
    for label, _ in servers:
        print(f"ratio {label}: new-message webhooks / healthz = {med[(label, 'new')] / med[(label, 'healthz')]:.3f},"
              f" redeliveries / new = {med[(label, 'redelivery')] / med[(label, 'new')]:.3f}")
    if len(servers) > 1:
        base = servers[-1][0]
        for label, _ in servers[:-1]:
            print(f"ratio new-message webhooks {label} / {base} = {med[(label, 'new')] / med[(base, 'new')]:.3f}")


if __name__ == "__main__":
    main()
