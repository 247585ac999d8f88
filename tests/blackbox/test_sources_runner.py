# test_sources_runner.py - black-box tests of the "runner-ws" source: the real binary connects
# to runner_stub.RunnerStub (a stand-in for edge-impulse-linux-runner's preview WebSocket) and
# stores what the runner reports: the greeting it sends, classifications with the camera-preview
# frame sent just before each, the hello's model in GET /api/v1/sources, a runner that stops and
# comes back on the same port, bad input of every kind, and no runner at all.
import base64
import json
import random

from harness import (Relay, check, eq, free_port, jpeg_dims, make_jpeg, make_jpeg_of_size,
                     run_tests, runner_source, runner_stub, source_status, sources_cfg, wait_status,
                     wait_stored)
from harness.runner_stub import OP_BINARY, OP_CONT, OP_TEXT, RunnerStub, StubTimeout

CAM = "cam"  # the source runner_source configures unless told otherwise
WAIT_S = 20.0
RECONNECT_S = 60.0  # the relay's reconnect backoff doubles up to 30 s
GREETING = '{"type":"set-camera-preview","enabled":true,"messageId":1}'
STATUS_KEYS = {"name", "kind", "state", "last_error", "inferences", "reconnects", "backoff_ms",
               "held", "store_retries", "store_refused",
               "messages", "frames", "frames_paired", "unknown", "rejected", "model"}


# ---------------------------------------------------------------- helpers


def connect(stub, timeout=WAIT_S, greeting=True):
    """The relay's next connection to stub, after its greeting (when images are wanted)."""
    conn = stub.wait_client(timeout)
    if greeting:
        eq(conn.wait_received(1, timeout), [json.loads(GREETING)], "greeting")
        eq(conn.received_raw(), [(OP_TEXT, GREETING.encode())], "greeting, byte for byte")
    return conn


def jpeg(i, w=96, h=96):
    return make_jpeg(w, h, noise=2, seed=1000 + i)


def scores(i):
    """Distinct scores for the i-th classification, so stored rows can be told apart."""
    a = round(0.05 + (i % 17) * 0.01 + i * 1e-6, 9)
    return {"left": a, "center": 0.5, "right": round(0.5 - a, 9)}


def approx(a, b):
    return abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(b)))


def check_scores(item, expect, what):
    got = item["result"].get("classification")
    check(isinstance(got, dict) and set(got) == set(expect),
          "%s: labels %r, expected %r" % (what, got, expect))
    for k, v in expect.items():
        check(approx(got[k], v), "%s: score %s %r, sent %r" % (what, k, got[k], v))


def check_image(relay, item, img, what):
    v = item["image"]
    check(isinstance(v, dict), "%s: image %r" % (what, v))
    eq(v["mime"], "image/jpeg", what + ": image mime")
    eq(v["bytes"], len(img), what + ": image bytes")
    w, h = jpeg_dims(img)
    eq((v["width"], v["height"]), (w, h), what + ": image size")
    r = relay.get("/api/v1/inferences/%s/image" % item["id"])
    eq(r.status, 200, what + ": GET image")
    check(r.body == img, "%s: stored image differs from the frame (%d vs %d bytes)" %
          (what, len(r.body), len(img)))


def health_ok(relay):
    r = relay.request("GET", "/api/v1/health")
    eq(r.status, 200, "health status")
    eq(r.json()["status"], "ok", "health")


# ---------------------------------------------------------------- tests


def test_greeting_status_and_model():
    with RunnerStub(hello="classification") as stub:
        with Relay(sources_cfg([runner_source(stub.port)])) as r:
            conn = connect(stub)
            eq(conn.path, "/", "request path")
            eq(conn.headers.get("host"), "127.0.0.1:%d" % stub.port, "Host header")
            st = wait_status(r, CAM, "hello and ack processed",
                             lambda s: s["state"] == "running" and s["messages"] >= 2)
            eq(set(st), STATUS_KEYS, "status fields")
            eq(st["kind"], "runner-ws", "kind")
            eq(st["last_error"], None, "last_error")
            eq((st["messages"], st["inferences"], st["frames"], st["frames_paired"],
                st["unknown"], st["rejected"], st["reconnects"], st["backoff_ms"]),
               (2, 0, 0, 0, 0, 0, 0, 0),
               "messages, inferences, frames, paired, unknown, rejected, reconnects, backoff")
            m = st["model"]
            check(isinstance(m, dict), "model %r" % m)
            hello = stub.hello
            eq(m.get("project"), hello["project"], "model.project")
            mp = m.get("modelParameters")
            check(isinstance(mp, dict), "model.modelParameters %r" % mp)
            for k in ("image_input_width", "image_input_height", "labels", "model_type",
                      "thresholds"):
                eq(mp.get(k), hello["modelParameters"][k], "modelParameters." + k)
            # nothing more than the greeting was sent (a ping round trip orders the check)
            conn.ping(b"fence")
            eq(conn.wait_pong(1, WAIT_S), [b"fence"], "pong from the relay")
            eq(len(conn.received_raw()), 1, "the relay sent only the greeting")
            health_ok(r)


