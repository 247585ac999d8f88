# test_config.py - black-box: the configuration surface of the binary: --print-config with
# secrets masked, precedence file < environment < flags, unknown keys and bad values refused
# with a message naming the key, Edge Impulse seed keys accepted as strings, ignored seed keys
# reported once; the recipes' "Parameters" object (file and EI_RELAY_PARAMETERS); greengrass_file
# (explicit settings win, a missing file is not fatal); exit code 2 for every configuration
# error, found by the loader or at start, in one line naming the setting.
import json
import os
import subprocess
import tempfile
import shutil

from harness import (ADMIN_TOKEN, READ_TOKEN, SANITIZER_MARKERS, Relay, TestFailure, check, eq,
                     free_port, relay_bin, run_tests)


class Run:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err
        self.text = out + err


def run_bin(cfg=None, args=(), env=None, timeout=20):
    """Runs the binary to completion (e.g. --print-config, or a config it must refuse)."""
    d = tempfile.mkdtemp(prefix="ei-bb-cfg-")
    try:
        argv = [relay_bin()]
        if cfg is not None:
            path = os.path.join(d, "config.json")
            with open(path, "w") as f:
                f.write(cfg if isinstance(cfg, str) else json.dumps(cfg))
            argv += ["--config", path]
        e = {k: v for k, v in os.environ.items() if not k.startswith("EI_RELAY_")}
        if os.geteuid() == 0:
            e["EI_RELAY_ALLOW_ROOT"] = "true"  # the service refuses root otherwise
        e.update(env or {})
        p = subprocess.run(argv + list(args), capture_output=True, timeout=timeout, cwd=d,
                           env=e, stdin=subprocess.DEVNULL)
        res = Run(p.returncode, p.stdout.decode("utf-8", "replace"),
                  p.stderr.decode("utf-8", "replace"))
        for m in SANITIZER_MARKERS:
            check(m not in res.text, "sanitizer report:\n" + res.text)
        return res
    finally:
        shutil.rmtree(d, ignore_errors=True)


def base_cfg(**kw):
    d = tempfile.gettempdir()
    cfg = {"http_port": free_port(), "ws_port": free_port(), "bind": "127.0.0.1",
           "db_path": os.path.join(d, "ei-bb-never-created", "x.db"), "log_level": "debug",
           "tokens": [{"token": ADMIN_TOKEN, "role": "admin"},
                      {"token": READ_TOKEN, "role": "read"}]}
    cfg.update(kw)
    return cfg


def printed(res):
    eq(res.code, 0, "--print-config exit code (output: %s)" % res.text[:2000])
    try:
        return json.loads(res.out)
    except ValueError:
        raise TestFailure("--print-config output is not JSON: %r" % res.out[:2000])


def test_print_config_masks_secrets():
    cfg = base_cfg(mqtt_endpoint="example.iot.eu-west-1.amazonaws.com")
    res = run_bin(cfg, ["--print-config"])
    doc = printed(res)
    eq(doc["http_port"], cfg["http_port"], "http_port from the file")
    eq(doc["bind"], "127.0.0.1", "bind")
    eq(doc["db_path"], cfg["db_path"], "db_path")
    eq(doc["mqtt_endpoint"], cfg["mqtt_endpoint"], "mqtt_endpoint")
    check(ADMIN_TOKEN not in res.text and READ_TOKEN not in res.text, "token printed in clear")
    check("***" in res.out, "no masked value in --print-config")
    check("tokens" in doc, "tokens key shown (masked)")
    check(not os.path.exists(os.path.dirname(cfg["db_path"])), "--print-config created the db")
    # defaults are printed too
    check("ws_port" in doc and "max_body_bytes" in doc and "thumbnail_px" in doc,
          "defaults missing from --print-config: %r" % sorted(doc))


def test_precedence_file_env_flag():
    cfg = base_cfg(http_port=1111)
    doc = printed(run_bin(cfg, ["--print-config"]))
    eq(doc["http_port"], 1111, "file")
    doc = printed(run_bin(cfg, ["--print-config"], env={"EI_RELAY_HTTP_PORT": "2222"}))
    eq(doc["http_port"], 2222, "environment over file")
    doc = printed(run_bin(cfg, ["--print-config", "--http-port", "3333"],
                          env={"EI_RELAY_HTTP_PORT": "2222"}))
    eq(doc["http_port"], 3333, "flag over environment")
    doc = printed(run_bin(cfg, ["--print-config", "--thumbnail-px=96"],
                          env={"EI_RELAY_LOG_LEVEL": "warn"}))
    eq(doc["thumbnail_px"], 96, "--flag=value form")
    check(doc["log_level"] in ("warn", 2), "log_level from env: %r" % doc["log_level"])


