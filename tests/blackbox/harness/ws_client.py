# ws_client.py - a small RFC 6455 WebSocket client for the black-box tests and benchmarks of
# ei-relay's live stream (docs/live.md). Python 3 standard library only.
#
#   ws = WsClient(port)                      # TCP connect + upgrade, Sec-WebSocket-Accept checked
#   ws.send_json({"type": "auth", ...})      # masked text frame
#   doc = ws.recv_json(timeout=5)            # one whole message (fragments joined), a JSON object
#   code, reason = ws.wait_close(timeout=5)  # until the server's close frame (or EOF)
#   ws.close()                               # close handshake, bounded
#
# Every wait is bounded by a timeout (WsTimeout when it runs out). Server frames are checked
# against the RFC (unmasked, no RSV bits, control frames short and unfragmented, known opcodes):
# a violation raises WsProtocolError. Pings from the server are answered with pongs automatically
# (unless auto_pong is False). For bad-input tests send_frame() writes any frame (unmasked,
# reserved bits, fragments) and send_raw() any bytes.
#
# FrameParser and MessageReader are the incremental parts, usable from a selectors loop (the
# benchmark uses them with non-blocking sockets).
import base64
import hashlib
import json
import os
import socket
import struct
import time

LIVE_PATH = "/api/v1/live"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
DATA_OPCODES = (OP_CONT, OP_TEXT, OP_BINARY)
CONTROL_OPCODES = (OP_CLOSE, OP_PING, OP_PONG)

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED = 1003
CLOSE_NO_STATUS = 1005     # a close frame without a code (never sent on the wire)
CLOSE_ABNORMAL = 1006      # the TCP connection ended without a close frame (never on the wire)
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009


class WsError(AssertionError):
    """Base of this module's errors (an AssertionError, so a test reports it as a failure)."""


class WsTimeout(WsError):
    pass


class WsProtocolError(WsError):
    pass


class WsClosed(WsError):
    """The connection is closed: code/reason of the server's close frame, or 1006 on EOF."""

    def __init__(self, code, reason=""):
        WsError.__init__(self, "connection closed (code %s, reason %r)" % (code, reason))
        self.code = code
        self.reason = reason


class HandshakeError(WsError):
    """The server did not switch protocols. status is the HTTP status (None if none came)."""

    def __init__(self, msg, status=None, headers=None, body=b""):
        WsError.__init__(self, msg)
        self.status = status
        self.headers = headers or {}
        self.body = body


def wrap_tls(sock, ssl_context, host):
    """The connected sock inside TLS (handshake done, host name checked); closes sock and
    raises when the handshake fails."""
    try:
        return ssl_context.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise


def accept_key(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode("ascii")).digest()).decode()


