# suite.py - the runner of a black-box test file: each test function runs isolated (a failure
# is reported with its traceback and the next test runs), optionally around one relay the whole
# file shares, whose clean shutdown is checked last. Prints "N passed, N failed"; the exit code
# is what CTest reads.
import os
import sys
import time
import traceback


def _run_one(name, fn, results):
    t0 = time.monotonic()
    try:
        fn()
        results["passed"] += 1
        print("PASS %s (%.2fs)" % (name, time.monotonic() - t0), flush=True)
    except Exception:
        results["failed"].append(name)
        print("FAIL %s (%.2fs)" % (name, time.monotonic() - t0), flush=True)
        traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()


def run_tests(tests, shared_relay=None, bind=None):
    """Runs each test function, isolated: a failure is reported and the next test runs.
    shared_relay: a factory (e.g. Relay) for one relay the whole file shares; bind(relay) hands
    it to the tests. Its clean shutdown (exit 0, no sanitizer report) is checked as a last test.
    Prints "N passed, N failed" and exits non-zero on any failure. EI_BB_ONLY=substring runs
    only the matching tests."""
    only = os.environ.get("EI_BB_ONLY")
    results = {"passed": 0, "failed": []}
    relay = None
    if shared_relay is not None:
        relay = shared_relay()
        try:
            relay.start()
        except Exception:
            traceback.print_exc(file=sys.stdout)
            relay.cleanup()
            print("0 passed, %d failed" % len(tests), flush=True)
            sys.exit(1)
        bind(relay)
    try:
        for fn in tests:
            if only and only not in fn.__name__:
                continue
            _run_one(fn.__name__, fn, results)
        if relay is not None:
            _run_one("shared_relay_clean_shutdown", relay.stop, results)
    finally:
        if relay is not None:
            if results["failed"]:
                print("---- shared relay log (%s) ----\n%s\n---- end of log ----" %
                      (relay.log_path, relay.all_logs()[-30000:]), flush=True)
            relay.cleanup()
    failed = results["failed"]
    if failed:
        print("failed: " + ", ".join(failed))
    print("%d passed, %d failed" % (results["passed"], len(failed)), flush=True)
    sys.exit(1 if failed or results["passed"] == 0 else 0)

