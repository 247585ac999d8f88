# test_forward_format.py - black-box: the forwarder's messages as the Edge Impulse compatibility
# contract states them (DESIGN.md), byte order of keys included, against a real TLS mosquitto:
# the start message, inference messages (classification, boxes, with and without image), the
# publish rules (empty result, threshold filter on the true mean, iotcore_backoff) and their
# per-inference decision in the REST API, and the metrics message.
import base64
import re

from harness import Relay, check, eq, make_jpeg, new_id, now_ms, run_tests
from harness.mqtt import (Broker, device_name, jpeg_b64_ok, make_pki, relay_mqtt_config,
                          require_tools, topic, wait_publish)

require_tools()
PKI = make_pki()
BROKER = None
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CONTRACT_KEYS = ["time_ms", "info", "inference_count", "total_inferences", "id", "ts", "image",
                 "c", "box", "grid", "freeform", "s3_bucket", "s3_prefix"]
WAIT_S = 15


def check_inference_keys(msg, result_key, image, info):
    """The payload's top-level keys, in byte order: the contract's sequence, then only extra
    keys that are not contract keys. Returns the pairs as a dict."""
    pairs = msg.pairs()
    keys = [k for k, _ in pairs]
    want = ["time_ms"] + (["info"] if info else []) + \
        ["inference_count", "total_inferences", "id", "ts"] + (["image"] if image else []) + \
        [result_key, "s3_bucket", "s3_prefix"]
    eq(keys[:len(want)], want, "inference message key order (payload %r)" % msg.payload[:300])
    extra = keys[len(want):]
    for k in extra:
        check(k not in CONTRACT_KEYS, "contract key %r repeated or out of order: %r" % (k, keys))
    eq(len(set(keys)), len(keys), "duplicate keys in %r" % keys)
    doc = msg.json()
    check(isinstance(doc["time_ms"], (int, float)) and doc["time_ms"] >= 0, "time_ms %r" %
          doc["time_ms"])
    for k in ("inference_count", "total_inferences"):
        check(isinstance(doc[k], int) and doc[k] >= 0, "%s %r" % (k, doc[k]))
    check(UUID_RE.match(doc["id"]), "id %r" % doc["id"])
    check(isinstance(doc["ts"], int), "ts %r" % doc["ts"])
    eq(doc["s3_bucket"], "unset", "s3_bucket without S3 configured")
    eq(doc["s3_prefix"], "unset", "s3_prefix without S3 configured")
    return doc


def by_id(msgs, ident):
    return [m for m in msgs if m.json().get("id") == ident]


def relay_for(name, **cfg):
    return Relay(overrides=relay_mqtt_config(BROKER, name, **cfg))


def test_start_message():
    name = device_name("start")
    sub = BROKER.subscriber(topic(name, "#"))
    try:
        t0 = now_ms()
        with relay_for(name):
            m = sub.wait_count(topic(name, "command/output"), 1, WAIT_S)[0]
            pairs = m.pairs()
            eq([k for k, _ in pairs], ["result"], "start message top level")
            res = pairs[0][1]
            eq([k for k, _ in res], ["status", "ts", "id"], "start message result keys")
            res = dict(res)
            eq(res["status"], "started", "status")
            check(isinstance(res["ts"], int) and t0 - 5000 <= res["ts"] <= now_ms() + 5000,
                  "start ts %r not now" % res["ts"])
            check(UUID_RE.match(res["id"]), "start id %r" % res["id"])
            check(not m.retain, "start message retained")
    finally:
        sub.close()


