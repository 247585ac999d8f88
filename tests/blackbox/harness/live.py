# live.py - helpers of the live WebSocket stream tests (docs/live.md): documents to post and
# posting them (one keep-alive connection, or many at once), connecting and authenticating,
# reading the stream up to an inference, and checks that a connection and the relay are still
# well. Every read is bounded (WAIT_S per expected message); nothing sleeps.
#
# A test file shares one relay among its tests: run_tests(TESTS, shared_relay=Relay,
# bind=live.binder(globals())) hands it to these helpers (as their default relay) and to the
# file's global R.
import json
import threading
import time

from .checks import TestFailure, check, eq
from .http import ConnectionClosed
from .relay import INGEST_TOKEN, READ_TOKEN
from .ws_client import BACKGROUND_TYPES, WsTimeout, connect_live

R = None  # the shared relay: the default of every helper that takes relay=None

HELLO_KEYS = {"type", "version", "device", "server_time", "last_seq", "role", "model"}
AUTH_TIMEOUT_S = 5.0  # docs/live.md: auth within 5 s of the upgrade
WAIT_S = 10.0         # bound of one expected message
RESUME_MAX = 1000     # docs/live.md: at most 1000 backlog messages
QUEUE_MAX = 256       # docs/live.md: a connection's send queue


def binder(namespace):
    """A bind function for run_tests: the shared relay becomes these helpers' default and the
    test file's global R (namespace is the file's globals())."""
    def bind(relay):
        global R
        R = relay
        namespace["R"] = relay
    return bind


def now_ms_f():
    return time.time() * 1000.0


# ------------------------------------------------------------------ documents and posting ----


def cls(scores, **extra):
    d = {"result": {"classification": dict(scores)}}
    d.update(extra)
    return d


def boxes(*items):
    """boxes(("person", 0.9), ("car", 0.4)): an object detection result."""
    return {"result": {"bounding_boxes": [
        {"label": lab, "value": v, "x": 4 * i, "y": 2 * i, "width": 10, "height": 12}
        for i, (lab, v) in enumerate(items)]}}


def grid(label, value):
    return {"result": {"anomaly": value, "visual_anomaly_grid": [
        {"label": label, "value": value, "x": 0, "y": 0, "width": 16, "height": 16}]}}


EMPTY = {"result": {"bounding_boxes": []}}


class Poster:
    """POSTs over one keep-alive connection (reopened if the server closes it)."""

    def __init__(self, relay, token=INGEST_TOKEN):
        self.relay = relay
        self.token = token
        self.conn = None

    def post(self, doc, source=None, expect=201):
        path = "/api/v1/inferences" + ("?source=" + source if source else "")
        body = json.dumps(doc).encode()
        hdrs = {"Content-Type": "application/json", "Authorization": "Bearer " + self.token}
        for attempt in range(2):
            if self.conn is None or self.conn.closed:
                self.conn = self.relay.conn(timeout=30.0)
            try:
                r = self.conn.request("POST", path, body, hdrs)
                break
            except (ConnectionClosed, OSError):
                # an idle keep-alive connection the server closed: one retry on a new one
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        if expect is not None and r.status != expect:
            raise TestFailure("POST: expected %d, got %d: %r" % (expect, r.status, r.body[:300]))
        return r.json()

    def close(self):
        if self.conn is not None:
            self.conn.close()


def post(doc, source=None, relay=None):
    p = Poster(relay or R)
    try:
        return p.post(doc, source)
    finally:
        p.close()


def post_many(relay, items, threads=8):
    """items: list of (doc, source). POSTs them from `threads` keep-alive connections at once.
    Returns (views in the order of items, per-request latencies in s, wall time in s); every
    answer must be 201."""
    views = [None] * len(items)
    lat = [0.0] * len(items)
    nxt = [0]
    lock = threading.Lock()
    errors = []

    def worker():
        p = Poster(relay)
        try:
            while True:
                with lock:
                    i = nxt[0]
                    nxt[0] += 1
                if i >= len(items) or errors:
                    return
                t = time.monotonic()
                views[i] = p.post(items[i][0], items[i][1])
                lat[i] = time.monotonic() - t
        except Exception as e:  # reported by the caller
            errors.append(e)
        finally:
            p.close()

    t0 = time.monotonic()
    ts = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
        check(not t.is_alive(), "a posting thread did not finish within 300 s")
    if errors:
        raise errors[0]
    return views, lat, time.monotonic() - t0


def newest_seq(relay=None):
    items = (relay or R).get_json("/api/v1/inferences?limit=1")["items"]
    return items[0]["seq"] if items else 0


# ------------------------------------------------------------------ reading the stream -------


