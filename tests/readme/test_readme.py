# test_readme.py - the README's Quick start, run literally. A copy of the repository's tracked
# files is made in an empty temp directory (as a fresh clone would be); there the Quick start's
# first command (`scripts/run.sh --demo`) installs what is missing, builds and starts the
# service, and then the README's example commands (the Quick start's and "Sending
# inferences"'s) run in one bash session exactly as written. Each answer must be the JSON the
# README documents: the same keys at every level and the same types (null stands for any
# value, an object with the key "..." for any object). The dashboard address the service logs
# must serve the dashboard. Last, run.sh is started a second time (idempotent: nothing to
# build, same token, same data).
#
# The README names ports 4920/4921, so as root the whole run happens in a new network
# namespace (unshare), where those ports are free whatever runs on this machine. Where no
# namespace can be made it runs here when both ports are free and is skipped (exit 77) otherwise.
#
# It builds the project once more in Release (scripts/run.sh does), so it is registered in the
# normal build only (tests/CMakeLists.txt); the binary is the same in the sanitizer build.
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import urllib.request

from harness import TestFailure, check, eq, make_jpeg, source_dir, wait_for

BUILD_WAIT_S = 900.0  # installing nothing, configuring and building Release from scratch
START_WAIT_S = 60.0  # the second start: nothing to build
MARK = "@@readme-status"


def readme():
    with open(os.path.join(source_dir(), "README.md")) as f:
        return f.read()


def section(text, title):
    """The text of '## title' up to the next '## ' heading."""
    m = re.search(r"^## %s\n(.*?)(?=^## |\Z)" % re.escape(title), text, re.M | re.S)
    check(m is not None, "README has no section %r" % title)
    return m.group(1)


def blocks(text, lang):
    return re.findall(r"^```%s\n(.*?)^```" % lang, text, re.M | re.S)


def commands(block):
    """The commands of a shell block: comment and blank lines dropped, continuation lines
    joined as bash joins them."""
    out, cur = [], ""
    for line in block.splitlines():
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            cur += line[:-1]
            continue
        out.append(cur + line)
        cur = ""
    return out


def shape_errors(doc, got, where="$"):
    """How got differs from the documented value doc: keys at every level, and types."""
    if doc is None or got is None:
        return []
    if isinstance(doc, dict):
        if not isinstance(got, dict):
            return ["%s: expected an object, got %r" % (where, got)]
        if "..." in doc:
            return []
        errs = []
        if set(doc) != set(got):
            errs.append("%s: keys %s, documented %s" % (where, sorted(got), sorted(doc)))
        for k in doc.keys() & got.keys():
            errs += shape_errors(doc[k], got[k], "%s.%s" % (where, k))
        return errs
    if isinstance(doc, list):
        if not isinstance(got, list):
            return ["%s: expected an array, got %r" % (where, got)]
        errs = []
        for i, g in enumerate(got):
            errs += shape_errors(doc[0], g, "%s[%d]" % (where, i)) if doc else []
        return errs
    for kind in (bool, str):
        if isinstance(doc, kind):
            ok = isinstance(got, kind)
            return [] if ok else ["%s: expected %s like %r, got %r" % (where, kind.__name__,
                                                                      doc, got)]
    if isinstance(doc, (int, float)):  # a number, and not a boolean
        ok = isinstance(got, (int, float)) and not isinstance(got, bool)
        return [] if ok else ["%s: expected a number like %r, got %r" % (where, doc, got)]
    return []


def check_shape(doc, got, what):
    errs = shape_errors(doc, got)
    check(not errs, "%s is not the documented JSON:\n  %s" % (what, "\n  ".join(errs)))


