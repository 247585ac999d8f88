#!/usr/bin/env python3
# eim.py - issue 11's benchmark: ei-relay running an Edge Impulse Linux model itself (an `eim`
# source) against what users run today, the real edge-impulse-linux-runner with ei-relay reading
# its preview WebSocket (a `runner-ws` source); the same model (the stand-in
# tests/eim/fake_eim.py, same FAKE_EIM_* settings), the same 320x240 10 fps videotestsrc camera,
# one after the other in one run on the same machine. For each setup, after a warm-up, over a
# measured window: inferences stored per second, CPU per inference (utime + stime from /proc of
# every process of the setup; the model process apart, since it is the same on both sides), and
# memory (VmRSS of each process at the end of the window, VmHWM). Prints a table. It reports:
# exit 0 whenever it measured, whatever the numbers; not part of ctest. See tests/bench/README.md.
#
# Usage: tests/bench/eim.py [--no-build]
# Environment (all optional):
#   EI_BENCH_SECONDS  measured window per setup, seconds (default 30)
#   EI_BENCH_WARMUP   warm-up before the window, seconds (default 5)
#   EI_RUNNER_DIR     where edge-impulse-linux is installed (the directory holding
#                     node_modules/edge-impulse-linux): npm `edge-impulse-linux` 1.25.2, with its
#                     sharp built against Debian's libvips (`npm install --ignore-scripts`, then
#                     node-gyp in node_modules/sharp). Unset: only the relay alone is measured.
#   EI_RELAY_BIN, EI_BENCH_BUILD, EI_BENCH_DIR  as in runner_ws.py (binary, Release build dir,
#                     parent of the scratch dir)
#   FAKE_EIM_*        the stand-in model's settings (tests/eim/README.md); defaults below
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import runner_ws  # noqa: E402  (Release build of the relay, /proc readers, harness on the path)
from harness import Relay, TestFailure, free_port, runner_source, sources_cfg  # noqa: E402

PIPELINE = ("videotestsrc is-live=true pattern=ball ! "
            "video/x-raw,width=320,height=240,framerate=10/1 ! jpegenc")
MODEL_ENV = {"FAKE_EIM_WIDTH": "96", "FAKE_EIM_HEIGHT": "96", "FAKE_EIM_CHANNELS": "3",
             "FAKE_EIM_LATENCY_MS": "0"}  # defaults; the caller's FAKE_EIM_* win
READY_S = 60.0  # the setup's first stored inference (the runner's start takes a few seconds)
TICK = os.sysconf("SC_CLK_TCK")


def log(msg):
    sys.stderr.write("[eim bench] %s\n" % msg)
    sys.stderr.flush()


# ---- /proc: the processes of a setup ----

