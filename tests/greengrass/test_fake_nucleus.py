#!/usr/bin/env python3
# test_fake_nucleus.py - the components end to end on a fake Java nucleus and a fake nucleus lite
# (label greengrass), each in its own clean Debian 12 root:
#  1. scripts/package.sh builds the host's package and, through recipes/build.sh, the components
#     (dist/greengrass/), as a release does (under CTest once for this test and the install
#     test: the fixture package.dist, tests/install/build_dist.py);
#  2. the nucleus's layout and the device's identity (certificate and key signed by the test CA
#     of the black-box broker) where that nucleus keeps them (fake_nucleus.py);
#  3. EdgeImpulseInferenceRelay deployed with a configuration merge of both shapes (top level and
#     Parameters): install as root (measured), then run as ggc_user / gg_component: the relay
#     must find the endpoint, certificate, key, CA and client id by itself, connect to mosquitto
#     (whose ACL is the IoT policy of docs/greengrass.md) and publish an inference, a metrics
#     message and a command's reply, clear the retained command, and stop on SIGTERM with 0
#     within 4 s; then install again, as the Java nucleus does at every start: it must skip in
#     a few seconds at most (measured);
#  4. EdgeImpulseSerialRunnerServiceComponent on the Java layout with the stand-in Edge Impulse
#     board of the black-box tests (tests/blackbox/harness/at_device.py: the AT firmware protocol
#     on a pty, group dialout, which install gives the component user): AT+RUNIMPULSE is sent and
#     the board's predictions reach the broker.
# Root only (skipped otherwise, or without mmdebstrap, mosquitto, openssl or Debian's mirror).
# Env: EI_TEST_SOURCE_DIR, EI_INSTALL_DIR (work and cache, shared with tests/install).
# Last, EdgeImpulseLinuxRunnerServiceComponent on the lite layout (python3 added to its root):
# deployed without a model, install adds no GStreamer plugins; with ei_local_model_file (the stand-in model,
# tests/eim/fake_eim.py) and gst_args (a videotestsrc camera) under Parameters, install adds them,
# ei-relay runs the model as gg_component, its classifications reach the broker and
# /api/v1/sources shows the eim source "runner" running; the next install skips (runner_on).
import fnmatch
import json
import os
import re
import shutil
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("EI_TEST_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "install"))
sys.path.insert(0, os.path.join(SRC, "tests", "blackbox"))

from harness import check, eq, free_port, wait_for  # noqa: E402
from harness.mqtt import Broker, make_pki, mosquitto_bin  # noqa: E402

WORK = os.environ.get("EI_INSTALL_DIR") or os.path.join(SRC, "build", "install")
CACHE = os.path.join(WORK, "cache")
RELAY = "EdgeImpulseInferenceRelay"
SERIAL = "EdgeImpulseSerialRunnerServiceComponent"
RUNNER = "EdgeImpulseLinuxRunnerServiceComponent"
STOP_LIMIT_S = 4.0  # the Java nucleus kills 5 s after SIGTERM
SKIP_LIMIT_S = 5.0  # a second install (the Java nucleus's every start) must be this quick
WAIT_S = 60


def skip(why):
    print("SKIP: " + why, flush=True)
    sys.exit(77)


def step(msg):
    print("== " + msg, flush=True)


if os.geteuid() != 0:
    skip("the fake nuclei need root (a Debian root, chroot, users)")
for tool in ("mmdebstrap", "openssl"):
    if not shutil.which(tool):
        skip("%s is not installed (scripts/deps.sh test)" % tool)
if not mosquitto_bin():
    skip("mosquitto is not installed (scripts/deps.sh test)")
try:
    import yaml  # noqa: F401
    import chroot  # noqa: E402  (tests/install/chroot.py)
    import check_policy  # noqa: E402
    import fake_nucleus as F  # noqa: E402
    from harness.at_device import AtDevice  # noqa: E402
except ImportError as e:
    skip("cannot import what the test needs: %s" % e)


# ---------------------------------------------------------------- the release ---------------

def build_release():
    """scripts/package.sh for the host's architecture (and recipes/build.sh through it), or
    what CTest's package.dist fixture built for this run (tests/install/build_dist.py)."""
    if chroot.dist_prebuilt():
        out = os.path.join(WORK, "dist")
        step("the package and the components of this run in %s (package.dist)" % out)
    else:
        step("scripts/package.sh (with the components)")
        out, _ = chroot.build_dist(SRC, WORK, recipes=True)
    gg = os.path.join(out, "greengrass")
    check(os.path.isdir(os.path.join(gg, "recipes")), "package.sh wrote no dist/greengrass")
    return gg


def recipe_path(gg, name):
    found = [f for f in os.listdir(os.path.join(gg, "recipes")) if f.startswith(name + "-")]
    eq(len(found), 1, "one %s recipe in dist/greengrass/recipes" % name)
    return os.path.join(gg, "recipes", found[0])


# ---------------------------------------------------------------- the broker ----------------

def policy_acl(pki):
    """The IoT policy of docs/greengrass.md as a mosquitto ACL for the relay's certificate (its
    CN is the user name): iot:Publish -> write, iot:Subscribe + iot:Receive -> read; the
    device level, a glob in the policy, becomes '+' (checked against the real name later).
    The tester's certificate may do everything."""
    with open(os.path.join(SRC, check_policy.DOC), encoding="utf-8") as f:
        pol = json.loads(check_policy.policy_block(f.read(), "iot-policy"))
    grants, globs = {}, set()
    for st in check_policy.as_list(pol["Statement"]):
        for action in check_policy.as_list(st["Action"]):
            for res in check_policy.as_list(st["Resource"]):
                m = check_policy.TOPIC.match(res[len(check_policy.ARN):])
                if not m:
                    continue
                globs.add(m.group(2))
                t = "/edgeimpulse/device/+/" + m.group(3)
                grants.setdefault(t, set()).add(action)
    lines = ["user ei-relay-tester", "topic readwrite #", "", "user ei-relay-test-device"]
    for t, acts in sorted(grants.items()):
        w = "iot:Publish" in acts
        r = {"iot:Subscribe", "iot:Receive"} <= acts
        if w or r:
            lines.append("topic %s %s" % ("readwrite" if w and r else "write" if w else "read", t))
    return "\n".join(lines) + "\n", globs, pol


class PolicyBroker(Broker):
    """The black-box broker with an ACL file."""

    def __init__(self, pki, acl):
        super().__init__(pki)
        self.acl_path = os.path.join(self.dir, "acl")
        with open(self.acl_path, "w") as f:
            f.write(acl)

    def _write_conf(self):
        conf = super()._write_conf()
        with open(conf, "a") as f:
            f.write("acl_file %s\n" % self.acl_path)
        return conf


# ---------------------------------------------------------------- helpers -------------------

def http_json(port, path, token=None, body=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read().decode())


def health(port):
    """GET /api/v1/health, or None while nothing answers (the relay is starting)."""
    try:
        return http_json(port, "/api/v1/health")
    except (OSError, ValueError):
        return None


def wait_health(port, what, proc):
    """Waits for the relay to answer health; a run step that ends meanwhile fails at once."""
    def probe():
        if proc.poll() is not None:
            raise AssertionError("%s: the run step exited with %s" % (what, proc.returncode))
        return health(port)
    return wait_for(what, probe, WAIT_S, until=lambda h: h and h.get("status") == "ok")


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class Device:
    """A fresh fake nucleus of kind in its own root, the log of its component's run step and
    the step while it runs. `with Device(...) as d:` prints the log when the body fails and
    always stops the component and removes the root."""

    def __init__(self, kind, thing, what):
        fs = chroot.debian_root(CACHE)
        archives = os.path.join(CACHE, "apt-archives")
        os.makedirs(os.path.join(archives, "partial"), exist_ok=True)
        # /sys as on a device (ei-relay names the device after the default route's MAC)
        self.n = F.FakeNucleus(kind, fs, chroot, thing,
                               binds=[(archives, "/var/cache/apt/archives"), ("/sys", "/sys")])
        self.what = "%s %s" % (kind, what)
        self.log_path = os.path.join(WORK, "fake-nucleus-%s-%s.log" % (kind, what))
        open(self.log_path, "w").close()
        self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            print("---- %s: run log ----\n%s\n----" % (self.what, read_text(self.log_path)[-6000:]))
        if self.proc is not None:
            self.n.stop(self.proc, 10)
        self.n.remove()
        return False

    def install(self, again=False):
        """Runs install; returns the seconds it took. again: it must skip (quickly)."""
        rc, out, took = self.n.install()
        print(out, flush=True)
        eq(rc, 0, "%s: install" % self.what)
        if again:
            step("%s: second install (already installed): %.2f s" % (self.what, took))
            check(took < SKIP_LIMIT_S, "%s: the second install took %.1f s (> %.0f s): it must "
                  "skip" % (self.what, took, SKIP_LIMIT_S))
            check("is installed" in out, "%s: the second install did not skip" % self.what)
        else:
            step("%s: install (package and its dependencies, setup): %.1f s" % (self.what, took))
        return took

    def start(self, http_port):
        """Starts run; returns the relay's health once it answers."""
        step("%s: run as %s" % (self.what, self.n.user))
        self.proc = self.n.start(self.log_path)
        return wait_health(http_port, "%s: health" % self.what, self.proc)

    def stop(self):
        """SIGTERM: the relay must exit 0 within STOP_LIMIT_S; returns the seconds it took."""
        status, took = self.n.stop(self.proc, 10)
        self.proc = None
        eq(status, 0, "%s: exit status on SIGTERM" % self.what)
        step("%s: stopped in %.2f s" % (self.what, took))
        check(took < STOP_LIMIT_S, "%s: stop took %.1f s" % (self.what, took))
        return took

    def log(self):
        return read_text(self.log_path)


# ---------------------------------------------------------------- the relay component -------

def relay_on(kind, gg, broker, pki, globs, results):
    thing = "fake-thing-" + kind
    http_port, ws_port = free_port(), free_port()
    with Device(kind, thing, "relay") as d:
        n = d.n
        step("%s: layout in %s" % (kind, n.fs))
        n.install_identity(pki["client_cert"], pki["client_key"], pki["ca"], "localhost")
        # Both shapes: top-level keys (strings and a number) and Parameters (any setting).
        merge = {"http_port": str(http_port), "ws_port": ws_port, "mqtt_port": broker.port,
                 "Parameters": {"iotcore_backoff": -1, "metrics_sleeptime_ms": 1000,
                                "reconnect_min_ms": 100, "reconnect_max_ms": 1000}}
        n.deploy(recipe_path(gg, RELAY), os.path.join(gg, "artifacts"), merge)
        results["%s install" % kind] = d.install()

        # What install handed the component user.
        gj_path = os.path.join(n.work, "greengrass.json")
        eq(n.stat(gj_path), (0o640, n.user), "%s: greengrass.json mode and owner" % kind)
        gj = n.read_json(gj_path)
        eq(gj["mqtt_endpoint"]["value"], "localhost", "%s: the endpoint found" % kind)
        eq(gj["mqtt_client_id"]["value"], thing + "-ei-relay", "%s: the client id" % kind)
        key = gj["mqtt_key"]["value"]
        check(key.startswith(n.work + "/"), "%s: the key is not copied into the work folder: %s"
              % (kind, key))
        eq(n.stat(key), (0o600, n.user), "%s: the key copy's mode and owner" % kind)
        for k in ("mqtt_cert", "mqtt_ca"):
            n.as_user(["test", "-r", gj[k]["value"]])  # readable by the component user

        sub = broker.subscriber("/edgeimpulse/device/#")
        device = d.start(http_port)["device"]
        check(any(fnmatch.fnmatch(device, g) for g in globs),
              "%s: the device %s is not in the policy's topics %s" % (kind, device, globs))
        token = n.as_user(["ei-relay", "token", "--db-path", n.work + "/ei-relay.db"]).strip()
        wait_for("%s: forwarder connected" % kind,
                 lambda: http_json(http_port, "/api/v1/forwarder", token),
                 WAIT_S, until=lambda f: f.get("state") == "connected")
        base = "/edgeimpulse/device/%s/" % device
        doc = json.dumps({"result": {"classification": {"cat": 0.9, "dog": 0.1}},
                          "timing": {"dsp": 1, "classification": 2, "anomaly": 0}}).encode()
        stored = http_json(http_port, "/api/v1/inferences", token, doc)
        sub.wait_count(base + "inference/output", 1, WAIT_S,
                       pred=lambda m: m.json().get("id") == stored["id"])
        sub.wait_count(base + "model/metrics", 1, WAIT_S)
        mark = sub.mark()
        broker.publish(base + "command/input", json.dumps({"cmd": "get_threshold_filter_config"}),
                       retain=True)
        sub.wait_since(mark, base + "command/output", 1, WAIT_S,
                       pred=lambda m: "result" in m.json())
        # the relay clears the retained command (needs iot:RetainPublish in the policy)
        sub.wait_since(mark, base + "command/input", 1, WAIT_S, pred=lambda m: m.payload == b"")
        sub.close()
        for k in ("mqtt_endpoint", "mqtt_key", "mqtt_client_id"):
            check(re.search(r"%s.*greengrass" % k, d.log()),
                  "%s: the log does not say where %s came from" % (kind, k))
        denied = [ln for ln in broker.log().splitlines() if "Denied" in ln and thing in ln]
        check(not denied, "%s: the broker (the IoT policy as its ACL) denied the relay:\n%s" % (
            kind, "\n".join(denied)))
        check(("%s-ei-relay" % thing) in broker.log(), "%s: the relay did not connect as "
              "%s-ei-relay" % (kind, thing))
        results["%s stop" % kind] = d.stop()
        results["%s second install" % kind] = d.install(again=True)

        # A configuration deployment: the component restarts with the new environment. A
        # top-level key wins over Parameters; a Parameters key applies where the top level
        # says "__none__".
        merge["Parameters"].update(device_name="FromParameters", device_mac_suffix="no")
        merge["device_name"] = "Gate-" + kind
        n.deploy(recipe_path(gg, RELAY), os.path.join(gg, "artifacts"), merge)
        eq(d.start(http_port)["device"], "Gate-" + kind,
           "%s: the device name after the configuration change" % kind)
        d.stop()


# ---------------------------------------------------------------- the serial component ------

def serial_on(kind, gg, broker, pki):
    # the stand-in board of the black-box tests, its pty's own path (no symlink in a temp dir:
    # the component runs in the fake device's root, which shares /dev only)
    fw = AtDevice(fmt="classic", link=False)
    os.chown(fw.device, 0, 20)  # dialout (gid 20 on Debian, in the root too)
    os.chmod(fw.device, 0o660)
    http_port = free_port()
    try:
        with Device(kind, "fake-serial-" + kind, "serial") as d:
            n = d.n
            step("%s serial: layout in %s, firmware on %s" % (kind, n.fs, fw.device))
            n.install_identity(pki["client_cert"], pki["client_key"], pki["ca"], "localhost")
            merge = {"serial_device": fw.device, "http_port": str(http_port), "ws_port": "0",
                     "mqtt_port": str(broker.port), "Parameters": {"iotcore_backoff": "0"}}
            n.deploy(recipe_path(gg, SERIAL), os.path.join(gg, "artifacts"), merge)
            d.install()
            check(" dialout" in n.run(["id", "-nG", n.user]).stdout,
                  "%s serial: install did not add %s to dialout" % (kind, n.user))
            sub = broker.subscriber("/edgeimpulse/device/#")
            d.start(http_port)
            sub.wait_for(lambda ms: [m for m in ms if m.topic.endswith("/inference/output")
                                     and m.json().get("c")][1:], WAIT_S,
                         "%s serial: two predictions on the broker" % kind)
            check(fw.runs >= 1, "%s serial: AT+RUNIMPULSE was not sent to the firmware" % kind)
            sub.close()
            d.stop()
            step("%s serial: AT+RUNIMPULSE taken %d time(s), predictions forwarded" % (
                kind, fw.runs))
    finally:
        fw.close()


# ---------------------------------------------------------------- the runner component ------

MODEL = "/opt/models/model.eim"
PLUGINS = ("gstreamer1.0-plugins-base", "gstreamer1.0-plugins-good")
# The seed's gst_args form (':' for each space): a moving scene, so every frame is classified.
CAMERA = ("videotestsrc:pattern=ball:is-live=true:!:"
          "video/x-raw,width=320,height=240,framerate=10/1:!:jpegenc")


def plugins_installed(n):
    """The GStreamer plugin packages dpkg has installed in the root."""
    return [p for p in PLUGINS if "Status: install ok installed" in
            n.run(["dpkg-query", "-s", p], check=False).stdout.splitlines()]


def runner_install(d, what):
    """Install of the runner component: (output, seconds); it must succeed."""
    rc, out, took = d.n.install()
    print(out, flush=True)
    eq(rc, 0, "%s: install (%s)" % (d.what, what))
    step("%s: install (%s): %.2f s" % (d.what, what, took))
    return out, took


def model_uids():
    """The real uids of the processes running the stand-in model (seen from here: the root
    shares this machine's process ids)."""
    uids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if MODEL.encode() not in f.read().split(b"\0")[:2]:  # python3 MODEL SOCKET
                    continue
            with open("/proc/%s/status" % pid) as f:
                uids += [int(ln.split()[1]) for ln in f if ln.startswith("Uid:")]
        except OSError:
            pass
    return uids


def runner_on(kind, gg, broker, pki, results):
    """EdgeImpulseLinuxRunnerServiceComponent: ei-relay runs the stand-in model (a Python .eim:
    python3 is added to the root) on a videotestsrc camera given as gst_args. Deployed first without a
    model (install adds no plugins), then with ei_local_model_file and gst_args under Parameters
    (the seed's shape): install adds the GStreamer plugins, run (as the component user) runs
    the model, its results reach the broker; a third install skips everything."""
    http_port = free_port()
    with Device(kind, "fake-runner-" + kind, "runner") as d:
        n = d.n
        # the stand-in model is Python: apt in the root (seconds, archives cached) rather than
        # a root tarball of its own (minutes of mmdebstrap on a fresh clone)
        py = n.run(["sh", "-c", "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && "
                    "apt-get install -y -qq --no-install-recommends python3 >/dev/null"],
                   check=False)
        eq(py.returncode, 0, "%s runner: python3 for the stand-in model: %s" % (kind, py.stderr))
        step("%s runner: layout in %s, the stand-in model at %s" % (kind, n.fs, MODEL))
        n.install_identity(pki["client_cert"], pki["client_key"], pki["ca"], "localhost")
        with open(os.path.join(SRC, "tests", "eim", "fake_eim.py"), encoding="utf-8") as f:
            text = f.read()
        n.put(MODEL, "#!/usr/bin/python3\n" + text.split("\n", 1)[1], 0o755)
        merge = {"http_port": str(http_port), "ws_port": "0", "mqtt_port": str(broker.port),
                 "Parameters": {"iotcore_backoff": "0"}}
        n.deploy(recipe_path(gg, RUNNER), os.path.join(gg, "artifacts"), merge)
        out, _ = runner_install(d, "no model")
        eq(plugins_installed(n), [], "%s runner: plugins installed without a model" % kind)
        check("GStreamer" not in out, "%s runner: install without a model spoke of GStreamer"
              % kind)

        merge["Parameters"].update(ei_local_model_file=MODEL, gst_args=CAMERA)
        n.deploy(recipe_path(gg, RUNNER), os.path.join(gg, "artifacts"), merge)
        out, took = runner_install(d, "a model: the GStreamer plugins")
        results["%s runner plugins install" % kind] = took
        eq(plugins_installed(n), list(PLUGINS), "%s runner: plugins after install" % kind)
        check("installing the GStreamer plugins" in out, "%s runner: install did not say it "
              "installs the plugins" % kind)

        sub = broker.subscriber("/edgeimpulse/device/#")
        d.start(http_port)
        token = n.as_user(["ei-relay", "token", "--db-path", n.work + "/ei-relay.db"]).strip()
        sub.wait_for(lambda ms: [m for m in ms if m.topic.endswith("/inference/output") and
                                 set(m.json().get("c") or ()) == {"dark", "bright"}][2:],
                     WAIT_S, "%s runner: three of the model's classifications on the broker"
                     % kind)
        sub.close()
        st = [s for s in http_json(http_port, "/api/v1/sources", token)["sources"]
              if s["name"] == "runner"]
        eq([(s["kind"], s["state"]) for s in st], [("eim", "running")],
           "%s runner: the source in /api/v1/sources" % kind)
        eq(st[0]["model"]["project"]["name"], "fake-eim", "%s runner: the model info" % kind)
        uid = int(n.run(["id", "-u", n.user]).stdout)
        eq(set(model_uids()), {uid}, "%s runner: the model runs as %s" % (kind, n.user))
        results["%s runner stop" % kind] = d.stop()
        check(not model_uids(), "%s runner: the model outlived the relay" % kind)

        out, took = runner_install(d, "again")
        results["%s runner second install" % kind] = took
        check(took < SKIP_LIMIT_S and "is installed" in out and
              "the GStreamer plugins are installed" in out,
              "%s runner: the install after the first did not skip (%.1f s)" % (kind, took))


def main():
    os.makedirs(WORK, exist_ok=True)
    try:
        gg = build_release()
        pki = make_pki()
        acl, globs, _ = policy_acl(pki)
        results = {}
        with PolicyBroker(pki, acl) as broker:
            for kind in (F.JAVA, F.LITE):
                relay_on(kind, gg, broker, pki, globs, results)
            serial_on(F.JAVA, gg, broker, pki)
            runner_on(F.LITE, gg, broker, pki, results)
    except chroot.Unavailable as e:
        skip(str(e))
    step("times: " + ", ".join("%s %.2f s" % kv for kv in results.items()))
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
