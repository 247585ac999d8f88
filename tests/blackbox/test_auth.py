# test_auth.py - black-box: bearer tokens and roles on the LAN API, and the admin token that
# is generated (mode 0600, kept out of the log, stable across restarts, printed by
# `ei-relay token`, shown once on the terminal of a relay started on one) when none is
# configured.
import os
import pty
import threading
import re
import stat
import subprocess

from harness import (ADMIN_TOKEN, INGEST_TOKEN, READ_TOKEN, SANITIZER_MARKERS, Relay,
                     TestFailure, check, eq, error_of,
                     relay_bin, run_tests, wait_for)

R = None
DOC = {"result": {"classification": {"auth": 0.5}}}


def expect_401(resp, what):
    error_of(resp, 401, "unauthorized")
    www = resp.headers.get("www-authenticate", "")
    check(www.lower().startswith("bearer"), "%s: WWW-Authenticate %r" % (what, www))


def stored_id():
    return R.ingest(DOC, token=ADMIN_TOKEN).json()["id"]


def test_no_token_401():
    ident = stored_id()
    for method, path in (("GET", "/api/v1/inferences"), ("GET", "/api/v1/inferences/" + ident),
                         ("GET", "/api/v1/inferences/%s/image" % ident),
                         ("GET", "/api/v1/stats"), ("GET", "/metrics"),
                         ("DELETE", "/api/v1/inferences/" + ident)):
        expect_401(R.request(method, path), "%s %s" % (method, path))
    expect_401(R.json_request("POST", "/api/v1/inferences", DOC, token=None), "POST")
    # nothing was deleted
    eq(R.get_json("/api/v1/inferences/" + ident)["id"], ident, "still there")


def test_bad_tokens_401():
    before = len(R.list_all())
    bad_headers = ["Bearer nope", "Bearer " + READ_TOKEN[:-1], "Bearer " + READ_TOKEN + "x",
                   "Bearer " + ADMIN_TOKEN.upper(), "Bearer", "Bearer ", "Basic YWRtaW46YWRtaW4=",
                   ADMIN_TOKEN, "Token " + ADMIN_TOKEN]
    for h in bad_headers:
        r = R.request("GET", "/api/v1/inferences", headers={"Authorization": h})
        expect_401(r, "GET with %r" % h)
        r = R.request("POST", "/api/v1/inferences", b'{"result":{"classification":{"x":1}}}',
                      headers={"Authorization": h, "Content-Type": "application/json"})
        expect_401(r, "POST with %r" % h)
    eq(len(R.list_all()), before, "no inference stored with a bad token")


def test_read_role():
    ident = stored_id()
    eq(R.get("/api/v1/inferences", token=READ_TOKEN).status, 200, "read may list")
    eq(R.get("/api/v1/inferences/" + ident, token=READ_TOKEN).status, 200, "read may get")
    eq(R.get("/api/v1/stats", token=READ_TOKEN).status, 200, "read may get stats")
    eq(R.get("/metrics", token=READ_TOKEN).status, 200, "read may get metrics")
    error_of(R.json_request("POST", "/api/v1/inferences", DOC, token=READ_TOKEN), 403,
             "forbidden")
    error_of(R.request("DELETE", "/api/v1/inferences/" + ident, token=READ_TOKEN), 403,
             "forbidden")
    eq(R.get("/api/v1/inferences/" + ident).status, 200, "read could not delete")


def test_ingest_role():
    r = R.json_request("POST", "/api/v1/inferences", DOC, token=INGEST_TOKEN)
    eq(r.status, 201, "ingest may POST")
    ident = r.json()["id"]
    error_of(R.get("/api/v1/inferences", token=INGEST_TOKEN), 403, "forbidden")
    error_of(R.get("/api/v1/inferences/" + ident, token=INGEST_TOKEN), 403, "forbidden")
    error_of(R.get("/api/v1/stats", token=INGEST_TOKEN), 403, "forbidden")
    error_of(R.get("/metrics", token=INGEST_TOKEN), 403, "forbidden")
    error_of(R.request("DELETE", "/api/v1/inferences/" + ident, token=INGEST_TOKEN), 403,
             "forbidden")
    eq(R.get("/api/v1/inferences/" + ident).status, 200, "ingest could not delete")


def test_admin_role():
    r = R.json_request("POST", "/api/v1/inferences", DOC, token=ADMIN_TOKEN)
    eq(r.status, 201, "admin may POST")
    ident = r.json()["id"]
    eq(R.get("/api/v1/inferences", token=ADMIN_TOKEN).status, 200, "admin may list")
    eq(R.get("/api/v1/inferences/" + ident, token=ADMIN_TOKEN).status, 200, "admin may get")
    eq(R.get("/metrics", token=ADMIN_TOKEN).status, 200, "admin may read metrics")
    eq(R.request("DELETE", "/api/v1/inferences/" + ident, token=ADMIN_TOKEN).status, 204,
       "admin may delete")
    error_of(R.get("/api/v1/inferences/" + ident), 404, "not_found")


def test_health_needs_no_token():
    r = R.get("/api/v1/health", token=None)
    eq(r.status, 200, "health without token")
    eq(r.json()["status"], "ok", "health status")
    # a bad token on health is not an error either
    eq(R.request("GET", "/api/v1/health", headers={"Authorization": "Bearer nope"}).status, 200,
       "health with a bad token")


