# test_live_messages.py - black-box: the live stream's other messages: application ping and
# WebSocket ping, the forwarder message when the forwarder is off, and the periodic stats message.
# Helpers in harness/live.py. Every wait is a protocol round trip or a bounded read; nothing sleeps.
import time

from harness import Relay, TestFailure, check, eq, run_tests
from harness.live import WAIT_S, binder, boxes, cls, expect_type, live, now_ms_f, post
from harness.ws_client import BACKGROUND_TYPES, WsTimeout

R = None  # the relay the file shares (bound by run_tests)


def test_ping_message_and_frame():
    ws, _ = live()
    try:
        for ident in (1, "abc", {"k": [1, 2]}, None, 0.5):
            t0 = now_ms_f()
            ws.send_json({"type": "ping", "id": ident})
            m = expect_type(ws, "pong")
            eq(m.get("id"), ident, "pong id")
            check(isinstance(m.get("server_time"), (int, float)) and
                  t0 - 2 <= m["server_time"] <= now_ms_f() + 2, "pong server_time %r" % m)
        # WebSocket ping frame -> pong frame with the same payload
        ws.ping(b"frame-ping")
        ws.wait_pong(b"frame-ping", WAIT_S)
    finally:
        ws.abort()


def test_forwarder_message_when_off():
    ws, _ = live()
    try:
        deadline = time.monotonic() + WAIT_S
        while not any(m["type"] == "forwarder" for m in ws.bg):
            check(time.monotonic() < deadline, "no forwarder message within %.0f s" % WAIT_S)
            m = ws.recv_json(max(0.01, deadline - time.monotonic()))
            if m["type"] not in BACKGROUND_TYPES:
                raise TestFailure("unexpected %r" % m)
            ws.bg.append(m)
        fw = [m for m in ws.bg if m["type"] == "forwarder"]
        eq(fw[0], {"type": "forwarder", "enabled": False}, "forwarder message")
    finally:
        ws.abort()


def wait_background(ws, typ, timeout):
    """The next message of this background type (other background messages and inferences
    are passed over)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise WsTimeout("no %s message within %.0f s" % (typ, timeout))
        m = ws.recv_json(left)
        if m["type"] == typ:
            return m
        if m["type"] not in BACKGROUND_TYPES + ("inference",):
            raise TestFailure("unexpected %r while waiting for %s" % (m, typ))


def expected_stats(docs):
    labels = {}
    for d in docs:
        res = d["result"]
        pairs = list(res.get("classification", {}).items()) + \
            [(b["label"], b["value"]) for b in res.get("bounding_boxes", [])]
        for lab, v in pairs:
            labels.setdefault(lab, []).append(v)
    return {k: (len(v), sum(v) / len(v)) for k, v in labels.items()}


def check_stats(m, docs, t0, t1):
    eq(m.get("window_ms"), 3600000, "stats.window_ms")
    check(isinstance(m.get("server_time"), (int, float)) and t0 - 2 <= m["server_time"] <= t1 + 2,
          "stats.server_time %r" % m.get("server_time"))
    exp = expected_stats(docs)
    got = m.get("labels")
    check(isinstance(got, dict), "stats.labels %r" % (got,))
    eq(sorted(got), sorted(exp), "stats labels")
    for lab, (count, mean) in exp.items():
        eq(got[lab].get("count"), count, "stats count of %s" % lab)
        check(abs(got[lab].get("mean_score") - mean) < 1e-6,
              "stats mean_score of %s: %r, expected %.6f" % (lab, got[lab].get("mean_score"), mean))
    eq(m.get("total"), len(docs), "stats.total (inferences in the window)")


def test_stats_message():
    """A fresh relay: hello.last_seq 0, the stats message after hello counts what was posted,
    and the next one (10 s later) what was posted since."""
    with Relay() as r:
        ws, hello = live(relay=r)
        eq(hello["last_seq"], 0, "last_seq of an empty cache")
        ws.abort()
        docs = [cls({"st-a": 0.8, "st-b": 0.2})] * 3 + [cls({"st-a": 0.6, "st-c": 0.4})] + \
            [boxes(("st-p", 0.9))] * 2
        views = [post(d, relay=r) for d in docs]
        t0 = now_ms_f()
        ws, hello = live(relay=r)
        try:
            eq(hello["last_seq"], views[-1]["seq"], "last_seq")
            first = wait_background(ws, "stats", WAIT_S)
            check_stats(first, docs, t0, now_ms_f())
            more = [cls({"st-a": 1.0, "st-d": 0.0})] * 2
            for d in more:
                post(d, relay=r)
            t1 = now_ms_f()
            second = wait_background(ws, "stats", 15)   # every 10 s
            check_stats(second, docs + more, t1, now_ms_f())
        finally:
            ws.abort()


TESTS = [
    test_ping_message_and_frame,
    test_forwarder_message_when_off,
    test_stats_message,
]

if __name__ == "__main__":
    run_tests(TESTS, shared_relay=Relay, bind=binder(globals()))
