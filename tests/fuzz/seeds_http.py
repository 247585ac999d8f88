#!/usr/bin/env python3
# seeds_http.py - writes the hand-made seeds of fuzz_http (corpus/http/): one file per request
# (or pipelined requests) a client sends on one connection, for every route, method and role,
# and the hostile-input list of tests/blackbox/test_hostile.py (traversal, SQL metacharacters,
# hostile numbers, invalid UTF-8, duplicate keys, request smuggling, odd heads). The tokens and
# the stored id are fuzz_http.c's. Run from anywhere; rewrites only the files it names.
import base64
import os
import struct
import zlib

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "http")
READ = b"fuzz-read-token-0123456789"
INGEST = b"fuzz-ingest-token-0123456789"
ADMIN = b"fuzz-admin-token-0123456789"
ID = b"00000000-0000-4000-8000-000000000001"
DOC = b'{"result":{"classification":{"cat":0.9,"dog":0.1}},"timing":{"dsp":1}}'


def req(method, path, token=None, headers=b"", body=None, close=True):
    h = b"%s %s HTTP/1.1\r\nHost: x\r\n" % (method, path)
    if token:
        h += b"Authorization: Bearer " + token + b"\r\n"
    if close:
        h += b"Connection: close\r\n"
    if body is not None and b"Content-Length" not in headers and b"Transfer-Encoding" not in \
            headers:
        h += b"Content-Length: %d\r\n" % len(body)
    return h + headers + b"\r\n" + (body or b"")


def post(body, ctype=b"application/json", query=b"", token=INGEST, extra=b""):
    return req(b"POST", b"/api/v1/inferences" + query, token,
               b"Content-Type: " + ctype + b"\r\n" + extra, body)


def png():
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xffffffff)
    raw = b"".join(b"\x00" + b"\x80\x20\x20" * 4 for _ in range(4))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def multipart(doc, image, boundary=b"fuzzb"):
    out = b"--" + boundary + b'\r\nContent-Disposition: form-data; name="json"\r\n' \
        b"Content-Type: application/json\r\n\r\n" + doc + b"\r\n"
    if image is not None:
        out += b"--" + boundary + b'\r\nContent-Disposition: form-data; name="image"; ' \
            b'filename="i.png"\r\nContent-Type: image/png\r\n\r\n' + image + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


