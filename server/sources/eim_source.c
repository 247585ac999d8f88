/* eim_source.c - the "eim" source kind (its row: sources_kind_eim): the relay runs an Edge
 * Impulse Linux model (.eim, server/eim) on camera frames (server/camera), as
 * edge-impulse-linux-runner does, and stores every result with its frame.
 *
 * One thread per source. A round starts the model, publishes its parameters as the source's
 * model info (the shape runner-ws shows: the model's hello is turned into the runner's preview
 * hello and read by the same runner_session), applies the `thresholds` overrides, starts the
 * camera, and then loops: newest frame -> skip it when its bytes equal the previous frame's ->
 * preprocess exactly as the runner does (media/preprocess) -> classify -> the runner's minimum
 * score -> normalize -> sources_commits (in order, each with its outcome; while the previous one
 * is not committed - the writer's queue is full, or the store fails and it is held and retried -
 * this thread takes no frames and the camera drops them, counted, never queued). Frames that
 * arrive while the model is busy are dropped by the camera (it keeps only the newest).
 *
 * A round ends on stop, on a model that exits or stops answering, on a camera error or end of
 * stream, and when no frame comes for EIM_SRC_FIRST_FRAME_MS (the first) or EIM_SRC_FRAME_GAP_MS
 * (later ones): the model and the camera are stopped and the next round starts after the usual
 * backoff (sources_internal.h), reset once a round stored something. Nothing is half-stored: an
 * inference goes to the store whole or not at all.
 *
 * The thread owns the model, the camera and the frames; the slot is shared with the API; `cam`
 * is also read by destroy (under mu) to wake a camera_next in progress. */
#include <cjson/cJSON.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "camera/camera.h"
#include "core/log.h"
#include "core/util.h"
#include "eim/eim.h"
#include "ingest/normalize.h"
#include "media/preprocess.h"
#include "sources/runner_msg.h"
#include "sources/sources_internal.h"

#define EIM_SRC_FIRST_FRAME_MS 20000 /* the runner's start-up limit for the first frame */
#define EIM_SRC_FRAME_GAP_MS 10000   /* a running camera that stops sending is restarted */
#define EIM_SRC_THRESHOLDS_MAX 32    /* overrides in the `thresholds` setting */

/* The counters an eim source keeps besides inferences and reconnects, in the order of the
 * kind's counters table. */
enum {
    C_FRAMES,
    C_FRAMES_SAME,
    C_FRAMES_DROPPED,
    C_FRAME_ERRORS,
    C_CLASSIFY_ERRORS,
    C_MODEL_STARTS,
    C_N
};

/* One `thresholds` override: set key of block id to value (eim_model_set_threshold). */
typedef struct eim_threshold {
    int id;
    char key[32];
    double value;
} eim_threshold;

/* The settings of one source, as parse_settings reads them; strings borrow the source's JSON. */
typedef struct eim_settings {
    const char *model_file;
    const char *pipeline; /* gst_launch_args, or NULL */
    const char *device;   /* camera, or NULL for the first one found */
    int width, height;    /* camera_resolution */
    bool images;
    eim_threshold thr[EIM_SRC_THRESHOLDS_MAX];
    size_t n_thr;
} eim_settings;

typedef struct eim_source {
    store *st;
    sources_slot *slot; /* shared with the API, see sources_internal.h */
    int stop_fd;        /* readable once the source must stop */
    char *device_name;  /* recorded on inferences */
    char *model_file, *pipeline, *device;
    int width, height;
    bool images;
    eim_threshold thr[EIM_SRC_THRESHOLDS_MAX];
    size_t n_thr;
    runner_session *session;  /* turns the model's runner hello into the model info */
    sources_commits *commits; /* the inferences on their way to the store */
    pthread_t thread;
    bool started;
    pthread_mutex_t mu; /* guards cam and stopping between the thread and destroy */
    camera *cam;        /* the thread's camera while one is open */
    bool stopping;
    /* the thread's own */
    uint64_t c[C_N];
    uint64_t dropped_base; /* camera drops of the rounds before this one */
    uint64_t inferences;
    char last_warn[SOURCES_ERROR_MAX]; /* the last frame/classify problem logged */
} eim_source;

