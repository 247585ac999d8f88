# test_stats_top.py - black-box: GET /api/v1/stats counts classifications by their TOP class
# (top_labels, top_totals), keeps every label's occurrences under label_occurrences, counts
# inferences without a top class (anomaly-only, empty) in no_top, filters as the live stream
# does (source, label, min_score) and buckets by inference time ts (a backfill is not "now").
import time

from harness import Relay, check, eq, error_of, new_id, run_tests

BASE_TS = 1_700_000_000_000  # 2023-11-14T22:13:20Z; t0 below is its hour
HOUR = 3_600_000
GESTURES = ("idle", "snake", "updown", "wave")


def gesture(top, score, ts):
    """A classification over the four gestures: top gets score, the others share the rest;
    idle is always the lowest (never the top class)."""
    rest = round((1 - score) / 3, 4)
    cls = {g: rest for g in GESTURES}
    cls["idle"] = round(rest / 2, 4)
    cls[top] = score
    return {"id": new_id(), "ts": ts, "result": {"classification": cls}}


def stats(r, query):
    return r.get_json("/api/v1/stats?" + query)


def total_count(points):
    return sum(p["count"] for p in points)


def test_top_class_counts():
    with Relay() as r:
        t0 = BASE_TS - BASE_TS % HOUR
        # 4 gesture classifications: wave twice, snake, updown; idle never on top
        docs = [gesture("wave", 0.9, t0 + 1000), gesture("wave", 0.7, t0 + 2000),
                gesture("snake", 0.8, t0 + HOUR + 1000), gesture("updown", 0.6, t0 + HOUR + 2000)]
        for d in docs:
            r.ingest(d, query="?source=imu")
        # no top class: an anomaly-only result and an empty box list
        r.ingest({"id": new_id(), "ts": t0 + 3000, "result": {"anomaly": 3.21}}, query="?source=imu")
        r.ingest({"id": new_id(), "ts": t0 + 4000, "result": {"bounding_boxes": []}},
                 query="?source=cam")
        # another source with boxes: two persons and a car in one, a car in another
        r.ingest({"id": new_id(), "ts": t0 + 5000, "result": {"bounding_boxes": [
            {"label": "person", "value": 0.95, "x": 1, "y": 1, "width": 5, "height": 5},
            {"label": "person", "value": 0.5, "x": 9, "y": 9, "width": 5, "height": 5},
            {"label": "car", "value": 0.6, "x": 20, "y": 1, "width": 5, "height": 5}]}},
            query="?source=cam")
        r.ingest({"id": new_id(), "ts": t0 + 6000, "result": {"bounding_boxes": [
            {"label": "car", "value": 0.4, "x": 20, "y": 1, "width": 5, "height": 5}]}},
            query="?source=cam")

        doc = stats(r, "since=%d&until=%d&bucket=1h" % (t0, t0 + 2 * HOUR))
        eq(doc["inferences"], 8, "inferences")
        eq(doc["no_top"], 2, "anomaly-only and empty have no top class")
        eq(doc["top_totals"], {"idle": 0, "snake": 1, "updown": 1, "wave": 2, "person": 1,
                               "car": 1}, "top_totals")
        eq(sum(doc["top_totals"].values()) + doc["no_top"], doc["inferences"],
           "each inference counted once by top class")
        eq(doc["top_labels"]["idle"], [], "idle is never the top class: no bucket")
        eq(total_count(doc["label_occurrences"]["idle"]), 4,
           "idle occurs in every gesture inference")
        for g in GESTURES:
            eq(total_count(doc["label_occurrences"][g]), 4, "occurrences of %s" % g)
        eq(doc["occurrences_total"], 4 * 4 + 2 + 1, "occurrences_total (a label once per "
           "inference: the best box of each label)")
        # per bucket: wave's 2 in the first hour with their mean top score; snake in the second
        eq([(p["t"], p["count"]) for p in doc["top_labels"]["wave"]], [(t0, 2)], "wave buckets")
        check(abs(doc["top_labels"]["wave"][0]["mean_score"] - 0.8) < 1e-9,
              "wave mean top score %r" % doc["top_labels"]["wave"][0]["mean_score"])
        eq([(p["t"], p["count"]) for p in doc["top_labels"]["snake"]], [(t0 + HOUR, 1)],
           "snake bucket")
        eq(doc["top_labels"]["car"][0]["count"], 1, "car is top only where no person is")

        # the live stream's filter: source, label (any of its labels), min_score (top score)
        q = "since=%d&until=%d&bucket=1h" % (t0, t0 + 2 * HOUR)
        doc = stats(r, q + "&source=cam")
        eq((doc["inferences"], doc["no_top"]), (3, 1), "source=cam")
        eq(doc["top_totals"], {"person": 1, "car": 1}, "source=cam top_totals")
        doc = stats(r, q + "&label=car")
        eq(doc["inferences"], 2, "label=car: both box inferences")
        eq(doc["top_totals"], {"person": 1, "car": 1}, "label=car top_totals")
        doc = stats(r, q + "&label=idle&source=imu")
        eq(doc["top_totals"]["idle"], 0, "label=idle still counts idle 0 by top class")
        eq(doc["inferences"], 4, "label=idle: the gesture inferences")
        doc = stats(r, q + "&min_score=0.75")
        eq(doc["top_totals"], {"person": 1, "snake": 1, "wave": 1, "idle": 0, "updown": 0,
                               "car": 0}, "min_score on the top score")
        eq(doc["no_top"], 0, "no top score: not past a min_score")
        for bad in ("source=a%20b", "label=", "min_score=2"):
            error_of(r.get("/api/v1/stats?" + bad), 400, "bad_request")


def test_last_hour_by_inference_time():
    with Relay() as r:
        now = int(time.time() * 1000)
        # a backfill of 7 days ago posted now, and two inferences of now
        for d in range(3):
            r.ingest(gesture("wave", 0.9, now - 7 * 24 * HOUR + d * 1000))
        r.ingest(gesture("snake", 0.9, now - 60_000))
        r.ingest(gesture("wave", 0.8, now - 30_000))
        doc = stats(r, "since=%d&until=%d&bucket=1h" % (now - HOUR, now + 1000))
        eq(doc["inferences"], 2, "the backfill is not in the last hour")
        eq(doc["top_totals"], {"idle": 0, "snake": 1, "updown": 0, "wave": 1}, "last hour")
        doc = stats(r, "since=%d&until=%d&bucket=1d" % (now - 8 * 24 * HOUR, now + 1000))
        eq(doc["top_totals"]["wave"], 4, "the week holds the backfill")
        # after a restart the store still answers the same
        r.restart()
        doc = stats(r, "since=%d&until=%d&bucket=1h" % (now - HOUR, now + 1000))
        eq(doc["inferences"], 2, "last hour after a restart")


TESTS = [test_top_class_counts, test_last_hour_by_inference_time]

if __name__ == "__main__":
    run_tests(TESTS)
