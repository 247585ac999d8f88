/* report.h - how a module shows its state to the readers above it without being included by
 * them: a report_part holds the module's status as one JSON object (its one writer of that
 * object) and its Prometheus series (written with core/prom.h). relay.c makes one part per
 * running module and hands them to http (GET /api/v1/<part>, /metrics) and to the live stream,
 * so neither includes the forwarder, the sources or each other.
 *
 * ctx is borrowed and must outlive every reader the part is handed to. Both functions may be
 * called from any thread at any time; each module says how it makes that safe. */
#ifndef EI_CORE_REPORT_H
#define EI_CORE_REPORT_H

#include "core/rc.h"
#include "core/util.h"

struct cJSON;

typedef struct report_part {
    const char *name; /* "forwarder", "sources", ...: also the REST path under /api/v1/ */
    /* A new status object (the caller frees it with cJSON_Delete); NULL when out of memory.
     * NULL when the module has no status object (its series only). */
    struct cJSON *(*status)(void *ctx);
    /* Appends the module's series to b; NULL when it has none. */
    er_rc (*prom)(void *ctx, util_buf *b);
    void *ctx;
} report_part;

#endif
