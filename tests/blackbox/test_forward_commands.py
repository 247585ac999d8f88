# test_forward_commands.py - black-box: the Edge Impulse commands over MQTT against a real TLS
# mosquitto. Each of the twelve commands and get_status, sent on .../command/input, gets a
# {"result":{...}} reply on .../command/output; a retained command is handled once and cleared
# (empty retained message; when the broker refuses that, see test_forward_retained.py); malformed and unknown commands get an error reply and the relay
# lives on; the threshold confidence set by command changes publish decisions and survives a
# restart.
import json
import subprocess

from harness import Relay, check, eq, new_id, run_tests
from harness.mqtt import (Broker, device_name, make_pki, relay_mqtt_config, relisten, require_tools,
                          topic, wait_publish)

require_tools()
PKI = make_pki()
BROKER = None
WAIT_S = 15


def is_start(m):
    try:
        res = m.json().get("result")
        return isinstance(res, dict) and res.get("status") == "started"
    except Exception:
        return False


class Commander:
    """Sends commands to one device and waits for the next reply on its command/output."""

    def __init__(self, name):
        self.name = name
        self.inp = topic(name, "command/input")
        self.outp = topic(name, "command/output")
        self.sub = BROKER.subscriber(topic(name, "#"))
        self.pub = BROKER.client("ei-bb-cmd-%s" % name)
        self.pub.connect()

    def send_raw(self, payload, retain=False):
        mark = self.sub.mark()
        self.pub.publish(self.inp, payload, qos=1, retain=retain)
        return self.sub.wait_since(mark, self.outp, 1, WAIT_S, pred=lambda m: not is_start(m))[0]

    def cmd(self, verb, value=None, retain=False):
        """Returns (result object, raw message) of the reply; asserts the reply's shape."""
        doc = {"cmd": verb}
        if value is not None:
            doc["value"] = value
        m = self.send_raw(json.dumps(doc), retain)
        pairs = m.pairs()
        eq([k for k, _ in pairs], ["result"], "reply to %s: top level (%r)" % (verb, m.payload))
        res = m.json()["result"]
        check(isinstance(res, dict), "reply to %s: result is not an object: %r" % (verb, res))
        check(not m.retain, "reply to %s retained" % verb)
        return res, m

    def close(self):
        self.pub.close()
        self.sub.close()


def values_of(obj):
    """Every scalar in a JSON value, recursively."""
    if isinstance(obj, dict):
        return [v for x in obj.values() for v in values_of(x)]
    if isinstance(obj, list):
        return [v for x in obj for v in values_of(x)]
    return [obj]


def has_number(res, x):
    return any(isinstance(v, (int, float)) and not isinstance(v, bool) and
               (abs(v - x) < 1e-9 or abs(v - x * 100) < 1e-6) for v in values_of(res))


def mentions_error(res_or_doc):
    text = json.dumps(res_or_doc).lower()
    return "error" in text or "invalid" in text or "unknown" in text


def test_retained_command_handled_and_cleared():
    name = device_name("retained")
    inp = topic(name, "command/input")
    outp = topic(name, "command/output")
    sub = BROKER.subscriber(topic(name, "#"))
    try:
        # retained before the relay exists: the relay finds it when it subscribes
        BROKER.publish(inp, json.dumps({"cmd": "get_status"}), retain=True)
        with Relay(overrides=relay_mqtt_config(BROKER, name)):
            reply = sub.wait_count(outp, 1, WAIT_S, pred=lambda m: not is_start(m))[0]
            eq([k for k, _ in reply.pairs()], ["result"], "reply shape %r" % reply.payload)
            # cleared: an empty message on command/input (retained when published)
            sub.wait_count(inp, 1, WAIT_S, pred=lambda m: m.payload == b"")
            # a new subscriber gets no retained command: the first thing it sees is a marker
            # published after its SUBACK
            marker = topic(name, "test/marker")  # not a topic the relay listens to
            late = BROKER.subscriber(inp)
            try:
                late.subscribe(marker)
                BROKER.publish(marker, b"m", qos=1)
                late.wait_count(marker, 1, WAIT_S)  # retained ones come first, at SUBACK
                eq(late.on(inp), [], "command still retained after handling")
            finally:
                late.close()
            # handled once: one reply, not one per reconnect or per clearing message
            replies = [m for m in sub.on(outp) if not is_start(m)]
            eq(len(replies), 1, "replies to one retained command: %r" % replies)
    finally:
        sub.close()


