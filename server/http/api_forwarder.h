/* api_forwarder.h - GET /api/v1/forwarder (read role): the MQTT forwarder's state and counters.
 * The route is matched here rather than in http_parse.c, so the forwarder's endpoint stays in
 * the forwarder's files; http.c asks http_forwarder_route after the table misses. */
#ifndef EI_HTTP_API_FORWARDER_H
#define EI_HTTP_API_FORWARDER_H

#include <stdbool.h>

#include "http/http_internal.h"

#define HTTP_FORWARDER_PATH "/api/v1/forwarder"

/* If path is the forwarder's, fills out (status 0, or 405 with allow) and returns true. */
bool http_forwarder_route(const char *method, const char *path, http_route *out);
/* {"state","endpoint","client_id","last_error","connected_since","queue_depth",
 *  "oldest_pending_age_ms","in_flight","sent","acked","dropped","rejected","dead","reconnects",
 *  ...}; state "disabled" (and zeros from the store) when forwarding is off. */
enum MHD_Result http_api_forwarder(http_req *r);
/* Appends the ei_relay_forwarder_* metrics (nothing when forwarding is off). */
void http_forwarder_metrics(http_req *r, util_buf *b);

#endif
