/* serial_source.h - the "serial" source: reads Edge Impulse firmware text from a tty ("device",
 * termios raw at "baud", default 115200), a child process's stdout ("command", run by
 * /bin/sh -c, restarted with backoff unless "restart": false) or stdin ("stdin": true), feeds
 * serial_parse and stores every inference through store_put_async.
 * Owned by the sources module; started and stopped by sources.c. */
#ifndef EI_SOURCES_SERIAL_SOURCE_H
#define EI_SOURCES_SERIAL_SOURCE_H

#include <cjson/cJSON.h>

#include "core/rc.h"
#include "sources/sources.h"
#include "store/store.h"

typedef struct serial_source serial_source; /* opaque */

/* conf: the source's JSON object (borrowed for the call). stop_fd becomes readable when the
 * source must stop; slot receives state and counters (both outlive the source). ER_CONFIG with
 * err filled for bad settings; the thread is running on ER_OK. */
er_rc serial_source_create(const cJSON *conf, store *st, const char *device, int stop_fd,
                           sources_slot *slot, serial_source **out, er_err *err);
/* Joins the thread (the caller has made stop_fd readable) and frees. NULL is fine. */
void serial_source_destroy(serial_source *s);

#endif
