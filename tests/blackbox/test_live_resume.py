# test_live_resume.py - black-box: resume of the live stream (since_seq): exactly the missed
# inferences, with the filter applied to the backlog, no gap or duplicate while ingest goes on, and
# the backlog bound. Helpers in harness/live.py. Every wait is a protocol round trip or a bounded
# read; nothing sleeps.
import random
import re
import threading
import time

from harness import Relay, TestFailure, check, eq, run_tests
from harness.live import (RESUME_MAX, Poster, binder, boxes, check_no_missed, cls, ids_of, live,
                          newest_seq, next_msg, post, post_many, read_until_id, seqs_of)
from harness.ws_client import WsTimeout

R = None  # the relay the file shares (bound by run_tests)


def test_resume_gets_exactly_the_missed_ones():
    ws, hello = live()
    p = Poster(R)
    try:
        first = [p.post(cls({"rs-1": 0.5})) for _ in range(3)]
        msgs = read_until_id(ws, first[-1]["id"])
        eq(ids_of(msgs), [v["id"] for v in first], "before the disconnect")
        last_seen = msgs[-1]["inference"]["seq"]
        ws.close()
        missed = [p.post(cls({"rs-2": 0.5})) for _ in range(4)]
        ws, hello = live(since_seq=last_seen)
        eq(hello["last_seq"], missed[-1]["seq"], "hello.last_seq on resume")
        after = [p.post(cls({"rs-3": 0.5})) for _ in range(2)]
        msgs = read_until_id(ws, after[-1]["id"])
        check_no_missed(msgs)
        eq(ids_of(msgs), [v["id"] for v in missed + after], "backlog then live")
        # the backlog's views are the REST views too
        eq(msgs[0]["inference"], R.get_json("/api/v1/inferences/" + missed[0]["id"]),
           "a backlog message's view")
        check(isinstance(msgs[0].get("committed_ms"), (int, float)),
              "committed_ms on a backlog message: %r" % (msgs[0].get("committed_ms"),))
        # resuming from the newest seq: nothing replayed, only live
        ws.abort()
        ws, _ = live(since_seq=after[-1]["seq"])
        one = p.post(cls({"rs-4": 0.5}))
        msgs = read_until_id(ws, one["id"])
        eq(ids_of(msgs), [one["id"]], "since_seq = newest: live only")
        # since_seq 0 on a non-empty cache: the newest 1000 (or all) matching, here filtered
        ws.abort()
        ws, _ = live(since_seq=0, filter={"labels": ["rs-2"]})
        msgs = read_until_id(ws, missed[-1]["id"])
        eq(ids_of(msgs), [v["id"] for v in missed], "since_seq 0 with a filter")
    finally:
        p.close()
        ws.abort()


def test_resume_with_filter_applies_to_backlog():
    ws, _ = live()
    last_seen = newest_seq()
    ws.abort()
    p = Poster(R)
    try:
        sent = [(p.post(cls({"rf-keep": 0.9})), True), (p.post(cls({"rf-drop": 0.9})), False),
                (p.post(cls({"rf-keep": 0.2})), False), (p.post(boxes(("rf-keep", 0.7))), True),
                (p.post(cls({"rf-keep": 0.8}), "mcu"), True)]
        ws, _ = live(since_seq=last_seen, filter={"labels": ["rf-keep"], "min_score": 0.5})
        marker = p.post(cls({"rf-keep": 0.99}))
        msgs = read_until_id(ws, marker["id"])
        check_no_missed(msgs)
        eq(ids_of(msgs), [v["id"] for v, ok in sent if ok] + [marker["id"]],
           "filtered backlog then live")
    finally:
        p.close()
        ws.abort()


