# test_hostile.py - black-box: the hostile-input list (issue 12, item 8) against one relay.
# Path traversal (plain, encoded, double-encoded, backslash, NUL) on the dashboard's files and
# the {id} routes; SQL metacharacters in every query parameter and path id; hostile numbers in
# every numeric query parameter and body field; NaN/Infinity/-0/1e999; deep nesting; invalid
# UTF-8 in labels, ids, paths, methods and headers; duplicate JSON keys; request smuggling
# (Transfer-Encoding with Content-Length, two Content-Lengths, obs-fold, codings other than
# chunked); oversized heads; absurd methods; HTTP/0.9 and HTTP/2 prefaces.
#
# Every case is checked for the right status and the error contract (error_of: the JSON body
# {"error":{"code","message"}}, valid UTF-8), AND for changing nothing: after each case the
# stored rows (health's db.rows and the newest id) are the same and the relay still answers.
# Heads libmicrohttpd refuses itself, before the relay sees a request (an unparsable request
# line, an HTTP version it does not speak, a head over its memory limit), get its status and a
# short HTML body, and the connection is closed: those are checked for the status only.
# All cases are tried; the misbehaviours are reported together.
import json
import socket
import urllib.parse

from harness import (ADMIN_TOKEN, INGEST_TOKEN, READ_TOKEN, Relay, TestFailure, check, eq,
                     error_of, new_id, run_tests)

R = None
SECRET = "hostile-secret-outside-web-root"


def make_relay():
    return Relay({"max_body_bytes": 1 << 20})


def state():
    """What a hostile request must not change: the row count and the newest row's id."""
    rows = R.health()["db"]["rows"]
    items = R.get_json("/api/v1/inferences?limit=1")["items"]
    return rows, items[0]["id"] if items else None


class Cases:
    """Runs cases and collects every problem, so one run shows them all."""

    def __init__(self):
        self.problems = []
        self.before = state()

    def _after(self, what):
        now = state()  # also: the relay still answers health and the API
        if now != self.before:
            self.problems.append("%s changed the stored rows: %r -> %r" % (what, self.before, now))
            self.before = now

    def error(self, what, resp, statuses, code=None):
        """resp must be the contract's error with one of statuses; nothing changed."""
        try:
            if resp is None:
                raise TestFailure("connection closed without an answer")
            st = resp.status if resp.status in statuses else statuses[0]
            error_of(resp, st, code)
            resp.body.decode("utf-8")  # error_of parsed it; strictly UTF-8 too
        except (TestFailure, UnicodeDecodeError) as e:
            self.problems.append("%s: %s" % (what, str(e)[:300]))
        self._after(what)

    def status(self, what, resp, statuses, closed_ok=False):
        """resp has one of statuses (libmicrohttpd's own answers) or, when closed_ok, the
        connection was closed; never a success; nothing changed."""
        if resp is None:
            if not closed_ok:
                self.problems.append("%s: connection closed without an answer" % what)
        elif resp.status not in statuses:
            self.problems.append("%s: status %d, expected %r: %r" %
                                 (what, resp.status, statuses, resp.body[:200]))
        self._after(what)

    def ok(self, what, resp, status):
        """An input that is valid however odd: answered status; the caller knows what changes."""
        if resp is None or resp.status != status:
            self.problems.append("%s: expected %d, got %r" %
                                 (what, status, resp and (resp.status, resp.body[:200])))
        self.before = state()

    def done(self):
        check(not self.problems, "%d hostile inputs misbehaved:\n  %s" %
              (len(self.problems), "\n  ".join(self.problems)))


def raw(data, method=None, timeout=10):
    try:
        return R.raw(data, timeout=timeout, method=method or data.split(b" ", 1)[0].decode(
            "latin-1", "replace"))
    except (ConnectionResetError, BrokenPipeError):
        return None
    except socket.timeout:
        raise TestFailure("no answer and no close within %d s to %r" % (timeout, data[:80]))


def head(method, path, token=None, extra=b"", body=b""):
    h = b"%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" % (method, path)
    if token:
        h += b"Authorization: Bearer %s\r\n" % token.encode()
    return h + extra + b"\r\n" + body