def test_unknown_key_refused():
    res = run_bin(base_cfg(no_such_setting=1))
    check(res.code != 0, "unknown key accepted (exit 0)")
    check("no_such_setting" in res.text, "message does not name the key: %r" % res.text)
    res = run_bin(None, ["--print-config", "--no-such-flag", "1"])
    check(res.code != 0, "unknown flag accepted")
    check("no-such-flag" in res.text, "message does not name the flag: %r" % res.text)
    res = run_bin(None, ["--print-config"], env={"EI_RELAY_NO_SUCH_KEY": "1"})
    # an unknown environment variable may be ignored or refused, but never crash
    check(res.code in (0, 1, 2), "unknown env: exit %d" % res.code)


def test_bad_values_refused():
    cases = [
        ({"log_level": "loud"}, "log_level", ["debug", "info", "warn", "error"]),
        ({"threshold_criteria": "between"}, "threshold_criteria", ["gt", "ge", "eq", "le", "lt"]),
        ({"http_port": "not-a-port"}, "http_port", []),
        ({"http_port": 70000}, "http_port", []),
        ({"iotcore_qos": 2}, "iotcore_qos", []),
        ({"publish_inference_base64_image": "maybe"}, "publish_inference_base64_image", []),
        ({"tokens": [{"token": "abcdefghijklmnop", "role": "superuser"}]}, "role",
         ["read", "ingest", "admin"]),
        ({"tokens": "abc"}, "tokens", []),
    ]
    for over, key, accepted in cases:
        res = run_bin(base_cfg(**over), ["--print-config"])
        check(res.code != 0, "bad value %r accepted" % over)
        check(key in res.text, "message for %r does not name %s: %r" % (over, key, res.text))
        for a in accepted:
            check(a in res.text, "message for %r does not list %r: %r" % (over, key, res.text))
    res = run_bin(None, ["--print-config"], env={"EI_RELAY_HTTP_PORT": "eighty"})
    check(res.code != 0 and "http_port" in res.text.lower().replace("-", "_"),
          "bad env value: %r" % res.text)
    res = run_bin('{"http_port": 1,', ["--print-config"])
    check(res.code != 0, "malformed config file accepted")
    res = run_bin(None, ["--config", "/nonexistent/ei-relay.json", "--print-config"])
    check(res.code != 0 and "/nonexistent/ei-relay.json" in res.text,
          "missing config file: %r" % res.text)


SEED = {
    # acted on, given as strings as the Greengrass recipes do
    "device_name": "BbDevice",
    "iotcore_backoff": "5",
    "iotcore_qos": "1",
    "publish_inference_base64_image": "yes",
    "enable_threshold_limit": "no",
    "default_threshold": "50.0",
    "threshold_criteria": "ge",
    "metrics_sleeptime_ms": "30000",
    "s3_bucket": "__none__",
    # accepted but not acted on
    "enable_cache_to_file": "false",
    "cache_file_directory": "__none__",
    "ei_bindir": "/usr/local/bin",
    "node_version": "18.20.1",
    "gst_args": "__none__",
    "eiparams": "--greengrass",
    "ei_sm_secret_name": "my-secret",
    "launch": "container",
    "lock_filename": "/tmp/ei-lock",
}
IGNORED_SET = ["enable_cache_to_file", "ei_bindir", "node_version", "eiparams",
               "ei_sm_secret_name", "launch", "lock_filename"]


def test_seed_keys_as_strings():
    doc = printed(run_bin(base_cfg(**SEED), ["--print-config"]))
    eq(doc["iotcore_backoff"], 5, "iotcore_backoff from string")
    eq(doc["iotcore_qos"], 1, "iotcore_qos")
    eq(doc["publish_inference_base64_image"], True, "'yes' is true")
    eq(doc["enable_threshold_limit"], False, "'no' is false")
    check(abs(doc["default_threshold"] - 0.5) < 1e-9, "50.0 -> 0.5: %r" % doc["default_threshold"])
    eq(doc["threshold_criteria"], "ge", "criteria")
    eq(doc["metrics_sleeptime_ms"], 30000, "metrics_sleeptime_ms")
    check(doc.get("s3_bucket") in (None, ""), "__none__ is unset: %r" % doc.get("s3_bucket"))
    eq(doc["device_name"], "BbDevice", "device_name")
    # numbers work too
    doc = printed(run_bin(base_cfg(iotcore_backoff=3, default_threshold=0.7),
                          ["--print-config"]))
    eq(doc["iotcore_backoff"], 3, "iotcore_backoff as a number")
    check(abs(doc["default_threshold"] - 0.7) < 1e-9, "0.7 stays 0.7")


