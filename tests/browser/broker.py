# broker.py - the black-box tier's MQTT broker harness (tests/blackbox/harness/mqtt.py: a test
# PKI made with openssl, Debian's mosquitto with TLS client certificates) as a child process of
# the browser tests. It prints {"config": <relay settings that forward to it>}, then answers
# one JSON command per stdin line:
#   {"cmd": "stop"}   the broker goes away (SIGTERM)  -> {"stopped": true}
#   {"cmd": "start"}  it comes back on the same port  -> {"started": true}
# It stops the broker and removes its files when stdin closes.
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "blackbox"))
from harness.mqtt import Broker, make_pki, mosquitto_bin, relay_mqtt_config  # noqa: E402


def main():
    if not mosquitto_bin() or not shutil.which("openssl"):
        print(json.dumps({"error": "mosquitto or openssl is not installed (scripts/deps.sh test)"}),
              flush=True)
        return
    pki_dir = tempfile.mkdtemp(prefix="ei-browser-pki-")
    broker = None
    try:
        broker = Broker(make_pki(pki_dir), persistence=False).start()
        print(json.dumps({"config": relay_mqtt_config(broker, "browser-test")}), flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            cmd = json.loads(line)["cmd"]
            if cmd == "stop":
                broker.stop()
                print(json.dumps({"stopped": True}), flush=True)
            elif cmd == "start":
                broker.start()
                print(json.dumps({"started": True}), flush=True)
            else:
                print(json.dumps({"error": "unknown command %r" % cmd}), flush=True)
    finally:
        if broker:
            broker.stop()
            broker.cleanup()
        shutil.rmtree(pki_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