def proc_table():
    """{pid: (ppid, comm, cpu seconds, start ticks)} of every process on the machine."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                text = f.read()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        out[int(d)] = (int(fields[1]), comm, (int(fields[11]) + int(fields[12])) / TICK,
                       int(fields[19]))
    return out


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def pss_kb(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def machine_busy_s():
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / TICK  # minus idle and iowait


class Tracker:
    """The processes of one setup: the roots and all their descendants, polled every TICK_S so
    processes that start or end inside the window are counted (a process ending between two
    polls loses at most its last poll interval)."""

    def __init__(self, roots):
        self.roots = roots  # {pid: role}
        self.seen = {}  # (pid, start ticks) -> {"role", "name", "cpu0", "cpu", "rss", "hwm"}
        self.t0 = None

    def role(self, pid, comm):
        if pid in self.roots:
            return self.roots[pid]
        line = cmdline(pid)
        if "fake_eim" in line:
            return "model"
        if comm.startswith("gst-launch"):
            return "gst-launch-1.0"
        if comm == "sh" and "gst-launch" in line:
            return "sh -c around gst-launch-1.0"
        return "other (%s)" % comm

    def members(self, table):
        found = set(p for p in self.roots if p in table)
        grew = True
        while grew:
            grew = False
            for pid, (ppid, _, _, _) in table.items():
                if ppid in found and pid not in found:
                    found.add(pid)
                    grew = True
        return found

    def poll(self, start=False):
        table = proc_table()
        for pid in self.members(table):
            ppid, comm, cpu, st = table[pid]
            key = (pid, st)
            ent = self.seen.get(key)
            if ent is None:
                ent = self.seen[key] = {"role": self.role(pid, comm), "name": comm,
                                        "cpu0": cpu if (start or self.t0 is None) else 0.0}
            ent["cpu"] = cpu
            status = runner_ws.proc_status(pid)
            ent["rss"] = status.get("VmRSS", 0)
            ent["hwm"] = max(ent.get("hwm", 0), status.get("VmHWM", 0))
            ent["alive"] = True
        if start:
            self.t0 = time.monotonic()
            for ent in self.seen.values():
                ent["cpu0"] = ent["cpu"]

    def finish(self):
        """PSS of every process alive at the end (shared pages counted once over the machine)."""
        for (pid, _), ent in self.seen.items():
            ent["pss"] = pss_kb(pid) if ent["alive"] else 0

    def mark_dead(self):
        for ent in self.seen.values():
            ent["alive"] = False

    def by_role(self):
        """{role: {"cpu", "rss" (alive at the end), "hwm", "n"}}."""
        out = {}
        for ent in self.seen.values():
            r = out.setdefault(ent["role"], {"cpu": 0.0, "rss": 0, "pss": 0, "hwm": 0, "n": 0})
            r["cpu"] += ent["cpu"] - ent["cpu0"]
            r["rss"] += ent["rss"] if ent["alive"] else 0
            r["pss"] += ent.get("pss", 0)
            r["hwm"] += ent["hwm"]
            r["n"] += 1
        return out


# ---- a setup: started, warmed up, measured ----

def stored_rows(relay):
    return relay.get_json("/api/v1/health")["db"]["rows"]


def wait_first(relay, name, what, procs):
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        for p, pname in procs:
            if p.poll() is not None:
                raise RuntimeError("%s exited with %d" % (pname, p.returncode))
        try:
            if stored_rows(relay) > 0:
                return
        except (OSError, TestFailure):
            pass
        time.sleep(0.2)
    raise RuntimeError("%s: no inference stored within %.0f s" % (what, READY_S))


def source_counters(relay, name):
    for s in relay.get_json("/api/v1/sources")["sources"]:
        if s["name"] == name:
            return s
    return {}


def measure(what, relay, name, roots, procs, warmup, seconds):
    """Warm-up, then the window; returns the setup's figures."""
    wait_first(relay, name, what, procs)
    log("%s: first inference stored; warm-up %.0f s" % (what, warmup))
    time.sleep(warmup)
    tr = Tracker(roots)
    rows0, src0, busy0 = stored_rows(relay), source_counters(relay, name), machine_busy_s()
    threads0 = runner_ws.thread_cpu_s(relay.proc.pid)
    tr.poll(start=True)
    t_end = tr.t0 + seconds
    while True:
        left = t_end - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(0.5, left))
        tr.mark_dead()
        tr.poll()
    el = time.monotonic() - tr.t0
    tr.finish()
    threads1 = runner_ws.thread_cpu_s(relay.proc.pid)
    threads = sorted(((threads1[k] - threads0.get(k, 0.0), k) for k in threads1), reverse=True)
    busy = machine_busy_s() - busy0
    rows1, src1 = stored_rows(relay), source_counters(relay, name)
    counters = {k: src1[k] - src0.get(k, 0) for k in src1
                if isinstance(src1[k], int) and not isinstance(src1[k], bool)}
    return {"what": what, "elapsed": el, "stored": rows1 - rows0, "roles": tr.by_role(),
            "machine_busy": busy, "counters": counters, "state": src1.get("state"),
            "threads": [(k, 100 * v / el) for v, k in threads[:6] if v > 0]}


def model_file(work):
    """A two-line model file that starts the stand-in with the interpreter itself (a version
    manager's python3 shim would add its own start-up to every model start)."""
    path = os.path.join(work, "model.eim")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec '%s' -S '%s' \"$@\"\n"
                % (sys.executable, os.path.join(runner_ws.ROOT, "tests", "eim", "fake_eim.py")))
    os.chmod(path, 0o755)
    return path


def relay_config(sources):
    cfg = sources_cfg(sources)
    cfg.update({"log_level": "warn"})
    return cfg


