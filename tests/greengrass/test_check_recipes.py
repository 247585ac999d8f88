#!/usr/bin/env python3
# test_check_recipes.py - the recipe check (check_recipes.py) on broken copies of recipes/: each
# row of BREAKS changes one recipe the way a rule forbids, and that rule must report it (and the
# unchanged copy must pass). Every rule of RULES and COLLECTION_RULES is seen to fail at least
# once. Usage: test_check_recipes.py [--ei-relay BIN] (without it the settings rule is not run).
import argparse
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "check"))
import check_recipes as C  # noqa: E402
import checklib  # noqa: E402

RECIPES = os.path.realpath(os.path.join(HERE, "..", "..", "recipes"))
RELAY = "EdgeImpulseInferenceRelay-0.1.0.yaml"
SERIAL = "EdgeImpulseSerialRunnerServiceComponent-0.1.0.yaml"
RUNNER = "EdgeImpulseLinuxRunnerServiceComponent-0.1.0.yaml"
LINUX = "EdgeImpulseLinuxServiceComponent-0.1.0.yaml"

# (rule that must fail, what the break is, file, text to replace, replacement). The text must be
# in the recipe: a break that no longer applies fails the self-test instead of passing silently.
BREAKS = [
    ("name", "version in the file name not the recipe's", RELAY, 'ComponentVersion: "0.1.0"',
     'ComponentVersion: "0.1.1"'),
    ("size", "over 16 KiB", RELAY, "---\n", "---\n" + ("# padding\n" * 1700)),
    ("format", "another RecipeFormatVersion", RELAY, '"2020-01-25"', '"2021-01-25"'),
    ("format", "a Docker component", RUNNER, "ComponentType: aws.greengrass.generic",
     "ComponentType: aws.greengrass.docker"),
    ("yaml", "a duplicate key", RELAY, "ComponentPublisher: ei-relay",
     "ComponentPublisher: ei-relay\nComponentPublisher: other"),
    ("yaml", "an anchor and alias", RUNNER, "      eiparams: __none__",
     "      eiparams: &p __none__\n      launch2: *p"),
    ("platform", "a manifest without runtime", RELAY, '      architecture: arm\n      runtime: "*"',
     "      architecture: arm"),
    ("platform", "a regex architecture", RELAY, "architecture: aarch64",
     "architecture: /aarch64|arm64/"),
    ("lifecycle", "Install in capitals", RELAY, "    install:", "    Install:"),
    ("lifecycle", "a shutdown step", RUNNER, "    run:\n      Script:",
     "    shutdown:\n      Script: echo bye\n    run:\n      Script:"),
    ("lifecycle", "no run", LINUX, "      run:\n", "      runx:\n"),
    ("step", "Skipif", RUNNER, "      RequiresPrivilege: true",
     "      RequiresPrivilege: true\n      Skipif: onpath ei-relay"),
    ("step", "a Timeout in words", RELAY, "Timeout: 900", "Timeout: soon"),
    ("variables", "${VAR} in a script", RELAY, 'work=$(cd "{work:path}" && pwd)\n        for',
     'work=$(cd "{work:path}" && pwd)\n        echo "${HOME}"\n        for'),
    ("variables", "a configuration key with no default", RUNNER,
     "{configuration:/gst_args}", "{configuration:/gst_arguments}"),
    ("variables", "a cross-component variable", RUNNER, '"{configuration:/gst_args}"',
     '"{EdgeImpulseInferenceRelay:configuration:/http_port}"'),
    ("variables", "awk '{print}'", LINUX, "          set --\n",
     "          set --\n          ip route | awk '{print $5}'\n"),
    ("config", "a key nothing reads", RELAY, "    http_port: __none__",
     "    http_port: __none__\n    ui_theme: dark"),
    ("artifacts", "no Unarchive", RELAY, "        Unarchive: NONE\n", ""),
    ("artifacts", "no Permission", RELAY, "        Permission:\n          Read: OWNER\n"
     "          Execute: NONE\n", ""),
    ("artifacts", "an https artifact", SERIAL, "s3://YOUR-BUCKET/artifacts/"
     "EdgeImpulseSerialRunnerServiceComponent/0.1.0/ei-relay_0.1.0_amd64.deb",
     "https://example.com/ei-relay_0.1.0_amd64.deb"),
    ("package", "the arm package for armhf missing", RELAY, "ei-relay_0.1.0_armhf.deb",
     "ei-relay_0.1.0_armel.deb"),
    ("package", "install without privilege", SERIAL, "      RequiresPrivilege: true\n", ""),
    ("relay-settings", "a setting ei-relay lacks", RELAY,
     '      EI_RELAY_HTTP_PORT: "{configuration:/http_port}"',
     '      EI_RELAY_HTTP_PORTS: "{configuration:/http_port}"'),
    ("relay-settings", "a top-level default that hides Parameters", RELAY,
     "    log_level: __none__", "    log_level: debug"),
    ("relay-settings", "an unknown key in Parameters", RELAY, "      s3_bucket: __none__\n",
     "      s3_bucket: __none__\n      serial_port: /dev/ttyACM0\n"),
    ("shell", "a script sh cannot parse", LINUX, "          done </proc/net/route",
     "          </proc/net/route"),
    ("shell", "a shellcheck warning (where shellcheck is installed)", LINUX,
     "          set --\n", "          set --\n          unused_name=1\n"),
    ("shared", "the serial component's run differs", SERIAL, 'exec ei-relay --db-path',
     'exec ei-relay --log-level debug --db-path'),
    ("shared", "the runner component's install differs", RUNNER, 'add "$deb"\n',
     'add "$deb" || true\n'),
    ("dependencies", "a dependency on the relay pinning another version", RUNNER,
     "ComponentPublisher: ei-relay\n", "ComponentPublisher: ei-relay\nComponentDependencies:\n"
     "  EdgeImpulseInferenceRelay:\n    VersionRequirement: \"0.0.9\"\n"
     "    DependencyType: SOFT\n"),
    ("dependencies", "a DependencyType of neither kind", LINUX, "DependencyType: HARD",
     "DependencyType: REQUIRED"),
]