def mask_bytes(data, key):
    """XOR data with the 4-byte key repeated (the same operation masks and unmasks)."""
    n = len(data)
    if n == 0:
        return b""
    reps = key * (n // 4 + 1)
    x = int.from_bytes(data, "big") ^ int.from_bytes(reps[:n], "big")
    return x.to_bytes(n, "big")


def build_frame(opcode, payload=b"", fin=True, masked=True, rsv=0, mask_key=None,
                length_override=None):
    """One frame's bytes. rsv: the three RSV bits as a number 0..7. length_override writes a
    different payload length in the header than the payload really has (bad-input tests)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    n = len(payload) if length_override is None else length_override
    mbit = 0x80 if masked else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if masked:
        key = mask_key if mask_key is not None else os.urandom(4)
        return head + key + mask_bytes(payload, key)
    return head + payload


def close_payload(code=None, reason=""):
    if code is None:
        return b""
    return struct.pack("!H", code) + reason.encode("utf-8")


class Frame:
    __slots__ = ("fin", "rsv", "opcode", "masked", "payload")

    def __init__(self, fin, rsv, opcode, masked, payload):
        self.fin, self.rsv, self.opcode, self.masked, self.payload = fin, rsv, opcode, masked, payload

    def __repr__(self):
        return "<Frame fin=%d rsv=%d op=%d masked=%d len=%d>" % (
            self.fin, self.rsv, self.opcode, self.masked, len(self.payload))


class FrameParser:
    """Incremental frame parser: feed() bytes, next_frame() returns a Frame or None when the
    buffer holds no whole frame. As a client's parser it checks what RFC 6455 requires of
    server frames."""

    def __init__(self, server_side=False, max_payload=1 << 27):
        self.buf = bytearray()
        self.pos = 0
        self.server_side = server_side  # True: parse frames sent by a client (must be masked)
        self.max_payload = max_payload

    def feed(self, data):
        if self.pos > 65536 and self.pos * 2 > len(self.buf):
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += data

    def buffered(self):
        return len(self.buf) - self.pos

    def next_frame(self):
        buf, p = self.buf, self.pos
        avail = len(buf) - p
        if avail < 2:
            return None
        b0, b1 = buf[p], buf[p + 1]
        fin, rsv, opcode = bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F
        masked, n = bool(b1 & 0x80), b1 & 0x7F
        hl = 2
        if n == 126:
            if avail < 4:
                return None
            n = struct.unpack_from("!H", buf, p + 2)[0]
            hl = 4
            if n < 126:
                raise WsProtocolError("16-bit length %d not minimal" % n)
        elif n == 127:
            if avail < 10:
                return None
            n = struct.unpack_from("!Q", buf, p + 2)[0]
            hl = 10
            if n >> 63:
                raise WsProtocolError("64-bit length with the top bit set")
            if n < 1 << 16:
                raise WsProtocolError("64-bit length %d not minimal" % n)
        if rsv:
            raise WsProtocolError("RSV bits %d set without a negotiated extension" % rsv)
        if opcode not in DATA_OPCODES and opcode not in CONTROL_OPCODES:
            raise WsProtocolError("unknown opcode 0x%x" % opcode)
        if opcode in CONTROL_OPCODES and (not fin or n > 125):
            raise WsProtocolError("control frame 0x%x fragmented or longer than 125 (%d)" %
                                  (opcode, n))
        if masked != self.server_side:
            raise WsProtocolError("%s frame is %smasked" % (
                "client" if self.server_side else "server", "" if masked else "not "))
        if n > self.max_payload:
            raise WsProtocolError("frame of %d bytes over the parser's limit" % n)
        if masked:
            if avail < hl + 4:
                return None
            key = bytes(buf[p + hl:p + hl + 4])
            hl += 4
        if avail < hl + n:
            return None
        payload = bytes(buf[p + hl:p + hl + n])
        if masked:
            payload = mask_bytes(payload, key)
        self.pos = p + hl + n
        if self.pos == len(buf):
            self.buf = bytearray()
            self.pos = 0
        return Frame(fin, rsv, opcode, masked, payload)


class MessageReader:
    """Turns frames into events, joining fragments:
      ("message", opcode, payload)  a whole text/binary message
      ("ping", payload) / ("pong", payload)
      ("close", code, reason)       code 1005 when the close frame had no payload"""

    def __init__(self):
        self.frag_op = None
        self.frags = []

    def on_frame(self, f):
        op = f.opcode
        if op == OP_CLOSE:
            p = f.payload
            if len(p) == 0:
                return ("close", CLOSE_NO_STATUS, "")
            if len(p) == 1:
                raise WsProtocolError("close frame with a 1-byte payload")
            code = struct.unpack("!H", p[:2])[0]
            try:
                reason = p[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise WsProtocolError("close reason is not UTF-8: %r" % p[2:])
            return ("close", code, reason)
        if op == OP_PING:
            return ("ping", f.payload)
        if op == OP_PONG:
            return ("pong", f.payload)
        if op == OP_CONT:
            if self.frag_op is None:
                raise WsProtocolError("continuation frame without a started message")
            self.frags.append(f.payload)
            if not f.fin:
                return None
            op, data = self.frag_op, b"".join(self.frags)
            self.frag_op, self.frags = None, []
            return ("message", op, data)
        # text or binary
        if self.frag_op is not None:
            raise WsProtocolError("new data frame inside a fragmented message")
        if f.fin:
            return ("message", op, f.payload)
        self.frag_op, self.frags = op, [f.payload]
        return None


def parse_json_message(payload):
    """A text message's payload -> the JSON object; it must be an object with a string type."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise WsProtocolError("text message is not UTF-8: %r" % payload[:200])
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise WsError("server message is not JSON (%s): %r" % (e, text[:300]))
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise WsError("server message is not an object with a type: %r" % text[:300])
    return doc


class WsClient:
    """One client connection. port/host/path: where to connect. rcvbuf: SO_RCVBUF set before
    connect (a small value makes a slow reader). headers: extra request headers (dict).
    handshake=False only connects TCP (call handshake() yourself). source: the local address
    to connect from (e.g. "127.0.0.2", another client as far as the relay can tell).
    ssl_context: speak WSS (an ssl.SSLContext that trusts the relay's certificate)."""

    def __init__(self, port, host="127.0.0.1", path=LIVE_PATH, timeout=10.0, rcvbuf=None,
                 headers=None, handshake=True, source=None, ssl_context=None):
        self.host, self.port, self.path = host, port, path
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        try:
            if source is not None:
                self.sock.bind((source, 0))
            self.sock.connect((host, port))
        except OSError:
            self.sock.close()
            raise
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ssl_context is not None:
            self.sock = wrap_tls(self.sock, ssl_context, host)
        self.parser = FrameParser()
        self.reader = MessageReader()
        self.auto_pong = True
        self.pongs = []            # payloads of pong frames received
        self.pings = []            # payloads of ping frames received
        self.close_sent = False
        self.closed = None         # (code, reason) once the server's close frame or EOF came
        self.eof = False
        self.response_headers = {}
        self.bytes_in = 0
        if handshake:
            try:
                self.handshake(headers)
            except BaseException:
                self.sock.close()
                raise

    # -- opening handshake --

    def handshake(self, headers=None):
        key = base64.b64encode(os.urandom(16)).decode()
        req = ["GET %s HTTP/1.1" % self.path,
               "Host: %s:%d" % (self.host, self.port),
               "Upgrade: websocket",
               "Connection: Upgrade",
               "Sec-WebSocket-Key: " + key,
               "Sec-WebSocket-Version: 13"]
        for k, v in (headers or {}).items():
            req.append("%s: %s" % (k, v))
        self.sock.sendall(("\r\n".join(req) + "\r\n\r\n").encode("latin-1"))
        deadline = time.monotonic() + self.timeout
        data = b""
        while b"\r\n\r\n" not in data:
            if len(data) > 65536:
                raise HandshakeError("response head over 64 KiB")
            chunk = self._recv_some(deadline, "upgrade response")
            if not chunk:
                if not data:
                    raise HandshakeError("connection closed before any response")
                break
            data += chunk
        head, sep, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise HandshakeError("bad status line %r" % lines[0])
        status = int(parts[1])
        hdrs = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            k = name.strip().lower()
            hdrs[k] = (hdrs[k] + ", " + value.strip()) if k in hdrs else value.strip()
        self.response_headers = hdrs
        if status != 101:
            body = rest
            n = hdrs.get("content-length")
            if n is not None and n.isdigit():
                while len(body) < int(n):
                    try:
                        chunk = self._recv_some(deadline, "error body")
                    except WsTimeout:
                        break
                    if not chunk:
                        break
                    body += chunk
            raise HandshakeError("upgrade refused: HTTP %d %s" % (status, body[:200]),
                                 status, hdrs, body)
        if hdrs.get("upgrade", "").lower() != "websocket":
            raise HandshakeError("101 without Upgrade: websocket (%r)" % hdrs)
        if "upgrade" not in [t.strip().lower() for t in hdrs.get("connection", "").split(",")]:
            raise HandshakeError("101 without Connection: Upgrade (%r)" % hdrs)
        got = hdrs.get("sec-websocket-accept")
        if got != accept_key(key):
            raise HandshakeError("Sec-WebSocket-Accept %r, expected %r" % (got, accept_key(key)))
        if hdrs.get("sec-websocket-extensions"):
            raise HandshakeError("server chose an extension nobody asked for: %r" %
                                 hdrs["sec-websocket-extensions"])
        if rest:
            self.parser.feed(rest)

    # -- low level --

    def _recv_some(self, deadline, what):
        left = deadline - time.monotonic()
        if left <= 0:
            raise WsTimeout("timed out waiting for %s" % what)
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(262144)
        except socket.timeout:
            raise WsTimeout("timed out waiting for %s" % what)
        except ConnectionResetError:
            chunk = b""
        self.bytes_in += len(chunk)
        return chunk

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", fin=True, masked=True, rsv=0, **kw):
        self.sock.sendall(build_frame(opcode, payload, fin=fin, masked=masked, rsv=rsv, **kw))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode("utf-8") if isinstance(text, str) else text)

    def send_binary(self, data):
        self.send_frame(OP_BINARY, data)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def send_fragments(self, payload, sizes, opcode=OP_TEXT):
        """One message in several frames of the given sizes (the last takes the rest)."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        pieces, p = [], 0
        for s in sizes:
            pieces.append(payload[p:p + s])
            p += s
        pieces.append(payload[p:])
        out = b""
        for i, piece in enumerate(pieces):
            out += build_frame(opcode if i == 0 else OP_CONT, piece, fin=(i == len(pieces) - 1))
        self.sock.sendall(out)

    def ping(self, payload=b""):
        self.send_frame(OP_PING, payload)

    def _event(self, deadline, what):
        """The next event (see MessageReader), reading from the socket as needed."""
        while True:
            f = self.parser.next_frame()
            if f is not None:
                ev = self.reader.on_frame(f)
                if ev is not None:
                    return ev
                continue
            if self.eof:
                return ("eof",)
            chunk = self._recv_some(deadline, what)
            if not chunk:
                self.eof = True
                if self.parser.buffered():
                    raise WsProtocolError("connection ended inside a frame (%d bytes left)" %
                                          self.parser.buffered())
                return ("eof",)
            self.parser.feed(chunk)

    def _on_close(self, code, reason):
        self.closed = (code, reason)
        if not self.close_sent:
            # echo the code, as RFC 6455 5.5.1 asks (1005/1006 are never sent: empty payload)
            self.close_sent = True
            try:
                self.send_frame(OP_CLOSE, close_payload(
                    None if code in (CLOSE_NO_STATUS, CLOSE_ABNORMAL) else code))
            except OSError:
                pass

    # -- messages --

    def recv_message(self, timeout=None):
        """(opcode, payload) of the next text/binary message. Control frames are handled on
        the way (ping answered, pong recorded). Raises WsClosed when the server closed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            ev = self._next(deadline)
            if ev is not None:
                return ev

    def _next(self, deadline):
        """Handles one event: returns (opcode, payload) for a message, None after a control
        frame, raises WsClosed at the close."""
        if self.closed is not None:
            raise WsClosed(*self.closed)
        ev = self._event(deadline, "a message")
        kind = ev[0]
        if kind == "message":
            return ev[1], ev[2]
        if kind == "ping":
            self.pings.append(ev[1])
            if self.auto_pong and not self.close_sent:
                self.send_frame(OP_PONG, ev[1])
        elif kind == "pong":
            self.pongs.append(ev[1])
        elif kind == "close":
            self._on_close(ev[1], ev[2])
            raise WsClosed(ev[1], ev[2])
        elif kind == "eof":
            self.closed = (CLOSE_ABNORMAL, "")
            raise WsClosed(CLOSE_ABNORMAL, "")
        return None

    def recv_json(self, timeout=None):
        """The next message as a JSON object with a "type" (a text message is required)."""
        op, payload = self.recv_message(timeout)
        if op != OP_TEXT:
            raise WsError("server sent a binary message (%d bytes); only text is expected" %
                          len(payload))
        return parse_json_message(payload)

    def wait_pong(self, payload, timeout=None):
        """Reads until a pong frame with this payload; messages read meanwhile are returned."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        skipped = []
        while payload not in self.pongs:
            try:
                m = self._next(deadline)
            except WsTimeout:
                raise WsTimeout("no pong with payload %r" % payload)
            if m is not None:
                skipped.append(m)
        self.pongs.remove(payload)
        return skipped

    def wait_close(self, timeout=None, drain=False):
        """Reads until the server closes. Returns (code, reason, messages) where messages are
        the JSON objects (or raw (opcode, payload) for non-JSON) that came before the close.
        code is 1006 if the TCP connection ended without a close frame. drain: also wait
        (within timeout) for the server to end the TCP connection after the close frames."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        msgs = []
        while True:
            try:
                op, payload = self.recv_message(max(0.0, deadline - time.monotonic()))
            except WsClosed as c:
                if drain:
                    self._drain_eof(deadline)
                return c.code, c.reason, msgs
            except WsTimeout:
                raise WsTimeout("the server did not close the connection (got %d messages: %r)"
                                % (len(msgs), msgs[-3:]))
            try:
                msgs.append(parse_json_message(payload) if op == OP_TEXT else (op, payload))
            except WsError:
                msgs.append((op, payload))

    def _drain_eof(self, deadline):
        """After the close handshake, waits (bounded) for the server to end the TCP
        connection, as the server is the side that closes it first (RFC 6455 7.1.1)."""
        while not self.eof and time.monotonic() < deadline:
            try:
                chunk = self._recv_some(deadline, "TCP close")
            except (WsTimeout, OSError):
                return
            if not chunk:
                self.eof = True

    def close(self, code=CLOSE_NORMAL, reason="", timeout=5.0):
        """Client-initiated close handshake; returns the server's close (code, reason) or None
        if it did not answer within timeout. The socket is closed in any case."""
        answer = self.closed
        try:
            if not self.close_sent and self.closed is None:
                self.close_sent = True
                self.send_frame(OP_CLOSE, close_payload(code, reason))
            if self.closed is None:
                deadline = time.monotonic() + timeout
                while True:
                    try:
                        self.recv_message(max(0.0, deadline - time.monotonic()))
                    except WsClosed as c:
                        answer = (c.code, c.reason)
                        self._drain_eof(deadline)
                        break
                    except (WsTimeout, WsError, OSError):
                        break
        except OSError:
            pass
        finally:
            self.abort()
        return answer

    def abort(self):
        """Closes the TCP socket without a close handshake."""
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.abort()
        return False


# -------------------------------------------------------------- ei-relay live protocol -----

BACKGROUND_TYPES = ("forwarder", "stats")


def auth_message(token, since_seq=None, filter=None):
    m = {"type": "auth", "token": token}
    if since_seq is not None:
        m["since_seq"] = since_seq
    if filter is not None:
        m["filter"] = filter
    return m


def connect_live(port, token, since_seq=None, filter=None, timeout=10.0, **kw):
    """Connects, authenticates and returns (client, hello). The first message must be hello;
    anything else is a failure (its text is in the error)."""
    ws = WsClient(port, timeout=timeout, **kw)
    try:
        ws.send_json(auth_message(token, since_seq, filter))
        doc = ws.recv_json(timeout)
        if doc.get("type") != "hello":
            raise WsError("first message after auth is not hello: %r" % (doc,))
    except BaseException:
        ws.abort()
        raise
    return ws, doc
