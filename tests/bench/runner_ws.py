#!/usr/bin/env python3
# runner_ws.py - end-to-end benchmark of the runner-ws source: the runner stand-in
# (tests/blackbox/harness/runner_stub.py) plays a fast edge-impulse-linux-runner that sends N
# classifications (optionally each with a small JPEG camera-preview before it) as fast as the
# relay reads them; the relay (a Release build) stores every one. Measured from the first byte
# sent until GET /api/v1/sources shows the source's `inferences` = N (parsed and handed to the
# store) and GET /api/v1/health shows db.rows = N (committed). Prints inferences/s, the relay's
# CPU and RSS. It reports: exit 0 whenever it measured, whatever the numbers; not part of ctest.
# See tests/bench/README.md.
#
# Usage: tests/bench/runner_ws.py [--n 20000] [--images] [--sync full|normal]
# Environment: EI_RELAY_BIN (the binary), else EI_BENCH_BUILD (a build dir, default
#   <repo>/build-bench, configured Release and built here unless --no-build);
#   EI_BENCH_DIR (parent of the scratch dir, default the system temp dir).
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "blackbox"))
os.environ.setdefault("EI_TEST_SOURCE_DIR", ROOT)

import harness as relay_test  # noqa: E402  (raw HTTP client, JPEG maker, free ports)
from harness import runner_stub  # noqa: E402

TOKEN = "bench-admin-token-0123456789"
CHUNK = 256 * 1024  # bytes handed to the socket per write


def log(msg):
    sys.stderr.write("[runner-ws bench] %s\n" % msg)
    sys.stderr.flush()


def relay_binary(args):
    b = os.environ.get("EI_RELAY_BIN")
    if b:
        return b, "EI_RELAY_BIN"
    build = os.environ.get("EI_BENCH_BUILD") or os.path.join(ROOT, "build-bench")
    if not args.no_build:
        log("building ei-relay (Release) in %s" % build)
        subprocess.run(["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", build, "-j2", "--target", "ei-relay"], check=True,
                       stdout=subprocess.DEVNULL)
    btype = "?"
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("CMAKE_BUILD_TYPE:"):
                    btype = line.split("=", 1)[1].strip() or "(none)"
    except OSError:
        pass
    return os.path.join(build, "ei-relay"), "build dir, CMAKE_BUILD_TYPE=" + btype


def proc_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "RssAnon", "Threads"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def proc_cpu_s(pid):
    """utime + stime of a process (all threads), seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def thread_cpu_s(pid):
    """{thread name (tid): utime + stime seconds} for every thread of a process."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                text = f.read()
            name = text[text.index("(") + 1:text.rindex(")")]
            fields = text.rsplit(")", 1)[1].split()
            out["%s (%s)" % (name, tid)] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            pass
    return out


def get_json(port, path):
    r = relay_test.http_request(port, "GET", path, token=TOKEN, timeout=5.0)
    if r.status != 200:
        raise RuntimeError("GET %s: %d %r" % (path, r.status, r.body[:200]))
    return r.json()


