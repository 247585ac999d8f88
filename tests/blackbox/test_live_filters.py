# test_live_filters.py - black-box: filters of the live stream (labels, kinds, sources, min score),
# given in the auth message or by subscribe, and a subscribe replacing the auth filter. Helpers in
# harness/live.py. Every wait is a protocol round trip or a bounded read; nothing sleeps.
from harness import Relay, check, eq, run_tests
from harness.live import EMPTY, binder, boxes, cls, expect_type, grid, live, run_filter_case

R = None  # the relay the file shares (bound by run_tests)


FILTER_CASES = [
    ("labels",
     {"labels": ["fl-person", "fl-car"]},
     [(cls({"fl-apple": 0.9, "fl-pear": 0.1}), None, False),
      (boxes(("fl-person", 0.42)), None, True),
      (cls({"fl-car": 0.3, "fl-bus": 0.7}), None, True),          # not the top label: still has it
      (grid("fl-anomaly", 3.0), None, False),
      (grid("fl-car", 2.0), None, True),                            # a grid label counts
      (EMPTY, None, False),
      (boxes(("fl-dog", 0.9), ("fl-person", 0.2)), "camera", True),
      (cls({"fl-persons": 0.9}), None, False)],                     # exact label, not a prefix
     (boxes(("fl-car", 0.8)), None)),
    ("min_score",
     {"min_score": 0.6},
     [(cls({"fm-a": 0.5, "fm-b": 0.5}), None, False),
      (cls({"fm-a": 0.6, "fm-b": 0.4}), None, True),                # >= is inclusive
      (cls({"fm-a": 0.95}), None, True),
      (EMPTY, None, False),                                         # no score, min_score > 0
      (boxes(("fm-x", 0.59), ("fm-y", 0.3)), None, False),
      (boxes(("fm-x", 0.2), ("fm-y", 0.61)), None, True),           # top of the boxes
      (cls({"fm-a": 0.5999}), "camera", False)],
     (cls({"fm-z": 0.99}), None)),
    ("sources",
     {"sources": ["camera", "mcu"]},
     [(cls({"fs-a": 0.9}), None, False),                            # default source http
      (cls({"fs-a": 0.9}), "camera", True),
      (cls({"fs-a": 0.1}), "mcu", True),
      (cls({"fs-a": 0.9}), "camera2", False),
      (EMPTY, "mcu", True),
      (cls({"fs-a": 0.9}), "Camera", False)],
     (cls({"fs-z": 0.5}), "mcu")),
    ("combined",
     {"labels": ["fc-person"], "min_score": 0.6, "sources": ["camera"]},
     [(boxes(("fc-person", 0.9)), "camera", True),
      (boxes(("fc-person", 0.9)), None, False),
      (boxes(("fc-person", 0.5)), "camera", False),
      (boxes(("fc-dog", 0.9)), "camera", False),
      (cls({"fc-person": 0.3, "fc-cat": 0.7}), "camera", True),     # min_score is the top score
      (cls({"fc-person": 0.3, "fc-cat": 0.5}), "camera", False),
      (boxes(("fc-person", 0.65)), "mcu", False)],
     (boxes(("fc-person", 0.7)), "camera")),
]


def check_subscribed_echo(m, flt):
    check(isinstance(m.get("filter"), dict), "subscribed.filter: %r" % (m,))
    f = m["filter"]
    for k in ("labels", "sources"):
        if k in flt:
            eq(f.get(k), flt[k], "subscribed.filter.%s" % k)
        else:
            check(f.get(k) in (None, []), "subscribed.filter.%s without a constraint: %r" %
                  (k, f.get(k)))
    if "min_score" in flt:
        check(abs(f.get("min_score") - flt["min_score"]) < 1e-9, "subscribed.filter.min_score")
    else:
        check(f.get("min_score") in (None, 0, 0.0), "min_score without a constraint: %r" %
              (f.get("min_score"),))


def test_filters_via_auth():
    for name, flt, docs, marker in FILTER_CASES:
        ws, _ = live(filter=flt)
        try:
            run_filter_case(ws, name + " (auth)", docs, marker)
        finally:
            ws.abort()


def test_filters_via_subscribe():
    ws, _ = live()
    try:
        for name, flt, docs, marker in FILTER_CASES:
            ws.send_json(dict({"type": "subscribe"}, **flt))
            check_subscribed_echo(expect_type(ws, "subscribed"), flt)
            run_filter_case(ws, name + " (subscribe)", docs, marker)
        # an empty subscribe lifts every constraint
        ws.send_json({"type": "subscribe"})
        check_subscribed_echo(expect_type(ws, "subscribed"), {})
        everything = [(cls({"fe-a": 0.1}), None, True), (EMPTY, "zzz", True),
                      (boxes(("fe-b", 0.01)), "mcu", True)]
        run_filter_case(ws, "none", everything, (cls({"fe-z": 0.2}), None))
        # empty lists and min_score 0 are no constraint either
        flt = {"labels": [], "sources": [], "min_score": 0}
        ws.send_json(dict({"type": "subscribe"}, **flt))
        expect_type(ws, "subscribed")
        run_filter_case(ws, "empty lists", everything, (EMPTY, None))
    finally:
        ws.abort()


def test_subscribe_replaces_the_auth_filter():
    ws, _ = live(filter={"labels": ["rp-a"]})
    try:
        ws.send_json({"type": "subscribe", "labels": ["rp-b"]})
        expect_type(ws, "subscribed")
        run_filter_case(ws, "replaced", [(cls({"rp-a": 0.9}), None, False),
                                         (cls({"rp-b": 0.9}), None, True)],
                        (cls({"rp-b": 0.5}), None))
    finally:
        ws.abort()


TESTS = [
    test_filters_via_auth,
    test_filters_via_subscribe,
    test_subscribe_replaces_the_auth_filter,
]

if __name__ == "__main__":
    run_tests(TESTS, shared_relay=Relay, bind=binder(globals()))
