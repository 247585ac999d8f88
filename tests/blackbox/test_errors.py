# test_errors.py - black-box: bad input gets the contract's JSON error with the right status
# (400/404/405/413/415/422), changes nothing in the database, and leaves the relay healthy.
import base64
import json
import select
import socket
import urllib.parse

from harness import (ADMIN_TOKEN, INGEST_TOKEN, READ_TOKEN, ConnectionClosed, HttpConn, Relay,
                     TestFailure, check, eq, error_of, make_jpeg, multipart_body, new_id, run_tests)

MAX_BODY = 1 << 20  # max_body_bytes of this relay
R = None


def make_relay():
    # max_info_bytes as large as a body: the padded info below tests the body limit alone
    return Relay({"max_body_bytes": MAX_BODY, "max_info_bytes": MAX_BODY})


BASE_ROWS = None  # stored rows when the current test took its snapshot


def snapshot():
    """(ids of all stored inferences, health db rows) to compare before/after bad input."""
    global BASE_ROWS
    ids = sorted(it["id"] for it in R.list_all())
    BASE_ROWS = R.health()["db"]["rows"]
    eq(BASE_ROWS, len(ids), "health db.rows vs listed inferences")
    return ids, BASE_ROWS


def refused(resp, status, code=None):
    """error_of, then: the relay still answers health and stored nothing."""
    out = error_of(resp, status, code)
    eq(R.health()["db"]["rows"], BASE_ROWS, "rows after a refused request")
    return out


def unchanged(before):
    after = snapshot()
    eq(after[0], before[0], "stored inferences changed by a bad request")
    eq(after[1], before[1], "health db.rows changed by a bad request")


def ensure_rows():
    if not R.list_all():
        for i in range(3):
            R.ingest({"result": {"classification": {"seed%d" % i: 0.5}}})


def post(body, ctype="application/json", token=INGEST_TOKEN, path="/api/v1/inferences"):
    return R.request("POST", path, body, {"Content-Type": ctype}, token)


def test_malformed_json():
    ensure_rows()
    before = snapshot()
    for body in (b'{"result": ', b"{result: 1}", b"", b"\xff\xfe{}", b'{"result":{}}}',
                 b"nul", b'{"result":{"classification":{"a":0.5}}} trailing'):
        code, msg = refused(post(body), 400, "bad_request")
    unchanged(before)


def test_wrong_shape_422():
    ensure_rows()
    before = snapshot()
    cases = [
        (b"[1,2,3]", None),
        (b'"just a string"', None),
        (b'{"foo": 1}', None),
        (b'{"result": "cat"}', "result"),
        (b'{"result": {"classification": {"cat": "high"}}}', "classification"),
        (b'{"result": {"classification": [0.5]}}', "classification"),
        (b'{"result": {"bounding_boxes": {"label": "a"}}}', "bounding_boxes"),
        (b'{"result": {"bounding_boxes": [{"label": 5, "value": 0.5, "x": 1, "y": 1,'
         b' "width": 2, "height": 2}]}}', "label"),
        (b'{"result": {"bounding_boxes": [{"label": "a", "value": "x", "x": 1, "y": 1,'
         b' "width": 2, "height": 2}]}}', "value"),
        (b'{"result": {"classification": {"a": 0.5}}, "ts": "yesterday"}', "ts"),
        (b'{"result": {"anomaly": "big"}}', "anomaly"),
        (b'{"result": {"classification": {"a": 0.5}}, "timing": 5}', "timing"),
        (b'{"time_ms": 1, "c": "x"}', "c"),
        (b'{"time_ms": 1, "box": [1, 2]}', "box"),
    ]
    problems = []  # every case is tried; all misbehaviours are reported together
    for body, field in cases:
        r = post(body)
        try:
            code, msg = refused(r, 422, "unprocessable")
            if field:
                check(field in msg, "message %r does not name %r" % (msg, field))
        except TestFailure as e:
            problems.append("%r: %s" % (body, str(e)[:300]))
            if r.status in (200, 201):  # stored by mistake: keep the count comparable
                R.request("DELETE", "/api/v1/inferences/" + r.json()["id"], token=ADMIN_TOKEN)
    check(not problems, "wrong-shape bodies not refused with 422:\n  " + "\n  ".join(problems))
    unchanged(before)


