"""bench/viewer_scale.py: the measurements behind bench/viewer_scale (issue 12's quality bar).

  measure  times the viewer's reads on a running Release server: the queue (GET /api/tickets,
           50 a page) at page 1, 10, 100 and 200 of the keyset walk, the queue's filters and
           search (first page and a deeper one), the big ticket's timeline (500 a page: the first
           page, the 11th, and the resume cursor with nothing new), the ticket itself and its
           chain verification. Each figure: one warm-up call, then --calls calls one at a time
           (a new connection each, as the server does not keep connections alive); p50 and p95
           (nearest rank). Writes everything to --out as JSON and prints a table.

Stdlib only. Stops measuring (and says so) once --limit seconds have passed.
"""
import argparse
import http.client
import json
import math
import statistics
import sys
import time
import urllib.parse


class Deadline(Exception):
    pass


class Client:
    def __init__(self, port, token, limit, timeout):
        self.port, self.token, self.timeout = port, token, timeout
        self.end = time.monotonic() + limit

    def get(self, path):
        if time.monotonic() > self.end:
            raise Deadline(path)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": "Bearer " + self.token})
        resp = conn.getresponse()
        body = resp.read()
        secs = time.perf_counter() - t0
        conn.close()
        if resp.status != 200:
            raise SystemExit("viewer_scale: GET %s answered %d: %s"
                             % (path, resp.status, body[:300].decode(errors="replace")))
        return secs, len(body), json.loads(body)

    def timed(self, path, calls):
        """One warm-up call, then `calls` timed ones: the figure's summary and the last answer."""
        self.get(path)
        secs = []
        for _ in range(calls):
            s, size, doc = self.get(path)
            secs.append(s)
        secs.sort()
        return {"path": path, "n": calls, "p50_ms": round(statistics.median(secs) * 1000, 1),
                "p95_ms": round(secs[math.ceil(0.95 * len(secs)) - 1] * 1000, 1),
                "min_ms": round(secs[0] * 1000, 1), "max_ms": round(secs[-1] * 1000, 1),
                "bytes": size}, doc


def with_cursor(path, cursor):
    return path + ("&" if "?" in path else "?") + "cursor=" + urllib.parse.quote(cursor)


def walk(cl, path, pages):
    """Follows next_cursor from path for up to `pages` pages: the path of each page reached,
    each walk call's time, and the first page's answer."""
    paths, secs, first = [path], [], None
    p = path
    while True:
        s, _, doc = cl.get(p)
        secs.append(s)
        first = first or doc
        if len(paths) >= pages or not doc.get("next_cursor"):
            break
        p = with_cursor(path, doc["next_cursor"])
        paths.append(p)
    return paths, secs, first


def measure(a):
    with open(a.token_file) as f:
        token = f.read().strip()
    cl = Client(a.port, token, a.limit, a.timeout)
    out = {"calls": a.calls, "pages": a.pages, "queue": {}, "filters": [], "timeline": {},
           "ticket": {}, "complete": False}
    t0 = time.monotonic()
    try:
        # 1. the queue, newest activity first, walked to page --pages
        base = "/api/tickets?limit=50"
        paths, secs, first = walk(cl, base, a.pages)
        out["queue"]["walk"] = {"pages": len(paths), "total_s": round(sum(secs), 2),
                                "mean_ms": round(statistics.mean(secs) * 1000, 1),
                                "max_ms": round(max(secs) * 1000, 1)}
        out["queue"]["counts"] = first.get("counts")
        for n in (1, 10, 100, 200, a.pages):
            if n <= len(paths) and str(n) not in out["queue"]:
                out["queue"][str(n)] = cl.timed(paths[n - 1], a.calls)[0]

        # 2. filters and search: the first page and the deepest of up to --filter-pages
        filters = [("status=open", "status=open"), ("escalated=true", "escalated=true"),
                   ("assignee=none", "assignee=none"), ("priority=urgent", "priority=urgent"),
                   ("pending_approval=true", "pending_approval=true"),
                   ("phone_number_id (2nd number)", "phone_number_id=" + a.phone_number_id),
                   ("status=open&escalated=true", "status=open&escalated=true"),
                   # a day inside the generated record (it starts 2025-01-01)
                   ("active=2025-01-15 (one day)", "active=2025-01-15"),
                   ("active=2025-01-15&escalated=true", "active=2025-01-15&escalated=true"),
                   ("active_from..active_to (a week)",
                    "active_from=2025-01-10&active_to=2025-01-17")]
        filters += [("q=%s (%s)" % (w, kind), "q=" + urllib.parse.quote(w))
                    for kind, w in (("English", a.q_english), ("Urdu", a.q_urdu),
                                    ("Roman Urdu", a.q_roman), ("no match", a.q_none))]
        for label, qs in filters:
            path = "/api/tickets?limit=50&" + qs
            fig, doc = cl.timed(path, a.calls)
            counts = doc.get("counts") or {}
            st = dict(urllib.parse.parse_qsl(qs)).get("status")
            row = {"label": label, "first": fig,
                   "matches": counts.get(st, 0) if st else sum(counts.values()),
                   "page_items": len(doc.get("tickets", []))}
            paths, _, _ = walk(cl, path, a.filter_pages)
            if len(paths) > 1:
                row["deep_page"] = len(paths)
                row["deep"] = cl.timed(paths[-1], a.calls)[0]
            out["filters"].append(row)

        # 3. the big ticket's timeline, 500 a page as the viewer asks
        tl = "/api/tickets/%d/timeline?limit=500" % a.big
        fig, doc = cl.timed(tl, a.calls)
        out["timeline"]["first"] = dict(fig, items=len(doc["items"]))
        paths, _, _ = walk(cl, tl, 11)
        if len(paths) == 11:
            fig, doc11 = cl.timed(paths[-1], a.calls)
            out["timeline"]["page11"] = dict(fig, items=len(doc11["items"]))
        fig, doce = cl.timed(tl + "&from=end", a.calls)
        out["timeline"]["end"] = dict(fig, items=len(doce["items"]))
        if doce.get("prev_cursor"):
            fig, docp = cl.timed(with_cursor(tl, doce["prev_cursor"]), a.calls)
            out["timeline"]["before_end"] = dict(fig, items=len(docp["items"]))
        fig, docr = cl.timed(with_cursor(tl, doc["resume_cursor"]), a.calls)
        out["timeline"]["resume"] = dict(fig, items=len(docr["items"]))

        # 4. the ticket and its chain verification, for context
        out["ticket"]["get"] = cl.timed("/api/tickets/%d" % a.big, a.calls)[0]
        fig, v = cl.timed("/api/tickets/%d/verify" % a.big, a.calls)
        out["ticket"]["verify"] = dict(fig, ok=v.get("ok"), events=v.get("events"))
        out["complete"] = True
    except Deadline as d:
        out["stopped_at"] = str(d)
    out["measure_s"] = round(time.monotonic() - t0, 1)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    report(out, a)
    if not out["complete"]:
        sys.exit("viewer_scale: stopped after --limit %d s, before %s" % (a.limit,
                                                                          out["stopped_at"]))


