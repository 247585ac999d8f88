/* rc.c - names for er_rc and the er_fail formatter. */
#include "core/rc.h"

#include <stdarg.h>
#include <stdio.h>

const char *er_rc_name(er_rc rc)
{
    switch (rc) {
    case ER_OK:
        return "ok";
    case ER_NOMEM:
        return "out_of_memory";
    case ER_INVALID:
        return "invalid";
    case ER_SHAPE:
        return "unprocessable";
    case ER_NOTFOUND:
        return "not_found";
    case ER_EXISTS:
        return "exists";
    case ER_TOOBIG:
        return "too_large";
    case ER_UNSUPPORTED:
        return "unsupported_media_type";
    case ER_FULL:
        return "storage_full";
    case ER_IO:
        return "io_error";
    case ER_DB:
        return "database_error";
    case ER_AGAIN:
        return "again";
    case ER_CLOSED:
        return "closed";
    case ER_BUSY:
        return "busy";
    case ER_CONFIG:
        return "config";
    case ER_INTERNAL:
        return "internal";
    }
    return "unknown";
}

er_rc er_fail(er_err *err, er_rc rc, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return rc;
}
