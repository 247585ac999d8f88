# test_sources_serial_more.py - more black-box tests of the "serial" source with the real
# binary: stdin mode (a fixture piped in, the source stopping at EOF while the relay serves on),
# settings that must stop start-up with a message naming the key, a command restarted with
# backoff, garbage between blocks changing nothing, and the sources' series in /metrics
# (values equal to GET /api/v1/sources, label escaping, and the exposition format itself).
import os
import random
import re
import subprocess

from harness import (SANITIZER_MARKERS, Relay, check, eq, fixture_path, free_port, relay_bin,
                     run_tests, source_status, sources_cfg, wait_for, wait_status, wait_stored)

WAIT_S = 30.0
# Every serial fixture, in an order where each file's first line ends the block the one before
# left open (esp32-camera.txt's first line would read as a result line inside a block).
FIXTURES = ("classic-classification.txt", "classic-object-detection.txt",
            "crlf-float-timings.txt", "esp32-camera.txt", "boot-noise-garbage.txt",
            "regression.txt", "visual-anomaly.txt", "object-tracking.txt", "sections-only.txt",
            "sdk-timing.txt")
# The kinds each fixture gives, in order (see tests/fixtures/README.md).
FIXTURE_KINDS = {
    "classic-classification.txt": ["classification"] * 3,
    "classic-object-detection.txt": ["object-detection", "empty", "object-detection"],
    "crlf-float-timings.txt": ["classification"] * 3,
    "esp32-camera.txt": ["object-detection", "empty", "classification"],
    "boot-noise-garbage.txt": ["classification"] * 3,
    "regression.txt": ["classification"] * 3,
    "visual-anomaly.txt": ["visual-anomaly"] * 3,
    "object-tracking.txt": ["object-detection", "object-detection", "empty"],
    "sections-only.txt": ["classification"] * 3,
    "sdk-timing.txt": ["classification", "object-detection", "empty", "anomaly"],
}


def fixture_bytes(name):
    with open(fixture_path("serial", name), "rb") as f:
        return f.read()


def all_fixtures():
    """Every fixture in one stream, each ending in a newline so none runs into the next."""
    return b"".join(d if d.endswith(b"\n") else d + b"\n" for d in map(fixture_bytes, FIXTURES))


def all_kinds():
    return [k for name in FIXTURES for k in FIXTURE_KINDS[name]]


def lines_in(data):
    """Lines as the parser counts them: each newline, plus an unterminated last line."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


# ---- the Prometheus text format, strictly enough to catch a broken rendering ----

METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"'
SAMPLE = re.compile(r"^(%s)(?:\{((?:%s)(?:,%s)*)?\})? (\S+)(?: -?\d+)?$" %
                    (METRIC_NAME, LABEL, LABEL))
VALUE = re.compile(r"^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$")


def unescape_label(v):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def parse_metrics(text):
    """Checks the exposition line by line and returns {(name, ((label, value), ...)): float}.
    Rules checked: every line is a HELP, TYPE or sample line; HELP and TYPE come at most once
    per name and before its samples; the samples of a name are contiguous; label values use
    only the three escapes; no series appears twice; the text ends in a newline."""
    check(text.endswith("\n"), "exposition does not end in a newline")
    out, helped, typed, done = {}, set(), {}, set()
    current = None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "metrics line %d %r" % (n, line)
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) (%s) (.*)$" % METRIC_NAME, line)
            check(m is not None, "bad comment line: " + where)
            kind, name, rest = m.groups()
            check(name not in done and name != current, "HELP/TYPE after samples: " + where)
            if kind == "HELP":
                check(name not in helped, "second HELP: " + where)
                helped.add(name)
            else:
                check(name not in typed, "second TYPE: " + where)
                check(rest in ("counter", "gauge", "histogram", "summary", "untyped"),
                      "bad type: " + where)
                typed[name] = rest
            continue
        m = SAMPLE.match(line)
        check(m is not None, "bad sample line: " + where)
        name, labels, value = m.group(1), m.group(2) or "", m.group(m.lastindex)
        check(VALUE.match(value) is not None, "bad value: " + where)
        if name != current:
            check(name not in done, "samples of %s are not contiguous: %s" % (name, where))
            if current:
                done.add(current)
            current = name
        pairs = tuple((k, unescape_label(v)) for k, v in re.findall(LABEL, labels))
        check(len(set(k for k, _ in pairs)) == len(pairs), "repeated label: " + where)
        key = (name, tuple(sorted(pairs)))
        check(key not in out, "repeated series: " + where)
        out[key] = float(value)
    return out


def metrics(relay):
    r = relay.get("/metrics")
    eq(r.status, 200, "/metrics status")
    check(r.headers.get("content-type", "").startswith("text/plain; version=0.0.4"),
          "content type %r" % r.headers.get("content-type"))
    return parse_metrics(r.body.decode("utf-8"))


def source_series(m, name):
    """{metric name: value} of one source's series, with its kind label."""
    out = {}
    for (metric, labels), v in m.items():
        d = dict(labels)
        if d.get("source") == name:
            eq(sorted(d), ["kind", "source"], "labels of %s" % metric)
            out[metric] = (v, d["kind"])
    return out