def test_bad_id_in_body():
    ensure_rows()
    before = snapshot()
    r = post(json.dumps({"id": "not-a-uuid'; DROP TABLE inferences; --",
                         "result": {"classification": {"a": 0.5}}}).encode())
    check(r.status in (400, 422), "bad id in body: %d" % r.status)
    code, msg = refused(r, r.status)
    check("id" in msg, "message %r names id" % msg)
    unchanged(before)


def read_ready(sock, timeout):
    r, _, _ = select.select([sock], [], [], timeout)
    return bool(r)


def test_413_content_length_refused_before_body():
    ensure_rows()
    before = snapshot()
    with HttpConn(R.http_port, timeout=10) as c:
        c.send_raw(("POST /api/v1/inferences HTTP/1.1\r\nHost: x\r\n"
                    "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n" % (INGEST_TOKEN, 100 * MAX_BODY)).encode())
        # no body sent: the answer must come from the headers alone
        check(read_ready(c.sock, 10), "no answer to an oversized Content-Length within 10 s")
        refused(c.read_response("POST"), 413, "payload_too_large")
    # just over the limit, with Expect: 100-continue (curl's way): refused, no 100
    with HttpConn(R.http_port, timeout=10) as c:
        c.send_raw(("POST /api/v1/inferences HTTP/1.1\r\nHost: x\r\n"
                    "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                    "Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" %
                    (INGEST_TOKEN, MAX_BODY + 1)).encode())
        check(read_ready(c.sock, 10), "no answer with Expect: 100-continue within 10 s")
        line = c._read_line()
        check(not line.startswith(b"HTTP/1.1 100"), "100 Continue for an oversized body")
        c.buf = line + b"\r\n" + c.buf
        refused(c.read_response("POST"), 413, "payload_too_large")
    unchanged(before)
    R.health()


