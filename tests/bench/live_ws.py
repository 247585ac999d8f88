#!/usr/bin/env python3
# live_ws.py - benchmark of the live WebSocket stream (docs/live.md): N subscribers (default 100)
# on /api/v1/live while inferences are POSTed over REST at a fixed rate (default 200/s, keep-alive
# connections, a few threads) for a while (default 20 s). Prints the delivery latency from commit
# to client (the message's committed_ms against the receive time, same machine clock) p50/p99/max,
# the messages each client received (every client must get every inference), and the ingest rate
# and POST latency without subscribers (before and after) and with them.
#
# It reports: exit status 0 whenever the measurement ran, whatever the numbers (not part of
# ctest). Python 3 standard library only; the subscribers run in a few worker processes (a
# selectors loop each) so the client side does not serialize on one interpreter lock.
#
# Usage: python3 tests/bench/live_ws.py
# Environment (all optional):
#   EI_RELAY_BIN        use this ei-relay binary (otherwise a Release build in EI_BENCH_BUILD)
#   EI_BENCH_BUILD      CMake build dir for that build (default <repo>/build-bench)
#   EI_LIVE_CLIENTS     subscribers (default 100)       EI_LIVE_RATE     POSTs/s (default 200)
#   EI_LIVE_SECONDS     length of each phase (default 20)
#   EI_LIVE_PROCS       subscriber processes (default 4) EI_LIVE_POSTERS  POST threads (default 8)
#   EI_LIVE_NICE        niceness of the subscriber processes (default 10: in a deployment the
#                       subscribers are other machines; here they share the relay's 2 cores)
#   EI_BENCH_DIR        parent of the scratch directory (default: the system temp dir)
#   EI_LIVE_EXTRA       a JSON object of extra config members for the relay (for experiments;
#                       the live stream's connection limits are already raised to fit)
#   EI_LIVE_ALONE       0: skip the two phases without subscribers (default 1)
import array
import json
import multiprocessing
import os
import platform
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "blackbox"))

import harness as relay_test  # noqa: E402  (the black-box harness: the binary on free ports)
from harness.ws_client import (OP_PONG, OP_TEXT, MessageReader, build_frame,  # noqa: E402
                               connect_live)

CLIENTS = int(os.environ.get("EI_LIVE_CLIENTS", "100"))
RATE = float(os.environ.get("EI_LIVE_RATE", "200"))
SECONDS = float(os.environ.get("EI_LIVE_SECONDS", "20"))
PROCS = max(1, int(os.environ.get("EI_LIVE_PROCS", "4")))
POSTERS = max(1, int(os.environ.get("EI_LIVE_POSTERS", "8")))
NICE = int(os.environ.get("EI_LIVE_NICE", "10"))
EXTRA = json.loads(os.environ.get("EI_LIVE_EXTRA") or "{}")
ALONE = os.environ.get("EI_LIVE_ALONE", "1") != "0"
DRAIN_S = 15.0           # after the last POST, how long subscribers may take to get it
P99_TARGET_MS = 20.0     # DESIGN.md: 100 subscribers at 200 inferences/s, p99 < 20 ms
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)   # Linux: kernel receive timestamps


def log(msg):
    sys.stderr.write("[live-bench] %s\n" % msg)
    sys.stderr.flush()


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


# ------------------------------------------------------------------ the binary ---------------


