# test_ingest.py - black-box: every accepted ingest shape over POST /api/v1/inferences gives
# 201 + Location + the inference view, reads back equal, and retries are idempotent.
import base64
import json
import os

from harness import (ADMIN_TOKEN, INGEST_TOKEN, READ_TOKEN, Relay, check, eq, fixtures_dir,
                     make_jpeg, make_jpeg_of_size, make_png, new_id, run_tests)

VIEW_KEYS = {"id", "seq", "ts", "device", "source", "kind", "result", "timing", "info",
             "top_label", "top_score", "anomaly", "model", "image"}

R = None  # one relay for the file: every test uses fresh ids, none depends on the row count


def approx(a, b, tol=1e-6):
    return a is not None and b is not None and abs(float(a) - float(b)) <= tol


def check_view(v, kind=None):
    check(isinstance(v, dict), "view is not an object: %r" % (v,))
    missing = VIEW_KEYS - set(v)
    check(not missing, "view lacks %s: %r" % (sorted(missing), v))
    check(isinstance(v["seq"], int) and v["seq"] > 0, "seq %r" % v["seq"])
    check(isinstance(v["ts"], int) and v["ts"] > 1_500_000_000_000, "ts %r" % v["ts"])
    check(isinstance(v["device"], str) and v["device"], "device %r" % v["device"])
    check(isinstance(v["result"], dict), "result %r" % v["result"])
    if kind is not None:
        eq(v["kind"], kind, "kind")
    return v


def post_and_check(doc, kind, query="", ident=None):
    """Ingests doc, checks the 201 answer and that GET returns the same view."""
    r = R.ingest(doc, query=query)
    v = check_view(r.json(), kind)
    if ident is not None:
        eq(v["id"], ident, "id echoed")
    loc = r.headers.get("location", "")
    check(loc.endswith("/api/v1/inferences/" + v["id"]), "Location %r" % loc)
    check(r.headers.get("content-type", "").startswith("application/json"), "content-type")
    got = R.get_json("/api/v1/inferences/" + v["id"])
    eq(got, v, "GET equals the 201 view")
    return v


def test_classification():
    ident = new_id()
    ts = 1_764_000_000_123
    doc = {"id": ident, "ts": ts,
           "result": {"classification": {"cat": 0.25, "dog": 0.70, "bird": 0.05}},
           "timing": {"dsp": 3, "classification": 11, "anomaly": 0},
           "info": "camera 1"}
    v = post_and_check(doc, "classification", ident=ident)
    eq(v["ts"], ts, "client ts kept")
    eq(v["top_label"], "dog", "top_label")
    check(approx(v["top_score"], 0.70), "top_score %r" % v["top_score"])
    eq(v["source"], "http", "default source")
    eq(set(v["result"]["classification"]), {"cat", "dog", "bird"}, "labels in result")
    check(approx(v["result"]["classification"]["cat"], 0.25), "cat score kept")
    eq(v["image"], None, "no image")
    eq(v["anomaly"], None, "no anomaly")
    check(isinstance(v["timing"], dict) and v["timing"].get("classification") == 11,
          "timing %r" % v["timing"])
    eq(v["info"], "camera 1", "info kept")


def test_classification_with_anomaly():
    doc = {"result": {"classification": {"ok": 0.9, "broken": 0.1}, "anomaly": 1.25}}
    v = post_and_check(doc, "classification")
    eq(v["top_label"], "ok", "top_label")
    check(approx(v["anomaly"], 1.25), "anomaly %r" % v["anomaly"])


def test_object_detection():
    boxes = [{"label": "ball", "value": 0.61, "x": 10, "y": 12, "width": 16, "height": 8},
             {"label": "cup", "value": 0.93, "x": 40, "y": 44, "width": 10, "height": 12},
             {"label": "ball", "value": 0.77, "x": 70, "y": 5, "width": 9, "height": 9}]
    v = post_and_check({"result": {"bounding_boxes": boxes}}, "object-detection")
    eq(v["top_label"], "cup", "top_label")
    check(approx(v["top_score"], 0.93), "top_score %r" % v["top_score"])
    got = v["result"]["bounding_boxes"]
    eq(len(got), 3, "boxes kept")
    eq([b["label"] for b in got], ["ball", "cup", "ball"], "box order kept")
    eq((got[1]["x"], got[1]["y"], got[1]["width"], got[1]["height"]), (40, 44, 10, 12), "box")