def test_model_null_before_hello():
    with RunnerStub(hello=None) as stub:
        with Relay(sources_cfg([runner_source(stub.port)])) as r:
            conn = connect(stub)
            st = wait_status(r, CAM, "running", lambda s: s["state"] == "running")
            eq(st["model"], None, "model before any hello")
            conn.send_text(runner_stub.fixture_hello("object-detection"))
            st = wait_status(r, CAM, "model after the hello", lambda s: s["model"] is not None)
            eq(st["model"]["project"]["name"], "warehouse-fomo", "model from the late hello")
            stub.classify({"bounding_boxes": [{"label": "ball", "value": 0.75, "x": 10, "y": 11,
                                               "width": 12, "height": 13}]}, jpeg(1))
            items = wait_stored(r, CAM, 1)
            eq(items[0]["model"], {"width": 160, "height": 160},
               "model size from the late hello")


def test_classifications_with_frames():
    big, bw, bh = make_jpeg_of_size(300_000, seed=7)  # several lws receive buffers long
    frames = [jpeg(0), jpeg(1), None, jpeg(3), big, jpeg(5, 160, 120)]
    with RunnerStub(hello="classification") as stub:
        with Relay(sources_cfg([runner_source(stub.port, images=True)])) as r:
            connect(stub)
            for i, img in enumerate(frames):
                sent = stub.classify({"classification": scores(i)}, image_bytes=img,
                                     time_ms=i + 1)
                eq(sent["previews"], 0 if img is None else 1, "preview %d sent" % i)
            items = wait_stored(r, CAM, len(frames))
            for i, (item, img) in enumerate(zip(items, frames)):
                what = "inference %d" % i
                eq(item["source"], "cam", what + ": source")
                eq(item["kind"], "classification", what + ": kind")
                check_scores(item, scores(i), what)
                eq(item["model"], {"width": 96, "height": 96}, what + ": model")
                if img is None:
                    eq(item["image"], None, what + ": no frame before it, no image")
                else:
                    check_image(r, item, img, what)
                eq(r.get_json("/api/v1/inferences/" + item["id"]), item, what + ": GET by id")
            st = source_status(r, CAM)
            eq((st["inferences"], st["frames"], st["frames_paired"], st["messages"],
                st["rejected"], st["unknown"]), (6, 5, 5, 2 + 5 + 6, 0, 0),
               "inferences, frames, paired, messages, rejected, unknown")
            eq(len({i["id"] for i in items}), 6, "distinct ids")


def test_object_detection_fixture():
    lines = runner_stub.load_fixture("object-detection")
    results = [m["result"] for d, _raw, m in lines if m.get("type") == "classification"]
    previews = []  # the frame before each classification, or None
    pending = None
    for d, _raw, m in lines:
        if m.get("type") == "camera-preview":
            pending = base64.b64decode(m["image"].split(",", 1)[1])
        elif m.get("type") == "classification":
            previews.append(pending)
            pending = None
    with RunnerStub(hello="object-detection") as stub:
        with Relay(sources_cfg([runner_source(stub.port)])) as r:
            connect(stub)
            sent = stub.replay_fixture("object-detection")
            eq(len(sent), 10, "fixture messages replayed (4 frames, 6 classifications)")
            items = wait_stored(r, CAM, len(results))
            for i, (item, res, img) in enumerate(zip(items, results, previews)):
                what = "fixture inference %d" % i
                eq(item["kind"], "object-detection" if res["bounding_boxes"] else "empty",
                   what + ": kind")
                boxes = item["result"].get("bounding_boxes")
                eq(len(boxes), len(res["bounding_boxes"]), what + ": boxes")
                for b, e in zip(boxes, res["bounding_boxes"]):
                    eq((b["label"], b["x"], b["y"], b["width"], b["height"]),
                       (e["label"], e["x"], e["y"], e["width"], e["height"]),
                       what + ": box in model pixels")
                    check(approx(b["value"], e["value"]), what + ": box value")
                eq(item["model"], {"width": 160, "height": 160}, what + ": model")
                if img is None:
                    eq(item["image"], None, what + ": no frame, no image")
                else:
                    check_image(r, item, img, what)
            st = source_status(r, CAM)
            eq((st["inferences"], st["frames"], st["frames_paired"]), (6, 4, 4),
               "inferences, frames, frames_paired")
            eq(st["model"]["modelParameters"]["model_type"], "constrained_object_detection",
               "model type")


