# test_secrets.py - black-box: secrets and the files that hold them (README "Secrets and
# files"). Tokens shorter than 16 characters are a configuration error (exit 2) naming where they
# came from; the database, its -wal/-shm and the generated token file are 0600 whatever the umask
# and in a directory that already exists; the token file's temporary name, planted beforehand as
# a symlink or a hard link to a victim, is never written through; an ingest-only token reads
# nothing back (an ingest retry answers only the id; the live stream refuses it); no token and
# none of the MQTT key's contents appear in the log or in --print-config; clear_cache purges what
# the live stream holds, so a client replaying history after it gets none of the cleared rows.
import json
import os
import shutil
import stat
import subprocess
import tempfile

from harness import (ADMIN_TOKEN, INGEST_TOKEN, READ_TOKEN, Relay, check, eq, new_id, relay_bin,
                     run_tests)
from harness.live import cls, ids_of, live, read_until_id
from harness.mqtt import (Broker, device_name, make_pki, relay_mqtt_config, require_tools, topic,
                          wait_publish)
from harness.ws_client import WsError

WAIT_S = 15


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("EI_RELAY_")}


def run_bin(args, **kw):
    return subprocess.run([relay_bin()] + args, capture_output=True, text=True, timeout=60,
                          env=clean_env(), **kw)


def test_short_tokens_are_configuration_errors():
    d = tempfile.mkdtemp(prefix="ei-bb-short-")
    try:
        db = os.path.join(d, "db", "x.db")
        # 15 characters in `tokens`: the loader refuses it, for every command
        cfg = os.path.join(d, "short.json")
        with open(cfg, "w") as f:
            json.dump({"db_path": db, "http_port": 0, "ws_port": 0, "bind": "127.0.0.1",
                       "allow_root": os.geteuid() == 0,
                       "tokens": [{"token": ADMIN_TOKEN, "role": "admin"},
                                  {"token": "fifteen-chars-x", "role": "read"}]}, f)
        for args in (["--config", cfg], ["token", "--config", cfg], ["--print-config",
                                                                     "--config", cfg]):
            res = run_bin(args)
            eq(res.returncode, 2, "%r: exit code (%s)" % (args, res.stderr[-400:]))
            check("tokens[1].token" in res.stderr and "16" in res.stderr,
                  "%r: the error names tokens[1] and the minimum: %r" % (args, res.stderr))
            check("fifteen-chars-x" not in res.stdout + res.stderr, "the short token is echoed")
        # the same in a token_file: refused at start, naming the file and the line
        tf = os.path.join(d, "tokens")
        with open(tf, "w") as f:
            f.write("# LAN tokens\n%s admin\nshort-token-14 read\n" % ADMIN_TOKEN)
        os.chmod(tf, 0o600)
        with open(cfg, "w") as f:
            json.dump({"db_path": db, "http_port": 0, "ws_port": 0, "bind": "127.0.0.1",
                       "allow_root": os.geteuid() == 0, "token_file": tf}, f)
        for args in (["--config", cfg], ["token", "--config", cfg]):
            res = run_bin(args)
            eq(res.returncode, 2, "%r: exit code (%s)" % (args, res.stderr[-400:]))
            check(tf in res.stderr and "line 3" in res.stderr,
                  "%r: the error names the file and line: %r" % (args, res.stderr))
            check("short-token-14" not in res.stdout + res.stderr, "the short token is echoed")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def mode_of(path):
    return oct(stat.S_IMODE(os.lstat(path).st_mode))


