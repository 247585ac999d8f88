# runner_stub.py - a stand-in for `edge-impulse-linux-runner`'s preview WebSocket server
# (ws://host:4912/), for tests and benchmarks of the relay's runner-ws source.
#
# It speaks the runner's protocol as the runner v1.25.2 does (see the sessions in
# tests/fixtures/runner-ws/ and the runner's webserver): on connect it sends `hello` (the model), it
# answers every client text message with `handling-message-success` / `handling-message-error`
# (`{"messageId":..,"type":..,"message":"<the request's text>"}`), keeps camera previews for the
# clients that sent {"type":"set-camera-preview","enabled":true}, sends each `classification`
# to every client, and accepts text messages only (a binary message gets the runner's error
# reply). JSON is written the way JavaScript's JSON.stringify writes it (js_json), so replies
# match the recorded traffic byte for byte.
#
# The WebSocket layer is a small RFC 6455 server: HTTP/1.1 Upgrade on path "/" only (other
# paths: 404, no Upgrade on "/": a 200 page), Sec-WebSocket-Accept, unmasked server frames,
# masked client frames required (else close 1002), ping answered with pong, close answered with
# close, fragmented client messages reassembled, invalid UTF-8 in text closed with 1007, more
# than max_payload closed with 1009 (the `ws` library's rules).
#
# Python 3 standard library only. Every wait is bounded; waits use threading.Condition.
#
#   stub = RunnerStub()                     # listens on a free 127.0.0.1 port (stub.port)
#   conn = stub.wait_client(10)             # after the handshake and the hello
#   conn.wait_received(1)                   # the client's greeting, parsed
#   stub.classify({"classification": {"a": 0.9}}, image_bytes=jpeg)
#   stub.stop()                             # listener and clients gone (like a killed runner)
#   stub = RunnerStub(port=old_port)        # the runner restarted on the same port
import base64
import hashlib
import json
import math
import os
import re
import selectors
import socket
import struct
import sys
import threading
import time

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

DEFAULT_MAX_PAYLOAD = 100 * 1024 * 1024  # the `ws` library's default maxPayload
HANDSHAKE_MAX = 16 * 1024
HANDSHAKE_TIMEOUT_S = 10.0
IO_TIMEOUT_S = 30.0  # a send that cannot progress for this long aborts the connection
JOIN_TIMEOUT_S = 5.0
_KEY_RE = re.compile(r"^[+/0-9A-Za-z]{22}==$")


class StubTimeout(AssertionError):
    """A bounded wait of the stub ran out."""


class _Undefined:
    """JavaScript's `undefined`: a member holding it is left out by js_json."""

    def __repr__(self):
        return "undefined"


UNDEFINED = _Undefined()


# ---------------------------------------------------------------- JSON as JavaScript writes it


def js_number(v):
    """A number as JavaScript's Number#toString writes it (shortest round trip digits)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    v = float(v)
    if math.isnan(v) or math.isinf(v):
        return "null"  # what JSON.stringify makes of them
    if v == 0:
        return "0"
    sign = "-" if v < 0 else ""
    r = repr(abs(v))
    mant, _, exp = r.partition("e")
    whole, _, frac = mant.partition(".")
    if frac == "0":
        frac = ""
    digits = whole + frac
    point = len(whole) + (int(exp) if exp else 0)  # decimal point after `point` digits
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k, n = len(digits), point
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        es = ("+" if e >= 0 else "-") + str(abs(e))
        out = digits + "e" + es if k == 1 else digits[0] + "." + digits[1:] + "e" + es
    return sign + out


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def js_string(s):
    out = json.dumps(s, ensure_ascii=False)
    # a str never holds a paired surrogate, so any surrogate here is lone: JS escapes those
    return _LONE_SURROGATE.sub(lambda m: "\\u%04x" % ord(m.group()), out)


def js_json(v):
    """JSON.stringify(v): compact, members in insertion order, undefined members left out."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return js_number(v)
    if isinstance(v, str):
        return js_string(v)
    if isinstance(v, (bytes, bytearray)):  # a Node Buffer's toJSON
        return '{"type":"Buffer","data":[' + ",".join(str(b) for b in v) + "]}"
    if isinstance(v, dict):
        parts = [js_string(str(k)) + ":" + js_json(x) for k, x in v.items()
                 if x is not UNDEFINED]
        return "{" + ",".join(parts) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join("null" if x is UNDEFINED else js_json(x) for x in v) + "]"
    if v is UNDEFINED:
        return "null"
    raise TypeError("js_json: cannot write %r" % (v,))


