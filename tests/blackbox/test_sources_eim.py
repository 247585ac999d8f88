# test_sources_eim.py - black-box tests of the "eim" source: the real binary runs a model (the
# stand-in tests/eim/fake_eim.py, speaking the .eim socket protocol) on real GStreamer pipelines
# (videotestsrc ! jpegenc) and stores every result with its frame: a static scene classified
# once, a moving one every frame, the model's parameters as the source's model, the runner's
# threshold rules, a model that dies or refuses to start, a slow model (frames dropped, never
# queued), a pipeline that ends or fails, the recipes' ei_local_model_file/gst_args, bad settings,
# and the model stopped with the relay.
import json
import os
import shutil
import sys
import tempfile

from harness import (Relay, check, eq, jpeg_dims, run_tests, source_dir, source_status,
                     sources_cfg, start_refused, stored, wait_status, wait_stored)

NAME = "cam"
WAIT_S = 30.0
RESTART_S = 60.0  # a round that fails waits out the backoff (0.5 s doubling) first
MODEL_W = MODEL_H = 96
STATUS_KEYS = {"name", "kind", "state", "last_error", "inferences", "reconnects", "backoff_ms",
               "held", "store_retries", "store_refused",
               "frames", "frames_same", "frames_dropped", "frame_errors", "classify_errors",
               "model_starts", "model"}


def caps(fps=10, w=320, h=240):
    return "video/x-raw,width=%d,height=%d,framerate=%d/1" % (w, h, fps)


RED = "videotestsrc pattern=red is-live=true ! %s ! jpegenc" % caps()
BALL = "videotestsrc pattern=ball is-live=true ! %s ! jpegenc" % caps()


