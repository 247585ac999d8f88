# test_limits.py - black-box: the listeners hold against hostile LAN clients (README "Reliability
# and security", "Connections and limits"): `bind` is honoured by the HTTP and the WebSocket
# listener alike; an HTTP request's head and body have absolute deadlines (a client trickling
# bytes is cut); one address cannot take every connection; the lines this writes to the log are
# rate-limited. Raw sockets; every wait is a connect, a protocol round trip or a bounded poll.
import fcntl
import select
import socket
import struct
import threading
import time

from harness import INGEST_TOKEN, HttpConn, Relay, check, eq, run_tests, wait_for


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
            wait_for("the trickling connections cut at the head deadline", t.poll,
                     timeout=HEAD_MS / 1000 + 3, until=lambda n: n == 40, relay=r)
            held = sorted(v for i, v in t.closed_at.items())[8:]
            check(held[0] >= HEAD_MS / 1000 - 0.5,
                  "a held connection was cut after %.2f s, before the deadline" % held[0])
            check(held[-1] <= HEAD_MS / 1000 + 1.5, "cut only after %.2f s" % held[-1])
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


if __name__ == "__main__":
    run_tests([test_bind_loopback_both_listeners, test_bind_ipv6_loopback_both_listeners,
               test_http_trickle_per_ip_limit_and_head_deadline, test_http_body_deadline])