def copy_checkout(dst):
    """The tracked files (git ls-files), or the tree without build output when there is no
    git: what a fresh clone holds."""
    src = source_dir()
    try:
        names = subprocess.run(["git", "-C", src, "ls-files", "-z"], check=True,
                               capture_output=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        names = []
        for root, dirs, files in os.walk(src):
            rel = os.path.relpath(root, src)
            dirs[:] = [d for d in dirs if not (rel == "." and (d.startswith("build") or
                                                                d in ("var", ".git"))) and
                       d != "node_modules"]
            names += [os.path.normpath(os.path.join(rel, f)) for f in files]
    for n in filter(None, names):
        if not os.path.lexists(os.path.join(src, n)):
            continue  # deleted in the working tree
        os.makedirs(os.path.dirname(os.path.join(dst, n)) or dst, exist_ok=True)
        shutil.copy2(os.path.join(src, n), os.path.join(dst, n), follow_symlinks=False)


def loopback_up():
    """In a new network namespace lo starts down: SIOCSIFFLAGS IFF_UP, as `ip link set lo up`."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, siocgifflags, req))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))
    finally:
        s.close()


def port_free(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class Service:
    """`scripts/run.sh --demo` as the README starts it, in the copy, logging to a file. It
    exec's ei-relay, so its pid is the service's: SIGTERM stops it as Ctrl-C would."""

    def __init__(self, workdir, command, log_path):
        self.log_path = log_path
        self.log_file = open(log_path, "ab")
        self.proc = subprocess.Popen(["bash", "-c", command], cwd=workdir, stdin=subprocess.DEVNULL,
                                     stdout=self.log_file, stderr=subprocess.STDOUT)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_dashboard(self, timeout, skip=0):
        """The dashboard address of the (skip+1)-th start, from the log line the README shows."""
        def found():
            urls = re.findall(r"relay: dashboard: (http://\S+/) ", self.log())
            return urls[skip] if len(urls) > skip else None
        return wait_for("the service's dashboard line", found, timeout=timeout, relay=self)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        finally:
            self.log_file.close()
        eq(code, 0, "exit code of the service after SIGTERM (log:\n%s)" % self.log()[-3000:])


def get(url, token=None):
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token} if token else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


def run_examples(workdir, cmds):
    """Runs the commands in one bash session, each followed by a marker with its exit status;
    returns [(command, status, output)] and the session's $TOKEN."""
    script = "cd %s\n" % shlex_quote(workdir)
    for c in cmds:
        script += "%s\nprintf '\\n%s %%d\\n' $?\n" % (c, MARK)
    script += "printf '%s TOKEN=%%s\\n' \"$TOKEN\"\n" % MARK
    out = subprocess.run(["bash", "-u", "-c", script], capture_output=True, text=True, timeout=120)
    eq(out.returncode, 0, "the example session (stderr %r)" % out.stderr)
    # parts[0] is the first command's output; every next part starts with the status of the
    # command before it, then the next command's output
    parts = out.stdout.split("\n%s " % MARK)
    statuses, outputs = [], [parts[0]]
    for p in parts[1:]:
        status, _, rest = p.partition("\n")
        statuses.append(status)
        outputs.append(rest)
    token = out.stdout.rsplit("%s TOKEN=" % MARK, 1)[-1].strip()
    return [(c, int(st), o) for c, st, o in zip(cmds, statuses, outputs)], token


def shlex_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def test_quick_start(workdir):
    text = readme()
    qs = section(text, "Quick start")
    sh = blocks(qs, "sh")
    check(len(sh) >= 2, "the Quick start has its two shell blocks")
    start = commands(sh[0])
    eq(len(start), 2, "the Quick start's first block holds exactly two commands")
    check("scripts/run.sh" in start[0] and "scripts/test.sh" in start[1],
          "run.sh first, test.sh second: %r" % start)
    examples = commands(sh[1])
    docs = [json.loads(b) for b in blocks(qs, "json")]
    curls = [c for c in examples if c.startswith("curl")]
    eq(len(docs), len(curls), "a documented answer for each curl of the Quick start")
    check(any(c.startswith("TOKEN=") for c in examples), "the Quick start sets TOKEN")
    sending = commands(blocks(section(text, "Sending inferences"), "sh")[0])
    check(len(sending) >= 3 and all(c.startswith("curl") for c in sending),
          "the Sending inferences block is curl commands: %r" % sending)

    log_path = os.path.join(os.path.dirname(workdir), "run.log")
    svc = Service(workdir, start[0], log_path)
    try:
        url = svc.wait_dashboard(BUILD_WAIT_S)
        m = re.search(r"`http://<gateway>:(\d+)/`", qs)
        check(m is not None, "the Quick start names the dashboard address")
        eq(url.rsplit(":", 1)[1], m.group(1) + "/", "dashboard port in the log and the README")
        status, ctype, body = get(url)
        eq(status, 200, "GET " + url)
        check(ctype.startswith("text/html") and b"<title>ei-relay</title>" in body,
              "the dashboard page at %s (%s)" % (url, ctype))
        token_file = os.path.join(workdir, "var", "ei-relay.token")
        with open(token_file) as f:
            stored = f.read()
        check(not re.search(r"[0-9a-f]{64}", svc.log()), "no token in the service's log")
        eq(os.stat(token_file).st_mode & 0o777, 0o600, "token file mode")
        # The README shows two inferences: wait (on the API) until the demo has stored them.
        wait_for("two demo inferences", lambda: json.loads(
            get("http://localhost:4920/api/v1/health")[2])["db"]["rows"] >= 2, relay=svc)

        with open(os.path.join(workdir, "frame.jpg"), "wb") as f:
            f.write(make_jpeg(64, 48))  # the picture the multipart example sends
        results, token = run_examples(workdir, examples + sending)
        check(re.fullmatch(r"[0-9a-f]{64}", token) is not None, "TOKEN is the token: %r" % token)
        check(token + " admin" in stored, "TOKEN is the admin token of the token file")
        answers = []
        for cmd, status, output in results:
            eq(status, 0, "exit status of: %s (output %r)" % (cmd, output[:300]))
            if not cmd.startswith("curl"):
                eq(output, "", "output of: %s" % cmd)
                continue
            try:
                answers.append(json.loads(output))
            except ValueError:
                raise TestFailure("not JSON from: %s\n%r" % (cmd, output[:500]))
        for doc, got, cmd in zip(docs, answers, curls):
            check_shape(doc, got, "the answer of: %s" % cmd)
        eq(answers[0]["status"], "ok", "health status")
        listed = answers[1]["items"]
        eq(len(listed), 2, "limit=2 gives two inferences")
        check(listed[0]["seq"] > listed[1]["seq"], "newest first")
        # Sending inferences: each answer is the stored inference, shaped as a listed one.
        item_doc = docs[1]["items"][0]
        stored_answers = answers[len(docs):]
        eq(len(stored_answers), len(sending), "an answer for each Sending example")
        for got, cmd in zip(stored_answers, sending):
            check_shape(dict(item_doc, result={"...": "..."}, timing={"...": "..."}), got,
                        "the answer of: %s" % cmd[:80])
        ids = [a["id"] for a in stored_answers]
        eq(len(set(ids)), len(ids), "each example stored its own inference")
        m = re.search(r'"id":"([0-9a-f-]{36})"', " ".join(sending))
        check(m is not None and m.group(1) in ids, "the IoT Core example keeps its id")
        check(any(a["image"] for a in stored_answers), "the multipart example stored its image")
        rows = json.loads(get("http://localhost:4920/api/v1/health")[2])["db"]["rows"]
    finally:
        if svc.proc.poll() is None:
            svc.stop()

    # Idempotent: the same command again builds nothing new, keeps the token and the data.
    svc = Service(workdir, start[0], log_path)
    try:
        svc.wait_dashboard(START_WAIT_S, skip=1)
        with open(os.path.join(workdir, "var", "ei-relay.token")) as f:
            eq(f.read(), stored, "token file after the second start")
        status, _, body = get("http://localhost:4920/api/v1/inferences?limit=1", token)
        eq(status, 200, "the token works after the second start")
        health = json.loads(get("http://localhost:4920/api/v1/health")[2])
        check(health["db"]["rows"] >= rows, "the data is kept: %d < %d" % (health["db"]["rows"],
                                                                          rows))
    finally:
        if svc.proc.poll() is None:
            svc.stop()


def inside(workdir):
    """The whole run, in the namespace (or here): one test, its result as the exit code."""
    if os.environ.get("EI_README_NETNS") == "1":
        loopback_up()
    from harness import run_tests

    def test_readme_quick_start_literally():
        test_quick_start(workdir)

    run_tests([test_readme_quick_start_literally])


def netns_works():
    """True when this process may make a network namespace (root, and not refused by a
    container's seccomp or missing capability)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "--net", "--", "true"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--inside":
        inside(sys.argv[2])
        return
    tmp = tempfile.mkdtemp(prefix="ei-readme-")
    try:
        workdir = os.path.join(tmp, "ei-relay")
        os.makedirs(workdir)
        copy_checkout(workdir)
        argv = [sys.executable, os.path.abspath(__file__), "--inside", workdir]
        if netns_works():
            env = dict(os.environ, EI_README_NETNS="1")
            code = subprocess.run(["unshare", "--net", "--"] + argv, env=env).returncode
        elif port_free(4920) and port_free(4921):
            code = subprocess.run(argv).returncode
        else:
            print("SKIP: ports 4920/4921 are taken and no network namespace can be made here")
            code = 77
        sys.exit(code)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
