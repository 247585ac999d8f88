/* synth.h - synthetic camera frames for the demo source and benchmarks: a textured background
 * with filled rectangles standing for detected objects, encoded as JPEG by libvips. */
#ifndef EI_MEDIA_SYNTH_H
#define EI_MEDIA_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"

typedef struct synth_rect {
    int x, y, width, height; /* pixels of the frame */
    uint8_t r, g, b;
} synth_rect;

/* Encodes a w x h frame with the rectangles drawn on it; *out is malloc'ed (free()). seed
 * varies the background texture so consecutive frames differ. */
er_rc synth_jpeg(int w, int h, const synth_rect *rects, size_t n, uint32_t seed, int quality,
                 uint8_t **out, size_t *out_len);

#endif
