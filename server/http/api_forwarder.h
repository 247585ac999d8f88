/* api_forwarder.h - GET /api/v1/forwarder (read role): the MQTT forwarder's state and counters,
 * read from the forwarder in the server's deps (NULL when forwarding is off). */
#ifndef EI_HTTP_API_FORWARDER_H
#define EI_HTTP_API_FORWARDER_H

#include <stdbool.h>

#include "http/http_internal.h"

/* {"state","endpoint","client_id","last_error","connected_since","queue_depth",
 *  "oldest_pending_age_ms","in_flight","sent","acked","dropped","rejected","dead","reconnects",
 *  ...}; state "disabled" (and zeros from the store) when forwarding is off. */
enum MHD_Result http_api_forwarder(http_req *r);
/* Appends the ei_relay_forwarder_* metrics (nothing when forwarding is off). */
void http_forwarder_metrics(http_req *r, util_buf *b);

#endif
