# test_runner_stub.py - checks the runner stand-in (harness/runner_stub.py) itself, with a minimal
# WebSocket client written here (its own framing code, not the stub's): the handshake's accept
# value, unmasked server frames, masked client frames required, fragmented messages, ping/pong,
# close handshakes, the runner's replies matching the recorded fixture byte for byte, previews
# only to clients that asked, the fixture replay, and a restart on the same port.
import base64
import json
import os
import socket
import struct
import threading
import time

from harness import TestFailure, check, eq, fixture_path, make_jpeg, run_tests, runner_stub
from harness.runner_stub import RunnerStub, StubTimeout

T = 10.0  # every socket read in this file is bounded by this


def fixture_lines(name):
    """(dir, raw msg text) of a fixture, the raw text cut from each line by hand."""
    path = fixture_path("runner-ws", name)
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            d = json.loads(line)["dir"]
            prefix = '{"dir":"%s","msg":' % d
            check(line.startswith(prefix) and line.endswith("}"), "fixture line layout")
            out.append((d, line[len(prefix):-1]))
    return out


class MiniClient:
    """The smallest WebSocket client that will do: handshake, masked frames out, frames in."""

    def __init__(self, port, path="/", key="dGhlIHNhbXBsZSBub25jZQ==", extra=""):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=T)
        self.key = key
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "%s\r\n" % (path, port, key, extra))
        self.sock.sendall(req.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        self.headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            self.headers[k.strip().lower()] = v.strip()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, opcode, payload, fin=True, masked=True):
        if isinstance(payload, str):
            payload = payload.encode()
        first = (0x80 if fin else 0) | opcode
        n = len(payload)
        mbit = 0x80 if masked else 0
        if n <= 125:
            head = bytes([first, mbit | n])
        elif n <= 0xFFFF:
            head = bytes([first, mbit | 126]) + struct.pack(">H", n)
        else:
            head = bytes([first, mbit | 127]) + struct.pack(">Q", n)
        if masked:
            mask = os.urandom(4)
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            head += mask
        self.sock.sendall(head + payload)

    def frame(self):
        """(fin, opcode, masked, payload) of the next frame."""
        b0, b1 = self._take(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._take(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._take(8))[0]
        masked = bool(b1 & 0x80)
        mask = self._take(4) if masked else None
        data = self._take(n)
        if masked:
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        return bool(b0 & 0x80), b0 & 0x0F, masked, data

    def text(self):
        """The next frame, which must be one unmasked, unfragmented text frame."""
        fin, op, masked, data = self.frame()
        eq((fin, op, masked), (True, 1, False), "server text frame (fin, opcode, masked)")
        return data.decode()

    def expect_eof(self):
        try:
            while True:
                if not self.sock.recv(65536):
                    return
        except ConnectionResetError:
            return

    def close(self):
        self.sock.close()


def raw_http(port, request):
    s = socket.create_connection(("127.0.0.1", port), timeout=T)
    try:
        s.sendall(request.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return int(data.split(b" ", 2)[1]), data
    finally:
        s.close()


GREETING = '{"type":"set-camera-preview","enabled":true,"messageId":1}'


def test_handshake_and_hello():
    lines = fixture_lines("classification.jsonl")
    with RunnerStub() as stub:
        c = MiniClient(stub.port)
        try:
            eq(c.status, 101, "status")
            # RFC 6455 section 1.3's example key and accept value
            eq(c.headers.get("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "accept")
            eq(c.headers.get("upgrade", "").lower(), "websocket", "Upgrade header")
            eq(c.headers.get("connection", "").lower(), "upgrade", "Connection header")
            eq(c.text(), lines[0][1], "hello byte for byte")
            conn = stub.wait_client(T)
            eq(conn.path, "/", "path")
            eq(conn.wants_preview, False, "no previews before asking")
        finally:
            c.close()


def test_preview_reply_matches_fixture():
    for name in ("classification.jsonl", "object-detection.jsonl"):
        lines = fixture_lines(name)
        eq(lines[1], ("client", GREETING), name + ": recorded request")
        with RunnerStub(hello=name) as stub:
            c = MiniClient(stub.port)
            try:
                eq(c.text(), lines[0][1], name + ": hello")
                c.send(1, lines[1][1])
                eq(c.text(), lines[2][1], name + ": reply byte for byte")
                conn = stub.wait_client(T)
                eq(conn.wait_received(1, T), [json.loads(GREETING)], "received, parsed")
                eq(conn.wants_preview, True, "previews asked for")
            finally:
                c.close()


def test_unmasked_client_frame_closes_1002():
    with RunnerStub() as stub:
        c = MiniClient(stub.port)
        try:
            c.text()
            c.send(1, GREETING, masked=False)
            fin, op, masked, data = c.frame()
            eq((op, masked), (8, False), "close frame from the server")
            eq(struct.unpack(">H", data[:2])[0], 1002, "close code")
            c.expect_eof()
            conn = stub.wait_client(T)
            conn.wait_closed(T)
            eq(conn.protocol_error[0], 1002, "protocol error recorded")
            eq(conn.received(), [], "nothing delivered")
        finally:
            c.close()


def test_fragmented_message_with_ping_between():
    with RunnerStub() as stub:
        c = MiniClient(stub.port)
        try:
            c.text()
            text = '{"type":"set-camera-preview","enabled":true,"messageId":77}'
            c.send(1, text[:10], fin=False)
            c.send(9, b"p1")  # a control frame between fragments is allowed
            c.send(0, text[10:30], fin=False)
            c.send(0, "", fin=False)
            c.send(0, text[30:], fin=True)
            eq(c.frame(), (True, 10, False, b"p1"), "pong with the ping's payload")
            reply = json.loads(c.text())
            eq(reply, {"messageId": 77, "type": "handling-message-success", "message": text},
               "reply to the reassembled message")
            conn = stub.wait_client(T)
            # the stub replies before it records the message: wait for the record
            conn.wait_received(1, T)
            eq(conn.received_raw(), [(1, text.encode())], "one message, reassembled")
            eq(conn.pings, [b"p1"], "ping recorded")
        finally:
            c.close()


def test_large_messages_both_length_forms():
    with RunnerStub() as stub:
        c = MiniClient(stub.port)
        try:
            c.text()
            conn = stub.wait_client(T)
            for n in (126, 65535, 70000):
                body = json.dumps({"type": "nope", "pad": "x" * n})
                c.send(1, body)
                reply = json.loads(c.text())
                eq(reply["message"], body, "echoed %d-byte message" % len(body))
                eq(reply["error"], 'Invalid "type" (nope)', "error text")
            big = "y" * 70000
            conn.send_text(big)
            eq(c.text(), big, "server frame with a 64-bit length")
        finally:
            c.close()


def test_server_ping_and_raw_frames():
    with RunnerStub() as stub:
        c = MiniClient(stub.port)
        try:
            c.text()
            conn = stub.wait_client(T)
            conn.ping(b"hi")
            eq(c.frame(), (True, 9, False, b"hi"), "ping from the server")
            c.send(10, b"hi")
            eq(conn.wait_pong(1, T), [b"hi"], "pong received")
            conn.send_frame(runner_stub.OP_TEXT, "ab", fin=False)
            conn.send_frame(runner_stub.OP_CONT, "cd", fin=True)
            eq(c.frame(), (False, 1, False, b"ab"), "first fragment")
            eq(c.frame(), (True, 0, False, b"cd"), "continuation")
            conn.send_frame(runner_stub.OP_BINARY, b"\x00\x01")
            eq(c.frame(), (True, 2, False, b"\x00\x01"), "binary frame")
            conn.send_raw(b"\x81\x02ok")
            eq(c.frame(), (True, 1, False, b"ok"), "raw bytes as they are")
        finally:
            c.close()


def test_close_started_by_client():
    with RunnerStub() as stub:
        c = MiniClient(stub.port)
        try:
            c.text()
            c.send(8, struct.pack(">H", 1000) + b"bye")
            eq(c.frame(), (True, 8, False, struct.pack(">H", 1000) + b"bye"), "close echoed")
            c.expect_eof()
            conn = stub.wait_client(T)
            conn.wait_closed(T)
            eq(conn.close_received, (1000, "bye"), "close recorded")
        finally:
            c.close()


def test_close_started_by_stub():
    with RunnerStub() as stub:
        c = MiniClient(stub.port)
        try:
            c.text()
            stub.wait_client(T)
            answered = []
            t = threading.Thread(target=lambda: answered.append(stub.close(1001, "going")))
            t.start()
            fin, op, masked, data = c.frame()
            eq((op, data), (8, struct.pack(">H", 1001) + b"going"), "close from the stub")
            c.send(8, data[:2])
            c.expect_eof()
            t.join(T)
            eq(answered, [1], "stub.close saw the client's close")
            eq(stub.clients(), [], "no open clients")
        finally:
            c.close()


def test_binary_and_bad_messages_get_the_runners_errors():
    with RunnerStub() as stub:
        c = MiniClient(stub.port)
        try:
            c.text()
            c.send(2, b"\x01\x02\x03")
            eq(c.text(), '{"type":"handling-message-error","message":{"type":"Buffer",'
                         '"data":[1,2,3]},"error":"Can only handle messages of type '
                         '\\"string\\""}', "binary message reply")
            c.send(1, "{x")
            r = json.loads(c.text())
            eq((r["type"], r["message"], "messageId" in r), ("handling-message-error", "{x", False),
               "malformed JSON reply")
            c.send(1, '{"type":"set-camera-preview","enabled":"yes","messageId":5}')
            r = json.loads(c.text())
            eq((r["messageId"], r["error"]),
               (5, 'Invalid value for "enabled", should be a boolean (type: string)'),
               "wrong-typed enabled")
            conn = stub.wait_client(T)
            eq(conn.wants_preview, False, "previews not enabled by bad requests")
            eq(conn.wait_received(3, T)[0], b"\x01\x02\x03", "binary message kept as bytes")
            c.send(1, b"\xff\xfe")  # not UTF-8
            fin, op, masked, data = c.frame()
            eq((op, struct.unpack(">H", data[:2])[0]), (8, 1007), "close 1007")
            c.expect_eof()
        finally:
            c.close()


def test_threshold_override():
    with RunnerStub(hello="classification") as stub:
        c = MiniClient(stub.port)
        try:
            c.text()
            req = '{"type":"threshold-override","id":17,"key":"min_score","value":0.5,' \
                  '"messageId":2}'
            c.send(1, req)
            eq(c.text(), '{"messageId":2,"type":"handling-message-success","message":%s}' %
               json.dumps(req), "success reply")
            th = stub.hello["modelParameters"]["thresholds"][0]
            eq(th["min_score"], 0.5, "threshold updated")
            c.send(1, '{"type":"threshold-override","id":9,"key":"min_score","value":1}')
            r = json.loads(c.text())
            eq(r["error"], 'Failed to set threshold "min_score" (block ID: 9): Cannot find '
                           'threshold with ID 9', "unknown block")
        finally:
            c.close()


def test_http_paths():
    with RunnerStub() as stub:
        st, body = raw_http(stub.port, "GET /other HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "Sec-WebSocket-Version: 13\r\n\r\n")
        eq(st, 404, "upgrade on another path")
        check(b"Cannot GET /other" in body, "404 body %r" % body[-80:])
        st, _ = raw_http(stub.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        eq(st, 200, "plain GET /")
        st, _ = raw_http(stub.port, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: short\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n")
        eq(st, 400, "bad key")
        st, _ = raw_http(stub.port, "GET /?x=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                         "Connection: keep-alive, Upgrade\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 12\r\n\r\n")
        eq(st, 400, "unsupported version")
        eq([s for _p, s in stub.handshakes], [404, 200, 400, 400], "requests seen")
        eq(stub.connections(), [], "no WebSocket client")


def test_classify_sends_previews_only_to_clients_that_asked():
    jpg = make_jpeg(96, 96, seed=2)
    jpg2 = make_jpeg(96, 96, seed=3, noise=3)
    result = {"classification": {"left": 0.25, "center": 0.5, "right": 0.25}}
    with RunnerStub() as stub:
        a, b = MiniClient(stub.port), MiniClient(stub.port)
        try:
            a.text()
            b.text()
            a.send(1, GREETING)
            a.text()  # the reply
            stub.wait_received(1, T)
            conns = stub.wait_connections(2, T)
            eq(sorted(x.wants_preview for x in conns), [False, True], "one client asked")
            sent = stub.classify(result, image_bytes=jpg, time_ms=3)
            eq((sent["previews"], sent["classifications"]), (1, 2), "sent counts")
            expect = '{"type":"classification","result":{"classification":{"left":0.25,' \
                     '"center":0.5,"right":0.25}},"timeMs":3}'
            eq(sent["text"], expect, "classification text")
            prev = json.loads(a.text())
            eq(prev["type"], "camera-preview", "preview first")
            head, _, b64 = prev["image"].partition(",")
            eq(head, "data:image/jpeg;base64", "data URL head")
            eq(base64.b64decode(b64), jpg, "frame bytes")
            eq(a.text(), expect, "then the classification")
            eq(b.text(), expect, "the other client: the classification only")
            stub.classify(result, image_bytes=jpg)  # identical frame: dropped like the runner
            eq(json.loads(a.text())["type"], "classification", "repeated frame dropped")
            stub.classify(result, image_bytes=jpg2, info="x")
            eq(json.loads(a.text())["type"], "camera-preview", "a new frame is sent")
            eq(json.loads(a.text())["additionalInfo"], "x", "additionalInfo")
            a.send(1, '{"type":"set-camera-preview","enabled":false}')
            eq(a.text(), '{"type":"handling-message-success","message":"{\\"type\\":\\"set-'
                         'camera-preview\\",\\"enabled\\":false}"}', "reply without messageId")
            eq(stub.classify(result, image_bytes=jpg)["previews"], 0, "previews off")
            eq(json.loads(a.text())["type"], "classification", "no frame after disabling")
        finally:
            a.close()
            b.close()


def test_replay_fixture_byte_for_byte():
    lines = fixture_lines("object-detection.jsonl")
    expect = [raw for d, raw in lines[1:] if d == "server" and
              json.loads(raw)["type"] not in ("hello", "handling-message-success")]
    with RunnerStub(hello="object-detection") as stub:
        c, quiet = MiniClient(stub.port), MiniClient(stub.port)
        try:
            eq(c.text(), lines[0][1], "hello")
            eq(quiet.text(), lines[0][1], "hello to the second client")
            c.send(1, GREETING)
            eq(c.text(), lines[2][1], "reply")
            stub.wait_received(1, T)
            stub.wait_connections(2, T)
            sent = stub.replay_fixture("object-detection")
            eq(len(sent), len(expect), "messages replayed")
            eq(sum(1 for m in sent if m["type"] == "classification"), 6, "classifications")
            for i, raw in enumerate(expect):
                eq(c.text(), raw, "replayed message %d" % i)
            # a client that did not ask for previews gets the classifications only
            for i, raw in enumerate(r for r in expect if '"camera-preview"' not in r):
                eq(quiet.text(), raw, "classification %d to the other client" % i)
            quiet.send(9, b"end")  # the next frame is this ping's pong: nothing else was sent
            eq(quiet.frame(), (True, 10, False, b"end"), "nothing more to the other client")
        finally:
            c.close()
            quiet.close()


def test_stop_and_restart_on_the_same_port():
    stub = RunnerStub()
    port = stub.port
    c = MiniClient(port)
    try:
        c.text()
        stub.wait_client(T)
        stub.stop()
        c.expect_eof()  # no close frame: the runner process went away
    finally:
        c.close()
    try:
        socket.create_connection(("127.0.0.1", port), timeout=T).close()
        raise TestFailure("connected to a stopped stub")
    except ConnectionRefusedError:
        pass
    with RunnerStub(port=port, hello="object-detection") as again:
        eq(again.port, port, "same port")
        c = MiniClient(port)
        try:
            check('"warehouse-fomo"' in c.text(), "the new runner's hello")
        finally:
            c.close()


def test_bounded_waits():
    with RunnerStub(hello=None) as stub:
        t0 = time.monotonic()
        try:
            stub.wait_client(0.3)
            raise TestFailure("wait_client returned without a client")
        except StubTimeout:
            pass
        check(time.monotonic() - t0 < 3, "wait_client bounded")
        c = MiniClient(stub.port)
        try:
            conn = stub.wait_client(T)
            try:
                conn.wait_received(1, 0.2)
                raise TestFailure("wait_received returned without a message")
            except StubTimeout:
                pass
            c.send(1, GREETING)
            eq(json.loads(c.text())["type"], "handling-message-success", "first frame is the "
               "reply: no hello configured")
        finally:
            c.close()


def test_hello_from_a_model_dict():
    model = {"project": {"id": 7, "owner": "o", "name": "p"},
             "modelParameters": {"image_input_width": 32, "image_input_height": 24}}
    with RunnerStub(hello=model) as stub:
        c = MiniClient(stub.port)
        try:
            eq(c.text(), '{"type":"hello","project":{"id":7,"owner":"o","name":"p"},'
                         '"modelParameters":{"image_input_width":32,"image_input_height":24}}',
               "hello built from the model")
        finally:
            c.close()


def test_js_json_numbers():
    for v, s in ((1e-7, "1e-7"), (100.0, "100"), (1e21, "1e+21"), (0.1, "0.1"), (-0.0, "0"),
                 (1.5e-6, "0.0000015"), (123456789012345680000.0, "123456789012345680000"),
                 (0.14471083365974335, "0.14471083365974335"), (-2.5e-7, "-2.5e-7"),
                 (float("nan"), "null"), (3, "3")):
        eq(runner_stub.js_number(v), s, "js_number(%r)" % v)
    eq(runner_stub.js_json({"a": runner_stub.UNDEFINED, "b": "\u2028\x01\ud800"}),
       '{"b":"\u2028\\u0001\\ud800"}', "strings and undefined")


if __name__ == "__main__":
    run_tests([test_handshake_and_hello, test_preview_reply_matches_fixture,
               test_unmasked_client_frame_closes_1002, test_fragmented_message_with_ping_between,
               test_large_messages_both_length_forms, test_server_ping_and_raw_frames,
               test_close_started_by_client, test_close_started_by_stub,
               test_binary_and_bad_messages_get_the_runners_errors, test_threshold_override,
               test_http_paths, test_classify_sends_previews_only_to_clients_that_asked,
               test_replay_fixture_byte_for_byte, test_stop_and_restart_on_the_same_port,
               test_bounded_waits, test_hello_from_a_model_dict, test_js_json_numbers])
