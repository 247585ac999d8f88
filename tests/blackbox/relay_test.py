# relay_test.py - harness of the black-box test tier: runs the real ei-relay binary on free
# ports with a JSON config in a temp dir, talks raw HTTP/1.1 to it, and makes test images.
# Python 3 standard library only. Each test file imports this and ends with `run_tests(...)`.
#
# Owned by the black-box tier (tests/blackbox). Environment (set by tests/CMakeLists.txt):
#   EI_RELAY_BIN        path of the built binary
#   EI_TEST_SOURCE_DIR  repository root
import base64
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import uuid
import zlib

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


def relay_bin():
    b = os.environ.get("EI_RELAY_BIN")
    if not b:
        src = source_dir()
        for cand in ("build/ei-relay", "build-bb/ei-relay"):
            p = os.path.join(src, cand)
            if os.path.exists(p):
                return p
        raise RuntimeError("EI_RELAY_BIN is not set")
    return b


def source_dir():
    return os.environ.get(
        "EI_TEST_SOURCE_DIR",
        os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))


def fixtures_dir():
    """tests/fixtures of this checkout (EI_FIXTURES, as CMake sets it, names the same)."""
    return os.environ.get("EI_FIXTURES") or os.path.join(source_dir(), "tests", "fixtures")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class TestFailure(AssertionError):
    pass


def check(cond, msg="check failed"):
    if not cond:
        raise TestFailure(msg)


def eq(a, b, msg=""):
    if a != b:
        raise TestFailure("%s: expected %r, got %r" % (msg or "eq", b, a))


# ---------------------------------------------------------------- HTTP ---------------------


class Response:
    def __init__(self, status, reason, headers, body, raw_headers):
        self.status = status
        self.reason = reason
        self.headers = headers  # lowercased name -> value (last wins; joined for duplicates)
        self.body = body
        self.raw_headers = raw_headers  # list of (name, value) as received

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except Exception as e:
            raise TestFailure("response is not JSON (%s): status %d body %r" %
                              (e, self.status, self.body[:300]))

    def __iter__(self):  # (status, headers, body) unpacking
        return iter((self.status, self.headers, self.body))

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, self.headers, self.body[:200])


class ConnectionClosed(Exception):
    pass


