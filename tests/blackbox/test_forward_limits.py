# test_forward_limits.py - black-box: the forwarder against IoT Core's limits on a real TLS
# mosquitto (message_size_limit 131072). An image too big for one message is shrunk (or left
# out with image_omitted) so the message fits; a message the broker refuses is dead-lettered
# after max_attempts without blocking the next; a full outbox drops the oldest or rejects the
# new under outbox_on_full, counted and visible per inference, and the cache keeps everything.
from harness import Relay, check, eq, make_jpeg, new_id, run_tests
from harness.mqtt import (MQTT_PAYLOAD_MAX, Broker, device_name, first_ids, jpeg_b64_ok, make_pki,
                          relay_mqtt_config, require_tools, topic, wait_forwarder, wait_publish)

require_tools()
PKI = make_pki()
WAIT_S = 20


def big_jpeg():
    """A JPEG whose base64 alone is over the payload limit."""
    for noise in (10, 20):
        jpg = make_jpeg(1024, 768, noise=noise, seed=7)
        if len(jpg) * 4 // 3 > MQTT_PAYLOAD_MAX + 4096:
            return jpg
    raise AssertionError("could not make a JPEG over %d bytes (%d)" % (MQTT_PAYLOAD_MAX,
                                                                        len(jpg)))


def test_oversize_image_shrunk_to_fit():
    name = device_name("big")
    out = topic(name, "inference/output")
    with Broker(PKI) as b:
        sub = b.subscriber(topic(name, "#"))
        try:
            cfg = relay_mqtt_config(b, name, publish_inference_base64_image="yes")
            with Relay(overrides=cfg) as r:
                jpg = big_jpeg()
                ident = new_id()
                r.ingest_multipart({"id": ident, "result": {"classification": {"a": 0.6,
                                                                               "b": 0.4}}},
                                   jpg, "image/jpeg")
                marker = new_id()
                r.ingest({"id": marker, "result": {"classification": {"m": 1.0}}})
                # the broker silently drops a payload over its limit: a missing message here
                # means the forwarder sent it too big
                sub.wait_count(out, 1, WAIT_S, pred=lambda m: m.json().get("id") == marker)
                msgs = [m for m in sub.on(out) if m.json().get("id") == ident]
                check(msgs, "the big-image inference never arrived (sent over %d bytes?)" %
                      MQTT_PAYLOAD_MAX)
                m = msgs[0]
                check(len(m.payload) <= MQTT_PAYLOAD_MAX, "payload %d bytes" % len(m.payload))
                keys = [k for k, _ in m.pairs()]
                doc = m.json()
                if "image" in doc:
                    check(jpeg_b64_ok(doc["image"]), "shrunk image is not base64 JPEG")
                    check(len(doc["image"]) < len(jpg) * 4 // 3, "image not smaller")
                    eq(keys[keys.index("ts") + 1], "image", "image right after ts")
                else:
                    eq(doc.get("image_omitted"), True, "no image and no image_omitted flag")
                    check(keys.index("image_omitted") > keys.index("s3_prefix"),
                          "image_omitted is an appended field: %r" % keys)
                wait_publish(r, ident, "published", WAIT_S)
                # the local cache keeps the original image
                img = r.get("/api/v1/inferences/%s/image" % ident)
                eq(img.status, 200, "stored image")
                eq(img.body, jpg, "stored image is the original")
        finally:
            sub.close()


def test_refused_message_dead_lettered_not_blocking():
    """mosquitto completes the QoS 1 flow for a payload over message_size_limit (a 3.1.1
    client cannot see that refusal), so the refusal here is a disconnect for a packet over
    max_packet_size, as IoT Core does: the row is retried max_attempts times, then dead."""
    name = device_name("dead")
    out = topic(name, "inference/output")
    with Broker(PKI, max_packet_size=16384) as b:
        sub = b.subscriber(topic(name, "#"))
        try:
            with Relay(overrides=relay_mqtt_config(b, name, max_attempts=3)) as r:
                first = new_id()
                r.ingest({"id": first, "result": {"classification": {"ok": 1.0}}})
                sub.wait_count(out, 1, WAIT_S)
                poison = new_id()
                r.ingest({"id": poison, "info": "p" * 40000,
                          "result": {"classification": {"poison": 1.0}}})
                after = [new_id() for _ in range(3)]
                for ident in after:
                    r.ingest({"id": ident, "result": {"classification": {"after": 1.0}}})
                # generous: each attempt costs a disconnect and a reconnect (<= 1 CONNECT/s)
                sub.wait_for(lambda msgs: set(after) <= {m.json().get("id") for m in msgs
                                                         if m.topic == out},
                             45, "the rows after the refused one")
                eq([i for i in first_ids(sub.on(out)) if i in after], after, "order after")
                eq([m for m in sub.on(out) if m.json().get("id") == poison], [],
                   "refused message delivered")
                eq(wait_publish(r, poison, "dead", WAIT_S), "dead", "poison row")
                doc = wait_forwarder(r, lambda d: d.get("queue_depth") == 0, WAIT_S, "drained")
                eq(doc.get("dead"), 1, "dead counter")
                for ident in after:
                    wait_publish(r, ident, "published", WAIT_S)
        finally:
            sub.close()


def test_message_too_big_without_image_dead_lettered():
    """A message over the limit even without an image (a huge info) cannot be sent: dead
    letter at once, visible in the API, and the rows after it still go."""
    name = device_name("toobig")
    out = topic(name, "inference/output")
    with Broker(PKI) as b:
        sub = b.subscriber(topic(name, "#"))
        try:
            # an info that big passes only a raised max_info_bytes (a result of up to
            # max_result_bytes can make such a message under the defaults)
            cfg = dict(relay_mqtt_config(b, name), max_info_bytes=2 * MQTT_PAYLOAD_MAX)
            with Relay(overrides=cfg) as r:
                poison = new_id()
                r.ingest({"id": poison, "info": "i" * (MQTT_PAYLOAD_MAX + 1000),
                          "result": {"classification": {"huge": 1.0}}})
                after = new_id()
                r.ingest({"id": after, "result": {"classification": {"after": 1.0}}})
                sub.wait_count(out, 1, WAIT_S, pred=lambda m: m.json().get("id") == after)
                eq([m for m in sub.on(out) if m.json().get("id") == poison], [],
                   "oversize message delivered")
                eq(wait_publish(r, poison, "dead", WAIT_S), "dead", "oversize row")
                doc = wait_forwarder(r, lambda d: d.get("queue_depth") == 0, WAIT_S, "drained")
                eq(doc.get("dead"), 1, "dead counter")
                eq(r.get_json("/api/v1/inferences/" + poison)["id"], poison, "still cached")
        finally:
            sub.close()


def outbox_full(policy):
    name = device_name("full-" + policy)
    out = topic(name, "inference/output")
    with Broker(PKI) as b:
        sub = b.subscriber(topic(name, "#"), client_id="ei-bb-full-%s" % name)
        b.stop()  # broker down (the test subscriber's session is kept for the restart)
        try:
            cfg = relay_mqtt_config(b, name, outbox_max_rows=5, outbox_on_full=policy)
            with Relay(overrides=cfg) as r:
                ids = []
                for i in range(10):
                    ident = new_id()
                    ids.append(ident)
                    r.ingest({"id": ident, "result": {"classification": {"n%d" % i: 0.9}}})
                kept, lost = (ids[5:], ids[:5]) if policy == "drop_oldest" else \
                    (ids[:5], ids[5:])
                for ident in kept:
                    eq(wait_publish(r, ident, ("pending",), WAIT_S), "pending", "kept row")
                for ident in lost:
                    v = wait_publish(r, ident, ("dropped", "rejected"), WAIT_S)
                    check(v in ("dropped", "rejected"), "lost row %s" % v)
                doc = wait_forwarder(r, lambda d: d.get("queue_depth") == 5, WAIT_S, "depth 5")
                counter = "dropped" if policy == "drop_oldest" else "rejected"
                eq(doc.get(counter), 5, "%s counter (%r)" % (counter, doc))
                eq(r.count(), 10, "every inference still cached")
                b.start()
                sub.reconnect()
                order = sub.wait_for(
                    lambda msgs: (lambda got: got if set(kept) <= set(got) else None)(
                        first_ids([m for m in msgs if m.topic == out])),
                    WAIT_S, "the kept rows")
                eq([i for i in order if i in ids], kept, "delivered exactly the kept rows")
                wait_forwarder(r, lambda d: d.get("queue_depth") == 0, WAIT_S, "drained")
                eq([i for i in first_ids(sub.on(out)) if i in lost], [], "lost rows sent")
        finally:
            sub.close()


def test_outbox_full_drop_oldest():
    outbox_full("drop_oldest")


def test_outbox_full_reject_new():
    outbox_full("reject_new")


if __name__ == "__main__":
    run_tests([test_oversize_image_shrunk_to_fit, test_message_too_big_without_image_dead_lettered,
               test_refused_message_dead_lettered_not_blocking,
               test_outbox_full_drop_oldest, test_outbox_full_reject_new])
