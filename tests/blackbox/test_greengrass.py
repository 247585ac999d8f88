# test_greengrass.py - black-box: `ei-relay greengrass-setup` (issue 10, item 4) on fake nucleus
# layouts made from tests/fixtures/greengrass (Java's root with config/effectiveConfig.yaml,
# provisioned or written by hand; lite's config.yaml with config.d), certificates from the test
# PKI: what it finds and says where from, the copies it makes (mode 0600, owned by the run-as
# user, only of what that user cannot read, the key always), greengrass.json (0640, written
# atomically, idempotent), what it refuses (a PKCS#11 key, a missing or placeholder value) with
# exit code 2 and one line. Then the relay, run as the run-as user with only greengrass_file
# (and the test broker's port) set, connects to a real mosquitto with the discovered
# certificate and delivers an inference. As root the run-as user is nobody; otherwise it is
# the user running the tests (the ownership checks then hold trivially).
import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile

from harness import Relay, check, eq, fixture_path, new_id, relay_bin, run_tests
from harness.mqtt import (Broker, make_pki, require_tools, topic, wait_forwarder)

require_tools()
PKI = make_pki()
ROOT = os.geteuid() == 0
if ROOT:
    RUN_AS = ("nobody", grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name)
else:
    RUN_AS = (pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name)
WAIT_S = 20


class Layout:
    """A fake device in a temp dir: the nucleus files of one fixture (its @ROOT@ and
    @ENDPOINT@ replaced), the PKI's client certificate, key and CA where the configuration
    points, and the component's work directory owned by the run-as user."""

    def __init__(self, fixture, endpoint="localhost"):
        self.dir = tempfile.mkdtemp(prefix="ei-bb-gg-")
        os.chmod(self.dir, 0o755)
        self.root = os.path.join(self.dir, "root")
        self.work = os.path.join(self.dir, "work", "EdgeImpulseInferenceRelay")
        os.makedirs(self.work)
        shutil.chown(self.work, *RUN_AS)
        src = fixture_path("greengrass", fixture)
        for d, _, names in os.walk(src):
            rel = os.path.relpath(d, src)
            os.makedirs(os.path.join(self.root, rel), exist_ok=True)
            for n in names:
                with open(os.path.join(d, n)) as f:
                    text = f.read().replace("@ROOT@", self.root).replace("@ENDPOINT@", endpoint)
                with open(os.path.join(self.root, rel, n), "w") as f:
                    f.write(text)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def place(self, name, what, mode):
        """Copies the PKI's client cert/key or CA ("cert", "key", "ca") to root/name."""
        src = {"cert": PKI["client_cert"], "key": PKI["client_key"], "ca": PKI["ca"]}[what]
        dst = self.path(name)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(src, dst)
        os.chmod(dst, mode)
        return dst

    def json(self):
        with open(os.path.join(self.work, "greengrass.json")) as f:
            return json.load(f)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        if not os.environ.get("EI_BB_KEEP"):
            self.cleanup()


