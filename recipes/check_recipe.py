#!/usr/bin/env python3
"""check_recipe.py - offline check of the Greengrass recipe and write-config.sh (no AWS needed).

It parses com.edgeimpulse.EiRelay.yaml (PyYAML), checks that every DefaultConfiguration key has
its EIR_<KEY> Setenv entry and is written by write-config.sh, interpolates the Setenv values the
way the nucleus would ({configuration:/key}, {work:path}, {kernel:rootPath}, {iot:thingName}),
runs write-config.sh with them, and checks the JSON it writes. With --ei-relay BINARY it also
has ei-relay load the file (--print-config), so a key or value ei-relay refuses fails here.

Usage: recipes/check_recipe.py [--ei-relay build/ei-relay] [--set key=value ...]
Exit status 0 when everything holds, 1 with a message otherwise.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = os.path.join(HERE, "com.edgeimpulse.EiRelay.yaml")
WRITE_CONFIG = os.path.join(HERE, "write-config.sh")


def fail(msg):
    print(f"check_recipe: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def interpolate(text, config, work, root, thing):
    def repl(m):
        ns, key = m.group(1), m.group(2)
        if ns == "configuration":
            ptr = key.lstrip("/")
            # A key missing from the configuration stays as written, as in the nucleus.
            return str(config[ptr]) if ptr in config else m.group(0)
        return {"work:path": work, "kernel:rootPath": root, "iot:thingName": thing}.get(
            f"{ns}:{key}", m.group(0))

    return re.sub(r"\{(configuration|work|kernel|iot):([^}]*)\}", repl, text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ei-relay", help="ei-relay binary to load the written config with")
    ap.add_argument("--set", action="append", default=[], help="override a configuration key")
    args = ap.parse_args()

    import yaml  # PyYAML (Debian: python3-yaml)

    with open(RECIPE, encoding="utf-8") as f:
        recipe = yaml.safe_load(f)
    if recipe.get("RecipeFormatVersion") != "2020-01-25":
        fail("RecipeFormatVersion must be the string 2020-01-25")
    for field in ("ComponentName", "ComponentVersion", "Manifests"):
        if field not in recipe:
            fail(f"recipe lacks {field}")
    config = dict(recipe["ComponentConfiguration"]["DefaultConfiguration"])
    for item in args.set:
        key, _, value = item.partition("=")
        config[key] = value
    for key, value in config.items():
        if not isinstance(value, str):
            fail(f"DefaultConfiguration {key} is not a string (the seed recipes use strings)")

    manifest = next(m for m in recipe["Manifests"] if m.get("Platform", {}).get("os") == "linux")
    life = manifest["Lifecycle"]
    setenv = life["Setenv"]
    for key in config:
        want = f"{{configuration:/{key}}}"
        if setenv.get("EIR_" + key.upper()) != want:
            fail(f"Setenv EIR_{key.upper()} must be {want!r}")
    with open(WRITE_CONFIG, encoding="utf-8") as f:
        script = f.read()
    listed = re.search(r"keys=\((.*?)\n\)", script, re.S).group(1)
    listed = {w for line in listed.splitlines() for w in line.split("#")[0].split()}
    if listed != set(config):
        fail(f"write-config.sh keys differ from the recipe: only in script {sorted(listed - set(config))}, "
             f"only in recipe {sorted(set(config) - listed)}")
    for step in ("Install", "Run"):
        if "Script" not in life.get(step, {}):
            fail(f"Lifecycle {step} has no Script")
    if "{work:path}/ei-relay.json" not in life["Run"]["Script"]:
        fail("Run does not use {work:path}/ei-relay.json")

    with tempfile.TemporaryDirectory() as tmp:
        work, root, thing = os.path.join(tmp, "work"), "/greengrass/v2", "gateway-7"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for name, value in setenv.items():
            env[name] = interpolate(str(value), config, work, root, thing)
        out = os.path.join(work, "ei-relay.json")
        subprocess.run(["bash", WRITE_CONFIG, out], env=env, check=True, stdout=subprocess.DEVNULL)
        if os.stat(out).st_mode & 0o077:
            fail("the config file is readable by others")
        with open(out, encoding="utf-8") as f:
            written = json.load(f)
        expect = {
            "db_path": os.path.join(work, "ei-relay.db"),
            "mqtt_client_id": f"{thing}-ei-relay",
            "mqtt_cert": f"{root}/thingCert.crt",
            "mqtt_key": f"{root}/privKey.key",
        }
        for key, value in expect.items():
            if config.get(key, "__none__") == "__none__" and written.get(key) != value:
                fail(f"{key} is {written.get(key)!r}, expected {value!r}")
        for key, value in config.items():
            if value != "__none__" and key in written and key not in ("sources", "tokens"):
                if written[key] != value:
                    fail(f"{key}: written {written[key]!r}, configured {value!r}")
        if any(v == "__none__" for v in written.values()):
            fail("an unset (__none__) key was written")
        if args.ei_relay:
            res = subprocess.run([args.ei_relay, "--config", out, "--print-config"],
                                 capture_output=True, text=True)
            if res.returncode != 0:
                fail(f"ei-relay refused the config: {res.stderr.strip()}")
            effective = json.loads(res.stdout)
            if effective["mqtt_client_id"] != written["mqtt_client_id"]:
                fail("ei-relay did not take mqtt_client_id")
    print(f"check_recipe: ok ({len(config)} configuration keys)")


if __name__ == "__main__":
    main()
