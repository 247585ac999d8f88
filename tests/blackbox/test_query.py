# test_query.py - black-box: listing with filters and cursors, delete, image and thumbnail
# endpoints, stats, health and /metrics. Each test starts its own relay so row counts are exact.
import datetime
import re
import urllib.parse

from harness import (ADMIN_TOKEN, Relay, check, eq, error_of, jpeg_dims, make_jpeg, make_png,
                     new_id, run_tests)

BASE_TS = 1_700_000_000_000  # whole second, 2023-11-14T22:13:20Z


def seed(relay, n, label_of=lambda i: "cat" if i % 2 == 0 else "dog",
         score_of=lambda i: 0.05 + 0.09 * i, ts_of=lambda i: BASE_TS + i * 1000, query=""):
    """Ingests n single-label classifications in ts order; returns their views."""
    out = []
    for i in range(n):
        doc = {"id": new_id(), "ts": ts_of(i),
               "result": {"classification": {label_of(i): round(score_of(i), 4)}}}
        out.append(relay.ingest(doc, query=query).json())
    return out


def list_ids(relay, query):
    return [it["id"] for it in relay.get_json("/api/v1/inferences?" + query)["items"]]


def newest_first(views):
    return [v["id"] for v in sorted(views, key=lambda v: -v["seq"])]


def test_pagination_cursor():
    with Relay() as r:
        views = seed(r, 10)
        seen, cursor, pages = [], None, 0
        while True:
            q = {"limit": "3"}
            if cursor:
                q["cursor"] = cursor
            doc = r.get_json("/api/v1/inferences?" + urllib.parse.urlencode(q))
            check(len(doc["items"]) <= 3, "page larger than limit")
            seen += doc["items"]
            pages += 1
            cursor = doc["next"]
            if cursor is None:
                break
            check(isinstance(cursor, str) and cursor, "next %r" % cursor)
            check(pages < 10, "too many pages")
        eq([it["id"] for it in seen], newest_first(views), "all rows once, newest first")
        seqs = [it["seq"] for it in seen]
        eq(seqs, sorted(seqs, reverse=True), "seq descending")
        eq(len(set(seqs)), 10, "no duplicates")
        check(pages in (4, 5), "pages for 10 rows at limit 3: %d" % pages)
        # default limit is 50 and the last page has next null
        doc = r.get_json("/api/v1/inferences")
        eq(len(doc["items"]), 10, "default limit covers 10")
        eq(doc["next"], None, "no next page")


def test_pagination_with_inserts_between_pages():
    with Relay() as r:
        old = seed(r, 10)
        seen = []
        doc = r.get_json("/api/v1/inferences?limit=3")
        seen += doc["items"]
        new = []
        while doc["next"]:
            new += seed(r, 2, label_of=lambda i: "new")  # newer rows arrive between pages
            doc = r.get_json("/api/v1/inferences?" +
                             urllib.parse.urlencode({"limit": 3, "cursor": doc["next"]}))
            seen += doc["items"]
        ids = [it["id"] for it in seen]
        eq(len(ids), len(set(ids)), "no duplicates across pages")
        old_seen = [i for i in ids if i in {v["id"] for v in old}]
        eq(old_seen, newest_first(old), "every old row once, newest first, no gaps")
        check(all(i not in {v["id"] for v in new} for i in ids[3:]),
              "rows newer than the cursor do not appear on later pages")
        eq(len(r.list_all()), 10 + len(new), "all rows stored")


