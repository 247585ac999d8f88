#!/usr/bin/env python3
# check_paths.py - fails when a file of the repository refers to a path outside it: the sibling
# folder the fixtures once lived in, or an absolute path of the machine a file was written on
# (this checkout's own path or its parent, computed here, the running user's home, and the
# roots such paths start with). A clone must build and test with nothing beside it, and no file
# may name the machine it came from.
#
# Files: `git ls-files` when the root is a git checkout, else every file below the root except
# build trees (a directory holding CMakeCache.txt), .git, node_modules, __pycache__ and var/
# (the runtime data directory). Each hit is printed as path:line: rule: excerpt.
#
# Usage: check_paths.py [ROOT]   (default: the repository holding this script)
# Exit status: 0 clean, 1 a file refers outside the repository, 2 the files could not be listed.
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checklib  # noqa: E402

# What a file may not name. Each pattern is written so that this file does not match itself.
STATIC_RULES = [
    # the fixtures' old home beside the checkout, however it is reached
    (re.compile(r"(?:\.\./)+shared(?![\w-])"), "the sibling folder shared, by a relative path"),
    (re.compile(r"""['"]\.\.['"]\s*,\s*['"]shared['"]"""), "the sibling folder shared, joined from parts"),
    (re.compile(r"(?<![\w-])shared[/]fixtures"), "the old shared fixtures"),
    # roots under which only a particular machine's files live (a workspace, a user's home)
    (re.compile(r"(?<![\w.~-])/(?:work|root|mnt|media)/"), "absolute path of a machine"),
    (re.compile(r"(?<![\w.~-])/(?:home|Users)/[^/\s\"'`]+/"), "absolute path of a user's home"),
]

# Allow rule for the runtime rules below: the checkout's parent (or the user's home) is not
# flagged when it is one of these system directories, because the product itself names paths
# under them (serial devices under /dev, /tmp scratch files, /var/lib data, /srv and /opt
# installs in the docs, /usr/bin programs, /etc configuration, /proc and /sys on Linux). A
# checkout directly below one of them is still caught by its own full path.
SYSTEM_DIRS = {"/", "/dev", "/tmp", "/var", "/var/tmp", "/var/lib", "/srv", "/opt", "/usr",
               "/usr/local", "/usr/src", "/usr/local/src", "/etc", "/proc", "/sys", "/run"}

def runtime_rules(root):
    """Rules only this machine knows: the checkout's path, its parent and the user's home."""
    rules = []
    paths = [(root, "this checkout's absolute path")]
    parent = os.path.dirname(root)
    if parent not in SYSTEM_DIRS:
        paths.append((parent, "the checkout's parent directory"))
    home = os.path.realpath(os.path.expanduser("~"))
    if home not in SYSTEM_DIRS and home != root and not root.startswith(home + os.sep):
        paths.append((home, "the user's home directory"))
    for p, why in paths:
        # the path itself, as a whole path component (not a prefix of a longer name)
        # (nor the tail of a longer path: a parent /w names no path ending in /w)
        rules.append((re.compile(r"(?<![\w./-])" + re.escape(p) + r"(?![\w.-])"), why))
    return rules


def scan(root):
    """Every (relative path, line number, rule, excerpt) that refers outside root."""
    root = os.path.realpath(root)
    rules = STATIC_RULES + runtime_rules(root)
    hits = []
    for rel in checklib.list_files(root):
        path = os.path.join(root, rel)
        if not os.path.isfile(path) or os.path.islink(path):
            continue
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        for n, line in enumerate(text.split("\n"), 1):
            found = [(rx.search(line), why) for rx, why in rules]
            found = [(m, why) for m, why in found if m]
            if found:  # one hit per line, naming every rule it breaks
                m = found[0][0]
                excerpt = line[max(0, m.start() - 30):m.end() + 30].strip()
                hits.append((rel, n, ", ".join(dict.fromkeys(w for _, w in found)), excerpt))
    return hits


def main(argv):
    return checklib.check_main(
        argv, "check_paths", scan,
        lambda hit: "%s:%d: refers outside the repository (%s): %s" % hit,
        errors=(OSError, subprocess.CalledProcessError))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
