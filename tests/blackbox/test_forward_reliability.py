# test_forward_reliability.py - black-box: store-and-forward against a real TLS mosquitto.
# QoS 1 delivery empties the outbox; a broker outage during ingest loses nothing and keeps seq
# order; a connection lost in the middle of an unpaced drain (where paho's PUBACK callback
# refills the window) loses nothing, repeats and reorders at most the window; kill -9 of ei-relay in the
# middle of a paced drain loses nothing; a server certificate
# from the wrong CA or for the wrong host name is refused, reported in the API and logged once
# per state change rather than once per attempt.
import re

from harness import Relay, check, eq, new_id, run_tests
from harness.live import post_many
from harness.mqtt import (Broker, device_name, first_ids, forwarder, make_pki, relay_mqtt_config,
                          relisten, require_tools, topic, wait_forwarder, wait_publish, wait_text)

require_tools()
PKI = make_pki()
WAIT_S = 20


def ingest_n(r, n, tag):
    ids = []
    for i in range(n):
        ident = new_id()
        ids.append(ident)
        r.ingest({"id": ident, "result": {"classification": {tag: 0.5, "i%d" % i: 0.5}}})
    return ids


def all_arrived(sub, out, ids, timeout):
    want = set(ids)

    def done(msgs):
        got = {m.json().get("id") for m in msgs if m.topic == out}
        return want <= got
    sub.wait_for(done, timeout, "all %d inferences on %s" % (len(ids), out))
    return first_ids(sub.on(out))


def test_qos1_delivery_drains_outbox():
    name = device_name("qos1")
    out = topic(name, "inference/output")
    with Broker(PKI) as b:
        sub = b.subscriber(topic(name, "#"))
        try:
            with Relay(overrides=relay_mqtt_config(b, name)) as r:
                ids = ingest_n(r, 20, "q")
                order = all_arrived(sub, out, ids, WAIT_S)
                eq(order, ids, "arrival order is seq order")
                for m in sub.on(out):
                    eq(m.qos, 1, "QoS of %s" % m.json()["id"])
                doc = wait_forwarder(r, lambda d: d.get("queue_depth") == 0 and
                                     d.get("acked", 0) >= 20, WAIT_S, "empty outbox")
                eq(doc.get("in_flight"), 0, "in_flight after drain")
                eq(doc.get("dead"), 0, "dead")
                eq(doc.get("state"), "connected", "state")
                for ident in ids:
                    wait_publish(r, ident, "published", WAIT_S)
        finally:
            sub.close()


def test_broker_outage_loses_nothing_in_order():
    name = device_name("outage")
    out = topic(name, "inference/output")
    n = 30
    with Broker(PKI) as b:
        sub = b.subscriber(topic(name, "#"), client_id="ei-bb-outage-%s" % name)
        try:
            with Relay(overrides=relay_mqtt_config(b, name)) as r:
                before = ingest_n(r, 3, "before")
                all_arrived(sub, out, before, WAIT_S)
                b.stop()
                wait_forwarder(r, lambda d: d.get("state") != "connected", WAIT_S,
                               "forwarder to notice the broker is gone")
                during = ingest_n(r, n, "during")
                doc = wait_forwarder(r, lambda d: d.get("queue_depth", 0) >= n, WAIT_S,
                                     "backlog of %d" % n)
                check(doc.get("state") != "connected", "connected to a stopped broker: %r" % doc)
                for ident in during[:3]:
                    eq(wait_publish(r, ident, "pending", 1), "pending", "view while offline")
                b.start()
                sub.reconnect()
                check(sub.session_present, "test subscriber lost its session")
                order = all_arrived(sub, out, during, WAIT_S)
                order = [i for i in order if i in set(during)]
                eq(order, during, "first arrivals in seq order after the outage")
                wait_forwarder(r, lambda d: d.get("queue_depth") == 0 and
                               d.get("state") == "connected", WAIT_S, "drained")
                for ident in during:
                    wait_publish(r, ident, "published", WAIT_S)
        finally:
            sub.close()


