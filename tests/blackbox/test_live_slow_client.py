# test_live_slow_client.py - black-box: a slow live-stream client: it loses messages and is told
# (missed), while ingest and a fast client go on. Helpers in harness/live.py. Every wait is a
# protocol round trip or a bounded read; nothing sleeps.
import threading

from harness import Relay, TestFailure, check, eq, run_tests
from harness.live import (QUEUE_MAX, binder, check_no_missed, check_open, check_relay_healthy, cls,
                          live, next_msg, post_many, read_until_seq, seqs_of)

R = None  # the relay the file shares (bound by run_tests)


def test_slow_client_loses_and_is_told():
    n = 2000
    with Relay({"db_synchronous": "normal"}) as r:
        fast, _ = live(relay=r)
        slow, slow_hello = live(relay=r, rcvbuf=2048)
        fast_msgs, fast_err = [], []
        first_seq = slow_hello["last_seq"] + 1
        want_last = first_seq + n - 1    # only this test posts to this relay
        done = threading.Event()
        got = threading.Condition()
        fast_top = [0]  # newest seq the fast client has read

        def fast_reader():
            try:
                while True:
                    m = next_msg(fast, 60)
                    fast_msgs.append(m)
                    if m["type"] == "inference":
                        with got:
                            fast_top[0] = m["inference"]["seq"]
                            got.notify_all()
                        if m["inference"]["seq"] >= want_last:
                            return
            except Exception as e:
                fast_err.append(e)
            finally:
                done.set()
                with got:
                    got.notify_all()

        th = threading.Thread(target=fast_reader, daemon=True)
        th.start()
        # the slow client reads nothing from here on
        items = [(cls({"slow-%d" % (i % 4): 0.25 + (i % 50) / 100.0},
                      info="padding " + "x" * 6000), None) for i in range(n)]
        # Posted in batches, each once the fast client has read the one before: the fast client
        # (Python, maybe on a busy machine) is then never near the queue bound, while the slow
        # one, which reads nothing, overflows it many times over.
        views, lat, wall = [], [], 0.0
        batch = 100
        for b in range(0, n, batch):
            v, l, w = post_many(r, items[b:b + batch], threads=8)
            views += v
            lat += l
            wall += w
            top = max(x["seq"] for x in views)
            with got:
                if not got.wait_for(lambda: fast_top[0] >= top or done.is_set(), 60):
                    raise TestFailure("the fast client did not get seq %d within 60 s" % top)
        seqs = sorted(v["seq"] for v in views)
        eq(seqs, list(range(first_seq, want_last + 1)), "the posts' seqs")
        lat.sort()
        print("  posted %d in %.2f s (%.0f/s), POST latency p50 %.1f ms p99 %.1f ms max %.1f ms"
              % (n, wall, n / wall, lat[n // 2] * 1e3, lat[int(n * 0.99)] * 1e3, lat[-1] * 1e3))
        check(lat[-1] < 10.0, "a POST took %.1f s while a client was stuck" % lat[-1])
        # the fast client got every one, in order, told of no loss
        if not done.wait(60):
            raise TestFailure("the fast client did not get seq %d within 60 s (has %d)" %
                              (seqs[-1], len(fast_msgs)))
        if fast_err:
            raise fast_err[0]
        check_no_missed(fast_msgs)
        eq(seqs_of(fast_msgs), seqs, "the fast client got every inference in order")
        # now the slow one reads: what it has + missed(count) == posted, and every seq jump
        # is announced by missed messages adding up to the jump
        msgs = read_until_seq(slow, seqs[-1], timeout=60)
        delivered, missed_total, pending_missed = 0, 0, 0
        prev = first_seq - 1
        for m in msgs:
            if m["type"] == "missed":
                eq(m.get("reason"), "slow_client", "missed.reason")
                check(isinstance(m.get("count"), int) and m["count"] > 0, "missed.count %r" % m)
                missed_total += m["count"]
                pending_missed += m["count"]
                continue
            s = m["inference"]["seq"]
            check(s > prev, "seq %d after %d" % (s, prev))
            eq(s - prev - 1, pending_missed,
               "seq jump from %d to %d vs missed announced just before it" % (prev, s))
            pending_missed = 0
            prev = s
            delivered += 1
        print("  slow client: delivered %d, missed %d (in %d missed messages)" %
              (delivered, missed_total, sum(1 for m in msgs if m["type"] == "missed")))
        check(missed_total > 0, "the slow client lost nothing (was it slow?)")
        eq(delivered + missed_total, n, "delivered + missed == posted")
        check(delivered >= QUEUE_MAX, "delivered %d < the queue bound %d" % (delivered, QUEUE_MAX))
        # still a working connection, the relay healthy, a new client served
        check_open(slow, "slow-after")
        check_open(fast, "fast-after")
        check_relay_healthy(r)
        eq(r.health()["db"]["rows"], n, "rows stored")
        slow.close()
        fast.close()


TESTS = [
    test_slow_client_loses_and_is_told,
]

if __name__ == "__main__":
    run_tests(TESTS, shared_relay=Relay, bind=binder(globals()))
