/* forward_internal.h - what the forwarder's files share and no other module includes: the one
 * forwarder's state snapshot (forwarder.c) and the one status writer (forwarder_report.c) that
 * forwarder.c uses for the get_status command's reply.
 * Functions one file offers another are forward__*. */
#ifndef EI_FORWARD_FORWARD_INTERNAL_H
#define EI_FORWARD_FORWARD_INTERNAL_H

#include <stdbool.h>

#include "forward/forwarder.h"

struct cJSON;

/* One snapshot of the forwarder's state and counters, for its one status writer. */
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
    int64_t qos;            /* iotcore_qos, the QoS of every publish */
} forwarder_status;

void forwarder_get_status(forwarder *f, forwarder_status *out);

/* Adds s to o under the get_status command's key names ("connection", "dead_letters", ...);
 * false when out of memory. */
bool forward__status_command(const forwarder_status *s, struct cJSON *o);

#endif
