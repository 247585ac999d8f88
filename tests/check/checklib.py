# checklib.py - what the repository checks (check_*.py) and their self-tests (test_check_*.py)
# share: the command-line driver of a check, and the expectations and scratch files of a
# self-test. Python 3 standard library only.
import os
import subprocess
import sys

SKIP_DIRS = {".git", "node_modules", "__pycache__"}


def check_main(argv, name, scan, describe, errors=(OSError,)):
    """Runs scan(root) on argv[1] (default: the repository holding tests/check) and prints each
    hit, formatted by describe(hit), then a count. Exit status: 0 clean, 1 hits, 2 the files
    could not be read."""
    root = argv[1] if len(argv) > 1 else \
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    root = os.path.realpath(root)
    try:
        hits = scan(root)
    except errors as e:
        print("%s: cannot read the files of %s: %s" % (name, root, e))
        return 2
    for hit in hits:
        print(describe(hit))
    print("%s: %d finding(s) in %s" % (name, len(hits), root))
    return 1 if hits else 0


class SelfTest:
    """The expectations of one self-test: each prints ok/FAIL; finish() gives the exit code."""

    def __init__(self):
        self.failures = []

    def expect(self, cond, what):
        print("%s %s" % ("ok  " if cond else "FAIL", what))
        if not cond:
            self.failures.append(what)

    def finish(self):
        print("%d failed" % len(self.failures))
        return 1 if self.failures else 0


def write(root, rel, text):
    """A scratch file root/rel with text (its directories made)."""
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def break_file(T, path, old, new, what):
    """Replaces the first old in the scratch file path by new; T (a SelfTest) requires old to be
    there, so a break that no longer applies fails the self-test instead of passing silently."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    T.expect(old in text, "%s: the text to break is in %s" % (what, os.path.basename(path)))
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace(old, new, 1))


def run_check(script, root):
    """Runs a check script on root as CTest does: (exit status, output)."""
    p = subprocess.run([sys.executable, script, root], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout


def list_files(root):
    """The files of root, relative: `git ls-files` in a git checkout, else every file below root
    except build trees (a folder holding CMakeCache.txt), .git, node_modules, __pycache__ and
    var/ (the runtime data folder)."""
    if os.path.isdir(os.path.join(root, ".git")) or os.path.isfile(os.path.join(root, ".git")):
        out = subprocess.run(["git", "-C", root, "ls-files", "-z"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, check=True).stdout
        return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]
    files = []
    for d, dirs, names in os.walk(root):
        if "CMakeCache.txt" in names and d != root:
            dirs[:] = []  # a build tree: generated files full of absolute paths
            continue
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS and
                         not (d == root and x == "var"))
        files += [os.path.relpath(os.path.join(d, n), root) for n in sorted(names)]
    return files
