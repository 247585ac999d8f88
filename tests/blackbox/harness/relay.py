# relay.py - the ei-relay process of a black-box test: Relay runs the real binary with its own
# JSON config, temp database and free ports, talks to it over raw HTTP (http.py), and on stop
# asserts a clean exit (code 0, no sanitizer report in its log). Also the tokens every relay
# accepts and the small documents tests post. Python 3 standard library only.
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

from .checks import TestFailure
from .http import ConnectionClosed, HttpConn, http_request, multipart_body, raw_exchange
from .paths import relay_bin

READ_TOKEN = "read-token-0123456789abcdef"
INGEST_TOKEN = "ingest-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-0123456789abcdef"

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "SUMMARY: UndefinedBehaviorSanitizer",
)

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class RelayExited(Exception):
    pass


class Relay:
    """Runs `ei-relay --config FILE` in a fresh temp dir. Use as a context manager; on exit it
    stops the relay with SIGTERM and asserts a clean exit (code 0, no sanitizer report).

    overrides: settings merged into the config (None values remove a key).
    tokens: list of {"token","role"}; default read/ingest/admin with the known tokens;
            tokens=None in overrides ("tokens": None) leaves tokens out (generated token).
    workdir: reuse a directory (restart on the same database).
    stdin: what the process reads on its standard input: None for /dev/null, bytes (written to
           a file in the temp dir, read from the start at every start), or anything
           subprocess.Popen takes as stdin (a file object, a descriptor, subprocess.PIPE).
    user: (name, group) to run as (the tests must run as root): the temp dir is given to it,
          so the relay reads and writes only what that user may, as under Greengrass.
    stderr: None (into the log file with stdout) or a descriptor the relay's stderr goes to
            instead (e.g. a pty's slave: the relay then writes to a terminal; its log goes
            there too, and the log file keeps only stdout).
    ssl_context: with tls_cert_file/tls_key_file in overrides, an ssl.SSLContext that trusts
          the certificate: the readiness check and the HTTP helpers then speak HTTPS."""

    def __init__(self, overrides=None, workdir=None, extra_args=None, env=None, web_root=True,
                 wait_ready=True, stdin=None, user=None, ssl_context=None,
                 stderr=None):
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="ei-bb-")
        self.db_path = os.path.join(self.dir, "db", "ei-relay.db")
        self.http_port = free_port()
        self.ws_port = free_port()
        while self.ws_port == self.http_port:
            self.ws_port = free_port()
        cfg = {
            "http_port": self.http_port,
            "ws_port": self.ws_port,
            "bind": "127.0.0.1",
            "db_path": self.db_path,
            "log_level": "debug",
            # the service refuses root unless allowed; the tests run as root in CI
            "allow_root": os.geteuid() == 0,
            # tests use fixed timestamps from the past: no age-based retention
            "cache_max_age": 0,
            "tokens": [
                {"token": READ_TOKEN, "role": "read"},
                {"token": INGEST_TOKEN, "role": "ingest"},
                {"token": ADMIN_TOKEN, "role": "admin"},
            ],
        }
        if web_root:
            self.web_root = os.path.join(self.dir, "web")
            os.makedirs(self.web_root, exist_ok=True)
            with open(os.path.join(self.web_root, "index.html"), "w") as f:
                f.write("<!doctype html><title>ei-relay test</title>\n")
            cfg["web_root"] = self.web_root
        for k, v in (overrides or {}).items():
            if v is None:
                cfg.pop(k, None)
            else:
                cfg[k] = v
        self.cfg = cfg
        self.config_path = os.path.join(self.dir, "config.json")
        self.extra_args = list(extra_args or [])
        self.env = env
        self.proc = None
        self.log_path = None
        self.starts = 0
        self.wait_ready = wait_ready
        self.admin_token = ADMIN_TOKEN
        self.stdin = stdin
        self.user = user
        self.ssl_context = ssl_context
        self.stderr = stderr

    # -- lifecycle --

    def write_config(self):
        with open(self.config_path, "w") as f:
            json.dump(self.cfg, f, indent=1)

    def start(self):
        """Starts the relay; if a port picked by free_port was taken meanwhile (parallel
        tests), picks new ports and tries again (the only retry: any other exit fails)."""
        for attempt in range(3):
            try:
                return self._start_once()
            except RelayExited:
                if attempt == 2 or "Address already in use" not in self.log():
                    raise
                self.http_port = self.cfg["http_port"] = free_port()
                self.ws_port = self.cfg["ws_port"] = free_port()

    def _start_once(self):
        self.write_config()
        self.starts += 1
        self.log_path = os.path.join(self.dir, "relay-%d.log" % self.starts)
        logf = open(self.log_path, "wb")
        env = dict(os.environ)
        # Sanitizer builds: report leaks, never hide them.
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        for k in list(env):
            if k.startswith("EI_RELAY_"):
                del env[k]  # the test decides every setting
        if self.env:
            env.update(self.env)
        stdin, stdin_file = self.stdin, None
        if stdin is None:
            stdin = subprocess.DEVNULL
        elif isinstance(stdin, (bytes, bytearray)):
            path = os.path.join(self.dir, "stdin-%d" % self.starts)
            with open(path, "wb") as f:
                f.write(stdin)
            stdin = stdin_file = open(path, "rb")
        as_user = {}
        if self.user:
            as_user = {"user": self.user[0], "group": self.user[1], "extra_groups": []}
            for d, _, names in os.walk(self.dir):
                for p in [d] + [os.path.join(d, n) for n in names]:
                    shutil.chown(p, *self.user)
        try:
            self.proc = subprocess.Popen([relay_bin(), "--config", self.config_path] +
                                         self.extra_args, stdout=logf,
                                         stderr=subprocess.STDOUT if self.stderr is None
                                         else self.stderr,
                                         stdin=stdin, cwd=self.dir, env=env, **as_user)
        finally:
            logf.close()
            if stdin_file is not None:
                stdin_file.close()  # the child has its own copy
        if self.wait_ready:
            self.wait_until_ready()
        return self

    def wait_until_ready(self, timeout=READY_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RelayExited("relay exited with %d before it was ready\n%s" %
                                  (self.proc.returncode, self.log()))
            try:
                r = http_request(self.http_port, "GET", "/api/v1/health", timeout=0.5,
                                 ssl_context=self.ssl_context)
                if r.status == 200:
                    return
                last = "status %d" % r.status
            except (OSError, ConnectionClosed, TestFailure) as e:
                last = repr(e)
                # wait for the process (not a sleep: returns early if it dies)
                try:
                    self.proc.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    pass
        raise TestFailure("relay not ready after %.0f s (%s)\n%s" % (timeout, last, self.log()))

    def log(self):
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def all_logs(self):
        out = ""
        for i in range(1, self.starts + 1):
            p = os.path.join(self.dir, "relay-%d.log" % i)
            if os.path.exists(p):
                with open(p, "rb") as f:
                    out += f.read().decode("utf-8", "replace")
        return out

    def check_sanitizers(self):
        text = self.log()
        for m in SANITIZER_MARKERS:
            if m in text:
                raise TestFailure("sanitizer report in the relay log (%s):\n%s" % (m, text))

    def stop(self, expect_code=0):
        """SIGTERM, bounded wait, assert exit code and a clean log."""
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise TestFailure("relay did not exit within %.0f s of SIGTERM\n%s" %
                                  (STOP_TIMEOUT_S, self.log()))
        if p.returncode != expect_code:
            raise TestFailure("relay exit code %d (expected %d)\n%s" %
                              (p.returncode, expect_code, self.log()))
        self.check_sanitizers()

    def kill9(self):
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait()

    def restart(self, kill=False):
        if kill:
            self.kill9()
        else:
            self.stop()
        return self.start()

    def cleanup(self):
        if self.proc is not None:
            self.kill9()
        if self.own_dir and not os.environ.get("EI_BB_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.stop()
            elif self.proc is not None:
                # keep the relay's log with the failure
                sys.stdout.write("---- relay log (%s) ----\n%s\n---- end of log ----\n" %
                                 (self.log_path, self.log()[-20000:]))
                self.kill9()
        finally:
            self.cleanup()
        return False

    # -- HTTP helpers bound to this relay --

    def request(self, method, path, body=None, headers=None, token=None, timeout=10.0):
        return http_request(self.http_port, method, path, body, headers, token, timeout,
                            ssl_context=self.ssl_context)

    def json_request(self, method, path, obj=None, token=ADMIN_TOKEN, headers=None):
        h = {}
        body = None
        if obj is not None:
            body = obj if isinstance(obj, (bytes, bytearray)) else json.dumps(obj).encode()
            h["Content-Type"] = "application/json"
        if headers:
            h.update(headers)
        return self.request(method, path, body, h, token)

    def raw(self, data, timeout=10.0, method="GET"):
        return raw_exchange(self.http_port, data, timeout, method)

    def conn(self, timeout=10.0):
        return HttpConn(self.http_port, timeout=timeout, ssl_context=self.ssl_context)

    def ingest(self, doc, token=INGEST_TOKEN, query="", expect=201):
        r = self.json_request("POST", "/api/v1/inferences" + query, doc, token)
        if expect is not None and r.status != expect:
            raise TestFailure("ingest: expected %d, got %d: %r" % (expect, r.status, r.body[:400]))
        return r

    def ingest_multipart(self, doc, image, mime, token=INGEST_TOKEN, expect=201, filename=None):
        parts = [("json", None, "application/json", json.dumps(doc).encode())]
        if image is not None:
            parts.append(("image", filename or ("img." + mime.split("/")[-1]), mime, image))
        ctype, body = multipart_body(parts)
        r = self.request("POST", "/api/v1/inferences", body, {"Content-Type": ctype}, token)
        if expect is not None and r.status != expect:
            raise TestFailure("multipart ingest: expected %d, got %d: %r" %
                              (expect, r.status, r.body[:400]))
        return r

    def get(self, path, token=READ_TOKEN):
        return self.request("GET", path, token=token)

    def get_json(self, path, token=READ_TOKEN, expect=200):
        r = self.get(path, token)
        if r.status != expect:
            raise TestFailure("GET %s: expected %d, got %d: %r" % (path, expect, r.status,
                                                                   r.body[:400]))
        return r.json()

    def health(self):
        return self.get_json("/api/v1/health", token=None)

    def list_all(self, query="", limit=1000):
        """Every inference matching query, following cursors."""
        items, cursor = [], None
        for _ in range(10000):
            q = dict(urllib.parse.parse_qsl(query))
            q["limit"] = str(limit)
            if cursor:
                q["cursor"] = cursor
            doc = self.get_json("/api/v1/inferences?" + urllib.parse.urlencode(q))
            items += doc["items"]
            cursor = doc.get("next")
            if not cursor:
                return items
        raise TestFailure("cursor never ended")

    def count(self):
        """Number of stored inferences (by listing; health rows as a cross-check elsewhere)."""
        return len(self.list_all())


def start_refused(overrides, want, timeout=30):
    """Runs the binary with these settings (free of a database: a temp db_path) and expects a
    configuration error: exit code 2, want in its stderr, and no database made. Returns stderr."""
    d = tempfile.mkdtemp(prefix="ei-bb-refused-")
    try:
        cfg = {"db_path": os.path.join(d, "db", "x.db"), "http_port": 0, "ws_port": 0,
               "bind": "127.0.0.1", "allow_root": os.geteuid() == 0}
        cfg.update(overrides)
        path = os.path.join(d, "config.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        env = {k: v for k, v in os.environ.items() if not k.startswith("EI_RELAY_")}
        p = subprocess.run([relay_bin(), "--config", path], capture_output=True, text=True,
                           timeout=timeout, env=env)
        if p.returncode != 2:
            raise TestFailure("exit code %d for %r (expected 2):\n%s" % (p.returncode, overrides,
                                                                         p.stderr))
        if want not in p.stderr:
            raise TestFailure("message %r not in:\n%s" % (want, p.stderr))
        if os.path.exists(os.path.join(d, "db")):
            raise TestFailure("a database was made for %r" % (overrides,))
        return p.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- documents ----------------


def classification_doc(scores=None, **extra):
    d = {"result": {"classification": scores or {"cat": 0.9, "dog": 0.1}},
         "timing": {"dsp": 1, "classification": 2, "anomaly": 0}}
    d.update(extra)
    return d


def new_id():
    return str(uuid.uuid4())


def now_ms():
    return int(time.time() * 1000)