def test_images_false_sends_nothing():
    with RunnerStub() as stub:
        with Relay(sources_cfg([runner_source(stub.port, images=False)])) as r:
            conn = connect(stub, greeting=False)
            wait_status(r, CAM, "hello processed", lambda s: s["messages"] >= 1)
            conn.ping(b"fence")  # answered after anything sent on connect
            conn.wait_pong(1, WAIT_S)
            eq(conn.received_raw(), [], "no greeting when images is false")
            eq(conn.wants_preview, False, "no previews asked for")
            sent = stub.classify({"classification": scores(1)}, image_bytes=jpeg(1))
            eq(sent["previews"], 0, "the runner sends no previews to this client")
            # a preview meant for another client is not attached
            conn.send_text('{"type":"camera-preview","image":"%s"}' %
                           runner_stub.data_url(jpeg(2)))
            stub.classify({"classification": scores(2)})
            items = wait_stored(r, CAM, 2)
            eq([i["image"] for i in items], [None, None], "no images")
            check_scores(items[1], scores(2), "second")
            st = source_status(r, CAM)
            eq((st["inferences"], st["frames"], st["unknown"], st["rejected"]), (2, 0, 1, 0),
               "inferences, frames, unknown, rejected")


def test_two_sources():
    with RunnerStub(hello="classification") as a, RunnerStub(hello="object-detection") as b:
        srcs = [runner_source(a.port, "left"), runner_source(b.port, "right", images=False)]
        with Relay(sources_cfg(srcs)) as r:
            connect(a)
            connect(b, greeting=False)
            a.classify({"classification": scores(1)}, jpeg(1))
            b.classify({"bounding_boxes": []}, jpeg(2))
            la, rb = wait_stored(r, "left", 1), wait_stored(r, "right", 1)
            check_image(r, la[0], jpeg(1), "left")
            eq((rb[0]["image"], rb[0]["result"].get("bounding_boxes")), (None, []), "right")
            eq(source_status(r, "right")["model"]["project"]["name"], "warehouse-fomo",
               "right model")
            eq(source_status(r, "left")["model"]["project"]["name"], "parcel-classifier",
               "left model")


def test_runner_stops_and_comes_back():
    sent_scores = []
    images = {}

    def classify(stub, i, img=True):
        frame = jpeg(i) if img else None
        stub.classify({"classification": scores(i)}, image_bytes=frame)
        sent_scores.append(scores(i))
        if frame is not None:
            images[len(sent_scores) - 1] = frame

    stub = RunnerStub()
    port = stub.port
    try:
        with Relay(sources_cfg([runner_source(stub.port)])) as r:
            connect(stub)
            for i in range(3):
                classify(stub, i)
            wait_stored(r, CAM, 3)
            stub.camera_preview(jpeg(99))  # a frame whose classification never comes
            wait_status(r, CAM, "the orphan frame received", lambda s: s["frames"] == 4)
            stub.stop()  # the runner process dies: no close frame
            st = wait_status(r, CAM, "backoff", lambda s: s["state"] == "backoff")
            check(isinstance(st["last_error"], str) and st["last_error"],
                  "last_error %r" % st["last_error"])
            health_ok(r)

            stub = RunnerStub(port=port)  # restarted on the same port
            connect(stub, RECONNECT_S)
            st = wait_status(r, CAM, "running again", lambda s: s["state"] == "running")
            check(st["reconnects"] >= 1, "reconnects %r" % st["reconnects"])
            classify(stub, 3, img=False)  # must not get the orphan frame
            for i in range(4, 8):
                classify(stub, i)
            wait_stored(r, CAM, 8)

            # a clean close (close handshake) from the runner, listening on: reconnects too
            before = source_status(r, CAM)["reconnects"]
            eq(stub.close(1001, "restarting"), 1, "the relay answered the close")
            connect(stub, RECONNECT_S)
            wait_status(r, CAM, "running after the close", lambda s: s["state"] == "running" and
                        s["reconnects"] > before)
            for i in range(8, 12):
                classify(stub, i)
            items = wait_stored(r, CAM, 12)
            for k, item in enumerate(items):
                check_scores(item, sent_scores[k], "inference %d" % k)
                if k in images:
                    check_image(r, item, images[k], "inference %d" % k)
                else:
                    eq(item["image"], None, "inference %d: the orphan frame is not attached" % k)
            eq(len({i["id"] for i in items}), 12, "no duplicates")
            st = source_status(r, CAM)
            eq((st["inferences"], st["frames_paired"], st["rejected"]), (12, 11, 0),
               "inferences, frames_paired, rejected")
            eq(len(stub.connections()), 2, "connections to the restarted runner")
    finally:
        stub.stop()