def post_json(body, query="", token=INGEST_TOKEN):
    if isinstance(body, str):
        body = body.encode()
    return R.request("POST", "/api/v1/inferences" + query, body,
                     {"Content-Type": "application/json"}, token)


def ensure_rows():
    while R.health()["db"]["rows"] < 2:
        R.ingest({"result": {"classification": {"seed": 0.5}}})


def newest_id():
    return state()[1]


# ---------------------------------------------------------------- path traversal -----------


TRAVERSALS = [
    b"/../secret.txt", b"/../../../../../../etc/passwd", b"/%2e%2e/secret.txt",
    b"/%2E%2E/%2e%2E/etc/passwd", b"/..%2fsecret.txt", b"/%2e%2e%2fsecret.txt",
    b"/%252e%252e/secret.txt", b"/%252e%252e%252fsecret.txt", b"/..\\secret.txt",
    b"/%5c..%5csecret.txt", b"/..%5csecret.txt", b"/%00/../secret.txt", b"/index.html%00.txt",
    b"/index.html%00", b"/.%2e/secret.txt", b"/./../secret.txt", b"//etc/passwd",
    b"/index.html/../../secret.txt", b"/%2e%2e/config.json", b"/..;/secret.txt",
    b"/%c0%ae%c0%ae/secret.txt", b"/%e0%80%ae%e0%80%ae/secret.txt", b"/..%c0%afsecret.txt",
]


def test_traversal_static_files():
    with open(R.dir + "/secret.txt", "w") as f:
        f.write(SECRET)
    c = Cases()
    for p in TRAVERSALS:
        for method in (b"GET", b"HEAD"):
            r = raw(head(method, p))
            what = "%s %r" % (method.decode(), p)
            if r is not None and (SECRET.encode() in r.body or b"root:" in r.body or
                                  ADMIN_TOKEN.encode() in r.body):
                c.problems.append("%s served a file outside web_root" % what)
            if method == b"HEAD":
                c.status(what, r, (400, 404))
            else:
                c.error(what, r, (404, 400), None)
    c.done()


def test_traversal_api_ids():
    ensure_rows()
    ident = newest_id().encode()
    tails = [b"..", b"%2e%2e", b"..%2fhealth", b"%2e%2e%2f%2e%2e%2fmetrics", b"%252e%252e",
             b"..\\..\\health", b"%5c..%5c", b"%00", ident + b"%00", ident + b"%2500",
             ident + b"/..", ident + b"/../image", ident + b"/image/..", ident + b"/image%00",
             ident + b"/thumbnail%2f..", b"..%2f" + ident + b"/image", ident + b"/.",
             ident + b"%2f..%2f..", ident + b"\\", ident + b"/", b"./" + ident,
             b"%2e/" + ident + b"/image", ident[:-1] + b"%2e", ident + b"%20"]
    c = Cases()
    for t in tails:
        p = b"/api/v1/inferences/" + t
        c.error("GET %r" % p, raw(head(b"GET", p, READ_TOKEN)), (400, 404))
        c.error("DELETE %r" % p, raw(head(b"DELETE", p, ADMIN_TOKEN)), (400, 404, 405))
    for suffix in (b"/image", b"/thumbnail"):
        for t in (b"..", b"%2e%2e", b"..%2f..", b"%00", b"\\..", b"%252e%252e"):
            p = b"/api/v1/inferences/" + t + suffix
            c.error("GET %r" % p, raw(head(b"GET", p, READ_TOKEN)), (400, 404))
    c.done()


# ---------------------------------------------------------------- SQL metacharacters -------


SQL = ["'", '"', ";", "--", "%", "_", "\\", "' OR '1'='1", "' OR 1=1 --", "1; DROP TABLE "
       "inferences", "%' --", "*", "')) UNION SELECT * FROM sqlite_master --", "\x00"]