/* ---- settings ---- */

static er_rc parse_resolution(const cJSON *v, const char *name, int *w, int *h, er_err *err)
{
    char x = 0, rest = 0;
    if (!cJSON_IsString(v) || sscanf(v->valuestring, "%d%c%d%c", w, &x, h, &rest) != 3 ||
        (x != 'x' && x != 'X') || *w < 1 || *h < 1 || *w > 8192 || *h > 8192)
        return er_fail(err, ER_CONFIG,
                       "sources \"%.40s\".camera_resolution: expected WIDTHxHEIGHT, e.g. "
                       "\"640x480\"",
                       name);
    return ER_OK;
}

/* `thresholds`: [{"id": <block>, "<key>": <number>, ...}, ...], as the runner's overrides. */
static er_rc parse_thresholds(const cJSON *v, const char *name, eim_settings *s, er_err *err)
{
    const cJSON *blk;
    if (!cJSON_IsArray(v)) goto bad;
    cJSON_ArrayForEach(blk, v)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(blk, "id");
        if (!cJSON_IsObject(blk) || !cJSON_IsNumber(id) ||
            id->valuedouble != (int)id->valuedouble || id->valuedouble < 0)
            goto bad;
        int keys = 0;
        const cJSON *kv;
        cJSON_ArrayForEach(kv, blk)
        {
            if (strcmp(kv->string, "id") == 0) continue;
            if (!cJSON_IsNumber(kv) || strlen(kv->string) >= sizeof s->thr[0].key) goto bad;
            if (s->n_thr == EIM_SRC_THRESHOLDS_MAX)
                return er_fail(err, ER_CONFIG, "sources \"%.40s\".thresholds: at most %d values",
                               name, EIM_SRC_THRESHOLDS_MAX);
            eim_threshold *t = &s->thr[s->n_thr++];
            t->id = id->valueint;
            snprintf(t->key, sizeof t->key, "%s", kv->string);
            t->value = kv->valuedouble;
            keys++;
        }
        if (!keys) goto bad;
    }
    return ER_OK;
bad:
    return er_fail(err, ER_CONFIG,
                   "sources \"%.40s\".thresholds: expected [{\"id\": <block>, \"min_score\": "
                   "<number>}, ...] (a block id and at least one numeric key per entry)",
                   name);
}

static er_rc parse_settings(const cJSON *conf, const char *name, eim_settings *s, er_err *err)
{
    static const char *const known[] = {"model_file",        "gst_launch_args", "camera",
                                        "camera_resolution", "images",          "thresholds"};
    if (sources__known_settings(conf, name, "eim", known, sizeof known / sizeof known[0], err))
        return ER_CONFIG;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(conf, "model_file");
    const cJSON *gst = cJSON_GetObjectItemCaseSensitive(conf, "gst_launch_args");
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(conf, "camera");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(conf, "camera_resolution");
    const cJSON *images = cJSON_GetObjectItemCaseSensitive(conf, "images");
    const cJSON *thr = cJSON_GetObjectItemCaseSensitive(conf, "thresholds");
    memset(s, 0, sizeof *s);
    if (!cJSON_IsString(model) || !model->valuestring[0])
        return er_fail(err, ER_CONFIG,
                       "sources \"%.40s\".model_file: expected the path of an .eim model", name);
    s->model_file = model->valuestring;
    if (gst && (!cJSON_IsString(gst) || !gst->valuestring[0]))
        return er_fail(err, ER_CONFIG,
                       "sources \"%.40s\".gst_launch_args: expected a GStreamer pipeline that "
                       "gives JPEG frames",
                       name);
    if (dev && (!cJSON_IsString(dev) || !dev->valuestring[0]))
        return er_fail(err, ER_CONFIG, "sources \"%.40s\".camera: expected a V4L2 device path",
                       name);
    if (gst && (dev || res))
        return er_fail(err, ER_CONFIG,
                       "sources \"%.40s\": gst_launch_args is the whole pipeline; give camera and "
                       "camera_resolution only without it",
                       name);
    s->pipeline = gst ? gst->valuestring : NULL;
    s->device = dev ? dev->valuestring : NULL;
    s->width = CAMERA_DEFAULT_WIDTH;
    s->height = CAMERA_DEFAULT_HEIGHT;
    if (res && parse_resolution(res, name, &s->width, &s->height, err)) return ER_CONFIG;
    if (images && !cJSON_IsBool(images))
        return er_fail(err, ER_CONFIG, "sources \"%.40s\".images: expected true or false", name);
    s->images = !cJSON_IsFalse(images);
    if (thr && parse_thresholds(thr, name, s, err)) return ER_CONFIG;
    return ER_OK;
}

