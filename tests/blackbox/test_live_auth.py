# test_live_auth.py - black-box: authentication on the live stream: the hello per role, last_seq,
# refused tokens and first messages (text, binary, malformed, late), a fragmented auth, wrong paths.
# Helpers in harness/live.py. Every wait is a protocol round trip or a bounded read; nothing sleeps.
import json
import time

from harness import ADMIN_TOKEN, INGEST_TOKEN, READ_TOKEN, Relay, TestFailure, check, eq, run_tests
from harness.live import (AUTH_TIMEOUT_S, HELLO_KEYS, WAIT_S, binder, check_error,
                          check_relay_healthy, cls, expect_type, live, newest_seq, now_ms_f, post)
from harness.ws_client import (CLOSE_POLICY, OP_BINARY, OP_TEXT, HandshakeError, WsClient,
                               auth_message, build_frame)

R = None  # the relay the file shares (bound by run_tests)


def test_hello_per_role():
    health = R.health()
    last = newest_seq()
    for token, role in ((READ_TOKEN, "read"), (ADMIN_TOKEN, "admin")):
        t0 = now_ms_f()
        ws, hello = live(token)
        t1 = now_ms_f()
        try:
            missing = HELLO_KEYS - set(hello)
            check(not missing, "hello lacks %s: %r" % (sorted(missing), hello))
            eq(hello["role"], role, "hello.role")
            eq(hello["version"], health["version"], "hello.version (= health version)")
            eq(hello["device"], health["device"], "hello.device (= health device)")
            check(isinstance(hello["server_time"], (int, float)) and
                  t0 - 2 <= hello["server_time"] <= t1 + 2,
                  "server_time %r not within [%.0f, %.0f]" % (hello["server_time"], t0, t1))
            eq(hello["last_seq"], last, "hello.last_seq (newest seq in the cache)")
            eq(hello["model"], None, "hello.model without a runner source")
            # every role that may read uses the stream: subscribe is answered
            ws.send_json({"type": "subscribe", "labels": ["x-" + role]})
            m = expect_type(ws, "subscribed")
            eq(m["filter"]["labels"], ["x-" + role], "subscribed.filter.labels")
            ans = ws.close()
            check(ans is not None and ans[0] == 1000, "answer to a normal close: %r" % (ans,))
        finally:
            ws.abort()


def test_last_seq_follows_ingest():
    v = post(cls({"ls-a": 0.7}))
    ws, hello = live()
    ws.abort()
    eq(hello["last_seq"], v["seq"], "last_seq after a post")


def refused(first_frames, expect_code="unauthorized"):
    """Connects, sends the given raw frames as the first thing, expects error <code> then
    close 1008 (and nothing else)."""
    ws = WsClient(R.ws_port)
    try:
        for f in first_frames:
            ws.send_raw(f)
        code, reason, msgs = ws.wait_close(WAIT_S)
    finally:
        ws.abort()
    eq(len(msgs), 1, "messages before the close: %r" % (msgs,))
    check(isinstance(msgs[0], dict), "a JSON error message, got %r" % (msgs[0],))
    check_error(msgs[0], expect_code)
    eq(code, CLOSE_POLICY, "close code")
    return msgs[0]


def frame_of(obj, opcode=OP_TEXT):
    data = obj if isinstance(obj, (bytes, str)) else json.dumps(obj)
    return build_frame(opcode, data)


def test_wrong_token_refused():
    refused([frame_of(auth_message("not-a-token"))])
    refused([frame_of(auth_message(READ_TOKEN + "x"))])
    refused([frame_of(auth_message(READ_TOKEN[:-1]))])
    refused([frame_of(auth_message(""))])
    refused([frame_of({"type": "auth"})])
    # a valid ingest token may post but not read: the stream would hand it every row
    refused([frame_of(auth_message(INGEST_TOKEN))], "forbidden")
    refused([frame_of(auth_message(INGEST_TOKEN, since_seq=0))], "forbidden")
    check_relay_healthy()


