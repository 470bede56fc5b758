"""bench/export_scale.py: the measurements behind bench/export_scale, on a running server.

Downloads GET /api/events?format=csv and GET /api/approvals?format=csv whole with curl (to
/dev/null: the client should cost as little as it can), timing the first byte and the last,
and sampling the server's RSS (/proc/PID/status) every 50 ms besides its peak (VmHWM, reset
through /proc/PID/clear_refs before each export). The rows come from the export's own
access-log row (psql on DATABASE_URL), which must say complete. Then times JSON pages of
events: the first, and 20 in a row from the middle of the year. Prints one line per figure.
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import threading
import time


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, status(self.pid, "VmRSS"))
            time.sleep(0.05)


def export(a, path):
    pid = a.pid
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")  # the peak (VmHWM) starts again from now
    except OSError:
        pass
    before = status(pid, "VmRSS")
    sampler = RssSampler(pid)
    sampler.start()
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w",
                          "%{http_code} %{size_download} %{time_starttransfer} %{time_total}",
                          "-H", "Authorization: Bearer " + a.token,
                          f"http://127.0.0.1:{a.port}{path}"],
                         capture_output=True, text=True, timeout=3600)
    sampler.stop.set()
    sampler.join()
    code, size, first, total = out.stdout.split()
    if out.returncode != 0 or code != "200":
        raise SystemExit(f"{path}: curl exit {out.returncode}, HTTP {code}: {out.stderr}")
    rows, complete = subprocess.run(
        ["psql", os.environ["DATABASE_URL"], "-X", "-Atq", "-F", " ", "-c",
         "SELECT rows, complete FROM access_log ORDER BY id DESC LIMIT 1"],
        capture_output=True, text=True, check=True).stdout.split()
    if complete != "t":
        raise SystemExit(f"{path}: the access log says the export was cut after {rows} rows")
    return {"path": path, "seconds": float(total), "first_byte": float(first), "bytes": int(size),
            "rows": int(rows), "rss_before_kib": before, "rss_peak_sampled_kib": sampler.peak,
            "hwm_kib": status(pid, "VmHWM")}


def page(a, path):
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
    t0 = time.monotonic()
    conn.request("GET", path, headers={"Authorization": "Bearer " + a.token})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    if r.status != 200:
        raise SystemExit(f"{path}: {r.status} {body[:300]!r}")
    return time.monotonic() - t0, json.loads(body)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--token-file", required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--approvals", type=int, required=True)
    p.add_argument("--load-seconds", default="?")
    p.add_argument("--index-seconds", default="?")
    a = p.parse_args()
    a.token = open(a.token_file).read().strip()

    print(f"record: {a.events:,} events and {a.approvals:,} approvals written in {a.load_seconds} s;"
          f" the events_occurred index builds in {a.index_seconds} s at this size")
    for path, want in (("/api/events?format=csv", a.events),
                       ("/api/approvals?format=csv", a.approvals)):
        export(a, (path + "&ticket=1") if "events" in path else (path + "&kind=exception"))  # warm up
        o = export(a, path)
        mib = o["bytes"] / (1 << 20)
        print(f"{path}: {o['rows']:,} rows, {mib:.0f} MiB in {o['seconds']:.1f} s"
              f" ({o['rows'] / o['seconds']:,.0f} rows/s, {mib / o['seconds']:.1f} MiB/s),"
              f" first byte after {o['first_byte'] * 1000:.0f} ms; server RSS {o['rss_before_kib'] / 1024:.1f}"
              f" MiB before, peak {o['hwm_kib'] / 1024:.1f} MiB (sampled {o['rss_peak_sampled_kib'] / 1024:.1f})")
        if o["rows"] != want:
            raise SystemExit(f"{path}: {o['rows']} rows, expected {want}")
    t, first = page(a, "/api/events?limit=500")
    times, cursor = [], None
    path = "/api/events?limit=500&from=2025-07-01"
    for _ in range(20):
        dt, body = page(a, path + (f"&cursor={cursor}" if cursor else ""))
        times.append(dt)
        cursor = body["next_cursor"]
    print(f"GET /api/events?limit=500: first page {t * 1000:.1f} ms; 20 pages in a row from"
          f" 2025-07-01 p50 {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
