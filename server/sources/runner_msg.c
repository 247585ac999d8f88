/* runner_msg.c - the runner preview WebSocket's messages turned into inferences: model info
 * from hello, camera-preview frames paired with the next classification. Pure (see the
 * header for the protocol and the pairing rule). */
#include "sources/runner_msg.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_alloc.h"
#include "core/util.h"
#include "ingest/normalize.h"

#define GREETING "{\"type\":\"set-camera-preview\",\"enabled\":true,\"messageId\":1}"
/* Largest image side accepted from a header; beyond this the header is garbage. */
#define MAX_SIDE 65535

/* The frame that arrived since the last classification. */
typedef struct pending_frame {
    uint8_t *data; /* owned; NULL when none */
    size_t len;
    char mime[16];
    int width;
    int height;
} pending_frame;

struct runner_session {
    char *source; /* owned */
    char *device; /* owned */
    bool want_images;
    size_t max_frame; /* decoded bytes */
    size_t max_msg;   /* message bytes */
    normalize_limits lim;
    char *model_info; /* owned; JSON text from the last hello, NULL before */
    int model_width;
    int model_height;
    pending_frame frame;
    runner_session_counters counters;
};

static void frame_clear(pending_frame *f)
{
    free(f->data);
    memset(f, 0, sizeof *f);
}

/* Drops the pending frame, counting it as one that never met its classification. */
static void drop_frame(runner_session *s)
{
    if (s->frame.data) s->counters.frames_unpaired++;
    frame_clear(&s->frame);
}

er_rc runner_session_create(const runner_session_opts *o, runner_session **out)
{
    er_rc rc = ER_OK;
    runner_session *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s) {
        rc = ER_NOMEM;
        goto fail;
    }
    s->source = strdup(o->source ? o->source : "runner");
    s->device = strdup(o->device ? o->device : "runner");
    if (!s->source || !s->device) {
        rc = ER_NOMEM;
        goto fail;
    }
    s->want_images = o->want_images;
    s->lim = o->lim;
    s->max_frame = o->max_frame_bytes ? o->max_frame_bytes : RUNNER_DEFAULT_MAX_FRAME_BYTES;
    /* base64 of the largest frame plus its data URL and the rest of a message; saturating so
     * a huge max_frame_bytes cannot wrap around to a small limit. */
    size_t enc = s->max_frame > SIZE_MAX / 2 ? SIZE_MAX / 2 : util_b64_encoded_len(s->max_frame);
    s->max_msg = enc + RUNNER_MSG_OVERHEAD_BYTES;
    *out = s;
    s = NULL;
fail:
    runner_session_destroy(s);
    return rc;
}

void runner_session_destroy(runner_session *s)
{
    if (!s) return;
    frame_clear(&s->frame);
    free(s->model_info);
    free(s->source);
    free(s->device);
    free(s);
}

const char *runner_session_greeting(runner_session *s)
{
    return s->want_images ? GREETING : NULL;
}

const char *runner_session_model_info(const runner_session *s)
{
    return s->model_info;
}

void runner_session_model_size(const runner_session *s, int *width, int *height)
{
    *width = s->model_width;
    *height = s->model_height;
}

void runner_session_counters_get(const runner_session *s, runner_session_counters *out)
{
    *out = s->counters;
}

/* ---- image headers ---- */

static unsigned be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Walks the JPEG marker segments up to the first SOFn (baseline, progressive, lossless,
 * arithmetic; not DHT C4, JPG C8, DAC CC). Every read is checked against len. */
static er_rc jpeg_size(const uint8_t *d, size_t len, int *w, int *h)
{
    size_t i = 2;
    if (len < 4 || d[0] != 0xFF || d[1] != 0xD8) return ER_INVALID;
    while (i < len) {
        if (d[i] != 0xFF) return ER_INVALID;
        while (i < len && d[i] == 0xFF)
            i++; /* fill bytes before a marker */
        if (i >= len) return ER_INVALID;
        uint8_t m = d[i++];
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue; /* no length field */
        if (m == 0xD8 || m == 0xD9 || m == 0xDA || m == 0x00) return ER_INVALID;
        if (len - i < 2) return ER_INVALID;
        unsigned seg = be16(d + i); /* includes its own two bytes */
        if (seg < 2 || seg > len - i) return ER_INVALID;
        bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
        if (sof) {
            /* length(2) precision(1) height(2) width(2) components(1) */
            if (seg < 8) return ER_INVALID;
            unsigned hh = be16(d + i + 3), ww = be16(d + i + 5);
            if (hh == 0 || ww == 0) return ER_INVALID;
            *w = (int)ww;
            *h = (int)hh;
            return ER_OK;
        }
        i += seg;
    }
    return ER_INVALID;
}

