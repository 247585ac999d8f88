# test_tls.py - black-box: HTTPS and WSS on the LAN (README.md, "TLS on the LAN"). The
# certificates are made at test time with the README's own openssl command. Real clients: Debian's
# curl (--cacert) for health, ingest and reads; the harness's WebSocket client inside Python's ssl
# for the live stream. Plain HTTP and WS on the TLS ports, and a client trusting another
# certificate, are refused; every bad certificate/key setting stops the start with exit 2 and a
# message naming it, before a database is made. Nothing sleeps: waits are round trips and
# bounded process waits.
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from harness import (ConnectionClosed, Relay, TestFailure, check, classification_doc, eq,
                     http_request, raw_exchange, run_tests, start_refused)
from harness.live import binder, live, read_until_id
from harness.tls import client_context, make_cert
from harness.ws_client import HandshakeError, WsClient, WsError

R = None  # the TLS relay the file shares (bound by run_tests)
PKI = tempfile.mkdtemp(prefix="ei-bb-tls-")
MAX_BODY = 65536
DEADLINE_MS = 1000  # the shared relay's head and upgrade deadlines

if not shutil.which("openssl") or not shutil.which("curl"):
    print("SKIP: openssl and curl are needed (scripts/deps.sh test)", flush=True)
    sys.exit(77)

CERT, KEY = make_cert(PKI, "ei-relay")
OTHER_CERT, OTHER_KEY = make_cert(PKI, "other")  # another key: trusting it is not trusting R


def tls_settings(cert=CERT, key=KEY):
    return {"tls_cert_file": cert, "tls_key_file": key}


def shared():
    cfg = tls_settings()
    cfg["max_body_bytes"] = MAX_BODY
    cfg["http_header_timeout_ms"] = cfg["ws_handshake_timeout_ms"] = DEADLINE_MS
    return Relay(cfg, ssl_context=client_context(CERT))


def curl(path, *args, cacert=CERT, scheme="https", port=None):
    """curl on the shared relay; returns (exit code, HTTP status or 0, body text)."""
    url = "%s://127.0.0.1:%d%s" % (scheme, port or R.http_port, path)
    cmd = ["curl", "-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}",
           "--cacert", cacert] + list(args) + [url]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    body, _, status = p.stdout.rpartition("\n")
    return p.returncode, int(status or 0), body if p.returncode == 0 else p.stderr


def test_https_health_ingest_read_with_curl():
    rc, status, body = curl("/api/v1/health")
    eq((rc, status), (0, 200), "health over HTTPS: %s" % body)
    eq(json.loads(body)["status"], "ok", "health status")
    doc = classification_doc({"tls": 0.97, "plain": 0.03})
    rc, status, body = curl("/api/v1/inferences", "-H", "Authorization: Bearer " + R.cfg[
        "tokens"][1]["token"], "-H", "Content-Type: application/json", "--data-binary",
        json.dumps(doc))
    eq((rc, status), (0, 201), "ingest over HTTPS: %s" % body)
    made = json.loads(body)
    rc, status, body = curl("/api/v1/inferences/" + made["id"], "-H",
                            "Authorization: Bearer " + R.cfg["tokens"][0]["token"])
    eq((rc, status), (0, 200), "read over HTTPS: %s" % body)
    eq(json.loads(body)["result"], doc["result"], "the stored inference read back")
    rc, status, body = curl("/")
    eq((rc, status), (0, 200), "the dashboard over HTTPS")
    # the relay says where to go, with the scheme the browser needs
    check("dashboard: https://" in R.log() and "live stream on wss://" in R.log(),
          "the start log names https:// and wss://")


def test_another_certificate_is_not_trusted():
    rc, _, err = curl("/api/v1/health", cacert=OTHER_CERT)
    eq(rc, 60, "curl trusting another certificate: %s" % err)  # peer certificate not verified
    for port in (R.http_port, R.ws_port):
        try:
            http_request(port, "GET", "/api/v1/health", ssl_context=client_context(OTHER_CERT))
            raise TestFailure("port %d: a client trusting another certificate got through" % port)
        except ssl.SSLCertVerificationError:
            pass


def test_plain_http_and_ws_are_refused_on_the_tls_ports():
    req = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    try:
        resp = raw_exchange(R.http_port, req, timeout=10)
    except (ConnectionResetError, TestFailure):
        resp = None  # reset, or TLS alert bytes that are no status line
    eq(resp, None, "plain HTTP on the HTTPS port must get no HTTP answer")
    rc, status, err = curl("/api/v1/health", scheme="http")
    check(rc != 0 and status == 0, "curl http:// on the HTTPS port: rc %d status %d" % (rc, status))
    try:
        WsClient(R.ws_port, timeout=10).close()
        raise TestFailure("a plain WebSocket upgrade on the WSS port succeeded")
    except (HandshakeError, ConnectionResetError, WsError):
        pass
    eq(R.health()["status"], "ok", "the relay is unharmed")


def test_wss_live_stream():
    ws, hello = live()
    eq(hello["type"], "hello", "hello over WSS")
    doc = classification_doc({"wss": 0.9, "ws": 0.1})
    made = R.ingest(doc).json()
    got = read_until_id(ws, made["id"])
    eq(got[-1]["inference"]["result"], doc["result"], "the inference arrives over WSS")
    ws.close()