def source_status(port):
    for s in get_json(port, "/api/v1/sources")["sources"]:
        if s["name"] == "bench":
            return s
    raise RuntimeError("source not listed")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=int(os.environ.get("EI_RW_N", "20000")))
    ap.add_argument("--images", action="store_true",
                    help="a small JPEG camera-preview before each classification")
    ap.add_argument("--sync", choices=("full", "normal"), default="full",
                    help="the relay's db_synchronous (default full, durable)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--timeout", type=float, default=0,
                    help="seconds to wait for N stored (default max(60, N/200))")
    args = ap.parse_args()
    n = max(1, args.n)
    timeout = args.timeout or max(60.0, n / 200.0)
    binary, how = relay_binary(args)
    if not os.path.exists(binary):
        log("no ei-relay binary at %s" % binary)
        return 1

    # ---- the messages, built before the clock starts ----
    frames = []  # pre-encoded WebSocket frames, in send order
    jpegs = [relay_test.make_jpeg(96, 96, noise=4, seed=s) for s in range(16)]
    preview_frames = [runner_stub.text_frame(runner_stub.js_json(
        {"type": "camera-preview", "image": runner_stub.data_url(j)})) for j in jpegs]
    for i in range(n):
        a = 0.05 + (i % 1000) * 0.0009
        msg = {"type": "classification",
               "result": {"classification": {"left": a, "center": 0.5, "right": 0.45 - a}},
               "timeMs": 2}
        if args.images:
            frames.append(preview_frames[i % len(preview_frames)])
        frames.append(runner_stub.text_frame(runner_stub.js_json(msg)))
    chunks, cur = [], []
    size = 0
    for f in frames:
        cur.append(f)
        size += len(f)
        if size >= CHUNK:
            chunks.append(b"".join(cur))
            cur, size = [], 0
    if cur:
        chunks.append(b"".join(cur))
    total_bytes = sum(len(c) for c in chunks)
    jpeg_bytes = sum(len(j) for j in jpegs) // len(jpegs)

    work = tempfile.mkdtemp(prefix="ei-rw-bench-", dir=os.environ.get("EI_BENCH_DIR"))
    stub = runner_stub.RunnerStub(hello="classification")
    relay = None
    try:
        http_port = relay_test.free_port()
        ws_port = relay_test.free_port()
        cfg = {"http_port": http_port, "ws_port": ws_port, "bind": "127.0.0.1",
               "db_path": os.path.join(work, "ei-relay.db"), "log_level": "info",
               "db_synchronous": args.sync, "cache_max_age": 0,
               "tokens": [{"token": TOKEN, "role": "admin"}],
               "allow_root": os.geteuid() == 0,  # refused otherwise
               "sources": json.dumps([{"name": "bench", "kind": "runner-ws", "url": stub.url,
                                       "images": bool(args.images)}])}
        cfg_path = os.path.join(work, "config.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        env = {k: v for k, v in os.environ.items() if not k.startswith("EI_RELAY_")}
        logf = open(os.path.join(work, "relay.log"), "wb")
        relay = subprocess.Popen([binary, "--config", cfg_path], stdout=logf,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=work,
                                 env=env)
        logf.close()
        conn = stub.wait_client(20.0)
        if args.images:
            conn.wait_received(1, 20.0)  # set-camera-preview: previews are wanted
        deadline = time.monotonic() + 20.0
        while True:  # the hello processed: the source is running with its model
            try:
                st = source_status(http_port)
                if st["state"] == "running" and st["model"] is not None:
                    break
            except (OSError, RuntimeError, relay_test.ConnectionClosed):
                pass
            if time.monotonic() > deadline or relay.poll() is not None:
                log("the relay did not come up (see %s/relay.log)" % work)
                return 1
            time.sleep(0.05)
        idle = proc_status(relay.pid)

        # ---- the run ----
        cpu0, stub_cpu0 = proc_cpu_s(relay.pid), time.process_time()
        threads0 = thread_cpu_s(relay.pid)
        t0 = time.monotonic()
        for c in chunks:
            if not conn.send_raw(c):
                log("the relay closed the connection during the run")
                break
        t_sent = time.monotonic()
        t_parsed = t_stored = None
        parsed = rows = 0
        end = t0 + timeout
        while time.monotonic() < end:
            if t_parsed is None:
                parsed = source_status(http_port)["inferences"]
                if parsed >= n:
                    t_parsed = time.monotonic()
            rows = get_json(http_port, "/api/v1/health")["db"]["rows"]
            if rows >= n:
                t_stored = time.monotonic()
                if t_parsed is None:
                    t_parsed = t_stored
                break
            time.sleep(0.01)
        cpu = proc_cpu_s(relay.pid) - cpu0
        stub_cpu = time.process_time() - stub_cpu0
        threads1 = thread_cpu_s(relay.pid)
        peak = proc_status(relay.pid)
        st = source_status(http_port)

        # ---- report ----
        print("runner-ws end-to-end: %d classifications%s, relay %s (%s), db_synchronous %s"
              % (n, " each with a %d B JPEG preview" % jpeg_bytes if args.images else "",
                 binary, how, args.sync))
        print("sent %d WebSocket frames, %.1f MB, in %.0f ms (the stub's writes; TCP "
              "back-pressure from the relay included)"
              % (len(frames), total_bytes / 1e6, (t_sent - t0) * 1000))
        if t_parsed is not None:
            print("parsed:  source inferences = %d after %.0f ms -> %.0f inferences/s"
                  % (n, (t_parsed - t0) * 1000, n / (t_parsed - t0)))
        else:
            print("parsed:  only %d of %d within %.0f s" % (parsed, n, timeout))
        if t_stored is not None:
            el = t_stored - t0
            print("stored:  db rows = %d after %.0f ms -> %.0f inferences/s"
                  % (rows, el * 1000, n / el))
            print("CPU during the run: relay %.0f%%, stub %.0f%% of one core"
                  % (100 * cpu / el, 100 * stub_cpu / el))
            busy = sorted(((threads1[k] - threads0.get(k, 0.0), k) for k in threads1),
                          reverse=True)
            print("relay threads: " + ", ".join("%s %.0f%%" % (k, 100 * v / el)
                                                for v, k in busy[:4] if v > 0))
        else:
            print("stored:  only %d of %d within %.0f s" % (rows, n, timeout))
        print("source: inferences %d, messages %d, frames %d, frames_paired %d, rejected %d, "
              "unknown %d, reconnects %d"
              % (st["inferences"], st["messages"], st["frames"], st["frames_paired"],
                 st["rejected"], st["unknown"], st["reconnects"]))
        print("relay RSS: idle %.1f MB, after the run %.1f MB, peak (VmHWM) %.1f MB; "
              "RssAnon after %.1f MB"
              % (idle.get("VmRSS", 0) / 1024, peak.get("VmRSS", 0) / 1024,
                 peak.get("VmHWM", 0) / 1024, peak.get("RssAnon", 0) / 1024))
        print("machine: nproc %d, load average before stop %s"
              % (os.cpu_count() or 0, open("/proc/loadavg").read().split()[:3]))
        return 0
    finally:
        if relay is not None and relay.poll() is None:
            relay.send_signal(signal.SIGTERM)
            try:
                code = relay.wait(timeout=20)
                if code != 0:
                    log("the relay exited with %d" % code)
            except subprocess.TimeoutExpired:
                relay.kill()
                relay.wait()
                log("the relay did not stop within 20 s of SIGTERM (killed)")
        stub.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