static er_rc png_size(const uint8_t *d, size_t len, int *w, int *h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    /* signature(8) IHDR length(4) "IHDR"(4) width(4) height(4) */
    if (len < 24 || memcmp(d, sig, sizeof sig) != 0 || be32(d + 8) != 13 ||
        memcmp(d + 12, "IHDR", 4) != 0)
        return ER_INVALID;
    uint32_t ww = be32(d + 16), hh = be32(d + 20);
    if (ww == 0 || hh == 0 || ww > MAX_SIDE || hh > MAX_SIDE) return ER_INVALID;
    *w = (int)ww;
    *h = (int)hh;
    return ER_OK;
}

er_rc runner_image_size(const uint8_t *data, size_t len, bool png, int *width, int *height)
{
    int w = 0, h = 0;
    er_rc rc = png ? png_size(data, len, &w, &h) : jpeg_size(data, len, &w, &h);
    if (rc == ER_OK) {
        *width = w;
        *height = h;
    }
    return rc;
}

/* ---- messages ---- */

static const cJSON *member(const cJSON *obj, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

/* camera-preview: the data URL is decoded into a new pending frame. The old one is dropped
 * first by the caller on any outcome (see the pairing rule). */
static er_rc on_frame(runner_session *s, const cJSON *root, er_err *err)
{
    static const char jpeg_prefix[] = "data:image/jpeg;base64,";
    static const char png_prefix[] = "data:image/png;base64,";
    er_rc rc = ER_OK;
    pending_frame f = {0};
    const cJSON *image = member(root, "image");
    if (!cJSON_IsString(image) || !image->valuestring) {
        rc = er_fail(err, ER_SHAPE, "camera-preview: \"image\" must be a data URL string");
        goto fail;
    }
    const char *url = image->valuestring;
    size_t url_len = strlen(url), skip;
    bool png;
    if (strncmp(url, jpeg_prefix, sizeof jpeg_prefix - 1) == 0) {
        skip = sizeof jpeg_prefix - 1;
        png = false;
    } else if (strncmp(url, png_prefix, sizeof png_prefix - 1) == 0) {
        skip = sizeof png_prefix - 1;
        png = true;
    } else {
        rc = er_fail(err, ER_INVALID,
                     "camera-preview: image must start with data:image/jpeg;base64, or "
                     "data:image/png;base64,");
        goto fail;
    }
    const char *b64 = url + skip;
    size_t b64_len = url_len - skip;
    /* Bound before allocating: the decoded size is at least this (padding aside). */
    if (b64_len / 4 * 3 > s->max_frame + 3) {
        rc = er_fail(err, ER_TOOBIG, "camera-preview: frame over the %zu-byte limit", s->max_frame);
        goto fail;
    }
    f.data = malloc(util_b64_decoded_max(b64_len) + 1);
    if (!f.data) {
        rc = ER_NOMEM;
        goto fail;
    }
    if (util_b64_decode(b64, b64_len, f.data, &f.len) != ER_OK) {
        rc = er_fail(err, ER_INVALID, "camera-preview: image is not valid base64");
        goto fail;
    }
    if (f.len > s->max_frame) {
        rc = er_fail(err, ER_TOOBIG, "camera-preview: frame over the %zu-byte limit", s->max_frame);
        goto fail;
    }
    if (runner_image_size(f.data, f.len, png, &f.width, &f.height) != ER_OK) {
        rc = er_fail(err, ER_INVALID, "camera-preview: image is not a readable %s",
                     png ? "PNG" : "JPEG");
        goto fail;
    }
    strcpy(f.mime, png ? "image/png" : "image/jpeg");
    s->frame = f;
    f.data = NULL;
    s->counters.frames++;
fail:
    if (rc == ER_NOMEM) er_fail(err, rc, "out of memory");
    free(f.data);
    return rc;
}

/* classification: normalize_json reads result, timeMs and additionalInfo; the pending frame
 * and the model resolution are attached here. */
static er_rc on_classification(runner_session *s, const char *msg, size_t len, runner_emit_fn emit,
                               void *arg, er_err *err)
{
    er_rc rc = ER_OK;
    inference *inf = NULL;
    normalize_opts no = {.device = s->device,
                         .source = s->source,
                         .max_image_bytes = s->max_frame,
                         .now_ms = util_now_ms(),
                         .lim = s->lim};
    if ((rc = normalize_json(msg, len, &no, &inf, err))) goto fail;
    if (s->model_width > 0 && s->model_height > 0) {
        inf->model_width = s->model_width;
        inf->model_height = s->model_height;
    }
    /* Only preview frames (checked in on_frame) become images; the runner puts none in a
     * classification, so one found there is dropped rather than stored unchecked. */
    free(inf->image.data);
    memset(&inf->image, 0, sizeof inf->image);
    if (s->frame.data) {
        inf->image.data = s->frame.data;
        inf->image.len = s->frame.len;
        memcpy(inf->image.mime, s->frame.mime, sizeof inf->image.mime);
        inf->image.width = s->frame.width;
        inf->image.height = s->frame.height;
        s->frame.data = NULL;
        frame_clear(&s->frame);
        s->counters.frames_paired++;
    }
    s->counters.inferences++;
    emit(arg, inf); /* ownership passes to the callback */
    inf = NULL;
fail:
    inference_destroy(inf);
    return rc;
}

/* Copies obj[name] into dst when present and of the expected type; a present member of
 * another type is a shape error naming it. */
static er_rc copy_typed(cJSON *dst, const cJSON *obj, const char *where, const char *name, int type,
                        er_err *err)
{
    const cJSON *v = member(obj, name);
    if (!v || cJSON_IsNull(v)) return ER_OK;
    bool ok = type == cJSON_True ? cJSON_IsBool(v) : (v->type & 0xFF) == type;
    if (ok && type == cJSON_Number) ok = isfinite(v->valuedouble);
    if (!ok) return er_fail(err, ER_SHAPE, "hello: %s.%s has the wrong type", where, name);
    cJSON *c = cJSON_Duplicate(v, 1);
    if (!c || !cJSON_AddItemToObject(dst, name, c)) {
        cJSON_Delete(c);
        return er_fail(err, ER_NOMEM, "out of memory");
    }
    return ER_OK;
}

static er_rc check_labels(const cJSON *labels, er_err *err)
{
    if (!labels || cJSON_IsNull(labels)) return ER_OK;
    if (!cJSON_IsArray(labels))
        return er_fail(err, ER_SHAPE, "hello: modelParameters.labels must be an array");
    for (const cJSON *l = labels->child; l; l = l->next)
        if (!cJSON_IsString(l))
            return er_fail(err, ER_SHAPE, "hello: modelParameters.labels must be strings");
    return ER_OK;
}

/* image_input_width / _height: absent means unknown (0); otherwise a whole number of pixels. */
static er_rc read_side(const cJSON *mp, const char *name, int *out, er_err *err)
{
    const cJSON *v = member(mp, name);
    *out = 0;
    if (!v || cJSON_IsNull(v)) return ER_OK;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= MAX_SIDE) ||
        v->valuedouble != floor(v->valuedouble))
        return er_fail(err, ER_SHAPE, "hello: modelParameters.%s must be a whole number 0..%d",
                       name, MAX_SIDE);
    *out = (int)v->valuedouble;
    return ER_OK;
}

