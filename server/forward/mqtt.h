/* mqtt.h - one MQTT 3.1.1 connection over TLS with paho.mqtt.c's asynchronous client
 * (paho-mqtt3as), wrapped so the forwarder never sees paho types. One mqtt object (one paho
 * client) serves every connection attempt: after a down callback, mqtt_reconnect starts the next
 * one; gen, given per attempt, tells the callbacks apart.
 *
 * Why not a fresh client per connection: a publish that paho has queued but not yet written when
 * the connection drops (MQTTAsync_send raced the loss, or it waited behind a large write or the
 * in-flight window) stays in paho's command queue, and MQTTAsync_destroy (paho 1.3.11) frees
 * such a command without its topic and payload copies (MQTTAsync_NULLPublishCommands clears
 * them as if the protocol layer owned them). Destroying the client at every loss leaked those
 * bytes on each flap. Kept, the client sends them on the next connection, which frees them;
 * their done callbacks then carry the new gen and a token no current publish has.
 *
 * TLS always verifies the server certificate and the host name; on port 443 the ALPN protocol
 * x-amzn-mqtt-ca is offered (IoT Core's MQTT over 443). Clean session, no paho reconnect:
 * durable state is the store's outbox, and the forwarder runs its own backoff.
 *
 * Callbacks run on paho's threads, some with paho's client mutex held: they hand the event over
 * (lock, queue, signal); done may also call mqtt_publish (MQTTAsync_send from paho's own threads
 * does not take that mutex again) but never mqtt_destroy, and a caller that holds a lock the
 * callbacks take must not call into this module. Owned by the forwarder. */
#ifndef EI_FORWARD_MQTT_H
#define EI_FORWARD_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"

typedef struct mqtt mqtt;

typedef struct mqtt_callbacks {
    void *arg;
    /* CONNACK accepted */
    void (*connected)(void *arg, uint64_t gen);
    /* the connection attempt failed, or an established connection was lost; reason is a short
     * sentence (TLS error, CONNACK refusal, "connection lost: ...") */
    void (*down)(void *arg, uint64_t gen, bool was_connected, const char *reason);
    /* a publish or subscribe finished: ok = PUBACK/SUBACK received (QoS 0: written) */
    void (*done)(void *arg, uint64_t gen, int token, bool ok);
    /* a message on a subscribed topic (payload not NUL-terminated) */
    void (*message)(void *arg, uint64_t gen, const char *topic, const void *payload, size_t len,
                    bool retained);
} mqtt_callbacks;

/* Every string must outlive the mqtt object: reconnects use them again. */
typedef struct mqtt_opts {
    const char *host;
    int port;
    const char *ca, *cert, *key; /* PEM file paths; ca NULL = the system's default CA paths */
    const char *client_id;
    int keepalive_s;
    int max_inflight; /* paho's own bound on unacknowledged messages */
    uint64_t gen;     /* passed back to every callback (until mqtt_reconnect) */
} mqtt_opts;

/* Creates the client and starts connecting; the outcome arrives as connected or down. */
er_rc mqtt_connect(const mqtt_opts *o, const mqtt_callbacks *cb, mqtt **out, er_err *err);

/* Starts the next connection attempt on the same client, after the down callback of the last
 * one; callbacks from now on carry gen. Errors as mqtt_connect (the client stays usable for
 * mqtt_destroy). */
er_rc mqtt_reconnect(mqtt *m, uint64_t gen, er_err *err);

/* Queues a publish; *token identifies it in the done callback. ER_CLOSED when not connected,
 * ER_AGAIN when paho's buffer is full, ER_INVALID when paho refuses the message itself (topic,
 * QoS, size), ER_IO otherwise; err says which. */
er_rc mqtt_publish(mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                   bool retained, int *token, er_err *err);
er_rc mqtt_subscribe(mqtt *m, const char *topic, int qos, int *token);

/* Disconnects at once (publishes still unacknowledged are abandoned: the caller waits for the
 * acks it wants first), waiting at most timeout_ms for paho to send the DISCONNECT, and frees;
 * no callback runs after it returns. NULL is fine. Not from a callback. */
void mqtt_destroy(mqtt *m, int timeout_ms);

#endif