def seeds():
    s = {}
    # every route, method and role
    for name, path in (("health", b"/api/v1/health"), ("metrics", b"/metrics"),
                       ("stats", b"/api/v1/stats?bucket=1h"), ("forwarder", b"/api/v1/forwarder"),
                       ("sources", b"/api/v1/sources"), ("list", b"/api/v1/inferences?limit=5"),
                       ("get", b"/api/v1/inferences/" + ID),
                       ("image", b"/api/v1/inferences/" + ID + b"/image"),
                       ("thumbnail", b"/api/v1/inferences/" + ID + b"/thumbnail"),
                       ("index", b"/"), ("static", b"/index.html"), ("missing", b"/nothing.js")):
        s["get-" + name] = req(b"GET", path, READ)
        s["head-" + name] = req(b"HEAD", path, READ)
    s["get-unauthorized"] = req(b"GET", b"/api/v1/inferences")
    s["get-bad-token"] = req(b"GET", b"/api/v1/inferences", b"not-a-token")
    s["delete-forbidden"] = req(b"DELETE", b"/api/v1/inferences/" + ID, READ)
    s["delete-stored"] = req(b"DELETE", b"/api/v1/inferences/" + ID, ADMIN)
    s["list-filters"] = req(b"GET", b"/api/v1/inferences?label=cat&min_score=0.5&since=0&until="
                            b"2026-01-01T00:00:00Z&source=fuzz&limit=2&cursor=c5", READ)
    s["post-json"] = post(DOC)
    s["post-id-retry"] = post(b'{"id":"' + ID + b'","result":{"classification":{"a":0.5}}}')
    s["post-iot"] = post(b'{"time_ms":3,"c":{"a":0.5},"info":"x"}')
    s["post-boxes"] = post(b'{"result":{"bounding_boxes":[{"label":"a","value":0.8,"x":1,"y":2,'
                           b'"width":3,"height":4}]},"model":{"width":96,"height":96}}')
    s["post-freeform"] = post(b'{"result":{"freeform":[[1,2],[3]]}}')
    s["post-image-b64"] = post(b'{"result":{"classification":{"a":0.5}},"image":"data:image/png;'
                               b'base64,' + base64.b64encode(png()) + b'"}')
    s["post-multipart"] = post(multipart(DOC, png()), b"multipart/form-data; boundary=fuzzb")
    s["post-chunked"] = post(b"%x\r\n%s\r\n0\r\n\r\n" % (len(DOC), DOC),
                             extra=b"Transfer-Encoding: chunked\r\n")
    s["post-expect"] = post(DOC, extra=b"Expect: 100-continue\r\n")
    s["pipelined"] = (req(b"GET", b"/api/v1/health", close=False) +
                      post(DOC, extra=b"Connection: keep-alive\r\n").replace(
                          b"Connection: close\r\n", b"") +
                      req(b"GET", b"/api/v1/inferences?limit=1", READ))
    # traversal
    for i, p in enumerate((b"/../secret.txt", b"/%2e%2e/%2e%2e/etc/passwd", b"/..%2fx",
                           b"/%252e%252e/x", b"/..\\x", b"/%00/../x", b"/index.html%00.txt",
                           b"//etc/passwd", b"/%c0%ae%c0%ae/x")):
        s["traversal-static-%d" % i] = req(b"GET", p)
    for i, t in enumerate((b"..", b"%2e%2e", ID + b"%00", ID + b"/../image", ID + b"%2fimage",
                           b"..%2f" + ID + b"/image", ID + b"\\")):
        s["traversal-id-%d" % i] = req(b"GET", b"/api/v1/inferences/" + t, READ)
    # SQL metacharacters and numbers in parameters
    for i, q in enumerate((b"label=%27%20OR%20%271%27%3D%271", b"source=%27%3B--", b"label=%25",
                           b"label=_", b"min_score=0x1p-1", b"limit=%2B5", b"limit=99999999999999999999",
                           b"since=1e3", b"cursor=c-1", b"cursor=c99999999999999999999",
                           b"min_score=NaN", b"until=-5", b"limit=1&limit=2", b"nope=1")):
        s["query-%d" % i] = req(b"GET", b"/api/v1/inferences?" + q, READ)
    s["stats-range"] = req(b"GET", b"/api/v1/stats?since=-9223372036854775808&until="
                           b"9223372036854775807&bucket=1", READ)
    s["stats-bucket"] = req(b"GET", b"/api/v1/stats?bucket=99999999999999999999d", READ)
    # exports: both formats, filters, refused parameters
    for i, q in enumerate((b"", b"format=csv", b"format=json&label=a", b"format=csv&source=http",
                           b"format=xml", b"format=csv&limit=5", b"format=csv&since=1&until=0")):
        s["export-%d" % i] = req(b"GET", b"/api/v1/export?" + q, READ)
    s["head-export"] = req(b"HEAD", b"/api/v1/export?format=csv", READ)
    s["stats-filter"] = req(b"GET", b"/api/v1/stats?source=cam&label=%27%3B--&min_score=0.5"
                            b"&bucket=1h", READ)
    # body numbers, nesting, duplicates, UTF-8
    for i, b in enumerate((b'{"result":{"classification":{"a":1e999}}}',
                           b'{"result":{"classification":{"a":NaN}}}',
                           b'{"result":{"classification":{"a":01}}}',
                           b'{"result":{"classification":{"a":0.5}},"ts":-1}',
                           b'{"result":{"classification":{"a":0.5}},"ts":1.5}',
                           b'{"result":{"classification":{"a":0.5}},"model":{"width":1e10}}',
                           b'{"result":{"classification":{"a":0.5}},"info":{"n":1e999}}',
                           b'{"result":{"classification":{"a":-0}},"ts":-0}',
                           b'{"result":{"classification":{"a":0.1,"a":0.9}}}',
                           b'{"result":{},"result":{"classification":{"a":1}}}',
                           b'{"result":{"classification":{"a":0.5}},"info":' + b"[" * 1100 +
                           b"]" * 1100 + b"}",
                           b'{"result":{"classification":{"\xc0\xaf":0.5}}}',
                           b'{"result":{"classification":{"\xed\xa0\x80":0.5}}}',
                           b'{"result":{"classification":{"a":0.5}},"device":"\xe2\x82"}',
                           b'{"result":{"classification":{"a\\u0000b":0.5}}}')):
        s["body-%d" % i] = post(b)
    s["utf8-path"] = req(b"GET", b"/\xc0\xaf")
    s["utf8-method"] = req(b"G\xffT", b"/api/v1/health")
    s["utf8-ctype"] = post(DOC, b"\xff\xfe")
    # smuggling
    n = len(DOC)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (n, DOC)
    hidden = req(b"DELETE", b"/api/v1/inferences/" + ID, ADMIN, close=False)
    for name, framing, body in (
            ("te-cl", b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", chunked + hidden),
            ("cl-cl", b"Content-Length: %d\r\nContent-Length: 0\r\n" % n, DOC + hidden),
            ("te-identity", b"Transfer-Encoding: chunked, identity\r\n", chunked),
            ("te-te", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", chunked),
            ("te-space", b"Transfer-Encoding : chunked\r\nContent-Length: %d\r\n" % n, DOC),
            ("obs-fold", b"Transfer-Encoding:\r\n chunked\r\nContent-Length: %d\r\n" % n,
             DOC + hidden),
            ("cl-plus", b"Content-Length: +%d\r\n" % n, DOC),
            ("two-hosts", b"Content-Length: %d\r\nHost: y\r\n" % n, DOC)):
        s["smuggle-" + name] = (b"POST /api/v1/inferences HTTP/1.1\r\nHost: x\r\nAuthorization: "
                                b"Bearer " + INGEST + b"\r\nContent-Type: application/json\r\n" +
                                framing + b"\r\n" + body)
    # heads and methods
    s["http09"] = b"GET /\r\n\r\n"
    s["http2-preface"] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    s["http10"] = b"GET /api/v1/health HTTP/1.0\r\n\r\n"
    s["method-absurd"] = req(b"FOOBAR", b"/api/v1/inferences", ADMIN)
    s["method-options"] = req(b"OPTIONS", b"/", None)
    s["long-header"] = req(b"GET", b"/api/v1/health", None, b"X-A: " + b"a" * 9000 + b"\r\n")
    s["get-with-body"] = req(b"GET", b"/api/v1/health", None, body=b"xyz")
    s["post-too-big"] = post(b"{}", extra=b"Content-Length: 99999999\r\n")
    return s


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(OUT, name + ".http"), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(seeds()), OUT))


if __name__ == "__main__":
    main()
