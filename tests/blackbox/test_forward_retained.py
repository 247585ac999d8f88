# test_forward_retained.py - black-box: a retained command whose clearing the broker refuses
# (mosquitto with an ACL that forbids the relay to publish on command/input, as an IoT policy
# without iot:RetainPublish does) runs once: the relay remembers, in its database, the commands
# it ran, and a replay of one at a new subscription (a reconnect, a restart) is not run again.
# Once the topic is seen cleared, the same command sent retained again later does run. A broker
# that drops the connection for the clear (IoT Core does, on a denied publish) does so once:
# the relay then stops clearing.
import json

from harness import Relay, check, eq, run_tests, wait_for
from harness.mqtt import (CLIENT_CN, TESTER_CN, Broker, device_name, forwarder, make_pki,
                          relay_mqtt_config, relisten, require_tools, topic)

require_tools()
PKI = make_pki()
WAIT_S = 15

# The relay may publish everything the forwarder sends, and read its commands, but not publish
# on command/input (the clear); the test's clients may do anything.
ACL = """user %s
topic readwrite #

user %s
topic read /edgeimpulse/device/+/command/input
topic write /edgeimpulse/device/+/command/output
topic write /edgeimpulse/device/+/inference/output
topic write /edgeimpulse/device/+/inference/batch
topic write /edgeimpulse/device/+/model/metrics
""" % (TESTER_CN, CLIENT_CN)


def result_of(m):
    try:
        res = m.json().get("result")
        return res if isinstance(res, dict) else {}
    except Exception:
        return {}


def replies_in(msgs, outp, key):
    """The replies carrying an object under key (the start message's "status" is a string)."""
    return [m for m in msgs if m.topic == outp and isinstance(result_of(m).get(key), dict)]


def replies(sub, outp, key):
    return replies_in(sub.on(outp), outp, key)


def wait_started(sub, outp, n):
    """The relay's n-th start message: it is connected and subscribed to its commands."""
    sub.wait_count(outp, n, WAIT_S, pred=lambda m: result_of(m).get("status") == "started")


def barrier(broker, sub, inp, outp):
    """A live get_status and its reply: every command delivered before it was handled (one
    subscription, one thread, in order). Returns how many get_status replies there are now."""
    n = len(replies(sub, outp, "status"))
    broker.publish(inp, json.dumps({"cmd": "get_status"}))
    sub.wait_for(lambda msgs: len(replies_in(msgs, outp, "status")) > n, WAIT_S,
                 "a get_status reply")
    return n + 1


def still_retained(broker, inp, payload):
    """What a new subscriber gets at its SUBACK on inp (retained messages come first)."""
    late = broker.subscriber(inp)
    try:
        late.wait_count(inp, 1, WAIT_S)
        return [m.payload for m in late.on(inp)] == [payload]
    finally:
        late.close()


def send_retained(broker, sub, inp, outp, cmd):
    """Publishes cmd retained on inp and waits for the relay's reply to it."""
    broker.publish(inp, cmd, retain=True)
    sub.wait_count(outp, 1, WAIT_S, pred=lambda m: "model_info" in result_of(m))


def restart(relay, broker, sub, inp, outp, starts):
    """Restarts the relay (a new subscription: retained commands are delivered again) and
    waits until everything delivered at its SUBACK was handled."""
    relay.stop()
    relisten(relay)
    relay.start()
    wait_started(sub, outp, starts)
    barrier(broker, sub, inp, outp)


