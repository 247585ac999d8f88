/* rc.h - the one return-code enum every ei-relay module uses, and an error-message carrier.
 *
 * Functions return er_rc; ER_OK is zero so `if (rc)` reads as "failed". Where the caller needs
 * to tell a person what was wrong (HTTP error bodies, start-up messages), the function also
 * fills an er_err with a short human sentence naming the offending field or key. */
#ifndef EI_CORE_RC_H
#define EI_CORE_RC_H

#include <stddef.h>

typedef enum er_rc {
    ER_OK = 0,
    ER_NOMEM,       /* allocation failed */
    ER_INVALID,     /* malformed input (bad JSON, bad syntax): HTTP 400 */
    ER_SHAPE,       /* well-formed input of the wrong shape or type: HTTP 422 */
    ER_NOTFOUND,    /* no such object: HTTP 404 */
    ER_EXISTS,      /* already present (e.g. duplicate id): not an error for idempotent ingest */
    ER_TOOBIG,      /* over a configured size limit: HTTP 413 */
    ER_UNSUPPORTED, /* unsupported media type: HTTP 415 */
    ER_FULL,        /* disk full: HTTP 507 */
    ER_IO,          /* file-system or socket error */
    ER_DB,          /* SQLite error other than disk full */
    ER_AGAIN,       /* incremental parser needs more bytes */
    ER_CLOSED,      /* the object is shutting down */
    ER_BUSY,        /* a resource is held elsewhere for now (e.g. another writer): retry, 503 */
    ER_CONFIG,      /* bad configuration */
    ER_INTERNAL,    /* a bug: an invariant did not hold */
} er_rc;

/* A short, static, lower-case name for rc ("invalid", "not_found", ...). */
const char *er_rc_name(er_rc rc);

/* Human-readable detail for the last failure. Fixed size so it can live on the stack. */
typedef struct er_err {
    char msg[256];
} er_err;

/* Formats into err (if not NULL) and returns rc, so `return er_fail(err, ER_SHAPE, "...")`. */
er_rc er_fail(er_err *err, er_rc rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
