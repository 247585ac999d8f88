# stub_connection.py - the WebSocket side of the runner stand-in (runner_stub.py): RFC 6455
# frames as a server writes them, and StubConnection, one client connection after its
# handshake, read on its own thread (masked frames required, ping answered, fragments joined,
# close echoed, protocol errors closed with the `ws` library's codes). The runner logic that
# answers each message lives in RunnerStub; the connection calls it through its stub.
import base64
import hashlib
import json
import socket
import struct
import threading
import time

from .js_json import js_json

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

JOIN_TIMEOUT_S = 5.0


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

