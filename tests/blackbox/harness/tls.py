# tls.py - certificates for the HTTPS/WSS tests, made at test time with the README's own
# command (README.md, "TLS on the LAN": one openssl line, a self-signed certificate with the
# gateway's name and address in subjectAltName), and what a client needs to trust one: an
# ssl.SSLContext for the harness's HTTP and WebSocket clients, the SPKI hash Chromium's
# --ignore-certificate-errors-spki-list takes. Python 3 standard library and the openssl program
# (scripts/deps.sh test); no private key is ever committed.
import base64
import hashlib
import os
import re
import shlex
import ssl
import subprocess

from .checks import TestFailure
from .paths import source_dir

README_SECTION = "### TLS on the LAN"
# the example name and address of the README's command, and what the tests use instead
README_HOST, README_IP = "gateway.local", "192.168.1.50"


def readme_command():
    """The first `openssl req` command of the README's TLS section (continuation lines joined)."""
    with open(os.path.join(source_dir(), "README.md"), encoding="utf-8") as f:
        text = f.read()
    at = text.find(README_SECTION)
    if at < 0:
        raise TestFailure("README.md has no %r section" % README_SECTION)
    m = re.search(r"```sh\n(openssl req .*?)\n```", text[at:], re.S)
    if not m:
        raise TestFailure("no openssl req command in the README's TLS section")
    return m.group(1).replace("\\\n", " ")


def make_cert(directory, name="ei-relay", host="localhost", ip="127.0.0.1"):
    """Runs the README's command in directory for host/ip, the files named <name>.crt and
    <name>.key. Returns (cert path, key path)."""
    cmd = readme_command().replace(README_HOST, host).replace(README_IP, ip)
    cmd = cmd.replace("ei-relay.crt", name + ".crt").replace("ei-relay.key", name + ".key")
    os.makedirs(directory, exist_ok=True)
    r = subprocess.run(shlex.split(cmd), cwd=directory, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    if r.returncode != 0:
        raise TestFailure("%s failed:\n%s" % (cmd, r.stdout.decode("utf-8", "replace")))
    return os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")


def client_context(cafile):
    """An SSLContext that trusts only cafile and checks the host name."""
    return ssl.create_default_context(cafile=cafile)


def spki_sha256(cert):
    """base64(SHA-256(SubjectPublicKeyInfo DER)) of the certificate file: what Chromium's
    --ignore-certificate-errors-spki-list takes to trust exactly this key."""
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"],
                         capture_output=True, check=True, timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                         capture_output=True, check=True, timeout=30).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()