def test_sql_metacharacters_every_parameter():
    ensure_rows()
    c = Cases()
    q = urllib.parse.quote
    for v in SQL:
        # label: an exact match, never a pattern: nothing matches
        r = R.get("/api/v1/inferences?label=" + q(v, safe=""))
        if r.status == 200:
            if r.json()["items"]:
                c.problems.append("label %r matched rows" % v)
            c._after("label %r" % v)
        else:
            c.error("label %r" % v, r, (400,), "bad_request")
        # source: '-', '_' and '.' are name characters, so "--" or "_" is just a name no row
        # has; anything else is refused
        if all(ch.isalnum() or ch in "-_." for ch in v):
            r = R.get("/api/v1/inferences?source=" + q(v, safe=""))
            if r.status != 200 or r.json()["items"]:
                c.problems.append("source %r: %r" % (v, r))
            c._after("source %r" % v)
        else:
            c.error("list source=%r" % v, R.get("/api/v1/inferences?source=" + q(v, safe="")),
                    (400,), "bad_request")
            c.error("ingest source=%r" % v, post_json('{"result":{"classification":{"a":0.5}}}',
                                                     "?source=" + q(v, safe="")), (400,),
                    "bad_request")
        for name in ("min_score", "since", "until", "limit", "cursor"):
            c.error("list %s=%r" % (name, v), R.get("/api/v1/inferences?%s=%s" %
                                                    (name, q(v, safe=""))), (400,), "bad_request")
        for name in ("since", "until", "bucket"):
            c.error("stats %s=%r" % (name, v), R.get("/api/v1/stats?%s=%s" %
                                                     (name, q(v, safe=""))), (400,), "bad_request")
        # as a query name, and as the ingest source (a valid body: nothing may be stored)
        c.error("name %r" % v, R.get("/api/v1/inferences?%s=1" % q(v, safe="")), (400,),
                "bad_request")
        for suffix, token in (("", READ_TOKEN), ("/image", READ_TOKEN),
                              ("/thumbnail", READ_TOKEN)):
            c.error("id %r%s" % (v, suffix),
                    R.get("/api/v1/inferences/" + q(v, safe="") + suffix, token), (400, 404))
        c.error("DELETE id %r" % v, R.request("DELETE", "/api/v1/inferences/" + q(v, safe=""),
                                              token=ADMIN_TOKEN), (400, 404))
    c.done()


# ---------------------------------------------------------------- numbers ------------------


BAD_INTS = ["0x10", "1.5", "1e3", " 5", "+5", "5 ", "99999999999999999999",
            "-99999999999999999999", "9223372036854775808", "NaN", "Infinity", "-", "", "5a"]


def test_numbers_in_query_parameters():
    ensure_rows()
    c = Cases()
    q = urllib.parse.quote
    for v in BAD_INTS + ["0", "-1", "1001"]:
        c.error("limit=%r" % v, R.get("/api/v1/inferences?limit=" + q(v)), (400,), "bad_request")
    for v in ["-0.1", "1.0001", "NaN", "nan", "Infinity", "inf", "-inf", "1e999", "0x1p-1",
              " 0.5", "+0.5", "0.5 ", "1e-999", "", ".5", "5.", "1e", "--1"]:
        c.error("min_score=%r" % v, R.get("/api/v1/inferences?min_score=" + q(v)), (400,),
                "bad_request")
    for v in ["-0", "0", "1", "0.5", "5e-1"]:
        c.ok("min_score=%r" % v, R.get("/api/v1/inferences?min_score=" + q(v)), 200)
    for name in ("since", "until"):
        for v in BAD_INTS + ["2026-13-01T00:00:00Z", "2026-01-01T00:00:00", "-2026-01-01T00:00Z"]:
            if v == "":
                continue
            c.error("list %s=%r" % (name, v), R.get("/api/v1/inferences?%s=%s" % (name, q(v))),
                    (400,), "bad_request")
            c.error("stats %s=%r" % (name, v), R.get("/api/v1/stats?%s=%s" % (name, q(v))),
                    (400,), "bad_request")
        c.ok("%s=-5 (before 1970)" % name, R.get("/api/v1/inferences?%s=-5" % name), 200)
    for v in ["c0", "c-1", "c01", "c+1", "c 1", "c1.5", "c0x1", "C1", "c99999999999999999999",
              "c9223372036854775808", "c", "1"]:
        c.error("cursor=%r" % v, R.get("/api/v1/inferences?cursor=" + q(v)), (400,),
                "bad_request")
    for v in ["0", "-1", "1.5", "0x10", "99999999999999999999d", "1y", "+1h", " 1h", "1h ",
              "1hh", "9223372036854775807d"]:
        c.error("bucket=%r" % v, R.get("/api/v1/stats?bucket=" + q(v)), (400,), "bad_request")
    # the widest range and the smallest bucket: refused by the bucket count, not computed
    c.error("stats, 2^63 ms in 1 ms buckets",
            R.get("/api/v1/stats?since=-9223372036854775808&until=9223372036854775807&bucket=1"),
            (400,), "bad_request")
    c.done()


