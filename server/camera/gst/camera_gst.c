/* camera_gst.c - (the GStreamer module, ei-relay-gst.so: see camera/gst_api.h) the pipeline: parse,
 * start, the appsink and bus callbacks that hand frames and failures to the consumer, camera_next,
 * restart and stop.
 *
 * Why callbacks and a condition variable rather than polling the appsink and the bus: the
 * appsink's new-sample callback runs on the streaming thread for every frame, so it can count
 * every frame (seq) and every frame a newer one replaces (dropped) — a polled appsink with
 * drop=true discards old buffers without telling anyone. The bus's sync handler sees ERROR
 * messages on the thread that posts them (including synchronously inside set_state, so
 * camera_create can report why a start failed) and drops every message, so with no GLib main
 * loop nothing accumulates on the bus. camera_next then waits on one condition variable that
 * frames, errors, the end of the stream and camera_wake all signal: it honours its timeout to
 * the clock's precision and wakes at once, with no polling slices. */
#include "camera/camera_internal.h"

#include <errno.h>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "camera/gst_api.h"
#include "core/util.h"

struct camera {
    GstElement *pipeline; /* owned */
    GstElement *sink;     /* the appsink, a reference of ours */
    char *describe;       /* the description as parsed, owned */
    size_t max_frame;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* signalled on every change below */
    /* under mu */
    GstSample *pending; /* the newest frame not yet returned (a reference), or NULL */
    uint64_t pending_seq;
    bool toobig; /* the newest frame was over max_frame: toobig_seq, toobig_len */
    uint64_t toobig_seq;
    size_t toobig_len;
    bool eos, wake;
    er_rc fail_rc; /* ER_OK, or the first failure since the start, with fail_msg */
    char fail_msg[512];
    camera_stats st;
};

static void cg_destroy(camera *c);

static pthread_once_t gst_once = PTHREAD_ONCE_INIT;
static char gst_init_error[200]; /* empty when gst_init_check succeeded */

static void gst_init_once(void)
{
    GError *e = NULL;
    if (!gst_init_check(NULL, NULL, &e))
        snprintf(gst_init_error, sizeof gst_init_error, "GStreamer does not initialise: %s",
                 e ? e->message : "unknown error");
    g_clear_error(&e);
}

/* Records the first failure since the start (later ones are its consequences). Takes mu. */
static void set_failure(camera *c, er_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_failure(camera *c, er_rc rc, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&c->mu);
    if (c->fail_rc == ER_OK) {
        c->fail_rc = rc;
        va_start(ap, fmt);
        vsnprintf(c->fail_msg, sizeof c->fail_msg, fmt, ap);
        va_end(ap);
        pthread_cond_broadcast(&c->cond);
    }
    pthread_mutex_unlock(&c->mu);
}

/* Bus sync handler, on whichever thread posts: errors are recorded, every message dropped. */
static GstBusSyncReply on_bus(GstBus *bus, GstMessage *msg, gpointer user)
{
    camera *c = user;
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
        GError *e = NULL;
        gchar *debug = NULL;
        gst_message_parse_error(msg, &e, &debug);
        set_failure(c, ER_IO, "GStreamer error from %s: %s (%s)",
                    msg->src ? GST_OBJECT_NAME(msg->src) : "the pipeline",
                    e ? e->message : "unknown", debug ? debug : "no debug information");
        g_clear_error(&e);
        g_free(debug);
    }
    return GST_BUS_DROP;
}