class HttpConn:
    """A raw HTTP/1.1 client on one TCP connection (keep-alive). send_raw() writes arbitrary
    bytes, read_response() parses one response (Content-Length, chunked, or until close)."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.port = port
        self.host = host
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.closed = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionClosed("connection closed by peer")
        self.buf += chunk

    def _read_line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise TestFailure("header line too long")
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read_n(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _read_to_close(self):
        while True:
            try:
                self._fill()
            except ConnectionClosed:
                break
        out, self.buf = self.buf, b""
        return out

    def read_response(self, method="GET"):
        line = self._read_line()
        m = re.match(rb"HTTP/1\.[01] (\d{3})(?: (.*))?$", line)
        if not m:
            raise TestFailure("bad status line %r" % line)
        status = int(m.group(1))
        reason = (m.group(2) or b"").decode("latin-1")
        headers, raw = {}, []
        while True:
            hl = self._read_line()
            if hl == b"":
                break
            name, _, value = hl.decode("latin-1").partition(":")
            name, value = name.strip(), value.strip()
            raw.append((name, value))
            k = name.lower()
            headers[k] = (headers[k] + ", " + value) if k in headers and k != "set-cookie" else value
        if 100 <= status < 200:
            return self.read_response(method)  # skip 100 Continue
        body = b""
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size_line = self._read_line().split(b";", 1)[0].strip()
                size = int(size_line, 16)
                if size == 0:
                    while self._read_line() != b"":  # trailers
                        pass
                    break
                body += self._read_n(size)
                self._read_n(2)
        elif "content-length" in headers:
            body = self._read_n(int(headers["content-length"]))
        else:
            body = self._read_to_close()
        if headers.get("connection", "").lower() == "close":
            self.closed = True
        return Response(status, reason, headers, body, raw)

    def request(self, method, path, body=None, headers=None):
        hdrs = {"Host": "%s:%d" % (self.host, self.port)}
        if headers:
            hdrs.update(headers)
        if body is not None and "Content-Length" not in hdrs and \
                "Transfer-Encoding" not in hdrs:
            hdrs["Content-Length"] = str(len(body))
        head = "%s %s HTTP/1.1\r\n" % (method, path)
        head += "".join("%s: %s\r\n" % (k, v) for k, v in hdrs.items()) + "\r\n"
        self.send_raw(head.encode("latin-1") + (body or b""))
        return self.read_response(method)


def auth_header(token):
    return {"Authorization": "Bearer " + token} if token else {}


def http_request(port, method, path, body=None, headers=None, token=None, timeout=10.0):
    """One request on a fresh connection. Returns a Response (unpacks to status, headers, body)."""
    h = dict(auth_header(token))
    if headers:
        h.update(headers)
    h.setdefault("Connection", "close")
    with HttpConn(port, timeout=timeout) as c:
        return c.request(method, path, body, h)


def raw_exchange(port, data, timeout=10.0, method="GET"):
    """Sends raw bytes on a new connection and returns the parsed response, or None if the
    server closed the connection without answering."""
    with HttpConn(port, timeout=timeout) as c:
        c.send_raw(data)
        try:
            return c.read_response(method)
        except ConnectionClosed:
            return None


def multipart_body(parts, boundary=None):
    """parts: list of (name, filename|None, content_type|None, bytes). Returns (ctype, body)."""
    boundary = boundary or ("ei-bb-" + uuid.uuid4().hex)
    out = b""
    for name, filename, ctype, data in parts:
        out += b"--" + boundary.encode() + b"\r\n"
        disp = 'form-data; name="%s"' % name
        if filename:
            disp += '; filename="%s"' % filename
        out += ("Content-Disposition: %s\r\n" % disp).encode()
        if ctype:
            out += ("Content-Type: %s\r\n" % ctype).encode()
        out += b"\r\n" + data + b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    return "multipart/form-data; boundary=" + boundary, out


def error_of(resp, status, code=None):
    """Asserts resp is the contract's error: the status, JSON content type and a body that is
    exactly {"error":{"code":..,"message":..}}. Returns (code, message)."""
    if resp is None:
        raise TestFailure("no response (connection closed), expected %d" % status)
    if resp.status != status:
        raise TestFailure("expected status %d, got %d: %r" % (status, resp.status, resp.body[:300]))
    ct = resp.headers.get("content-type", "")
    check(ct.startswith("application/json"), "error content-type %r" % ct)
    doc = resp.json()
    check(isinstance(doc, dict) and list(doc.keys()) == ["error"], "error body %r" % doc)
    e = doc["error"]
    check(isinstance(e, dict) and sorted(e.keys()) == ["code", "message"], "error body %r" % doc)
    check(isinstance(e["code"], str) and re.match(r"^[a-z][a-z0-9_]*$", e["code"]),
          "error code %r" % e["code"])
    check(isinstance(e["message"], str) and e["message"], "error message %r" % e["message"])
    if code is not None:
        eq(e["code"], code, "error code")
    return e["code"], e["message"]


# ---------------------------------------------------------------- images -------------------


def make_png(width=64, height=48, noise=False, seed=1, gray=False):
    """A valid 8-bit PNG (RGB or gray) of a gradient, or noise when noise=True."""
    rnd = random.Random(seed)
    ch = 1 if gray else 3
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        if noise:
            rows += bytes(rnd.getrandbits(8) for _ in range(width * ch))
        else:
            for x in range(width):
                if gray:
                    rows.append((x * 255 // max(1, width - 1)) & 0xFF)
                else:
                    rows += bytes(((x * 4) & 0xFF, (y * 4) & 0xFF, 128))

    def chunk(typ, data):
        return struct.pack(">I", len(data)) + typ + data + \
            struct.pack(">I", zlib.crc32(typ + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0 if gray else 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + \
        chunk(b"IDAT", zlib.compress(bytes(rows), 6)) + chunk(b"IEND", b"")


class _BitWriter:
    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, code, length):
        self.acc = (self.acc << length) | (code & ((1 << length) - 1))
        self.n += length
        while self.n >= 8:
            self.n -= 8
            b = (self.acc >> self.n) & 0xFF
            self.out.append(b)
            if b == 0xFF:
                self.out.append(0)  # byte stuffing
        self.acc &= (1 << self.n) - 1 if self.n else 0

    def flush(self):
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)  # pad with 1 bits
        return bytes(self.out)


def _huff_codes(bits, vals):
    """Canonical Huffman codes from the DHT form: bits[i] = number of codes of length i+1."""
    codes, code, k = {}, 0, 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            codes[vals[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


# Our own (valid, not the Annex K) Huffman tables, sent in the DHT segment: every DC category
# 0..11 gets a 4-bit code and every AC symbol (run 0..15, size 1..10, plus EOB and ZRL) an
# 8-bit code; neither table uses the all-ones code, as the standard requires.
_DC_VALS = list(range(12))
_DC_BITS = [0, 0, 0, 12] + [0] * 12
_AC_VALS = [0x00, 0xF0] + [(r << 4) | s for r in range(16) for s in range(1, 11)]
_AC_BITS = [0] * 7 + [len(_AC_VALS)] + [0] * 8
_DC_CODES = _huff_codes(_DC_BITS, _DC_VALS)
_AC_CODES = _huff_codes(_AC_BITS, _AC_VALS)


def _magnitude(v):
    """JPEG (size, bits) of a coefficient value."""
    a = abs(v)
    size = a.bit_length()
    bits = v if v >= 0 else v + (1 << size) - 1
    return size, bits


def make_jpeg(width=64, height=48, noise=0, seed=1, gray_level=128):
    """A valid baseline grayscale JPEG written directly in the DCT domain. Each 8x8 block has a
    DC level near gray_level; noise (0..63) random AC coefficients per block make the image
    (and the file) bigger. Decoders (libjpeg, libvips) read it as a normal image."""
    rnd = random.Random(seed)
    out = bytearray(b"\xff\xd8")
    # APP0 JFIF
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    out += b"\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0
    # DQT: table 0, all ones (coefficients are written already quantized)
    dqt = b"\x00" + bytes([1] * 64)
    out += b"\xff\xdb" + struct.pack(">H", len(dqt) + 2) + dqt
    # SOF0: 8-bit, height, width, 1 component (id 1, sampling 1x1, quant table 0)
    sof = struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"
    out += b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof
    # DHT: DC table 0 and AC table 0
    dht = b"\x00" + bytes(_DC_BITS) + bytes(_DC_VALS) + \
        b"\x10" + bytes(_AC_BITS) + bytes(_AC_VALS)
    out += b"\xff\xc4" + struct.pack(">H", len(dht) + 2) + dht
    # SOS: 1 component, tables 0/0, spectral 0..63, approx 0
    sos = b"\x01\x01\x00\x00\x3f\x00"
    out += b"\xff\xda" + struct.pack(">H", len(sos) + 2) + sos
    bw = _BitWriter()
    prev_dc = 0
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    noise = max(0, min(63, noise))
    for _ in range(blocks):
        # DC of the level-shifted block: 8 * (pixel - 128) for a flat block
        level = gray_level + (rnd.randint(-40, 40) if noise else 0)
        dc = 8 * (max(0, min(255, level)) - 128)
        diff = dc - prev_dc
        prev_dc = dc
        size, bits = _magnitude(diff)
        code, ln = _DC_CODES[size]
        bw.put(code, ln)
        if size:
            bw.put(bits, size)
        # AC: the first `noise` zigzag positions get random nonzero values
        for _k in range(noise):
            v = rnd.choice((-1, 1)) * rnd.randint(1, 15)
            size, bits = _magnitude(v)
            code, ln = _AC_CODES[size]  # run 0
            bw.put(code, ln)
            bw.put(bits, size)
        if noise < 63:
            code, ln = _AC_CODES[0x00]  # EOB
            bw.put(code, ln)
    out += bw.flush()
    out += b"\xff\xd9"
    return bytes(out)


def make_jpeg_of_size(target_bytes, seed=1):
    """A JPEG of roughly target_bytes (within ~10 %), noise blocks. Returns (bytes, w, h)."""
    per_block = (63 * (8 + 3.5) + 6) / 8.0  # bits per noisy block / 8
    blocks = max(1, int(target_bytes / per_block))
    wb = max(1, int(blocks ** 0.5))
    hb = max(1, (blocks + wb - 1) // wb)
    w, h = wb * 8, hb * 8
    return make_jpeg(w, h, noise=63, seed=seed), w, h


def jpeg_dims(data):
    """(width, height) from the first SOFn marker of a JPEG, or None."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        seg_len = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                      0xCF):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        if marker == 0xDA:
            return None
        i += 2 + seg_len
    return None


def png_dims(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", data[16:24])


# ---------------------------------------------------------------- the relay ----------------


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
           subprocess.Popen takes as stdin (a file object, a descriptor, subprocess.PIPE)."""

    def __init__(self, overrides=None, workdir=None, extra_args=None, env=None, web_root=True,
                 wait_ready=True, stdin=None):
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
        try:
            self.proc = subprocess.Popen([relay_bin(), "--config", self.config_path] +
                                         self.extra_args, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=stdin, cwd=self.dir, env=env)
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
                r = http_request(self.http_port, "GET", "/api/v1/health", timeout=0.5)
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
        return http_request(self.http_port, method, path, body, headers, token, timeout)

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
        return HttpConn(self.http_port, timeout=timeout)

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


# ---------------------------------------------------------------- runner -------------------


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