def test_token_not_in_query():
    # only the Authorization header counts
    r = R.request("GET", "/api/v1/inferences?access_token=" + ADMIN_TOKEN)
    check(r.status in (400, 401), "token in query: %d" % r.status)


# ---- generated token ----

DB_SIDE_FILES = re.compile(r".*\.db(-wal|-shm|-journal|-reserve|\.clean)?$")


def find_token_files(relay):
    d = os.path.dirname(relay.db_path)
    return [os.path.join(d, n) for n in sorted(os.listdir(d))
            if not DB_SIDE_FILES.match(n)]


def token_candidates(text):
    return set(re.findall(r"[A-Za-z0-9_\-.~+/=]{16,}", text))


def admin_token_from_file(relay, path):
    with open(path) as f:
        text = f.read()
    for cand in sorted(token_candidates(text)):
        r = relay.json_request("POST", "/api/v1/inferences", DOC, token=cand)
        if r.status == 201 and relay.get("/api/v1/inferences", token=cand).status == 200 and \
                relay.request("DELETE", "/api/v1/inferences/" + r.json()["id"],
                              token=cand).status == 204:
            return cand
    raise TestFailure("no admin token in %s: %r" % (path, text[:200]))


def test_generated_token():
    with Relay({"tokens": None}) as relay:
        files = find_token_files(relay)
        check(len(files) == 1, "expected one token file next to the db, found %r" % files)
        path = files[0]
        mode = stat.S_IMODE(os.stat(path).st_mode)
        eq(oct(mode), oct(0o600), "token file mode")
        token = admin_token_from_file(relay, path)
        # the known tokens of other tests do not work here
        expect_401(relay.get("/api/v1/inferences", token=ADMIN_TOKEN), "unconfigured token")
        expect_401(relay.get("/api/v1/inferences", token=None), "no token")
        log1 = relay.log()
        eq(log1.count(token), 0, "generated token kept out of the log")
        check(path in log1 and "'ei-relay token' prints it" in log1,
              "the log names the token file and the command that prints the token")
        # `ei-relay token` with the service's settings prints exactly that token, alone
        out = subprocess.run([relay_bin(), "token", "--config", relay.config_path],
                             capture_output=True, text=True, timeout=30)
        eq(out.returncode, 0, "ei-relay token exit code (stderr %r)" % out.stderr)
        eq(out.stdout, token + "\n", "ei-relay token output")
        with open(path) as f:
            content = f.read()
        # restart on the same directory: same token, not logged again
        relay.restart()
        eq(find_token_files(relay), files, "token file kept")
        with open(path) as f:
            eq(f.read(), content, "token file unchanged")
        eq(relay.get("/api/v1/inferences", token=token).status, 200, "token works after restart")
        eq(relay.log().count(token), 0, "token not logged after restart either")


class Terminal:
    """A pty: the relay's stderr is its slave; a thread collects what reaches the master."""

    def __init__(self):
        self.master, self.slave = pty.openpty()
        self.out = bytearray()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: every slave descriptor closed
                return
            if not data:
                return
            with self.lock:
                self.out += data

    def text(self):
        with self.lock:
            return self.out.decode("utf-8", "replace")

    def close(self):
        os.close(self.slave)
        self.thread.join(timeout=10)
        os.close(self.master)


def test_generated_token_on_terminal():
    """Started by hand on a terminal: the generated token is shown there, once, apart from
    the log lines (which say where the file is); a restart that finds the file shows nothing."""
    term = Terminal()
    try:
        with Relay({"tokens": None}, stderr=term.slave) as relay:
            path = find_token_files(relay)[0]
            token = admin_token_from_file(relay, path)
            wait_for("the token on the terminal", term.text, timeout=10,
                     until=lambda t: token in t, relay=relay)
            lines = [ln.strip() for ln in term.text().splitlines() if token in ln]
            eq(lines, [token], "the token alone on its line, once")
            check("(kept in %s)" % path in term.text(), "the terminal names the file")
            check("generated an admin token in %s" % path in term.text(), "the log names the file")
            relay.restart()
            relay.stop()
            eq(term.text().count(token), 1, "the token shown again after a restart")
            eq(relay.all_logs().count(token), 0, "the token in the log file")
            for m in SANITIZER_MARKERS:  # stderr was the terminal: reports would be there
                check(m not in term.text(), "sanitizer report on the terminal:\n" + term.text())
    finally:
        term.close()


def test_generated_token_not_made_when_configured():
    with Relay() as relay:
        eq(find_token_files(relay), [], "no token file when tokens are configured")
        check(ADMIN_TOKEN not in relay.log(), "configured token logged")
        check(READ_TOKEN not in relay.log(), "configured token logged")


TESTS = [test_no_token_401, test_bad_tokens_401, test_read_role, test_ingest_role,
         test_admin_role, test_health_needs_no_token, test_token_not_in_query,
         test_generated_token, test_generated_token_on_terminal,
         test_generated_token_not_made_when_configured]

if __name__ == "__main__":
    run_tests(TESTS, shared_relay=Relay, bind=lambda r: globals().__setitem__("R", r))
