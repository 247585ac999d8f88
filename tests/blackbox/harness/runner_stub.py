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
import json
import os
import re
import selectors
import socket
import sys
import threading

from .js_json import UNDEFINED, _js_parse, _js_str, _js_typeof, js_json, js_number  # noqa: F401
from .paths import fixture_path as _fixture_file
from .stub_connection import (JOIN_TIMEOUT_S, OP_BINARY, OP_CLOSE, OP_CONT,  # noqa: F401
                              OP_PING, OP_PONG, OP_TEXT, StubConnection, _parsed, accept_value,
                              close_payload, data_url, encode_frame, text_frame)

DEFAULT_MAX_PAYLOAD = 100 * 1024 * 1024  # the `ws` library's default maxPayload
HANDSHAKE_MAX = 16 * 1024
HANDSHAKE_TIMEOUT_S = 10.0
IO_TIMEOUT_S = 30.0  # a send that cannot progress for this long aborts the connection
_KEY_RE = re.compile(r"^[+/0-9A-Za-z]{22}==$")


class StubTimeout(AssertionError):
    """A bounded wait of the stub ran out."""


# ---------------------------------------------------------------- fixtures


def fixture_path(name):
    """A runner-ws session of tests/fixtures by file name ("classification.jsonl"), short name
    ("classification"), or a path."""
    if os.sep in name or os.path.exists(name):
        return name
    if not name.endswith(".jsonl"):
        name += ".jsonl"
    return _fixture_file("runner-ws", name)


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