def doc_with(result=None, **top):
    d = {"result": result if result is not None else {"classification": {"a": 0.5}}}
    d.update(top)
    return d


def test_numbers_in_body_fields():
    ensure_rows()
    c = Cases()
    # raw JSON texts: numbers JSON cannot hold (NaN, Infinity, hex) are malformed JSON -> 400
    for text in ('{"result":{"classification":{"a":NaN}}}',
                 '{"result":{"classification":{"a":Infinity}}}',
                 '{"result":{"classification":{"a":-Infinity}}}',
                 '{"result":{"classification":{"a":0x10}}}',
                 '{"result":{"classification":{"a":.5}}}',
                 '{"result":{"classification":{"a":+1}}}',
                 '{"result":{"classification":{"a":01}}}',
                 '{"result":{"classification":{"a":-00.5}}}',
                 '{"result":{"anomaly":NaN}}',
                 '{"result":{"classification":{"a":0.5}},"ts":0x10}'):
        c.error("body %s" % text, post_json(text), (400,), "bad_request")
    # finite JSON numbers of the wrong size or kind -> 422 naming the field
    cases = [
        ('{"result":{"classification":{"a":1e999}}}', "finite"),
        ('{"result":{"classification":{"a":-1e999}}}', "finite"),
        ('{"result":{"anomaly":1e999}}', "anomaly"),
        ('{"result":{"bounding_boxes":[{"label":"a","value":0.5,"x":1e999,"y":0,'
         '"width":1,"height":1}]}}', "x"),
        ('{"result":{"freeform":[[1,2,1e999]]}}', "finite"),
        ('{"result":{"classification":{"a":0.5}},"info":{"n":1e999}}', "finite"),
        ('{"result":{"classification":{"a":0.5}},"timing":{"dsp":1e999}}', "finite"),
        ('{"result":{"classification":{"a":0.5}},"timeMs":-1e999}', "finite"),
    ]
    for ts in ("-1", "1.5", "1e999", "9007199254740993", "1e300", '"0x10"', '"1"', "true",
               "[1]", "-0.5"):
        cases.append(('{"result":{"classification":{"a":0.5}},"ts":%s}' % ts, "ts"))
    for dim in ("0", "-1", "1.5", "65536", "1e10", "1e999", '"96"', "null"):
        cases.append(('{"result":{"classification":{"a":0.5}},"model":{"width":%s,"height":'
                      '%s}}' % (dim, dim if dim != "null" else '"x"'), "model"))
    for text, field in cases:
        r = post_json(text)
        c.error("body %s" % text, r, (422,), "unprocessable")
        if r is not None and r.status == 422 and field not in r.json()["error"]["message"]:
            c.problems.append("body %s: message %r does not name %r" %
                              (text, r.json()["error"]["message"], field))
    # odd but valid: -0 is 0, ts 0 is "now", a score past 1 (regression models) is kept
    for text in ('{"result":{"classification":{"minus-zero":-0}}}',
                 '{"result":{"classification":{"a":0.5}},"ts":-0}',
                 '{"result":{"classification":{"a":0.5}},"ts":0}',
                 '{"result":{"classification":{"big":1e308}}}'):
        r = post_json(text)
        c.ok("body %s" % text, r, 201)
        if r is not None and r.status == 201:
            stored = R.get_json("/api/v1/inferences/" + r.json()["id"])
            check(stored["ts"] > 0, "ts of %s" % text)
    c.done()