def relay_binary():
    b = os.environ.get("EI_RELAY_BIN")
    if b:
        return b
    build = os.environ.get("EI_BENCH_BUILD", os.path.join(ROOT, "build-bench"))
    log("building ei-relay (Release) in %s" % build)
    subprocess.run(["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build, "-j2", "--target", "ei-relay"], check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(build, "ei-relay")


# ------------------------------------------------------------------ CPU accounting -----------


def proc_cpu_s(pid):
    """utime + stime of a process (all threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_s():
    """(busy, softirq) CPU time of the whole machine (all cores), in seconds. Softirq time
    (here mostly loopback TCP) is not charged to any process; steal is not counted as busy."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]] + [0] * 8
    tck = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / tck, v[6] / tck


def runqueue_wait_s(pid):
    """Per thread of pid: seconds spent runnable but waiting for a CPU (schedstat)."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                out[tid] = int(f.read().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            pass
    return out


class CpuMeter:
    """CPU used by each of pids, by the whole machine, and the run-queue wait of the first
    pid's threads (how long the relay was ready to run but had no CPU) over an interval."""

    def __init__(self, pids):
        self.pids = pids
        self.t0 = time.monotonic()
        self.c0 = {p: proc_cpu_s(p) for p in pids}
        self.m0 = machine_s()
        self.w0 = runqueue_wait_s(pids[0])

    def stop(self):
        dt = time.monotonic() - self.t0
        per = {p: 100.0 * (proc_cpu_s(p) - self.c0[p]) / dt for p in self.pids}
        w1 = runqueue_wait_s(self.pids[0])
        wait = sum(w1[t] - self.w0[t] for t in w1 if t in self.w0)
        self.wait_ms_per_s = 1000.0 * wait / dt
        m1 = machine_s()
        self.softirq = 100.0 * (m1[1] - self.m0[1]) / dt
        return per, 100.0 * (m1[0] - self.m0[0]) / dt


# ------------------------------------------------------------------ ingest ------------------


def load_doc():
    with open(os.path.join(HERE, "result.json"), "rb") as f:
        return f.read().strip()


def paced_ingest(relay, body, rate, seconds, threads):
    """POSTs body rate times a second for seconds, request k due at t0 + k/rate, from threads
    keep-alive connections. Returns a dict of what happened."""
    total = int(rate * seconds)
    nxt = [0]
    lock = threading.Lock()
    lat, lag, statuses, seqs, errors = [], [], {}, [], []
    head = ("POST /api/v1/inferences HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % (relay.http_port, relay_test.INGEST_TOKEN,
                                            len(body))).encode() + body
    t0 = time.monotonic() + 0.05
    done_at = [t0]

    def worker():
        conn = None
        try:
            while True:
                with lock:
                    k = nxt[0]
                    nxt[0] += 1
                if k >= total:
                    return
                due = t0 + k / rate
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)   # pacing of an open-loop load generator
                start = time.monotonic()
                if conn is None or conn.closed:
                    conn = relay.conn(timeout=30.0)
                conn.send_raw(head)
                r = conn.read_response("POST")
                end = time.monotonic()
                with lock:
                    lat.append(end - start)
                    lag.append(start - due)
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                    if r.status == 201:
                        seqs.append(json.loads(r.body)["seq"])
                    done_at[0] = max(done_at[0], end)
        except Exception as e:
            errors.append(repr(e))
        finally:
            if conn is not None:
                conn.close()

    ts = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 120)
    lat.sort()
    lag.sort()
    ok = statuses.get(201, 0)
    wall = done_at[0] - t0
    return {"total": total, "ok": ok, "statuses": statuses, "errors": errors,
            "rate": ok / wall if wall > 0 else 0.0, "wall": wall,
            "lat_p50": pct(lat, 50) * 1e3, "lat_p99": pct(lat, 99) * 1e3,
            "lat_max": (lat[-1] * 1e3) if lat else float("nan"),
            "lag_p99": pct(lag, 99) * 1e3, "seqs": seqs}


# ------------------------------------------------------------------ subscribers -------------


INFERENCE_PREFIX = b'{"type":"inference","inference":{'
SEQ_KEY = b'"seq":'
COMMITTED_KEY = b',"committed_ms":'


def fast_fields(payload):
    """(seq, committed_ms) of an inference message as the relay writes it: the view's seq is
    its first "seq" member (id comes before it, user data after), committed_ms the last."""
    i = payload.index(SEQ_KEY) + len(SEQ_KEY)
    j = payload.index(b",", i)
    k = payload.rindex(COMMITTED_KEY) + len(COMMITTED_KEY)
    return int(payload[i:j]), float(payload[k:payload.rindex(b"}")])