SERIAL_COUNTERS = ("inferences", "reconnects", "store_retries", "store_refused", "bytes", "lines", "long_lines", "noise_lines",
                   "empty_blocks", "dropped", "images")


def check_serial_series(m, st):
    """The serial source st's series in the parsed metrics m agree with its API status."""
    got = source_series(m, st["name"])
    want = {"ei_relay_source_up": 1 if st["state"] == "running" else 0,
            "ei_relay_source_held": st["held"]}
    for c in SERIAL_COUNTERS:
        want["ei_relay_source_%s_total" % c] = st[c]
    eq(sorted(got), sorted(want), "series of source %r" % st["name"])
    for k, v in want.items():
        eq(got[k], (float(v), "serial"), "%s of %r" % (k, st["name"]))


# ---- tests ----


def test_stdin_fixtures_to_eof():
    """Every fixture piped to stdin: each inference stored, the source stopped at EOF, the
    relay serving on (HTTP ingest still works) and its series in /metrics right."""
    data = all_fixtures()
    kinds = all_kinds()
    with Relay(sources_cfg([{"name": "s", "kind": "serial", "stdin": True}]), stdin=data) as r:
        st = wait_status(r, "s", "stdin source stopped", lambda s: s["state"] == "stopped",
                         WAIT_S)
        check("stdin" in st["last_error"] and "end of input" in st["last_error"],
              "last_error %r" % st["last_error"])
        eq(st["bytes"], len(data), "bytes counter")
        eq(st["lines"], lines_in(data), "lines counter")
        eq(st["inferences"], len(kinds), "inferences counter")
        eq(st["reconnects"], 0, "stdin is never reopened")
        eq(st["long_lines"], 0, "long lines")
        eq(st["dropped"], 0, "dropped")
        items = wait_stored(r, "s", len(kinds), WAIT_S)
        eq([i["kind"] for i in items], kinds, "kinds in stream order")
        eq(len(set(i["id"] for i in items)), len(items), "distinct ids")
        # spot checks of content: the first classification, the boxes, the anomaly score
        eq(items[0]["result"]["classification"],
           {"fault": 0.003906, "high": 0.019531, "low": 0.964844, "off": 0.011719},
           "first result")
        eq(items[0]["timing"], {"dsp": 21, "classification": 1, "anomaly": 2}, "first timing")
        first_od = len(FIXTURE_KINDS[FIXTURES[0]])  # classic-object-detection.txt's first
        eq(sorted(b["label"] for b in items[first_od]["result"]["bounding_boxes"]),
           ["forklift", "pallet"], "boxes")
        eq(items[-1]["result"].get("anomaly"), 0.42188, "last (anomaly) result")
        # still serving after the source ended
        eq(r.health()["status"], "ok", "health after EOF")
        r.ingest({"result": {"classification": {"after": 1.0}}})
        eq(source_status(r, "s")["state"], "stopped", "state stays stopped")
        check_serial_series(metrics(r), source_status(r, "s"))