static er_rc eim_validate(const cJSON *conf, const char *name, er_err *err)
{
    eim_settings s;
    return parse_settings(conf, name, &s, err);
}

/* ---- the thread's helpers ---- */

static void publish_counters(eim_source *s, const camera *cam)
{
    uint64_t dropped = s->dropped_base;
    if (cam) {
        camera_stats cs;
        camera_stats_get(cam, &cs);
        dropped += cs.dropped;
    }
    s->c[C_FRAMES_DROPPED] = dropped;
    pthread_mutex_lock(&s->slot->mu);
    s->slot->st.inferences = s->inferences;
    memcpy(s->slot->st.counters, s->c, sizeof s->c);
    pthread_mutex_unlock(&s->slot->mu);
}

/* A problem with one frame: counted by the caller, logged when it differs from the last one
 * logged (a camera sending bad frames at 30/s must not flood the log), shown as last_error. */
static void frame_problem(eim_source *s, const char *what, const er_err *err)
{
    char line[SOURCES_ERROR_MAX];
    snprintf(line, sizeof line, "%s: %.200s", what, err->msg);
    if (strcmp(line, s->last_warn) != 0) {
        log_warn("sources", "source \"%s\": %s", s->slot->st.name, line);
        snprintf(s->last_warn, sizeof s->last_warn, "%s", line);
    }
    sources_slot_state(s->slot, "running", "%s", line);
}

/* The model's parameters become the source's model info (and get_model_info's). */
static void publish_model(eim_source *s, const eim_model_info *info)
{
    er_err err = {{0}};
    if (runner_session_on_message(s->session, info->runner_hello, strlen(info->runner_hello), NULL,
                                  NULL, &err)) {
        log_warn("sources", "source \"%s\": cannot read the model's parameters: %s",
                 s->slot->st.name, err.msg);
        return;
    }
    const char *text = runner_session_model_info(s->session);
    if (text) sources_slot_model(s->slot, s->st, text);
}

/* One classify reply to a stored inference with the frame's image (taken from pre->jpeg). */
static er_rc store_result(eim_source *s, const eim_model_info *info, cJSON *reply,
                          preprocess_out *pre, er_err *err)
{
    er_rc rc = ER_NOMEM;
    inference *inf = NULL;
    char *text = NULL;
    cJSON *doc = cJSON_CreateObject(), *model = NULL;
    eim_apply_runner_threshold(reply, info->min_score);
    static const char *const moved[] = {"result", "timing", "info"};
    if (!doc) goto fail;
    for (size_t i = 0; i < sizeof moved / sizeof moved[0]; i++) {
        cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(reply, moved[i]);
        if (v) cJSON_AddItemToObject(doc, moved[i], v);
    }
    if (!(model = cJSON_AddObjectToObject(doc, "model")) ||
        !cJSON_AddNumberToObject(model, "width", info->width) ||
        !cJSON_AddNumberToObject(model, "height", info->height) ||
        !(text = cJSON_PrintUnformatted(doc)))
        goto fail;
    normalize_opts no = {
        .device = s->device_name, .source = s->slot->st.name, .now_ms = util_now_ms()};
    if ((rc = normalize_json(text, strlen(text), &no, &inf, err))) goto fail;
    if (pre->jpeg) {
        inf->image.data = pre->jpeg;
        inf->image.len = pre->jpeg_len;
        snprintf(inf->image.mime, sizeof inf->image.mime, "image/jpeg");
        inf->image.width = pre->jpeg_w;
        inf->image.height = pre->jpeg_h;
        pre->jpeg = NULL;
    }
    sources__commits_add(s->commits, inf); /* the frame loop waits for it */
    inf = NULL;
fail:
    inference_destroy(inf);
    free(text);
    cJSON_Delete(doc);
    return rc;
}

