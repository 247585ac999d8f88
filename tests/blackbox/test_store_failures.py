# test_store_failures.py - no silent loss from any source while the store cannot write: another
# process holds the database's write lock (python sqlite3 BEGIN EXCLUSIVE) longer than the
# relay's busy timeout (db_busy_timeout_ms: 0.5 s here, so each lock period is short; 5 s by
# default), so every commit fails with SQLITE_BUSY. With the runner stand-in,
# the AT device stand-in and the fake eim model: health turns degraded with the reason, each
# source holds what it made (reading paused) and retries, and once the lock is let go every
# inference is stored, in order, none lost, none twice, and health is ok again. A stop while
# holding exits cleanly in bounded time. (Disk full, the same path: test_diskfull.py.)
import contextlib
import os
import sqlite3
import sys
import time

from harness import (Relay, check, eq, run_tests, runner_source, source_dir, source_status,
                     sources_cfg, stored, wait_for, wait_status, wait_stored)
from harness.at_device import RESULTS, AtDevice
from harness.runner_stub import RunnerStub

BUSY_MS = 500  # the relay's busy timeout here (db_busy_timeout_ms; the default is 5000)
FAIL_S = 30.0  # the first failure needs one busy timeout; retries back off up to 5 s


def relay_with(srcs):
    """A relay reading these sources, its commits waiting BUSY_MS for another process's lock."""
    return Relay(dict(sources_cfg(srcs), db_busy_timeout_ms=BUSY_MS))


@contextlib.contextmanager
def write_lock(path):
    """Holds the database's write lock, as an `ei-relay import` on the live file would."""
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    db.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        db.execute("ROLLBACK")
        db.close()


def wait_degraded(r):
    h = wait_for("health degraded while the database is locked", r.health, FAIL_S,
                 until=lambda h: h["status"] == "degraded", relay=r)
    check(h["checks"]["store"].startswith(
        "writes failing: database locked by another process (SQLITE_BUSY) since "),
        "checks.store: %r" % h["checks"])
    eq(h["reason"], h["checks"]["store"], "the reason is the failing check")
    eq(h["db"]["writes_failing"]["reason"],
       "database locked by another process (SQLITE_BUSY)", "db.writes_failing")
    return h


def wait_ok(r):
    h = wait_for("health ok once the lock is gone", r.health, FAIL_S,
                 until=lambda h: h["status"] == "ok", relay=r)
    eq(h["checks"]["store"], "ok", "checks.store after")
    check("writes_failing" not in h["db"], "db.writes_failing gone: %r" % h["db"])


def metric(r, name):
    for line in r.get("/metrics").body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def scores(i):
    return {"a": round(i / 1000.0, 3), "b": round(1 - i / 1000.0, 3)}


def test_runner_holds_and_retries():
    with RunnerStub(hello="classification") as stub:
        with relay_with([runner_source(stub.port, images=False)]) as r:
            stub.wait_client()
            sent = 0
            for _ in range(5):
                stub.classify({"classification": scores(sent)})
                sent += 1
            wait_stored(r, "cam", sent)
            with write_lock(r.db_path):
                for _ in range(10):  # made while nothing can be written
                    stub.classify({"classification": scores(sent)})
                    sent += 1
                wait_degraded(r)
                st = wait_status(r, "cam", "holding, retrying", lambda s: s["store_retries"] > 0)
                check(st["held"] >= 1, "held while failing: %r" % st)
                check(st["last_error"] and st["last_error"].startswith("store: "),
                      "last_error names the store: %r" % st["last_error"])
                eq(metric(r, "ei_relay_store_writes_failing"), 1.0, "gauge while failing")
            for _ in range(5):
                stub.classify({"classification": scores(sent)})
                sent += 1
            items = wait_stored(r, "cam", sent, timeout=FAIL_S)
            eq([it["result"]["classification"] for it in items],
               [scores(i) for i in range(sent)], "every inference, in order, once")
            wait_ok(r)
            st = source_status(r, "cam")
            eq((st["held"], st["store_refused"]), (0, 0), "after")
            eq(metric(r, "ei_relay_store_writes_failing"), 0.0, "gauge after")
            check(metric(r, "ei_relay_store_write_failures_total") >= 1, "failures counted")


