/* image.c - JPEG/PNG probes (a pure header parser, media/imghdr.h) and, through the libvips
 * module, thumbnails and re-encoding.
 *
 * libvips is not linked into the relay: it and the ~130 libraries Debian builds it with would be
 * mapped (and relocated) at every start, the bulk of an idle relay's memory. media__vips loads
 * the module (ei-relay-vips.so) on the first call that needs pixels; probes never do. */
#include "media/image.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/module.h"
#include "media/imghdr.h"
#include "media/media_internal.h"

#define MEDIA_MAX_PIXELS (100LL * 1000 * 1000) /* decompression-bomb guard */

static char vips_argv0[256] = "ei-relay";
static pthread_once_t vips_once = PTHREAD_ONCE_INIT;
static const media_vips_api *vips_api; /* set once by load_vips, NULL when it failed */
static er_err vips_err;                /* why it failed */
static pthread_mutex_t vips_mu = PTHREAD_MUTEX_INITIALIZER; /* see media__vips_lock */

static void host_log_debug(const char *domain, const char *msg)
{
    log_debug("media", "%s: %s", domain, msg);
}

static const media_vips_host host = {.probe = media_probe, .log_debug = host_log_debug};

static void load_vips(void)
{
    const void *api = NULL;
    if (module_load(MEDIA_VIPS_FILE, MEDIA_VIPS_SYMBOL, MEDIA_VIPS_ABI, &api, &vips_err)) {
        log_error("media", "images cannot be decoded or encoded: %s", vips_err.msg);
        return;
    }
    if (((const media_vips_api *)api)->init(vips_argv0, &host)) {
        er_fail(&vips_err, ER_INTERNAL, "libvips does not start (%s)", MEDIA_VIPS_FILE);
        log_error("media", "%s", vips_err.msg);
        return;
    }
    log_debug("media", "%s loaded", MEDIA_VIPS_FILE);
    vips_api = api;
}

const media_vips_api *media__vips(er_err *err)
{
    pthread_once(&vips_once, load_vips);
    if (!vips_api && err) *err = vips_err;
    return vips_api;
}

void media__vips_lock(void)
{
    pthread_mutex_lock(&vips_mu);
}

void media__vips_unlock(void)
{
    pthread_mutex_unlock(&vips_mu);
}

const char *media_unavailable(void)
{
    return media__vips(NULL) ? NULL : vips_err.msg;
}

er_rc media_init(const char *argv0)
{
    if (argv0) snprintf(vips_argv0, sizeof vips_argv0, "%s", argv0);
    return ER_OK;
}

void media_shutdown(void)
{
    /* Runs after every thread that could load the module has stopped. */
    if (vips_api) vips_api->shutdown();
}

er_rc media_probe(const uint8_t *data, size_t len, inference_image *img, er_err *err)
{
    er_rc rc = ER_OK;
    imghdr h;
    er_err why;
    if ((rc = imghdr_parse(data, len, &h, &why))) {
        bool magic = data && len >= 3 && (data[0] == 0xff || data[0] == 0x89);
        rc = magic ? er_fail(err, ER_UNSUPPORTED,
                             "image is not a JPEG or PNG (unreadable "
                             "header: %s)",
                             why.msg)
                   : er_fail(err, ER_UNSUPPORTED, "image is not a JPEG or PNG");
        goto fail;
    }
    if ((long long)h.width * h.height > MEDIA_MAX_PIXELS) {
        rc = er_fail(err, ER_TOOBIG, "image is %ux%u pixels; at most %lld pixels", h.width,
                     h.height, MEDIA_MAX_PIXELS);
        goto fail;
    }
    snprintf(img->mime, sizeof img->mime, "%s", imghdr_mime(h.kind));
    img->width = (int)h.width;
    img->height = (int)h.height;
fail:
    return rc;
}

er_rc media_jpeg(const uint8_t *data, size_t len, int max_px, int q, uint8_t **out, size_t *out_len)
{
    er_rc rc = ER_OK;
    const media_vips_api *v;
    *out = NULL;
    *out_len = 0;
    if (q < 1 || q > 100 || max_px < 0) {
        rc = ER_INVALID;
        goto fail;
    }
    if (!(v = media__vips(NULL))) {
        rc = ER_IO;
        goto fail;
    }
    media__vips_lock();
    rc = v->jpeg(data, len, max_px, q, out, out_len);
    media__vips_unlock();
fail:
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
