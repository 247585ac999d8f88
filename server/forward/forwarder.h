/* forwarder.h - drains the store's outbox to AWS IoT Core (or any MQTT 3.1.1 broker over TLS)
 * on its own thread, in seq order, at least once: a row leaves the outbox only on PUBACK (QoS 1)
 * or once written (QoS 0); after a disconnect every unacknowledged row is sent again.
 *
 * States: disabled (no endpoint: no forwarder is made) / connecting / connected / backoff.
 * Reconnects back off exponentially with full jitter (reconnect_min_ms..reconnect_max_ms); a
 * connection that dies within 10 s of its CONNACK does not reset the backoff, and then the next
 * connection sends one message at a time until one is acknowledged, so a message that makes
 * the broker drop the connection is found and counted (dead-lettered after max_attempts)
 * instead of blocking the queue. CONNECTs are at least 1 s apart. Publishes are paced by token
 * buckets (publish_rate_max/s, publish_bytes_max B/s) with at most mqtt_inflight unacknowledged.
 * The thread sleeps on a condition variable: the store's commit notification, paho callbacks
 * and timers (backoff, pacing, metrics every metrics_sleeptime_ms) wake it.
 *
 * On every connection it subscribes to .../command/input (QoS 1); once per process it
 * publishes the start message on .../command/output. Commands: forward/commands.h.
 * Owned by the forwarder module; relay.c creates it after the store and the policy and
 * destroys it before them. */
#ifndef EI_FORWARD_FORWARDER_H
#define EI_FORWARD_FORWARDER_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/rc.h"
#include "forward/policy.h"
#include "store/store.h"

typedef struct forwarder forwarder;

/* cfg, st, pol and device are borrowed and must outlive the forwarder. Subscribes to st's
 * commits, so create it before traffic. Needs cfg->mqtt_endpoint. */
er_rc forwarder_create(const config *cfg, store *st, policy *pol, const char *device,
                       forwarder **out, er_err *err);
/* Stops the thread and disconnects (waiting up to 1 s for queued work). Rows still in flight
 * stay in the outbox and are sent again on the next start. Idempotent; NULL is fine. */
void forwarder_stop(forwarder *f);
/* Stops (if needed) and frees. The store keeps calling the forwarder's commit hook until
 * store_destroy (there is no unsubscribe), so call this after store_destroy: relay.c stops the
 * forwarder, destroys the store, then destroys the forwarder. NULL is fine. */
void forwarder_destroy(forwarder *f);

typedef struct forwarder_status {
    const char *state; /* "connecting", "connected", "backoff" (static string) */
    char endpoint[300];
    char client_id[256];
    char last_error[320];    /* "" if none */
    int64_t connected_since; /* epoch ms of the current connection's CONNACK; 0 if down */
    int64_t queue_depth;     /* outbox rows waiting (store) */
    int64_t oldest_pending_age_ms;
    int64_t in_flight;      /* published, not yet acknowledged */
    int64_t sent;           /* inference publishes handed to the client since start */
    int64_t acked;          /* rows acknowledged (deleted from the outbox) since start */
    int64_t dropped;        /* outbox full, oldest dropped (store, since start) */
    int64_t rejected;       /* outbox full, new not queued (store, since start) */
    int64_t dead;           /* dead-lettered rows (store) */
    int64_t reconnects;     /* connection attempts after the first */
    int64_t shrunk;         /* images re-encoded smaller to fit */
    int64_t omitted;        /* images left out ("image_omitted") */
    int64_t commands;       /* commands handled */
    bool restart_requested; /* a restart command was received */
} forwarder_status;

void forwarder_get_status(forwarder *f, forwarder_status *out);

/* True once a restart command was handled; the forwarder has then also sent SIGTERM to the
 * process so main shuts down cleanly and the supervisor starts it again. */
bool forwarder_restart_requested(forwarder *f);

#endif
