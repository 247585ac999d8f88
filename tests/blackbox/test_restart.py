# test_restart.py - black-box durability: every inference whose ingest was acknowledged (201)
# is still there after kill -9 (at the last ack, or in the middle of concurrent ingest) and
# after a clean SIGTERM restart, on the same database.
import threading

import json

from harness import INGEST_TOKEN, HttpConn, Relay, check, eq, free_port, new_id, now_ms, run_tests

N = 60


def relisten(relay):
    """New ports for the restart (the old ones may linger in TIME_WAIT after kill -9)."""
    relay.http_port = free_port()
    relay.ws_port = free_port()
    relay.cfg["http_port"] = relay.http_port
    relay.cfg["ws_port"] = relay.ws_port


T0 = now_ms()


def ingest_on(conn, ident, i):
    body = json.dumps({"id": ident, "ts": T0 + i,
                       "result": {"classification": {"dur": 0.5, "other": 0.25}}}).encode()
    return conn.request("POST", "/api/v1/inferences", body,
                        {"Authorization": "Bearer " + INGEST_TOKEN,
                         "Content-Type": "application/json"})


def check_all_there(relay, acked):
    """acked: {id: seq}. Every acked id is stored with its seq, once."""
    items = relay.list_all()
    by_id = {}
    for it in items:
        check(it["id"] not in by_id, "id %s listed twice" % it["id"])
        by_id[it["id"]] = it
    missing = [i for i in acked if i not in by_id]
    eq(missing, [], "acknowledged inferences lost (%d of %d)" % (len(missing), len(acked)))
    for ident, seq in acked.items():
        eq(by_id[ident]["seq"], seq, "seq of %s" % ident)
        eq(relay.get_json("/api/v1/inferences/" + ident)["id"], ident, "GET after restart")
    return by_id


def test_kill9_after_last_ack():
    with Relay() as r:
        acked = {}
        with HttpConn(r.http_port) as c:
            for i in range(N):
                ident = new_id()
                resp = ingest_on(c, ident, i)
                eq(resp.status, 201, "ingest %d" % i)
                acked[ident] = resp.json()["seq"]
        r.kill9()  # right after the last 201
        relisten(r)
        r.start()
        check_all_there(r, acked)
        eq(r.health()["db"]["rows"], N, "rows after restart")
        # the store keeps working after recovery: seq continues upwards
        v = r.ingest({"result": {"classification": {"after": 0.5}}}).json()
        check(v["seq"] > max(acked.values()), "seq after restart %d" % v["seq"])


def test_kill9_during_concurrent_ingest():
    with Relay() as r:
        acked = {}
        lock = threading.Lock()
        stop = threading.Event()
        enough = threading.Event()

        def worker(k):
            try:
                with HttpConn(r.http_port, timeout=10) as c:
                    i = 0
                    while not stop.is_set():
                        ident = new_id()
                        resp = ingest_on(c, ident, k * 100000 + i)
                        i += 1
                        if resp.status == 201:
                            with lock:
                                acked[ident] = resp.json()["seq"]
                                if len(acked) >= 150:
                                    enough.set()
            except Exception:
                pass  # the connection dies with the relay; only acked ones count

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        got = enough.wait(60)
        r.kill9()  # in the middle of ingest: requests in flight
        stop.set()
        for t in threads:
            t.join(30)
        check(got, "workers did not reach 150 acknowledged ingests (%d)" % len(acked))
        with lock:
            snapshot = dict(acked)
        relisten(r)
        r.start()
        by_id = check_all_there(r, snapshot)
        seqs = [it["seq"] for it in by_id.values()]
        eq(len(seqs), len(set(seqs)), "seq unique after recovery")


def test_sigterm_restart():
    with Relay() as r:
        acked = {}
        for i in range(N):
            ident = new_id()
            acked[ident] = r.ingest({"id": ident, "result": {"classification": {"t": 0.5}}}
                                    ).json()["seq"]
        r.stop()  # asserts exit 0, no sanitizer report
        r.start()  # same ports after a clean shutdown
        check_all_there(r, acked)
        eq(r.health()["db"]["rows"], N, "rows after restart")
        # a retry of an id acked before the restart is still a duplicate
        some = next(iter(acked))
        resp = r.ingest({"id": some, "result": {"classification": {"t": 0.5}}}, expect=200)
        eq(resp.json(), {"id": some}, "idempotent across restart (an ingest token gets the id)")
        eq(r.get_json("/api/v1/inferences/%s" % some)["seq"], acked[some], "the row kept")


TESTS = [test_kill9_after_last_ack, test_kill9_during_concurrent_ingest, test_sigterm_restart]

if __name__ == "__main__":
    run_tests(TESTS)