def test_filters():
    with Relay() as r:
        views = seed(r, 10)  # cat on even i, dog on odd; score 0.05 + 0.09 i
        cats = [v for i, v in enumerate(views) if i % 2 == 0]
        eq(list_ids(r, "label=cat"), newest_first(cats), "label=cat")
        eq(list_ids(r, "label=cow"), [], "unknown label")
        # min_score without label: top score; with label: that label's score
        hi = [v for i, v in enumerate(views) if round(0.05 + 0.09 * i, 4) >= 0.5]
        eq(list_ids(r, "min_score=0.5"), newest_first(hi), "min_score=0.5")
        hi_cats = [v for v in hi if v["top_label"] == "cat"]
        eq(list_ids(r, "label=cat&min_score=0.5"), newest_first(hi_cats), "label+min_score")
        eq(list_ids(r, "min_score=0"), newest_first(views), "min_score=0")
        eq(list_ids(r, "min_score=1"), [], "min_score=1")
        # since/until in epoch ms: ts in [since, until)
        mid = views[3:6]
        eq(list_ids(r, "since=%d&until=%d" % (BASE_TS + 3000, BASE_TS + 6000)),
           newest_first(mid), "since/until ms")
        eq(list_ids(r, "since=%d" % (BASE_TS + 9000)), [views[9]["id"]], "since inclusive")
        eq(list_ids(r, "until=%d" % (BASE_TS + 1000)), [views[0]["id"]], "until exclusive")

        def rfc(ms, tz=datetime.timezone.utc, frac=False):
            d = datetime.datetime.fromtimestamp(ms / 1000, tz)
            s = d.strftime("%Y-%m-%dT%H:%M:%S") + (".%03d" % (ms % 1000) if frac else "")
            return s + ("Z" if tz == datetime.timezone.utc else d.strftime("%z")[:3] + ":" +
                        d.strftime("%z")[3:])

        q = urllib.parse.urlencode({"since": rfc(BASE_TS + 3000), "until": rfc(BASE_TS + 6000)})
        eq(list_ids(r, q), newest_first(mid), "since/until RFC 3339 Z")
        plus1 = datetime.timezone(datetime.timedelta(hours=1))
        q = urllib.parse.urlencode({"since": rfc(BASE_TS + 3000, plus1, True),
                                    "until": rfc(BASE_TS + 6000, plus1, True)})
        eq(list_ids(r, q), newest_first(mid), "since/until RFC 3339 +01:00 with fraction")
        q = urllib.parse.urlencode({"since": rfc(BASE_TS + 3500, frac=True)})
        eq(list_ids(r, q), newest_first(views[4:]), "RFC 3339 with milliseconds")
        # source filter
        other = seed(r, 3, label_of=lambda i: "cat", query="?source=camA")
        eq(list_ids(r, "source=camA"), newest_first(other), "source=camA")
        eq(list_ids(r, "source=http"), newest_first(views), "source=http")
        eq(list_ids(r, "source=camA&label=cat&limit=2"), newest_first(other)[:2],
           "source+label+limit")


def test_bad_params_400():
    with Relay() as r:
        seed(r, 2)
        for q, name in (("limit=abc", "limit"), ("limit=0", "limit"), ("limit=1001", "limit"),
                        ("limit=-1", "limit"), ("min_score=2", "min_score"),
                        ("min_score=abc", "min_score"), ("min_score=-0.1", "min_score"),
                        ("since=yesterday", "since"), ("until=2023-13-45T99:00:00Z", "until"),
                        ("cursor=%21%21not-a-cursor", "cursor"), ("foo=1", "foo"),
                        ("limit=10&bogus=x", "bogus")):
            code, msg = error_of(r.get("/api/v1/inferences?" + q), 400, "bad_request")
            check(name in msg, "400 for %r does not name %r: %r" % (q, name, msg))
        for q, name in (("bucket=abc", "bucket"), ("bucket=0", "bucket"),
                        ("since=0&until=%d&bucket=1" % (10**12), "bucket"),
                        ("since=x", "since")):
            code, msg = error_of(r.get("/api/v1/stats?" + q), 400, "bad_request")
            check(name in msg, "stats 400 for %r does not name %r: %r" % (q, name, msg))
        eq(len(r.list_all()), 2, "rows unchanged")


def test_delete():
    with Relay() as r:
        views = seed(r, 3)
        victim = views[1]["id"]
        eq(r.request("DELETE", "/api/v1/inferences/" + victim, token=ADMIN_TOKEN).status, 204,
           "delete")
        error_of(r.get("/api/v1/inferences/" + victim), 404, "not_found")
        error_of(r.request("DELETE", "/api/v1/inferences/" + victim, token=ADMIN_TOKEN), 404,
                 "not_found")
        eq([it["id"] for it in r.list_all()], [views[2]["id"], views[0]["id"]], "others kept")
        eq(r.health()["db"]["rows"], 2, "health rows after delete")


