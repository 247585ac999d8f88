#!/usr/bin/env python3
# test_fake_eim.py - the stand-in model (fake_eim.py) speaks the .eim protocol as the model does:
# spoken to over its socket with raw bytes, it must frame requests by braces (bytes outside
# dropped, a request split over sends or two in one send), answer with sorted compact JSON +
# "\n\0", give the model's error texts, record the features it classifies, exit 0 when the client
# leaves, and unlink its shared memory on SIGTERM. Python 3 standard library only; run by CTest
# (eim.fake_eim, label unit).
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake_eim.py")


class Fake:
    """fake_eim.py on a socket in a temp dir, with FAKE_EIM_* settings; .ask sends bytes and
    returns the replies (parsed) until count replies came."""

    def __init__(self, tmp, via_shebang=False, **settings):
        self.sock_path = os.path.join(tmp, "runner.sock")
        env = dict(os.environ)
        env.update({"FAKE_EIM_" + k: str(v) for k, v in settings.items()})
        cmd = [FAKE] if via_shebang else [sys.executable, FAKE]
        self.proc = subprocess.Popen(cmd + [self.sock_path], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                self.conn = socket.socket(socket.AF_UNIX)
                self.conn.connect(self.sock_path)
                break
            except OSError:
                self.conn.close()
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise
                # the stand-in prints a line once it listens: wait on that, not on a clock
                self.proc.stdout.readline()
        self.buf = b""

    def ask(self, data, count=1):
        self.conn.sendall(data)
        replies = []
        while len(replies) < count:
            while b"\n\0" not in self.buf:
                chunk = self.conn.recv(1 << 16)
                assert chunk, "the stand-in closed the connection"
                self.buf += chunk
            raw, self.buf = self.buf.split(b"\n\0", 1)
            obj = json.loads(raw)
            # sorted keys and no spaces, as nlohmann::json writes them
            assert raw == json.dumps(obj, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode(), raw
            replies.append(obj)
        return replies if count > 1 else replies[0]

    def close(self):
        self.conn.close()
        return self.proc.wait(timeout=20)


def error_of(reply):
    return reply.get("error")


def test_protocol(tmp):
    features = os.path.join(tmp, "features.bin")
    f = Fake(tmp, via_shebang=True, WIDTH=2, HEIGHT=2, SHM=0, FEATURES_FILE=features)
    assert error_of(f.ask(b'{"classify":[1,2,3,4],"id":1}\n')) == \
        "Invalid message, should initialize first"
    # bytes outside braces are dropped; a request may come in pieces
    f.conn.sendall(b'junk\n{"hello"')
    hello = f.ask(b':1,"id":2}\n')
    assert hello["success"] is True and hello["id"] == 2
    assert "features_shm" not in hello
    mp = hello["model_parameters"]
    assert (mp["image_input_width"], mp["image_input_height"], mp["input_features_count"]) == \
        (2, 2, 4)
    assert mp["labels"] == ["dark", "bright"] and mp["model_type"] == "classification"
    assert error_of(f.ask(b'{"hello":1,"id":3}\n')) == \
        "Invalid message 'hello', already initialized"
    # two requests in one send, two replies
    r1, r2 = f.ask(b'{"classify":[0,0,0,0],"id":4}\n{"classify":[16777215,16777215,16777215,'
                   b'16777215],"id":5}\n', count=2)
    assert r1["result"]["classification"] == {"dark": 1.0, "bright": 0.0}, r1
    assert r2["result"]["classification"] == {"dark": 0.0, "bright": 1.0}, r2
    assert set(r1["timing"]) == {"anomaly", "classification", "dsp", "json", "msg_handler",
                                 "stdin"}
    cases = [
        (b'{"classify":[1,2],"id":6}', "Invalid number of features in 'classify', expected 4 but "
                                       "got 2"),
        (b'{"classify":[1,true,3,4],"id":7}',
         "Failed to parse classify array, should contain all numbers"),
        (b'{"classify_shm":{"elements":4},"id":8}',
         "Cannot use 'classify_data_shm', cannot find shm input tensor with ix=0"),
        (b'{"set_threshold":{"id":9,"min_score":1},"id":9}',
         "set_threshold: cannot find learn block with id 9"),
        (b'{"set_threshold":{"min_score":1},"id":10}',
         "set_threshold should have a numeric field 'id'"),
        (b'{"foo":1,"id":11}', "Failed to handle message"),
    ]
    for request, text in cases:
        reply = f.ask(request + b"\n")
        assert reply == {"id": reply["id"], "success": False, "error": text}, reply
    assert f.ask(b'{"id":"x"}\n') == {"error": "Missing 'id' field in message", "success": False}
    bad = f.ask(b'{"id":1,]}\n')
    assert set(bad) == {"error"} and bad["error"].startswith("Failed to parse message")
    assert f.close() == 0  # the client left
    out = open(features, "rb").read()
    n = struct.unpack_from("<I", out, 0)[0]
    assert n == 4 and struct.unpack_from("<4f", out, 4) == (0.0, 0.0, 0.0, 0.0)
    assert struct.unpack_from("<4f", out, 24) == (16777215.0,) * 4 and len(out) == 40


def test_shm_thresholds_and_signal(tmp):
    f = Fake(tmp, WIDTH=2, HEIGHT=2, MODEL_TYPE="object_detection")
    hello = f.ask(b'{"hello":1,"id":1}\n')
    shm = hello["features_shm"]
    assert shm["type"] == "float32" and shm["elements"] == 4 and shm["size_bytes"] == 16
    path = "/dev/shm" + shm["name"]
    with open(path, "r+b") as m:
        m.write(struct.pack("=4f", *([float(0x999999)] * 4)))
    assert hello["model_parameters"]["thresholds"] == \
        [{"id": 3, "type": "object_detection", "min_score": 0.5}]
    boxes = f.ask(b'{"classify_shm":{"elements":4},"id":2}\n')["result"]["bounding_boxes"]
    assert len(boxes) == 1 and boxes[0]["label"] == "object", boxes
    assert error_of(f.ask(b'{"classify_shm":{"elements":3},"id":3}\n')) == \
        "Invalid value for 'classify_data_shm.elements', expected 4, but got 3"
    assert f.ask(b'{"set_threshold":{"id":3,"min_score":0.7},"id":4}\n') == \
        {"id": 4, "success": True}
    assert f.ask(b'{"classify_shm":{"elements":4},"id":5}\n')["result"]["bounding_boxes"] == []
    assert error_of(f.ask(b'{"set_threshold":{"id":3,"min_score":"x"},"id":6}\n')) == \
        "set_threshold, value for 'min_score' should be numeric"
    f.proc.send_signal(signal.SIGTERM)
    assert f.proc.wait(timeout=20) == 128 + signal.SIGTERM
    assert not os.path.exists(path)  # unlinked on the signal
    f.conn.close()


def test_exit_at_start(tmp):
    env = dict(os.environ, FAKE_EIM_EXIT_AT_START="5")
    p = subprocess.run([sys.executable, FAKE, os.path.join(tmp, "s")], env=env,
                       capture_output=True, timeout=20)
    assert p.returncode == 5 and b"exiting at start" in p.stdout and b"stderr" in p.stderr


def main():
    tests = [test_protocol, test_shm_thresholds_and_signal, test_exit_at_start]
    for t in tests:
        with tempfile.TemporaryDirectory(prefix="ei-fake-eim-") as tmp:
            t(tmp)
        print("ok", t.__name__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
