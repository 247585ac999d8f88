# runner.py - the runner-ws stand-in of the black-box tests (tests/blackbox/harness/runner_stub.py)
# as a child process of the browser tests: a fake `edge-impulse-linux-runner` preview server with
# an object-detection model (96x96, label "ball"). It prints {"port": N}, then answers one JSON
# command per stdin line with one JSON line:
#   {"cmd": "ready"}                        waits for the relay's connection and its
#                                           set-camera-preview request -> {"ready": true}
#   {"cmd": "classify", "result": {..}, "jpeg_b64": ".."}
#                                           a camera-preview frame, then its classification
#                                           -> {"previews": n, "classifications": n}
# It stops when stdin closes.
import base64
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "blackbox"))
from harness.runner_stub import RunnerStub  # noqa: E402

MODEL = {
    "project": {"id": 4242, "owner": "ei-relay tests", "name": "ball-finder", "deploy_version": 7,
                "impulse_id": 1, "impulse_name": "Impulse #1"},
    "modelParameters": {"image_input_width": 96, "image_input_height": 96, "image_input_frames": 1,
                        "image_channel_count": 3, "image_resize_mode": "fit-shortest",
                        "label_count": 1, "labels": ["ball"], "model_type": "object_detection",
                        "sensorType": "camera", "has_anomaly": 0, "frequency": 0},
}


def main():
    stub = RunnerStub(hello=MODEL)
    print(json.dumps({"port": stub.port}), flush=True)
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            cmd = json.loads(line)
            if cmd["cmd"] == "ready":
                conn = stub.wait_client(10)
                msgs = conn.wait_received(1)
                print(json.dumps({"ready": True, "first": msgs[0]}), flush=True)
            elif cmd["cmd"] == "classify":
                jpeg = base64.b64decode(cmd["jpeg_b64"]) if cmd.get("jpeg_b64") else None
                r = stub.classify(cmd["result"], image_bytes=jpeg)
                print(json.dumps({"previews": r["previews"], "classifications": r["classifications"]}),
                      flush=True)
            else:
                print(json.dumps({"error": "unknown command %r" % cmd["cmd"]}), flush=True)
    finally:
        stub.stop()


if __name__ == "__main__":
    main()