def test_classification_and_boxes_messages():
    name = device_name("fmt")
    out = topic(name, "inference/output")
    sub = BROKER.subscriber(topic(name, "#"))
    try:
        with relay_for(name) as r:
            ident, ts = new_id(), now_ms() - 1000
            r.ingest_multipart({"id": ident, "ts": ts, "info": "cam-1",
                                "result": {"classification": {"cat": 0.75, "dog": 0.25}},
                                "timing": {"dsp": 3, "classification": 4, "anomaly": 0}},
                               make_jpeg(64, 48), "image/jpeg")
            box_id = new_id()
            boxes = [{"label": "car", "value": 0.8, "x": 1, "y": 2, "width": 10, "height": 12},
                     {"label": "bus", "value": 0.6, "x": 20, "y": 4, "width": 8, "height": 9}]
            r.ingest({"id": box_id, "ts": ts + 1, "result": {"bounding_boxes": boxes}})
            msgs = sub.wait_count(out, 2, WAIT_S)
            eq(len(by_id(msgs, ident)), 1, "messages for the classification")
            m = by_id(msgs, ident)[0]
            check(not m.retain, "inference message retained")
            eq(m.qos, 1, "delivered at QoS 1")
            doc = check_inference_keys(m, "c", image=False, info=True)
            eq(doc["id"], ident, "id")
            eq(doc["ts"], ts, "ts")
            eq(doc["c"], {"cat": 0.75, "dog": 0.25}, "c")
            eq(doc["info"], "cam-1", "info")
            check("image" not in doc, "image sent with publish_inference_base64_image no")

            mb = by_id(msgs, box_id)
            eq(len(mb), 1, "messages for the boxes")
            bdoc = check_inference_keys(mb[0], "box", image=False, info=False)
            eq(len(bdoc["box"]), 2, "boxes")
            for got, want in zip(bdoc["box"], boxes):
                for k in ("label", "value", "x", "y", "width", "height"):
                    eq(got.get(k), want[k], "box %s" % k)
            # seq order on the wire
            eq([m.json()["id"] for m in msgs[:2]], [ident, box_id], "publish order")
            wait_publish(r, ident, "published", WAIT_S)
            wait_publish(r, box_id, "published", WAIT_S)
    finally:
        sub.close()


def test_image_included_when_enabled():
    name = device_name("img")
    out = topic(name, "inference/output")
    sub = BROKER.subscriber(topic(name, "#"))
    try:
        with relay_for(name, publish_inference_base64_image="yes") as r:
            ident = new_id()
            jpg = make_jpeg(96, 64, noise=4)
            r.ingest_multipart({"id": ident, "result": {"classification": {"a": 0.5,
                                                                           "b": 0.5}}},
                               jpg, "image/jpeg")
            no_img = new_id()
            r.ingest({"id": no_img, "result": {"classification": {"a": 0.1, "b": 0.9}}})
            msgs = sub.wait_count(out, 2, WAIT_S)
            doc = check_inference_keys(by_id(msgs, ident)[0], "c", image=True, info=False)
            check(jpeg_b64_ok(doc["image"]), "image is not plain base64 JPEG: %r" %
                  doc["image"][:60])
            raw = base64.b64decode(doc["image"])
            check(len(raw) > 100, "image too small to be the picture")
            # an inference without an image has no image key
            check_inference_keys(by_id(msgs, no_img)[0], "c", image=False, info=False)
    finally:
        sub.close()


def test_empty_result_stored_not_published():
    name = device_name("empty")
    out = topic(name, "inference/output")
    sub = BROKER.subscriber(topic(name, "#"))
    try:
        with relay_for(name) as r:
            empty = new_id()
            r.ingest({"id": empty, "result": {"bounding_boxes": []}})
            marker = new_id()
            r.ingest({"id": marker, "result": {"classification": {"x": 1.0}}})
            # published in seq order: once the later marker is there, the empty one is not
            msgs = sub.wait_count(out, 1, WAIT_S, pred=lambda m: m.json().get("id") == marker)
            eq(by_id(sub.on(out), empty), [], "empty result published")
            check(msgs, "marker")
            eq(r.get_json("/api/v1/inferences/" + empty)["id"], empty, "empty result stored")
            eq(wait_publish(r, empty, "skipped", 1), "skipped", "empty result decision")
    finally:
        sub.close()


def boxes_of(values):
    return {"bounding_boxes": [{"label": "p", "value": v, "x": i, "y": 0, "width": 4,
                                "height": 4} for i, v in enumerate(values)]}


