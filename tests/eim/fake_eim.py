#!/usr/bin/env python3
# fake_eim.py - a stand-in Edge Impulse Linux model (.eim) for the tests, speaking the model's
# socket protocol byte for byte. Called exactly as a real model is: `fake_eim.py <socket path>`.
# It binds the unix socket, accepts ONE connection, answers ONE hello, frames requests by
# counting braces as the model does (not string-aware; bytes outside braces dropped; a 32 MiB
# bound), and answers each request with compact JSON with sorted keys (as nlohmann::json writes
# it) followed by "\n" and a NUL byte. It exits when the client leaves; SIGINT, SIGTERM and
# SIGHUP unlink its shared memory and exit with 128 + the signal.
#
# Configured by FAKE_EIM_* environment variables (tests/eim/README.md lists them all): model
# type, input size, channels, resize mode, labels, thresholds, latency, shared memory, files
# recording what it received, and faults (die, hang, exit at start, ignore signals). Results are
# computed from the features (mean brightness), so a test can check them.
# Python 3 standard library only.
import json
import math
import mmap
import os
import re
import signal
import socket
import struct
import sys
import time

MAX_REQUEST = 32 * 1024 * 1024  # the model's receive buffer
SHM_DIR = "/dev/shm"
BRACE = re.compile(rb"[{}]")


def env_int(name, default):
    v = os.environ.get("FAKE_EIM_" + name, "")
    return int(v) if v != "" else default


def env_str(name, default):
    v = os.environ.get("FAKE_EIM_" + name)
    return v if v is not None else default


def f32(x):
    """x rounded to float32 and back, as the model's float results print through nlohmann."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:  # beyond float32: (float) makes it infinite
        return math.copysign(math.inf, x)


def dump(obj):
    """JSON as nlohmann::json::dump() writes it: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Config:
    def __init__(self):
        kind = env_str("MODEL_TYPE", "classification")
        if kind not in ("classification", "object_detection", "constrained_object_detection",
                        "visual_anomaly"):
            raise SystemExit("fake_eim: FAKE_EIM_MODEL_TYPE %r is not supported" % kind)
        self.kind = kind
        self.width = env_int("WIDTH", 96)
        self.height = env_int("HEIGHT", 96)
        self.channels = env_int("CHANNELS", 3)
        self.resize_mode = env_str("RESIZE_MODE", "fit-shortest")
        default_labels = {"classification": "dark,bright", "visual_anomaly": ""}
        labels = env_str("LABELS", default_labels.get(kind, "object"))
        self.labels = [x for x in labels.split(",") if x] if labels else []
        default_anomaly = 4 if kind == "visual_anomaly" else 0
        self.has_anomaly = env_int("ANOMALY", default_anomaly)
        self.object_tracking = env_int("OBJECT_TRACKING", 0) != 0
        self.sensor = env_int("SENSOR", 3)
        self.engine = env_int("ENGINE", 2)
        self.features = env_int("FEATURES", self.width * self.height)
        self.latency_s = env_int("LATENCY_MS", 0) / 1000.0
        self.shm = env_str("SHM", "1")
        self.info = env_str("INFO", "")
        self.features_file = env_str("FEATURES_FILE", "")
        self.request_log = env_str("REQUEST_LOG", "")
        self.die_after = env_int("DIE_AFTER", -1)
        self.hang_after = env_int("HANG_AFTER", -1)
        self.exit_at_start = env_int("EXIT_AT_START", -1)
        self.start_delay_s = env_int("START_DELAY_MS", 0) / 1000.0
        self.chatty = env_int("CHATTY", 0)
        self.ignore = [s for s in env_str("IGNORE_SIGNALS", "").split(",") if s]
        self.thresholds = json.loads(env_str("THRESHOLDS", "null") or "null")
        if self.thresholds is None:
            self.thresholds = self.default_thresholds()

    def default_thresholds(self):
        t = []
        if self.kind in ("object_detection", "constrained_object_detection"):
            t.append({"id": 3, "type": "object_detection", "min_score": f32(0.5)})
        if self.has_anomaly == 2:
            t.append({"id": 5, "type": "anomaly_gmm", "min_anomaly_score": f32(0.3)})
        if self.kind == "visual_anomaly":
            t.append({"id": 7, "type": "anomaly_gmm", "min_anomaly_score": f32(0.6)})
        return t

    def model_type(self):
        return "classification" if self.kind == "visual_anomaly" else self.kind


