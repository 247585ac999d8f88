# test_clock.py - age retention (cache_max_age) is clock-proof: the relay runs under a shifted
# wall clock (Debian's libfaketime, preloaded) as a gateway without an RTC does when NTP steps
# its clock. A clock set a year forward after ingest deletes no fresh row; a clock set a year
# back still deletes the rows that really are older than their age.
#
# FAKETIME_DONT_FAKE_MONOTONIC=1: a real clock step moves CLOCK_REALTIME only, never the boot
# and monotonic clocks; libfaketime would otherwise shift them too. The sanitizer build's binary
# wants its runtime first among the preloaded libraries: verify_asan_link_order=0 lets
# libfaketime in front of it (libfaketime only wraps the clock calls; ASan still sees every
# allocation).
import os
import re
import time

from harness import Relay, check, eq, run_tests, wait_for

YEAR_S = 365 * 86400


def libfaketime():
    """The preload library of Debian's libfaketime package (any architecture), or SKIP."""
    for d in ("/usr/lib", "/usr/lib64"):
        for root, _, names in os.walk(d):
            if "libfaketime.so.1" in names and root.endswith("/faketime"):
                return os.path.join(root, "libfaketime.so.1")
    print("SKIP: libfaketime is not installed (scripts/deps.sh test installs faketime)",
          flush=True)
    raise SystemExit(77)


def shifted(offset):
    """The environment that runs the relay on a wall clock shifted by offset ("+365d")."""
    asan = os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    return {"LD_PRELOAD": libfaketime(), "FAKETIME": offset,
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "ASAN_OPTIONS": asan + ":verify_asan_link_order=0"}


def metric(relay, name):
    text = relay.get("/metrics").body.decode()
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    check(m is not None, "no %s in /metrics" % name)
    return int(m.group(1))


def relay_wall_s(relay):
    """The relay's wall clock: the ts it gives an inference sent without one (ms)."""
    v = relay.ingest({"result": {"classification": {"probe": 0.5}}}).json()
    return v["ts"] / 1000.0


def check_shift(relay, offset_s):
    got = relay_wall_s(relay) - time.time()
    check(abs(got - offset_s) < 3600, "the relay's clock is off by %.0f s, not %d s: "
          "libfaketime did not take" % (got, offset_s))


def passes_after(relay, n):
    """Waits for n more completed retention passes (each reads the clock afresh)."""
    start = metric(relay, "ei_relay_retention_passes_total")
    wait_for("%d retention passes" % n,
             lambda: metric(relay, "ei_relay_retention_passes_total"),
             timeout=20, until=lambda v: v >= start + n, relay=relay)


def ingest_n(relay, n):
    for i in range(n):
        relay.ingest({"result": {"classification": {"cat": 0.5 + i / 100.0}}})


def test_clock_forward_keeps_fresh_rows():
    """Ingest at T; restart at T + 1 year (the first NTP sync of a gateway without an RTC):
    the rows are seconds old, so an hour's cache_max_age keeps them all."""
    with Relay({"cache_max_age": "1h"}) as r:
        ingest_n(r, 5)
        r.stop()
        r.env = shifted("+365d")
        r.start()
        check_shift(r, YEAR_S)
        passes_after(r, 2)
        eq(r.health()["db"]["rows"], 6, "rows kept after the clock jumped a year forward")
        eq(metric(r, "ei_relay_retention_deleted_total"), 0, "rows deleted by retention")


def test_clock_back_still_ages():
    """Ingest at T; restart with the clock a year back: the rows still go once they really are
    older than cache_max_age (a wall clock age would keep them for a year), and so do rows
    ingested on the set-back clock."""
    with Relay({"cache_max_age": "3s"}) as r:
        ingest_n(r, 5)
        r.stop()
        r.env = shifted("-365d")
        r.start()
        check_shift(r, -YEAR_S)  # the probe is a sixth row, ingested on the set-back clock
        ingest_n(r, 2)
        rows = wait_for("the rows to age out", lambda: r.health()["db"]["rows"], timeout=30,
                        until=lambda v: v == 0, relay=r)
        eq(rows, 0, "rows left")
        eq(metric(r, "ei_relay_retention_deleted_total"), 8, "rows deleted by retention")


def test_clock_step_while_running():
    """The gateway ingests before its first NTP sync (its clock a year behind), then NTP steps
    the clock of the running relay a year forward: the rows are seconds old and stay.
    libfaketime re-reads the shift from a file (at most every second), so the step happens
    under the running process, as NTP's would."""
    with Relay({"cache_max_age": "1h"}) as r:
        shift = os.path.join(r.dir, "faketime")
        with open(shift, "w") as f:
            f.write("-365d\n")
        env = shifted("-365d")
        del env["FAKETIME"]
        env.update({"FAKETIME_TIMESTAMP_FILE": shift, "FAKETIME_CACHE_DURATION": "1"})
        r.stop()
        r.env = env
        r.start()
        check_shift(r, -YEAR_S)
        ingest_n(r, 3)
        with open(shift, "w") as f:
            f.write("+0\n")
        wait_for("the relay's clock to step forward", lambda: relay_wall_s(r) - time.time(),
                 timeout=10, until=lambda d: abs(d) < 3600, relay=r)
        passes_after(r, 2)
        rows = r.health()["db"]["rows"]
        check(rows >= 5, "rows kept after the clock stepped a year forward: %d of 5 or more"
              % rows)
        eq(metric(r, "ei_relay_retention_deleted_total"), 0, "rows deleted by retention")


if __name__ == "__main__":
    run_tests([test_clock_forward_keeps_fresh_rows, test_clock_back_still_ages,
               test_clock_step_while_running])