def test_seed_keys_running_and_ignored_reported_once():
    with Relay(dict(SEED)) as r:
        h = r.health()
        check(h["device"].startswith("BbDevice"), "device name %r" % h["device"])
        v = r.ingest({"result": {"classification": {"seed": 0.5}}}).json()
        eq(v["device"], h["device"], "inference device")
        log = r.log()
        lines = [ln for ln in log.splitlines() if "ei_bindir" in ln]
        eq(len(lines), 1, "ignored keys reported once (lines naming ei_bindir: %r)" % lines)
        for k in IGNORED_SET:
            check(k in lines[0], "ignored key %s not in the report %r" % (k, lines[0]))
        for k in ("iotcore_backoff", "device_name", "publish_inference_base64_image"):
            check(k not in lines[0], "acted-on key %s reported as ignored: %r" % (k, lines[0]))
        for k in ("gst_args", "cache_file_directory"):
            check(k not in lines[0], "__none__ key %s reported as set: %r" % (k, lines[0]))


def test_root_refused_unless_allowed():
    """As root the service refuses to start (exit 2, nothing created) unless allow_root is set
    (setting, flag or environment); --print-config and the tools are not the service."""
    if os.geteuid() != 0:
        print("SKIP test_root_refused_unless_allowed: not root")
        return
    db = os.path.join(tempfile.mkdtemp(prefix="ei-bb-root-"), "db", "ei-relay.db")
    try:
        cfg = {"db_path": db, "http_port": 0, "ws_port": 0}
        res = run_bin(cfg, env={"EI_RELAY_ALLOW_ROOT": "false"})
        eq(res.code, 2, "exit code as root: " + res.text)
        check("refusing to run as root" in res.text and "--allow-root" in res.text,
              "message: %r" % res.text)
        check(not os.path.exists(os.path.dirname(db)), "nothing created")
        eq(run_bin(cfg, ["--print-config"], env={"EI_RELAY_ALLOW_ROOT": "false"}).code, 0,
           "--print-config as root")
        # allowed by the flag: start-up goes on (and stops at a source setting start-up checks
        # after the root check, so the test needs no running service)
        bad = dict(cfg, sources=json.dumps([{"name": "x", "kind": "eim"}]))
        res = run_bin(bad, ["--allow-root"], env={"EI_RELAY_ALLOW_ROOT": "false"})
        check("refusing to run as root" not in res.text, "--allow-root: %r" % res.text)
        check('sources "x".model_file' in res.text, "past the check: %r" % res.text)
    finally:
        shutil.rmtree(os.path.dirname(os.path.dirname(db)), ignore_errors=True)


def test_help_and_version():
    res = run_bin(None, ["--help"])
    eq(res.code, 0, "--help exit code")
    for name in ("--http-port", "EI_RELAY_HTTP_PORT", "--config", "--db-path", "--print-config"):
        check(name in res.text, "--help lacks %s" % name)
    res = run_bin(None, ["--version"])
    eq(res.code, 0, "--version exit code")
    check("0.1.0" in res.text, "--version: %r" % res.text)


# The seed recipes' DefaultConfiguration.Parameters, as {configuration:/Parameters} gives it to a
# component: JSON text with numbers as numbers and as strings.
RECIPE_PARAMETERS = {
    "node_version": "20.16.0", "vips_version": "8.12.1", "device_name": "MyEdgeImpulseDevice",
    "launch": "runner", "sleep_time_sec": 10, "lock_filename": "/tmp/ei_lockfile_runner",
    "gst_args": "__none__", "eiparams": "--greengrass", "iotcore_backoff": "5",
    "iotcore_qos": "1", "ei_bindir": "/usr/local/bin", "ei_sm_secret_id": "EI_API_KEY",
    "ei_sm_secret_name": "ei_api_key", "ei_poll_sleeptime_ms": 2500,
    "ei_local_model_file": "__none__", "ei_shutdown_behavior": "__none__",
    "ei_ggc_user_groups": "video audio input users system", "install_kvssink": "no",
    "publish_inference_base64_image": "no", "enable_cache_to_file": "no",
    "cache_file_directory": "__none__", "enable_threshold_limit": "no",
    "metrics_sleeptime_ms": 30000, "default_threshold": 50.0, "threshold_criteria": "ge",
    "enable_cache_to_s3": "no", "s3_bucket": "__none__"}