class Shm:
    """The input features' shared memory, made as shm_open makes it: a file in /dev/shm."""

    def __init__(self, elements):
        self.name = "/shm-" + os.urandom(6).hex()
        self.path = SHM_DIR + self.name
        self.size = elements * 4
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            os.ftruncate(fd, self.size)
            self.map = mmap.mmap(fd, self.size)
        finally:
            os.close(fd)

    def read(self, n):
        return list(struct.unpack_from("=%df" % n, self.map, 0))

    def unlink(self):
        try:
            os.unlink(self.path)
        except OSError:
            pass


class Model:
    def __init__(self, cfg):
        self.cfg = cfg
        self.initialized = False
        self.shm = None
        self.classifies = 0

    # ---- replies ----

    def hello(self, rid):
        c = self.cfg
        resp = {
            "id": rid,
            "success": True,
            "project": {"id": env_int("PROJECT_ID", 1), "owner": env_str("OWNER", "ei-relay tests"),
                        "name": env_str("PROJECT_NAME", "fake-eim"),
                        "deploy_version": env_int("DEPLOY_VERSION", 1), "impulse_id": 1,
                        "impulse_name": "Impulse #1"},
            "model_parameters": {
                "input_features_count": c.features, "sensor": c.sensor, "frequency": 0,
                "interval_ms": 1, "axis_count": 1, "image_input_width": c.width,
                "image_input_height": c.height, "image_input_frames": 1,
                "image_channel_count": c.channels, "image_resize_mode": c.resize_mode,
                "label_count": len(c.labels), "has_anomaly": c.has_anomaly,
                "has_object_tracking": c.object_tracking, "labels": c.labels,
                "model_type": c.model_type(), "slice_size": c.features // 4,
                "use_continuous_mode": c.sensor == 1, "has_performance_calibration": False,
                "inferencing_engine": c.engine, "thresholds": c.thresholds},
            "inferencing_engine": {"engine_type": c.engine, "properties": []},
        }
        if c.shm == "error":
            resp["features_shm_error"] = "shm_open for '/shm-000000000000' failed (13)"
        elif c.shm != "0":
            self.shm = Shm(c.features)
            resp["features_shm"] = {"name": self.shm.name, "size_bytes": self.shm.size,
                                    "type": "float32", "elements": c.features}
        return resp

    def threshold(self, block_type, key, default):
        for t in self.cfg.thresholds:
            if t.get("type") == block_type and key in t:
                return t[key]
        return default

    def result(self, features):
        """Deterministic results from the features: b = mean brightness in 0..1 of the pixels
        (0xRRGGBB, the mean of R, G and B). See README.md for each model type."""
        c = self.cfg
        total = 0
        for v in features:
            p = int(v) if math.isfinite(v) else 0
            total += ((p >> 16) & 255) + ((p >> 8) & 255) + (p & 255)
        b = total / (3 * 255 * len(features)) if features else 0.0
        w, h = c.width, c.height
        res = {}
        if c.kind in ("object_detection", "constrained_object_detection"):
            box = {"label": c.labels[0] if c.labels else "object", "value": f32(b),
                   "x": w // 4, "y": h // 4, "width": w // 2, "height": h // 2}
            keep = b > 0 and b >= self.threshold("object_detection", "min_score", 0.5)
            res["bounding_boxes"] = [box] if keep else []
            if c.object_tracking:
                res["object_tracking"] = [dict(box, object_id=1)] if keep else []
        elif c.labels:
            k = len(c.labels)
            pos = b * (k - 1)
            res["classification"] = {
                label: f32(max(0.0, 1.0 - abs(i - pos)) if k > 1 else b)
                for i, label in enumerate(c.labels)}
        if c.kind == "visual_anomaly":
            cell = {"label": "anomaly", "value": f32(b), "x": 0, "y": 0, "width": w // 2,
                    "height": h // 2}
            res["visual_anomaly_grid"] = [cell] if b > 0 else []
            res["visual_anomaly_max"] = f32(b)
            res["visual_anomaly_mean"] = f32(b / 2)
        if c.has_anomaly:
            res["anomaly"] = f32(b)
        ms = int(c.latency_s * 1000)
        resp = {"success": True, "result": res,
                "timing": {"dsp": 1, "classification": ms, "anomaly": 0, "json": 0, "stdin": 0,
                           "msg_handler": ms + 1}}
        if c.info:
            resp["info"] = c.info
        return resp

    def classify(self, rid, features, how):
        c = self.cfg
        if 0 <= c.die_after <= self.classifies:
            say("fake_eim: dying after %d classifies" % self.classifies)
            cleanup(self)
            os._exit(3)
        if 0 <= c.hang_after <= self.classifies:
            say("fake_eim: not answering after %d classifies" % self.classifies)
            return None
        self.classifies += 1
        record(c, features, how)
        if c.chatty:
            os.write(1, b"." * (c.chatty - 1) + b"\n")
        if c.latency_s:
            time.sleep(c.latency_s)
        resp = self.result(features)
        resp["id"] = rid
        return resp

    def set_threshold(self, rid, st):
        if not isinstance(st.get("id"), int) or isinstance(st.get("id"), bool):
            return error(rid, "set_threshold should have a numeric field 'id'")
        block = next((t for t in self.cfg.thresholds if t.get("id") == st["id"]), None)
        if block is None:
            return error(rid, "set_threshold: cannot find learn block with id %d" % st["id"])
        for key, value in st.items():
            if key in ("id", "type"):
                continue
            if not is_number(value):
                return error(rid, "set_threshold, value for '%s' should be numeric" % key)
            block[key] = f32(value)
        return {"id": rid, "success": True}

    def handle(self, msg):
        """One framed request -> the reply object (None: no reply)."""
        if not isinstance(msg, dict) or not isinstance(msg.get("id"), int) or \
                isinstance(msg.get("id"), bool):
            return {"success": False, "error": "Missing 'id' field in message"}
        rid = msg["id"]
        if isinstance(msg.get("hello"), int) and not isinstance(msg.get("hello"), bool):
            if self.initialized:
                return error(rid, "Invalid message 'hello', already initialized")
            if msg["hello"] != 1:
                return error(rid, "Invalid value for 'hello', only 1 supported")
            self.initialized = True
            return self.hello(rid)
        if not self.initialized:
            return error(rid, "Invalid message, should initialize first")
        n = self.cfg.features
        if isinstance(msg.get("classify"), list):
            data = msg["classify"]
            if not all(is_number(v) for v in data):
                return error(rid, "Failed to parse classify array, should contain all numbers")
            if len(data) != n:
                return error(rid, "Invalid number of features in 'classify', expected %d but "
                                  "got %d" % (n, len(data)))
            return self.classify(rid, [f32(v) for v in data], "json")
        if isinstance(msg.get("classify_shm"), dict):
            el = msg["classify_shm"].get("elements")
            el = int(el) if is_number(el) else -1
            if self.shm is None:
                return error(rid, "Cannot use 'classify_data_shm', cannot find shm input tensor "
                                  "with ix=0")
            if el != n:
                if el == -1:
                    return error(rid, "Missing 'elements' in 'classify_data_shm'")
                return error(rid, "Invalid value for 'classify_data_shm.elements', expected %d, "
                                  "but got %d" % (n, el))
            return self.classify(rid, self.shm.read(n), "shm")
        if isinstance(msg.get("set_threshold"), dict):
            return self.set_threshold(rid, msg["set_threshold"])
        return error(rid, "Failed to handle message")


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def error(rid, text):
    return {"id": rid, "success": False, "error": text}


def say(text):
    os.write(1, (text + "\n").encode())


def record(cfg, features, how):
    """Appends what a classify received: to FEATURES_FILE a record of uint32 LE count then the
    features as float32 LE; to REQUEST_LOG nothing here (requests are logged when framed)."""
    if cfg.features_file:
        with open(cfg.features_file, "ab") as f:
            f.write(struct.pack("<I", len(features)) + struct.pack("<%df" % len(features),
                                                                   *features))


def cleanup(model):
    if model is not None and model.shm is not None:
        model.shm.unlink()


MODEL = None


def on_signal(sig, frame):
    cleanup(MODEL)
    os._exit(128 + sig)


def serve(sock_path, cfg):
    global MODEL
    say("Edge Impulse Linux impulse runner - listening for JSON messages on socket '%s'"
        % sock_path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.unlink(sock_path)
    except OSError:
        pass
    srv.bind(sock_path)
    srv.listen(10)
    say("Waiting for connection on %s..." % sock_path)
    conn, _ = srv.accept()
    say("Connected")
    MODEL = model = Model(cfg)
    framer = RequestFramer()
    while True:
        data = conn.recv(1 << 20)
        if not data:
            break
        requests = framer.feed(data)
        if requests is None:
            say("Invalid message, received more than %d bytes, and no valid JSON message "
                "detected" % MAX_REQUEST)
            cleanup(model)
            return 1
        for raw in requests:
            reply = answer(model, cfg, raw)
            if reply is not None:
                conn.sendall(dump(reply).encode() + b"\n\0")
    conn.close()
    srv.close()
    cleanup(model)
    return 0


class RequestFramer:
    """The model's request framing: counts '{' and '}' (not string-aware) and ends a request at
    a '}' that makes the counts equal; bytes outside a request (nothing open) are dropped."""

    def __init__(self):
        self.buf = bytearray()
        self.opened = self.closed = 0

    def feed(self, data):
        """The requests completed by data, or None when the buffer went over its bound."""
        out = []
        pos = 0
        for m in BRACE.finditer(data):
            i = m.start()
            if self.opened:
                self.buf += data[pos:i]
            self.buf.append(data[i])
            pos = i + 1
            if data[i] == 0x7B:
                self.opened += 1
            else:
                self.closed += 1
                if self.closed == self.opened:
                    out.append(bytes(self.buf))
                    self.buf.clear()
                    self.opened = self.closed = 0
            if len(self.buf) > MAX_REQUEST - 1:
                return None
        if self.opened:
            self.buf += data[pos:]
        return out if len(self.buf) <= MAX_REQUEST - 1 else None


def answer(model, cfg, raw):
    if cfg.request_log:
        with open(cfg.request_log, "ab") as f:
            f.write(raw + b"\n")
    try:
        msg = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        return {"error": "Failed to parse message: %s" % e}
    return model.handle(msg)


def main():
    if len(sys.argv) < 2:
        say("Requires one parameter (either: '--print-info', 'stdin' or the name of a socket)")
        return 1
    cfg = Config()
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name)
        signal.signal(sig, signal.SIG_IGN if name[3:] in cfg.ignore else on_signal)
    if cfg.exit_at_start >= 0:
        say("ERR: fake_eim: exiting at start as FAKE_EIM_EXIT_AT_START asks")
        os.write(2, b"fake_eim: this line went to stderr\n")
        return cfg.exit_at_start
    if cfg.start_delay_s:
        time.sleep(cfg.start_delay_s)
    return serve(sys.argv[1], cfg)


if __name__ == "__main__":
    sys.exit(main())
