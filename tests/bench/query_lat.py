#!/usr/bin/env python3
# query_lat.py - latency of API reads (scale.sh): each query is sent N times over one keep-alive
# connection, one at a time, after 10 unmeasured warm-up requests; the time is from sending the
# request to having read the whole answer. Prints one line per query:
#   QUERY <name> n=<N> p50_ms=<..> p99_ms=<..> max_ms=<..> items=<items in the answer> bytes=<..>
# A query whose answer is not 200 stops it with exit status 1.
#
# Usage: query_lat.py HOST:PORT TOKEN N NAME@PATH [NAME@PATH ...]
#   PATH may contain {deep}: the cursor of the oldest 10 % of the cache ("c" + a seq one tenth
#   of the way from the oldest row to the newest), found from the newest row's seq and the
#   health answer's row count (seqs of a filled cache are contiguous).
import http.client
import json
import sys
import time


def get(conn, path, token):
    conn.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise RuntimeError("%s answered %d: %s" % (path, r.status, body[:200]))
    return body


def pct(vals, p):
    i = min(len(vals) - 1, max(0, int(round(p / 100.0 * (len(vals) - 1)))))
    return vals[i]


def main():
    if len(sys.argv) < 5:
        sys.stderr.write(__doc__ if __doc__ else "usage: query_lat.py HOST:PORT TOKEN N Q...\n")
        return 2
    host, port = sys.argv[1].rsplit(":", 1)
    token, n = sys.argv[2], int(sys.argv[3])
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    newest = json.loads(get(conn, "/api/v1/inferences?limit=1", token))["items"][0]["seq"]
    rows = json.loads(get(conn, "/api/v1/health", token))["db"]["rows"]
    deep = "c%d" % max(1, newest - rows + 1 + rows // 10)
    for spec in sys.argv[4:]:
        name, path = spec.split("@", 1)
        path = path.replace("{deep}", deep)
        for _ in range(10):
            get(conn, path, token)
        lat = []
        body = b""
        for _ in range(n):
            t0 = time.perf_counter()
            body = get(conn, path, token)
            lat.append((time.perf_counter() - t0) * 1000.0)
        lat.sort()
        items = len(json.loads(body).get("items", []))
        print("QUERY %s n=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f items=%d bytes=%d path=%s" % (
            name, n, pct(lat, 50), pct(lat, 99), lat[-1], items, len(body), path))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError, ValueError, KeyError, IndexError) as e:
        sys.stderr.write("query_lat.py: %s\n" % e)
        sys.exit(1)
