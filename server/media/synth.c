/* synth.c - see synth.h. The pixels are made here; the libvips module only encodes them. */
#include "media/synth.h"

#include <stdlib.h>
#include <string.h>

#include "media/media_internal.h"

static uint32_t xorshift(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

er_rc synth_jpeg(int w, int h, const synth_rect *rects, size_t n, uint32_t seed, int quality,
                 uint8_t **out, size_t *out_len)
{
    er_rc rc = ER_NOMEM;
    if (w <= 0 || h <= 0 || w > 4096 || h > 4096) return ER_INVALID;
    uint8_t *px = malloc((size_t)w * (size_t)h * 3);
    if (!px) goto fail;
    uint32_t s = seed ? seed : 1;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            uint8_t *p = px + ((size_t)y * (size_t)w + (size_t)x) * 3;
            int noise = (int)(xorshift(&s) & 15);
            p[0] = (uint8_t)(40 + y * 60 / h + noise); /* dusk-like vertical gradient */
            p[1] = (uint8_t)(60 + x * 50 / w + noise);
            p[2] = (uint8_t)(90 + noise);
        }
    }
    for (size_t i = 0; i < n; i++) {
        const synth_rect *r = &rects[i];
        for (int y = r->y < 0 ? 0 : r->y; y < r->y + r->height && y < h; y++) {
            for (int x = r->x < 0 ? 0 : r->x; x < r->x + r->width && x < w; x++) {
                uint8_t *p = px + ((size_t)y * (size_t)w + (size_t)x) * 3;
                int shade = (int)(xorshift(&s) & 7);
                p[0] = (uint8_t)(r->r > 7 ? r->r - shade : r->r);
                p[1] = (uint8_t)(r->g > 7 ? r->g - shade : r->g);
                p[2] = (uint8_t)(r->b > 7 ? r->b - shade : r->b);
            }
        }
    }
    const media_vips_api *v = media__vips(NULL);
    rc = ER_IO;
    if (v) {
        media__vips_lock();
        rc = v->jpeg_from_rgb(px, w, h, quality, out, out_len);
        media__vips_unlock();
    }
fail:
    free(px);
    return rc;
}