def copy_recipes(dst):
    os.makedirs(dst)
    for f in os.listdir(RECIPES):
        if f.endswith(".yaml"):
            shutil.copy(os.path.join(RECIPES, f), dst)


def run(recipe_dir, opts):
    return [(f, rule) for f, rule, _ in C.scan(recipe_dir, opts)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ei-relay")
    args = ap.parse_args()
    opts = argparse.Namespace(project_version="0.1.0", settings=None)
    if args.ei_relay:
        opts.settings = C.relay_settings(args.ei_relay)
    T = checklib.SelfTest()
    base = tempfile.mkdtemp(prefix="ei-check-recipes-")
    try:
        good = os.path.join(base, "good")
        copy_recipes(good)
        found = run(good, opts)
        T.expect(found == [], "the recipes as they are pass (%s)" % found)
        seen = set()
        for i, (rule, what, f, old, new) in enumerate(BREAKS):
            if rule == "relay-settings" and not opts.settings:
                print("skip %s (no --ei-relay)" % what)
                continue
            if "shellcheck" in what and not shutil.which("shellcheck"):
                print("skip %s" % what)
                continue
            d = os.path.join(base, "b%d" % i)
            copy_recipes(d)
            checklib.break_file(T, os.path.join(d, f), old, new, what)
            found = run(d, opts)
            T.expect((f, rule) in found, "%s: rule %s fails on %s (found %s)" % (
                what, rule, f, found))
            seen.add(rule)
        every = {r for r, _ in C.RULES + C.COLLECTION_RULES}
        if not opts.settings:
            every.discard("relay-settings")
        T.expect(seen == every, "every rule is seen to fail (missing: %s)" % sorted(every - seen))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