def setup_relay_alone(work, model, warmup, seconds):
    relay = Relay(relay_config([{"name": "cam", "kind": "eim", "model_file": model,
                                 "gst_launch_args": PIPELINE, "images": True}]),
                  workdir=os.path.join(work, "alone"))
    os.makedirs(relay.dir, exist_ok=True)
    try:
        relay.start()
    except Exception as e:  # noqa: BLE001 (a relay without the eim source refuses the config)
        first = str(e).split("\n", 2)[1:2] or [str(e)]
        raise RuntimeError("the relay did not start with an eim source: %s" % first[0])
    try:
        return measure("ei-relay alone (eim)", relay, "cam", {relay.proc.pid: "ei-relay"},
                       [(relay.proc, "ei-relay")], warmup, seconds)
    finally:
        relay.stop()


def setup_runner(work, model, runner_dir, warmup, seconds):
    runner_js = os.path.join(runner_dir, "node_modules", "edge-impulse-linux", "build", "cli",
                             "linux", "runner.js")
    if not os.path.exists(runner_js):
        raise RuntimeError("EI_RUNNER_DIR has no %s" % os.path.relpath(runner_js, runner_dir))
    home = os.path.join(work, "runner-home")
    os.makedirs(home, exist_ok=True)
    port = free_port()
    env = dict(os.environ, HOME=home)
    logf = open(os.path.join(work, "runner.log"), "wb")
    runner = subprocess.Popen(["node", runner_js, "--model-file", model, "--gst-launch-args",
                               PIPELINE, "--preview-port", str(port), "--preview-host",
                               "127.0.0.1"], stdout=logf, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, cwd=home, env=env,
                              start_new_session=True)
    logf.close()
    relay = Relay(relay_config([runner_source(port, name="runner", images=True)]),
                  workdir=os.path.join(work, "with-runner"))
    os.makedirs(relay.dir, exist_ok=True)
    try:
        relay.start()
        return measure("edge-impulse-linux-runner + ei-relay (runner-ws)", relay, "runner",
                       {relay.proc.pid: "ei-relay", runner.pid: "runner (node)"},
                       [(relay.proc, "ei-relay"), (runner, "the runner")], warmup, seconds)
    except RuntimeError:
        with open(os.path.join(work, "runner.log"), "rb") as f:
            log("runner log (end):\n" + f.read()[-1500:].decode("utf-8", "replace"))
        raise
    finally:
        relay.stop()
        if runner.poll() is None:  # SIGINT as a terminal would; the runner stops its model
            os.killpg(runner.pid, signal.SIGINT)
            try:
                runner.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(runner.pid, signal.SIGKILL)
                runner.wait()


# ---- report ----

def mb(kb):
    return "%.1f" % (kb / 1024.0)


def totals(res, with_model):
    """{"cpu", "rss", "pss", "hwm"} summed over the setup's processes (the model's or not)."""
    roles = [r for k, r in res["roles"].items() if with_model or k != "model"]
    return {k: sum(r[k] for r in roles) for k in ("cpu", "rss", "pss", "hwm")}


def row(tag, what, rate, r, el, n):
    per = "%.2f" % (1000 * r["cpu"] / n) if n else "-"
    return "| %s | %s | %s | %.1f | %s | %s | %s | %s |" % (
        tag, what, rate, 100 * r["cpu"] / el, per, mb(r["rss"]), mb(r["pss"]), mb(r["hwm"]))


def goal_rows(a, b):
    """The issue's goal, A against B: the same rate, <= 1/2 the CPU, <= 1/4 the memory."""
    print("| goal: A / B | without the model | with the model | goal |")
    print("|---|---|---|---|")
    ra, rb = a["stored"] / a["elapsed"], b["stored"] / b["elapsed"]
    if rb:
        ok = "PASS" if ra / rb >= 0.95 else "BELOW"
        print("| inference rate | %.1f %% %s | %.1f %% %s | ≥ 95 %% (the same) |"
              % (100 * ra / rb, ok, 100 * ra / rb, ok))
    else:
        print("| inference rate | - | - | B stored nothing |")
    for key, what, goal in (("cpu", "CPU per inference", 0.5), ("rss", "RSS at the end", 0.25),
                            ("pss", "PSS at the end", 0.25),
                            ("hwm", "peak RSS (sum of VmHWM)", 0.25)):
        cells = []
        for with_model in (False, True):
            va, vb = totals(a, with_model)[key], totals(b, with_model)[key]
            if key == "cpu":
                va, vb = va / max(1, a["stored"]), vb / max(1, b["stored"])
            ratio = va / vb if vb else float("nan")
            cells.append("%.1f %% %s" % (100 * ratio, "PASS" if ratio <= goal else "BELOW"))
        print("| %s | %s | %s | ≤ %.0f %% |" % (what, cells[0], cells[1], 100 * goal))