def test_object_detection_with_model_size():
    doc = {"result": {"bounding_boxes": [{"label": "a", "value": 0.5, "x": 1, "y": 2,
                                          "width": 3, "height": 4}]},
           "model": {"width": 96, "height": 96}}
    v = post_and_check(doc, "object-detection")
    eq(v["model"], {"width": 96, "height": 96}, "model size")


def test_empty_boxes():
    v = post_and_check({"result": {"bounding_boxes": []}}, "empty")
    eq(v["top_label"], None, "no top label")


def test_visual_anomaly_grid():
    grid = [{"label": "anomaly", "value": 3.5, "x": 0, "y": 0, "width": 32, "height": 32},
            {"label": "anomaly", "value": 7.25, "x": 32, "y": 0, "width": 32, "height": 32}]
    doc = {"result": {"anomaly": 7.25, "visual_anomaly_grid": grid,
                      "visual_anomaly_max": 7.25, "visual_anomaly_mean": 5.375}}
    v = post_and_check(doc, "visual-anomaly")
    check(approx(v["anomaly"], 7.25), "anomaly %r" % v["anomaly"])
    eq(len(v["result"]["visual_anomaly_grid"]), 2, "grid cells kept")


def test_anomaly_only():
    v = post_and_check({"result": {"anomaly": 0.42}}, "anomaly")
    check(approx(v["anomaly"], 0.42), "anomaly %r" % v["anomaly"])
    eq(v["top_label"], None, "no label")


def test_freeform():
    ff = [[0.1, 0.2, 0.3], [4.0]]
    v = post_and_check({"result": {"freeform": ff}}, "freeform")
    got = v["result"]["freeform"]
    eq(len(got), 2, "freeform tensors")
    check(all(approx(a, b) for a, b in zip(got[0], ff[0])), "freeform values %r" % got)


def iot_message(ident, key, value, ts=None, image=None):
    m = {"time_ms": 7, "info": "model v3", "inference_count": 4, "total_inferences": 9,
         "id": ident, "ts": ts or 1_764_000_100_000}
    if image is not None:
        m["image"] = image
    m[key] = value
    m["s3_bucket"] = "unset"
    m["s3_prefix"] = "unset"
    return m


def test_iotcore_c():
    ident = new_id()
    v = post_and_check(iot_message(ident, "c", {"on": 0.2, "off": 0.8}), "classification",
                       ident=ident)
    eq(v["top_label"], "off", "top_label")
    eq(v["ts"], 1_764_000_100_000, "ts from message")
    check(approx(v["result"]["classification"]["on"], 0.2), "c -> classification")


def test_iotcore_box():
    ident = new_id()
    box = [{"label": "person", "value": 0.88, "x": 1, "y": 2, "width": 30, "height": 40}]
    v = post_and_check(iot_message(ident, "box", box), "object-detection", ident=ident)
    eq(v["top_label"], "person", "top_label")
    eq(v["result"]["bounding_boxes"][0]["width"], 30, "box -> bounding_boxes")


def test_iotcore_grid():
    ident = new_id()
    grid = [{"label": "anomaly", "value": 2.5, "x": 0, "y": 0, "width": 8, "height": 8}]
    v = post_and_check(iot_message(ident, "grid", grid), "visual-anomaly", ident=ident)
    eq(len(v["result"]["visual_anomaly_grid"]), 1, "grid -> visual_anomaly_grid")


def test_iotcore_freeform():
    v = post_and_check(iot_message(new_id(), "freeform", [[1.5, 2.5]]), "freeform")
    eq(len(v["result"]["freeform"]), 1, "freeform kept")


def check_image(v, mime, w, h, nbytes):
    img = v["image"]
    check(isinstance(img, dict), "image %r" % img)
    eq(img["mime"], mime, "image mime")
    eq((img["width"], img["height"]), (w, h), "image size")
    eq(img["bytes"], nbytes, "image bytes")
    eq(img["url"], "/api/v1/inferences/%s/image" % v["id"], "image url")
    eq(img["thumbnail_url"], "/api/v1/inferences/%s/thumbnail" % v["id"], "thumbnail url")
    r = R.get(img["url"])
    eq(r.status, 200, "image GET")
    eq(r.headers.get("content-type", "").split(";")[0], mime, "image content-type")
    return r.body


