/* payload.h - the inference message the forwarder publishes, made to fit IoT Core's payload
 * limit: message_inference_json with the image when asked (JPEG only; PNG is re-encoded to JPEG
 * first); when the message is over the limit, the image is re-encoded smaller (quality 80, 60,
 * 40, then each again at half the size) until it fits; if it never does, the message goes
 * without the image and with "image_omitted": true. Owned by the forwarder; uses libvips
 * (media_init must have run). */
#ifndef EI_FORWARD_PAYLOAD_H
#define EI_FORWARD_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "core/rc.h"
#include "core/util.h"
#include "model/inference.h"

#define PAYLOAD_MAX_BYTES 131072 /* IoT Core: payload <= 128 KB */

typedef struct payload_opts {
    bool include_image;    /* publish_inference_base64_image */
    const char *s3_bucket; /* NULL -> "unset" */
    size_t max_bytes;      /* 0 = PAYLOAD_MAX_BYTES (tests use a smaller limit) */
} payload_opts;

typedef struct payload_info {
    bool shrunk;         /* the image was re-encoded smaller to fit */
    bool omitted;        /* the image was left out ("image_omitted": true) */
    int quality, max_px; /* the encoding that fitted when shrunk */
} payload_info;

/* Appends the message to out (out is reset first). ER_TOOBIG when even the message without
 * image is over the limit (the caller dead-letters the row). info may be NULL. */
er_rc payload_inference(const inference *inf, const payload_opts *o, util_buf *out,
                        payload_info *info);

#endif