def test_parameters_object_in_the_file():
    cfg = base_cfg(thumbnail_px=64,
                   Parameters=dict(RECIPE_PARAMETERS, thumbnail_px=96, iotcore_qos=0))
    doc = printed(run_bin(cfg, ["--print-config"]))
    eq(doc["device_name"], "MyEdgeImpulseDevice", "device_name under Parameters")
    eq(doc["iotcore_backoff"], 5, "\"5\" under Parameters")
    eq(doc["iotcore_qos"], 0, "a number under Parameters")
    check(abs(doc["default_threshold"] - 0.5) < 1e-9, "50.0 -> 0.5: %r" % doc["default_threshold"])
    eq(doc["metrics_sleeptime_ms"], 30000, "metrics_sleeptime_ms")
    eq(doc["thumbnail_px"], 64, "the top level wins over Parameters")
    check("Parameters" not in doc, "Parameters is no setting of its own")
    res = run_bin(base_cfg(Parameters={"iotcore_qos": "2"}), ["--print-config"])
    eq(res.code, 2, "bad value under Parameters: exit code (%s)" % res.text)
    check("iotcore_qos" in res.text and "under Parameters" in res.text, res.text)


def test_parameters_from_the_environment():
    env = {"EI_RELAY_PARAMETERS": json.dumps(dict(RECIPE_PARAMETERS, http_port="2222",
                                                  thumbnail_px=96)),
           "EI_RELAY_THUMBNAIL_PX": "128"}
    doc = printed(run_bin(base_cfg(http_port=1111, device_name="from-file"),
                          ["--print-config"], env=env))
    eq(doc["http_port"], 2222, "EI_RELAY_PARAMETERS over the file")
    eq(doc["device_name"], "MyEdgeImpulseDevice", "EI_RELAY_PARAMETERS over the file")
    eq(doc["thumbnail_px"], 128, "EI_RELAY_<KEY> over EI_RELAY_PARAMETERS")
    doc = printed(run_bin(base_cfg(http_port=1111), ["--print-config"],
                          env={"EI_RELAY_PARAMETERS": "__none__"}))
    eq(doc["http_port"], 1111, "EI_RELAY_PARAMETERS=__none__ sets nothing")
    res = run_bin(base_cfg(), ["--print-config"], env={"EI_RELAY_PARAMETERS": "{\"nope\": 1}"})
    eq(res.code, 2, "unknown key in EI_RELAY_PARAMETERS: exit code")
    check("nope" in res.text and "EI_RELAY_PARAMETERS" in res.text, res.text)


def gg_doc(endpoint="example-ats.iot.eu-west-1.amazonaws.com", **extra):
    src = "/greengrass/v2/config/effectiveConfig.yaml"
    doc = {"mqtt_endpoint": {"value": endpoint, "from": src + ": services.aws.greengrass."
                             "Nucleus.configuration.iotDataEndpoint"},
           "mqtt_cert": {"value": "/w/greengrass.crt", "from": src + ": system.certificateFilePath"},
           "mqtt_key": {"value": "/w/greengrass.key", "from": src + ": system.privateKeyPath"},
           "mqtt_client_id": {"value": "Thing-ei-relay", "from": src + ": system.thingName"}}
    doc.update(extra)
    return doc