def test_multipart_jpeg():
    jpg = make_jpeg(320, 240, noise=6, seed=3)
    r = R.ingest_multipart({"result": {"classification": {"a": 0.6, "b": 0.4}}}, jpg,
                           "image/jpeg")
    v = check_view(r.json(), "classification")
    check(r.headers.get("location", "").endswith("/api/v1/inferences/" + v["id"]), "Location")
    body = check_image(v, "image/jpeg", 320, 240, len(jpg))
    eq(body, jpg, "stored JPEG bytes")
    eq(R.get_json("/api/v1/inferences/" + v["id"]), v, "GET equals the 201 view")


def test_multipart_50k_jpeg():
    # the benchmark's image size: a noisy ~50 KB JPEG
    jpg, w, h = make_jpeg_of_size(50_000, seed=11)
    check(45_000 <= len(jpg) <= 55_000, "generator size %d" % len(jpg))
    v = check_view(R.ingest_multipart({"result": {"classification": {"big": 0.9}}}, jpg,
                                      "image/jpeg").json(), "classification")
    eq(check_image(v, "image/jpeg", w, h, len(jpg)), jpg, "50 KB JPEG bytes")
    th = R.get(v["image"]["thumbnail_url"])
    eq(th.status, 200, "thumbnail of the 50 KB JPEG")


def test_multipart_png():
    png = make_png(77, 33, seed=4)
    r = R.ingest_multipart({"result": {"bounding_boxes": [
        {"label": "x", "value": 0.7, "x": 1, "y": 1, "width": 5, "height": 5}]}}, png,
        "image/png")
    v = check_view(r.json(), "object-detection")
    body = check_image(v, "image/png", 77, 33, len(png))
    eq(body, png, "stored PNG bytes")


def test_multipart_iotcore_message():
    jpg = make_jpeg(64, 64)
    ident = new_id()
    r = R.ingest_multipart(iot_message(ident, "c", {"p": 0.51, "q": 0.49}), jpg, "image/jpeg")
    v = check_view(r.json(), "classification")
    eq(v["id"], ident, "id")
    check_image(v, "image/jpeg", 64, 64, len(jpg))


def test_base64_image_in_json():
    jpg = make_jpeg(48, 40, seed=5)
    doc = {"result": {"classification": {"a": 1.0}}, "image": base64.b64encode(jpg).decode()}
    v = post_and_check(doc, "classification")
    eq(check_image(v, "image/jpeg", 48, 40, len(jpg)), jpg, "decoded image bytes")


def test_base64_png_in_iotcore_message():
    png = make_png(20, 10, gray=True)
    m = iot_message(new_id(), "c", {"a": 0.3, "b": 0.7}, image=base64.b64encode(png).decode())
    v = post_and_check(m, "classification")
    eq(check_image(v, "image/png", 20, 10, len(png)), png, "decoded PNG bytes")


def test_data_url_image():
    jpg = make_jpeg(40, 24, seed=6)
    url = "data:image/jpeg;base64," + base64.b64encode(jpg).decode()
    v = post_and_check({"result": {"classification": {"z": 0.5}}, "image": url},
                       "classification")
    eq(check_image(v, "image/jpeg", 40, 24, len(jpg)), jpg, "data: URL image bytes")


def test_source_query():
    v = post_and_check({"result": {"classification": {"s": 0.5}}}, "classification",
                       query="?source=cam-7")
    eq(v["source"], "cam-7", "source override")


def test_admin_may_ingest():
    r = R.ingest({"result": {"classification": {"adm": 0.5}}}, token=ADMIN_TOKEN)
    check_view(r.json(), "classification")


def test_idempotent_retry():
    ident = new_id()
    doc = {"id": ident, "result": {"classification": {"retry": 0.66}}}
    first = R.ingest(doc, expect=201).json()
    # an ingest-only token learns that its retry landed, and nothing of the stored row
    eq(R.ingest(doc, expect=200).json(), {"id": ident}, "ingest-token retry")
    # a token that may read gets the stored view
    second = R.ingest(doc, token=ADMIN_TOKEN, expect=200).json()
    eq(second["id"], ident, "retry id")
    eq(second["seq"], first["seq"], "retry keeps seq")
    eq(second["ts"], first["ts"], "retry keeps ts")
    # a retry with a different body is still the same stored inference
    third = R.ingest({"id": ident, "result": {"classification": {"other": 0.1}}},
                     token=ADMIN_TOKEN, expect=200).json()
    eq(third["seq"], first["seq"], "retry with other body keeps seq")
    eq(third["top_label"], "retry", "stored inference unchanged")
    listed = [it for it in R.list_all("label=retry") if it["id"] == ident]
    eq(len(listed), 1, "listed once")
    eq(len([it for it in R.list_all() if it["id"] == ident]), 1, "listed once (no filter)")