/* Sets the camera the thread uses (NULL: none), unless the source is stopping. */
static bool set_camera(eim_source *s, camera *cam)
{
    pthread_mutex_lock(&s->mu);
    bool stopping = s->stopping;
    s->cam = stopping ? NULL : cam;
    pthread_mutex_unlock(&s->mu);
    return !stopping;
}

/* ---- one round: model + camera until something ends it ---- */

/* The frame loop of a round. Returns true when stopping; otherwise *why says what ended it. */
static bool frame_loop(eim_source *s, eim_model *m, camera *cam, char *why, size_t why_len)
{
    const eim_model_info *info = eim_model_get_info(m);
    preprocess_mode mode = PREPROCESS_FIT_SHORTEST;
    er_err err = {{0}};
    uint8_t *prev = NULL;
    size_t prev_len = 0;
    bool stopping = false, first = true;
    int64_t last_frame = util_mono_ms();
    if (info->resize_mode[0] && preprocess_mode_parse(info->resize_mode, &mode)) {
        snprintf(why, why_len, "the model's resize mode \"%.40s\" is unknown", info->resize_mode);
        return false;
    }
    for (;;) {
        int limit = first ? EIM_SRC_FIRST_FRAME_MS : EIM_SRC_FRAME_GAP_MS;
        int64_t left = last_frame + limit - util_mono_ms();
        camera_frame f = {0};
        er_rc rc = left > 0 ? camera_next(cam, (int)left, &f, &err) : ER_AGAIN;
        if (sources__wait_stop(s->stop_fd, 0)) {
            camera_frame_free(&f);
            stopping = true;
            break;
        }
        if (rc == ER_AGAIN) {
            if (util_mono_ms() - last_frame < limit) continue; /* woken early */
            snprintf(why, why_len, "no %sframe from the camera in %d s", first ? "first " : "",
                     limit / 1000);
            break;
        }
        if (rc == ER_TOOBIG) {
            s->c[C_FRAME_ERRORS]++;
            frame_problem(s, "frame", &err);
            continue;
        }
        if (rc == ER_CLOSED) {
            snprintf(why, why_len, "the camera pipeline ended (end of stream)");
            break;
        }
        if (rc) {
            snprintf(why, why_len, "camera: %s", err.msg);
            break;
        }
        first = false;
        last_frame = util_mono_ms();
        s->c[C_FRAMES]++;
        if (prev && f.len == prev_len && memcmp(f.data, prev, prev_len) == 0) {
            s->c[C_FRAMES_SAME]++; /* the runner classifies a frame only when it changed */
            camera_frame_free(&f);
            publish_counters(s, cam);
            continue;
        }
        free(prev);
        prev = f.data; /* the frame's bytes become the previous frame */
        prev_len = f.len;
        preprocess_out pre = {0};
        cJSON *reply = NULL;
        rc = preprocess_frame(prev, prev_len, info->width, info->height, info->channels, mode,
                              s->images, &pre, &err);
        if (rc) {
            s->c[C_FRAME_ERRORS]++;
            frame_problem(s, "frame", &err);
        } else {
            rc = eim_model_classify(m, pre.features, pre.n_features, 0, &reply, &err);
        }
        if (rc == ER_OK) {
            er_err serr = {{0}};
            if (store_result(s, info, reply, &pre, &serr) == ER_OK)
                s->inferences++;
            else
                frame_problem(s, "result", &serr);
            /* no next frame before the store took this one (the camera keeps the newest) */
            if (sources__commits_drain(s->commits, s->stop_fd)) stopping = true;
            last_frame = util_mono_ms(); /* the wait was not the camera's silence */
        } else if (rc == ER_CLOSED) {
            stopping = true;
        } else if (rc == ER_INVALID || rc == ER_SHAPE || rc == ER_NOMEM) {
            if (pre.features) { /* a classify the model refused: it is still usable */
                s->c[C_CLASSIFY_ERRORS]++;
                frame_problem(s, "classify", &err);
            }
        } else if (pre.features) { /* ER_AGAIN, ER_IO: the model is broken, start another */
            snprintf(why, why_len, "model: %s", err.msg);
        }
        cJSON_Delete(reply);
        preprocess_out_free(&pre);
        publish_counters(s, cam);
        if (stopping || why[0]) break;
    }
    free(prev);
    return stopping;
}