def test_threshold_filter_true_mean():
    name = device_name("thr")
    out = topic(name, "inference/output")
    sub = BROKER.subscriber(topic(name, "#"))
    try:
        # 50.0 is a percentage: 0.50; ge on the true mean of the confidences
        with relay_for(name, enable_threshold_limit="yes", default_threshold=50.0,
                       threshold_criteria="ge") as r:
            cases = [([0.45, 0.45, 0.9], True),   # mean 0.60
                     ([0.2, 0.7], False),          # mean 0.45 (max 0.7 would pass)
                     ([0.5, 0.5], True),           # mean 0.50, ge
                     ([0.1, 0.3, 0.95], False)]    # mean 0.45
            ids = []
            for vals, _ in cases:
                ident = new_id()
                ids.append(ident)
                r.ingest({"id": ident, "result": boxes_of(vals)})
            marker = new_id()
            r.ingest({"id": marker, "result": boxes_of([0.99])})
            sub.wait_count(out, 1, WAIT_S, pred=lambda m: m.json().get("id") == marker)
            got = [m.json()["id"] for m in sub.on(out)]
            for ident, (vals, passes) in zip(ids, cases):
                eq(ident in got, passes, "published(%r)" % vals)
                eq(wait_publish(r, ident, ("published",) if passes else ("filtered",), WAIT_S),
                   "published" if passes else "filtered", "decision of %r" % vals)
    finally:
        sub.close()


def test_iotcore_backoff_every_third():
    name = device_name("backoff")
    out = topic(name, "inference/output")
    sub = BROKER.subscriber(topic(name, "#"))
    try:
        with relay_for(name, iotcore_backoff=3) as r:
            ids = []
            for i in range(9):
                ident = new_id()
                ids.append(ident)
                r.ingest({"id": ident, "result": {"classification": {"n": 0.5 + i / 100}}})
            decisions = [wait_publish(r, i, ("pending", "published", "skipped"), WAIT_S)
                         for i in ids]
            chosen = [k for k, d in enumerate(decisions) if d != "skipped"]
            eq(len(chosen), 3, "published of 9 with iotcore_backoff 3 (%r)" % decisions)
            eq([b - a for a, b in zip(chosen, chosen[1:])], [3, 3], "every third: %r" % chosen)
            msgs = sub.wait_count(out, 3, WAIT_S)
            eq([m.json()["id"] for m in msgs], [ids[k] for k in chosen], "published ids")
            for k in chosen:
                wait_publish(r, ids[k], "published", WAIT_S)
    finally:
        sub.close()


def test_metrics_message():
    name = device_name("metrics")
    mt = topic(name, "model/metrics")
    sub = BROKER.subscriber(topic(name, "#"))
    try:
        with relay_for(name, metrics_sleeptime_ms=1000) as r:
            for v in (0.6, 0.8):
                r.ingest({"result": {"classification": {"a": v, "b": 1 - v}}})
            m = sub.wait_count(mt, 1, 10)[0]
            pairs = m.pairs()
            eq([k for k, _ in pairs], ["mean_confidence", "standard_deviation",
                                       "confidence_trend", "details", "ts", "id"],
               "metrics keys")
            doc = dict(pairs)
            check(doc["confidence_trend"] in ("INCREASING", "FLAT", "DECREASING"),
                  "confidence_trend %r" % doc["confidence_trend"])
            eq([k for k, _ in doc["details"]], ["n", "sum_confidences",
                                                "sum_confidences_squared"], "details keys")
            det = dict(doc["details"])
            check(isinstance(det["n"], int) and det["n"] >= 0, "n %r" % det["n"])
            for k in ("mean_confidence", "standard_deviation"):
                check(isinstance(doc[k], (int, float)), "%s %r" % (k, doc[k]))
            if det["n"] > 0:
                mean = det["sum_confidences"] / det["n"]
                check(abs(doc["mean_confidence"] - mean) < 1e-6,
                      "mean_confidence %r vs sum/n %r" % (doc["mean_confidence"], mean))
            check(isinstance(doc["ts"], int), "ts %r" % doc["ts"])
            check(UUID_RE.match(doc["id"]), "id %r" % doc["id"])
            # periodic: a second one follows within a few periods
            sub.wait_count(mt, 2, 10)
    finally:
        sub.close()


def main():
    global BROKER
    with Broker(PKI) as b:
        BROKER = b
        run_tests([test_start_message, test_classification_and_boxes_messages,
                   test_image_included_when_enabled, test_empty_result_stored_not_published,
                   test_threshold_filter_true_mean, test_iotcore_backoff_every_third,
                   test_metrics_message])


if __name__ == "__main__":
    main()
