# test_limits.py - black-box: the listeners hold against hostile LAN clients (README "Reliability
# and security", "Connections and limits"): `bind` is honoured by the HTTP and the WebSocket
# listener alike; an HTTP request's head and body have absolute deadlines (a client trickling
# bytes is cut); one address cannot take every connection; the lines this writes to the log are
# rate-limited; the WebSocket port has its own caps and an upgrade deadline. Raw sockets; every
# wait is a connect, a protocol round trip or a bounded poll.
import fcntl
import select
import socket
import struct
import threading
import time

from harness import INGEST_TOKEN, READ_TOKEN, HttpConn, Relay, check, eq, run_tests, wait_for
from harness.ws_client import HandshakeError, WsClient, connect_live


def host_addresses():
    """The machine's non-loopback IPv4 addresses (SIOCGIFADDR on each interface)."""
    out = []
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _, name in socket.if_nameindex():
            try:
                req = struct.pack("256s", name.encode()[:15])
                addr = socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24])
            except OSError:
                continue  # no IPv4 address
            if not addr.startswith("127."):
                out.append(addr)
    finally:
        s.close()
    return out


def connect_result(host, port, family=socket.AF_INET):
    """'open' when a TCP connect to host:port succeeds, else the error's name."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(2.0)
    try:
        s.connect((host, port))
        return "open"
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()


def test_bind_loopback_both_listeners():
    """bind 127.0.0.1: both ports answer on loopback; neither is reachable on another loopback
    address (127.0.0.2, which a wildcard listener accepts) nor on the host's LAN addresses."""
    with Relay({"bind": "127.0.0.1"}) as r:
        for port in (r.http_port, r.ws_port):
            eq(connect_result("127.0.0.1", port), "open", "127.0.0.1:%d" % port)
            for addr in ["127.0.0.2"] + host_addresses():
                eq(connect_result(addr, port), "ConnectionRefusedError",
                   "%s:%d with bind 127.0.0.1" % (addr, port))


def ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def test_bind_ipv6_loopback_both_listeners():
    """bind ::1: both ports on ::1 only (no IPv4, no other address)."""
    if not ipv6_loopback():
        print("  skipped (no IPv6 loopback here)")
        return
    with Relay({"bind": "::1"}, wait_ready=False) as r:
        def health():
            try:
                with HttpConn(r.http_port, host="::1", timeout=2) as c:
                    return c.request("GET", "/api/v1/health").status
            except OSError as e:
                return repr(e)
        wait_for("health on [::1]", health, until=lambda v: v == 200, relay=r)
        for port in (r.http_port, r.ws_port):
            eq(connect_result("::1", port, socket.AF_INET6), "open", "[::1]:%d" % port)
            eq(connect_result("127.0.0.1", port), "ConnectionRefusedError",
               "127.0.0.1:%d with bind ::1" % port)


class Trickler:
    """Sockets from one source address that each send their first bytes, then one more byte
    every TRICKLE_S from a thread (a slow-loris client: never idle long enough for an idle
    timer). Records when each socket was found closed by the relay."""
    TRICKLE_S = 0.25

    def __init__(self, port, n, source, first, drip=b"x"):
        self.socks, self.closed_at, self.t0 = [], {}, time.monotonic()
        self.drip = drip
        self.stop = threading.Event()
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((source, 0))
            s.connect(("127.0.0.1", port))
            s.sendall(first)
            s.setblocking(False)
            self.socks.append(s)
        self.lock = threading.Lock()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _closed(self, i):
        with self.lock:
            self.closed_at.setdefault(i, time.monotonic() - self.t0)

    def poll(self):
        """Marks the sockets the relay closed (EOF or reset); returns how many are closed."""
        for i, s in enumerate(self.socks):
            if i in self.closed_at:
                continue
            if select.select([s], [], [], 0)[0]:
                try:
                    data = s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    self._closed(i)
        return len(self.closed_at)

    def wait_cut(self, relay, deadline_s, refused, what):
        """Waits until the relay closed every socket; those after the first `refused` ones (closed
        at once) must have been cut at deadline_s (0.5 s before it at the earliest, 1.5 s
        after at the latest)."""
        n = len(self.socks)
        wait_for(what + " cut at the deadline", self.poll, timeout=deadline_s + 3,
                 until=lambda k: k == n, relay=relay)
        held = sorted(self.closed_at.values())[refused:]
        check(held[0] >= deadline_s - 0.5,
              "%s: one was cut after %.2f s, before the deadline" % (what, held[0]))
        check(held[-1] <= deadline_s + 1.5, "%s: cut only after %.2f s" % (what, held[-1]))

    def _run(self):
        while not self.stop.wait(self.TRICKLE_S):
            for i, s in enumerate(self.socks):
                if i in self.closed_at:
                    continue
                try:
                    s.send(self.drip)
                except OSError:
                    self._closed(i)

    def close(self):
        self.stop.set()
        self.th.join(5)
        for s in self.socks:
            s.close()


