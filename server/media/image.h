/* image.h - image validation (a header parser, no decoder) and, with libvips, thumbnails and
 * re-encoding. media_init must run once before any other call; thread-safe after. libvips is a
 * module (ei-relay-vips.so, see core/module.h) loaded on the first thumbnail or re-encoding, so a
 * relay that never makes one never maps it. */
#ifndef EI_MEDIA_IMAGE_H
#define EI_MEDIA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"
#include "model/inference.h"

/* Records argv0 for libvips' start (which happens later, on first use). */
er_rc media_init(const char *argv0);
/* Stops libvips if it was started; after every other thread has stopped. */
void media_shutdown(void);

/* NULL when the libvips module is loaded (loading it now if need be), else why it cannot be: a
 * sentence naming the file. The functions below that need it return ER_IO then. */
const char *media_unavailable(void);

/* Checks that data is a JPEG or PNG whose header libvips would read (media/imghdr.h) and fills
 * img->mime, width, height (img->data/len untouched). Reads the header only, without libvips.
 * ER_UNSUPPORTED otherwise, with err saying what it was; ER_TOOBIG over 100 megapixels
 * (decompression-bomb guard). err may be NULL. */
er_rc media_probe(const uint8_t *data, size_t len, inference_image *img, er_err *err);

/* A JPEG (quality 75, metadata stripped) no larger than max_px on its longer side, never
 * enlarged; caller frees *out with free(). Only JPEG and PNG input is accepted. ER_IO: the
 * libvips module cannot be loaded (media_unavailable says why). */
er_rc media_thumbnail(const uint8_t *data, size_t len, int max_px, uint8_t **out, size_t *out_len);

/* Re-encodes as JPEG at quality q (1..100), scaled so the longer side is at most max_px
 * (0 = keep size). Used by the demo and, later, to shrink oversize MQTT messages. */
er_rc media_jpeg(const uint8_t *data, size_t len, int max_px, int q, uint8_t **out,
                 size_t *out_len);

#endif