def start_fails(srcs, extra=None):
    """Starts the binary with these sources and expects it to exit on its own before serving.
    Returns (exit code, stderr text); stdout is kept apart so the message is seen on stderr."""
    cfg = sources_cfg(srcs)
    cfg.update(extra or {})
    r = Relay(cfg, wait_ready=False)
    try:
        r.write_config()
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("EI_RELAY_"):
                del env[k]
        p = subprocess.Popen([relay_bin(), "--config", r.config_path], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=r.dir, env=env)
        try:
            out, err = p.communicate(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise AssertionError("relay with bad sources %r kept running" % srcs)
        text = err.decode("utf-8", "replace")
        for marker in SANITIZER_MARKERS:
            check(marker not in text, "sanitizer report:\n" + text)
        return p.returncode, text
    finally:
        r.cleanup()


def test_bad_settings_stop_startup():
    """Each bad setting: non-zero exit, and stderr names the source and the key."""
    dev = "/dev/null"
    cases = [
        ({"name": "s", "kind": "serial", "device": dev, "baud": 12345}, 'sources "s".baud'),
        ({"name": "s", "kind": "serial", "device": dev, "baud": "115200"}, 'sources "s".baud'),
        ({"name": "s", "kind": "serial", "device": dev, "baud": 115200.5}, 'sources "s".baud'),
        ({"name": "s", "kind": "serial"}, 'sources "s": give exactly one of'),
        ({"name": "s", "kind": "serial", "device": dev, "command": "true"},
         'sources "s": give exactly one of'),
        ({"name": "s", "kind": "serial", "stdin": True, "command": "true"},
         'sources "s": give exactly one of'),
        ({"name": "s", "kind": "serial", "device": ""}, 'sources "s".device'),
        ({"name": "s", "kind": "serial", "device": 7}, 'sources "s".device'),
        ({"name": "s", "kind": "serial", "command": ""}, 'sources "s".command'),
        ({"name": "s", "kind": "serial", "stdin": "yes"}, 'sources "s".stdin'),
        ({"name": "s", "kind": "serial", "command": "true", "restart": "no"},
         'sources "s".restart'),
        ({"name": "s", "kind": "serial-ish", "device": dev}, "sources[1].kind"),
        ({"kind": "serial", "device": dev}, "sources[1].name"),
    ]
    good = {"name": "ok", "kind": "serial", "command": "true", "restart": False}
    bad = []
    for src, want in cases:
        # a valid source first: one bad entry stops start-up all the same
        code, err = start_fails([good, src])
        if code == 0 or want not in err:
            bad.append("%r: exit %d, stderr %r (wanted %r)" % (src, code, err[-400:], want))
    check(not bad, "bad settings not refused as expected:\n" + "\n".join(bad))


def read_count(path):
    """The number in path, or None while the file is being rewritten (empty)."""
    with open(path) as f:
        text = f.read().strip()
    return int(text) if text else None


def test_command_restarts_with_backoff():
    """A command that prints a fixture twice over two runs, then exits at once with nothing:
    both runs' inferences are stored, the reconnects counter climbs, and the reopen delay
    starts again from 500 ms after a run that read something but doubles after runs that
    read nothing (500, 1000, 2000 ms ...)."""
    data = fixture_bytes("sdk-timing.txt")
    kinds = FIXTURE_KINDS["sdk-timing.txt"]
    r = Relay()
    counter = os.path.join(r.dir, "runs")
    fx = os.path.join(r.dir, "fixture.txt")
    with open(fx, "wb") as f:
        f.write(data)
    cmd = ("n=$(cat '%s' 2>/dev/null || echo 0); echo $((n + 1)) > '%s'; "
           "if [ \"$n\" -lt 2 ]; then cat '%s'; fi; exit 3" % (counter, counter, fx))
    r.cfg.update(sources_cfg([{"name": "cmd", "kind": "serial", "command": cmd}]))
    with r:
        seen = []  # (reconnects, state, backoff_ms) as observed

        def poll():
            s = source_status(r, "cmd")
            seen.append((s["reconnects"], s["state"], s["backoff_ms"]))
            return s if s["reconnects"] >= 4 else None
        st = wait_for("4 reconnects", poll, WAIT_S)
        items = wait_stored(r, "cmd", 2 * len(kinds), WAIT_S)
        eq([i["kind"] for i in items], kinds * 2, "inferences of both runs that printed")
        eq(st["inferences"], 2 * len(kinds), "inferences counter")
        eq(st["bytes"], 2 * len(data), "bytes counter")
        check("command" in st["last_error"], "last_error %r" % st["last_error"])
        # the command rewrites the file on every run (`>` truncates first): read a whole number
        runs = wait_for("the command's run counter", lambda: read_count(counter), WAIT_S)
        # each reconnect follows a run that ended (the next may not have counted itself yet)
        check(runs >= st["reconnects"], "the command ran %d times for %d reconnects" %
              (runs, st["reconnects"]))
        # reconnects only ever grow
        counts = [c for c, _, _ in seen]
        eq(counts, sorted(counts), "reconnects never decrease")
        delays = {b for _, state, b in seen if state == "backoff"}
        # after the two runs that printed the delay is back at 500; the empty runs double it
        # (each of these waits lasts 1 s or 2 s, far longer than the 50 ms poll)
        check({1000, 2000} <= delays, "backoff delays seen: %r" % sorted(delays))
        check(max(delays) <= 30000, "backoff cap: %r" % sorted(delays))
        # the /metrics counters lie between two API reads around the scrape
        before = source_status(r, "cmd")["reconnects"]
        got = source_series(metrics(r), "cmd")
        after = source_status(r, "cmd")["reconnects"]
        v = got["ei_relay_source_reconnects_total"][0]
        check(before <= v <= after, "reconnects_total %r not in [%d, %d]" % (v, before, after))
        eq(got["ei_relay_source_inferences_total"], (2.0 * len(kinds), "serial"),
           "inferences_total")


def garbage_line(rnd, n):
    """n random bytes that can never look like a result or header line: no newline, and none
    of the characters result lines are built from (':', '(', ')', '[', ']')."""
    alphabet = [b for b in range(256) if b not in b"\n:()[]"]
    return bytes(rnd.choice(alphabet) for _ in range(n)) + b"\n"


def with_garbage(data, rnd):
    """Inserts garbage lines before every line that starts a block (and at the start and end),
    one of them longer than the parser's 1024-byte line buffer, one a run of NUL bytes."""
    out = []
    starts = (b"Predictions (", b"Timing:", b"Taking photo")
    for i, line in enumerate(data.splitlines(keepends=True)):
        if line.lstrip().startswith(starts):
            out.append(garbage_line(rnd, rnd.randint(1, 200)))
            if i % 3 == 0:
                out.append(b"\r\n")  # blank lines are ignored
        out.append(line)
    out.insert(0, garbage_line(rnd, 5000))  # over-long: discarded and counted
    out.append(b"\x00" * 300 + b"\n")
    out.append(garbage_line(rnd, 100))
    return b"".join(out)


def test_garbage_between_blocks():
    """The same stream read clean and with garbage lines between its blocks gives the same
    inferences; the garbage shows in noise_lines and long_lines, and in /metrics."""
    clean = all_fixtures()
    dirty = with_garbage(clean, random.Random(4))
    r = Relay()
    paths = {}
    for name, data in (("clean", clean), ("dirty", dirty)):
        paths[name] = os.path.join(r.dir, name + ".txt")
        with open(paths[name], "wb") as f:
            f.write(data)
    r.cfg.update(sources_cfg([
        {"name": n, "kind": "serial", "command": "cat '%s'" % p, "restart": False}
        for n, p in sorted(paths.items())]))
    n = len(all_kinds())
    with r:
        for name in paths:
            wait_status(r, name, name + " stopped", lambda s: s["state"] == "stopped", WAIT_S)
        a, b = wait_stored(r, "clean", n, WAIT_S), wait_stored(r, "dirty", n, WAIT_S)
        eq(len(a), n, "inferences from the clean stream")
        eq(len(b), n, "inferences from the stream with garbage")
        for x, y in zip(a, b):
            for k in ("kind", "result", "timing", "model_width", "model_height"):
                eq(y.get(k), x.get(k), "%s of inference %d" % (k, a.index(x)))
        sc, sd = source_status(r, "clean"), source_status(r, "dirty")
        eq(sd["bytes"], len(dirty), "dirty bytes")
        eq(sd["lines"], lines_in(dirty), "dirty lines")
        eq(sd["long_lines"], 1, "the 5000-byte line")
        eq(sc["long_lines"], 0, "clean long lines")
        garbage_lines = lines_in(dirty) - lines_in(clean) - dirty.count(b"\n\r\n")
        # the over-long line is counted as long, not as noise; every other garbage line is noise
        eq(sd["noise_lines"] - sc["noise_lines"], garbage_lines - 1, "extra noise lines")
        eq(sd["dropped"], 0, "dropped")
        m = metrics(r)
        check_serial_series(m, sc)
        check_serial_series(m, sd)


def test_metrics_labels_escaped():
    """Source names with a quote, a backslash and a newline come back intact from the label
    values, a running source is up, each kind shows only its own counters, and a relay without
    sources shows none."""
    odd = 'odd "name" \\ with\nnewline'
    r = Relay()
    fx = os.path.join(r.dir, "fixture.txt")
    with open(fx, "wb") as f:
        f.write(fixture_bytes("classic-object-detection.txt"))
    srcs = [{"name": odd, "kind": "serial", "command": "true", "restart": False},
            # prints a fixture, then stays running (stopped with its process group at exit)
            {"name": "live", "kind": "serial", "command": "cat '%s'; exec sleep 600" % fx},
            {"name": "ws", "kind": "runner-ws", "url": "ws://127.0.0.1:%d/" % free_port()}]
    r.cfg.update(sources_cfg(srcs))
    with r:
        wait_status(r, odd, "odd stopped", lambda s: s["state"] == "stopped", WAIT_S)
        # the last block is emitted after a second of silence; then nothing changes
        live = wait_status(r, "live", "live: 3 inferences",
                           lambda s: s["state"] == "running" and s["inferences"] == 3, WAIT_S)
        m = metrics(r)
        check_serial_series(m, source_status(r, odd))
        check_serial_series(m, live)
        eq(source_series(m, "live")["ei_relay_source_up"][0], 1.0, "a running source is up")
        ws = source_series(m, "ws")
        eq(set(k for k, (_, kind) in ws.items() if kind != "runner-ws"), set(), "ws kind label")
        check(not any(k in ws for k in ("ei_relay_source_bytes_total",
                                         "ei_relay_source_lines_total")),
              "serial counters on a runner-ws source: %r" % sorted(ws))
        for k in ("ei_relay_source_up", "ei_relay_source_inferences_total",
                  "ei_relay_source_reconnects_total", "ei_relay_source_messages_total",
                  "ei_relay_source_frames_total", "ei_relay_source_rejected_total"):
            check(k in ws, "%s missing for the runner-ws source: %r" % (k, sorted(ws)))
        eq(ws["ei_relay_source_up"][0], 0.0, "runner-ws with nothing listening is not up")
    with Relay() as r:
        m = metrics(r)
        names = sorted({k[0] for k in m if k[0].startswith("ei_relay_source_")})
        eq(names, [], "source metrics without sources")
        check(("ei_relay_uptime_seconds", ()) in m, "the rest of /metrics is still there")


def test_parse_metrics_rejects_bad_text():
    """The format check itself must fail on broken expositions."""
    good = "# HELP a x\n# TYPE a counter\na{s=\"q\\\"\"} 1\n"
    parse_metrics(good)
    for bad in ("a 1",  # no final newline
                "# TYPE a counter\n# TYPE a counter\na 1\n",
                "a{s=\"x\ny\"} 1\n",
                "a{s=\"\\t\"} 1\n",
                "a 1\nb 1\na 2\n",
                "a{s=\"x\"} 1\na{s=\"x\"} 2\n",
                "a one\n",
                "a 1\n# HELP a late\n"):
        try:
            parse_metrics(bad)
        except AssertionError:
            continue
        raise AssertionError("parse_metrics accepted %r" % bad)


if __name__ == "__main__":
    run_tests([test_parse_metrics_rejects_bad_text, test_stdin_fixtures_to_eof,
               test_bad_settings_stop_startup, test_command_restarts_with_backoff,
               test_garbage_between_blocks, test_metrics_labels_escaped])