def setup(*args, env=None):
    """Runs greengrass-setup; returns (exit code, stdout, stderr)."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("EI_RELAY_") and k not in ("AWS_IOT_THING_NAME", "GG_ROOT_CA_PATH")}
    e.update(env or {})
    p = subprocess.run([relay_bin(), "greengrass-setup"] + list(args), capture_output=True,
                       text=True, timeout=60, env=e)
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
        check(marker not in p.stderr, "sanitizer report:\n" + p.stderr)
    return p.returncode, p.stdout, p.stderr


def check_owned(path, mode):
    st = os.stat(path)
    eq(stat.S_IMODE(st.st_mode), mode, "mode of %s" % path)
    eq((pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name), RUN_AS,
       "owner of %s" % path)


def same_bytes(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def user_runs_binary():
    """Whether the run-as user can run the binary under test (a checkout in a private home
    cannot be reached by nobody); the relay then runs as root and the test says so."""
    if not ROOT:
        return True
    try:
        p = subprocess.run([relay_bin(), "--version"], user=RUN_AS[0], group=RUN_AS[1],
                           extra_groups=[], capture_output=True, timeout=30)
        return p.returncode == 0
    except OSError:
        return False


def relay_delivers(b, gg_json, client_id, name):
    """A relay with greengrass_file only (and the broker's port, the test device name) connects
    as client_id and one inference reaches the broker; its log names where each value came
    from."""
    out = topic(name, "inference/output")
    sub = b.subscriber(topic(name, "#"))
    user = RUN_AS if ROOT and user_runs_binary() else None
    if ROOT and not user:
        print("NOTE: %s cannot run %s: the relay runs as root" % (RUN_AS[0], relay_bin()))
    try:
        cfg = {"greengrass_file": gg_json, "mqtt_port": b.port, "device_name": name,
               "device_mac_suffix": False, "reconnect_min_ms": 100, "reconnect_max_ms": 1000,
               "metrics_sleeptime_ms": 3600000}
        with Relay(cfg, user=user) as r:
            if user:
                eq(os.stat("/proc/%d" % r.proc.pid).st_uid, pwd.getpwnam(user[0]).pw_uid,
                   "the relay runs as " + user[0])
            doc = wait_forwarder(r, lambda d: d.get("state") == "connected", WAIT_S,
                                 "connected with the discovered certificate")
            eq(doc.get("client_id"), client_id, "client id")
            ident = new_id()
            r.ingest({"id": ident, "result": {"classification": {"gg": 0.75, "other": 0.25}}})
            sub.wait_for(lambda msgs: any(m.topic == out and m.json().get("id") == ident
                                          for m in msgs), WAIT_S, "the inference on " + out)
            log = r.log()
            for key in ("mqtt_endpoint", "mqtt_cert", "mqtt_key", "mqtt_client_id"):
                lines = [ln for ln in log.splitlines()
                         if ln.split(": ", 1)[-1].startswith(key + " = ")]
                eq(len(lines), 1, "one log line for %s: %r" % (key, lines))
                check(gg_json in lines[0] and "from " in lines[0], lines[0])
    finally:
        sub.close()


def test_java_provisioned_to_a_connected_relay():
    with Layout("java") as lay, Broker(PKI) as b:
        os.chmod(lay.path("config"), 0o700)  # as the Java installer leaves it
        cert = lay.place("thingCert.crt", "cert", 0o644)
        key = lay.place("privKey.key", "key", 0o600)
        ca = lay.place("rootCA.pem", "ca", 0o644)
        code, out, err = setup("--work-dir", lay.work + "/", "--java-root", lay.root)
        eq(code, 0, "exit code (%s)" % err)
        cfg_file = lay.path("config", "effectiveConfig.yaml")
        check("Java nucleus" in out and cfg_file in out, out)
        doc = lay.json()
        eq(sorted(doc), ["mqtt_ca", "mqtt_cert", "mqtt_client_id", "mqtt_endpoint", "mqtt_key"],
           "keys of greengrass.json")
        eq(doc["mqtt_endpoint"], {"value": "localhost", "from": cfg_file + ": services.aws."
                                  "greengrass.Nucleus.configuration.iotDataEndpoint"}, "endpoint")
        copy = os.path.join(lay.work, "greengrass-key.pem")
        eq(doc["mqtt_key"]["value"], copy, "the key is copied")
        check(doc["mqtt_key"]["from"] == "%s: system.privateKeyPath (copy of %s)" % (cfg_file, key),
              doc["mqtt_key"]["from"])
        check(same_bytes(copy, key), "the copy holds the key")
        check_owned(copy, 0o600)
        eq(doc["mqtt_cert"]["value"], cert, "a certificate the user can read is not copied")
        eq(doc["mqtt_ca"]["value"], ca, "nor the CA")
        eq(doc["mqtt_client_id"]["value"], "EiJavaGateway-ei-relay", "client id")
        check("system.thingName" in doc["mqtt_client_id"]["from"], doc["mqtt_client_id"])
        check_owned(os.path.join(lay.work, "greengrass.json"), 0o640)
        # idempotent: a second run (the Java nucleus reruns install at every start)
        code, out2, err = setup("--work-dir", lay.work, "--java-root", lay.root)
        eq(code, 0, "second run (%s)" % err)
        eq(lay.json(), doc, "greengrass.json after a second run")
        eq(sorted(os.listdir(lay.work)), ["greengrass-key.pem", "greengrass.json"],
           "no leftovers in the work directory")
        relay_delivers(b, os.path.join(lay.work, "greengrass.json"), "EiJavaGateway-ei-relay",
                       "eibb-ggjava-%d" % os.getpid())


def test_lite_merged_environment_and_copies():
    with Layout("lite") as lay, Broker(PKI) as b:
        var = os.path.join(lay.dir, "var")
        os.makedirs(var)
        os.chmod(var, 0o700)  # lite's files belong to ggcore; the component user cannot read them
        for name, what in (("device.pem", "cert"), ("device.key", "key"),
                           ("AmazonRootCA1.pem", "ca")):
            shutil.copyfile({"cert": PKI["client_cert"], "key": PKI["client_key"],
                             "ca": PKI["ca"]}[what], os.path.join(var, name))
        # the fixture's @ROOT@ is the lite root: point it at var/
        for f in [lay.path("config.yaml")]:
            with open(f) as fh:
                text = fh.read().replace(lay.root, var)
            with open(f, "w") as fh:
                fh.write(text)
        args = ["--work-dir", lay.work, "--java-root", lay.dir,  # no Java there: auto picks lite
                "--lite-config", lay.path("config.yaml"), "--run-as", ":".join(RUN_AS)]
        code, out, err = setup(*args)
        eq(code, 0, "exit code (%s)" % err)
        check("lite nucleus" in out, out)
        doc = lay.json()
        dev = lay.path("config.d", "20-device.yaml")
        eq(doc["mqtt_endpoint"]["value"], "localhost", "endpoint from config.d")
        eq(doc["mqtt_endpoint"]["from"], dev + ": services.aws.greengrass.NucleusLite."
           "configuration.iotDataEndpoint", "the later file wins")
        eq(doc["mqtt_client_id"]["value"], "EiLiteGateway-ei-relay", "thing from 20-device.yaml")
        for key, name, src in (("mqtt_cert", "greengrass-cert.pem", "device.pem"),
                               ("mqtt_key", "greengrass-key.pem", "device.key"),
                               ("mqtt_ca", "greengrass-ca.pem", "AmazonRootCA1.pem")):
            copy = os.path.join(lay.work, name)
            eq(doc[key]["value"], copy, "%s copied (the user cannot read %s)" % (key, src))
            check(same_bytes(copy, os.path.join(var, src)), "copy of " + src)
            check_owned(copy, 0o600)
        relay_delivers(b, os.path.join(lay.work, "greengrass.json"), "EiLiteGateway-ei-relay",
                       "eibb-gglite-%d" % os.getpid())
        # the nucleus's environment wins over its configuration
        ca = os.path.join(lay.dir, "env-ca.pem")
        shutil.copyfile(PKI["ca"], ca)
        os.chmod(ca, 0o644)
        code, out, err = setup(*args, env={"AWS_IOT_THING_NAME": "EnvThing",
                                           "GG_ROOT_CA_PATH": ca})
        eq(code, 0, "exit code with the environment (%s)" % err)
        doc = lay.json()
        eq(doc["mqtt_client_id"], {"value": "EnvThing-ei-relay", "from":
                                   "environment AWS_IOT_THING_NAME + \"-ei-relay\""}, "client id")
        eq(doc["mqtt_ca"], {"value": ca, "from": "environment GG_ROOT_CA_PATH"}, "CA")


def test_java_by_hand_relative_paths_and_port():
    with Layout("java-manual", endpoint="a1b2c3-ats.iot.us-east-1.amazonaws.com") as lay:
        cert = lay.place("certs/device.pem.crt", "cert", 0o644)
        lay.place("certs/private.pem.key", "key", 0o600)
        ca = lay.place("certs/AmazonRootCA1.pem", "ca", 0o644)
        code, out, err = setup("--work-dir", lay.work, "--java-root", lay.root, "--nucleus",
                               "java")
        eq(code, 0, "exit code (%s)" % err)
        doc = lay.json()
        eq(doc["mqtt_cert"]["value"], cert, "a relative path is under the root")
        eq(doc["mqtt_ca"]["value"], ca, "relative CA")
        check("copy of " + lay.path("certs", "private.pem.key") in doc["mqtt_key"]["from"],
              "~root/ is the root: %r" % doc["mqtt_key"])
        eq(doc["mqtt_port"]["value"], "443", "the nucleus's MQTT port")
        check(doc["mqtt_port"]["from"].endswith("services.aws.greengrass.Nucleus.configuration."
                                                "mqtt.port"), doc["mqtt_port"])
        # the relay takes the port, unless set explicitly
        d = tempfile.mkdtemp(prefix="ei-bb-gg-cfg-")
        try:
            gg = os.path.join(lay.work, "greengrass.json")
            p = subprocess.run([relay_bin(), "--print-config", "--greengrass-file", gg,
                                "--db-path", os.path.join(d, "x.db")],
                               capture_output=True, text=True, timeout=30, cwd=d)
            eq(p.returncode, 0, p.stderr)
            printed = json.loads(p.stdout)
            eq(printed["mqtt_port"], 443, "mqtt_port from greengrass_file")
            eq(printed["mqtt_endpoint"], "a1b2c3-ats.iot.us-east-1.amazonaws.com", "endpoint")
        finally:
            shutil.rmtree(d, ignore_errors=True)


def refused(lay, args, want, env=None):
    code, out, err = setup("--work-dir", lay.work, *args, env=env)
    eq(code, 2, "exit code (%s%s)" % (out, err))
    lines = err.strip().splitlines()
    eq(len(lines), 1, "one line: %r" % err)
    check(want in lines[0], "%r not in %r" % (want, lines[0]))
    check(not os.path.exists(os.path.join(lay.work, "greengrass.json")), "greengrass.json written")
    return lines[0]


def test_refusals():
    with Layout("java-pkcs11") as lay:
        line = refused(lay, ["--java-root", lay.root], "PKCS#11")
        check("system.privateKeyPath" in line and "object=iotkey" not in line,
              "names the key, not the URI (it may hold a PIN): %r" % line)
        refused(lay, ["--java-root", lay.dir, "--nucleus", "java"], "does not exist")
    with Layout("java") as lay:
        lay.place("thingCert.crt", "cert", 0o644)
        lay.place("rootCA.pem", "ca", 0o644)
        refused(lay, ["--java-root", lay.root], "system.privateKeyPath %s" %
                lay.path("privKey.key"))  # the key file is missing
        with open(lay.path("privKey.key"), "w") as f:
            f.write("not a key\n")
        refused(lay, ["--java-root", lay.root], "not a PEM file")
        lay.place("privKey.key", "key", 0o600)
        refused(lay, ["--java-root", lay.root, "--run-as", "no-such-user-ei"],
                "no user \"no-such-user-ei\"")
        refused(lay, ["--java-root", lay.root, "--nucleus", "docker"], "--nucleus")
        refused(lay, ["--java-root", lay.root], "is not a thing name",
                env={"AWS_IOT_THING_NAME": "bad thing/name"})
    with Layout("lite") as lay:
        # config.yaml alone still holds lite's placeholders
        shutil.rmtree(lay.path("config.d"))
        refused(lay, ["--lite-config", lay.path("config.yaml"), "--java-root", lay.dir],
                "\"<CONFIGURE_THIS>\" is not a host name")


def test_help_and_usage():
    code, out, err = setup("--help")
    eq(code, 0, "--help exit code")
    for flag in ("--work-dir", "--nucleus", "--java-root", "--lite-config", "--lite-config-dir",
                 "--run-as"):
        check(flag in out, "--help lacks " + flag)
    code, out, err = setup()
    eq(code, 2, "no --work-dir")
    check("--work-dir" in err, err)
    p = subprocess.run([relay_bin(), "--help"], capture_output=True, text=True, timeout=30)
    check("greengrass-setup" in p.stdout and "greengrass_file" in p.stdout.replace("-", "_"),
          "ei-relay --help names greengrass-setup and greengrass_file")


TESTS = [test_java_provisioned_to_a_connected_relay, test_lite_merged_environment_and_copies,
         test_java_by_hand_relative_paths_and_port, test_refusals, test_help_and_usage]

if __name__ == "__main__":
    run_tests(TESTS)
