/* demo.c - see demo.h. One thread: every interval it builds the next sample as an Edge Impulse
 * result document with a base64 frame, runs it through ingest_parse (validation, image probe)
 * and stores it, exactly as an HTTP client's inference would be. */
#include "sources/demo.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "ingest/ingest.h"
#include "media/synth.h"

#define DEMO_FRAME 240 /* camera frame, pixels */
#define DEMO_MODEL 96  /* model input resolution: boxes are in these coordinates */

struct demo_source {
    store *st;
    char *device;
    int64_t interval_ms;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    uint32_t tick;
};

typedef struct demo_box {
    const char *label;
    int x, y, w, h; /* model coordinates */
    uint8_t r, g, b;
} demo_box;

/* A small repertoire, replayed in a cycle with jittered scores and positions. */
static const demo_box demo_people[] = {{"person", 10, 20, 24, 56, 200, 120, 90},
                                       {"person", 60, 30, 20, 50, 190, 110, 80}};
static const demo_box demo_car[] = {{"car", 30, 50, 50, 28, 40, 80, 200}};
static const char *const demo_classes[] = {"idle", "wave", "snake", "updown"};

static er_rc build_document(demo_source *d, util_buf *doc)
{
    uint32_t t = d->tick++;
    uint32_t jitter = t * 2654435761u;
    synth_rect rects[4];
    size_t n_rects = 0;
    const demo_box *boxes = NULL;
    size_t n_boxes = 0;
    int scene = (int)(t % 4);
    if (scene == 0) boxes = demo_people, n_boxes = 2;
    if (scene == 1) boxes = demo_car, n_boxes = 1;
    /* scene 2: no objects (an empty result); scene 3: classification */
    for (size_t i = 0; i < n_boxes; i++) {
        const demo_box *b = &boxes[i];
        int dx = (int)((jitter >> (i * 4)) % 7) - 3;
        rects[n_rects++] = (synth_rect){(b->x + dx) * DEMO_FRAME / DEMO_MODEL,
                                        b->y * DEMO_FRAME / DEMO_MODEL,
                                        b->w * DEMO_FRAME / DEMO_MODEL,
                                        b->h * DEMO_FRAME / DEMO_MODEL,
                                        b->r,
                                        b->g,
                                        b->b};
    }
    uint8_t *jpeg = NULL;
    size_t jpeg_len = 0;
    char *b64 = NULL;
    er_rc rc = synth_jpeg(DEMO_FRAME, DEMO_FRAME, rects, n_rects, t + 1, 80, &jpeg, &jpeg_len);
    if (rc) goto fail;
    rc = ER_NOMEM;
    b64 = malloc(util_b64_encoded_len(jpeg_len) + 1);
    if (!b64) goto fail;
    util_b64_encode(jpeg, jpeg_len, b64);

    if ((rc = util_buf_printf(doc, "{\"result\":{"))) goto fail;
    if (scene == 3) {
        int hot = (int)(jitter % 4);
        double top = 0.70 + (double)(jitter % 29) / 100.0;
        rc = util_buf_printf(doc, "\"classification\":{");
        for (int i = 0; i < 4 && !rc; i++)
            rc = util_buf_printf(doc, "%s\"%s\":%.4f", i ? "," : "", demo_classes[i],
                                 i == hot ? top : (1.0 - top) / 3.0);
        if (!rc) rc = util_buf_printf(doc, "},\"anomaly\":%.3f", (double)(jitter % 100) / 50.0 - 1);
    } else {
        rc = util_buf_printf(doc, "\"bounding_boxes\":[");
        for (size_t i = 0; i < n_boxes && !rc; i++) {
            const demo_box *b = &boxes[i];
            rc = util_buf_printf(doc,
                                 "%s{\"label\":\"%s\",\"value\":%.4f,\"x\":%d,\"y\":%d,"
                                 "\"width\":%d,\"height\":%d}",
                                 i ? "," : "", b->label, 0.6 + (double)((jitter >> i) % 39) / 100,
                                 rects[i].x * DEMO_MODEL / DEMO_FRAME, b->y, b->w, b->h);
        }
        if (!rc) rc = util_buf_printf(doc, "]");
    }
    if (rc) goto fail;
    rc = util_buf_printf(doc,
                         "},\"timing\":{\"dsp\":%d,\"classification\":%d,\"anomaly\":0},"
                         "\"info\":{\"demo\":true,\"model\":\"%s\"},"
                         "\"model\":{\"width\":%d,\"height\":%d},\"image\":\"%s\"}",
                         1 + (int)(jitter % 3), 8 + (int)(jitter % 5),
                         scene == 3 ? "gestures-demo" : "camera-objects-demo", DEMO_MODEL,
                         DEMO_MODEL, b64);
fail:
    free(b64);
    free(jpeg);
    return rc;
}

static void demo_tick(demo_source *d)
{
    util_buf doc = {0};
    inference *inf = NULL;
    er_err err = {{0}};
    er_rc rc = build_document(d, &doc);
    if (rc) {
        log_warn("demo", "cannot build a sample: %s", er_rc_name(rc));
        goto done;
    }
    normalize_opts no = {.device = d->device, .source = "demo", .now_ms = util_now_ms()};
    rc = ingest_parse("application/json", (const uint8_t *)doc.data, doc.len, &no, &inf, &err);
    if (rc) {
        log_warn("demo", "sample rejected: %s", err.msg);
        goto done;
    }
    rc = store_put_async(d->st, inf, NULL, NULL); /* takes inf */
    if (rc) log_warn("demo", "cannot store a sample: %s", er_rc_name(rc));
done:
    util_buf_free(&doc);
}

static void *demo_main(void *arg)
{
    demo_source *d = arg;
    util_thread_name("eir-demo", NULL);
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        pthread_mutex_unlock(&d->mu);
        demo_tick(d);
        pthread_mutex_lock(&d->mu);
        struct timespec until;
        util_deadline(&until, CLOCK_MONOTONIC, d->interval_ms);
        while (!d->stop && pthread_cond_timedwait(&d->cv, &d->mu, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

er_rc demo_source_create(store *st, const char *device, int64_t interval_ms, demo_source **out,
                         er_err *err)
{
    er_rc rc = ER_NOMEM;
    demo_source *d = calloc(1, sizeof *d);
    if (!d) goto fail;
    d->st = st;
    d->interval_ms = interval_ms > 0 ? interval_ms : 1000;
    d->device = strdup(device);
    if (!d->device) goto fail;
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&d->thread, NULL, demo_main, d) != 0) {
        rc = er_fail(err, ER_INTERNAL, "cannot start the demo thread");
        goto fail;
    }
    d->started = true;
    log_info("demo", "demo source on: a sample inference every %lld ms", (long long)d->interval_ms);
    *out = d;
    return ER_OK;
fail:
    demo_source_destroy(d);
    return rc;
}

void demo_source_destroy(demo_source *d)
{
    if (!d) return;
    if (d->started) {
        pthread_mutex_lock(&d->mu);
        d->stop = true;
        pthread_cond_signal(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
        pthread_mutex_destroy(&d->mu);
        pthread_cond_destroy(&d->cv);
    }
    free(d->device);
    free(d);
}
