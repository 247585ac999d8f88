# harness - the one helper package of the black-box tests (tests/blackbox/test_*.py), also used
# by the benchmarks (tests/bench) and the browser tests' Python helpers. Split by job:
#   paths.py        the checkout, the binary under test, tests/fixtures
#   checks.py       TestFailure, check, eq and the one polling wait, wait_for
#   http.py         a raw HTTP/1.1 client, multipart bodies, the API's error contract
#   images.py       PNG and JPEG makers, image size readers
#   relay.py        the relay process (Relay), its tokens, free ports, small documents
#   suite.py        run_tests, the runner of a test file
#   sources.py      the sources setting, a source's status and its stored inferences
#   live.py         the live WebSocket stream: posting, connecting, reading the stream
#   ws_client.py    an RFC 6455 WebSocket client
#   mqtt.py         mosquitto with a test PKI, and an MQTT 3.1.1 client (forwarder tests)
#   disk.py         a small tmpfs for the database (full-disk tests)
#   runner_stub.py  the edge-impulse-linux-runner stand-in (with stub_connection.py, its
#                   WebSocket connections, and js_json.py, JSON as Node writes it)
# Test files take the names every file needs from here (`from harness import Relay, check`)
# and the rest from their module (`from harness.mqtt import Broker`). Python 3 standard
# library only.
from .checks import WAIT_S, TestFailure, check, eq, wait_for
from .http import (ConnectionClosed, HttpConn, Response, auth_header, error_of, http_request,
                   multipart_body, raw_exchange)
from .images import jpeg_dims, make_jpeg, make_jpeg_of_size, make_png, png_dims
from .paths import fixture_path, fixtures_dir, relay_bin, source_dir
from .relay import (ADMIN_TOKEN, INGEST_TOKEN, READ_TOKEN, SANITIZER_MARKERS, Relay,
                    RelayExited, classification_doc, free_port, new_id, now_ms, start_refused)
from .sources import (runner_source, source_status, sources_cfg, stored, wait_status,
                      wait_stored)
from .suite import run_tests

__all__ = [
    "WAIT_S", "TestFailure", "check", "eq", "wait_for",
    "ConnectionClosed", "HttpConn", "Response", "auth_header", "error_of", "http_request",
    "multipart_body", "raw_exchange",
    "jpeg_dims", "make_jpeg", "make_jpeg_of_size", "make_png", "png_dims",
    "fixture_path", "fixtures_dir", "relay_bin", "source_dir",
    "ADMIN_TOKEN", "INGEST_TOKEN", "READ_TOKEN", "SANITIZER_MARKERS", "Relay", "RelayExited",
    "classification_doc", "free_port", "new_id", "now_ms", "start_refused",
    "runner_source", "source_status", "sources_cfg", "stored", "wait_status", "wait_stored",
    "run_tests",
]
