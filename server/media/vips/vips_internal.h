/* vips_internal.h - shared by the files of the libvips module (server/media/vips/) only. */
#ifndef EI_MEDIA_VIPS_INTERNAL_H
#define EI_MEDIA_VIPS_INTERNAL_H

#include "media/vips_api.h"

/* The relay's probe and log, set by init before anything else runs. */
extern const media_vips_host *vips__host;

er_rc vips__preprocess(const uint8_t *img, size_t len, int W, int H, int channels,
                       preprocess_mode mode, bool want_jpeg, preprocess_out *out, er_err *err);

#endif
