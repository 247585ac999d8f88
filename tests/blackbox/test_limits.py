# test_limits.py - black-box: the listeners hold against hostile LAN clients (README "Reliability
# and security", "Connections and limits"): `bind` is honoured by the HTTP and the WebSocket
# listener alike. Raw sockets; every wait is a connect, a protocol round trip or a bounded read.
import fcntl
import socket
import struct

from harness import HttpConn, Relay, check, eq, run_tests, wait_for


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


if __name__ == "__main__":
    run_tests([test_bind_loopback_both_listeners, test_bind_ipv6_loopback_both_listeners])
