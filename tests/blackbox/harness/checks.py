# checks.py - the assertions of the black-box tests and their one polling wait. A failure raises
# TestFailure (an AssertionError) with a message saying what was expected; run_tests (suite.py)
# reports it and goes on with the next test.
import subprocess
import threading
import time

WAIT_S = 20.0  # default bound of wait_for: the slowest thing a test waits on (a source start)
POLL_S = 0.05  # pause between two polls (on the relay process when one is given)


class TestFailure(AssertionError):
    pass


def check(cond, msg="check failed"):
    if not cond:
        raise TestFailure(msg)


def eq(a, b, msg=""):
    if a != b:
        raise TestFailure("%s: expected %r, got %r" % (msg or "eq", b, a))


_never = threading.Event()  # waited on between polls: a pause that is not a bare sleep


def wait_for(what, fn, timeout=WAIT_S, until=bool, relay=None):
    """Polls fn() until until(value) holds and returns that value. Each poll is a protocol
    round trip (an API call, a file read); between polls it waits POLL_S on relay's process
    when a relay is given, so a relay that exits fails the wait at once, with its log.
    Raises TestFailure naming what, the timeout and the last value after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if until(value):
            return value
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %.1f s waiting for %s (last: %.500r)" %
                              (timeout, what, value))
        proc = relay.proc if relay is not None else None
        if proc is None:
            _never.wait(POLL_S)
            continue
        try:
            proc.wait(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            continue
        raise TestFailure("relay exited with %d while waiting for %s\n%s" %
                          (proc.returncode, what, relay.log()))