def test_image_and_thumbnail():
    with Relay({"thumbnail_px": 160}) as r:
        jpg = make_jpeg(640, 480, noise=4, seed=9)
        v = r.ingest_multipart({"result": {"classification": {"img": 0.5}}}, jpg,
                               "image/jpeg").json()
        img = r.get(v["image"]["url"])
        eq(img.status, 200, "image")
        eq(img.headers.get("content-type", "").split(";")[0], "image/jpeg", "image type")
        eq(img.body, jpg, "image bytes")
        th = r.get(v["image"]["thumbnail_url"])
        eq(th.status, 200, "thumbnail: %r" % th.body[:200])
        eq(th.headers.get("content-type", "").split(";")[0], "image/jpeg", "thumbnail type")
        dims = jpeg_dims(th.body)
        check(dims is not None, "thumbnail is not a JPEG with a SOF marker")
        w, h = dims
        check(0 < w <= 160 and 0 < h <= 160, "thumbnail %dx%d exceeds 160" % (w, h))
        check(max(w, h) >= 150, "thumbnail %dx%d much smaller than asked" % (w, h))
        check(abs(w / h - 640 / 480) < 0.05, "thumbnail aspect %dx%d" % (w, h))
        th2 = r.get(v["image"]["thumbnail_url"])
        eq(th2.body, th.body, "thumbnail cached (same bytes)")
        # PNG: image served as PNG, thumbnail as JPEG
        png = make_png(100, 300, seed=2)
        v = r.ingest_multipart({"result": {"classification": {"img": 0.5}}}, png,
                               "image/png").json()
        img = r.get("/api/v1/inferences/%s/image" % v["id"])
        eq(img.headers.get("content-type", "").split(";")[0], "image/png", "png type")
        eq(img.body, png, "png bytes")
        th = r.get("/api/v1/inferences/%s/thumbnail" % v["id"])
        eq(th.status, 200, "png thumbnail")
        w, h = jpeg_dims(th.body)
        check(h <= 160 and w <= 160 and h >= 150, "png thumbnail %dx%d" % (w, h))
        # a small image is not enlarged
        small = make_jpeg(40, 30)
        v = r.ingest_multipart({"result": {"classification": {"img": 0.5}}}, small,
                               "image/jpeg").json()
        th = r.get("/api/v1/inferences/%s/thumbnail" % v["id"])
        eq(th.status, 200, "small thumbnail")
        w, h = jpeg_dims(th.body)
        check(w <= 40 and h <= 30, "small image enlarged to %dx%d" % (w, h))
        # no image: both 404
        v = r.ingest({"result": {"classification": {"noimg": 0.5}}}).json()
        error_of(r.get("/api/v1/inferences/%s/image" % v["id"]), 404, "not_found")
        error_of(r.get("/api/v1/inferences/%s/thumbnail" % v["id"]), 404, "not_found")
        # list views carry image metadata
        items = r.list_all("label=img")
        eq(len(items), 3, "image rows")
        check(all(it["image"] and it["image"]["width"] > 0 for it in items), "image meta")
        eq(r.health()["db"]["images"], 3, "health images")


def test_stats():
    with Relay() as r:
        # 6 rows in minute 0, 4 in minute 1 (60 s apart), cat/dog alternating
        ts_list = [BASE_TS + i * 5000 for i in range(6)] + \
                  [BASE_TS + 60000 + i * 5000 for i in range(4)]
        views = seed(r, 10, ts_of=lambda i: ts_list[i], score_of=lambda i: 0.5 + 0.04 * i)
        seed(r, 1, ts_of=lambda i: BASE_TS + 10 * 60000)  # outside the range below
        q = "since=%d&until=%d&bucket=1m" % (BASE_TS, BASE_TS + 120000)
        doc = r.get_json("/api/v1/stats?" + q)
        eq(doc["since"], BASE_TS, "since")
        eq(doc["until"], BASE_TS + 120000, "until")
        eq(doc["bucket_ms"], 60000, "bucket_ms")
        eq(doc["occurrences_total"], 10, "total")
        eq(doc["inferences"], 10, "inferences")
        eq(set(doc["label_occurrences"]), {"cat", "dog"}, "labels")
        counts = {lab: sum(b["count"] for b in bs) for lab, bs in doc["label_occurrences"].items()}
        eq(counts, {"cat": 5, "dog": 5}, "counts per label")
        for lab, bs in doc["label_occurrences"].items():
            for b in bs:  # bucket starts: aligned to since or to the epoch
                check(BASE_TS - 60000 < b["t"] < BASE_TS + 120000, "bucket t %r" % b["t"])
        # minute 0 cat rows: i = 0, 2, 4 -> scores 0.5, 0.58, 0.66
        cat0 = [b for b in doc["label_occurrences"]["cat"] if b["t"] <= BASE_TS < b["t"] + 60000]
        eq(len(cat0), 1, "one cat bucket for minute 0")
        eq(cat0[0]["count"], 3, "cat count in minute 0")
        check(abs(cat0[0]["mean_score"] - (0.5 + 0.58 + 0.66) / 3) < 1e-6,
              "mean_score %r" % cat0[0]["mean_score"])
        doc = r.get_json("/api/v1/stats?since=%d&until=%d&bucket=1h" %
                         (BASE_TS, BASE_TS + 3600000))
        eq(doc["bucket_ms"], 3600000, "1h bucket")
        eq(doc["occurrences_total"], 11, "total over the hour")
        doc = r.get_json("/api/v1/stats?since=%d&until=%d&bucket=30000" %
                         (BASE_TS, BASE_TS + 120000))
        eq(doc["bucket_ms"], 30000, "bucket in ms")
        eq(sum(b["count"] for bs in doc["label_occurrences"].values() for b in bs), 10, "ms bucket sum")
        # default range is the last 24 h: these old rows are not in it
        doc = r.get_json("/api/v1/stats")
        eq(doc["occurrences_total"], 0, "default range excludes 2023 rows")
        eq(doc["bucket_ms"], 3600000, "default bucket 1h")


