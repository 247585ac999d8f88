/* forwarder.h - drains the store's outbox to AWS IoT Core (or any MQTT 3.1.1 broker over TLS)
 * on its own thread, in seq order, at least once: a row leaves the outbox only on PUBACK (QoS 1)
 * or once written (QoS 0); after a disconnect every unacknowledged row is sent again.
 *
 * States: disabled (no endpoint: no forwarder is made) / connecting / connected / backoff.
 * Reconnects back off exponentially with full jitter (reconnect_min_ms..reconnect_max_ms); a
 * connection that dies within 10 s of its CONNACK does not reset the backoff, and then the
 * next connections send one message at a time until every row that was in flight at the death
 * is acknowledged (or dead), so a message that makes the broker drop the connection is found
 * and counted (dead-lettered after max_attempts) instead of blocking the queue, and no later
 * row overtakes it. CONNECTs are at least 1 s apart. Publishes are paced by token
 * buckets (publish_rate_max/s, publish_bytes_max B/s) with at most mqtt_inflight unacknowledged.
 * The thread reads and renders the outbox ahead of the window; in a steady drain paho's PUBACK
 * callback publishes the next rendered message itself (forward_internal.h, forwarder_window.c).
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
#include "core/report.h"
#include "forward/policy.h"
#include "store/store.h"

typedef struct forwarder forwarder;

/* cfg, st, pol and device are borrowed and must outlive the forwarder. Subscribes to st's
 * commits, so create it before traffic. Needs cfg->mqtt_endpoint. */
er_rc forwarder_create(const config *cfg, store *st, policy *pol, const char *device,
                       forwarder **out, er_err *err);
/* Stops sending, waits up to 1 s for the acks of the publishes in flight (their rows leave
 * the outbox), stops the thread and disconnects (up to 1 s more). Rows still unacknowledged
 * stay in the outbox and are sent again on the next start. Idempotent; NULL is fine. */
void forwarder_stop(forwarder *f);
/* Stops (if needed) and frees. The store keeps calling the forwarder's commit hook until
 * store_destroy (there is no unsubscribe), so call this after store_destroy: relay.c stops the
 * forwarder, destroys the store, then destroys the forwarder. NULL is fine. */
void forwarder_destroy(forwarder *f);

/* The forwarder's report part (core/report.h), named "forwarder": status() is THE status object
 * (GET /api/v1/forwarder; the live stream copies its keys), prom() the ei_relay_forwarder_*
 * series of /metrics. Both read a snapshot under the forwarder's lock; any thread. f must
 * outlive every reader of the part. */
void forwarder_report(forwarder *f, report_part *out);

/* What the part reads when forwarding is off (no forwarder is made); borrowed, it must outlive
 * every reader of the part. */
typedef struct forwarder_disabled {
    store *st;
    const config *cfg;
} forwarder_disabled;
/* Forwarding off: the same status object with state "disabled", the outbox's waiting and dead
 * rows (of an earlier run) from the store and the configured qos, zeros elsewhere; no series. */
void forwarder_report_disabled(forwarder_disabled *off, report_part *out);

/* True once a restart command was handled; the forwarder has then also sent SIGTERM to the
 * process so main shuts down cleanly and the supervisor starts it again. */
bool forwarder_restart_requested(forwarder *f);

#endif