def test_413_chunked_body_too_large():
    ensure_rows()
    before = snapshot()
    resp = None
    with HttpConn(R.http_port, timeout=10) as c:
        c.send_raw(("POST /api/v1/inferences HTTP/1.1\r\nHost: x\r\n"
                    "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n" % INGEST_TOKEN).encode())
        chunk = b'{"result":{"classification":{"a":0.5}},"pad":"' + b"x" * 65536
        sent = 0
        try:
            while sent < 4 * MAX_BODY:
                if read_ready(c.sock, 0):
                    break  # the server answered: stop sending
                c.send_raw(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
                chunk = b"y" * 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        why = "dropped"
        try:
            resp = c.read_response("POST")
        except (ConnectionClosed, ConnectionResetError):
            resp = None
        except socket.timeout:
            resp, why = None, "left open (10 s)"
    check(resp is not None, "connection %s without a 413 answer (sent %d bytes)" % (why, sent))
    refused(resp, 413, "payload_too_large")
    unchanged(before)
    R.health()


def test_body_at_limit_accepted():
    # a document just under max_body_bytes is fine (the limit is not off by a lot)
    pad = "p" * (MAX_BODY - 200)
    body = json.dumps({"result": {"classification": {"big": 0.5}}, "info": pad}).encode()
    check(len(body) <= MAX_BODY, "body size")
    r = post(body)
    eq(r.status, 201, "body under the limit: %r" % r.body[:200])


def test_415_media_types():
    ensure_rows()
    before = snapshot()
    refused(post(b"hello", ctype="text/plain"), 415, "unsupported_media_type")
    refused(post(b'{"result":{"classification":{"a":0.5}}}', ctype="application/xml"), 415,
             "unsupported_media_type")
    # non-image bytes as the image part
    ctype, body = multipart_body([
        ("json", None, "application/json", b'{"result":{"classification":{"a":0.5}}}'),
        ("image", "x.jpg", "image/jpeg", b"this is not a JPEG at all" * 10)])
    refused(post(body, ctype=ctype), 415, "unsupported_media_type")
    # non-image base64 in JSON
    doc = {"result": {"classification": {"a": 0.5}},
           "image": base64.b64encode(b"GIF89a not supported either").decode()}
    refused(post(json.dumps(doc).encode()), 415, "unsupported_media_type")
    # a truncated JPEG (header only) is not an image either
    jpg = make_jpeg(32, 32)
    ctype, body = multipart_body([
        ("json", None, "application/json", b'{"result":{"classification":{"a":0.5}}}'),
        ("image", "t.jpg", "image/jpeg", jpg[:40])])
    r = post(body, ctype=ctype)
    check(r.status in (415, 422), "truncated JPEG: %d" % r.status)
    refused(r, r.status)
    unchanged(before)


def test_bad_multipart():
    ensure_rows()
    before = snapshot()
    # no json part
    ctype, body = multipart_body([("image", "x.jpg", "image/jpeg", make_jpeg(8, 8))])
    r = post(body, ctype=ctype)
    check(r.status in (400, 422), "multipart without json part: %d" % r.status)
    refused(r, r.status)
    # no boundary
    refused(post(b"--x\r\n\r\n--x--\r\n", ctype="multipart/form-data"), 400, "bad_request")
    # unterminated
    ctype, body = multipart_body([("json", None, "application/json", b'{"result":{}}')])
    r = post(body[:-30], ctype=ctype)
    refused(r, 400, "bad_request")
    # malformed JSON inside the part
    ctype, body = multipart_body([("json", None, "application/json", b'{"result":')])
    refused(post(body, ctype=ctype), 400, "bad_request")
    unchanged(before)


def test_404():
    ensure_rows()
    before = snapshot()
    refused(R.get("/api/v1/inferences/" + new_id()), 404, "not_found")
    refused(R.get("/api/v1/inferences/%s/image" % new_id()), 404, "not_found")
    refused(R.get("/api/v1/inferences/%s/thumbnail" % new_id()), 404, "not_found")
    refused(R.get("/api/v1/nothing-here"), 404, "not_found")
    refused(R.get("/api/v2/inferences"), 404, "not_found")
    refused(R.get("/api/v1/inferences/%s/extra/path" % new_id()), 404)
    refused(R.request("DELETE", "/api/v1/inferences/" + new_id(), token=ADMIN_TOKEN), 404,
             "not_found")
    r = R.get("/no-such-file.html")
    eq(r.status, 404, "unknown static file")
    unchanged(before)


def test_400_non_uuid_id():
    ensure_rows()
    before = snapshot()
    for bad in ("not-a-uuid", "12345", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
                new_id() + "0", "%27%20OR%20%271%27%3D%271"):
        refused(R.get("/api/v1/inferences/" + bad), 400, "bad_request")
    refused(R.request("DELETE", "/api/v1/inferences/not-a-uuid", token=ADMIN_TOKEN), 400,
             "bad_request")
    unchanged(before)


def allow_set(resp):
    a = resp.headers.get("allow")
    check(a is not None, "405 without an Allow header")
    return {m.strip().upper() for m in a.split(",") if m.strip()}


def test_405_with_allow():
    ensure_rows()
    before = snapshot()
    r = R.request("DELETE", "/api/v1/health", token=ADMIN_TOKEN)
    refused(r, 405, "method_not_allowed")
    check("GET" in allow_set(r), "Allow for health: %r" % r.headers.get("allow"))
    r = R.request("PUT", "/api/v1/inferences", b"{}", {"Content-Type": "application/json"},
                  token=ADMIN_TOKEN)
    refused(r, 405, "method_not_allowed")
    check({"GET", "POST"} <= allow_set(r), "Allow for inferences: %r" % r.headers.get("allow"))
    any_id = R.list_all()[0]["id"]
    r = R.request("POST", "/api/v1/inferences/" + any_id, b"{}",
                  {"Content-Type": "application/json"}, token=ADMIN_TOKEN)
    refused(r, 405, "method_not_allowed")
    check({"GET", "DELETE"} <= allow_set(r), "Allow for one inference: %r" %
          r.headers.get("allow"))
    r = R.request("POST", "/api/v1/stats", b"{}", {"Content-Type": "application/json"},
                  token=ADMIN_TOKEN)
    refused(r, 405, "method_not_allowed")
    check("GET" in allow_set(r), "Allow for stats")
    unchanged(before)


SECRET_MARK = "top-secret-outside-web-root"


def test_static_files():
    r = R.get("/index.html", token=None)
    eq(r.status, 200, "index.html from web_root: %r" % r.body[:200])
    check(r.headers.get("content-type", "").startswith("text/html"), "html content type")
    check("cache-control" in r.headers, "Cache-Control header on static files")
    check(b"ei-relay test" in r.body, "served our index.html")
    r = R.get("/", token=None)
    eq(r.status, 200, "GET / serves the dashboard index")
    # revalidation: the ETag answers 304 with no body; a changed file gets a new one
    etag = r.headers.get("etag")
    check(etag and etag.startswith('W/"'), "weak ETag on static files: %r" % etag)
    eq(r.headers.get("cache-control"), "no-cache", "pages and scripts are revalidated")
    r = R.request("GET", "/index.html", headers={"If-None-Match": etag})
    eq(r.status, 304, "unchanged file with its ETag")
    eq(r.body, b"", "304 has no body")
    eq(r.headers.get("etag"), etag, "304 repeats the ETag")
    r = R.request("GET", "/index.html", headers={"If-None-Match": 'W/"0-0"'})
    eq(r.status, 200, "another ETag gets the file")


def test_path_traversal():
    ensure_rows()
    before = snapshot()
    # a file right outside web_root that must never be served
    with open(R.dir + "/secret.txt", "w") as f:
        f.write(SECRET_MARK)
    paths = ["/../../etc/passwd", "/../../../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
             "/%2E%2E/%2E%2E/%2E%2E/etc/passwd", "/web/../../etc/passwd", "/..%2f..%2fetc%2fpasswd",
             "/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "//etc/passwd", "/../secret.txt",
             "/%2e%2e/secret.txt", "/./../secret.txt", "/..\\secret.txt", "/.%2e/secret.txt",
             "/%252e%252e/secret.txt", "/index.html/../../secret.txt", "/../config.json",
             "/%2e%2e/config.json", "/%00/../secret.txt", "/index.html%00.txt"]
    problems = []
    for p in paths:
        req = ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % p).encode()
        r = R.raw(req)
        if r is None:
            continue  # dropped connection: nothing was served
        check(b"root:" not in r.body, "%s served /etc/passwd" % p)
        check(SECRET_MARK.encode() not in r.body, "%s served a file outside web_root" % p)
        check(ADMIN_TOKEN.encode() not in r.body, "%s served the config file" % p)
        if r.status not in (400, 403, 404):
            problems.append("%s answered %d (%d bytes of %s)" %
                            (p, r.status, len(r.body), r.headers.get("content-type")))
    check(not problems, "traversal/NUL paths not refused:\n  " + "\n  ".join(problems))
    unchanged(before)
    R.health()