/* hello: builds the model info and resolution completely before replacing the old ones. */
static er_rc on_hello(runner_session *s, const cJSON *root, er_err *err)
{
    static const struct {
        const char *name;
        int type;
    } project_keys[] = {{"id", cJSON_Number},         {"owner", cJSON_String},
                        {"name", cJSON_String},       {"deploy_version", cJSON_Number},
                        {"impulse_id", cJSON_Number}, {"impulse_name", cJSON_String}},
      param_keys[] = {{"model_type", cJSON_String},
                      {"sensorType", cJSON_String},
                      {"image_input_width", cJSON_Number},
                      {"image_input_height", cJSON_Number},
                      {"image_input_frames", cJSON_Number},
                      {"image_channel_count", cJSON_Number},
                      {"image_resize_mode", cJSON_String},
                      {"input_features_count", cJSON_Number},
                      {"frequency", cJSON_Number},
                      {"interval_ms", cJSON_Number},
                      {"axis_count", cJSON_Number},
                      {"label_count", cJSON_Number},
                      {"labels", cJSON_Array},
                      {"has_anomaly", cJSON_Number},
                      {"has_object_tracking", cJSON_True},
                      {"thresholds", cJSON_Array},
                      {"inferencing_engine", cJSON_Number}};
    er_rc rc = ER_OK;
    cJSON *info = NULL, *proj = NULL, *params = NULL;
    char *text = NULL;
    int w = 0, h = 0;
    const cJSON *project = member(root, "project"), *mp = member(root, "modelParameters");
    if (project && !cJSON_IsObject(project)) {
        rc = er_fail(err, ER_SHAPE, "hello: project must be an object");
        goto fail;
    }
    if (mp && !cJSON_IsObject(mp)) {
        rc = er_fail(err, ER_SHAPE, "hello: modelParameters must be an object");
        goto fail;
    }
    info = cJSON_CreateObject();
    proj = cJSON_CreateObject();
    params = cJSON_CreateObject();
    if (!info || !proj || !params) {
        rc = ER_NOMEM;
        goto fail;
    }
    for (size_t i = 0; project && i < sizeof project_keys / sizeof project_keys[0]; i++)
        if ((rc = copy_typed(proj, project, "project", project_keys[i].name, project_keys[i].type,
                             err)))
            goto fail;
    if (mp) {
        if ((rc = check_labels(member(mp, "labels"), err)) ||
            (rc = read_side(mp, "image_input_width", &w, err)) ||
            (rc = read_side(mp, "image_input_height", &h, err)))
            goto fail;
        for (size_t i = 0; i < sizeof param_keys / sizeof param_keys[0]; i++)
            if ((rc = copy_typed(params, mp, "modelParameters", param_keys[i].name,
                                 param_keys[i].type, err)))
                goto fail;
    }
    const cJSON *type = member(params, "model_type");
    if (type && !cJSON_AddStringToObject(info, "model_type", type->valuestring)) {
        rc = ER_NOMEM;
        goto fail;
    }
    /* info owns proj and params once added. */
    if (!cJSON_AddItemToObject(info, "project", proj)) {
        rc = ER_NOMEM;
        goto fail;
    }
    proj = NULL;
    if (!cJSON_AddItemToObject(info, "modelParameters", params)) {
        rc = ER_NOMEM;
        goto fail;
    }
    params = NULL;
    text = cJSON_PrintUnformatted(info);
    if (!text) {
        rc = ER_NOMEM;
        goto fail;
    }
    free(s->model_info);
    s->model_info = text;
    text = NULL;
    s->model_width = w;
    s->model_height = h;
    s->counters.hellos++;
fail:
    if (rc == ER_NOMEM) er_fail(err, rc, "out of memory");
    free(text);
    cJSON_Delete(params);
    cJSON_Delete(proj);
    cJSON_Delete(info);
    return rc;
}

