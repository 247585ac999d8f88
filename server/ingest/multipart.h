/* multipart.h - a pure, zero-copy multipart/form-data (RFC 7578) parser over a complete body.
 * Every returned pointer points into the caller's buffer and lives as long as it. */
#ifndef EI_INGEST_MULTIPART_H
#define EI_INGEST_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"

#define MULTIPART_BOUNDARY_MAX 70 /* RFC 2046 limit */

typedef struct multipart_part {
    const char *name; /* form field name (not NUL-terminated); NULL if the part has none */
    size_t name_len;
    const char *filename; /* NULL if none */
    size_t filename_len;
    const char *content_type; /* NULL if the part has none */
    size_t content_type_len;
    const uint8_t *data;
    size_t len;
} multipart_part;

/* Extracts the boundary parameter from a Content-Type value ("multipart/form-data;
 * boundary=..."), quoted or not. out must hold MULTIPART_BOUNDARY_MAX + 1 bytes. ER_INVALID if
 * absent or too long, ER_UNSUPPORTED if the type is not multipart/form-data. */
er_rc multipart_boundary(const char *content_type, char *out);

/* Returns the next part after *pos (start with *pos = 0) and advances *pos. ER_NOTFOUND after
 * the closing delimiter, ER_INVALID when the body is malformed or truncated. A part is only
 * returned once the delimiter after it has been seen; quoted header values are returned raw
 * (backslash escapes left in place); a part's header block is limited to 8 KiB. */
er_rc multipart_next(const uint8_t *body, size_t len, const char *boundary, size_t *pos,
                     multipart_part *part);

#endif
