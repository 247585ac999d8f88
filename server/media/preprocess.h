/* preprocess.h - a camera frame (JPEG, or PNG) to the feature vector an Edge Impulse Linux model
 * (.eim) takes, exactly as the Edge Impulse Linux runner makes it (its sharp pipeline on the
 * same libvips), plus the image the runner stores with the result.
 *
 * media_init (media/image.h) must have run once; after that every call is thread-safe and keeps
 * no state between calls. All memory in a preprocess_out is malloc'ed and the caller's. */
#ifndef EI_MEDIA_PREPROCESS_H
#define EI_MEDIA_PREPROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"

/* The model's image_resize_mode: none = the frame must already be the model's size;
 * fit-shortest = scale to cover and crop the centre; fit-longest = scale to fit and letterbox on
 * black; squash = scale each axis on its own. */
typedef enum {
    PREPROCESS_NONE,
    PREPROCESS_FIT_SHORTEST,
    PREPROCESS_FIT_LONGEST,
    PREPROCESS_SQUASH
} preprocess_mode;

/* "none", "fit-shortest", "fit-longest" or "squash" (the hello's spelling); ER_INVALID else. */
er_rc preprocess_mode_parse(const char *s, preprocess_mode *out);

/* The spelling preprocess_mode_parse reads ("?" for a value out of range). */
const char *preprocess_mode_name(preprocess_mode mode);

typedef struct preprocess_out {
    uint32_t *features; /* W*H pixels, row by row, packed 0xRRGGBB (1 channel: p*0x010101) */
    size_t n_features;
    uint8_t *jpeg; /* the runner's result image: the input JPEG itself when it already is
                      W x H and the model is RGB (3 channels), else a q90 JPEG of the resized
                      image (grayscale for 1 channel); NULL when want_jpeg was false */
    size_t jpeg_len;
    int jpeg_w, jpeg_h; /* its size: always W x H */
} preprocess_out;

/* Preprocesses one frame for a W x H model with `channels` (1 or 3) in `mode`; img/len are
 * borrowed for the call. want_jpeg: also make the result image. On success *out holds the
 * features (and the image); on failure *out is zeroed and err says why:
 *   ER_INVALID  not a decodable JPEG or PNG (also a truncated or corrupt one: like the runner,
 *               a decoder warning fails the frame), channels not 1/3, W or H out of 1..4096;
 *   ER_SHAPE    mode none and the frame is not W x H (the runner would send the frame's own
 *               pixel count and the model would refuse it; this says so instead);
 *   ER_TOOBIG   over media_probe's pixel limit;  ER_NOMEM. */
er_rc preprocess_frame(const uint8_t *img, size_t len, int W, int H, int channels,
                       preprocess_mode mode, bool want_jpeg, preprocess_out *out, er_err *err);

/* Frees what *out holds and zeroes it; out may be NULL. */
void preprocess_out_free(preprocess_out *out);

#endif