void runner_session_reject(runner_session *s)
{
    s->counters.messages++;
    s->counters.rejected++;
    drop_frame(s);
}

er_rc runner_session_on_message(runner_session *s, const char *msg, size_t len, runner_emit_fn emit,
                                void *arg, er_err *err)
{
    er_rc rc = ER_OK;
    cJSON *root = NULL;
    const char *end = msg;
    s->counters.messages++;
    if (len > s->max_msg) {
        rc = er_fail(err, ER_TOOBIG, "message of %zu bytes over the %zu-byte limit", len,
                     s->max_msg);
        goto fail;
    }
    /* JSON text never holds a raw NUL; cJSON would cut strings short at one. */
    if (!msg || len == 0 || memchr(msg, '\0', len)) {
        rc = er_fail(err, ER_INVALID, "malformed JSON: empty or contains a NUL byte");
        goto fail;
    }
    if (!util_utf8_valid(msg, len)) { /* the runner sends JSON.stringify output: always UTF-8 */
        rc = er_fail(err, ER_INVALID, "malformed JSON: the text is not valid UTF-8");
        goto fail;
    }
    json_alloc_reset();
    root = cJSON_ParseWithLengthOpts(msg, len, &end, 0);
    if (!root && json_alloc_failed()) { /* a good inference must not be dropped as malformed */
        rc = er_fail(err, ER_NOMEM, "out of memory");
        goto fail;
    }
    if (root)
        while (end < msg + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
            end++;
    if (!root || end != msg + len) {
        rc = er_fail(err, ER_INVALID, "malformed JSON at byte %zu",
                     end ? (size_t)(end - msg) : (size_t)0);
        goto fail;
    }
    const cJSON *type = member(root, "type");
    if (!cJSON_IsObject(root) || !cJSON_IsString(type) || !type->valuestring) {
        rc = er_fail(err, ER_SHAPE, "runner message must be an object with a string \"type\"");
        goto fail;
    }
    const char *t = type->valuestring;
    if (strcmp(t, "classification") == 0) {
        rc = on_classification(s, msg, len, emit, arg, err);
    } else if (strcmp(t, "camera-preview") == 0) {
        drop_frame(s); /* whatever happens, the older frame is no longer the one before */
        if (s->want_images)
            rc = on_frame(s, root, err);
        else
            s->counters.unknown++; /* another client asked for frames; not ours to keep */
    } else if (strcmp(t, "hello") == 0) {
        drop_frame(s); /* a (re)started runner: frames before it belong to nothing */
        rc = on_hello(s, root, err);
    } else if (strcmp(t, "handling-message-success") == 0) {
        s->counters.acks++;
    } else if (strcmp(t, "handling-message-error") == 0) {
        s->counters.runner_errors++;
    } else {
        s->counters.unknown++;
    }
fail:
    if (rc == ER_NOMEM) {
        s->counters.messages--; /* not taken: the caller hands the same message again */
    } else if (rc) {
        s->counters.rejected++;
        drop_frame(s);
    }
    cJSON_Delete(root);
    return rc;
}