def test_files_private_whatever_the_umask():
    d = tempfile.mkdtemp(prefix="ei-bb-modes-")
    os.makedirs(os.path.join(d, "db"), mode=0o755)  # an existing directory, as under Greengrass
    old = os.umask(0o022)  # inherited by the relay, as from a shell or a unit file
    try:
        with Relay({"tokens": None}, workdir=d) as r:
            os.umask(old)
            r.ingest({"result": {"classification": {"modes": 0.5}}}, token=ADMIN_TOKEN,
                     expect=401)  # the generated token is the only one
            db = r.db_path
            for path in (db, db + "-wal", db + "-shm", os.path.join(d, "db", "ei-relay.token")):
                check(os.path.exists(path), "%s exists" % path)
                eq(mode_of(path), oct(0o600), "mode of %s" % os.path.basename(path))
    finally:
        os.umask(old)
        shutil.rmtree(d, ignore_errors=True)


def token_with_planted_tmp(kind):
    """`ei-relay token` (which creates the token file) with its temporary name, which carries
    the process id, planted just before exec as a symlink or hard link to a victim file."""
    d = tempfile.mkdtemp(prefix="ei-bb-plant-")
    try:
        victim = os.path.join(d, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        dbdir = os.path.join(d, "db")
        os.makedirs(dbdir)
        token_path = os.path.join(dbdir, "ei-relay.token")

        def plant():  # runs in the child between fork and exec: its pid is the relay's
            tmp = "%s.%d.tmp" % (token_path, os.getpid())
            (os.symlink if kind == "symlink" else os.link)(victim, tmp)

        res = subprocess.run([relay_bin(), "token", "--db-path", os.path.join(dbdir, "x.db")],
                             capture_output=True, text=True, timeout=60, env=clean_env(),
                             preexec_fn=plant)
        with open(victim) as f:
            eq(f.read(), "precious\n", "%s: the victim is unchanged" % kind)
        eq(res.returncode, 0, "%s: exit code (%s)" % (kind, res.stderr[-400:]))
        token = res.stdout.strip()
        eq(len(token), 64, "%s: a generated token" % kind)
        check(stat.S_ISREG(os.lstat(token_path).st_mode), "%s: the token file is a file" % kind)
        eq(mode_of(token_path), oct(0o600), "%s: token file mode" % kind)
        with open(token_path) as f:
            check(token in f.read(), "%s: the token is in the token file" % kind)
        eq(sorted(os.listdir(dbdir)), ["ei-relay.token"], "%s: nothing left behind" % kind)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_token_tmp_file_never_followed():
    token_with_planted_tmp("symlink")
    token_with_planted_tmp("hardlink")


def test_ingest_token_reads_nothing_back():
    with Relay() as r:
        ident = new_id()
        secret = "private-label-%s" % ident[:8]
        first = r.ingest({"id": ident, "result": {"classification": {secret: 0.9}}},
                         token=ADMIN_TOKEN).json()
        # an ingest-only token posting the known id: 200 and only the id
        resp = r.json_request("POST", "/api/v1/inferences",
                              {"id": ident, "result": {"classification": {"probe": 0.1}}},
                              token=INGEST_TOKEN)
        eq(resp.status, 200, "ingest-token retry status")
        eq(resp.json(), {"id": ident}, "ingest-token retry body")
        check(secret not in resp.body.decode(), "the stored row leaked: %r" % resp.body[:300])
        eq(resp.headers.get("location"), "/api/v1/inferences/" + ident, "Location")
        # a token that may read still gets the stored view (idempotent clients that read it)
        for token in (ADMIN_TOKEN,):
            again = r.ingest({"id": ident, "result": {"classification": {"x": 0.1}}},
                             token=token, expect=200).json()
            eq((again["seq"], again["top_label"]), (first["seq"], secret), "admin retry view")
        # nor can it read the live stream (which replays stored rows on resume)
        try:
            ws, m = live(token=INGEST_TOKEN, relay=r, since_seq=0)
            raise AssertionError("the live stream accepted an ingest token: %r" % (m,))
        except WsError as e:
            check("forbidden" in str(e) or "ingest" in str(e), "refusal reason: %s" % e)


def secrets_of(pki, token_file_token):
    out = [READ_TOKEN, INGEST_TOKEN, ADMIN_TOKEN, token_file_token]
    with open(pki["client_key"]) as f:
        body = [ln for ln in f.read().splitlines() if ln and not ln.startswith("-----")]
    out += [ln for ln in body if len(ln) >= 16]
    return out


def test_no_secret_in_logs_or_print_config():
    pki = make_pki()
    name = device_name("secrets")
    d = tempfile.mkdtemp(prefix="ei-bb-secret-")
    try:
        tf = os.path.join(d, "tokens")
        file_token = "file-token-" + new_id().replace("-", "")
        with open(tf, "w") as f:
            f.write("%s read\n" % file_token)
        os.chmod(tf, 0o600)
        with Broker(pki) as b:
            cfg = relay_mqtt_config(b, name, token_file=tf)
            with Relay(cfg) as r:
                # every path that handles a token: good and bad ones, REST and live
                ident = r.ingest({"result": {"classification": {"s": 0.5}}}).json()["id"]
                wait_publish(r, ident, "published", WAIT_S)
                r.get_json("/api/v1/inferences", token=file_token)
                eq(r.get("/api/v1/inferences", token=ADMIN_TOKEN + "x").status, 401, "bad token")
                eq(r.request("DELETE", "/api/v1/inferences/" + ident,
                              token=READ_TOKEN).status, 403, "read token may not delete")
                ws, _ = live(token=READ_TOKEN, relay=r)
                ws.close()
                try:
                    live(token=ADMIN_TOKEN[:-1], relay=r)
                except WsError:
                    pass
                printed = subprocess.run([relay_bin(), "--print-config", "--config",
                                          r.config_path], capture_output=True, text=True,
                                         timeout=30, env=clean_env())
                eq(printed.returncode, 0, "--print-config: %s" % printed.stderr)
                r.stop()  # the stop's lines too; the temp dir goes with the with block
                log = r.all_logs()
            check("forwarding to" in log,
                  "the log is that of a forwarding relay")
        for s in secrets_of(pki, file_token):
            check(s not in log, "a secret in the relay's log: %s..." % s[:6])
            check(s not in printed.stdout + printed.stderr,
                  "a secret in --print-config: %s..." % s[:6])
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_clear_cache_purges_the_live_ring():
    pki = make_pki()
    name = device_name("clear")
    with Broker(pki) as b:
        with Relay(relay_mqtt_config(b, name)) as r:
            sub = b.subscriber(topic(name, "#"))
            cmd = b.client("ei-bb-clear-%d" % os.getpid())
            cmd.connect()
            try:
                watcher, _ = live(relay=r)  # the hub reads every commit into its ring
                old = [r.ingest(cls({"before-clear": 0.9})).json()["id"] for _ in range(3)]
                read_until_id(watcher, old[-1])
                for ident in old:
                    wait_publish(r, ident, "published", WAIT_S)
                mark = sub.mark()
                cmd.publish(topic(name, "command/input"), json.dumps({"cmd": "clear_cache"}),
                            qos=1)
                reply = sub.wait_since(mark, topic(name, "command/output"), 1, WAIT_S,
                                       pred=lambda m: "clear_cache" in m.payload.decode())[0]
                check("clear_cache" in reply.json().get("result", {}), "reply %r" % reply.payload)
                for ident in old:
                    eq(r.get("/api/v1/inferences/" + ident).status, 404, "cleared from the cache")
                # a new client replaying all history, then one new inference
                ws, hello = live(relay=r, since_seq=0)
                new = r.ingest(cls({"after-clear": 0.9})).json()["id"]
                eq(ids_of(read_until_id(ws, new)), [new], "replayed after clear_cache")
                ws.close()
                watcher.close()
            finally:
                cmd.close()
                sub.close()


TESTS = [test_short_tokens_are_configuration_errors, test_files_private_whatever_the_umask,
         test_token_tmp_file_never_followed, test_ingest_token_reads_nothing_back,
         test_no_secret_in_logs_or_print_config]

if __name__ == "__main__":
    require_tools()
    run_tests(TESTS + [test_clear_cache_purges_the_live_ring])
