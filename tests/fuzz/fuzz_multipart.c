/* fuzz_multipart.c - the multipart parser on arbitrary bodies. The first line of the input is
 * the boundary, the rest the body; every part is walked and checked to lie inside the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const uint8_t *body, size_t len, const void *p, size_t n)
{
    const uint8_t *q = p;
    if (!q) return;
    if (q < body || q > body + len || n > (size_t)(body + len - q)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t blen = nl ? (size_t)(nl - data) : size;
    char boundary[MULTIPART_BOUNDARY_MAX + 1];
    if (blen > MULTIPART_BOUNDARY_MAX) blen = MULTIPART_BOUNDARY_MAX;
    memcpy(boundary, data, blen);
    boundary[blen] = '\0';
    /* A heap copy of exactly the body, so any over-read is caught. */
    size_t len = nl ? size - (size_t)(nl - data) - 1 : 0;
    uint8_t *body = malloc(len ? len : 1);
    if (!body) return 0;
    if (len) memcpy(body, nl + 1, len);
    size_t pos = 0, last = 0;
    multipart_part part;
    for (int n = 0; n < 100000; n++) {
        er_rc rc = multipart_next(body, len, boundary, &pos, &part);
        if (rc) break;
        if (n > 0 && pos <= last) abort(); /* must make progress */
        last = pos;
        inside(body, len, part.name, part.name_len);
        inside(body, len, part.filename, part.filename_len);
        inside(body, len, part.content_type, part.content_type_len);
        inside(body, len, part.data, part.len);
    }
    /* The Content-Type parser too, on the first line as a header value. */
    char ct[160];
    size_t cl = nl ? (size_t)(nl - data) : size;
    if (cl > sizeof ct - 1) cl = sizeof ct - 1;
    memcpy(ct, data, cl);
    ct[cl] = '\0';
    multipart_boundary(ct, boundary);
    free(body);
    return 0;
}
