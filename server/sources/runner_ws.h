/* runner_ws.h - the pure part of the "runner-ws" source kind (runner_ws.c; the kind itself is a
 * row of the sources' kinds table, sources_internal.h): its URL syntax, unit-tested on its own.
 * Owned by the sources module. */
#ifndef EI_SOURCES_RUNNER_WS_H
#define EI_SOURCES_RUNNER_WS_H

#include <stddef.h>

#include "core/rc.h"

/* Parses "ws://host[:port][/path]" (port 80 when absent, path "/" when absent) into the given
 * buffers; pure. ER_CONFIG with err naming the problem. */
er_rc runner_ws_parse_url(const char *url, char *host, size_t host_cap, int *port, char *path,
                          size_t path_cap, er_err *err);

#endif
