# certs.py - the browser TLS test's certificates: the black-box tier's harness/tls.py runs the
# README's openssl command for each name given on the command line, in the directory given
# first, and this prints one JSON line {name: {"cert", "key", "spki"}} (spki: what Chromium's
# --ignore-certificate-errors-spki-list takes to trust exactly that key).
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "blackbox"))
from harness.tls import make_cert, spki_sha256  # noqa: E402


def main():
    directory, names = sys.argv[1], sys.argv[2:]
    out = {}
    for name in names:
        cert, key = make_cert(directory, name)
        out[name] = {"cert": cert, "key": key, "spki": spki_sha256(cert)}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