def test_deep_nesting_and_duplicate_keys():
    ensure_rows()
    c = Cases()
    for depth in (1100, 5000, 100000):
        deep = '{"a":' * depth + "1" + "}" * depth
        c.error("info nested %d deep" % depth,
                post_json('{"result":{"classification":{"a":0.5}},"info":%s}' % deep),
                (400, 413, 422))
        deep = "[" * depth + "]" * depth
        c.error("freeform nested %d deep" % depth,
                post_json('{"result":{"freeform":%s}}' % deep), (400, 413, 422))
    for text in ('{"result":{"classification":{"a":0.5}},"result":{"classification":{"b":0.5}}}',
                 '{"result":{"classification":{"a":0.1,"a":0.9}}}',
                 '{"id":"%s","id":"%s","result":{"classification":{"a":0.5}}}' %
                 (new_id(), new_id()),
                 '{"result":{"classification":{"a":0.5},"classification":{"b":0.5}}}',
                 '{"result":{"classification":{"a":0.5}},"ts":1,"ts":2}',
                 '{"result":{"classification":{"a":0.5}},"model":{"width":96,"width":1}}',
                 '{"result":{"classification":{"a":0.5}},"info":{"k":1,"k":2}}',
                 '{"result":{"classification":{"a":0.5}},"info":[{"k":{"x":1,"x":1}}]}',
                 '{"c":{"a":0.5},"c":{"b":0.5}}'):
        r = post_json(text)
        c.error("duplicate keys %s" % text, r, (422,), "unprocessable")
        if r is not None and r.status == 422 and "twice" not in r.json()["error"]["message"]:
            c.problems.append("%s: message %r" % (text, r.json()["error"]["message"]))
    c.done()


# ---------------------------------------------------------------- invalid UTF-8 ------------


BAD_UTF8 = [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82",
            b"\xff", b"\x80", b"ok\xf0\x9f\x98"]  # overlong x2, surrogate, past U+10FFFF, cut


def pct(b):
    return "".join("%%%02X" % x for x in b).encode()


def test_invalid_utf8():
    ensure_rows()
    c = Cases()
    for bad in BAD_UTF8:
        label = b'{"result":{"classification":{"x' + bad + b'":0.5}}}'
        c.error("label %r" % bad, post_json(label), (400,), "bad_request")
        c.error("info %r" % bad, post_json(b'{"result":{"classification":{"a":0.5}},'
                                           b'"info":"' + bad + b'"}'), (400,), "bad_request")
        c.error("device %r" % bad, post_json(b'{"result":{"classification":{"a":0.5}},'
                                             b'"device":"' + bad + b'"}'), (400,), "bad_request")
        c.error("id %r" % bad, post_json(b'{"id":"' + bad + b'","result":{"classification":'
                                         b'{"a":0.5}}}'), (400,), "bad_request")
        # in the URL, raw and percent-encoded: answered, and the echo in the message is UTF-8
        for enc in (bad, pct(bad)):
            c.error("static path %r" % enc, raw(head(b"GET", b"/x" + enc)), (404, 400))
            c.error("id %r" % enc, raw(head(b"GET", b"/api/v1/inferences/" + enc,
                                            READ_TOKEN)), (400,))
            c.error("query name %r" % enc, raw(head(b"GET", b"/api/v1/inferences?" + enc + b"=1",
                                                    READ_TOKEN)), (400,), "bad_request")
            c.error("source %r" % enc, raw(head(b"GET", b"/api/v1/inferences?source=" + enc,
                                                READ_TOKEN)), (400,), "bad_request")
            r = raw(head(b"GET", b"/api/v1/inferences?label=" + enc, READ_TOKEN))
            if r is None or r.status != 200 or r.json()["items"]:
                c.problems.append("label filter %r: %r" % (enc, r))
        # in headers and the method
        c.error("token %r" % bad, raw(head(b"GET", b"/api/v1/inferences", None,
                                           b"Authorization: Bearer " + bad + b"\r\n")), (401,),
                "unauthorized")
        c.error("Content-Type %r" % bad,
                raw(head(b"POST", b"/api/v1/inferences", INGEST_TOKEN,
                         b"Content-Type: " + bad + b"\r\nContent-Length: 2\r\n", b"{}")), (415,),
                "unsupported_media_type")
        c.error("method %r" % bad, raw(head(b"G" + bad, b"/api/v1/health"), method="GET"),
                (405, 400))
        c.error("header value %r" % bad, raw(head(b"GET", b"/api/v1/inferences/x", READ_TOKEN,
                                                  b"X-Thing: " + bad + b"\r\n")), (400,))
    c.done()


