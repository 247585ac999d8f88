#!/usr/bin/env python3
# test_check_paths.py - the repository check (check_paths.py) run on scratch trees: it must fail
# on every kind of reference outside the repository, naming file and line, and pass the
# absolute paths the product itself uses; in a git checkout it reads only tracked files, without
# .git it walks the tree and skips build trees. Python 3 standard library only.
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_paths  # noqa: E402
import checklib  # noqa: E402

T = checklib.SelfTest()
expect = T.expect
write = checklib.write


# The bad references are put together here, so that this file itself names none of them.
UP = "../"
SIBLING = "shared"
BAD_LINES = [
    ("sibling", "FIXTURES=$ROOT/" + UP + SIBLING + "/fixtures/serial"),
    ("sibling, deeper", 'snprintf(path, n, "%s", "' + UP + UP + SIBLING + '/fixtures");'),
    ("sibling, joined", 'os.path.join(root, "' + UP[:2] + '", "' + SIBLING + '", "fixtures")'),
    ("old fixtures", "see " + SIBLING + "/" + "fixtures/README.md"),
    ("workspace", "- measured at `/" + "work/main` at 2a82c92"),
    ("root's home", "python3 /" + "root/.pyenv/shims/python3"),
    ("user's home", "cd /" + "home/alice/src/ei-relay && make"),
    ("macOS home", "open /" + "Users/bob/Desktop/frame.jpg"),
    ("mount", "cp /" + "mnt/usb/fixtures/x.txt ."),
]
GOOD = "\n".join([
    "device: /dev/ttyACM0 and /dev/ttyUSB0",
    "component root /greengrass/v2/packages/artifacts/ei-relay",
    "CHROMIUM=/usr/bin/chromium",
    "scratch dir /tmp/ei-bench, data in /var/lib/ei-relay, config /etc/ei-relay.json",
    "reads /proc/self/status and /sys/class/net/eth0/address",
    "docker run -v /srv/ei-relay:/var/lib/ei-relay ei-relay",
    "GET /api/v1/inferences?limit=2 and topic /edgeimpulse/device/x",
    "relative paths: ../server/core/util.h, tests/fixtures/serial, ./shared-ish/x",
    "a word like unshared/fixtures-free or /homework/ is not a path of a machine",
]) + "\n"


def bad_file():
    return "".join("line %d is fine\n%s\n" % (i, text) for i, (_, text) in enumerate(BAD_LINES))


def hits_by_file(root):
    out = {}
    for rel, n, why, excerpt in check_paths.scan(root):
        out.setdefault(rel, []).append((n, why))
    return out


def check_tree(root, label):
    hits = hits_by_file(root)
    want_lines = [2 * i + 2 for i in range(len(BAD_LINES))]
    got = hits.get(os.path.join("docs", "bad.md"), [])
    expect(sorted(n for n, _ in got) == want_lines,
           "%s: each bad reference flagged at its line %s (got %s)" %
           (label, want_lines, sorted(n for n, _ in got)))
    for (name, _), n in zip(BAD_LINES, want_lines):
        expect(any(line == n for line, _ in got), "%s: %s flagged" % (label, name))
    expect("good.txt" not in hits, "%s: the product's own absolute paths pass (%r)" %
           (label, hits.get("good.txt")))
    own = hits.get(os.path.join("tests", "own.sh"), [])
    expect(sorted(n for n, _ in own) == [1, 2],
           "%s: the checkout's own path and its parent flagged, a longer path not (got %r)" % (label, own))
    return hits


def run_main(root):
    return checklib.run_check(check_paths.__file__, root)


def make_tree(base):
    root = os.path.join(base, "checkout")
    parent = os.path.realpath(base)
    write(root, "docs/bad.md", bad_file())
    write(root, "good.txt", GOOD)
    # line 3: a longer path that merely ends with the parent's name is not the parent
    write(root, "tests/own.sh", "cd %s/tests\nls %s/other-project\nls /opt/x%s/y\n" %
          (os.path.realpath(root), parent, parent))
    return root


def main():
    base = tempfile.mkdtemp(prefix="ei-check-paths-")
    try:
        # 1. no .git: every file is walked, a build tree (CMakeCache.txt) is not
        root = make_tree(os.path.join(base, "walk"))
        write(root, "build/CMakeCache.txt", "CMAKE_HOME_DIRECTORY:INTERNAL=%s\n" % root)
        write(root, "build/tests/CTestTestfile.cmake", "set(X %s/tests)\n" % root)
        hits = check_tree(root, "walk")
        expect(not any(rel.startswith("build") for rel in hits), "walk: the build tree skipped")
        code, out = run_main(root)
        expect(code == 1, "walk: exit status 1 (got %d)" % code)
        expect("docs/bad.md:2: refers outside the repository" in out,
               "walk: output names file:line (%r)" % out[:200])

        # 2. a git checkout: tracked files only
        root = make_tree(os.path.join(base, "git"))
        write(root, "untracked.md", "see /" + "work/elsewhere\n")
        if shutil.which("git"):
            subprocess.run(["git", "init", "-q", root], check=True)
            subprocess.run(["git", "-C", root, "add", "docs", "good.txt", "tests"], check=True)
            hits = check_tree(root, "git")
            expect("untracked.md" not in hits, "git: untracked files are not read")
        else:
            print("skip: no git, the git mode is not checked")

        # 3. a clean tree passes
        clean = os.path.join(base, "clean")
        write(clean, "good.txt", GOOD)
        code, out = run_main(clean)
        expect(code == 0, "clean tree: exit status 0 (got %d: %s)" % (code, out.strip()))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
