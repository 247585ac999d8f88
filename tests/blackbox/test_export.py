# test_export.py - black-box: GET /api/v1/export streams the list filter's inferences as JSON
# (the list's views, byte for byte the same objects) or CSV (RFC 4180, spreadsheet-safe text),
# newest first, across several store pages; bad queries and tokens get the API's errors.
import csv
import io
import json

from harness import (INGEST_TOKEN, READ_TOKEN, Relay, check, eq, error_of, make_jpeg, new_id,
                     run_tests)

BASE_TS = 1_700_000_000_000
LABELS = ["cat", "dog", "a,b \"q\"", "=HYPERLINK(\"x\")"]
ROWS = 450  # more than two of the export's 200-row store pages


def seed(relay):
    """ROWS inferences: labels in turn (two of them need CSV quoting), two sources, a K-means
    anomaly on every seventh, a JPEG on every fiftieth."""
    for i in range(ROWS):
        label = LABELS[i % len(LABELS)]
        result = {"classification": {label: round(0.3 + (i % 7) / 10, 4), "other": 0.05}}
        if i % 7 == 0:
            result["anomaly"] = 3.21
        doc = {"id": new_id(), "ts": BASE_TS + i * 1000, "result": result}
        source = "?source=gate" if i % 3 == 0 else ""
        if i % 50 == 0:
            relay.ingest_multipart(doc, make_jpeg(32, 24), "image/jpeg")
        else:
            relay.ingest(doc, query=source)


def export(relay, query):
    r = relay.get("/api/v1/export?" + query)
    eq(r.status, 200, "export %s: %r" % (query, r.body[:300]))
    check("content-length" not in r.headers, "streamed, not sized: %r" % r.headers)
    eq(r.headers.get("transfer-encoding"), "chunked", "chunked transfer")
    check(r.headers.get("content-disposition", "").startswith("attachment; filename=\"ei-relay-"),
          "a file name: %r" % r.headers.get("content-disposition"))
    return r


FILTERS = ["", "label=cat", "source=gate", "label=dog&min_score=0.5",
           "since=%d&until=%d" % (BASE_TS + 100_000, BASE_TS + 250_000),
           "label=" + "%3DHYPERLINK(%22x%22)"]


def test_json_is_the_list():
    relay = R
    for f in FILTERS:
        r = export(relay, f + ("&" if f else "") + "format=json")
        eq(r.headers.get("content-type"), "application/json", "JSON type")
        got = json.loads(r.body)
        want = relay.list_all(f)
        eq(len(got), len(want), "rows for %r" % f)
        eq(got, want, "the list's views, in its order, for %r" % f)
    check(len(relay.list_all("")) == ROWS, "every row listed")
    eq(json.loads(relay.get("/api/v1/export").body), relay.list_all(""), "json is the default")


def test_csv_rows():
    relay = R
    for f in FILTERS:
        r = export(relay, f + ("&" if f else "") + "format=csv")
        eq(r.headers.get("content-type"), "text/csv; charset=utf-8", "CSV type")
        check(r.body.endswith(b"\r\n"), "CRLF line ends")
        rows = list(csv.reader(io.StringIO(r.body.decode("utf-8"), newline="")))
        head, rows = rows[0], rows[1:]
        eq(head[:4], ["id", "seq", "ts", "time"], "header")
        want = relay.list_all(f)
        eq(len(rows), len(want), "rows for %r" % f)
        for row, view in zip(rows, want):
            rec = dict(zip(head, row))
            eq(rec["id"], view["id"], "id")
            eq(int(rec["seq"]), view["seq"], "seq")
            eq(int(rec["ts"]), view["ts"], "ts")
            eq(rec["source"], view["source"], "source")
            eq(rec["kind"], view["kind"], "kind")
            top = view["top_label"]
            safe_top = "'" + top if top[0] in "=+-@" else top
            eq(rec["top_label"], safe_top, "top label, a formula made inert")
            eq(float(rec["top_score"]), view["top_score"], "top score")
            eq(rec["anomaly"] and float(rec["anomaly"]), view["anomaly"] or "", "anomaly")
            eq(json.loads(rec["result"]), view["result"], "the result as JSON text")
            image = view["image"]
            eq(rec["image_mime"], image["mime"] if image else "", "image type")
            eq(int(rec["image_bytes"]), image["bytes"] if image else 0, "image bytes")
            eq(rec["time"][:19], "2023-11-14T22:" + rec["time"][14:19], "an ISO time")


def test_refused():
    relay = R
    _, msg = error_of(relay.get("/api/v1/export?format=xml"), 400, "bad_request")
    check("'format'" in msg, msg)
    error_of(relay.get("/api/v1/export?limit=5"), 400)  # a list-only parameter
    error_of(relay.get("/api/v1/export?min_score=2"), 400)
    eq(relay.get("/api/v1/export", token=None).status, 401, "no token")
    eq(relay.get("/api/v1/export", token=INGEST_TOKEN).status, 403, "an ingest-only token")
    eq(relay.request("POST", "/api/v1/export", b"").status, 405, "POST")
    head = relay.request("HEAD", "/api/v1/export?format=csv", token=READ_TOKEN)
    eq((head.status, head.body), (200, b""), "HEAD: the headers, no rows")


R = None


def bind(relay):
    global R
    R = relay
    seed(relay)


if __name__ == "__main__":
    run_tests([test_json_is_the_list, test_csv_rows, test_refused], shared_relay=Relay, bind=bind)