class Model:
    """The stand-in model as a model file: a two-line script in a temp dir that execs the
    interpreter running this test on fake_eim.py (no version-manager shim in between)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ei-eim-")
        self.path = os.path.join(self.dir, "model.eim")
        fake = os.path.join(source_dir(), "tests", "eim", "fake_eim.py")
        with open(self.path, "w") as f:
            f.write("#!/bin/sh\necho $$ >> '%s/pids'\nexec '%s' '%s' \"$@\"\n" %
                    (self.dir, sys.executable, fake))
        os.chmod(self.path, 0o755)

    def running(self):
        """Pids of the model processes started from this file that still run (the wrapper
        records its pid, which the model keeps through exec)."""
        try:
            with open(os.path.join(self.dir, "pids")) as f:
                pids = [int(p) for p in f.read().split()]
        except FileNotFoundError:
            return []
        alive = []
        for p in pids:
            try:
                with open("/proc/%d/cmdline" % p, "rb") as f:
                    if b"fake_eim.py" in f.read():
                        alive.append(p)
            except OSError:
                pass
        return alive

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)


def eim_source(model, pipeline=BALL, name=NAME, **extra):
    src = {"name": name, "kind": "eim", "model_file": model.path}
    if pipeline is not None:
        src["gst_launch_args"] = pipeline
    src.update(extra)
    return src


def relay(model, env=None, **src):
    e = {"FAKE_EIM_WIDTH": str(MODEL_W), "FAKE_EIM_HEIGHT": str(MODEL_H)}
    e.update(env or {})
    return Relay(sources_cfg([eim_source(model, **src)]), env=e)


def complete(r, item, what):
    """An inference as the source stores it: both labels, the model's timing, its input size and
    the frame (a JPEG of the model's size) with it."""
    got = r.get_json("/api/v1/inferences/%s" % item["id"])
    cls = got["result"].get("classification")
    check(isinstance(cls, dict) and set(cls) == {"dark", "bright"}, "%s: result %r" %
          (what, got["result"]))
    check({"dsp", "classification", "anomaly"} <= set(got.get("timing") or {}),
          "%s: timing %r" % (what, got.get("timing")))
    img = got["image"]
    check(isinstance(img, dict) and img["mime"] == "image/jpeg", "%s: image %r" % (what, img))
    eq((img["width"], img["height"]), (MODEL_W, MODEL_H), what + ": image size")
    body = r.get("/api/v1/inferences/%s/image" % item["id"]).body
    eq(jpeg_dims(body), (MODEL_W, MODEL_H), what + ": stored JPEG")
    eq(got["source"], NAME, what + ": source")
    return got


def exits_with(cfg_sources, want, extra=None):
    """The relay refuses these sources at start: exit 2 (bad configuration) and a message
    containing want, before it makes a database."""
    cfg = {"sources": json.dumps(cfg_sources)}
    cfg.update(extra or {})
    start_refused(cfg, want)


# ---------------------------------------------------------------- tests


def test_static_scene_is_classified_once():
    with Model() as m, relay(m, pipeline=RED) as r:
        st = wait_status(r, NAME, "repeated frames skipped",
                         lambda s: s["frames_same"] >= 5, WAIT_S)
        eq(set(st), STATUS_KEYS, "status keys")
        eq((st["kind"], st["state"], st["last_error"]), ("eim", "running", None), "state")
        eq(st["model_starts"], 1, "model started once")
        items = wait_stored(r, NAME, 1)
        eq(st["inferences"], 1, "one inference for a scene that does not change")
        eq(st["frames"], st["frames_same"] + 1, "frames = the one classified + the repeats")
        got = complete(r, items[0], "red scene")
        # red (255, 0, 0): mean brightness 1/3, so dark 2/3 and bright 1/3 (JPEG rounding aside)
        cls = got["result"]["classification"]
        check(abs(cls["dark"] - 2 / 3) < 0.03 and abs(cls["bright"] - 1 / 3) < 0.03,
              "scores of a red frame %r" % cls)
        model = st["model"]
        mp = model["modelParameters"]
        eq((mp["image_input_width"], mp["image_input_height"]), (MODEL_W, MODEL_H), "model size")
        eq(mp["labels"], ["dark", "bright"], "labels")
        check(any(t.get("id") == 42 for t in mp.get("thresholds", [])),
              "the runner's block 42 in %r" % mp.get("thresholds"))
        eq(model["project"]["name"], "fake-eim", "project")


def test_moving_scene_every_changed_frame():
    with Model() as m, relay(m) as r:
        items = wait_stored(r, NAME, 5, WAIT_S, exact=False)
        for i, it in enumerate(items[:5]):
            complete(r, it, "frame %d" % i)
        st = source_status(r, NAME)
        check(st["frames"] >= st["inferences"] >= 5, "counters %r" % st)
        eq(st["frame_errors"] + st["classify_errors"], 0, "no errors")


def test_thresholds_override_the_runners_minimum():
    with Model() as m, relay(m, pipeline=RED, thresholds=[{"id": 42, "min_score": 0.5}]) as r:
        item = wait_stored(r, NAME, 1)[0]
        cls = r.get_json("/api/v1/inferences/%s" % item["id"])["result"]["classification"]
        eq(cls["bright"], 0, "a score below min_score 0.5 is zeroed (%r)" % cls)
        check(cls["dark"] > 0.6, "dark kept %r" % cls)
        thr = source_status(r, NAME)["model"]["modelParameters"]["thresholds"]
        check({"id": 42, "type": "classification", "min_score": 0.5} in thr,
              "model info shows the override: %r" % thr)
    # a block the model does not have: the round fails with a message naming it
    with Model() as m, relay(m, pipeline=RED, thresholds=[{"id": 9, "min_score": 0.5}]) as r:
        st = wait_status(r, NAME, "backoff", lambda s: s["state"] == "backoff", WAIT_S)
        check("block 9" in st["last_error"], "error %r" % st["last_error"])
        eq(stored(r, NAME), [], "nothing stored")


def test_images_false():
    with Model() as m, relay(m, images=False) as r:
        item = wait_stored(r, NAME, 2, WAIT_S, exact=False)[0]
        eq(r.get_json("/api/v1/inferences/%s" % item["id"])["image"], None, "no image")


def test_model_dies_and_is_respawned():
    with Model() as m, relay(m, env={"FAKE_EIM_DIE_AFTER": "3"}) as r:
        st = wait_status(r, NAME, "the model started again after dying",
                         lambda s: s["model_starts"] >= 2 and s["inferences"] >= 5, RESTART_S)
        check(st["reconnects"] >= 1, "a restart counted %r" % st)
        # `inferences` counts what the source made; the last one may still be on its way to
        # the store (`held`), so wait for the commits rather than read once
        items = wait_stored(r, NAME, 5, exact=False)
        for i, it in enumerate(items):
            complete(r, it, "inference %d" % i)  # nothing half-stored


def test_model_that_cannot_start():
    with Model() as m, relay(m, env={"FAKE_EIM_EXIT_AT_START": "2"}) as r:
        st = wait_status(r, NAME, "backoff", lambda s: s["state"] == "backoff", WAIT_S)
        check(st["last_error"].startswith("model:"), "error %r" % st["last_error"])
        eq(st["model"], None, "no model info")
        eq(r.health()["status"], "ok", "a failing source never fails the relay")


def test_slow_model_drops_frames():
    with Model() as m, relay(m, env={"FAKE_EIM_LATENCY_MS": "300"},
                             pipeline="videotestsrc pattern=ball is-live=true ! %s ! jpegenc" %
                             caps(fps=30)) as r:
        st = wait_status(r, NAME, "frames dropped while the model works",
                         lambda s: s["frames_dropped"] >= 20 and s["inferences"] >= 3, WAIT_S)
        # one classify at a time, 300 ms each: far fewer results than frames
        check(st["inferences"] * 3 < st["frames"] + st["frames_dropped"],
              "results %r" % st)
        items = stored(r, NAME)
        ts = [it["ts"] for it in items]
        gaps = [b - a for a, b in zip(ts, ts[1:])]
        check(all(g >= 250 for g in gaps), "results come no faster than the model: %r" % gaps)


def test_pipeline_end_and_failure_restart():
    pipe = "videotestsrc pattern=ball num-buffers=3 ! %s ! jpegenc" % caps()
    with Model() as m, relay(m, pipeline=pipe) as r:
        st = wait_status(r, NAME, "the camera restarted after its end of stream",
                         lambda s: s["reconnects"] >= 1 and s["inferences"] >= 4, RESTART_S)
        check(st["inferences"] <= 3 * (st["reconnects"] + 1), "3 frames a round: %r" % st)
        check("end of stream" in r.log(), "the end logged")
    bad = "filesrc location=/nonexistent/ei-relay.jpg ! jpegdec ! jpegenc"
    with Model() as m, relay(m, pipeline=bad) as r:
        st = wait_status(r, NAME, "backoff", lambda s: s["state"] == "backoff", WAIT_S)
        check(st["last_error"].startswith("camera:"), "error %r" % st["last_error"])
        st = wait_status(r, NAME, "tried again", lambda s: s["reconnects"] >= 1, RESTART_S)
        eq(stored(r, NAME), [], "nothing stored")


def test_recipe_keys_run_the_runner_source():
    with Model() as m:
        overrides = {"ei_local_model_file": m.path,
                     "gst_args": "videotestsrc:pattern=ball:is-live=true:!:%s:!:jpegenc" % caps()}
        env = {"FAKE_EIM_WIDTH": str(MODEL_W), "FAKE_EIM_HEIGHT": str(MODEL_H)}
        with Relay(overrides, env=env) as r:
            wait_stored(r, "runner", 2, WAIT_S, exact=False)
            st = source_status(r, "runner")
            eq(st["kind"], "eim", "kind")
            check("videotestsrc pattern=ball is-live=true" in r.log(),
                  "the pipeline with spaces in the log")


def test_stop_stops_the_model():
    with Model() as m:
        r = relay(m)
        with r:
            wait_stored(r, NAME, 1, WAIT_S, exact=False)
            check(len(m.running()) >= 1, "the model runs")
        eq(m.running(), [], "the model stopped with the relay")


def test_bad_settings_refused_at_start():
    with Model() as m:
        base = {"name": NAME, "kind": "eim", "model_file": m.path}
        exits_with([{"name": NAME, "kind": "eim"}], 'sources "cam".model_file')
        exits_with([dict(base, colour=1)], 'unknown setting "colour" for kind eim')
        exits_with([dict(base, gst_launch_args=RED, camera="/dev/video0")],
                   "gst_launch_args is the whole pipeline")
        exits_with([dict(base, camera_resolution="640by480")], "camera_resolution")
        exits_with([dict(base, images="yes")], 'sources "cam".images')
        exits_with([dict(base, thresholds=[{"min_score": 0.5}])], 'sources "cam".thresholds')
        exits_with([dict(base, thresholds={"id": 3})], 'sources "cam".thresholds')
        exits_with([{"name": "runner", "kind": "runner-ws"}], "ei_local_model_file",
                   {"ei_local_model_file": m.path})


TESTS = [test_static_scene_is_classified_once, test_moving_scene_every_changed_frame,
         test_thresholds_override_the_runners_minimum, test_images_false,
         test_model_dies_and_is_respawned, test_model_that_cannot_start,
         test_slow_model_drops_frames, test_pipeline_end_and_failure_restart,
         test_recipe_keys_run_the_runner_source, test_stop_stops_the_model,
         test_bad_settings_refused_at_start]

if __name__ == "__main__":
    run_tests(TESTS)
