#!/usr/bin/env python3
# drain_wait.py - waits for a relay's outbox to empty (lib.sh's wait_drained, for forward.sh and
# scale.sh): polls GET /api/v1/forwarder every INTERVAL_MS over one keep-alive connection until
# its queue_depth is 0, the relay (PID) exits, or MAX_S seconds have passed since T0_MS.
# One process for the whole wait, because the drain is what is measured: the shell loop it
# replaces (curl, sed, date every 100 ms) used ~40 % of a core of this 2-core machine during
# every drain (perf sched, tests/bench/README.md "Forwarder drain, round 7") while the bare paho
# rows it is compared with ran with no poller at all, and it saw the end 100-200 ms late.
#
# Usage: drain_wait.py HOST:PORT TOKEN PID T0_MS MAX_S [INTERVAL_MS]   (INTERVAL_MS default 20)
# Prints two lines: "DRAINED <1|0> <T1_MS>" (T1_MS: wall-clock ms, as lib.sh's now_ms, of the
# answer that said 0, or of the last one), then the last answer's body (empty if none came).
# Exit status 2 when the relay exited first, 0 otherwise.
import http.client
import json
import os
import sys
import time


def now_ms():
    return time.time_ns() // 1_000_000


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    # a zombie (exited, not yet reaped by the shell) counts as gone
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main():
    if len(sys.argv) not in (6, 7):
        sys.stderr.write("usage: drain_wait.py HOST:PORT TOKEN PID T0_MS MAX_S [INTERVAL_MS]\n")
        return 1
    hostport, token, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
    t0, max_s = int(sys.argv[4]), float(sys.argv[5])
    interval = (int(sys.argv[6]) if len(sys.argv) == 7 else 20) / 1000.0
    host, port = hostport.rsplit(":", 1)
    headers = {"Authorization": "Bearer " + token}
    conn, body, done, t1, gone = None, b"", 0, now_ms(), False
    while True:
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, int(port), timeout=2)
            conn.request("GET", "/api/v1/forwarder", headers=headers)
            r = conn.getresponse()
            b = r.read()
            t1 = now_ms()
            if r.status == 200:
                body = b
                if json.loads(b).get("queue_depth") == 0:
                    done = 1
                    break
        except (OSError, http.client.HTTPException, ValueError):
            if conn is not None:
                conn.close()
            conn = None  # not listening yet, or the connection was closed: connect again
            t1 = now_ms()
        if not alive(pid):
            gone = True
            break
        if t1 - t0 >= max_s * 1000:
            break
        time.sleep(interval)
    if conn is not None:
        conn.close()
    sys.stdout.write("DRAINED %d %d\n%s\n" % (done, t1, body.decode("utf-8", "replace")))
    return 2 if gone else 0


if __name__ == "__main__":
    sys.exit(main())