/* One round. Returns true when stopping; otherwise *why says what ended it. */
static bool run_round(eim_source *s, char *why, size_t why_len)
{
    er_err err = {{0}};
    eim_model *m = NULL;
    camera *cam = NULL;
    bool stopping = false;
    eim_opts mo = {.model_file = s->model_file, .name = s->slot->st.name, .cancel_fd = s->stop_fd};
    er_rc rc = eim_model_start(&mo, &m, &err);
    s->c[C_MODEL_STARTS]++;
    if (rc == ER_CLOSED) return true;
    if (rc) {
        snprintf(why, why_len, "model: %s", err.msg);
        goto done;
    }
    const eim_model_info *info = eim_model_get_info(m);
    if (info->width < 1 || info->height < 1 || (info->channels != 1 && info->channels != 3)) {
        snprintf(why, why_len,
                 "model: %s takes no camera image (input %dx%d, %d channels); the eim source "
                 "runs image models",
                 s->model_file, info->width, info->height, info->channels);
        goto done;
    }
    for (size_t i = 0; i < s->n_thr; i++) {
        rc = eim_model_set_threshold(m, s->thr[i].id, s->thr[i].key, s->thr[i].value, &err);
        if (rc == ER_CLOSED) {
            stopping = true;
            goto done;
        }
        if (rc) {
            snprintf(why, why_len, "thresholds: block %d %s: %s", s->thr[i].id, s->thr[i].key,
                     err.msg);
            goto done;
        }
    }
    publish_model(s, info); /* after the overrides: it shows the thresholds in force */
    camera_opts co = {
        .pipeline = s->pipeline, .device = s->device, .width = s->width, .height = s->height};
    if ((rc = camera_create(&co, &cam, &err))) {
        snprintf(why, why_len, "camera: %s", err.msg);
        goto done;
    }
    if (!set_camera(s, cam)) {
        stopping = true;
        goto done;
    }
    sources_slot_state(s->slot, "running", "%s", "");
    log_info("sources", "source \"%s\": model %s (%dx%d, %s, pid %d) on %s", s->slot->st.name,
             s->model_file, info->width, info->height, info->model_type, eim_model_pid(m),
             camera_describe(cam));
    stopping = frame_loop(s, m, cam, why, why_len);
done:
    if (cam) {
        set_camera(s, NULL);
        camera_stats cs;
        camera_stats_get(cam, &cs);
        s->dropped_base += cs.dropped;
        camera_destroy(cam);
    }
    publish_counters(s, NULL);
    if (m) eim_model_stop(m);
    return stopping || sources__wait_stop(s->stop_fd, 0);
}

static void *eim_main(void *arg)
{
    eim_source *s = arg;
    const char *name = s->slot->st.name;
    util_thread_name("eir-m:", name);
    int64_t backoff = SOURCES_BACKOFF_MIN_MS;
    for (bool again = false;; again = true) {
        if (again) sources_slot_attempt(s->slot);
        uint64_t before = s->inferences;
        char why[SOURCES_ERROR_MAX] = "";
        bool stop = run_round(s, why, sizeof why);
        /* a round's results are stored before the next; at stop, for a bounded time */
        if (!stop) stop = sources__commits_finish(s->commits, s->stop_fd, -1);
        if (stop) {
            sources__commits_finish(s->commits, -1, SOURCES_STOP_COMMIT_MS);
            break;
        }
        if (s->inferences > before) backoff = SOURCES_BACKOFF_MIN_MS; /* it worked for a while */
        log_warn("sources", "source \"%s\": %s (restarting in %lld ms)", name, why,
                 (long long)backoff);
        sources_slot_state(s->slot, "backoff", "%s", why);
        sources_slot_backoff(s->slot, backoff);
        if (sources__wait_stop(s->stop_fd, (int)backoff)) break;
        backoff = sources_backoff_next(backoff);
    }
    sources_slot_state(s->slot, "stopped", NULL);
    return NULL;
}