def report(o, a):
    def line(what, fig, extra=""):
        print("  %-44s %8.1f %8.1f %9d  %s" % (what, fig["p50_ms"], fig["p95_ms"], fig["bytes"],
                                               extra))
    print("  %-44s %8s %8s %9s" % ("GET (%d calls after a warm-up)" % o["calls"], "p50 ms",
                                   "p95 ms", "bytes"))
    q = o["queue"]
    if "walk" in q:
        pages = sorted(int(n) for n in q if n.isdigit())
        for n in pages:
            line("/api/tickets?limit=50 page %d" % n, q[str(n)])
        if len(pages) > 1:
            print("    page %d / page 1 (p50): %.2f; walk of %d pages: %.2f s, mean %.1f ms, "
                  "max %.1f ms a page" % (pages[-1], q[str(pages[-1])]["p50_ms"] / q["1"]["p50_ms"],
                                          q["walk"]["pages"], q["walk"]["total_s"],
                                          q["walk"]["mean_ms"], q["walk"]["max_ms"]))
        print("    counts: %s" % json.dumps(q.get("counts")))
    for f in o["filters"]:
        line(f["label"] + " p1", f["first"], "%d match" % f["matches"])
        if "deep" in f:
            line("  ... page %d" % f["deep_page"], f["deep"])
    t = o["timeline"]
    if "first" in t:
        line("timeline limit=500 page 1", t["first"], "%d items" % t["first"]["items"])
    if "page11" in t:
        line("timeline limit=500 page 11", t["page11"], "%d items" % t["page11"]["items"])
    if "end" in t:
        line("timeline limit=500 from=end (opening)", t["end"], "%d items" % t["end"]["items"])
    if "before_end" in t:
        line("timeline limit=500 prev_cursor of the end", t["before_end"],
             "%d items" % t["before_end"]["items"])
    if "resume" in t:
        line("timeline ?cursor=resume (nothing new)", t["resume"], "%d items" % t["resume"]["items"])
    k = o["ticket"]
    if "get" in k:
        line("/api/tickets/{big}", k["get"])
    if "verify" in k:
        line("/api/tickets/{big}/verify", k["verify"],
             "ok %s, %s events" % (k["verify"]["ok"], k["verify"]["events"]))
    if "first" in t and "get" in k:
        print("    opening the big ticket (timeline from=end, which carries the ticket): p50 %.1f ms"
              % t.get("end", t["first"])["p50_ms"])
    print("  measured in %.1f s%s" % (o["measure_s"], "" if o["complete"] else
                                       " (INCOMPLETE: stopped before %s)" % o.get("stopped_at")))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--port", type=int, required=True)
    m.add_argument("--token-file", required=True)
    m.add_argument("--big", type=int, required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--calls", type=int, default=10)
    m.add_argument("--pages", type=int, default=200)
    m.add_argument("--filter-pages", type=int, default=20)
    m.add_argument("--phone-number-id", default="117293845601929")
    m.add_argument("--q-english", default="address")
    m.add_argument("--q-urdu", default="آرڈر")
    m.add_argument("--q-roman", default="kya hai")
    m.add_argument("--q-none", default="zebracorn")
    m.add_argument("--limit", type=float, default=600)
    m.add_argument("--timeout", type=float, default=60)
    m.set_defaults(fn=measure)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