def test_sql_metacharacters():
    ensure_rows()
    evil = "x'); DROP TABLE inferences;--"
    r = R.ingest({"result": {"classification": {evil: 0.9, "plain": 0.1}}})
    ident = r.json()["id"]
    before = snapshot()
    for label in ("' OR 1=1 --", "' OR '1'='1", '" OR ""="', "%", "_", "*", "a%' --",
                  "'; DELETE FROM inferences; --", "\\", "\x00"):
        q = "/api/v1/inferences?" + urllib.parse.urlencode({"label": label})
        r = R.get(q)
        if r.status == 200:
            eq(r.json()["items"], [], "label filter %r matched rows" % label)
        else:
            refused(r, 400, "bad_request")
    q = "/api/v1/inferences?" + urllib.parse.urlencode({"label": evil})
    items = R.get_json(q)["items"]
    eq([it["id"] for it in items], [ident], "exact label with metacharacters")
    eq(R.get_json("/api/v1/inferences/" + ident)["top_label"], evil, "label stored verbatim")
    for src in ("' OR 1=1 --", "%"):
        q = "/api/v1/inferences?" + urllib.parse.urlencode({"source": src})
        r = R.get(q)
        if r.status == 200:
            eq(r.json()["items"], [], "source filter %r matched rows" % src)
        else:
            refused(r, 400)
    for bad in ("1%20OR%201=1", "%27%3B%20DROP%20TABLE%20inferences%3B--"):
        refused(R.get("/api/v1/inferences/" + bad), 400)
        refused(R.request("DELETE", "/api/v1/inferences/" + bad, token=ADMIN_TOKEN), 400)
    unchanged(before)