static void on_eos(GstAppSink *sink, gpointer user)
{
    camera *c = user;
    pthread_mutex_lock(&c->mu);
    c->eos = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

/* A frame, on the streaming thread: it becomes the pending one (dropping an older pending one),
 * or is counted as too big. Output that is not JPEG stops the pipeline with a clear failure. */
static GstFlowReturn on_sample(GstAppSink *sink, gpointer user)
{
    camera *c = user;
    GstFlowReturn ret = GST_FLOW_OK;
    GstSample *old = NULL;
    GstSample *s = gst_app_sink_pull_sample(sink);
    if (!s) goto done; /* flushing or at the end: nothing to take */
    GstCaps *caps = gst_sample_get_caps(s);
    const GstStructure *st =
        caps && !gst_caps_is_empty(caps) ? gst_caps_get_structure(caps, 0) : NULL;
    if (!st || !gst_structure_has_name(st, "image/jpeg")) {
        gchar *text = caps ? gst_caps_to_string(caps) : NULL;
        set_failure(c, ER_CONFIG,
                    "the pipeline's output is %s, not image/jpeg: end the pipeline with a JPEG "
                    "encoder (... ! jpegenc)",
                    text ? text : "without caps");
        g_free(text);
        old = s;
        ret = GST_FLOW_ERROR;
        goto done;
    }
    GstBuffer *b = gst_sample_get_buffer(s);
    size_t len = b ? gst_buffer_get_size(b) : 0;
    pthread_mutex_lock(&c->mu);
    uint64_t seq = ++c->st.frames;
    if (c->pending) {
        old = c->pending;
        c->st.dropped++;
    }
    c->pending = NULL;
    c->toobig = false;
    if (len > c->max_frame) {
        c->st.too_big++;
        c->toobig = true;
        c->toobig_seq = seq;
        c->toobig_len = len;
        gst_sample_unref(s); /* no lock needed, but nothing else holds it */
    } else {
        c->pending = s;
        c->pending_seq = seq;
    }
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
done:
    if (old) gst_sample_unref(old);
    return ret;
}

/* Sets the pipeline PLAYING; on a failure returns ER_IO with what the bus reported and leaves
 * the pipeline in the NULL state. */
static er_rc start(camera *c, er_err *err)
{
    er_rc rc = ER_OK;
    if (gst_element_set_state(c->pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE)
        goto done;
    gst_element_set_state(c->pipeline, GST_STATE_NULL);
    pthread_mutex_lock(&c->mu);
    rc = er_fail(err, ER_IO, "the pipeline does not start: %s",
                 c->fail_rc ? c->fail_msg : "an element refused to start");
    if (c->fail_rc == ER_OK) {
        c->fail_rc = ER_IO;
        snprintf(c->fail_msg, sizeof c->fail_msg, "%s", err ? err->msg : "it does not start");
    }
    pthread_mutex_unlock(&c->mu);
done:
    return rc;
}

/* A parse error as a message a person can act on: each missing element names its package. */
static er_rc parse_failure(GstParseContext *ctx, const GError *e, const char *desc, er_err *err)
{
    gchar **missing = ctx ? gst_parse_context_get_missing_elements(ctx) : NULL;
    char msg[sizeof err->msg];
    size_t n = 0;
    msg[0] = '\0';
    for (size_t i = 0; missing && missing[i] && n < sizeof msg; i++) {
        const char *pkg = camera__package_of(missing[i]);
        int k = snprintf(msg + n, sizeof msg - n, "%sno element \"%s\" - install %s", i ? "; " : "",
                         missing[i],
                         pkg ? pkg
                             : "the GStreamer plugin package that has it (gst-inspect-1.0 "
                               "lists the elements installed)");
        n += k > 0 ? (size_t)k : 0;
    }
    er_rc rc =
        msg[0] ? er_fail(err, ER_CONFIG, "%s", msg)
               : er_fail(err, ER_CONFIG, "the GStreamer pipeline does not parse: %s (in \"%s\")",
                         e ? e->message : "unknown error", desc);
    g_strfreev(missing);
    return rc;
}

static er_rc cg_create(const camera_opts *o, camera **out, er_err *err)
{
    er_rc rc = ER_OK;
    camera *c = NULL;
    char *desc = NULL;
    GError *e = NULL;
    GstParseContext *ctx = NULL;
    GstElement *top = NULL;
    *out = NULL;
    if (o->width < 0 || o->height < 0 || o->width > CAMERA_DIMENSION_MAX ||
        o->height > CAMERA_DIMENSION_MAX) {
        rc = er_fail(err, ER_CONFIG, "camera: the size %dx%d is out of range (1 to %d)", o->width,
                     o->height, CAMERA_DIMENSION_MAX);
        goto fail;
    }
    pthread_once(&gst_once, gst_init_once);
    if (gst_init_error[0]) {
        rc = er_fail(err, ER_IO, "%s", gst_init_error);
        goto fail;
    }
    if (o->pipeline && o->pipeline[0]) {
        desc = strdup(o->pipeline);
        rc = desc ? ER_OK : er_fail(err, ER_NOMEM, "camera: out of memory");
    } else {
        rc = camera__device_pipeline(o, &desc, err);
    }
    if (rc) goto fail;

    c = calloc(1, sizeof *c);
    if (!c) {
        rc = er_fail(err, ER_NOMEM, "camera: out of memory");
        goto fail;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    c->max_frame = o->max_frame ? o->max_frame : CAMERA_SIZE_MAX;
    /* enable-last-sample=false: the sink keeps no extra frame alive */
    c->describe = g_strdup_printf("%s ! appsink name=" CAMERA__SINK_NAME
                                  " max-buffers=1 drop=true enable-last-sample=false",
                                  desc);

    ctx = gst_parse_context_new();
    top = gst_parse_launch_full(c->describe, ctx, GST_PARSE_FLAG_FATAL_ERRORS, &e);
    if (!top || e) {
        rc = parse_failure(ctx, e, desc, err);
        goto fail;
    }
    if (!GST_IS_PIPELINE(top)) {
        rc = er_fail(err, ER_CONFIG, "the GStreamer description \"%s\" is not a pipeline", desc);
        goto fail;
    }
    c->pipeline = top;
    top = NULL;
    c->sink = gst_bin_get_by_name(GST_BIN(c->pipeline), CAMERA__SINK_NAME);
    if (!c->sink || !GST_IS_APP_SINK(c->sink)) {
        rc = er_fail(err, ER_CONFIG, "the GStreamer description \"%s\" hides the camera's sink",
                     desc);
        goto fail;
    }
    GstAppSinkCallbacks cbs = {.eos = on_eos, .new_sample = on_sample};
    gst_app_sink_set_callbacks(GST_APP_SINK(c->sink), &cbs, c, NULL);
    GstBus *bus = gst_element_get_bus(c->pipeline);
    gst_bus_set_sync_handler(bus, on_bus, c, NULL);
    gst_object_unref(bus);
    rc = start(c, err);
    if (rc) goto fail;
    *out = c;
    c = NULL;
fail:
    if (top) gst_object_unref(top);
    if (ctx) gst_parse_context_free(ctx);
    g_clear_error(&e);
    free(desc);
    cg_destroy(c);
    return rc;
}

static er_rc cg_next(camera *c, int timeout_ms, camera_frame *out, er_err *err)
{
    er_rc rc = ER_AGAIN;
    GstSample *s = NULL;
    uint64_t seq = 0;
    GstMapInfo map;
    bool mapped = false;
    struct timespec deadline;
    bool timed_out = timeout_ms == 0;
    memset(out, 0, sizeof *out);
    if (timeout_ms > 0) util_deadline(&deadline, CLOCK_MONOTONIC, timeout_ms);
    pthread_mutex_lock(&c->mu);
    for (;;) {
        if (c->wake) {
            c->wake = false;
            rc = er_fail(err, ER_AGAIN, "camera: woken");
            break;
        }
        if (c->pending) {
            s = c->pending;
            seq = c->pending_seq;
            c->pending = NULL;
            c->st.delivered++;
            rc = ER_OK;
            break;
        }
        if (c->toobig) {
            c->toobig = false;
            rc = er_fail(err, ER_TOOBIG, "camera: frame %llu is %zu bytes, over the limit of %zu",
                         (unsigned long long)c->toobig_seq, c->toobig_len, c->max_frame);
            break;
        }
        if (c->fail_rc) {
            rc = er_fail(err, c->fail_rc, "%s", c->fail_msg);
            break;
        }
        if (c->eos) {
            rc = er_fail(err, ER_CLOSED, "camera: the pipeline reached its end (EOS)");
            break;
        }
        if (timed_out) {
            rc = er_fail(err, ER_AGAIN, "camera: no frame within %d ms", timeout_ms);
            break;
        }
        if (timeout_ms < 0)
            pthread_cond_wait(&c->cond, &c->mu);
        else if (pthread_cond_timedwait(&c->cond, &c->mu, &deadline) == ETIMEDOUT)
            timed_out = true; /* one more look at the state, then ER_AGAIN */
    }
    pthread_mutex_unlock(&c->mu);
    if (!s) goto fail;
    GstBuffer *b = gst_sample_get_buffer(s);
    if (!b || !gst_buffer_map(b, &map, GST_MAP_READ)) {
        rc = er_fail(err, ER_IO, "camera: frame %llu cannot be read", (unsigned long long)seq);
        goto fail;
    }
    mapped = true;
    out->data = malloc(map.size ? map.size : 1);
    if (!out->data) {
        rc = er_fail(err, ER_NOMEM, "camera: out of memory for a %zu-byte frame", map.size);
        goto fail;
    }
    memcpy(out->data, map.data, map.size);
    out->len = map.size;
    out->seq = seq;
fail:
    if (mapped) gst_buffer_unmap(gst_sample_get_buffer(s), &map);
    if (s) gst_sample_unref(s);
    return rc;
}

static void cg_wake(camera *c)
{
    pthread_mutex_lock(&c->mu);
    c->wake = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

static er_rc cg_restart(camera *c, er_err *err)
{
    /* NULL state first: it joins the streaming threads, so no callback runs while we reset */
    gst_element_set_state(c->pipeline, GST_STATE_NULL);
    pthread_mutex_lock(&c->mu);
    GstSample *old = c->pending;
    c->pending = NULL;
    c->toobig = false;
    c->eos = false;
    c->fail_rc = ER_OK;
    c->fail_msg[0] = '\0';
    c->st.restarts++;
    pthread_mutex_unlock(&c->mu);
    if (old) gst_sample_unref(old);
    return start(c, err);
}

static void cg_stats_get(const camera *c, camera_stats *out)
{
    camera *m = (camera *)c; /* the mutex changes, the camera does not */
    pthread_mutex_lock(&m->mu);
    *out = c->st;
    pthread_mutex_unlock(&m->mu);
}

static const char *cg_describe(const camera *c)
{
    return c->describe;
}

static void cg_destroy(camera *c)
{
    if (!c) return;
    if (c->pipeline) {
        gst_element_set_state(c->pipeline, GST_STATE_NULL);
        GstBus *bus = gst_element_get_bus(c->pipeline);
        gst_bus_set_sync_handler(bus, NULL, NULL, NULL);
        gst_object_unref(bus);
        gst_object_unref(c->pipeline);
    }
    if (c->sink) gst_object_unref(c->sink);
    if (c->pending) gst_sample_unref(c->pending);
    g_free(c->describe);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static const camera_gst_api api = {
    .create = cg_create,
    .next = cg_next,
    .wake = cg_wake,
    .restart = cg_restart,
    .stats_get = cg_stats_get,
    .describe = cg_describe,
    .destroy = cg_destroy,
};

__attribute__((visibility("default"))) const void *ei_relay_gst_api(unsigned abi)
{
    return abi == CAMERA_GST_ABI ? &api : NULL;
}