HEAD_MS, BODY_MS = 3000, 2000


def limits_relay():
    return Relay({"http_header_timeout_ms": HEAD_MS, "http_body_timeout_ms": BODY_MS,
                  "http_max_connections": 40, "http_max_connections_per_ip": 32})


def test_http_trickle_per_ip_limit_and_head_deadline():
    """40 slow-loris connections from 127.0.0.2 (per-IP limit 32, total 40): 8 are refused at
    once, health from 127.0.0.1 still answers promptly (without the per-IP limit the 40 would
    fill every slot), and the 32 held ones are cut at the head deadline although they never
    stop sending. The cut lines in the log are rate-limited."""
    with limits_relay() as r:
        check("connections: http at most 40 (32 per address" in r.log(),
              "the effective limits are logged:\n" + r.log())
        t = Trickler(r.http_port, 40, "127.0.0.2", b"GET /api/v1/health HTTP/1.1\r\nX-Slow: ")
        try:
            wait_for("8 connections refused by the per-IP limit", t.poll, timeout=HEAD_MS / 2000,
                     until=lambda n: n >= 8, relay=r)
            eq(t.poll(), 8, "connections refused over the per-IP limit of 32")
            t_h = time.monotonic()
            with HttpConn(r.http_port, timeout=2) as c:
                eq(c.request("GET", "/api/v1/health").status, 200, "health from another address")
            check(time.monotonic() - t_h < 1.0, "health took %.2f s" % (time.monotonic() - t_h))
            t.wait_cut(r, HEAD_MS / 1000, 8, "the trickling connections")
        finally:
            t.close()
        cuts = r.log().count("was not complete within")
        check(1 <= cuts <= 5, "%d deadline lines for 32 cuts within 5 s (limit 5)" % cuts)
        eq(r.health()["status"], "ok", "health after the attack")


def test_http_body_deadline():
    """A POST whose head is complete but whose body trickles in is cut at the body deadline,
    and nothing is stored."""
    with limits_relay() as r:
        head = ("POST /api/v1/inferences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{" %
                INGEST_TOKEN).encode()
        t = Trickler(r.http_port, 1, "127.0.0.1", head, drip=b" ")
        try:
            wait_for("the trickled body cut", t.poll, timeout=BODY_MS / 1000 + 3,
                     until=lambda n: n == 1, relay=r)
            at = t.closed_at[0]
            check(BODY_MS / 1000 - 0.5 <= at <= BODY_MS / 1000 + 1.5,
                  "the body was cut after %.2f s (deadline %.1f s)" % (at, BODY_MS / 1000))
        finally:
            t.close()
        eq(r.count(), 0, "inferences stored")


WS_HS_MS, WS_PER_IP = 1000, 4
WS_HALF_UPGRADE = b"GET /api/v1/live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nX-Slow: "


def ws_relay():
    return Relay({"ws_max_connections_per_ip": WS_PER_IP, "ws_handshake_timeout_ms": WS_HS_MS})