def test_body_limits_over_https():
    big = json.dumps(classification_doc(info={"pad": "x" * (MAX_BODY + 10)}))
    # Expect: 100-continue, as a careful client sends: the 413 is decided on the head, and a
    # client that sent the whole body first may find the connection reset under it (a race of
    # any server that refuses a body unread, visible over TLS as curl's "send failure")
    rc, status, body = curl("/api/v1/inferences", "-H", "Authorization: Bearer " + R.cfg[
        "tokens"][1]["token"], "-H", "Content-Type: application/json", "-H",
        "Expect: 100-continue", "--data-binary", big)
    eq((rc, status), (0, 413), "a declared body over the limit: %s" % body)
    eq(json.loads(body)["error"]["code"], "payload_too_large", "413 body")
    # chunked past the limit: libmicrohttpd cannot answer mid-upload and the raw 413 of plain
    # HTTP cannot go into a TLS stream, so the connection is closed; nothing is stored
    before = R.count()
    c = R.conn()
    try:
        c.send_raw(b"POST /api/v1/inferences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" %
                   R.cfg["tokens"][1]["token"].encode())
        chunk = b"x" * 16384
        closed = False
        try:
            for _ in range(2 * MAX_BODY // len(chunk) + 4):
                c.send_raw(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            resp = c.read_response("POST")
            raise TestFailure("an answer to a chunked body past the limit: %r" % resp)
        except ssl.SSLEOFError:  # closed at the TCP level while we still sent: also closed
            closed = True
        except ssl.SSLError as e:  # what plain bytes in the TLS stream would make
            raise TestFailure("the TLS stream was broken, not closed: %r" % e)
        except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
            closed = True
        check(closed, "the connection is closed")
    finally:
        c.close()
    eq(R.count(), before, "nothing stored")
    eq(R.health()["status"], "ok", "the relay is unharmed")


def test_a_stalled_tls_handshake_meets_the_deadlines():
    """A client that opens the connection and stops inside the TLS handshake is closed by the
    head deadline (HTTPS) and the upgrade deadline (WSS), as a plain one would be."""
    for port in (R.http_port, R.ws_port):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            s.sendall(b"\x16\x03\x01\x02\x00\x01")  # the first bytes of a ClientHello, no more
            t0 = time.monotonic()
            try:
                while s.recv(4096):
                    pass
            except ConnectionResetError:
                pass
            except socket.timeout:
                raise TestFailure("port %d: a stalled handshake still open after 10 s" % port)
            took = time.monotonic() - t0
            check(took < DEADLINE_MS / 1000.0 + 4, "port %d (http %d, ws %d): closed after %.1f s" %
                  (port, R.http_port, R.ws_port, took))
        finally:
            s.close()
    eq(R.health()["status"], "ok", "the relay is unharmed")


# ---- start-up refusals: each one exit 2, a message naming the problem, no database ----

def refused(overrides, want):
    err = start_refused(overrides, want)
    check("BEGIN" not in err, "no key or certificate text in the message")


def copy_key(mode, src=KEY):
    path = os.path.join(PKI, "key-%o.pem" % mode)
    shutil.copyfile(src, path)
    os.chmod(path, mode)
    return path


def test_bad_settings_stop_the_start():
    refused({"tls_cert_file": CERT}, "tls_cert_file is set but tls_key_file is not")
    refused({"tls_key_file": KEY}, "tls_key_file is set but tls_cert_file is not")
    missing = os.path.join(PKI, "missing.crt")
    refused(tls_settings(cert=missing), "tls_cert_file %s: No such file" % missing)
    refused(tls_settings(key=os.path.join(PKI, "missing.key")), "tls_key_file")
    refused(tls_settings(key=OTHER_KEY), "is not the key of the certificate in tls_cert_file")
    refused(tls_settings(key=copy_key(0o644)), "is open to other users (mode 0644)")
    garbage = os.path.join(PKI, "garbage.crt")
    with open(garbage, "w") as f:
        f.write("not a certificate\n")
    refused(tls_settings(cert=garbage), "holds no PEM certificate")
    refused(tls_settings(cert=KEY, key=copy_key(0o600)), "holds no PEM certificate")
    enc = os.path.join(PKI, "encrypted.key")
    subprocess.run(["openssl", "pkey", "-in", KEY, "-aes256", "-passout", "pass:secret-pass",
                    "-out", enc], check=True, capture_output=True, timeout=30)
    os.chmod(enc, 0o600)
    refused(tls_settings(key=enc), "is encrypted")


def test_group_readable_key_starts_with_a_warning():
    key = copy_key(0o640)
    with Relay(tls_settings(key=key), ssl_context=client_context(CERT)) as r:
        eq(r.health()["status"], "ok", "health over HTTPS")
        check("is readable by its group (mode 0640" in r.log(), "the warning:\n" + r.log())


if __name__ == "__main__":
    try:
        run_tests([
            test_https_health_ingest_read_with_curl,
            test_another_certificate_is_not_trusted,
            test_plain_http_and_ws_are_refused_on_the_tls_ports,
            test_wss_live_stream,
            test_body_limits_over_https,
            test_a_stalled_tls_handshake_meets_the_deadlines,
            test_bad_settings_stop_the_start,
            test_group_readable_key_starts_with_a_warning,
        ], shared_relay=shared, bind=binder(globals()))
    finally:
        shutil.rmtree(PKI, ignore_errors=True)
