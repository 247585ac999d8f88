# http.py - a raw HTTP/1.1 client for the black-box tests: one keep-alive connection that can
# also send arbitrary bytes (HttpConn), one-shot requests, multipart bodies, and the check of
# the API's error contract. Python 3 standard library only; no state beyond each connection.
import json
import re
import socket
import uuid

from .checks import TestFailure, check, eq
from .ws_client import wrap_tls


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
    bytes, read_response() parses one response (Content-Length, chunked, or until close).
    source: the local address to connect from (e.g. "127.0.0.2", another client as far as the
    relay can tell). ssl_context: speak HTTPS (an ssl.SSLContext that trusts the relay's certificate)."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, source=None, ssl_context=None):
        self.port = port
        self.host = host
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        if ssl_context is not None:
            self.sock = wrap_tls(self.sock, ssl_context, host)
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


def http_request(port, method, path, body=None, headers=None, token=None, timeout=10.0,
                 source=None, ssl_context=None):
    """One request on a fresh connection (from the local address source, if given). Returns a
    Response (unpacks to status, headers, body)."""
    h = dict(auth_header(token))
    if headers:
        h.update(headers)
    h.setdefault("Connection", "close")
    with HttpConn(port, timeout=timeout, source=source, ssl_context=ssl_context) as c:
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