def ws_upgrade(port, source, timeout=3.0):
    """A WebSocket client from source that completed its upgrade, or None when the relay closed
    the connection instead (refused at accept)."""
    try:
        return WsClient(port, source=source, timeout=timeout)
    except (HandshakeError, ConnectionError):
        return None


def test_ws_per_ip_limit_frees_slots():
    """6 complete upgrades from 127.0.0.2 against ws_max_connections_per_ip 4: the first 4 are
    served, the other 2 are closed at once (no answer to their upgrade); a client from
    127.0.0.1 still upgrades and authenticates; closing 2 of the 4 frees their slots."""
    with ws_relay() as r:
        check("ws at most 64 (4 per address; upgrade within 1000 ms)" in r.log(),
              "the effective WebSocket limits are logged:\n" + r.log())
        held, refused = [], 0
        for _ in range(6):
            t0 = time.monotonic()
            w = ws_upgrade(r.ws_port, "127.0.0.2")
            if w:
                held.append(w)
            else:
                refused += 1
                check(time.monotonic() - t0 < WS_HS_MS / 1000,
                      "a refused connection was closed only after %.2f s" %
                      (time.monotonic() - t0))
        try:
            eq((len(held), refused), (WS_PER_IP, 2), "(upgraded, refused) from 127.0.0.2")
            ws, hello = connect_live(r.ws_port, READ_TOKEN, timeout=3)
            eq(hello["type"], "hello", "a client from 127.0.0.1 while 127.0.0.2 is at its limit")
            ws.close()
            for w in held[:2]:
                w.close()
            extra = []
            try:
                for i in range(2):
                    extra.append(wait_for("upgrade %d from 127.0.0.2 after two closed" % i,
                                          lambda: ws_upgrade(r.ws_port, "127.0.0.2"),
                                          timeout=5, relay=r))
                eq(ws_upgrade(r.ws_port, "127.0.0.2"), None, "a fifth from 127.0.0.2 again")
            finally:
                for w in extra:
                    w.abort()
        finally:
            for w in held[2:]:
                w.abort()
        eq(r.health()["status"], "ok", "health after the limit")


def test_ws_half_upgrades_cut_at_deadline():
    """6 half-sent upgrades from 127.0.0.2 that keep trickling header bytes: 2 are closed at
    once (per-address limit 4), the other 4 at the 1 s upgrade deadline although they never
    stop sending; meanwhile 127.0.0.1 upgrades; afterwards their slots are free again."""
    with ws_relay() as r:
        t = Trickler(r.ws_port, 6, "127.0.0.2", WS_HALF_UPGRADE)
        try:
            wait_for("2 connections refused by the per-IP limit", t.poll,
                     timeout=WS_HS_MS / 2000, until=lambda n: n >= 2, relay=r)
            eq(t.poll(), 2, "half-sent upgrades refused over the per-IP limit of 4")
            ws, hello = connect_live(r.ws_port, READ_TOKEN, timeout=3)
            ws.close()
            t.wait_cut(r, WS_HS_MS / 1000, 2, "the trickling upgrades")
        finally:
            t.close()
        cuts = r.log().count("its upgrade was not complete within 1000 ms")
        check(1 <= cuts <= 5, "%d deadline lines for 4 cuts (limit 5)" % cuts)
        ws = [wait_for("upgrade %d from 127.0.0.2 after the cuts" % i,
                       lambda: ws_upgrade(r.ws_port, "127.0.0.2"), timeout=5, relay=r)
              for i in range(WS_PER_IP)]
        for w in ws:
            w.abort()


if __name__ == "__main__":
    run_tests([test_bind_loopback_both_listeners, test_bind_ipv6_loopback_both_listeners,
               test_http_trickle_per_ip_limit_and_head_deadline, test_http_body_deadline,
               test_ws_per_ip_limit_frees_slots, test_ws_half_upgrades_cut_at_deadline])
