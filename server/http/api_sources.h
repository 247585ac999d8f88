/* api_sources.h - GET /api/v1/sources (read role): each configured source's state and counters,
 * read from the sources in the server's deps. Owned by the sources module's author. */
#ifndef EI_HTTP_API_SOURCES_H
#define EI_HTTP_API_SOURCES_H

#include "http/http_internal.h"

/* {"sources":[{"name","kind","state","last_error","inferences","bytes","lines","reconnects",
 *  "long_lines","noise_lines","empty_blocks","dropped","backoff_ms"}]}; last_error is null when
 * there was none. */
enum MHD_Result http_api_sources(http_req *r);

#endif