def test_health():
    with Relay() as r:
        h = r.health()
        eq(h["status"], "ok", "status")
        eq(h["version"], "0.1.0", "version")
        check(isinstance(h["uptime_s"], (int, float)) and h["uptime_s"] >= 0, "uptime")
        eq(h["db"]["path"], r.db_path, "db path")
        eq(h["db"]["rows"], 0, "rows at start")
        eq(h["db"]["images"], 0, "images at start")
        check(h["db"]["bytes"] > 0, "db bytes")
        check(isinstance(h["queue_depth"], int) and h["queue_depth"] >= 0, "queue_depth")
        check(isinstance(h["ingest_queue"], int) and h["ingest_queue"] >= 0, "ingest_queue")
        check(isinstance(h["device"], str) and h["device"], "device")
        seed(r, 4)
        r.ingest_multipart({"result": {"classification": {"i": 0.5}}}, make_jpeg(16, 16),
                           "image/jpeg")
        h = r.health()
        eq(h["db"]["rows"], 5, "rows")
        eq(h["db"]["images"], 1, "images")
        v = r.ingest({"result": {"classification": {"d": 0.5}}}).json()
        eq(v["device"], h["device"], "inference device is the relay's device")


METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(\s+\d+)?$')


def parse_metrics(text):
    samples, types = {}, {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("# TYPE "):
            parts = line.split()
            check(len(parts) == 4 and parts[3] in ("counter", "gauge", "histogram", "summary",
                                                   "untyped"), "bad TYPE line %r" % line)
            types[parts[2]] = parts[3]
            continue
        if line.startswith("#"):
            continue
        m = METRIC_LINE.match(line)
        check(m is not None, "bad metric line %r" % line)
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return samples, types


def test_metrics():
    with Relay() as r:
        views = seed(r, 5)
        dup = {"id": views[0]["id"], "result": {"classification": {"x": 0.5}}}
        eq(r.ingest(dup, expect=None).status, 200, "duplicate")
        resp = r.get("/metrics")
        eq(resp.status, 200, "metrics")
        ct = resp.headers.get("content-type", "")
        check(ct.startswith("text/plain") and "0.0.4" in ct, "metrics content type %r" % ct)
        text = resp.body.decode()
        check("# HELP ei_relay_" in text, "HELP lines")
        samples, types = parse_metrics(text)
        for name in ("ei_relay_inferences_stored_total", "ei_relay_cache_rows",
                     "ei_relay_cache_bytes", "ei_relay_db_file_bytes", "ei_relay_outbox_depth",
                     "ei_relay_commits_total", "ei_relay_duplicates_total",
                     "ei_relay_retention_deleted_total", "ei_relay_uptime_seconds"):
            check(name in types, "no # TYPE for %s" % name)
            check(name in samples, "no sample for %s" % name)
        eq(types["ei_relay_inferences_stored_total"], "counter", "stored_total type")
        eq(types["ei_relay_cache_rows"], "gauge", "cache_rows type")
        eq(samples["ei_relay_inferences_stored_total"], 5, "stored total")
        eq(samples["ei_relay_cache_rows"], 5, "cache rows")
        eq(samples["ei_relay_duplicates_total"], 1, "duplicates")
        check(samples["ei_relay_commits_total"] >= 1, "commits")
        check(samples["ei_relay_db_file_bytes"] > 0, "db file bytes")
        ok = [v for k, v in samples.items()
              if k.startswith("ei_relay_ingest_requests_total") and 'status="201"' in k]
        eq(ok, [5.0], "ingest_requests_total{status=\"201\"}")
        check(any(k.startswith("ei_relay_http_requests_total{") and 'code="' in k
                  for k in samples), "http_requests_total by code")
        r.request("DELETE", "/api/v1/inferences/" + views[1]["id"], token=ADMIN_TOKEN)
        samples, _ = parse_metrics(r.get("/metrics").body.decode())
        eq(samples["ei_relay_cache_rows"], 4, "cache rows after delete")
        eq(samples["ei_relay_inferences_stored_total"], 5, "stored total is a counter")


TESTS = [test_pagination_cursor, test_pagination_with_inserts_between_pages, test_filters,
         test_bad_params_400, test_delete, test_image_and_thumbnail, test_stats, test_health,
         test_metrics]

if __name__ == "__main__":
    run_tests(TESTS)