def _js_typeof(v):
    if v is UNDEFINED:
        return "undefined"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "object"  # null, objects, arrays


def _js_str(v):
    """String(v) for the values a parsed JSON message can hold."""
    if v is UNDEFINED:
        return "undefined"
    if v is None:
        return "null"
    if isinstance(v, (bool, int, float)):
        return js_number(v)
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return ",".join("" if x is None else _js_str(x) for x in v)
    return "[object Object]"


def _reject_constant(name):
    raise ValueError("Unexpected token %s in JSON" % name[0])


def _js_parse(text):
    """JSON.parse(text); ValueError with a message like V8's on bad input."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        if e.pos >= len(text):
            raise ValueError("Unexpected end of JSON input")
        raise ValueError("Unexpected token %s in JSON at position %d" % (text[e.pos], e.pos))


# ---------------------------------------------------------------- fixtures


def fixtures_dir():
    """tests/fixtures of this checkout (EI_FIXTURES, as CMake sets it, names the same)."""
    return os.environ.get("EI_FIXTURES") or \
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")


def fixture_path(name):
    """A runner-ws fixture by file name ("classification.jsonl"), short name
    ("classification"), or a path."""
    if os.sep in name or os.path.exists(name):
        return name
    if not name.endswith(".jsonl"):
        name += ".jsonl"
    return os.path.join(fixtures_dir(), "runner-ws", name)


_LINE_RE = re.compile(r'^\{"dir":"(server|client)","msg":(.*)\}\s*$', re.S)


def load_fixture(name):
    """The fixture's messages as (dir, raw_text, parsed): raw_text is the message's JSON text
    exactly as recorded (taken from the line), so it can be sent byte for byte."""
    out = []
    with open(fixture_path(name), encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            doc = json.loads(line)
            m = _LINE_RE.match(line)
            raw = m.group(2) if m else None
            if raw is None or json.loads(raw) != doc["msg"]:
                raw = js_json(doc["msg"])
            out.append((doc["dir"], raw, doc["msg"]))
    return out


def fixture_hello(name="classification"):
    """The raw text of the fixture's hello."""
    for d, raw, msg in load_fixture(name):
        if d == "server" and msg.get("type") == "hello":
            return raw
    raise ValueError("no hello in fixture %s" % name)


# ---------------------------------------------------------------- frames


def accept_value(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode("ascii")).digest()).decode()