def test_bad_input():
    """Every kind of bad message: counted, logged, no crash; only valid classifications are
    stored, and no bad (or stale) frame is attached to a later classification."""
    valid = []  # (scores, image or None) of every valid classification, in order
    counts = {"rejected": 0, "unknown": 0, "frames": 0, "paired": 0}

    with RunnerStub() as stub:
        with Relay(sources_cfg([runner_source(stub.port)])) as r:
            conn = connect(stub)

            def good(img=None):
                i = len(valid)
                if img is not None:
                    conn.send_text('{"type":"camera-preview","image":"%s"}' %
                                   runner_stub.data_url(img))
                    counts["frames"] += 1
                    counts["paired"] += 1
                conn.send_text(stub.classification_text({"classification": scores(i)}))
                valid.append((scores(i), img))

            def bad(payload, opcode=OP_TEXT, kind="rejected"):
                conn.send_frame(opcode, payload)
                counts[kind] += 1

            good(jpeg(0))
            # malformed JSON, not an object, no type, wrong-typed type, NUL byte
            for p in ('{"type":"classification",', "{x}", "[1,2]", '"classification"', "42",
                      "null", '{"result":{}}', '{"type":5}', '{"type":"classification"}\x00',
                      "", '{"type":"classification","result":{"classification":{"a":1}}} x'):
                bad(p)
            good()
            # unknown message types (well-formed): counted as unknown
            for p in ('{"type":"runner-status","fps":5}', '{"type":"CLASSIFICATION"}',
                      '{"type":""}'):
                bad(p, kind="unknown")
            good(jpeg(1))
            # camera-preview with broken data URLs: nothing attached to the next result
            jp = jpeg(2)
            for p in ("data:image/jpeg;base64," + base64.b64encode(jp[:40]).decode(),  # cut
                      "data:image/jpeg;base64,@@@@not-base64@@@@",
                      "data:image/jpeg;base64," + base64.b64encode(jp).decode()[:-3],
                      "data:image/jpeg;base64",
                      "data:image/jpeg;base64,",
                      "data:image/jpeg;base64," + base64.b64encode(b"not a jpeg").decode(),
                      "http://example.com/x.jpg"):
                bad('{"type":"camera-preview","image":%s}' % json.dumps(p))
                good()
            bad('{"type":"camera-preview","image":42}')
            bad('{"type":"camera-preview"}')
            good()
            # classifications with wrong-typed fields
            for p in ('{"type":"classification","result":{"classification":{"a":"high"}},'
                      '"timeMs":2}',
                      '{"type":"classification","result":[1,2],"timeMs":2}',
                      '{"type":"classification","result":"x","timeMs":2}',
                      '{"type":"classification","result":{"bounding_boxes":[{"label":"b",'
                      '"value":0.5,"x":"1","y":1,"width":2,"height":2}]},"timeMs":2}',
                      '{"type":"classification","result":{"bounding_boxes":{}},"timeMs":2}'):
                bad(p)
                good()
            # a binary frame; printable noise as a text frame
            bad(b"\x00\x01\x02\xff" * 8, opcode=OP_BINARY)
            good(jpeg(3))
            rnd = random.Random(5)
            bad("".join(rnd.choice('{}[]":,.0123456789abcdeftrunl\\ ') for _ in range(300)))
            good()
            # a valid classification over many continuation frames (and a ping between)
            text = stub.classification_text({"classification": scores(len(valid))})
            parts = [text[k:k + 7] for k in range(0, len(text), 7)]
            conn.send_frame(OP_TEXT, parts[0], fin=False)
            for k, part in enumerate(parts[1:-1]):
                conn.send_frame(OP_CONT, part, fin=False)
                if k == 3:
                    conn.ping(b"mid")
                    conn.send_frame(OP_CONT, b"", fin=False)  # an empty fragment
            conn.send_frame(OP_CONT, parts[-1], fin=True)
            valid.append((scores(len(valid)), None))
            # a frame in 100-byte fragments, then its classification: the image is attached
            jf = jpeg(4)
            prev = '{"type":"camera-preview","image":"%s"}' % runner_stub.data_url(jf)
            pieces = [prev[k:k + 100] for k in range(0, len(prev), 100)]
            for k, piece in enumerate(pieces):
                conn.send_frame(OP_TEXT if k == 0 else OP_CONT, piece, fin=k == len(pieces) - 1)
            counts["frames"] += 1
            counts["paired"] += 1
            conn.send_text(stub.classification_text({"classification": scores(len(valid))}))
            valid.append((scores(len(valid)), jf))
            good(jpeg(5))  # the fence: everything before it was handled

            items = wait_stored(r, CAM, len(valid))
            for k, (item, (sc, img)) in enumerate(zip(items, valid)):
                check_scores(item, sc, "valid %d" % k)
                if img is None:
                    eq(item["image"], None, "valid %d: no image" % k)
                else:
                    check_image(r, item, img, "valid %d" % k)
            st = source_status(r, CAM)
            eq(st["state"], "running", "state after bad input")
            eq((st["inferences"], st["frames"], st["frames_paired"], st["rejected"],
                st["unknown"]),
               (len(valid), counts["frames"], counts["paired"], counts["rejected"],
                counts["unknown"]), "inferences, frames, frames_paired, rejected, unknown")
            eq(st["reconnects"], 0, "the connection survived")
            eq(conn.pongs, [b"mid"], "ping between fragments answered")
            check("rejected" in r.log(), "bad messages are logged")
            health_ok(r)


