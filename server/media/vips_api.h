/* vips_api.h - the table of functions of the libvips module (ei-relay-vips.so, built from
 * server/media/vips/), loaded by media/image.c on the first call that decodes or encodes pixels
 * (core/module.h says where it is looked for). Only server/media includes this header: the rest
 * of the relay calls media/image.h, media/preprocess.h and media/synth.h, whose functions
 * forward here. MEDIA_VIPS_ABI changes whenever a signature below does. */
#ifndef EI_MEDIA_VIPS_API_H
#define EI_MEDIA_VIPS_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"
#include "media/preprocess.h"
#include "model/inference.h"

#define MEDIA_VIPS_FILE "ei-relay-vips.so"
#define MEDIA_VIPS_SYMBOL "ei_relay_vips_api"
#define MEDIA_VIPS_ABI 1u

/* What the relay lends the module: its header probe (media_probe) and its debug log. */
typedef struct media_vips_host {
    er_rc (*probe)(const uint8_t *data, size_t len, inference_image *img, er_err *err);
    void (*log_debug)(const char *domain, const char *msg);
} media_vips_host;

typedef struct media_vips_api {
    /* Starts libvips (VIPS_INIT(argv0)); host must outlive the process. Once, before the rest. */
    er_rc (*init)(const char *argv0, const media_vips_host *host);
    void (*shutdown)(void);
    /* media_jpeg (media/image.h) */
    er_rc (*jpeg)(const uint8_t *data, size_t len, int max_px, int q, uint8_t **out,
                  size_t *out_len);
    /* A JPEG at quality q of w x h packed RGB pixels (borrowed); *out malloc'ed. */
    er_rc (*jpeg_from_rgb)(const uint8_t *rgb, int w, int h, int q, uint8_t **out, size_t *out_len);
    /* preprocess_frame (media/preprocess.h), arguments already checked by the caller */
    er_rc (*preprocess)(const uint8_t *img, size_t len, int W, int H, int channels,
                        preprocess_mode mode, bool want_jpeg, preprocess_out *out, er_err *err);
} media_vips_api;

/* The module's one exported symbol: its table for MEDIA_VIPS_ABI, else NULL. */
const void *ei_relay_vips_api(unsigned abi);

#endif