# ---------------------------------------------------------------- request smuggling --------


DOC = b'{"result":{"classification":{"smuggled":0.5}}}'


def post_head(framing, body):
    return (b"POST /api/v1/inferences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
            INGEST_TOKEN.encode() + b"\r\nContent-Type: application/json\r\n" + framing +
            b"\r\n" + body)


def chunked(body):
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


# the request a smuggler hides after the first one: it must never run
SMUGGLED = (b"DELETE /api/v1/inferences/%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
            ADMIN_TOKEN.encode() + b"\r\nContent-Length: 0\r\n\r\n")


def test_request_smuggling():
    ensure_rows()
    c = Cases()
    ident = newest_id().encode()
    hidden = SMUGGLED % ident
    n = len(DOC)
    cases = [
        ("TE chunked + CL", b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
         chunked(DOC) + hidden),
        ("CL + TE chunked", b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n" %
         (len(chunked(DOC))), chunked(DOC)),
        ("two Content-Lengths", b"Content-Length: %d\r\nContent-Length: 0\r\n" % n, DOC + hidden),
        ("two equal Content-Lengths", b"Content-Length: %d\r\nContent-Length: %d\r\n" % (n, n),
         DOC),
        ("TE chunked, identity", b"Transfer-Encoding: chunked, identity\r\n", chunked(DOC)),
        ("TE identity", b"Transfer-Encoding: identity\r\nContent-Length: %d\r\n" % n, DOC),
        ("TE twice", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
         chunked(DOC)),
        ("TE xchunked", b"Transfer-Encoding: xchunked\r\n", chunked(DOC)),
        ("TE gzip, chunked", b"Transfer-Encoding: gzip, chunked\r\n", chunked(DOC)),
        ("space before colon", b"Transfer-Encoding : chunked\r\nContent-Length: %d\r\n" % n,
         DOC),
        ("obs-fold TE", b"Transfer-Encoding:\r\n chunked\r\nContent-Length: %d\r\n" % n,
         DOC + hidden),
        ("two Content-Types", b"Content-Length: %d\r\nContent-Type: text/plain\r\n" % n, DOC),
        ("two Authorizations", b"Content-Length: %d\r\nAuthorization: Bearer %s\r\n" %
         (n, ADMIN_TOKEN.encode()), DOC),
        ("two Hosts", b"Content-Length: %d\r\nHost: y\r\n" % n, DOC),
        ("obs-fold Content-Length", b"Content-Length:\r\n %d\r\n" % n, DOC),
        ("obs-fold Content-Type", b"Content-Length: %d\r\nContent-Type: text/plain\r\n"
         b"\t;x=1\r\n" % n, DOC),
        ("obs-fold Authorization", b"Content-Length: %d\r\nAuthorization: Bearer\r\n %s\r\n"
         % (n, ADMIN_TOKEN.encode()), DOC),
    ]
    for what, framing, body in cases:
        r = raw(post_head(framing, body), method="POST")
        c.error(what, r, (400,), "bad_request")
        if r is not None and r.headers.get("connection", "").lower() != "close":
            c.problems.append("%s: answered without Connection: close" % what)
    # libmicrohttpd's own refusals of a Content-Length it cannot read (its HTML body)
    for what, framing in (("CL +n", b"Content-Length: +%d\r\n" % n),
                          ("CL with a space", b"Content-Length: %d 5\r\n" % n),
                          ("CL overflowing", b"Content-Length: 99999999999999999999999\r\n"),
                          ("CL negative", b"Content-Length: -1\r\n"),
                          ("CL hex", b"Content-Length: 0x10\r\n")):
        c.status(what, raw(post_head(framing, DOC), method="POST"), (400, 413), closed_ok=True)
    # the same framing checks on a GET (no body route) and an unknown path
    c.error("GET with TE + CL", raw(head(b"GET", b"/api/v1/health", None,
                                         b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
                                         b"0\r\n\r\n")), (400,), "bad_request")
    c.error("unknown path with two CL", raw(head(b"GET", b"/nothing", None,
                                                 b"Content-Length: 0\r\nContent-Length: 0\r\n")),
            (400,), "bad_request")
    # a well-framed pipelined pair still works (the checks refuse only what is ambiguous)
    with R.conn() as conn:
        conn.send_raw(head(b"GET", b"/api/v1/health").replace(b"Connection: close\r\n", b"") +
                      head(b"GET", b"/api/v1/health"))
        eq(conn.read_response().status, 200, "first pipelined request")
        eq(conn.read_response().status, 200, "second pipelined request")
    c.done()


