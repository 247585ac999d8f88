/* api_sources.h - GET /api/v1/sources (read role) and the sources' part of /metrics: each
 * configured source's state and counters, read from the sources in the server's deps. */
#ifndef EI_HTTP_API_SOURCES_H
#define EI_HTTP_API_SOURCES_H

#include "http/http_internal.h"

/* {"sources":[{"name","kind","state","last_error","inferences","bytes","lines","reconnects",
 *  "long_lines","noise_lines","empty_blocks","dropped","backoff_ms"}]}; last_error is null when
 * there was none. */
enum MHD_Result http_api_sources(http_req *r);

/* Appends the ei_relay_source_* metrics (Prometheus text format 0.0.4) to b: one series per
 * source labelled {source="<name>",kind="<kind>"}, each metric name with its # HELP / # TYPE
 * once; a kind's own counters (serial: bytes, lines..., runner-ws: messages, frames...) only
 * for sources of that kind. Nothing when no source is configured. ER_NOMEM when b could not
 * grow (b then holds a partial rendering the caller must not serve). */
er_rc http_sources_metrics(http_req *r, util_buf *b);

#endif
