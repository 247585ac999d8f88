#!/usr/bin/env python3
"""test_docs.py - the package's generated documentation against the binary under test (label
package): packaging/gen_docs.py turns `ei-relay --help` into the example configuration
(/etc/default/ei-relay) and the man page. Every setting --help lists must be in both, and the
example's values must be the defaults: with every line that has a value uncommented,
--print-config must print exactly what it prints with nothing set. The man page must render
without warnings where man is installed.

Env: EI_RELAY_BIN (the binary), EI_TEST_SOURCE_DIR (the checkout).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("EI_TEST_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "packaging"))
import gen_docs  # noqa: E402


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def print_config(binary, env):
    r = subprocess.run([binary, "--print-config"], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        fail("--print-config with %s: %s" % (sorted(env), r.stderr.strip()))
    return r.stdout


def main():
    binary = os.environ["EI_RELAY_BIN"]
    out = tempfile.mkdtemp(prefix="ei-docs-")
    try:
        help_text = subprocess.run([binary, "--help"], capture_output=True, text=True,
                                   check=True).stdout
        help_file = os.path.join(out, "help.txt")
        with open(help_file, "w") as f:
            f.write(help_text)
        subprocess.run([sys.executable, os.path.join(SRC, "packaging", "gen_docs.py"), help_file,
                        "0.0.0", out], check=True)
        _, _, settings, ignored = gen_docs.parse_help(help_text)
        listed = len(re.findall(r"^  --", help_text, re.M))
        if len(settings) != listed:
            fail("gen_docs parsed %d settings of the %d lines --help lists" % (len(settings),
                                                                              listed))
        with open(os.path.join(out, "ei-relay.default")) as f:
            example = f.read()
        with open(os.path.join(out, "ei-relay.1")) as f:
            man = f.read()
        env = {}
        for s in settings:
            m = re.search(r"^#%s=(.*)$" % s["env"], example, re.M)
            if not m:
                fail("the example configuration lacks %s" % s["env"])
            if m.group(1):
                env[s["env"]] = m.group(1).strip("'")
            if "\\fB%s\\fR" % s["env"] not in man:
                fail("the man page lacks %s" % s["env"])
        for key in ignored:
            if key not in example:
                fail("the example configuration does not name the ignored key %s" % key)
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        plain = print_config(binary, base)
        filled = print_config(binary, dict(base, **env))
        if plain != filled:
            fail("the example's values are not the defaults:\n--- nothing set\n%s\n--- the "
                 "example uncommented\n%s" % (plain, filled))
        if shutil.which("man"):
            r = subprocess.run(["man", "--warnings", "-l", os.path.join(out, "ei-relay.1")],
                               capture_output=True, text=True,
                               env=dict(os.environ, MANPAGER="cat", MANWIDTH="80"))
            if r.returncode != 0 or r.stderr.strip():
                fail("man page warnings:\n" + r.stderr)
        print("%d settings in the example configuration (%d with a value, loaded as the "
              "defaults) and the man page" % (len(settings), len(env)))
        print("PASS")
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