def test_refused_clear_runs_a_retained_command_once():
    name = device_name("refused")
    inp, outp = topic(name, "command/input"), topic(name, "command/output")
    cmd = json.dumps({"cmd": "get_model_info"}).encode()
    with Broker(PKI, acl=ACL) as broker:
        sub = broker.subscriber(topic(name, "#"))
        try:
            with Relay(overrides=relay_mqtt_config(broker, name)) as r:
                wait_started(sub, outp, 1)
                send_retained(broker, sub, inp, outp, cmd)
                barrier(broker, sub, inp, outp)
                # the relay tried to clear it and the broker refused: still retained
                wait_for("the refused clear in the broker's log",
                         lambda: "Denied PUBLISH from %s-ei-relay" % name in broker.log(),
                         timeout=WAIT_S)
                check(still_retained(broker, inp, cmd), "the command is no longer retained")
                eq(forwarder(r)["commands_replayed"], 0, "replays before any reconnect")

                # a restart subscribes again: the broker delivers the command, retained
                restart(r, broker, sub, inp, outp, 2)
                eq(len(replies(sub, outp, "model_info")), 1, "runs of the retained command")
                eq(forwarder(r)["commands_replayed"], 1, "replays recognised")
                check("already ran; not running it again" in r.log(), "the log says why")

                # and a broker restart (the relay reconnects on its own) changes nothing
                broker.restart()
                sub.close()
                sub = broker.subscriber(topic(name, "#"))
                wait_for("the relay to reconnect",
                         lambda: forwarder(r)["commands_replayed"], timeout=WAIT_S,
                         until=lambda n: n == 2, relay=r)
                barrier(broker, sub, inp, outp)
        finally:
            sub.close()


def test_cleared_command_runs_again_when_sent_again():
    """Where clearing works, the list is emptied by the clear's echo: the same command sent
    retained again later (while the relay is away) is a new command and runs."""
    name = device_name("again")
    inp, outp = topic(name, "command/input"), topic(name, "command/output")
    cmd = json.dumps({"cmd": "get_model_info"}).encode()
    with Broker(PKI) as broker:
        sub = broker.subscriber(topic(name, "#"))
        try:
            with Relay(overrides=relay_mqtt_config(broker, name)) as r:
                wait_started(sub, outp, 1)
                send_retained(broker, sub, inp, outp, cmd)
                sub.wait_count(inp, 1, WAIT_S, pred=lambda m: m.payload == b"")  # cleared
                barrier(broker, sub, inp, outp)  # the echo of the clear was handled before
                r.stop()
                broker.publish(inp, cmd, retain=True)  # sent again while the relay is away
                restart(r, broker, sub, inp, outp, 2)
                eq(len(replies(sub, outp, "model_info")), 2, "runs of the command sent twice")
                eq(forwarder(r)["commands_replayed"], 0, "replays")
        finally:
            sub.close()


def test_clear_that_costs_the_connection_is_not_repeated():
    """A broker that disconnects a client publishing a retained message (retain_available
    false; IoT Core without iot:RetainPublish): the first clear costs one reconnect, then the
    relay stops clearing, so the next commands cost none."""
    name = device_name("dropper")
    inp, outp = topic(name, "command/input"), topic(name, "command/output")
    with Broker(PKI, conf=["retain_available false"]) as broker:
        sub = broker.subscriber(topic(name, "#"))
        try:
            with Relay(overrides=relay_mqtt_config(broker, name)) as r:
                wait_started(sub, outp, 1)
                broker.publish(inp, json.dumps({"cmd": "get_model_info"}))
                sub.wait_count(outp, 1, WAIT_S, pred=lambda m: "model_info" in result_of(m))
                wait_for("the reconnect after the refused clear", lambda: forwarder(r),
                         timeout=WAIT_S, relay=r,
                         until=lambda d: d["reconnects"] == 1 and d["state"] == "connected")
                check("no longer cleared" in r.log(), "the log says the relay stops clearing")
                for i in range(3):
                    eq(barrier(broker, sub, inp, outp), i + 1, "get_status replies")
                eq(forwarder(r)["reconnects"], 1, "reconnects after three more commands")
        finally:
            sub.close()


if __name__ == "__main__":
    run_tests([test_refused_clear_runs_a_retained_command_once,
               test_cleared_command_runs_again_when_sent_again,
               test_clear_that_costs_the_connection_is_not_repeated])