def live(token=READ_TOKEN, relay=None, **kw):
    """connect_live on the relay; the client gets a .bg list for forwarder/stats messages."""
    relay = relay or R
    if relay.ssl_context is not None:
        kw.setdefault("ssl_context", relay.ssl_context)  # wss://
    ws, hello = connect_live(relay.ws_port, token, **kw)
    ws.bg = []
    return ws, hello


def next_msg(ws, timeout=WAIT_S, skip=BACKGROUND_TYPES):
    """The next message whose type is not in skip (those are kept in ws.bg)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise WsTimeout("no message within %.1f s" % timeout)
        m = ws.recv_json(left)
        if m["type"] in skip:
            if not hasattr(ws, "bg"):
                ws.bg = []
            ws.bg.append(m)
            continue
        return m


def expect_type(ws, typ, timeout=WAIT_S):
    m = next_msg(ws, timeout)
    if m["type"] != typ:
        raise TestFailure("expected a %s message, got %r" % (typ, m))
    return m


def check_error(m, code):
    check(m.get("type") == "error", "expected an error message, got %r" % (m,))
    eq(m.get("code"), code, "error code of %r" % (m,))
    check(isinstance(m.get("message"), str) and m["message"], "error message text: %r" % (m,))


def read_until(ws, done, what, timeout=WAIT_S):
    """Stream messages (inference, missed) up to and including the first inference for which
    done(inference) holds. Anything else (error, subscribed, ...) fails."""
    deadline = time.monotonic() + timeout
    out = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise WsTimeout("%s did not arrive within %.1f s (got %d: %r)" %
                            (what, timeout, len(out), [short(m) for m in out[-5:]]))
        m = next_msg(ws, left)
        if m["type"] not in ("inference", "missed"):
            raise TestFailure("unexpected %r in the stream" % (m,))
        out.append(m)
        if m["type"] == "inference" and done(m["inference"]):
            return out


def read_until_id(ws, ident, timeout=WAIT_S):
    """Stream messages up to and including the inference with this id."""
    return read_until(ws, lambda inf: inf["id"] == ident, "inference %s" % ident, timeout)


def read_until_seq(ws, seq, timeout=WAIT_S):
    """Stream messages until an inference with seq >= seq."""
    return read_until(ws, lambda inf: inf["seq"] >= seq, "seq %d" % seq, timeout)


def short(m):
    if m.get("type") == "inference":
        return ("inference", m["inference"]["seq"], m["inference"]["id"][:8])
    return m


def ids_of(msgs):
    return [m["inference"]["id"] for m in msgs if m["type"] == "inference"]


def seqs_of(msgs):
    return [m["inference"]["seq"] for m in msgs if m["type"] == "inference"]


def check_no_missed(msgs):
    missed = [m for m in msgs if m["type"] == "missed"]
    check(not missed, "unexpected missed messages: %r" % missed)


def check_open(ws, tag="alive"):
    """The connection is usable: an application ping gets its pong (stream messages that
    arrive meanwhile are returned)."""
    ws.send_json({"type": "ping", "id": tag})
    got = []
    deadline = time.monotonic() + WAIT_S
    while True:
        m = next_msg(ws, max(0.01, deadline - time.monotonic()))
        if m["type"] == "pong" and m.get("id") == tag:
            return got
        if m["type"] not in ("inference", "missed"):
            raise TestFailure("expected pong %r, got %r" % (tag, m))
        got.append(m)


def check_relay_healthy(relay=None):
    r = relay or R
    check(r.proc is not None and r.proc.poll() is None, "the relay process exited")
    eq(r.health()["status"], "ok", "health status")
    ws, hello = live(relay=r)
    ws.close()


# ================================================================== authentication ===========


def run_filter_case(ws, name, docs, marker):
    """Posts docs ((doc, source, passes) each) then marker ((doc, source)), and checks ws gets
    exactly the ones that pass the connection's filter, then the marker, nothing missed."""
    p = Poster(R)
    try:
        expected = []
        for doc, source, passes in docs:
            v = p.post(doc, source)
            if passes:
                expected.append(v["id"])
        mv = p.post(marker[0], marker[1])
    finally:
        p.close()
    msgs = read_until_id(ws, mv["id"])
    check_no_missed(msgs)
    got = ids_of(msgs)
    if got != expected + [mv["id"]]:
        names = {}
        for i, (doc, source, passes) in enumerate(docs):
            names[i] = (json.dumps(doc["result"])[:80], source, passes)
        raise TestFailure("filter %s: got %d inferences, expected %d (passes flags: %r)" %
                          (name, len(got) - 1, len(expected), list(names.values())))