def test_rejected_message_drops_the_pending_frame():
    """runner_msg's pairing rule: a rejected message of any kind between a frame and a
    classification drops the frame (it may have been the one that belonged to it)."""
    cases = [("malformed JSON", OP_TEXT, '{"type":'),
             ("wrong-typed classification", OP_TEXT,
              '{"type":"classification","result":{"classification":{"a":"x"}}}'),
             ("bad camera-preview", OP_TEXT, '{"type":"camera-preview","image":"data:x"}'),
             ("noise", OP_TEXT, "#$%^&*"),
             ("binary frame", OP_BINARY, b"\x01\x02\x03"),
             # over the message limit (base64 of max_frame_bytes + 2 MiB)
             ("message over the size limit", OP_TEXT,
              '{"type":"x","pad":"%s"}' % ("z" * (3 * 1024 * 1024)))]
    with RunnerStub() as stub:
        with Relay(sources_cfg([runner_source(stub.port, max_frame_bytes=1024)])) as r:
            conn = connect(stub)
            for k, (_what, op, payload) in enumerate(cases):
                conn.send_text('{"type":"camera-preview","image":"%s"}' %
                               runner_stub.data_url(make_jpeg(16, 16, seed=k)))
                conn.send_frame(op, payload)
                conn.send_text(stub.classification_text({"classification": scores(k)}))
            items = wait_stored(r, CAM, len(cases))
            wrong = ["after a %s" % what for (what, _o, _p), item in zip(cases, items)
                     if item["image"] is not None]
            eq(wrong, [], "classifications that got the frame sent before the rejected message")
            st = source_status(r, CAM)
            eq((st["rejected"], st["frames"]), (len(cases), len(cases)),
               "rejected messages, accepted frames (each case had a good frame)")