def subscriber_main(port, token, n, conn):
    """One worker process: n subscribers in one selectors loop. Protocol on conn (a Pipe end):
    -> ("ready", n, last_seq)  <- ("expect", first_seq, last_seq)  -> ("result", {...})
    <- ("stop",) ends it early."""
    try:
        if NICE:
            os.nice(NICE)
        clients = []
        last_seq = 0
        for _ in range(n):
            ws, hello = connect_live(port, token, timeout=30.0)
            last_seq = max(last_seq, hello["last_seq"])
            ws.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            ws.sock.setblocking(False)
            clients.append({"ws": ws, "parser": ws.parser, "reader": MessageReader(),
                            "count": 0, "prev": None, "order_errors": 0, "missed": 0,
                            "other": 0, "last": 0})
        conn.send(("ready", n, last_seq))
        sel = selectors.DefaultSelector()
        for c in clients:
            sel.register(c["ws"].sock, selectors.EVENT_READ, c)
        sel.register(conn, selectors.EVENT_READ, None)
        lat = array.array("d")    # committed_ms -> the kernel had the bytes (TCP arrival)
        lat_app = array.array("d")  # committed_ms -> this process read them
        anc_size = socket.CMSG_SPACE(16)
        checked = 0
        expect = None
        give_up = None
        running = True
        while running:
            if expect is not None:
                if all(c["last"] >= expect[1] for c in clients):
                    break
                if time.monotonic() > give_up:
                    break
            for key, _ in sel.select(0.2):
                c = key.data
                if c is None:
                    msg = conn.recv()
                    if msg[0] == "expect":
                        expect = (msg[1], msg[2])
                        give_up = time.monotonic() + DRAIN_S
                    elif msg[0] == "stop":
                        running = False
                    continue
                try:
                    data, anc, _, _ = c["ws"].sock.recvmsg(1 << 20, anc_size)
                except BlockingIOError:
                    continue
                now = time.time() * 1000.0
                # the timestamp of the newest segment in this read: for messages that came
                # in earlier segments of the same read it is late, never early
                arrived = now
                for level, typ, cdata in anc:
                    if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(cdata) >= 16:
                        sec, nsec = struct.unpack("qq", cdata[:16])
                        arrived = sec * 1000.0 + nsec / 1e6
                if not data:
                    sel.unregister(c["ws"].sock)
                    c["eof"] = True
                    continue
                p = c["parser"]
                p.feed(data)
                while True:
                    f = p.next_frame()
                    if f is None:
                        break
                    ev = c["reader"].on_frame(f)
                    if ev is None:
                        continue
                    if ev[0] == "ping":
                        c["ws"].sock.setblocking(True)
                        c["ws"].sock.sendall(build_frame(OP_PONG, ev[1]))
                        c["ws"].sock.setblocking(False)
                        continue
                    if ev[0] != "message" or ev[1] != OP_TEXT:
                        continue
                    payload = ev[2]
                    if payload.startswith(INFERENCE_PREFIX):
                        # fast path: seq and committed_ms without a full JSON parse (it
                        # costs more CPU than the rest of the client); every 64th message is
                        # parsed fully and must agree
                        seq, committed = fast_fields(payload)
                        checked += 1
                        if checked % 64 == 0:
                            m = json.loads(payload)
                            if (m["type"], m["inference"]["seq"], m["committed_ms"]) != \
                                    ("inference", seq, committed):
                                raise RuntimeError("fast parse disagrees: %r" % payload[:300])
                        t = "inference"
                        m = {"committed_ms": committed}
                    else:
                        m = json.loads(payload)
                        t = m.get("type")
                        seq = m["inference"]["seq"] if t == "inference" else None
                    if t == "inference":
                        lat.append(arrived - m["committed_ms"])
                        lat_app.append(now - m["committed_ms"])
                        c["count"] += 1
                        if c["prev"] is not None and seq != c["prev"] + 1:
                            c["order_errors"] += 1
                        c["prev"] = seq
                        c["last"] = seq
                    elif t == "missed":
                        c["missed"] += m.get("count", 0)
                    else:
                        c["other"] += 1
        conn.send(("result", {
            "counts": [c["count"] for c in clients],
            "missed": [c["missed"] for c in clients],
            "order_errors": [c["order_errors"] for c in clients],
            "eof": sum(1 for c in clients if c.get("eof")),
            "lat": lat.tobytes(), "lat_app": lat_app.tobytes()}))
        for c in clients:
            try:
                c["ws"].sock.close()
            except OSError:
                pass
    except Exception as e:  # reported by the parent
        try:
            conn.send(("error", repr(e)))
        except OSError:
            pass


