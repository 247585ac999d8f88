/* ingest.h - one request body (JSON, or multipart JSON + image) to a validated inference.
 * Shared by HTTP ingest, the demo source and guid-file import, so every path validates alike. */
#ifndef EI_INGEST_INGEST_H
#define EI_INGEST_INGEST_H

#include <stddef.h>

#include "core/rc.h"
#include "ingest/normalize.h"
#include "model/inference.h"

/* content_type: the request's Content-Type header value (NULL = application/json).
 * application/json: normalize_json on the body. multipart/form-data: the part named "json" or
 * "inference" (or the first part with an application/json type) is the document; the part named
 * "image" (or else the first part whose type starts with "image/") is the image, overriding any
 * base64 one (copied; over max_image_bytes is ER_TOOBIG).
 * Any image is probed with the media module: ER_UNSUPPORTED unless it is a JPEG or PNG. */
er_rc ingest_parse(const char *content_type, const uint8_t *body, size_t len,
                   const normalize_opts *o, inference **out, er_err *err);

#endif