def test_serial_at_device_holds_and_retries():
    dev = AtDevice(interval_s=0.05)
    try:
        with relay_with([{"name": "mcu", "kind": "serial", "device": dev.device}]) as r:
            wait_stored(r, "mcu", 3, exact=False)
            with write_lock(r.db_path):
                wait_degraded(r)
                wait_status(r, "mcu", "holding", lambda s: s["held"] >= 1)
                paused_at = dev.windows
                time.sleep(0.5)  # not a wait for an event: proof the device is not read
                check(dev.windows - paused_at <= 60,  # a pty's buffer, not 0.5 s of windows
                      "the device kept printing (%d windows) while nothing was read" %
                      (dev.windows - paused_at))
            wait_ok(r)
            target = dev.windows + 3
            items = wait_for("the device's windows stored", lambda: stored(r, "mcu"), FAIL_S,
                             until=lambda it: len(it) >= target, relay=r)
            for i, it in enumerate(items):
                want_scores, want_anomaly = RESULTS[i % len(RESULTS)]
                eq((it["result"]["classification"], it["result"]["anomaly"]),
                   (want_scores, want_anomaly), "window %d: in order, none lost" % i)
            eq(len({it["id"] for it in items}), len(items), "none stored twice")
            check(source_status(r, "mcu")["store_retries"] > 0, "retries counted")
    finally:
        dev.close()


def test_stop_while_holding():
    """SIGTERM while the store fails and a source holds: a clean exit in bounded time; what was
    held is dropped with a log line saying so."""
    with RunnerStub(hello="classification") as stub:
        r = relay_with([runner_source(stub.port, images=False)])
        with r:
            stub.wait_client()
            stub.classify({"classification": scores(1)})
            wait_stored(r, "cam", 1)
            with write_lock(r.db_path):
                for i in range(3):
                    stub.classify({"classification": scores(2 + i)})
                wait_status(r, "cam", "holding", lambda s: s["store_retries"] > 0, FAIL_S)
                t0 = time.monotonic()
                r.stop()  # asserts exit code 0
                took = time.monotonic() - t0
            check(took < 15.0, "stop took %.1f s" % took)
            check("not stored" in r.log(), "the log says what was dropped")


def eim_model():
    """The fake eim model as a model file (as test_sources_eim.py's Model)."""
    import tempfile
    d = tempfile.mkdtemp(prefix="ei-eim-")
    path = os.path.join(d, "model.eim")
    fake = os.path.join(source_dir(), "tests", "eim", "fake_eim.py")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec '%s' '%s' \"$@\"\n" % (sys.executable, fake))
    os.chmod(path, 0o755)
    return path


def test_eim_holds_and_retries():
    ball = ("videotestsrc pattern=ball is-live=true ! video/x-raw,width=160,height=120,"
            "framerate=10/1 ! jpegenc")
    src = {"name": "cam", "kind": "eim", "model_file": eim_model(), "gst_launch_args": ball}
    with relay_with([src]) as r:
        wait_stored(r, "cam", 3, timeout=FAIL_S, exact=False)
        with write_lock(r.db_path):
            wait_degraded(r)
            wait_status(r, "cam", "holding", lambda s: s["held"] >= 1)
        wait_ok(r)
        # every inference the model made during the failure is stored once, in the order made
        made = source_status(r, "cam")["inferences"]
        wait_for("the %d inferences made so far stored" % made, lambda: stored(r, "cam"), FAIL_S,
                 until=lambda it: len(it) >= made, relay=r)
        st = source_status(r, "cam")
        r.stop()  # the relay is stopped: the file holds what it stored
        check("not stored" not in r.log(), "nothing dropped at the stop")
        db = sqlite3.connect(r.db_path)
        rows = db.execute("SELECT guid, ts FROM inference WHERE source = 'cam' ORDER BY seq")\
            .fetchall()
        db.close()
        check(len(rows) >= st["inferences"], "stored %d of %d made" % (len(rows), st["inferences"]))
        eq(len({g for g, _ in rows}), len(rows), "none stored twice")
        eq([t for _, t in rows], sorted(t for _, t in rows), "stored in the order made")
        check(st["store_retries"] > 0, "retries counted")


if __name__ == "__main__":
    run_tests([test_runner_holds_and_retries, test_serial_at_device_holds_and_retries,
               test_stop_while_holding, test_eim_holds_and_retries])