def test_resume_during_ingest_no_gap_no_duplicate():
    """Posts a steady stream from another thread while the client disconnects and resumes
    again and again (clean closes and aborted sockets): the union is every posted seq, in
    order, once."""
    total = 240
    ws, hello = live()
    start_seq = hello["last_seq"]
    ws.abort()
    posted = []
    errors = []

    def poster():
        p = Poster(R)
        try:
            for i in range(total):
                posted.append(p.post(cls({"rd-%d" % (i % 3): 0.5}))["seq"])
        except Exception as e:
            errors.append(e)
        finally:
            p.close()

    th = threading.Thread(target=poster, daemon=True)
    th.start()
    rnd = random.Random(7)
    received = []
    last = start_seq
    reconnects = 0
    deadline = time.monotonic() + 120
    while True:
        check(time.monotonic() < deadline, "resume loop did not finish in 120 s")
        ws, _ = live(since_seq=last)
        reconnects += 1
        want = rnd.randint(5, 40)
        got_here = []
        try:
            while len(got_here) < want:
                check(time.monotonic() < deadline, "resume loop did not finish in 120 s "
                      "(last seq %d, posted %d)" % (last, len(posted)))
                if not th.is_alive() and posted and last >= posted[-1]:
                    break
                try:
                    m = next_msg(ws, 0.5)
                except WsTimeout:
                    continue   # bounded by the loop's deadline
                if m["type"] != "inference":
                    raise TestFailure("unexpected %r during resume" % (m,))
                s = m["inference"]["seq"]
                check(s > last, "seq %d after %d on one connection (duplicate or reorder)" %
                      (s, last))
                got_here.append(s)
                last = s
        finally:
            if reconnects % 2:
                ws.close(timeout=2.0)
            else:
                ws.abort()
        received += got_here
        if not th.is_alive() and posted and last >= posted[-1]:
            break
    th.join(30)
    if errors:
        raise errors[0]
    eq(len(posted), total, "posted")
    eq(received, sorted(posted), "every posted seq exactly once across %d connections" %
       reconnects)
    check(reconnects >= 4, "only %d reconnects" % reconnects)


def test_resume_limit():
    ws, hello = live()
    since = hello["last_seq"]
    ws.abort()
    n_match, n_other = 1100, 200
    items = [(cls({"rl-keep": 0.7}), None)] * n_match + [(cls({"rl-other": 0.7}), None)] * n_other
    random.Random(3).shuffle(items)
    views, _, _ = post_many(R, items, threads=8)
    match_seqs = sorted(v["seq"] for v, (d, s) in zip(views, items)
                        if "rl-keep" in d["result"]["classification"])
    all_seqs = sorted(v["seq"] for v in views)

    def check_backlog(ws, seqs, marker_doc):
        first = next_msg(ws)
        eq(first["type"], "missed", "first message of an over-long backlog: %r" % (first,))
        eq(first.get("reason"), "resume_limit", "missed.reason")
        eq(first.get("count"), len(seqs) - RESUME_MAX, "missed.count")
        # posted after the missed message: committed after the auth, so live, not backlog
        marker = post(marker_doc)
        msgs = read_until_id(ws, marker["id"], timeout=30)
        check_no_missed(msgs)
        got = seqs_of(msgs)
        eq(got[:-1], seqs[-RESUME_MAX:], "the newest 1000 in seq order")
        eq(got[-1], marker["seq"], "then live")
        return marker

    # with a filter: only matching rows count
    ws, _ = live(since_seq=since, filter={"labels": ["rl-keep"]})
    try:
        m1 = check_backlog(ws, match_seqs, cls({"rl-keep": 0.9}))
    finally:
        ws.abort()
    # without a filter: every row after since_seq
    ws, _ = live(since_seq=since)
    try:
        check_backlog(ws, all_seqs + [m1["seq"]], cls({"rl-other": 0.9}))
    finally:
        ws.abort()


def test_nobody_listening_renders_nothing():
    """With no client connected the stream reads and renders nothing (its ring stays empty); a
    client that resumes then gets those inferences from the cache, with their commit times."""
    with Relay() as r:
        t0 = time.time() * 1000
        views = [post(cls({"nl-%d" % i: 0.5}), relay=r) for i in range(3)]
        t1 = time.time() * 1000
        ws, hello = live(relay=r, since_seq=0)
        try:
            eq(hello["last_seq"], views[-1]["seq"], "hello.last_seq")
            m = re.search(r"^ei_relay_live_ring_inferences (\d+)$",
                          r.get("/metrics").body.decode(), re.M)
            check(m is not None and int(m.group(1)) == 0,
                  "ring entries after commits nobody listened to: %r" % (m and m.group(1),))
            msgs = read_until_id(ws, views[-1]["id"])
            check_no_missed(msgs)
            eq(ids_of(msgs), [v["id"] for v in views], "the resumed inferences")
            for msg in msgs:
                c = msg.get("committed_ms")
                check(isinstance(c, (int, float)) and t0 - 1 <= c <= t1 + 1,
                      "committed_ms %r not within the POSTs' window [%.1f, %.1f]" % (c, t0, t1))
        finally:
            ws.abort()


TESTS = [
    test_resume_gets_exactly_the_missed_ones,
    test_resume_with_filter_applies_to_backlog,
    test_resume_during_ingest_no_gap_no_duplicate,
    test_resume_limit,
    test_nobody_listening_renders_nothing,
]

if __name__ == "__main__":
    run_tests(TESTS, shared_relay=Relay, bind=binder(globals()))
