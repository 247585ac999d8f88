# test_ratelimit.py - black-box: request rate limits and slowed failed logins (README
# "Reliability and security", "Rate limits and failed logins"). Requests past a token's (or an
# address's) budget get 429 with an integer Retry-After and the error contract naming the limit;
# loopback clients are exempt by default; failed authentications from one address (HTTP and the
# live stream together) get it refused with a growing Retry-After, whatever token it sends, while
# other addresses go on; the WebSocket port limits connections per second per address; lines a
# client can make libwebsockets write are rate-limited. Clients on 127.0.0.x are distinct
# addresses to the relay (they connect from that source). Every wait is a protocol round trip or
# a bounded poll.
import socket

from harness import (ADMIN_TOKEN, READ_TOKEN, HttpConn, Relay, check, eq, error_of,
                     http_request, run_tests, wait_for)
from harness.http import auth_header
from harness.ws_client import WsClient, WsError, connect_live
from harness.ws_client import auth_message

BAD_TOKEN = "not-a-token-of-this-relay-0123"
LIMITED = {"rate_limit_loopback": True}  # the tests' clients are all on loopback


def retry_after(resp):
    """The Retry-After header as whole seconds (fails unless it is an integer >= 1)."""
    v = resp.headers.get("retry-after", "")
    check(v.isdigit() and int(v) >= 1, "Retry-After %r is not whole seconds >= 1" % v)
    return int(v)


def until_429(conn, path, token, most):
    """Sends requests on conn until one is refused; returns (answered 2xx before, the 429)."""
    ok = 0
    for _ in range(most):
        resp = conn.request("GET", path, headers=auth_header(token))
        if resp.status == 429:
            return ok, resp
        eq(resp.status, 200, "%s before the limit: %r" % (path, resp))
        ok += 1
    raise AssertionError("no 429 in %d requests to %s" % (most, path))


def get(r, path, token=None, source=None):
    return http_request(r.http_port, "GET", path, token=token, source=source)


def test_request_rate_per_token_and_address():
    """Burst 3 at 1/s: a token's 4th request at once is 429 naming the limit, with Retry-After;
    another token and the address's own (tokenless) budget are separate; another address is
    not touched; once Retry-After has passed the token is served again; the 429 lines in the
    log are rate-limited."""
    with Relay(dict(LIMITED, rate_limit_per_s=1, rate_limit_burst=3)) as r:
        with HttpConn(r.http_port) as c:  # a 429 closes its connection (it frees the slot)
            ok, resp = until_429(c, "/api/v1/stats", READ_TOKEN, 20)
        check(ok >= 3, "only %d requests before the first 429 (burst 3)" % ok)
        _, msg = error_of(resp, 429, "too_many_requests")
        check("rate_limit_per_s 1" in msg and "token" in msg, "message %r" % msg)
        eq(retry_after(resp), 1, "Retry-After at 1 request per second")
        # the admin token has its own bucket; so has the address without a token
        eq(get(r, "/api/v1/stats", ADMIN_TOKEN).status, 200, "another token")
        with HttpConn(r.http_port, source="127.0.0.11") as c:  # not the readiness checks'
            ok, resp = until_429(c, "/api/v1/health", None, 20)
        check(ok >= 3, "only %d tokenless requests before the 429" % ok)
        _, msg = error_of(resp, 429, "too_many_requests")
        check("address" in msg, "message %r" % msg)
        for _ in range(30):  # a client ignoring Retry-After: one line per 429 would flood
            eq(get(r, "/api/v1/health", source="127.0.0.11").status, 429)
        eq(get(r, "/api/v1/health", source="127.0.0.2").status, 200, "another address")
        wait_for("the token served again after Retry-After",
                 lambda: get(r, "/api/v1/stats", READ_TOKEN).status, timeout=5,
                 until=lambda s: s == 200, relay=r)
        lines = r.log().count("-> 429 too_many_requests")
        check(1 <= lines <= 10, "%d log lines for 60+ answers of 429" % lines)


def test_loopback_exempt_by_default():
    """Without rate_limit_loopback the gateway's own processes are never throttled (the
    benchmark's 30k requests/s over loopback), nor slowed for bad tokens; other settings the
    same as the test above."""
    with Relay({"rate_limit_per_s": 1, "rate_limit_burst": 1, "auth_fail_free": 1}) as r:
        with HttpConn(r.http_port) as c:
            for i in range(30):
                eq(c.request("GET", "/api/v1/stats", headers=auth_header(READ_TOKEN)).status,
                   200, "request %d over loopback" % i)
        for i in range(5):
            eq(get(r, "/api/v1/stats", BAD_TOKEN).status, 401, "bad token %d" % i)
        eq(get(r, "/api/v1/stats", READ_TOKEN).status, 200, "after bad tokens")


