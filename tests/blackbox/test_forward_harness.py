# test_forward_harness.py - self-test of the forwarder tests' broker harness (harness/mqtt.py),
# without ei-relay: the generated PKI, mosquitto's TLS setup and limits, and the test client's
# view of retained flags, raw payloads and sessions across a broker restart. If these fail, the
# forwarder tests' verdicts mean nothing.
import ssl

from harness import check, eq, run_tests
from harness.mqtt import MQTT_PAYLOAD_MAX, Broker, MqttClient, MqttError, make_pki, require_tools

require_tools()
PKI = make_pki()


def test_retained_flag_and_raw_payload():
    with Broker(PKI) as b:
        sub = b.subscriber("/edgeimpulse/#")
        try:
            payload = b'{"b":1,"a":2}'
            b.publish("/edgeimpulse/device/x/command/input", payload, retain=True)
            m = sub.wait_count("/edgeimpulse/device/x/command/input", 1, 5)[0]
            eq(m.payload, payload, "raw payload")
            eq([k for k, _ in m.pairs()], ["b", "a"], "key order as sent")
            # a new subscriber gets the stored message with the retain flag set
            late = b.subscriber("/edgeimpulse/device/x/command/input")
            try:
                r = late.wait_count("/edgeimpulse/device/x/command/input", 1, 5)[0]
                check(r.retain, "retained message delivered without retain flag")
                eq(r.payload, payload, "retained payload")
                # clearing: an empty retained message removes it; a later subscriber gets only
                # the marker published after its SUBACK
                b.publish("/edgeimpulse/device/x/command/input", b"", retain=True)
            finally:
                late.close()
            later = b.subscriber("/edgeimpulse/device/x/command/input")
            try:
                b.publish("/edgeimpulse/device/x/command/input", b"marker")
                first = later.wait_count("/edgeimpulse/device/x/command/input", 1, 5)[0]
                eq(first.payload, b"marker", "first message after clearing")
                check(not first.retain, "marker is live, not retained")
            finally:
                later.close()
        finally:
            sub.close()


def test_session_survives_broker_restart():
    with Broker(PKI) as b:
        sub = b.subscriber("t/#", client_id="ei-bb-harness-session")
        try:
            b.publish("t/1", b"one")
            sub.wait_count("t/1", 1, 5)
            b.stop()
            sub.wait_for(lambda _m: not sub.connected, 5, "subscriber to see the broker go")
            b.start()
            b.publish("t/2", b"two")  # queued for the offline session
            sub.reconnect()
            check(sub.session_present, "session kept across the restart")
            m = sub.wait_count("t/2", 1, 5)[0]
            eq(m.payload, b"two", "queued message after reconnect")
        finally:
            sub.close()


def test_payload_limit_and_packet_limit():
    with Broker(PKI) as b:
        sub = b.subscriber("big/#")
        try:
            # over message_size_limit: the QoS 1 flow completes (PUBACK) but nothing is
            # delivered - a v3.1.1 client cannot see the refusal
            b.publish("big/over", b"x" * (MQTT_PAYLOAD_MAX + 1))
            b.publish("big/at", b"y" * MQTT_PAYLOAD_MAX)
            got = sub.wait_count("big/at", 1, 10)
            eq(len(got[0].payload), MQTT_PAYLOAD_MAX, "payload at the limit delivered")
            eq(sub.on("big/over"), [], "payload over the limit delivered")
        finally:
            sub.close()
    with Broker(PKI, max_packet_size=4096) as b:
        c = b.client("ei-bb-harness-big")
        c.connect()
        try:
            c.publish("big/x", b"z" * 8192)
            raise AssertionError("a packet over max_packet_size was acknowledged")
        except MqttError:
            pass  # disconnected: the refusal a client can observe
        finally:
            c.close()
        check("disconnect" in b.log().lower() or "too large" in b.log().lower(),
              "broker log names the disconnect")


def test_wrong_ca_and_wrong_host_refused():
    with Broker(PKI) as b:
        c = MqttClient(b.port, PKI["other_ca"], PKI["tester_cert"], PKI["tester_key"],
                       "ei-bb-harness-ca")
        try:
            c.connect()
            raise AssertionError("connected with an unrelated CA")
        except ssl.SSLCertVerificationError:
            pass
        finally:
            c.close()
    with Broker(PKI, server="wronghost") as b:
        c = b.client("ei-bb-harness-host", host="localhost")
        c.host = "localhost"
        try:
            c.connect()
            raise AssertionError("connected to a certificate for other.example as localhost")
        except ssl.SSLCertVerificationError as e:
            check("other.example" in str(e) or "match" in str(e).lower(), str(e))
        finally:
            c.close()


def test_client_certificate_required():
    with Broker(PKI) as b:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(PKI["ca"])
        import socket
        raw = socket.create_connection(("127.0.0.1", b.port), timeout=5)
        try:
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            # TLS 1.3: the refusal of a missing client certificate arrives with the first read
            s.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x00\x00\x00")
            data = s.recv(4)
            eq(data, b"", "broker answered a client without certificate")
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            pass
        finally:
            raw.close()


if __name__ == "__main__":
    run_tests([test_retained_flag_and_raw_payload, test_session_survives_broker_restart,
               test_payload_limit_and_packet_limit, test_wrong_ca_and_wrong_host_refused,
               test_client_certificate_required])
