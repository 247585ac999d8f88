/* eim_framer.c - splits the byte stream a model writes on its socket into reply texts (see
 * eim.h): a reply ends at "\n", NUL bytes and empty lines between replies are skipped. Pure and
 * incremental: the framer owns one growable buffer holding the reply being assembled, bounded
 * by max_reply; no I/O. */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "eim/eim.h"

struct eim_framer {
    util_buf buf; /* the reply being assembled (NUL-terminated by util_buf) */
    size_t max;
    bool complete;   /* buf holds a reply handed out by the last feed: reset at the next */
    bool discarding; /* dropping the rest of an over-long reply up to its "\n" */
};

er_rc eim_framer_create(size_t max_reply, eim_framer **out)
{
    eim_framer *f = calloc(1, sizeof *f);
    if (!f) return ER_NOMEM;
    f->max = max_reply ? max_reply : EIM_MAX_REPLY_BYTES;
    *out = f;
    return ER_OK;
}

void eim_framer_destroy(eim_framer *f)
{
    if (!f) return;
    util_buf_free(&f->buf);
    free(f);
}

size_t eim_framer_pending(const eim_framer *f)
{
    return f->complete ? 0 : f->buf.len;
}

er_rc eim_framer_feed(eim_framer *f, const void *data, size_t len, size_t *used, const char **reply,
                      size_t *reply_len, er_err *err)
{
    const char *p = data, *end = p + len;
    er_rc rc = ER_AGAIN;
    if (f->complete) f->buf.len = 0;
    f->complete = false;
    while (p < end) {
        if (f->buf.len == 0 && !f->discarding && (*p == '\0' || *p == '\n')) {
            p++; /* the NUL after a reply, or an empty line */
            continue;
        }
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        size_t n = (size_t)(stop - p);
        if (f->discarding) {
            p = nl ? nl + 1 : end;
            f->discarding = nl == NULL;
            continue;
        }
        bool nul = memchr(p, '\0', n) != NULL, big = n > f->max - f->buf.len;
        if (nul || big) { /* the reply is dropped up to its "\n" */
            p = nl ? nl + 1 : end;
            f->discarding = nl == NULL;
            f->buf.len = 0;
            rc = nul ? er_fail(err, ER_INVALID, "a NUL byte inside a reply of the model")
                     : er_fail(err, ER_TOOBIG, "a reply of the model is over %zu bytes", f->max);
            break;
        }
        if ((rc = util_buf_append(&f->buf, p, n)) != ER_OK) {
            rc = er_fail(err, rc, "out of memory");
            break;
        }
        rc = ER_AGAIN;
        p = stop;
        if (nl) {
            p = nl + 1;
            f->complete = true;
            *reply = f->buf.data;
            *reply_len = f->buf.len;
            rc = ER_OK;
            break;
        }
    }
    *used = (size_t)(p - (const char *)data);
    return rc;
}