def test_seq_increases():
    a = R.ingest({"result": {"classification": {"s1": 0.5}}}).json()
    b = R.ingest({"result": {"classification": {"s2": 0.5}}}).json()
    check(b["seq"] > a["seq"], "seq %d then %d" % (a["seq"], b["seq"]))
    check(a["id"] != b["id"], "generated ids differ")


def test_keepalive_and_chunked_upload():
    with R.conn() as c:
        ids = []
        for i in range(5):
            body = json.dumps({"result": {"classification": {"ka": 0.1 * i}}}).encode()
            r = c.request("POST", "/api/v1/inferences", body,
                          {"Authorization": "Bearer " + INGEST_TOKEN,
                           "Content-Type": "application/json"})
            eq(r.status, 201, "keep-alive ingest %d: %r" % (i, r.body[:200]))
            ids.append(r.json()["id"])
        # a chunked request body on the same connection
        body = json.dumps({"result": {"classification": {"chunked": 0.8}}}).encode()
        chunked = b""
        for k in range(0, len(body), 7):
            part = body[k:k + 7]
            chunked += b"%x\r\n" % len(part) + part + b"\r\n"
        chunked += b"0\r\n\r\n"
        r = c.request("POST", "/api/v1/inferences", chunked,
                      {"Authorization": "Bearer " + INGEST_TOKEN,
                       "Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        eq(r.status, 201, "chunked ingest: %r" % r.body[:200])
        eq(r.json()["top_label"], "chunked", "chunked body parsed")
        r = c.request("GET", "/api/v1/inferences/" + ids[0],
                      headers={"Authorization": "Bearer " + READ_TOKEN})
        eq(r.status, 200, "GET on the same connection")
    eq(len(set(ids)), 5, "distinct ids")


def test_runner_fixture_results():
    path = os.path.join(fixtures_dir(), "runner-ws")
    n = 0
    for name in sorted(os.listdir(path)):
        if not name.endswith(".jsonl"):
            continue
        with open(os.path.join(path, name)) as f:
            for line in f:
                msg = json.loads(line)["msg"]
                if msg.get("type") != "classification":
                    continue
                v = R.ingest({"result": msg["result"]}).json()
                res = msg["result"]
                if "classification" in res:
                    eq(v["kind"], "classification", name)
                    best = max(res["classification"].items(), key=lambda kv: kv[1])
                    eq(v["top_label"], best[0], name + " top_label")
                    check(approx(v["top_score"], best[1]), name + " top_score")
                elif res["bounding_boxes"]:
                    eq(v["kind"], "object-detection", name)
                    best = max(res["bounding_boxes"], key=lambda b: b["value"])
                    eq(v["top_label"], best["label"], name + " top_label")
                else:
                    eq(v["kind"], "empty", name)
                    eq(v["top_label"], None, name + " top_label")
                n += 1
    eq(n, 12, "fixture results ingested")


TESTS = [test_classification, test_classification_with_anomaly, test_object_detection,
         test_object_detection_with_model_size, test_empty_boxes, test_visual_anomaly_grid,
         test_anomaly_only, test_freeform, test_iotcore_c, test_iotcore_box, test_iotcore_grid,
         test_iotcore_freeform, test_multipart_jpeg, test_multipart_50k_jpeg, test_multipart_png,
         test_multipart_iotcore_message, test_base64_image_in_json,
         test_base64_png_in_iotcore_message, test_data_url_image, test_source_query,
         test_admin_may_ingest, test_idempotent_retry, test_seq_increases,
         test_keepalive_and_chunked_upload, test_runner_fixture_results]

if __name__ == "__main__":
    run_tests(TESTS, shared_relay=Relay, bind=lambda r: globals().__setitem__("R", r))
