# mqtt.py - broker harness of the black-box forwarder tests: a test PKI made with the
# openssl CLI, Debian's mosquitto on a free port with TLS client certificates and the IoT Core
# payload limit, and a small MQTT 3.1.1 client over ssl (subscriber and command publisher) that
# keeps the raw payload bytes and the retain flag of every message it receives.
#
# Owned by the black-box tier (tests/blackbox). Python 3 standard library only; needs the
# `mosquitto` and `openssl` programs (scripts/deps.sh test). Every wait is on an event (a packet,
# a connection, a process exit) with a bound; nothing sleeps for a fixed time.
import json
import os
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

from .checks import TestFailure, check, wait_for
from .relay import free_port

SKIP_CODE = 77
MQTT_PAYLOAD_MAX = 131072  # IoT Core's payload limit, enforced by the test broker
BROKER_READY_TIMEOUT_S = 10.0
CLIENT_CN = "ei-relay-test-device"  # the relay's client certificate: its user name at the broker
TESTER_CN = "ei-relay-tester"  # the test's own clients


def skip(reason):
    """Prints SKIP with the reason and exits with CTest's skip code (never a silent pass)."""
    print("SKIP: " + reason, flush=True)
    sys.exit(SKIP_CODE)


def mosquitto_bin():
    for cand in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if cand and os.path.exists(cand):
            return cand
    return None


def require_tools():
    """Exits 77 (SKIP) when the broker or openssl is missing on this machine."""
    if not mosquitto_bin():
        skip("mosquitto is not installed (scripts/deps.sh test)")
    if not shutil.which("openssl"):
        skip("openssl is not installed (scripts/deps.sh test)")


# ---------------------------------------------------------------- PKI ----------------------

_PKI_CACHE = {}


def _openssl(args, cwd):
    r = subprocess.run(["openssl"] + args, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    if r.returncode != 0:
        raise TestFailure("openssl %s failed:\n%s" % (" ".join(args), r.stdout.decode(
            "utf-8", "replace")))


def _make_ca(d, name, cn):
    _openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes", "-keyout", name + ".key", "-out", name + ".crt", "-days", "3",
              "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)


def _make_leaf(d, name, ca, cn, ext_lines):
    _openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn],
             d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("\n".join(["basicConstraints=CA:FALSE"] + ext_lines) + "\n")
    _openssl(["x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
              "-CAcreateserial", "-out", name + ".crt", "-days", "3", "-extfile", name + ".ext"],
             d)


def make_pki(directory=None, server_cn="localhost"):
    """Generates (once per test process and server_cn) a CA; a server certificate for
    server_cn with SAN DNS:localhost, IP:127.0.0.1; client certificates for the relay and for
    the test's own client; an unrelated second CA; and a server certificate signed by the CA
    for the wrong host name (SAN other.example). Returns a dict of absolute paths."""
    key = server_cn
    if key in _PKI_CACHE:
        return _PKI_CACHE[key]
    d = directory or tempfile.mkdtemp(prefix="ei-bb-pki-")
    os.makedirs(d, exist_ok=True)
    _make_ca(d, "ca", "ei-relay test CA")
    _make_ca(d, "other_ca", "unrelated test CA")
    _make_leaf(d, "server", "ca", server_cn,
               ["subjectAltName=DNS:localhost,IP:127.0.0.1", "extendedKeyUsage=serverAuth",
                "keyUsage=critical,digitalSignature"])
    _make_leaf(d, "wronghost", "ca", "other.example",
               ["subjectAltName=DNS:other.example", "extendedKeyUsage=serverAuth",
                "keyUsage=critical,digitalSignature"])
    _make_leaf(d, "client", "ca", CLIENT_CN,
               ["extendedKeyUsage=clientAuth", "keyUsage=critical,digitalSignature"])
    _make_leaf(d, "tester", "ca", TESTER_CN,
               ["extendedKeyUsage=clientAuth", "keyUsage=critical,digitalSignature"])
    p = lambda n: os.path.join(os.path.abspath(d), n)  # noqa: E731
    pki = {
        "dir": os.path.abspath(d),
        "ca": p("ca.crt"), "other_ca": p("other_ca.crt"),
        "server_cert": p("server.crt"), "server_key": p("server.key"),
        "wronghost_cert": p("wronghost.crt"), "wronghost_key": p("wronghost.key"),
        "client_cert": p("client.crt"), "client_key": p("client.key"),
        "tester_cert": p("tester.crt"), "tester_key": p("tester.key"),
    }
    _PKI_CACHE[key] = pki
    return pki