/* ---- lifecycle ---- */

static void eim_destroy(void *source);

static er_rc eim_create(const cJSON *conf, const sources_env *env, sources_slot *slot, void **out,
                        er_err *err)
{
    er_rc rc = ER_NOMEM;
    eim_settings set;
    eim_source *s = calloc(1, sizeof *s);
    if (!s) goto fail;
    pthread_mutex_init(&s->mu, NULL);
    s->st = env->st;
    s->slot = slot;
    s->stop_fd = env->stop_fd;
    if ((rc = parse_settings(conf, slot->st.name, &set, err))) goto fail;
    rc = ER_NOMEM;
    s->width = set.width;
    s->height = set.height;
    s->images = set.images;
    memcpy(s->thr, set.thr, sizeof s->thr);
    s->n_thr = set.n_thr;
    if (!(s->model_file = strdup(set.model_file)) ||
        (set.pipeline && !(s->pipeline = strdup(set.pipeline))) ||
        (set.device && !(s->device = strdup(set.device))) ||
        !(s->device_name = strdup(env->device)))
        goto fail;
    runner_session_opts so = {.source = slot->st.name, .device = env->device};
    if ((rc = runner_session_create(&so, &s->session))) goto fail;
    if ((rc = sources__commits_create(s->st, slot, &s->commits))) {
        er_fail(err, rc, "source \"%s\": out of resources", slot->st.name);
        goto fail;
    }
    if (pthread_create(&s->thread, NULL, eim_main, s) != 0) {
        rc = er_fail(err, ER_INTERNAL, "cannot start the thread of source \"%s\"", slot->st.name);
        goto fail;
    }
    s->started = true;
    *out = s;
    return ER_OK;
fail:
    if (rc == ER_NOMEM) er_fail(err, ER_NOMEM, "out of memory");
    eim_destroy(s);
    return rc;
}

/* Wakes the thread out of a frame wait (sources.c has made the stop pipe readable, which ends
 * the model's waits), joins it and frees. */
static void eim_destroy(void *source)
{
    eim_source *s = source;
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    if (s->cam) camera_wake(s->cam);
    pthread_mutex_unlock(&s->mu);
    if (s->started) pthread_join(s->thread, NULL);
    runner_session_destroy(s->session);
    sources__commits_destroy(s->commits);
    pthread_mutex_destroy(&s->mu);
    free(s->model_file);
    free(s->pipeline);
    free(s->device);
    free(s->device_name);
    free(s);
}

static const sources_counter counters[C_N] = {
    [C_FRAMES] = {"frames", "Camera frames an eim source received."},
    [C_FRAMES_SAME] = {"frames_same",
                       "Frames an eim source did not classify: the same bytes as the previous "
                       "frame."},
    [C_FRAMES_DROPPED] = {"frames_dropped",
                          "Frames the camera of an eim source dropped while the model was busy."},
    [C_FRAME_ERRORS] = {"frame_errors",
                        "Frames an eim source could not use (too big, not a decodable JPEG, the "
                        "wrong size)."},
    [C_CLASSIFY_ERRORS] = {"classify_errors", "Frames the model of an eim source refused."},
    [C_MODEL_STARTS] = {"model_starts", "Times an eim source started its model."},
};

const sources_kind sources_kind_eim = {
    .name = "eim",
    .validate = eim_validate,
    .create = eim_create,
    .cancel = NULL, /* a thread: nothing on the loop */
    .destroy = eim_destroy,
    .counters = counters,
    .n_counters = C_N,
    .model = true,
};