def test_greengrass_file_fills_what_is_not_explicit():
    d = tempfile.mkdtemp(prefix="ei-bb-gg-")
    try:
        path = os.path.join(d, "greengrass.json")
        with open(path, "w") as f:
            json.dump(gg_doc(), f)
        cfg = base_cfg(greengrass_file=path, mqtt_cert="/explicit/cert.pem")
        doc = printed(run_bin(cfg, ["--print-config"],
                              env={"EI_RELAY_MQTT_KEY": "__none__",
                                   "EI_RELAY_MQTT_CLIENT_ID": "flag-loses"}))
        eq(doc["mqtt_endpoint"], "example-ats.iot.eu-west-1.amazonaws.com", "endpoint")
        eq(doc["mqtt_cert"], "/explicit/cert.pem", "the file's setting wins")
        eq(doc["mqtt_key"], "/w/greengrass.key", "__none__ is not a setting")
        eq(doc["mqtt_client_id"], "flag-loses", "the environment's setting wins")
        with open(path, "w") as f:
            f.write('{"mqtt_endpoint": "not an object"}')
        res = run_bin(cfg, ["--print-config"])
        eq(res.code, 2, "broken greengrass_file: exit code")
        check(len(res.err.strip().splitlines()) == 1, "one line: %r" % res.err)
        check("greengrass_file" in res.err and "mqtt_endpoint" in res.err, res.err)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_greengrass_file_logged_and_missing_not_fatal():
    d = tempfile.mkdtemp(prefix="ei-bb-gg-")
    try:
        path = os.path.join(d, "greengrass.json")
        with Relay({"greengrass_file": path}) as r:  # not there yet
            eq(r.get_json("/api/v1/forwarder")["state"], "disabled", "forwarding off")
            lines = [ln for ln in r.log().splitlines() if "greengrass_file" in ln]
            eq(len(lines), 1, "one line says why: %r" % lines)
            check("does not exist" in lines[0] and "forwarding is off" in lines[0], lines[0])
            # written by the install step meanwhile: the next start reads it
            with open(path, "w") as f:
                json.dump(gg_doc(endpoint="127.0.0.1"), f)
            r.cfg["mqtt_port"] = free_port()  # nothing listens: the forwarder keeps trying
            r.restart()
            log = r.log()
            for key, origin in (("mqtt_endpoint", "iotDataEndpoint"),
                                ("mqtt_cert", "system.certificateFilePath"),
                                ("mqtt_key", "system.privateKeyPath"),
                                ("mqtt_client_id", "system.thingName")):
                found = [ln for ln in log.splitlines() if ln.split(": ", 1)[-1].startswith(key)]
                eq(len(found), 1, "one line for %s: %r" % (key, found))
                check(origin in found[0] and path in found[0], found[0])
            check(r.get_json("/api/v1/forwarder")["state"] != "disabled", "forwarding on")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_configuration_errors_exit_2_in_one_line():
    d = tempfile.mkdtemp(prefix="ei-bb-exit-")
    try:
        cases = [
            # found by the loader
            (base_cfg(http_port="x"), "http_port"),
            (base_cfg(sources=[{"name": "a", "kind": "nope"}]), "sources"),
            # found at start, by the module that reads the setting
            (base_cfg(tokens=None, token_file=os.path.join(d, "missing")), "token_file"),
            (base_cfg(bind="not-an-address"), "bind"),
            (base_cfg(device_name="a/b", device_mac_suffix=False,
                      mqtt_endpoint="localhost"), "device_name"),
        ]
        for cfg, key in cases:
            cfg["db_path"] = os.path.join(d, "db", "x.db")
            if cfg.get("tokens", 1) is None:
                del cfg["tokens"]
            res = run_bin(cfg)
            eq(res.code, 2, "exit code for a bad %s (%s)" % (key, res.text[-600:]))
            bad = [ln for ln in res.text.splitlines() if "error" in ln or ln.startswith("ei-relay:")]
            eq(len(bad), 1, "one error line for %s: %r" % (key, res.text[-600:]))
            check(key in bad[0], "the line names %s: %r" % (key, bad[0]))
        # not a configuration error: the port is taken
        with Relay() as r:
            res = run_bin(base_cfg(http_port=r.http_port, db_path=os.path.join(d, "db2", "x.db")))
            eq(res.code, 1, "port in use: exit code (%s)" % res.text[-600:])
    finally:
        shutil.rmtree(d, ignore_errors=True)


TESTS = [test_root_refused_unless_allowed, test_print_config_masks_secrets, test_precedence_file_env_flag,
         test_unknown_key_refused, test_bad_values_refused, test_seed_keys_as_strings,
         test_seed_keys_running_and_ignored_reported_once, test_help_and_version,
         test_parameters_object_in_the_file, test_parameters_from_the_environment,
         test_greengrass_file_fills_what_is_not_explicit,
         test_greengrass_file_logged_and_missing_not_fatal,
         test_configuration_errors_exit_2_in_one_line]

if __name__ == "__main__":
    run_tests(TESTS)
