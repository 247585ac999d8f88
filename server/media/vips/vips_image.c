/* vips_image.c - the libvips module's start, its JPEG re-encoding and thumbnails, and its table
 * (media/vips_api.h). Built as ei-relay-vips.so, not into the relay: see core/module.h.
 *
 * Ownership: input bytes stay the caller's and are never kept past a call; output buffers are
 * copied into malloc memory so callers free() them (libvips hands out g_malloc memory).
 * Every libvips failure is turned into an er_rc and the libvips error buffer is cleared, so no
 * error state leaks into the next call. */
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "media/vips/vips_internal.h"

const media_vips_host *vips__host;

/* libvips reports decoder trouble in client images (truncated JPEGs...) as GLib warnings; they
 * are the client's problem, already answered with an error, so they go to the debug log. */
static void vips_log_handler(const gchar *domain, GLogLevelFlags level, const gchar *msg,
                             gpointer user)
{
    vips__host->log_debug(domain ? domain : "glib", msg);
}

static er_rc vm_init(const char *argv0, const media_vips_host *host)
{
    vips__host = host;
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

static void vm_shutdown(void)
{
    vips_shutdown();
}

/* g_malloc memory of libvips into malloc memory for the caller. */
static er_rc to_malloc(const void *vbuf, size_t vlen, uint8_t **out, size_t *out_len)
{
    if (!(*out = malloc(vlen ? vlen : 1))) return ER_NOMEM;
    memcpy(*out, vbuf, vlen);
    *out_len = vlen;
    return ER_OK;
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
    rc = to_malloc(vbuf, vlen, out, out_len);
fail:
    g_free(vbuf);
    return rc;
}

/* The decoded image, shrunk to fit max_px when max_px > 0 (never enlarged). */
static er_rc load_scaled(const uint8_t *data, size_t len, int max_px, VipsImage **im)
{
    er_rc rc = ER_OK;
    inference_image probe = {0};
    if ((rc = vips__host->probe(data, len, &probe, NULL))) goto fail;
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

static er_rc vm_jpeg(const uint8_t *data, size_t len, int max_px, int q, uint8_t **out,
                     size_t *out_len)
{
    er_rc rc = ER_OK;
    VipsImage *im = NULL;
    if ((rc = load_scaled(data, len, max_px, &im)) || (rc = save_jpeg(im, q, out, out_len)))
        goto fail;
fail:
    if (im) g_object_unref(im);
    vips_error_clear();
    return rc;
}

static er_rc vm_jpeg_from_rgb(const uint8_t *rgb, int w, int h, int q, uint8_t **out,
                              size_t *out_len)
{
    er_rc rc = ER_OK;
    VipsImage *img = NULL;
    void *jpeg = NULL;
    size_t jpeg_len = 0;
    img = vips_image_new_from_memory(rgb, (size_t)w * (size_t)h * 3, w, h, 3, VIPS_FORMAT_UCHAR);
    if (!img || vips_jpegsave_buffer(img, &jpeg, &jpeg_len, "Q", q, "strip", TRUE, NULL)) {
        rc = ER_INTERNAL;
        goto fail;
    }
    rc = to_malloc(jpeg, jpeg_len, out, out_len);
fail:
    g_free(jpeg);
    if (img) g_object_unref(img);
    vips_error_clear();
    return rc;
}

static const media_vips_api api = {
    .init = vm_init,
    .shutdown = vm_shutdown,
    .jpeg = vm_jpeg,
    .jpeg_from_rgb = vm_jpeg_from_rgb,
    .preprocess = vips__preprocess,
};

__attribute__((visibility("default"))) const void *ei_relay_vips_api(unsigned abi)
{
    return abi == MEDIA_VIPS_ABI ? &api : NULL;
}
