# test_live_stream.py - black-box: inference messages of the live stream: each equal to the REST
# view, every post in seq order exactly once, two clients seeing the same stream, and a DELETE
# announced and never replayed. Helpers in harness/live.py. Every wait is a protocol round trip or a
# bounded read; nothing sleeps.
import json

from harness import ADMIN_TOKEN, READ_TOKEN, Relay, check, eq, make_jpeg, new_id, run_tests
from harness.live import (Poster, binder, check_no_missed, cls, ids_of, live, next_msg, now_ms_f,
                          post, post_many, read_until_id, seqs_of)

R = None  # the relay the file shares (bound by run_tests)


def test_inference_message_is_the_rest_view():
    ws, _ = live()
    try:
        jpeg = make_jpeg(96, 64, noise=8, seed=5)
        doc = cls({"lv-cat": 0.81, "lv-dog": 0.19}, id=new_id(), info="cam 3",
                  timing={"dsp": 2, "classification": 5, "anomaly": 0})
        t0 = now_ms_f()
        r = R.ingest_multipart(doc, jpeg, "image/jpeg")
        posted = r.json()
        m = next_msg(ws)
        t1 = now_ms_f()
        eq(m["type"], "inference", "message type")
        eq(set(m), {"type", "inference", "committed_ms"}, "inference message members")
        v = m["inference"]
        eq(v["id"], doc["id"], "id")
        eq(v["seq"], posted["seq"], "seq (= the 201 answer's)")
        rest = R.get_json("/api/v1/inferences/" + doc["id"])
        eq(v, rest, "the stream's view equals GET /api/v1/inferences/{id}")
        eq(v, posted, "the stream's view equals the 201 answer")
        c = m["committed_ms"]
        check(isinstance(c, (int, float)) and t0 - 1 <= c <= t1 + 1,
              "committed_ms %r not within the POST..receive window [%.1f, %.1f]" % (c, t0, t1))
        img = v["image"]
        check(isinstance(img, dict), "image metadata: %r" % (img,))
        eq(img["url"], "/api/v1/inferences/%s/image" % doc["id"], "image.url")
        eq(img["thumbnail_url"], "/api/v1/inferences/%s/thumbnail" % doc["id"],
           "image.thumbnail_url")
        eq(img["bytes"], len(jpeg), "image.bytes (the size, not the data)")
        blob = json.dumps(m)
        check(len(blob) < len(jpeg), "the message (%d B) carries no image bytes (%d B)" %
              (len(blob), len(jpeg)))
        got = R.get(img["url"])
        eq(got.status, 200, "GET image.url")
        eq(got.body, jpeg, "image bytes behind image.url")
    finally:
        ws.abort()


def test_several_posts_in_seq_order_exactly_once():
    ws, _ = live()
    try:
        # sequential posts, then concurrent ones (commit order decides the seqs)
        seq_views = [post(cls({"ord-%d" % i: 0.5 + i / 100})) for i in range(10)]
        conc, _, _ = post_many(R, [(cls({"ord-c": 0.4}), None) for _ in range(60)], threads=6)
        last = post(cls({"ord-end": 0.9}))
        msgs = read_until_id(ws, last["id"])
        check_no_missed(msgs)
        want = sorted([v["seq"] for v in seq_views + conc] + [last["seq"]])
        eq(seqs_of(msgs), want, "seqs received (in order, each once)")
        by_seq = {v["seq"]: v["id"] for v in seq_views + conc + [last]}
        eq(ids_of(msgs), [by_seq[s] for s in want], "ids match their seqs")
        # the sequential ones kept their post order
        seqs = [v["seq"] for v in seq_views]
        eq(seqs, sorted(seqs), "sequential posts got increasing seqs")
    finally:
        ws.abort()


def test_two_clients_get_the_same_stream():
    a, _ = live(READ_TOKEN)
    b, _ = live(ADMIN_TOKEN)
    try:
        views = [post(cls({"two-%d" % i: 0.6})) for i in range(5)]
        ma = read_until_id(a, views[-1]["id"])
        mb = read_until_id(b, views[-1]["id"])
        eq(ids_of(ma), [v["id"] for v in views], "client a")
        eq([m["inference"] for m in ma], [m["inference"] for m in mb], "same views on both")
    finally:
        a.abort()
        b.abort()


def test_delete_is_announced_and_not_replayed():
    """DELETE over REST: every client (whatever its filter) gets `deleted` with the id, and the
    inference is not replayed to a client resuming from before it."""
    ws, _ = live()
    other, _ = live(filter={"labels": ["dl-none"]})
    p = Poster(R)
    try:
        a = p.post(cls({"dl-a": 0.5}))
        b = p.post(cls({"dl-b": 0.5}))
        msgs = read_until_id(ws, b["id"])
        eq(ids_of(msgs), [a["id"], b["id"]], "both live before the delete")
        r = R.request("DELETE", "/api/v1/inferences/" + a["id"], token=ADMIN_TOKEN)
        eq(r.status, 204, "DELETE answered")
        m = next_msg(ws)
        eq(m, {"type": "deleted", "id": a["id"]}, "deleted message")
        m = next_msg(other)
        eq(m, {"type": "deleted", "id": a["id"]}, "deleted reaches a client whatever its filter")
        # resuming from before both: only the one still stored (served from the ring)
        back, _ = live(since_seq=a["seq"] - 1)
        try:
            c = p.post(cls({"dl-c": 0.5}))
            msgs = read_until_id(back, c["id"])
            eq(ids_of(msgs), [b["id"], c["id"]], "a deleted inference is not replayed")
        finally:
            back.abort()
        # a refused DELETE announces nothing
        r = R.request("DELETE", "/api/v1/inferences/" + a["id"], token=ADMIN_TOKEN)
        eq(r.status, 404, "second DELETE")
        d = p.post(cls({"dl-d": 0.5}))
        msgs = read_until_id(ws, d["id"])
        eq([m["type"] for m in msgs], ["inference", "inference"], "nothing but c and d: %r" % msgs)
    finally:
        p.close()
        ws.abort()
        other.abort()


TESTS = [
    test_inference_message_is_the_rest_view,
    test_several_posts_in_seq_order_exactly_once,
    test_two_clients_get_the_same_stream,
    test_delete_is_announced_and_not_replayed,
]

if __name__ == "__main__":
    run_tests(TESTS, shared_relay=Relay, bind=binder(globals()))