def test_malformed_requests():
    ensure_rows()
    before = snapshot()
    for data in (b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
                 b"GET /api/v1/health HTTP/1.1\r\nBad Header\r\n\r\n",
                 b"POST /api/v1/inferences HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                 b"POST /api/v1/inferences HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                 b"POST /api/v1/inferences HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 b"Authorization: Bearer " + INGEST_TOKEN.encode() +
                 b"\r\nContent-Type: application/json\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
                 b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"):
        try:
            r = R.raw(data, timeout=10)
        except (ConnectionResetError, BrokenPipeError):
            r = None
        except socket.timeout:
            raise TestFailure("no answer and no close within 10 s to %r" % data[:60])
        if r is not None:
            check(400 <= r.status < 600 and r.status != 500 and r.status != 201,
                  "malformed request %r answered %d" % (data[:40], r.status))
        R.health()
    unchanged(before)


def test_malformed_request_binary_bytes():
    # binary garbage as a request line: answered (400) or closed, not left hanging (the
    # relay's header timeout is 10 s; 15 s leaves room without racing it)
    before = snapshot()
    for data in (b"\x00\x01\x02\x03\r\n\r\n", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"):
        try:
            r = R.raw(data, timeout=15)
        except (ConnectionResetError, BrokenPipeError):
            r = None
        except socket.timeout:
            raise TestFailure("no answer and no close within 15 s to %r" % data[:60])
        if r is not None:
            check(400 <= r.status < 500, "binary request answered %d" % r.status)
        R.health()
    unchanged(before)


def test_lying_content_length():
    ensure_rows()
    before = snapshot()
    doc = b'{"result":{"classification":{"liar":0.5}}}'
    head = ("POST /api/v1/inferences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\n" % INGEST_TOKEN).encode()
    # claims more than it sends, then closes: nothing may be stored
    s = socket.create_connection(("127.0.0.1", R.http_port), timeout=5)
    s.sendall(head + b"Content-Length: %d\r\n\r\n" % (len(doc) + 50) + doc)
    s.shutdown(socket.SHUT_WR)
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()
    # claims less than it sends: the truncated document is malformed JSON -> 400, and the
    # rest is not a valid request
    r = R.raw(head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (len(doc) - 10) + doc,
              method="POST")
    check(r is not None, "no answer to a short Content-Length")
    refused(r, 400, "bad_request")
    unchanged(before)
    R.health()


def test_error_content_type_and_shape_for_auth():
    snapshot()
    # 401/403 are errors too: same body shape
    refused(R.get("/api/v1/inferences", token=None), 401, "unauthorized")
    refused(R.request("DELETE", "/api/v1/inferences/" + new_id(), token=READ_TOKEN), 403,
             "forbidden")


def test_body_on_get_refused_before_reading():
    """Only ingest takes a body: a GET announcing a huge one (no auth needed for health or /)
    is answered from the headers alone, so nobody can stream an endless body at it."""
    for path, length in (("/api/v1/health", 10 ** 9), ("/", 10 ** 9), ("/api/v1/inferences", 5)):
        with HttpConn(R.http_port, timeout=10) as c:
            c.send_raw(("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                        "Content-Length: %d\r\n\r\n" % (path, READ_TOKEN, length)).encode())
            check(read_ready(c.sock, 10), "no answer to GET %s with a body within 10 s" % path)
            refused(c.read_response("GET"), 400, "bad_request")
    with HttpConn(R.http_port, timeout=10) as c:
        c.send_raw(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        check(read_ready(c.sock, 10), "no answer to a chunked GET within 10 s")
        refused(c.read_response("GET"), 400, "bad_request")
    eq(R.health()["status"], "ok", "health after refused bodies")


TESTS = [test_malformed_json, test_body_on_get_refused_before_reading, test_wrong_shape_422, test_bad_id_in_body,
         test_413_content_length_refused_before_body, test_413_chunked_body_too_large,
         test_body_at_limit_accepted, test_415_media_types, test_bad_multipart, test_404,
         test_400_non_uuid_id, test_405_with_allow, test_static_files, test_path_traversal,
         test_sql_metacharacters, test_malformed_requests, test_malformed_request_binary_bytes,
         test_lying_content_length,
         test_error_content_type_and_shape_for_auth]

if __name__ == "__main__":
    run_tests(TESTS, shared_relay=make_relay, bind=lambda r: globals().__setitem__("R", r))