def test_failed_logins_slowed_per_address():
    """3 bad tokens from one address: its next attempt, even with the right token, is 429 with
    Retry-After; a tokenless request and another address are unaffected; after Retry-After the
    right token works (and clears the count); each further failure doubles the wait."""
    with Relay(dict(LIMITED, auth_fail_free=3)) as r:
        a = "127.0.0.3"
        for i in range(3):
            error_of(get(r, "/api/v1/stats", BAD_TOKEN, a), 401, "unauthorized")
        resp = get(r, "/api/v1/stats", READ_TOKEN, a)
        _, msg = error_of(resp, 429, "too_many_requests")
        check("failed authentications" in msg and "auth_fail_free 3" in msg, "message %r" % msg)
        eq(retry_after(resp), 1, "the first block")
        eq(get(r, "/api/v1/stats", READ_TOKEN, "127.0.0.4").status, 200, "another address")
        eq(get(r, "/api/v1/health", None, a).status, 200, "a route without a token")
        for i in range(10):  # no token is not a guess
            error_of(get(r, "/api/v1/stats", None, "127.0.0.5"), 401, "unauthorized")
        eq(get(r, "/api/v1/stats", READ_TOKEN, "127.0.0.5").status, 200)
        wait_for("the right token after Retry-After",
                 lambda: get(r, "/api/v1/stats", READ_TOKEN, a).status, timeout=5,
                 until=lambda s: s == 200, relay=r)
        # the success cleared the count: 3 more failures for the first block again, then the
        # wait doubles with each failure after a block
        for i in range(3):
            error_of(get(r, "/api/v1/stats", BAD_TOKEN, a), 401, "unauthorized")
        waits = []
        for want in (1, 2, 4):
            resp = get(r, "/api/v1/stats", BAD_TOKEN, a)
            error_of(resp, 429, "too_many_requests")
            waits.append(retry_after(resp))
            if want == 4:
                break
            wait_for("a bad token heard again (401) after the block",
                     lambda: get(r, "/api/v1/stats", BAD_TOKEN, a).status, timeout=want + 4,
                     until=lambda s: s == 401, relay=r)
        eq(waits, [1, 2, 4], "Retry-After of successive blocks")


def ws_auth(r, token, source):
    """Connects from source and authenticates: the first message (hello or error)."""
    ws = WsClient(r.ws_port, source=source, timeout=5)
    try:
        ws.send_json(auth_message(token))
        return ws.recv_json(5)
    finally:
        ws.abort()


def test_ws_auth_failures_shared_with_http():
    """Bad tokens on the live stream count against the address as on HTTP: the next live auth
    (right token) is refused with too_many_requests, and so is an HTTP request from it."""
    with Relay(dict(LIMITED, auth_fail_free=3)) as r:
        a = "127.0.0.6"
        for i in range(3):
            m = ws_auth(r, BAD_TOKEN, a)
            eq(m.get("code"), "unauthorized", "bad token %d: %r" % (i, m))
        m = ws_auth(r, READ_TOKEN, a)
        eq((m.get("type"), m.get("code")), ("error", "too_many_requests"), "%r" % m)
        check("retry in 1 s" in m.get("message", ""), "message %r" % m)
        resp = get(r, "/api/v1/stats", READ_TOKEN, a)
        error_of(resp, 429, "too_many_requests")
        eq(ws_auth(r, READ_TOKEN, "127.0.0.7").get("type"), "hello", "another address")
        # failures on HTTP count on the live stream too
        for i in range(3):
            error_of(get(r, "/api/v1/stats", BAD_TOKEN, "127.0.0.8"), 401)
        eq(ws_auth(r, READ_TOKEN, "127.0.0.8").get("code"), "too_many_requests")


def ws_opens(r, source):
    """True when a live stream connection from source upgrades and authenticates."""
    try:
        ws, _ = connect_live(r.ws_port, READ_TOKEN, timeout=5, source=source)
    except (OSError, WsError):
        return False
    ws.abort()
    return True


def test_ws_connections_per_second_per_address():
    """ws_connect_burst 3 at 1/s: the burst connects, then one is closed at once; another
    address still connects."""
    with Relay(dict(LIMITED, ws_connect_per_s=1, ws_connect_burst=3)) as r:
        results = []
        for _ in range(20):
            results.append(ws_opens(r, "127.0.0.9"))
            if not results[-1]:
                break
        check(results[:3] == [True] * 3 and results[-1] is False,
              "connections from one address: %r" % results)
        check(ws_opens(r, "127.0.0.10"), "another address")
        wait_for("a connection again after a second", lambda: ws_opens(r, "127.0.0.9"),
                 timeout=5, relay=r)
        check("faster than ws_connect_per_s" in r.log(), "the refusal is logged")


def oversized_head(port):
    """One request head too big for libwebsockets (it logs an error per connection)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(b"GET /api/v1/live HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: y\r\n" * 600 + b"\r\n")
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
    finally:
        s.close()


def test_lws_log_lines_rate_limited():
    """60 oversized request heads on the WebSocket port make libwebsockets log an error each
    ("Ran out of header data space"); the log holds a handful and then says how many more
    were suppressed."""
    with Relay({"ws_max_connections_per_ip": 4}) as r:
        for _ in range(60):
            oversized_head(r.ws_port)

        def suppressed():
            oversized_head(r.ws_port)  # the first line after the window reports the rest
            return "lines were suppressed" in r.log() and "'error' lines" in r.log()

        wait_for("the suppressed-lines report of lws errors", suppressed, timeout=15, relay=r)
        n = r.log().count("Ran out of header data space")
        check(1 <= n <= 12, "%d lws error lines for 60+ bad heads" % n)


if __name__ == "__main__":
    run_tests([test_request_rate_per_token_and_address, test_loopback_exempt_by_default,
               test_failed_logins_slowed_per_address, test_ws_auth_failures_shared_with_http,
               test_ws_connections_per_second_per_address, test_lws_log_lines_rate_limited])