def test_all_commands_reply():
    name = device_name("cmds")
    c = Commander(name)
    try:
        with Relay(overrides=relay_mqtt_config(BROKER, name, enable_threshold_limit="no",
                                               default_threshold=0.5,
                                               threshold_criteria="ge")) as r:
            c.sub.wait_count(c.outp, 1, WAIT_S, pred=is_start)  # connected
            res, _ = c.cmd("get_status")
            check(res, "get_status result is empty")
            text = json.dumps(res).lower()
            for word in ("queue", "dead", "drop"):
                check(word in text, "get_status does not report %s: %r" % (word, res))

            c.cmd("enable_threshold_filter")
            res, _ = c.cmd("get_threshold_filter_config")
            check(res, "get_threshold_filter_config empty")
            c.cmd("set_threshold_filter_criteria", "gt")
            res, _ = c.cmd("get_threshold_filter_criteria")
            check("gt" in values_of(res), "criteria not gt after set: %r" % res)
            c.cmd("set_threshold_filter_confidence", 0.7)
            res, _ = c.cmd("get_threshold_filter_confidence")
            check(has_number(res, 0.7), "confidence not 0.7 after set: %r" % res)

            # the filter set by command decides publishing: mean 0.6 is not > 0.7
            low = new_id()
            r.ingest({"id": low, "result": {"bounding_boxes": [
                {"label": "p", "value": v, "x": 0, "y": 0, "width": 2, "height": 2}
                for v in (0.5, 0.7)]}})
            eq(wait_publish(r, low, "filtered", WAIT_S), "filtered", "below the set threshold")
            c.cmd("disable_threshold_filter")
            res, _ = c.cmd("get_threshold_filter_config")
            again = new_id()
            r.ingest({"id": again, "result": {"bounding_boxes": [
                {"label": "p", "value": 0.5, "x": 0, "y": 0, "width": 2, "height": 2}]}})
            check(wait_publish(r, again, ("pending", "published"), WAIT_S),
                  "published with the filter disabled")

            res, _ = c.cmd("get_model_info")
            c.cmd("reset_metrics")

            keep = new_id()
            r.ingest({"id": keep, "result": {"classification": {"k": 1.0}}})
            wait_publish(r, keep, "published", WAIT_S)
            c.cmd("clear_cache_file", keep)
            eq(r.get("/api/v1/inferences/" + keep).status, 404, "clear_cache_file removed it")

            wait_publish(r, again, "published", WAIT_S)
            c.cmd("clear_cache")
            eq(r.get("/api/v1/inferences/" + again).status, 404, "clear_cache removed it")

            # restart (forward/commands.h): the reply goes out, then ei-relay exits with its
            # restart code for the supervisor (Greengrass, systemd) to start it again
            res, _ = c.cmd("restart")
            eq(res.get("restart"), "OK", "restart reply %r" % res)
            try:
                code = r.proc.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                raise AssertionError("ei-relay did not exit after the restart command")
            check(code > 0, "restart exit code %d (a signal or 0 is not a restart)" % code)
            r.stop(expect_code=code)  # sanitizer check of that run's log
            mark = c.sub.mark()
            relisten(r)
            r.start()  # as the supervisor would
            c.sub.wait_since(mark, c.outp, 1, WAIT_S, pred=is_start)
            c.cmd("get_status")
    finally:
        c.close()


def test_malformed_and_unknown_commands():
    name = device_name("bad")
    c = Commander(name)
    try:
        with Relay(overrides=relay_mqtt_config(BROKER, name)) as r:
            c.sub.wait_count(c.outp, 1, WAIT_S, pred=is_start)
            for payload in (b"{not json", b"[1,2]", b'{"value":1}', b'{"cmd":42}',
                            b'{"cmd":"no_such_command"}', b"\xff\xfe",
                            b'{"cmd":"set_threshold_filter_confidence","value":"high"}',
                            b'{"cmd":"set_threshold_filter_criteria","value":"sideways"}',
                            b'{"cmd":"clear_cache_file","value":"../../etc/passwd"}'):
                m = c.send_raw(payload)
                doc = m.json()
                check(isinstance(doc, dict) and mentions_error(doc),
                      "no error reply to %r: %r" % (payload, m.payload))
            # the bad values changed nothing
            res, _ = c.cmd("get_threshold_filter_criteria")
            check("sideways" not in values_of(res), "bad criteria stored: %r" % res)
            res, _ = c.cmd("get_status")
            eq(r.proc.poll(), None, "relay alive")
    finally:
        c.close()


def test_threshold_confidence_persists_across_restart():
    name = device_name("persist")
    c = Commander(name)
    try:
        with Relay(overrides=relay_mqtt_config(BROKER, name, default_threshold=0.2)) as r:
            c.sub.wait_count(c.outp, 1, WAIT_S, pred=is_start)
            c.cmd("set_threshold_filter_confidence", 0.65)
            c.cmd("set_threshold_filter_criteria", "lt")
            mark = c.sub.mark()
            r.stop()
            relisten(r)
            r.start()
            c.sub.wait_since(mark, c.outp, 1, WAIT_S, pred=is_start)
            res, _ = c.cmd("get_threshold_filter_confidence")
            check(has_number(res, 0.65), "confidence after restart: %r" % res)
            res, _ = c.cmd("get_threshold_filter_criteria")
            check("lt" in values_of(res), "criteria after restart: %r" % res)
    finally:
        c.close()


def main():
    global BROKER
    with Broker(PKI) as b:
        BROKER = b
        run_tests([test_retained_command_handled_and_cleared, test_all_commands_reply,
                   test_malformed_and_unknown_commands,
                   test_threshold_confidence_persists_across_restart])


if __name__ == "__main__":
    main()
