# test_memory.py - black-box: memory is bounded by configuration, not by input (README
# "Reliability and security", "Memory bounds"): the document limits answer 413/422 naming the
# setting and change nothing; the live ring and every read page are bounded by bytes (a page
# ends early with its cursor, the ring's oldest leave first) and nothing is lost for it; request
# bodies held at once are bounded (503 + Retry-After); and under hostile input (parallel max-size
# bodies, deep nesting, huge freeform and info, many labels, big pages, idle live subscribers)
# the process's peak RSS (VmHWM) stays under the worst case the README documents for the
# defaults. Every wait is a protocol round trip or a bounded poll.
import json
import os
import re
import select
import socket
import threading

from harness import (INGEST_TOKEN, READ_TOKEN, ConnectionClosed, HttpConn, Relay, TestFailure,
                     check, eq, error_of, relay_bin, run_tests, source_dir)
from harness.live import live, next_msg, read_until_id


def vm_hwm_mib(relay):
    """The relay's peak resident set (VmHWM) in MiB."""
    with open("/proc/%d/status" % relay.proc.pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise TestFailure("no VmHWM in /proc/%d/status" % relay.proc.pid)


def documented_worst_case_mib():
    """The figure README.md states ('worst case for the defaults: N MiB')."""
    with open(os.path.join(source_dir(), "README.md")) as f:
        m = re.search(r"worst case for the defaults: \*\*(\d+) MiB\*\*", f.read())
    check(m is not None, "README.md states no 'worst case for the defaults: **N MiB**'")
    return int(m.group(1))


def sanitized_build():
    """AddressSanitizer keeps freed memory in quarantine and shadows every byte: the peak RSS
    says nothing about the relay's own bound there, so that one assertion is skipped."""
    with open(relay_bin(), "rb") as f:
        return b"AddressSanitizer" in f.read()


def metric(relay, name):
    r = relay.get("/metrics")
    eq(r.status, 200, "/metrics")
    m = re.search(r"^%s (\d+)$" % re.escape(name), r.body.decode(), re.M)
    check(m is not None, "%s in /metrics" % name)
    return int(m.group(1))


def freeform(n, value="1"):
    return '{"result":{"freeform":[%s]}}' % ",".join([value] * n)


def nested_info(levels):
    return '{"result":{"anomaly":1},"info":%s%s}' % ("[" * levels, "]" * levels)


def labels_doc(n):
    return {"result": {"classification": {"label%05d" % i: (i % 100) / 100.0 for i in range(n)}}}


def post_doc(relay, body):
    """POSTs a JSON body (str or bytes) with an ingest token; a slow (sanitizer) build on a busy
    machine gets 60 s for the big ones."""
    if isinstance(body, str):
        body = body.encode()
    return relay.request("POST", "/api/v1/inferences", body,
                         {"Content-Type": "application/json"}, INGEST_TOKEN, timeout=60)


def refused_with(relay, body, status, needle):
    """POSTs body (str or bytes); the answer must be the error contract's status, naming needle."""
    r = post_doc(relay, body)
    _, message = error_of(r, status)
    check(needle in message, "%r names %r" % (message, needle))


# ------------------------------------------------------------------------ the limits -------


def test_document_limits():
    """Each limit at its default answers with the setting and its value; nothing is stored;
    10,000 labels (the quadratic look-up of the issue) are taken."""
    with Relay() as r:
        refused_with(r, nested_info(32), 422, "max_json_depth (32)")
        refused_with(r, freeform(200001), 413, "max_json_nodes (200000)")
        refused_with(r, json.dumps({"result": {"anomaly": 1}, "info": "i" * 70000}), 413,
                     "max_info_bytes (65536)")
        refused_with(r, freeform(150000, "1234567.5"), 413, "max_result_bytes (1048576)")
        eq(r.count(), 0, "rows stored after the refusals")
        # just inside every bound
        r.ingest(json.loads(nested_info(31)))
        r.ingest(json.loads(freeform(100000)))
        v = r.ingest(labels_doc(10000)).json()
        eq(len(v["result"]["classification"]), 10000, "labels kept")
        eq(r.count(), 3, "rows stored")


def test_ring_and_pages_by_bytes():
    """live_ring_bytes and page_max_bytes at 64 KiB with rows of ~20 KB: the ring holds at most
    3 of them (shown in /metrics), an API page at most 4 (with its cursor), and a live client,
    one reading as they come and one resuming from the start, still gets every row in order."""
    with Relay({"live_ring_bytes": 65536, "page_max_bytes": 65536}) as r:
        ws, _ = live(relay=r)
        views = [r.ingest({"result": {"classification": {"r%d" % i: 0.5}},
                           "info": "x" * 20000}).json() for i in range(12)]
        ids = [v["id"] for v in views]
        msgs = read_until_id(ws, ids[-1])
        eq([m["inference"]["id"] for m in msgs if m["type"] == "inference"], ids,
           "the reading client's messages")
        eq([m for m in msgs if m["type"] == "missed"], [], "missed messages")
        ws.abort()
        n_ring, ring_bytes = (metric(r, "ei_relay_live_ring_inferences"),
                              metric(r, "ei_relay_live_ring_bytes"))
        check(1 <= n_ring <= 3, "ring entries %d (20 KB each in 64 KiB)" % n_ring)
        check(ring_bytes <= 65536, "ring bytes %d" % ring_bytes)
        ws, _ = live(relay=r, since_seq=views[0]["seq"] - 1)
        msgs = read_until_id(ws, ids[-1])
        eq([m["inference"]["id"] for m in msgs if m["type"] == "inference"], ids,
           "the resuming client's messages (mostly from the cache)")
        ws.abort()
        doc = r.get_json("/api/v1/inferences?limit=1000")
        check(1 <= len(doc["items"]) <= 4, "a page of %d ~20 KB rows" % len(doc["items"]))
        check(doc["next"] is not None, "the short page has a cursor")
        got = [v["id"] for v in r.list_all(limit=1000)]
        eq(got, ids[::-1], "every row once, newest first, over the short pages")


def chunked_refused(r):
    """A chunked body that grows past the room left is answered 503 while it is being sent."""
    resp = None
    with HttpConn(r.http_port, timeout=10) as c:
        c.send_raw(("POST /api/v1/inferences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s"
                    "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                    % INGEST_TOKEN).encode())
        chunk = b"c" * 65536
        try:
            for _ in range(64):  # 4 MiB at most; the room left is about 250 kB
                if select.select([c.sock], [], [], 0)[0]:
                    break  # the server answered: stop sending
                c.send_raw(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            resp = c.read_response("POST")
        except (ConnectionClosed, ConnectionResetError):
            pass
    check(resp is not None, "a chunked body past the budget got no answer")
    _, message = error_of(resp, 503)
    check("max_bodies_bytes (1048576)" in message, "503 names the setting: %r" % message)
    eq(resp.headers.get("retry-after"), "1", "Retry-After of the raw answer")


def post_head(r, length):
    """A POST whose head declares length bytes, and no body: the bodies budget is decided on the
    head (sending a body into a refusal would race the server's close)."""
    with HttpConn(r.http_port, timeout=10) as c:
        c.send_raw(("POST /api/v1/inferences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s"
                    "\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                    "Connection: close\r\n\r\n" % (INGEST_TOKEN, length)).encode())
        return c.read_response("POST")


def test_bodies_budget():
    """max_bodies_bytes 1 MiB: while one 800 kB body is being received, a second is refused
    with 503 and Retry-After naming the setting (at its head from Content-Length, or while a
    chunked one arrives); once the first is in, the room is back."""
    with Relay({"max_body_bytes": 1 << 20, "max_bodies_bytes": 1 << 20,
                "max_info_bytes": 1 << 20}) as r:
        doc = json.dumps({"result": {"anomaly": 1}, "info": "b" * 799000}).encode()
        # The first request's head is taken (its bytes reserved) when the server answers its
        # "Expect: 100-continue"; only then is the second started, so it is the one refused.
        s = socket.create_connection(("127.0.0.1", r.http_port), timeout=10)
        s.sendall(("POST /api/v1/inferences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s"
                   "\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                   "Expect: 100-continue\r\nConnection: close\r\n\r\n"
                   % (INGEST_TOKEN, len(doc))).encode())
        interim = b""
        while b"\r\n\r\n" not in interim:
            chunk = s.recv(1)
            check(chunk, "the first request was closed before 100 Continue: %r" % interim)
            interim += chunk
        check(interim.startswith(b"HTTP/1.1 100"), "100 Continue: %r" % interim)
        s.sendall(doc[:1000])
        resp = post_head(r, len(doc))
        try:
            _, message = error_of(resp, 503)
            check("max_bodies_bytes (1048576)" in message, "503 names the setting: %r" % message)
            eq(resp.headers.get("retry-after"), "1", "Retry-After")
            chunked_refused(r)
            s.sendall(doc[1000:])
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
            check(answer.startswith(b"HTTP/1.1 201"), "the first body stored: %r" % answer[:80])
        finally:
            s.close()
        r.ingest(json.loads(doc))  # the budget was given back
        eq(r.count(), 2, "rows stored")


# ------------------------------------------------------------------ hostile input, RSS -----


BIG_FF = freeform(8 * 1024 * 1024 - 16).encode()  # ~16 MiB of "1," (the request)
BIG_INFO = json.dumps({"result": {"anomaly": 1}, "info": "i" * (16 * 1024 * 1024 - 64)}).encode()


def hostile_round(r, answers, errors):
    """One client's share of the attack: each request must get its documented answer, or 503
    when the bodies budget is taken (answered at the head: the relay may close the connection
    before the client has sent its body, which the client sees as a broken pipe)."""
    for body, want in ((BIG_FF, 413), (BIG_INFO, 413), (nested_info(5000).encode(), 422),
                       (freeform(199000).encode(), 201)):
        try:
            resp = post_doc(r, body)
        except (BrokenPipeError, ConnectionResetError):
            answers.append("cut")
            continue
        except Exception as e:  # reported by the caller
            errors.append(repr(e))
            continue
        answers.append(resp.status)
        if resp.status not in (want, 503):
            errors.append("%d for a %d-byte body (want %d): %r" %
                          (resp.status, len(body), want, resp.body[:200]))


def read_pages(r, errors):
    """Big list pages while the attack goes on: each answered 200."""
    for _ in range(5):
        try:
            resp = r.request("GET", "/api/v1/inferences?limit=1000", token=READ_TOKEN, timeout=60)
            if resp.status != 200:
                errors.append("list page: %d" % resp.status)
        except Exception as e:  # reported by the caller
            errors.append("list page: %r" % e)


def test_peak_rss_under_hostile_input():
    """The defaults under attack from every side at once; VmHWM stays under the README's
    worst case for the defaults, and the relay still answers. The sanitizer build (several
    times slower) gets half the attackers and big rows: the same paths, in its time budget."""
    n = 3 if sanitized_build() else 6
    with Relay() as r:
        idle = [live(relay=r)[0] for _ in range(8)]  # subscribers that never read
        try:
            # big rows to fill the ring and the pages: ~1 MiB results, 60 KB info, many labels
            for i in range(n):
                big = {"result": {"freeform": [[123456.5] * 100000]}, "info": "n" * 60000}
                eq(post_doc(r, json.dumps(big)).status, 201, "a 1 MiB result")
                eq(post_doc(r, json.dumps(labels_doc(10000))).status, 201, "10,000 labels")
            answers, errors = [], []
            threads = [threading.Thread(target=hostile_round, args=(r, answers, errors),
                                        daemon=True) for _ in range(n)]
            readers = [threading.Thread(target=read_pages, args=(r, errors), daemon=True)
                       for _ in range(3)]
            for t in threads + readers:
                t.start()
            for t in threads + readers:
                t.join(120)
                check(not t.is_alive(), "an attacking thread did not finish within 120 s")
            eq(errors, [], "answers under attack")
            check(413 in answers, "some big bodies read and refused: %r" % (answers,))
            # once the attack is over, the budget is back: the same requests, one at a time
            refused_with(r, nested_info(5000), 422, "max_json_depth (32)")
            eq(post_doc(r, freeform(199000)).status, 201, "199,000 values")
            ws, _ = live(relay=r, since_seq=0, timeout=60)  # a resume over the big rows
            next_msg(ws, timeout=60)
            ws.abort()
        finally:
            for ws in idle:
                ws.abort()
        eq(r.health()["status"], "ok", "health after the attack")
        peak = vm_hwm_mib(r)
        worst = documented_worst_case_mib()
        print("peak RSS under hostile input: %.0f MiB (documented worst case %d MiB)" %
              (peak, worst))
        if sanitized_build():
            print("sanitizer build: the RSS bound is not asserted (ASan's quarantine and shadow)")
        else:
            check(peak < worst, "VmHWM %.0f MiB under the documented %d MiB" % (peak, worst))


if __name__ == "__main__":
    run_tests([test_document_limits, test_ring_and_pages_by_bytes, test_bodies_budget,
               test_peak_rss_under_hostile_input])