def test_takeover_mid_drain_loses_nothing():
    """A backlog drained unpaced (the PUBACK callback publishes the next prepared message); a
    client taking over the relay's client id drops its connection in the middle: every row
    arrives, no more than the window out of seq order, and no more repeats than the window per
    lost connection (prepared but unsent messages are dropped and read again from the
    outbox)."""
    name = device_name("takeover")
    out = topic(name, "inference/output")
    n, window = 2000, 10
    with Broker(PKI) as b:
        sub = b.subscriber(topic(name, "#"), client_id="ei-bb-takeover-%s" % name)
        try:
            cfg = relay_mqtt_config(b, name, mqtt_inflight=window)
            with Relay(overrides=cfg) as r:
                b.stop()  # a backlog builds while the broker is away
                wait_forwarder(r, lambda d: d.get("state") != "connected", WAIT_S, "broker gone")
                docs = [({"id": new_id(), "result": {"classification": {"t": 0.5, "u": 0.5}}},
                         None) for _ in range(n)]
                views, _, _ = post_many(r, docs)
                seq = {v["id"]: v["seq"] for v in views}
                ids = sorted(seq, key=seq.get)  # seq order
                b.start()
                sub.reconnect()
                # the relay's own count: the test's subscriber lags behind a fast drain
                doc = wait_forwarder(r, lambda d: d.get("sent", 0) >= 100, WAIT_S, "drain")
                before = doc.get("reconnects", 0)
                kicker = b.client(cfg["mqtt_client_id"])  # the broker drops the relay
                kicker.connect()
                kicker.close()
                left = forwarder(r).get("queue_depth", 0)  # no ingest: it only shrinks
                check(left > 0, "the drain ended before the takeover")
                order = all_arrived(sub, out, ids, WAIT_S)
                eq(len(order), n, "distinct messages")
                # Publishes paho had queued but not written when the connection dropped go
                # first on the next one (mqtt.h), ahead of the older rows of the same window
                # that were written and lost: first arrivals are in seq order up to the window.
                rank = {ident: k for k, ident in enumerate(ids)}
                worst = max(abs(rank[ident] - k) for k, ident in enumerate(order))
                check(worst <= window, "a first arrival %d places from its seq order (more "
                      "than the window of %d): %r" % (worst, window,
                                                      [seq[i] for i in order[:300]]))
                doc = wait_forwarder(r, lambda d: d.get("queue_depth") == 0 and
                                     d.get("state") == "connected" and d.get("in_flight") == 0,
                                     WAIT_S, "drained")
                eq(doc.get("dead"), 0, "dead")
                lost = doc.get("reconnects", 0) - before
                check(lost >= 1, "the takeover did not drop the relay's connection: %r" % doc)
                dup = len(sub.on(out)) - n
                check(dup <= window * lost, "%d repeats for %d lost connections: more than the "
                      "window of %d each" % (dup, lost, window))
        finally:
            sub.close()


def test_kill9_mid_drain_loses_nothing():
    name = device_name("kill")
    out = topic(name, "inference/output")
    n = 60
    with Broker(PKI) as b:
        sub = b.subscriber(topic(name, "#"))
        try:
            # paced to 20/s so a backlog builds and the kill lands in the middle of the drain
            with Relay(overrides=relay_mqtt_config(b, name, publish_rate_max=20)) as r:
                ids = ingest_n(r, n, "k")  # every one acknowledged (201)
                sub.wait_count(out, 5, WAIT_S)
                got_before = len({m.json()["id"] for m in sub.on(out)})
                r.kill9()
                check(got_before < n, "drain finished before the kill (%d of %d): pacing "
                      "publish_rate_max=20 not applied" % (got_before, n))
                relisten(r)
                r.start()
                order = all_arrived(sub, out, ids, WAIT_S)
                eq(order, ids, "first arrivals in seq order across the restart")
                dup = len(sub.on(out)) - n
                check(dup <= 100, "%d duplicates: more than the in-flight window" % dup)
                wait_forwarder(r, lambda d: d.get("queue_depth") == 0, WAIT_S, "drained")
                for ident in ids:
                    wait_publish(r, ident, "published", WAIT_S)
        finally:
            sub.close()


ERR_LINE = r"^.*\b(warn|error)\b.*(certif|tls|ssl|verif|handshake).*$"


def check_refused(broker, name, ca, why):
    """The relay cannot connect: nothing delivered while the broker sees it try again and
    again, the API says why, and the warning is not logged per attempt."""
    out = topic(name, "inference/output")
    sub = broker.subscriber(topic(name, "#"))
    base = len(broker.log())  # the broker's log from here on shows only the relay's attempts

    def relay_part():
        return broker.log()[base:]
    try:
        with Relay(overrides=relay_mqtt_config(broker, name, ca=ca)) as r:
            ids = ingest_n(r, 3, "refused")
            # at least 3 TLS attempts seen by the broker (reconnect_max_ms 1000: a few seconds)
            wait_text(relay_part, r"New connection from 127\.0\.0\.1", 3, WAIT_S,
                      "relay connection attempts in the broker log", relay=r)
            doc = wait_forwarder(r, lambda d: bool(d.get("last_error")), WAIT_S, "last_error")
            check(doc.get("state") != "connected", "state %r with %s" % (doc.get("state"), why))
            check(re.search(r"certif|tls|ssl|verif|handshake", str(doc["last_error"]), re.I),
                  "last_error does not name the TLS/certificate problem: %r" % doc["last_error"])
            eq(doc.get("queue_depth"), 3, "queue depth while refused")
            eq(sub.on(out), [], "delivered despite %s" % why)
            for ident in ids:
                eq(wait_publish(r, ident, "pending", 1), "pending", "view while refused")
            attempts = len(re.findall(r"New connection from 127\.0\.0\.1", relay_part()))
            lines = re.findall(ERR_LINE, r.log(), re.I | re.M)
            check(len(lines) >= 1, "the TLS failure is not logged at warn/error")
            check(len(lines) <= 2 and len(lines) < attempts,
                  "TLS failure logged %d times for %d attempts (hot loop): %r" %
                  (len(lines), attempts, lines[:5]))
    finally:
        sub.close()


def test_wrong_ca_refused():
    with Broker(PKI) as b:
        check_refused(b, device_name("wrongca"), PKI["other_ca"], "a server cert from another CA")


def test_wrong_host_name_refused():
    with Broker(PKI, server="wronghost") as b:
        check_refused(b, device_name("wronghost"), None, "a server cert for other.example")


if __name__ == "__main__":
    run_tests([test_qos1_delivery_drains_outbox, test_broker_outage_loses_nothing_in_order,
               test_takeover_mid_drain_loses_nothing,
               test_kill9_mid_drain_loses_nothing, test_wrong_ca_refused,
               test_wrong_host_name_refused])