# ---------------------------------------------------------------- heads and methods --------


def test_oversized_heads_methods_and_prefaces():
    ensure_rows()
    c = Cases()
    # libmicrohttpd's own answers: head over its memory limit, URL too long, version, syntax
    c.status("huge header", raw(head(b"GET", b"/api/v1/health", None,
                                     b"X-A: " + b"a" * 100000 + b"\r\n")), (431,), True)
    c.status("10,000 headers", raw(head(b"GET", b"/api/v1/health", None, b"X-A: b\r\n" * 10000)),
             (431,), True)
    c.status("70 KB URL", raw(head(b"GET", b"/" + b"a" * 70000)), (414, 431), True)
    c.status("70 KB query", raw(head(b"GET", b"/api/v1/inferences?label=" + b"a" * 70000,
                                     READ_TOKEN)), (414, 431), True)
    c.status("HTTP/0.9", raw(b"GET /\r\n\r\n", method="GET"), (400,), True)
    c.status("HTTP/2 preface", raw(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", method="GET"), (505, 400),
             True)
    c.status("HTTP/9.9", raw(b"GET / HTTP/9.9\r\nHost: x\r\n\r\n"), (505, 400), True)
    c.status("TLS hello", raw(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40 +
                              b"\r\n\r\n", method="GET"), (400,), True)
    # a label filter just under the limit of the API (256 bytes) and far over it
    c.error("label of 300 bytes", R.get("/api/v1/inferences?label=" + "a" * 300), (400,),
            "bad_request")
    # absurd methods reach the route table: 405 with Allow (or 404 off the API), JSON
    for m in (b"FOOBAR", b"get", b"PUT", b"PATCH", b"OPTIONS", b"TRACE", b"CONNECT",
              b"PROPFIND", b"A" * 5000, b"DELETE\x01"):
        r = raw(head(m, b"/api/v1/inferences", ADMIN_TOKEN), method="GET")
        c.error("method %r" % m[:20], r, (405, 400))
        if r is not None and r.status == 405 and "allow" not in r.headers:
            c.problems.append("method %r: 405 without Allow" % m[:20])
    r = raw(head(b"TRACE", b"/", None, b"X-Secret: " + ADMIN_TOKEN.encode() + b"\r\n"))
    if r is not None and ADMIN_TOKEN.encode() in r.body:
        c.problems.append("TRACE echoed the request")
    c._after("TRACE")
    c.done()


TESTS = [test_traversal_static_files, test_traversal_api_ids,
         test_sql_metacharacters_every_parameter, test_numbers_in_query_parameters,
         test_numbers_in_body_fields, test_deep_nesting_and_duplicate_keys, test_invalid_utf8,
         test_request_smuggling, test_oversized_heads_methods_and_prefaces]

if __name__ == "__main__":
    run_tests(TESTS, shared_relay=make_relay, bind=lambda r: globals().__setitem__("R", r))