def start_subscribers(relay, clients, procs):
    ctx = multiprocessing.get_context("fork")
    workers = []
    share = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    for n in share:
        if n == 0:
            continue
        a, b = ctx.Pipe()
        p = ctx.Process(target=subscriber_main, args=(relay.ws_port, relay_test.READ_TOKEN, n, b),
                        daemon=True)
        p.start()
        workers.append((p, a))
    ready = 0
    for p, a in workers:
        if not a.poll(60):
            raise RuntimeError("a subscriber process did not get ready within 60 s")
        msg = a.recv()
        if msg[0] != "ready":
            raise RuntimeError("subscriber process: %r" % (msg,))
        ready += msg[1]
    return workers, ready


def collect_subscribers(workers, first_seq, last_seq):
    for p, a in workers:
        a.send(("expect", first_seq, last_seq))
    out = {"counts": [], "missed": [], "order_errors": [], "eof": 0, "lat": array.array("d"),
           "lat_app": array.array("d")}
    for p, a in workers:
        if not a.poll(DRAIN_S + 30):
            raise RuntimeError("a subscriber process did not report")
        msg = a.recv()
        if msg[0] != "result":
            raise RuntimeError("subscriber process: %r" % (msg,))
        r = msg[1]
        for k in ("counts", "missed", "order_errors"):
            out[k] += r[k]
        out["eof"] += r["eof"]
        out["lat"].frombytes(r["lat"])
        out["lat_app"].frombytes(r["lat_app"])
        p.join(10)
    return out


# ------------------------------------------------------------------ main --------------------


def machine_line():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        rev = "?"
    return "nproc %d; %s; kernel %s; load %s; repo at %s" % (
        os.cpu_count(), cpu, platform.release(),
        open("/proc/loadavg").read().split()[:3], rev)


def ingest_row(name, r, meter, cpu, pid, sub_pids=()):
    """A table row; CPU in % of one core: the relay, this process (the POST threads), the
    subscriber processes, and everything else on the machine (other users)."""
    per, machine = cpu
    ours = per[pid] + per[os.getpid()]
    subs = sum(per[p] for p in sub_pids)
    bad = {k: v for k, v in r["statuses"].items() if k != 201}
    return ("| %s | %.1f/s (%d of %d answered 201%s%s) | p50 %.2f ms, p99 %.2f ms, max %.1f ms"
            " | relay %.0f%% (its threads waited %.0f ms/s for a CPU), posters %.0f%%%s,"
            " softirq %.0f%%, other %.0f%% |" % (
                name, r["rate"], r["ok"], r["total"], ", other: %r" % bad if bad else "",
                ", errors: %s" % r["errors"][:2] if r["errors"] else "",
                r["lat_p50"], r["lat_p99"], r["lat_max"], per[pid], meter.wait_ms_per_s,
                per[os.getpid()],
                ", subscribers %.0f%%" % subs if sub_pids else "", meter.softirq,
                max(0.0, machine - ours - subs - meter.softirq)))


