# test_live_connections.py - black-box: live-stream connections over the relay's life: ws_port 0
# picks a free port, a shutdown with clients connected, and a dead client closed by the ping
# timeout. Helpers in harness/live.py. Every wait is a protocol round trip or a bounded read;
# nothing sleeps.
import os
import threading
import time

from harness import Relay, check, eq, run_tests
from harness.live import WAIT_S, Poster, binder, check_open, cls, live, next_msg
from harness.ws_client import WsClient, WsTimeout

R = None  # the relay the file shares (bound by run_tests)


def test_ws_port_zero_picks_a_free_port():
    """ws_port 0: the relay listens on a port it picks, logs it and names it in health."""
    with Relay({"ws_port": 0}) as r:
        port = r.health().get("ws_port")
        check(isinstance(port, int) and 0 < port < 65536, "health.ws_port %r" % (port,))
        check(port != r.http_port, "ws_port equals http_port")
        check(":%d" % port in r.log(), "the log does not name port %d" % port)
        r.ws_port = port
        ws, hello = live(relay=r)
        eq(hello["role"], "read", "hello on the picked port")
        ws.close()
    eq(R.health().get("ws_port"), R.ws_port, "health.ws_port of a configured port")


def test_shutdown_with_clients_connected():
    with Relay() as r:
        a, _ = live(relay=r)
        b, _ = live(relay=r, rcvbuf=2048)   # a stuck one
        c = WsClient(r.ws_port)             # not authenticated
        p = Poster(r)
        for i in range(50):
            p.post(cls({"sd": 0.5}, info="y" * 300))
        p.close()
        r.stop()   # SIGTERM: exit 0 within the harness's bound, clean log
        for ws in (a, c):
            code, reason, msgs = ws.wait_close(WAIT_S)
            check(code is not None, "closed")
        b.abort()


def test_dead_client_closed_by_ping_timeout():
    """docs/live.md: quiet 20 s -> ping, no answer within 20 s more -> closed. A client that
    reads and answers pings stays. Takes ~45 s, so it runs only with EI_BB_LONG=1."""
    if not os.environ.get("EI_BB_LONG"):
        print("  skipped (set EI_BB_LONG=1; takes about 45 s)")
        return
    dead, _ = live()
    alive, _ = live()
    dead.auto_pong = False
    stop = threading.Event()
    alive_err = []

    def keep_reading():
        try:
            while not stop.is_set():
                try:
                    next_msg(alive, 0.5)
                except WsTimeout:
                    pass
        except Exception as e:
            alive_err.append(e)

    th = threading.Thread(target=keep_reading, daemon=True)
    th.start()
    t0 = time.monotonic()
    try:
        code, reason, msgs = dead.wait_close(60)
        t_closed = time.monotonic() - t0
        print("  the silent client was pinged %d times and closed (code %s) after %.1f s" %
              (len(dead.pings), code, t_closed))
        check(dead.pings, "no ping frame came before the close")
        check(35 <= t_closed <= 50, "closed after %.1f s (docs: 20 s + 20 s)" % t_closed)
        stop.set()
        th.join(5)
        if alive_err:
            raise alive_err[0]
        check(alive.pings, "the reading client was not pinged in %.0f s" % t_closed)
        check_open(alive, "alive")
    finally:
        stop.set()
        dead.abort()
        alive.abort()


TESTS = [
    test_ws_port_zero_picks_a_free_port,
    test_shutdown_with_clients_connected,
    test_dead_client_closed_by_ping_timeout,
]

if __name__ == "__main__":
    run_tests(TESTS, shared_relay=Relay, bind=binder(globals()))
