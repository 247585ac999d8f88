/* image.c - JPEG/PNG validation, thumbnails and re-encoding with libvips.
 *
 * Ownership: input bytes stay the caller's and are never kept past a call; output buffers are
 * copied into malloc memory so callers free() them (libvips hands out g_malloc memory).
 * Every libvips failure is turned into an er_rc and the libvips error buffer is cleared, so no
 * error state leaks into the next call. */
#include "media/image.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "core/log.h"

#define MEDIA_MAX_PIXELS (100LL * 1000 * 1000) /* decompression-bomb guard */

/* libvips reports decoder trouble in client images (truncated JPEGs...) as GLib warnings; they
 * are the client's problem, already answered with an error, so they go to the debug log. */
static void vips_log_handler(const gchar *domain, GLogLevelFlags level, const gchar *msg,
                             gpointer user)
{
    log_debug("media", "%s: %s", domain ? domain : "glib", msg);
}

er_rc media_init(const char *argv0)
{
    if (VIPS_INIT(argv0 ? argv0 : "ei-relay")) {
        vips_error_clear();
        return ER_INTERNAL;
    }
    /* A small device: one worker per pipeline. The operation cache stays off because buffer
     * loaders are cached by the buffer's address, and request buffers get reused: a cache hit
     * would answer with the previous request's image. */
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO,
                      vips_log_handler, NULL);
    vips_concurrency_set(1);
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    return ER_OK;
}

void media_shutdown(void)
{
    vips_shutdown();
}

static bool magic_jpeg(const uint8_t *d, size_t n)
{
    return n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff;
}

static bool magic_png(const uint8_t *d, size_t n)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    return n >= sizeof sig && memcmp(d, sig, sizeof sig) == 0;
}

er_rc media_probe(const uint8_t *data, size_t len, inference_image *img, er_err *err)
{
    er_rc rc = ER_OK;
    VipsImage *im = NULL;
    const char *loader, *expect, *mime;
    bool jpeg = data && magic_jpeg(data, len);
    if (!jpeg && !(data && magic_png(data, len))) {
        rc = er_fail(err, ER_UNSUPPORTED, "image is not a JPEG or PNG");
        goto fail;
    }
    /* libvips must agree with the magic bytes; then its loader reads the header only. */
    loader = vips_foreign_find_load_buffer(data, len);
    expect = jpeg ? "VipsForeignLoadJpegBuffer" : "VipsForeignLoadPngBuffer";
    if (!loader || strcmp(loader, expect) != 0 ||
        (jpeg ? vips_jpegload_buffer((void *)data, len, &im, "access", VIPS_ACCESS_SEQUENTIAL, NULL)
              : vips_pngload_buffer((void *)data, len, &im, "access", VIPS_ACCESS_SEQUENTIAL,
                                    NULL))) {
        rc = er_fail(err, ER_UNSUPPORTED, "image is not a JPEG or PNG (unreadable %s header)",
                     jpeg ? "JPEG" : "PNG");
        goto fail;
    }
    mime = jpeg ? "image/jpeg" : "image/png";
    if ((long long)vips_image_get_width(im) * vips_image_get_height(im) > MEDIA_MAX_PIXELS) {
        rc = er_fail(err, ER_TOOBIG, "image is %dx%d pixels; at most %lld pixels",
                     vips_image_get_width(im), vips_image_get_height(im), MEDIA_MAX_PIXELS);
        goto fail;
    }
    snprintf(img->mime, sizeof img->mime, "%s", mime);
    img->width = vips_image_get_width(im);
    img->height = vips_image_get_height(im);
fail:
    if (im) g_object_unref(im);
    vips_error_clear();
    return rc;
}

/* Encodes im as a baseline JPEG without metadata into malloc memory. */
static er_rc save_jpeg(VipsImage *im, int q, uint8_t **out, size_t *out_len)
{
    er_rc rc = ER_OK;
    void *vbuf = NULL;
    size_t vlen = 0;
    if (vips_jpegsave_buffer(im, &vbuf, &vlen, "Q", q, "strip", TRUE, NULL)) {
        rc = ER_UNSUPPORTED;
        goto fail;
    }
    *out = malloc(vlen ? vlen : 1);
    if (!*out) {
        rc = ER_NOMEM;
        goto fail;
    }
    memcpy(*out, vbuf, vlen);
    *out_len = vlen;
fail:
    g_free(vbuf);
    return rc;
}

/* The decoded image, shrunk to fit max_px when max_px > 0 (never enlarged). */
static er_rc load_scaled(const uint8_t *data, size_t len, int max_px, VipsImage **im)
{
    er_rc rc = ER_OK;
    inference_image probe = {0};
    if ((rc = media_probe(data, len, &probe, NULL))) goto fail;
    if (max_px > 0) {
        if (vips_thumbnail_buffer((void *)data, len, im, max_px, "height", max_px, "size",
                                  VIPS_SIZE_DOWN, NULL))
            rc = ER_UNSUPPORTED;
    } else {
        *im = vips_image_new_from_buffer(data, len, "", "access", VIPS_ACCESS_SEQUENTIAL, NULL);
        if (!*im) rc = ER_UNSUPPORTED;
    }
fail:
    return rc;
}

er_rc media_jpeg(const uint8_t *data, size_t len, int max_px, int q, uint8_t **out, size_t *out_len)
{
    er_rc rc = ER_OK;
    VipsImage *im = NULL;
    *out = NULL;
    *out_len = 0;
    if (q < 1 || q > 100 || max_px < 0) {
        rc = ER_INVALID;
        goto fail;
    }
    if ((rc = load_scaled(data, len, max_px, &im)) || (rc = save_jpeg(im, q, out, out_len)))
        goto fail;
fail:
    if (im) g_object_unref(im);
    vips_error_clear();
    return rc;
}

er_rc media_thumbnail(const uint8_t *data, size_t len, int max_px, uint8_t **out, size_t *out_len)
{
    if (max_px < 1) {
        *out = NULL;
        *out_len = 0;
        return ER_INVALID;
    }
    return media_jpeg(data, len, max_px, 75, out, out_len);
}