def test_message_and_frame_limits():
    """max_frame_bytes 1024: a bigger frame is rejected; a message over the message limit
    (base64 of the frame limit + 2 MiB) is dropped without taking the connection down."""
    small = make_jpeg(16, 16, seed=3)
    check(len(small) < 1024, "small JPEG %d bytes" % len(small))
    large = make_jpeg(96, 96, noise=20, seed=4)
    check(len(large) > 1024, "large JPEG %d bytes" % len(large))
    with RunnerStub() as stub:
        with Relay(sources_cfg([runner_source(stub.port, max_frame_bytes=1024)])) as r:
            conn = connect(stub)
            stub.classify({"classification": scores(0)}, small)
            stub.classify({"classification": scores(1)}, large)  # frame over the limit
            huge = '{"type":"classification","result":{"classification":{"a":0.5}},' \
                   '"pad":"%s"}' % ("z" * (3 * 1024 * 1024))
            conn.send_text(huge)
            stub.classify({"classification": scores(2)}, make_jpeg(16, 16, seed=5))
            items = wait_stored(r, CAM, 3)
            check_image(r, items[0], small, "small frame")
            eq(items[1]["image"], None, "no image for the frame over max_frame_bytes")
            check_scores(items[2], scores(2), "after the huge message")
            st = source_status(r, CAM)
            eq((st["rejected"], st["frames"], st["frames_paired"], st["reconnects"]),
               (2, 2, 2, 0), "rejected, frames, frames_paired, reconnects")
            health_ok(r)


def test_raw_noise_bytes_as_text():
    """Random bytes (not UTF-8, NULs) as a text frame: either rejected or the connection is
    dropped and reopened; the relay stays up and the next classification is stored once."""
    rnd = random.Random(11)
    noise = bytes(rnd.getrandbits(8) for _ in range(4096))
    with RunnerStub() as stub:
        with Relay(sources_cfg([runner_source(stub.port)])) as r:
            conn = connect(stub)
            stub.classify({"classification": scores(0)}, jpeg(0))
            conn.send_frame(OP_TEXT, noise)
            conn.ping(b"after")
            try:
                conn.wait_pong(1, WAIT_S)
                live = conn
            except StubTimeout:
                check(not conn.open, "no pong, yet the connection is open")
                live = connect(stub, RECONNECT_S)
            if live is conn:
                wait_status(r, CAM, "noise rejected", lambda s: s["rejected"] == 1)
            live.send_text(stub.classification_text({"classification": scores(1)}))
            items = wait_stored(r, CAM, 2)
            check_image(r, items[0], jpeg(0), "before the noise")
            eq(items[1]["image"], None, "after the noise: no image")
            check_scores(items[1], scores(1), "after the noise")
            health_ok(r)


def test_no_runner_listening():
    port = free_port()  # nothing listens there
    with Relay(sources_cfg([runner_source(port)])) as r:
        st = wait_status(r, CAM, "backoff", lambda s: s["state"] == "backoff" and s["last_error"])
        err = st["last_error"]
        check(isinstance(err, str) and ("connect" in err.lower() or "refused" in err.lower()),
              "last_error names the failure: %r" % err)
        eq((st["model"], st["inferences"], st["messages"]), (None, 0, 0),
           "model, inferences, messages")
        wait_status(r, CAM, "a retry", lambda s: s["reconnects"] >= 1)
        wait_status(r, CAM, "a backoff delay shown", lambda s: s["backoff_ms"] > 0)
        health_ok(r)
        eq(r.get_json("/api/v1/inferences")["items"], [], "inferences served")
        # the runner starts late: the relay connects
        with RunnerStub(port=port) as stub:
            connect(stub, RECONNECT_S)
            wait_status(r, CAM, "running", lambda s: s["state"] == "running")
            stub.classify({"classification": scores(0)}, jpeg(0))
            check_image(r, wait_stored(r, CAM, 1)[0], jpeg(0), "late runner")


def test_wrong_path_is_404():
    with RunnerStub() as stub:
        with Relay(sources_cfg([runner_source(stub.port, path="/other")])) as r:
            st = wait_status(r, CAM, "backoff", lambda s: s["state"] == "backoff" and s["last_error"])
            check(("/other", 404) in stub.handshakes, "request seen: %r" % stub.handshakes)
            eq(stub.connections(), [], "no WebSocket connection")
            eq(st["inferences"], 0, "inferences")
            health_ok(r)


TESTS = [test_greeting_status_and_model, test_model_null_before_hello,
         test_classifications_with_frames, test_object_detection_fixture,
         test_images_false_sends_nothing, test_two_sources, test_runner_stops_and_comes_back,
         test_bad_input, test_rejected_message_drops_the_pending_frame,
         test_message_and_frame_limits, test_raw_noise_bytes_as_text, test_no_runner_listening,
         test_wrong_path_is_404]

if __name__ == "__main__":
    run_tests(TESTS)
