/* preprocess.c - the resize modes and the argument checks of preprocess_frame; the pixels are
 * made by the libvips module (media/vips/vips_preprocess.c, loaded on the first frame). */
#include "media/preprocess.h"

#include <stdlib.h>
#include <string.h>

#include "media/media_internal.h"

#define PP_MAX_SIDE 4096 /* W and H: far above any Edge Impulse image model */

static const struct {
    const char *name;
    preprocess_mode mode;
} mode_names[] = {
    {"none", PREPROCESS_NONE},
    {"fit-shortest", PREPROCESS_FIT_SHORTEST},
    {"fit-longest", PREPROCESS_FIT_LONGEST},
    {"squash", PREPROCESS_SQUASH},
};
#define N_MODES (sizeof mode_names / sizeof mode_names[0])

er_rc preprocess_mode_parse(const char *s, preprocess_mode *out)
{
    for (size_t i = 0; s && i < N_MODES; i++) {
        if (strcmp(s, mode_names[i].name) == 0) {
            *out = mode_names[i].mode;
            return ER_OK;
        }
    }
    return ER_INVALID;
}

const char *preprocess_mode_name(preprocess_mode mode)
{
    for (size_t i = 0; i < N_MODES; i++)
        if (mode_names[i].mode == mode) return mode_names[i].name;
    return "?";
}

void preprocess_out_free(preprocess_out *out)
{
    if (!out) return;
    free(out->features);
    free(out->jpeg);
    memset(out, 0, sizeof *out);
}

er_rc preprocess_frame(const uint8_t *img, size_t len, int W, int H, int channels,
                       preprocess_mode mode, bool want_jpeg, preprocess_out *out, er_err *err)
{
    er_rc rc = ER_OK;
    const media_vips_api *v;
    memset(out, 0, sizeof *out);
    if ((channels != 1 && channels != 3) || W < 1 || H < 1 || W > PP_MAX_SIDE || H > PP_MAX_SIDE ||
        (unsigned)mode > PREPROCESS_SQUASH) {
        rc = er_fail(err, ER_INVALID,
                     "a %dx%d model with %d channels in mode %d: expected 1 or "
                     "3 channels, sides 1..%d and a known mode",
                     W, H, channels, (int)mode, PP_MAX_SIDE);
        goto fail;
    }
    if (!(v = media__vips(err))) {
        rc = ER_IO;
        goto fail;
    }
    media__vips_lock();
    rc = v->preprocess(img, len, W, H, channels, mode, want_jpeg, out, err);
    media__vips_unlock();
fail:
    return rc;
}