def test_non_auth_first_message_closes():
    refused([frame_of({"type": "subscribe", "labels": ["a"]})])
    refused([frame_of({"type": "ping", "id": 1})])
    refused([frame_of({"type": "hello"})])
    refused([frame_of(b"{not json")])
    refused([frame_of(b"[]")])
    check_relay_healthy()


def test_malformed_auth_refused():
    """An auth message with a bad since_seq or filter: an error, no hello, close 1008."""
    bad = [{"since_seq": -1}, {"since_seq": "5"}, {"since_seq": 1.5}, {"since_seq": True},
           {"filter": "x"}, {"filter": {"labels": "a"}}, {"filter": {"min_score": 3}},
           {"filter": {"sources": [1]}}, {"token": 12}]
    for extra in bad:
        ws = WsClient(R.ws_port)
        try:
            ws.send_json(dict(auth_message(READ_TOKEN), **extra))
            code, reason, msgs = ws.wait_close(WAIT_S)
        finally:
            ws.abort()
        eq(len(msgs), 1, "%r: messages before the close: %r" % (extra, msgs))
        check(isinstance(msgs[0], dict) and msgs[0].get("type") == "error" and
              msgs[0].get("code") in ("unauthorized", "bad_request") and msgs[0].get("message"),
              "%r: error message %r" % (extra, msgs[0]))
        eq(code, CLOSE_POLICY, "%r: close code" % (extra,))


def test_non_auth_first_binary_closes():
    """A binary frame first: no hello, and the connection is closed (with or without the
    error message: docs/live.md says anything else first is refused)."""
    ws = WsClient(R.ws_port)
    try:
        ws.send_frame(OP_BINARY, json.dumps(auth_message(READ_TOKEN)).encode())
        code, reason, msgs = ws.wait_close(WAIT_S)
    finally:
        ws.abort()
    check(all(isinstance(m, dict) and m.get("type") == "error" for m in msgs),
          "only an error may come before the close: %r" % (msgs,))
    eq(code, CLOSE_POLICY, "close code after a binary first message")


def test_auth_timeout_and_nothing_before_auth():
    ws = WsClient(R.ws_port)
    t0 = time.monotonic()
    try:
        # an inference committed while the client is not authenticated must not reach it
        post(cls({"pre-auth": 0.9}))
        code, reason, msgs = ws.wait_close(AUTH_TIMEOUT_S + 10)
    finally:
        ws.abort()
    elapsed = time.monotonic() - t0
    eq(len(msgs), 1, "messages before the close: %r" % (msgs,))
    check_error(msgs[0], "auth_timeout")
    eq(code, CLOSE_POLICY, "close code")
    check(AUTH_TIMEOUT_S - 0.5 <= elapsed <= AUTH_TIMEOUT_S + 3.0,
          "closed %.2f s after the upgrade (docs: 5 s)" % elapsed)


def test_fragmented_auth_accepted():
    ws = WsClient(R.ws_port)
    try:
        ws.send_fragments(json.dumps(auth_message(READ_TOKEN)), [5, 7, 1])
        hello = ws.recv_json(WAIT_S)
        eq(hello["type"], "hello", "hello after a fragmented auth")
        eq(hello["role"], "read", "role")
    finally:
        ws.abort()


def test_wrong_path_404():
    for path in ("/", "/api/v1/livex", "/api/v1/live/x", "/api/v1/inferences", "/api/v2/live"):
        try:
            ws = WsClient(R.ws_port, path=path)
        except HandshakeError as e:
            eq(e.status, 404, "upgrade on %s" % path)
            continue
        ws.abort()
        raise TestFailure("upgrade on %s was accepted" % path)
    check_relay_healthy()


TESTS = [
    test_hello_per_role,
    test_last_seq_follows_ingest,
    test_wrong_token_refused,
    test_non_auth_first_message_closes,
    test_non_auth_first_binary_closes,
    test_malformed_auth_refused,
    test_auth_timeout_and_nothing_before_auth,
    test_fragmented_auth_accepted,
    test_wrong_path_404,
]

if __name__ == "__main__":
    run_tests(TESTS, shared_relay=Relay, bind=binder(globals()))
