/* camera.c - camera.h's functions in the relay: each forwards to the GStreamer module
 * (ei-relay-gst.so, camera/gst/camera_gst.c), loaded on the first camera_create. GStreamer is not
 * linked into the relay, so only a relay with an `eim` camera source maps it. */
#include "camera/camera.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "camera/gst_api.h"
#include "core/log.h"
#include "core/module.h"

static pthread_once_t gst_once = PTHREAD_ONCE_INIT;
static const camera_gst_api *gst; /* set once by load_gst; NULL when it failed */
static er_err gst_err;            /* why it failed */

static void load_gst(void)
{
    const void *api = NULL;
    if (module_load(CAMERA_GST_FILE, CAMERA_GST_SYMBOL, CAMERA_GST_ABI, &api, &gst_err)) {
        log_error("camera", "cameras cannot run: %s", gst_err.msg);
        return;
    }
    log_debug("camera", "%s loaded", CAMERA_GST_FILE);
    gst = api;
}

er_rc camera_create(const camera_opts *o, camera **out, er_err *err)
{
    *out = NULL;
    pthread_once(&gst_once, load_gst);
    if (!gst) return er_fail(err, ER_IO, "camera: %s", gst_err.msg);
    return gst->create(o, out, err);
}

/* The calls below take a camera camera_create made, so the module is loaded. */
er_rc camera_next(camera *c, int timeout_ms, camera_frame *out, er_err *err)
{
    return gst->next(c, timeout_ms, out, err);
}

void camera_frame_free(camera_frame *f)
{
    if (!f) return;
    free(f->data);
    memset(f, 0, sizeof *f);
}

void camera_wake(camera *c)
{
    gst->wake(c);
}

er_rc camera_restart(camera *c, er_err *err)
{
    return gst->restart(c, err);
}

void camera_stats_get(const camera *c, camera_stats *out)
{
    gst->stats_get(c, out);
}

const char *camera_describe(const camera *c)
{
    return gst->describe(c);
}

void camera_destroy(camera *c)
{
    if (c) gst->destroy(c);
}