def encode_frame(opcode, payload, fin=True, rsv=0, mask_key=None):
    """One frame. Servers send unmasked frames; mask_key (4 bytes) makes a masked one (which a
    client must treat as a protocol error: for tests)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    mbit = 0x80 if mask_key is not None else 0
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask_key is None:
        return head + bytes(payload)
    return head + bytes(mask_key) + _mask(payload, mask_key)


def text_frame(text):
    """A server text frame of text (str or UTF-8 bytes)."""
    return encode_frame(OP_TEXT, text)


def _mask(data, key):
    n = len(data)
    if n == 0:
        return b""
    k = int.from_bytes((bytes(key) * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ k).to_bytes(n, "big")


def close_payload(code=None, reason=""):
    if code is None:
        return b""
    return struct.pack("!H", code) + reason.encode("utf-8")


def data_url(image, mime="image/jpeg"):
    return "data:%s;base64,%s" % (mime, base64.b64encode(image).decode("ascii"))


class _ProtocolError(Exception):
    def __init__(self, code, why):
        Exception.__init__(self, why)
        self.code = code


class _Closed(Exception):
    pass


# ---------------------------------------------------------------- one client connection


class StubConnection:
    """One client of the stub, after its handshake. Thread-safe; the stub's condition guards
    the lists below."""

    def __init__(self, stub, sock, index, path, headers, leftover):
        self.stub = stub
        self.sock = sock
        self.index = index  # accept order, 0-based
        self.path = path  # request target as sent
        self.headers = headers  # request headers, lower-case names
        self.wants_preview = False  # asked for camera-preview frames
        self.messages = []  # (opcode, bytes) of every complete client message
        self.replies = []  # texts the stub's runner logic answered
        self.pongs = []  # payloads of pongs received
        self.pings = []  # payloads of pings received (each answered)
        self.close_received = None  # (code or None, reason) of the client's close frame
        self.close_sent = None  # (code, reason) the stub sent
        self.protocol_error = None  # (code, why) when the stub closed for a violation
        self.open = True
        self.sent_frames = 0
        self._buf = bytearray(leftover)
        self._pos = 0
        self._wlock = threading.Lock()
        self._thread = None

    # -- state, under the stub's condition --

    def _notify(self):
        with self.stub.cond:
            self.stub.cond.notify_all()

    def received(self):
        """Every complete message the client sent, in order: JSON texts parsed, other texts as
        str, binary messages as bytes."""
        with self.stub.cond:
            msgs = list(self.messages)
        return [_parsed(op, data) for op, data in msgs]

    def received_raw(self):
        """(opcode, bytes) of every complete message the client sent."""
        with self.stub.cond:
            return list(self.messages)

    def wait_received(self, n=1, timeout=10.0):
        """Waits until the client sent at least n messages; returns received()."""
        self.stub._wait(lambda: len(self.messages) >= n, timeout,
                        "%d message(s) from client %d (got %d)" % (n, self.index,
                                                                   len(self.messages)))
        return self.received()

    def wait_closed(self, timeout=10.0):
        self.stub._wait(lambda: not self.open, timeout, "client %d closed" % self.index)

    def wait_pong(self, n=1, timeout=10.0):
        self.stub._wait(lambda: len(self.pongs) >= n, timeout, "%d pong(s)" % n)
        with self.stub.cond:
            return list(self.pongs)

    # -- sending --

    def send_raw(self, data):
        """Writes bytes as they are (no framing). False when the connection is gone."""
        with self._wlock:
            if not self.open:
                return False
            try:
                self.sock.sendall(data)
                return True
            except OSError as e:
                self.stub._event("client %d: send failed: %s" % (self.index, e))
                self._teardown()
                return False

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, mask_key=None):
        """One frame of any opcode: for fragmented, binary, control or malformed frames."""
        ok = self.send_raw(encode_frame(opcode, payload, fin, rsv, mask_key))
        if ok:
            with self.stub.cond:
                self.sent_frames += 1
        return ok

    def send_text(self, text):
        return self.send_frame(OP_TEXT, text)

    def send_json(self, obj):
        return self.send_text(js_json(obj))

    def ping(self, payload=b""):
        return self.send_frame(OP_PING, payload)

    def close(self, code=1000, reason="", timeout=5.0):
        """Close handshake started by the stub: sends close, waits (bounded) for the client's
        close, then closes the TCP connection. True when the client answered."""
        with self._wlock:
            if self.open and self.close_sent is None:
                try:
                    self.sock.sendall(encode_frame(OP_CLOSE, close_payload(code, reason)))
                except OSError:
                    pass
                self.close_sent = (code, reason)
        deadline = time.monotonic() + timeout
        with self.stub.cond:
            self.stub.cond.wait_for(lambda: self.close_received is not None or not self.open,
                                    max(0.0, deadline - time.monotonic()))
            answered = self.close_received is not None
        self._teardown()
        return answered

    def abort(self, rst=False):
        """Drops the TCP connection without a close frame, as when the runner process dies
        (FIN; rst=True sends a reset instead)."""
        if rst:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
            except OSError:
                pass
        self._teardown()

    def join(self, timeout=JOIN_TIMEOUT_S):
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _teardown(self):
        with self.stub.cond:
            was_open = self.open
            self.open = False
            self.stub.cond.notify_all()
        if was_open:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                self.sock.close()
            except OSError:
                pass

    # -- receiving (the connection's own thread) --

    def _need(self, n):
        while len(self._buf) - self._pos < n:
            if self._pos > 65536:
                del self._buf[:self._pos]
                self._pos = 0
            try:
                chunk = self.sock.recv(262144)
            except socket.timeout:
                if not self.open:
                    raise _Closed()
                continue  # idle client: keep waiting (stop() shuts the socket down)
            except OSError:
                raise _Closed()
            if not chunk:
                raise _Closed()
            self._buf += chunk

    def _take(self, n):
        self._need(n)
        out = bytes(self._buf[self._pos:self._pos + n])
        self._pos += n
        return out

    def _read_frame(self):
        b0, b1 = self._take(2)
        fin, rsv, op = bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F
        masked, n = bool(b1 & 0x80), b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8))[0]
            if n >> 63:
                raise _ProtocolError(1002, "invalid payload length (MSB set)")
        if rsv:
            raise _ProtocolError(1002, "RSV bits must be clear (got %d)" % rsv)
        if not masked:
            raise _ProtocolError(1002, "MASK must be set")
        if op >= 8 and (not fin or n > 125):
            raise _ProtocolError(1002, "invalid control frame (fin %s, %d bytes)" % (fin, n))
        if n > self.stub.max_payload:
            raise _ProtocolError(1009, "max payload size exceeded (%d bytes)" % n)
        key = self._take(4)
        return fin, op, _mask(self._take(n), key)

    def _run(self):
        try:
            self._serve()
        except _ProtocolError as e:
            self.stub._event("client %d: protocol error %d: %s" % (self.index, e.code, e))
            with self.stub.cond:
                self.protocol_error = (e.code, str(e))
            with self._wlock:
                if self.open and self.close_sent is None:
                    try:
                        self.sock.sendall(encode_frame(OP_CLOSE, close_payload(e.code)))
                    except OSError:
                        pass
                    self.close_sent = (e.code, "")
        except _Closed:
            pass
        except Exception as e:  # a bug in the stub: make it visible, never hang
            self.stub._event("client %d: stub error %r" % (self.index, e))
        finally:
            self._teardown()
            self.stub._event("client %d: closed" % self.index)

    def _serve(self):
        frag_op, frag = None, []
        frag_len = 0
        while True:
            fin, op, payload = self._read_frame()
            if op == OP_CLOSE:
                self._on_close(payload)
                return
            if op == OP_PING:
                with self.stub.cond:
                    self.pings.append(payload)
                self.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                with self.stub.cond:
                    self.pongs.append(payload)
                    self.stub.cond.notify_all()
                continue
            if op == OP_CONT:
                if frag_op is None:
                    raise _ProtocolError(1002, "invalid opcode 0: nothing to continue")
                frag.append(payload)
                frag_len += len(payload)
                if frag_len > self.stub.max_payload:
                    raise _ProtocolError(1009, "max payload size exceeded")
                if fin:
                    self._deliver(frag_op, b"".join(frag))
                    frag_op, frag, frag_len = None, [], 0
                continue
            if op in (OP_TEXT, OP_BINARY):
                if frag_op is not None:
                    raise _ProtocolError(1002, "invalid opcode %d: expected a continuation" % op)
                if fin:
                    self._deliver(op, payload)
                else:
                    frag_op, frag, frag_len = op, [payload], len(payload)
                continue
            raise _ProtocolError(1002, "invalid opcode %d" % op)

    def _on_close(self, payload):
        if len(payload) == 1:
            raise _ProtocolError(1002, "invalid close payload length 1")
        code, reason = None, ""
        if len(payload) >= 2:
            code = struct.unpack("!H", payload[:2])[0]
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise _ProtocolError(1007, "invalid UTF-8 in the close reason")
            if code < 1000 or code in (1004, 1005, 1006) or 1015 <= code < 3000 or code > 4999:
                raise _ProtocolError(1002, "invalid close code %d" % code)
        with self.stub.cond:
            self.close_received = (code, reason)
            self.stub.cond.notify_all()
        with self._wlock:
            if self.open and self.close_sent is None:  # echo, as `ws` does
                try:
                    self.sock.sendall(encode_frame(OP_CLOSE, payload))
                except OSError:
                    pass
                self.close_sent = (code, reason)
        self.stub._event("client %d: close %r %r" % (self.index, code, reason))

    def _deliver(self, op, data):
        text = None
        if op == OP_TEXT:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise _ProtocolError(1007, "invalid UTF-8 in a text message")
        # The runner's handling and its reply first: a test that saw the message also sees its
        # effect, and whatever the test sends next follows the reply on the wire.
        reply = self.stub._runner_reply(self, text if op == OP_TEXT else data)
        self.send_text(reply)
        with self.stub.cond:
            self.replies.append(reply)
            self.messages.append((op, data))
            self.stub._all_messages.append((self.index, op, data))
            self.stub.cond.notify_all()


def _parsed(op, data):
    if op != OP_TEXT:
        return bytes(data)
    text = data.decode("utf-8")
    try:
        return json.loads(text)
    except ValueError:
        return text


# ---------------------------------------------------------------- the runner


class RunnerStub:
    """The runner's preview WebSocket server on host:port (port 0: a free one).

    hello: what to send on connect: a fixture name ("classification", "object-detection") or
      path, a raw JSON text, a dict (a model: sent as {"type":"hello", **model}; a dict with
      "type" is sent as it is), or None for no hello.
    drop_repeated_frames: like the runner, a preview identical to the previous one is not sent
      (classify() still sends the classification).
    """

    def __init__(self, port=0, host="127.0.0.1", hello="classification",
                 drop_repeated_frames=True, max_payload=DEFAULT_MAX_PAYLOAD, verbose=None):
        self.host = host
        self.max_payload = max_payload
        self.drop_repeated_frames = drop_repeated_frames
        self.verbose = bool(os.environ.get("RUNNER_STUB_DEBUG")) if verbose is None else verbose
        self.hello_text = self._hello_text(hello)
        self.hello = json.loads(self.hello_text) if self.hello_text else None
        self.cond = threading.Condition()
        self._conns = []  # every connection that completed its handshake
        self._handed = 0  # how many wait_client() returned
        self._pending = set()  # sockets still in their handshake
        self._all_messages = []  # (conn index, opcode, bytes)
        self._events = []
        self.handshakes = []  # (path, status) of every HTTP request seen
        self._last_frame = None
        self._stopping = False
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._lsock.bind((host, port))
            self._lsock.listen(64)
        except OSError:
            self._lsock.close()
            raise
        self._lsock.setblocking(False)
        self.port = self._lsock.getsockname()[1]
        self.url = "ws://%s:%d/" % (host, self.port)
        self._wake_r, self._wake_w = socket.socketpair()
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True,
                                               name="runner-stub-accept")
        self._accept_thread.start()

    @staticmethod
    def _hello_text(hello):
        if hello is None:
            return None
        if isinstance(hello, dict):
            return js_json(hello if "type" in hello else dict({"type": "hello"}, **hello))
        if isinstance(hello, str) and hello.lstrip().startswith("{"):
            return hello
        return fixture_hello(hello)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- bookkeeping --

    def _event(self, what):
        with self.cond:
            self._events.append(what)
        if self.verbose:
            sys.stderr.write("[runner-stub :%d] %s\n" % (self.port, what))

    def events(self):
        with self.cond:
            return list(self._events)

    def _wait(self, pred, timeout, what):
        with self.cond:
            if not self.cond.wait_for(pred, timeout):
                raise StubTimeout("runner stub: timed out after %.1f s waiting for %s" %
                                  (timeout, what))

    def connections(self):
        """Every connection that completed its handshake, in accept order."""
        with self.cond:
            return list(self._conns)

    def clients(self):
        """The open connections."""
        with self.cond:
            return [c for c in self._conns if c.open]

    def wait_client(self, timeout=10.0):
        """The next connection not yet returned by wait_client, once its handshake is done and
        its hello was sent."""
        self._wait(lambda: len(self._conns) > self._handed, timeout,
                   "client connection #%d" % (self._handed + 1))
        with self.cond:
            c = self._conns[self._handed]
            self._handed += 1
            return c

    def wait_connections(self, n, timeout=10.0):
        """Waits until n connections in total completed their handshake."""
        self._wait(lambda: len(self._conns) >= n, timeout, "%d connection(s)" % n)
        return self.connections()

    def received(self):
        """Every message of every client, in arrival order (parsed as StubConnection.received)."""
        with self.cond:
            msgs = list(self._all_messages)
        return [_parsed(op, data) for _i, op, data in msgs]

    def wait_received(self, n=1, timeout=10.0):
        self._wait(lambda: len(self._all_messages) >= n, timeout,
                   "%d message(s) from clients" % n)
        return self.received()

    # -- sending to every open client (like the runner's loops over its clients) --

    def _each(self, fn, previews_only=False):
        n = 0
        for c in self.clients():
            if previews_only and not c.wants_preview:
                continue
            if fn(c):
                n += 1
        return n

    def send_text(self, text):
        """A text message to every open client; returns how many got it."""
        frame = text_frame(text)
        return self._each(lambda c: c.send_raw(frame))

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, mask_key=None):
        return self._each(lambda c: c.send_frame(opcode, payload, fin, rsv, mask_key))

    def send_raw(self, data):
        return self._each(lambda c: c.send_raw(data))

    def camera_preview(self, image, mime="image/jpeg"):
        """A camera-preview to the clients that asked for previews. image: bytes (sent as a
        data URL of mime) or str (the "image" value as it is, e.g. a broken data URL)."""
        value = image if isinstance(image, str) else data_url(image, mime)
        frame = text_frame(js_json({"type": "camera-preview", "image": value}))
        return self._each(lambda c: c.send_raw(frame), previews_only=True)

    def classification_text(self, result, time_ms=2, info=None):
        msg = {"type": "classification", "result": result, "timeMs": time_ms}
        if info is not None:
            msg["additionalInfo"] = info
        return js_json(msg)

    def classify(self, result, image_bytes=None, time_ms=2, info=None, mime="image/jpeg"):
        """One inference as the runner reports it: the frame (to the clients that asked for
        previews, unless identical to the previous frame) then the classification (to every
        client). Returns {"previews": n, "classifications": n, "text": classification text}."""
        previews = 0
        if image_bytes is not None:
            same = self.drop_repeated_frames and image_bytes == self._last_frame
            self._last_frame = image_bytes
            if not same:
                previews = self.camera_preview(image_bytes, mime)
        text = self.classification_text(result, time_ms, info)
        return {"previews": previews, "classifications": self.send_text(text), "text": text}

    def replay_fixture(self, name):
        """Sends every server message of a fixture after its hello, byte for byte: previews to
        the clients that asked for them, the rest to all. The recorded replies
        (handling-message-*) are left out: the stub answers the client's requests itself.
        Returns the parsed messages sent, in order."""
        sent = []
        seen_hello = False
        for d, raw, msg in load_fixture(name):
            if d != "server":
                continue
            t = msg.get("type") if isinstance(msg, dict) else None
            if t == "hello" and not seen_hello:
                seen_hello = True
                continue
            if t in ("handling-message-success", "handling-message-error"):
                continue
            frame = text_frame(raw)
            self._each(lambda c: c.send_raw(frame), previews_only=(t == "camera-preview"))
            sent.append(msg)
        return sent

    # -- ending --

    def close(self, code=1001, reason="", timeout=5.0):
        """Closes every client connection with a close handshake; keeps listening, so clients
        may reconnect. Returns how many clients answered the close."""
        return sum(1 for c in self.clients() if c.close(code, reason, timeout))

    def drop(self, rst=False):
        """Drops every client connection without a close frame; keeps listening."""
        for c in self.clients():
            c.abort(rst)

    def stop(self, code=None, timeout=5.0):
        """Stops listening and ends every connection: without a close frame (code None, as when
        the runner process is killed), or with a close handshake of code. Idempotent."""
        with self.cond:
            if self._stopping:
                return
            self._stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self._accept_thread.join(JOIN_TIMEOUT_S)
        try:
            self._lsock.close()
        except OSError:
            pass
        with self.cond:
            pending = list(self._pending)
        for s in pending:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for c in self.connections():
            if code is None:
                c.abort()
            else:
                c.close(code, "", timeout)
        for c in self.connections():
            c.join()
        for s in (self._wake_r, self._wake_w):
            s.close()

    # -- accepting (the accept thread) --

    def _accept_loop(self):
        sel = selectors.DefaultSelector()
        sel.register(self._lsock, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._stopping:
                for key, _ in sel.select():
                    if key.fileobj is self._wake_r:
                        return
                    try:
                        s, _addr = self._lsock.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        return
                    s.setblocking(True)
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    with self.cond:
                        self._pending.add(s)
                    threading.Thread(target=self._handshake, args=(s,), daemon=True,
                                     name="runner-stub-conn").start()
        finally:
            sel.close()

    def _http_reply(self, s, status, reason, body, ctype="text/html; charset=utf-8"):
        body = body.encode("utf-8")
        head = ("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                "Connection: close\r\n\r\n" % (status, reason, ctype, len(body)))
        try:
            s.sendall(head.encode("latin-1") + body)
        except OSError:
            pass

    def _handshake(self, s):
        conn = None
        try:
            s.settimeout(HANDSHAKE_TIMEOUT_S)
            buf = b""
            while b"\r\n\r\n" not in buf:
                if len(buf) > HANDSHAKE_MAX:
                    self._http_reply(s, 431, "Request Header Fields Too Large", "")
                    return
                try:
                    chunk = s.recv(4096)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
            head, _, leftover = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                self._http_reply(s, 400, "Bad Request", "Bad Request")
                self._seen(lines[0], 400)
                return
            method, target = parts[0], parts[1]
            headers = {}
            for ln in lines[1:]:
                name, _, value = ln.partition(":")
                k, v = name.strip().lower(), value.strip()
                headers[k] = headers[k] + ", " + v if k in headers else v
            pathname = target.split("?", 1)[0].split("#", 1)[0]
            upgrade = headers.get("upgrade", "").lower() == "websocket"
            if pathname != "/" or (not upgrade and method != "GET"):
                self._http_reply(s, 404, "Not Found", "<!DOCTYPE html>\n<html lang=\"en\">\n"
                                 "<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n"
                                 "</head>\n<body>\n<pre>Cannot %s %s</pre>\n</body>\n</html>\n"
                                 % (method, pathname))
                self._seen(target, 404)
                return
            if not upgrade:
                self._http_reply(s, 200, "OK", "<!doctype html><title>runner stub</title>\n")
                self._seen(target, 200)
                return
            key = headers.get("sec-websocket-key", "")
            version = headers.get("sec-websocket-version", "")
            conn_tokens = [t.strip().lower() for t in headers.get("connection", "").split(",")]
            if method != "GET" or "upgrade" not in conn_tokens or not _KEY_RE.match(key) or \
                    version not in ("8", "13"):
                self._http_reply(s, 400, "Bad Request", "Bad Request", "text/html")
                self._seen(target, 400)
                return
            resp = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n" % accept_value(key))
            proto = headers.get("sec-websocket-protocol")
            if proto:
                resp += "Sec-WebSocket-Protocol: %s\r\n" % proto.split(",")[0].strip()
            s.settimeout(IO_TIMEOUT_S)
            s.sendall((resp + "\r\n").encode("latin-1"))
            self._seen(target, 101)
            with self.cond:
                if self._stopping:
                    return
                conn = StubConnection(self, s, len(self._conns), target, headers, leftover)
                conn._thread = threading.current_thread()
            if self.hello_text is not None:
                conn.send_text(self.hello_text)
            with self.cond:
                self._pending.discard(s)
                self._conns.append(conn)
                self.cond.notify_all()
            self._event("client %d: connected (%s)" % (conn.index, target))
            conn._run()
        finally:
            with self.cond:
                self._pending.discard(s)
            if conn is None:
                try:
                    s.close()
                except OSError:
                    pass

    def _seen(self, target, status):
        with self.cond:
            self.handshakes.append((target, status))
            self.cond.notify_all()
        self._event("HTTP %s -> %d" % (target, status))

    # -- the runner's message handling --

    def _runner_reply(self, conn, msg):
        """The runner's answer to one client message (text: str, binary: bytes), as JSON text;
        it also applies set-camera-preview / toggle-camera-preview / threshold-override."""
        message_id = UNDEFINED
        try:
            if not isinstance(msg, str):
                self._event("client %d: binary message of %d bytes (the runner accepts text "
                            "only)" % (conn.index, len(msg)))
                raise ValueError('Can only handle messages of type "string"')
            body = _js_parse(msg)
            if body is None:
                raise ValueError("Cannot read properties of null (reading 'messageId')")
            get = (lambda k: body.get(k, UNDEFINED)) if isinstance(body, dict) else \
                (lambda k: UNDEFINED)
            message_id = get("messageId")
            typ = get("type")
            if typ == "threshold-override":
                self._threshold_override(get("id"), get("key"), get("value"))
            elif typ in ("toggle-camera-preview", "set-camera-preview"):
                enabled = get("enabled")
                if not isinstance(enabled, bool):
                    raise ValueError('Invalid value for "enabled", should be a boolean (type: %s)'
                                     % _js_typeof(enabled))
                with self.cond:
                    conn.wants_preview = enabled
            else:
                raise ValueError('Invalid "type" (%s)' % _js_str(typ))
            return js_json({"messageId": message_id, "type": "handling-message-success",
                            "message": msg})
        except ValueError as e:
            self._event("client %d: handling-message-error: %s" % (conn.index, e))
            return js_json({"messageId": message_id, "type": "handling-message-error",
                            "message": msg, "error": str(e)})

    def _threshold_override(self, tid, key, value):
        try:
            if not isinstance(tid, (int, float)) or isinstance(tid, bool):
                raise ValueError('Invalid value for "id", should be a number (type: %s)' %
                                 _js_typeof(tid))
            if not isinstance(key, str) or key == "":
                raise ValueError('Invalid value for "key", should be a string (type: %s)' %
                                 _js_typeof(key))
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError('Invalid value for "value", should be a number (type: %s)' %
                                 _js_typeof(value))
            params = (self.hello or {}).get("modelParameters") or {}
            obj = next((t for t in params.get("thresholds") or [] if t.get("id") == tid), None)
            if obj is None:
                raise ValueError("Cannot find threshold with ID " + js_number(tid))
            keys = [k for k in obj if k not in ("id", "type")]
            if key not in keys:
                raise ValueError('Threshold key "%s" not found (valid keys: [ %s ])' %
                                 (key, ", ".join('"%s"' % k for k in keys)))
            obj[key] = value
        except ValueError as e:
            raise ValueError('Failed to set threshold "%s" (block ID: %s): %s' %
                             (_js_str(key), _js_str(tid), e))
