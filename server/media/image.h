/* image.h - image validation and thumbnails with libvips.
 * media_init must run once before any other call (it starts libvips); thread-safe after. */
#ifndef EI_MEDIA_IMAGE_H
#define EI_MEDIA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"
#include "model/inference.h"

er_rc media_init(const char *argv0);
void media_shutdown(void);

/* Checks that data is a JPEG or PNG libvips can read and fills img->mime, width, height
 * (img->data/len untouched). Reads the header only. ER_UNSUPPORTED otherwise, with err saying
 * what it was; ER_TOOBIG over 100 megapixels (decompression-bomb guard). err may be NULL. */
er_rc media_probe(const uint8_t *data, size_t len, inference_image *img, er_err *err);

/* A JPEG (quality 75, metadata stripped) no larger than max_px on its longer side, never
 * enlarged; caller frees *out with free(). Only JPEG and PNG input is accepted. */
er_rc media_thumbnail(const uint8_t *data, size_t len, int max_px, uint8_t **out,
                      size_t *out_len);

/* Re-encodes as JPEG at quality q (1..100), scaled so the longer side is at most max_px
 * (0 = keep size). Used by the demo and, later, to shrink oversize MQTT messages. */
er_rc media_jpeg(const uint8_t *data, size_t len, int max_px, int q, uint8_t **out,
                 size_t *out_len);

#endif