# ---------------------------------------------------------------- MQTT 3.1.1 client --------


def _enc_len(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _enc_str(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


class Message:
    """One PUBLISH received: topic (str), payload (raw bytes), retain, qos, dup, and the
    monotonic time it arrived."""

    def __init__(self, topic, payload, retain, qos, dup):
        self.topic = topic
        self.payload = payload
        self.retain = retain
        self.qos = qos
        self.dup = dup
        self.t = time.monotonic()

    def json(self):
        try:
            return json.loads(self.payload.decode("utf-8"))
        except Exception as e:
            raise TestFailure("payload on %s is not JSON (%s): %r" % (self.topic, e,
                                                                     self.payload[:300]))

    def pairs(self):
        """The top-level (key, value) pairs in the order of the payload bytes."""
        doc = json.loads(self.payload.decode("utf-8"), object_pairs_hook=list)
        check(isinstance(doc, list), "payload on %s is not a JSON object" % self.topic)
        return doc

    def __repr__(self):
        return "<Message %s r%d q%d %r>" % (self.topic, self.retain, self.qos,
                                            self.payload[:200])


class MqttError(Exception):
    pass


class MqttClient:
    """A minimal MQTT 3.1.1 client over TLS with client certificate (QoS 0/1). One I/O thread
    owns the socket after connect (OpenSSL objects are not shared between threads); other
    threads hand it packets to write. Every received PUBLISH is appended to .messages."""

    def __init__(self, port, ca, cert, key, client_id, host="localhost", clean=True,
                 keepalive=0, timeout=10.0):
        self.port, self.host = port, host
        self.ca, self.cert, self.key = ca, cert, key
        self.client_id = client_id
        self.clean = clean
        self.keepalive = keepalive
        self.timeout = timeout
        self.messages = []
        self.cond = threading.Condition()
        self.acks = set()  # packet ids of SUBACK/PUBACK received
        self.connected = False
        self.session_present = False
        self.subscriptions = []
        self._next_id = 1
        self._out = []
        self._sock = None
        self._thread = None
        self._wake_r = self._wake_w = None
        self._closing = False

    # -- connection --

    def _context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.ca)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                raise MqttError("connection closed by the broker")
            buf += chunk
        return buf

    def _read_packet(self):
        first = self._recv_exact(1)[0]
        mult, length = 1, 0
        for _ in range(4):
            b = self._recv_exact(1)[0]
            length += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        else:
            raise MqttError("malformed remaining length")
        return first, self._recv_exact(length) if length else b""

    def connect(self):
        """TCP + TLS (server certificate and host name verified) + CONNECT/CONNACK, then starts
        the I/O thread. Raises ssl.SSLError, OSError or MqttError."""
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        try:
            self._sock = self._context().wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise
        try:
            flags = 0x02 if self.clean else 0x00
            var = _enc_str("MQTT") + bytes([4, flags]) + struct.pack(">H", self.keepalive)
            body = var + _enc_str(self.client_id)
            self._sock.sendall(b"\x10" + _enc_len(len(body)) + body)
            first, body = self._read_packet()
            if first != 0x20 or len(body) != 2:
                raise MqttError("expected CONNACK, got packet 0x%02x" % first)
            if body[1] != 0:
                raise MqttError("CONNACK refused with return code %d" % body[1])
            self.session_present = bool(body[0] & 1)
        except BaseException:
            self._sock.close()
            self._sock = None
            raise
        self._wake_r, self._wake_w = socket.socketpair()
        self.connected = True
        self._closing = False
        self._thread = threading.Thread(target=self._io_loop, daemon=True)
        self._thread.start()
        if self.subscriptions and not self.session_present:
            for topic, qos in self.subscriptions:
                self._subscribe_now(topic, qos)
        return self

    def reconnect(self):
        """Connects again (after the broker restarted); the session, if the broker kept it,
        brings the QoS 1 messages queued meanwhile."""
        self.close(disconnect=False)
        return self.connect()

    def close(self, disconnect=True):
        if self._thread is not None:
            if disconnect and self.connected:
                self._send(b"\xe0\x00")
            with self.cond:
                self._closing = True
            self._wake()
            self._thread.join(timeout=self.timeout)
            self._thread = None
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        for s in (self._wake_r, self._wake_w):
            if s is not None:
                s.close()
        self._wake_r = self._wake_w = None
        self.connected = False

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # -- I/O thread --

    def _wake(self):
        try:
            if self._wake_w is not None:
                self._wake_w.send(b"x")
        except OSError:
            pass

    def _send(self, data):
        with self.cond:
            self._out.append(data)
        self._wake()

    def _io_loop(self):
        try:
            while True:
                with self.cond:
                    out, self._out = self._out, []
                    closing = self._closing
                for data in out:
                    self._sock.sendall(data)
                if closing:
                    return
                if self._sock.pending() == 0:
                    r, _, _ = select.select([self._sock, self._wake_r], [], [], 5.0)
                    if self._wake_r in r:
                        self._wake_r.recv(4096)
                    if self._sock not in r:
                        continue
                first, body = self._read_packet()
                self._handle(first, body)
        except (OSError, MqttError, ValueError):
            pass
        finally:
            with self.cond:
                self.connected = False
                self.cond.notify_all()

    def _handle(self, first, body):
        kind = first >> 4
        if kind == 3:  # PUBLISH
            qos = (first >> 1) & 3
            tlen = struct.unpack(">H", body[:2])[0]
            topic = body[2:2 + tlen].decode("utf-8")
            pos = 2 + tlen
            if qos:
                pid = body[pos:pos + 2]
                pos += 2
                with self.cond:
                    self._out.append(b"\x40\x02" + pid)  # PUBACK, written by this thread
            msg = Message(topic, bytes(body[pos:]), bool(first & 1), qos, bool(first & 8))
            with self.cond:
                self.messages.append(msg)
                self.cond.notify_all()
        elif kind in (4, 9):  # PUBACK, SUBACK
            pid = struct.unpack(">H", body[:2])[0]
            if kind == 9 and len(body) > 2 and body[2] == 0x80:
                pid = -pid  # subscription refused
            with self.cond:
                self.acks.add(pid)
                self.cond.notify_all()

    # -- operations --

    def _pid(self):
        with self.cond:
            pid = self._next_id
            self._next_id = self._next_id % 65535 + 1
            self.acks.discard(pid)
            self.acks.discard(-pid)
            return pid

    def _wait_ack(self, pid, what):
        def got():
            return pid in self.acks or -pid in self.acks or not self.connected
        with self.cond:
            if not self.cond.wait_for(got, timeout=self.timeout):
                raise MqttError("no %s within %.0f s" % (what, self.timeout))
            if -pid in self.acks:
                raise MqttError("%s: refused" % what)
            if pid not in self.acks:
                raise MqttError("%s: connection lost" % what)

    def _subscribe_now(self, topic, qos):
        pid = self._pid()
        body = struct.pack(">H", pid) + _enc_str(topic) + bytes([qos])
        self._send(b"\x82" + _enc_len(len(body)) + body)
        self._wait_ack(pid, "SUBACK for %s" % topic)

    def subscribe(self, topic, qos=1):
        self.subscriptions.append((topic, qos))
        self._subscribe_now(topic, qos)

    def publish(self, topic, payload, qos=1, retain=False):
        """Publishes; at QoS 1 waits for the PUBACK."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        var = _enc_str(topic)
        pid = 0
        if qos:
            pid = self._pid()
            var += struct.pack(">H", pid)
        body = var + payload
        self._send(bytes([0x30 | (qos << 1) | (1 if retain else 0)]) + _enc_len(len(body)) +
                   body)
        if qos:
            self._wait_ack(pid, "PUBACK on %s" % topic)

    # -- waiting for messages --

    def wait_for(self, pred, timeout, what="condition"):
        """Waits until pred(messages) returns a truthy value (returned), re-evaluated on each
        received message; raises TestFailure after timeout seconds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred(self.messages)
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TestFailure("timed out after %.1f s waiting for %s; %d messages: %r"
                                      % (timeout, what, len(self.messages),
                                         self.messages[-5:]))
                self.cond.wait(left)

    def on(self, topic):
        """Messages received so far on topic, in arrival order."""
        with self.cond:
            return [m for m in self.messages if m.topic == topic]

    def wait_count(self, topic, n, timeout, pred=None):
        """Waits until at least n messages (matching pred) arrived on topic; returns them."""
        def enough(msgs):
            got = [m for m in msgs if m.topic == topic and (pred is None or pred(m))]
            return got if len(got) >= n else None
        return self.wait_for(enough, timeout, "%d messages on %s" % (n, topic))

    def mark(self):
        """Index to pass to since(): messages after this point."""
        with self.cond:
            return len(self.messages)

    def since(self, mark, topic=None):
        with self.cond:
            return [m for m in self.messages[mark:] if topic is None or m.topic == topic]

    def wait_since(self, mark, topic, n, timeout, pred=None):
        def enough(msgs):
            got = [m for m in msgs[mark:] if m.topic == topic and (pred is None or pred(m))]
            return got if len(got) >= n else None
        return self.wait_for(enough, timeout, "%d new messages on %s" % (n, topic))


# ---------------------------------------------------------------- broker -------------------


class Broker:
    """Debian's mosquitto on 127.0.0.1:port with TLS and required client certificates (the
    certificate CN is the user name), message_size_limit 131072 (IoT Core's payload limit).
    server: "server" (correct host name) or "wronghost" (SAN other.example).
    max_packet_size: optional; a client sending a bigger packet is disconnected (IoT Core
    disconnects too), the only refusal an MQTT 3.1.1 client can observe.
    persistence: sessions and queued QoS 1 messages survive stop()/start() (SIGTERM saves).
    acl: optional mosquitto acl_file text (users are certificate CNs: the relay's client is
    CLIENT_CN, the test's own TESTER_CN). mosquitto drops a denied PUBLISH silently (PUBACK
    sent, "Denied PUBLISH" logged) and keeps the connection.
    conf: further mosquitto.conf lines (e.g. "retain_available false": a client that publishes
    a retained message is disconnected, as IoT Core disconnects on a denied publish)."""

    def __init__(self, pki, server="server", max_packet_size=None, persistence=True,
                 port=None, acl=None, conf=()):
        self.pki = pki
        self.server = server
        self.max_packet_size = max_packet_size
        self.persistence = persistence
        self.acl = acl
        self.conf = list(conf)
        self.dir = tempfile.mkdtemp(prefix="ei-bb-mosq-")
        self.port = port or free_port()
        self.proc = None
        self.starts = 0
        self.log_path = os.path.join(self.dir, "mosquitto.log")

    def _write_conf(self):
        lines = [
            "per_listener_settings false",
            "allow_anonymous false",
            "listener %d 127.0.0.1" % self.port,
            "cafile %s" % self.pki["ca"],
            "certfile %s" % self.pki[self.server + "_cert"],
            "keyfile %s" % self.pki[self.server + "_key"],
            "require_certificate true",
            "use_identity_as_username true",
            "message_size_limit %d" % MQTT_PAYLOAD_MAX,
            "max_queued_messages 100000",
            "max_inflight_messages 100",
            "log_dest file %s" % self.log_path,
            "log_type all",
            "connection_messages true",
            "log_timestamp true",
        ]
        if self.max_packet_size:
            lines.append("max_packet_size %d" % self.max_packet_size)
        if self.acl is not None:
            acl_path = os.path.join(self.dir, "acl")
            with open(acl_path, "w") as f:
                f.write(self.acl)
            lines.append("acl_file %s" % acl_path)
        lines += self.conf
        if self.persistence:
            lines += ["persistence true", "persistence_location %s/" % self.dir,
                      "autosave_interval 0"]
        else:
            lines.append("persistence false")
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to `mosquitto`, who can't read the keys
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        return conf

    def start(self):
        conf = self._write_conf()
        self.starts += 1
        out = open(os.path.join(self.dir, "stdout-%d.log" % self.starts), "wb")
        self.proc = subprocess.Popen([mosquitto_bin(), "-c", conf], stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()
        self._wait_ready()
        return self

    def _wait_ready(self):
        """Ready when an MQTT CONNECT over TLS gets its CONNACK (a full round trip)."""
        deadline = time.monotonic() + BROKER_READY_TIMEOUT_S
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure("mosquitto exited with %d\n%s" % (self.proc.returncode,
                                                                    self.log()))
            c = self.client("ei-bb-ready-%d" % os.getpid(), host="localhost")
            try:
                c.timeout = 2.0
                c.connect()
                c.close()
                return
            except (OSError, MqttError) as e:
                last = e
                if self.server != "server" and isinstance(e, ssl.SSLCertVerificationError):
                    c.close()
                    return  # up, and (as intended) presenting a certificate for another name
                c.close()
                try:  # not a sleep: returns at once if the broker dies
                    self.proc.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    pass
        raise TestFailure("mosquitto not ready after %.0f s (%r)\n%s" %
                          (BROKER_READY_TIMEOUT_S, last, self.log()))

    def client(self, client_id, clean=True, host="localhost"):
        """An (unconnected) MqttClient with the tester certificate. A broker presenting the
        wrong host name certificate is checked by name other.example."""
        if self.server == "wronghost" and host == "localhost":
            host = "other.example"
        return MqttClient(self.port, self.pki["ca"], self.pki["tester_cert"],
                          self.pki["tester_key"], client_id, host=host, clean=clean)

    def subscriber(self, topic="#", client_id=None, clean=False):
        """A connected client subscribed at QoS 1 to topic. clean=False keeps its session (and
        the QoS 1 messages published while it is away) across broker restarts."""
        c = self.client(client_id or "ei-bb-sub-%d-%d" % (os.getpid(), free_port()),
                        clean=clean)
        c.connect()
        c.subscribe(topic, 1)
        return c

    def publish(self, topic, payload, qos=1, retain=False):
        """Publishes one message from a short-lived client (waits for PUBACK at QoS 1)."""
        c = self.client("ei-bb-pub-%d-%d" % (os.getpid(), free_port()))
        c.connect()
        try:
            c.publish(topic, payload, qos, retain)
        finally:
            c.close()

    def stop(self):
        """SIGTERM (persists sessions), bounded wait."""
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise TestFailure("mosquitto ignored SIGTERM for 10 s")

    def kill(self):
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.kill()
        p.wait()

    def restart(self):
        self.stop()
        return self.start()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def cleanup(self):
        self.kill()
        if not os.environ.get("EI_BB_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not (exc_type is SystemExit and not exc.code):
            sys.stdout.write("---- mosquitto log (%s) ----\n%s\n---- end ----\n" %
                             (self.log_path, self.log()[-8000:]))
        self.cleanup()
        return False


# ---------------------------------------------------------------- relay side ---------------


def topic(name, leaf):
    """The contract's topic: leading slash kept."""
    return "/edgeimpulse/device/%s/%s" % (name, leaf)


def relay_mqtt_config(broker, name, ca=None, **extra):
    """Relay settings that point the forwarder at broker with the relay's client certificate,
    a predictable device name (no MAC suffix) and test-friendly timings; extra overrides."""
    pki = broker.pki
    cfg = {
        "mqtt_endpoint": "localhost",
        "mqtt_port": broker.port,
        "mqtt_ca": ca or pki["ca"],
        "mqtt_cert": pki["client_cert"],
        "mqtt_key": pki["client_key"],
        "mqtt_client_id": "%s-ei-relay" % name,
        "device_name": name,
        "device_mac_suffix": False,
        "iotcore_qos": 1,
        "publish_inference_base64_image": "no",
        "enable_threshold_limit": "no",
        "iotcore_backoff": 0,
        "metrics_sleeptime_ms": 3600000,
        "reconnect_min_ms": 100,
        "reconnect_max_ms": 1000,
        "publish_rate_max": 0,
        "publish_bytes_max": 0,
    }
    cfg.update(extra)
    return cfg


def forwarder(relay):
    return relay.get_json("/api/v1/forwarder")


def wait_forwarder(relay, pred, timeout, what):
    """Polls GET /api/v1/forwarder until pred(doc) (the REST API has no push; each poll is a
    round trip, bounded by timeout; a relay that exits fails at once). Returns the document."""
    return wait_for("forwarder: " + what, lambda: forwarder(relay), timeout, until=pred,
                    relay=relay)


def view_publish(relay, ident):
    return relay.get_json("/api/v1/inferences/" + ident).get("publish")


def wait_publish(relay, ident, states, timeout, what=None):
    """Polls one inference view until its "publish" is in states; returns it."""
    if isinstance(states, str):
        states = (states,)

    def publish():
        view = relay.get_json("/api/v1/inferences/" + ident)
        if "publish" not in view:
            raise TestFailure("inference view has no \"publish\" field: %.300r" % view)
        return view["publish"]
    return wait_for("inference %s: publish %s (%s)" % (ident, "|".join(states), what or ""),
                    publish, timeout, until=lambda v: v in states, relay=relay)


def device_name(tag):
    """A device name unique to this test process and tag (topics of parallel tests differ)."""
    return "eibb-%s-%d" % (tag, os.getpid())


def jpeg_b64_ok(s):
    """True when s is plain base64 (no data: prefix) of a JPEG."""
    import base64
    import binascii
    if not isinstance(s, str) or s.startswith("data:"):
        return False
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return False
    return raw[:3] == b"\xff\xd8\xff" and raw[-2:] == b"\xff\xd9"


def wait_text(read, pattern, n, timeout, what, relay=None):
    """Waits until regex pattern matches at least n times in read() (a log file that grows);
    returns the matches. With relay, a relay that exits meanwhile fails the wait at once."""
    import re
    rx = re.compile(pattern, re.I | re.M)
    return wait_for("%d x %s" % (n, what), lambda: rx.findall(read()), timeout,
                    until=lambda found: len(found) >= n, relay=relay)


def first_ids(msgs):
    """Inference ids in order of first arrival (duplicates after a reconnect removed)."""
    seen, out = set(), []
    for m in msgs:
        i = m.json().get("id")
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def relisten(relay):
    """New HTTP/WS ports for a restart (the old ones may linger after kill -9)."""
    relay.http_port = relay.cfg["http_port"] = free_port()
    relay.ws_port = relay.cfg["ws_port"] = free_port()