def main():
    os.environ["EI_RELAY_BIN"] = relay_binary()
    scratch = tempfile.mkdtemp(prefix="ei-livebench-", dir=os.environ.get("EI_BENCH_DIR"))
    machine = machine_line()
    log("machine: " + machine)
    body = load_doc()
    # the live stream's connection limits (64, 16 per address by default) raised to fit the
    # subscribers, who all come from 127.0.0.1
    limit = max(64, CLIENTS + 16)
    relay = relay_test.Relay(dict({"log_level": "warn", "ws_max_connections": limit,
                                   "ws_max_connections_per_ip": limit}, **EXTRA),
                             workdir=scratch)
    relay.own_dir = True   # removed at the end
    rows, verdicts = [], []
    try:
        relay.start()
        pid = relay.proc.pid
        log("relay pid %d, http %d, ws %d" % (pid, relay.http_port, relay.ws_port))

        a = None
        if ALONE:
            log("phase 1: %.0f POST/s for %.0f s, no subscribers" % (RATE, SECONDS))
            m = CpuMeter([pid, os.getpid()])
            a = paced_ingest(relay, body, RATE, SECONDS, POSTERS)
            rows.append(ingest_row("1a. ingest alone", a, m, m.stop(), pid))

        log("phase 2: %d subscribers in %d processes" % (CLIENTS, PROCS))
        workers, ready = start_subscribers(relay, CLIENTS, PROCS)
        log("%d subscribers authenticated; %.0f POST/s for %.0f s" % (ready, RATE, SECONDS))
        sub_pids = [p.pid for p, _ in workers]
        m = CpuMeter([pid, os.getpid()] + sub_pids)
        b = paced_ingest(relay, body, RATE, SECONDS, POSTERS)
        cpu_b = m.stop()
        first, last = min(b["seqs"]), max(b["seqs"])
        subs = collect_subscribers(workers, first, last)
        rows.append(ingest_row("2. ingest with %d subscribers" % ready, b, m, cpu_b, pid,
                               sub_pids))

        c = None
        if ALONE:
            log("phase 3: no subscribers again")
            m = CpuMeter([pid, os.getpid()])
            c = paced_ingest(relay, body, RATE, SECONDS, POSTERS)
            rows.append(ingest_row("1b. ingest alone (again)", c, m, m.stop(), pid))
        health = relay.health()
        relay.stop()
    finally:
        relay.cleanup()

    expected = b["ok"]
    lat = sorted(subs["lat"])
    lat_app = sorted(subs["lat_app"])
    counts = subs["counts"]
    full = sum(1 for n in counts if n == expected)
    print()
    print("ei-relay live stream benchmark, %s" % time.strftime("%Y-%m-%d %H:%M:%S %z"))
    print("machine: " + machine)
    print("load: %d subscribers (%d processes), %.0f POST/s of a %d B classification for %.0f s, "
          "%d keep-alive POST threads, db_synchronous=full; subscribers at nice %d" % (
              ready, PROCS, RATE, len(body), SECONDS, POSTERS, NICE))
    print()
    print("| run | ingest rate | POST latency | CPU (% of one core) |")
    print("|---|---|---|---|")
    for r in rows:
        print(r)
    print()
    print("| delivery (commit -> client) | value |")
    print("|---|---|")
    print("| messages measured | %d (%d clients x %d inferences = %d expected) |" % (
        len(lat), ready, expected, ready * expected))
    print("| commit -> arrival at the client socket (kernel timestamp): p50 / p90 / p99 / p99.9"
          " / max | %.2f / %.2f / %.2f / %.2f / %.2f ms |" % (
              pct(lat, 50), pct(lat, 90), pct(lat, 99), pct(lat, 99.9),
              lat[-1] if lat else float("nan")))
    print("| commit -> read by the Python client: p50 / p90 / p99 / p99.9 / max | "
          "%.2f / %.2f / %.2f / %.2f / %.2f ms |" % (
              pct(lat_app, 50), pct(lat_app, 90), pct(lat_app, 99), pct(lat_app, 99.9),
              lat_app[-1] if lat_app else float("nan")))
    print("| received per client min / max | %d / %d |" % (min(counts), max(counts)))
    print("| clients with every inference | %d of %d |" % (full, ready))
    print("| missed (announced) total | %d |" % sum(subs["missed"]))
    print("| seq order errors | %d |" % sum(subs["order_errors"]))
    print("| connections ended early | %d |" % subs["eof"])
    print("| relay health after | %s, %d rows |" % (health["status"], health["db"]["rows"]))
    print()
    verdicts.append(("delivery p99 (to the client socket), %d subscribers at %.0f/s" % (
        ready, RATE),
                     "%.2f ms" % pct(lat, 99), "< %.0f ms" % P99_TARGET_MS,
                     "PASS" if lat and pct(lat, 99) < P99_TARGET_MS else "BELOW"))
    verdicts.append(("every client got every inference", "%d of %d" % (full, ready),
                     "all", "PASS" if full == ready == CLIENTS else "FAIL"))
    if ALONE:
        alone = (a["rate"] + c["rate"]) / 2
        verdicts.append(("ingest with subscribers / alone (mean of 1a, 1b)",
                         "%.1f / %.1f /s = %.1f %%" % (b["rate"], alone,
                                                       100.0 * b["rate"] / alone),
                         ">= 99 % (no drop)",
                         "PASS" if b["rate"] >= 0.99 * alone and b["ok"] == b["total"]
                         else "BELOW"))
        verdicts.append(("POST p99 with subscribers / alone (mean)",
                         "%.2f / %.2f ms" % (b["lat_p99"], (a["lat_p99"] + c["lat_p99"]) / 2),
                         "-", "-"))
    print("| target | measured | goal | verdict |")
    print("|---|---|---|---|")
    for v in verdicts:
        print("| %s | %s | %s | %s |" % v)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