def report(results, skipped, seconds, warmup, load0):
    cpus = os.cpu_count() or 0
    cpu_model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    model_env = " ".join("%s=%s" % (k, v) for k, v in sorted(os.environ.items())
                         if k.startswith("FAKE_EIM_"))
    print()
    print("ei-relay eim benchmark — %s, %d CPU (%s), kernel %s" % (
        time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()), cpus, cpu_model, os.uname().release))
    print("camera: %s" % PIPELINE)
    print("model: tests/eim/fake_eim.py, %s" % model_env)
    print("warm-up %.0f s, window %.0f s per setup, one after the other; load average before: %s"
          % (warmup, seconds, load0))
    print()
    print("| setup | process | inferences/s | CPU % of a core | CPU ms / inference | "
          "RSS end MB | PSS end MB | peak (VmHWM) MB |")
    print("|---|---|---|---|---|---|---|---|")
    for res in results:
        el, n = res["elapsed"], res["stored"]
        rows = sorted(res["roles"].items(), key=lambda kv: (kv[0] == "model", kv[0]))
        for role, r in rows:
            print(row(res["tag"], role + (" (%d processes)" % r["n"] if r["n"] > 1 else ""), "",
                      r, el, n))
        for with_model in (False, True):
            print(row(res["tag"], "**total %s the model**" % ("with" if with_model else
                                                              "without"),
                      "**%.2f**" % (n / el), totals(res, with_model), el, n))
    print()
    for res in results:
        c = res["counters"]
        keys = [k for k in ("inferences", "frames", "frames_same", "frames_dropped",
                            "frame_errors", "classify_errors", "model_starts", "messages",
                            "frames_paired", "rejected", "reconnects") if k in c]
        other = 100 * (res["machine_busy"] - totals(res, True)["cpu"]) / res["elapsed"]
        print("%s: %s: %d stored in %.1f s; source state %s, counters over the window: %s; "
              "the rest of the machine used %.0f%% of a core" % (
                  res["tag"], res["what"], res["stored"], res["elapsed"], res["state"],
                  ", ".join("%s %d" % (k, c[k]) for k in keys), max(0.0, other)))
        print("%s: the relay's busiest threads: %s" % (
            res["tag"], ", ".join("%s %.1f%%" % t for t in res["threads"]) or "-"))
    for s in skipped:
        print("skipped: %s" % s)
    if len(results) == 2:
        print()
        goal_rows(*results)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    seconds = float(os.environ.get("EI_BENCH_SECONDS", "30"))
    warmup = float(os.environ.get("EI_BENCH_WARMUP", "5"))
    for k, v in MODEL_ENV.items():
        os.environ.setdefault(k, v)
    binary, how = runner_ws.relay_binary(args)
    if not os.path.exists(binary):
        log("no ei-relay binary at %s" % binary)
        return 1
    os.environ["EI_RELAY_BIN"] = binary
    log("relay %s (%s)" % (binary, how))
    load0 = " ".join(open("/proc/loadavg").read().split()[:3])
    work = tempfile.mkdtemp(prefix="ei-eim-bench-", dir=os.environ.get("EI_BENCH_DIR"))
    results, skipped = [], []
    try:
        model = model_file(work)
        try:
            res = setup_relay_alone(work, model, warmup, seconds)
            res["tag"] = "A"
            results.append(res)
        except RuntimeError as e:
            skipped.append("A, ei-relay alone: %s" % e)
        runner_dir = os.environ.get("EI_RUNNER_DIR")
        if runner_dir:
            try:
                res = setup_runner(work, model, runner_dir, warmup, seconds)
                res["tag"] = "B"
                results.append(res)
            except RuntimeError as e:
                skipped.append("B, runner + ei-relay: %s" % e)
        else:
            skipped.append("B, the comparison with the real runner: EI_RUNNER_DIR is not set "
                           "(npm edge-impulse-linux 1.25.2, with sharp built on Debian's libvips)")
        report(results, skipped, seconds, warmup, load0)
        return 0 if results else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
