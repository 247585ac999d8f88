/* serial_parse.c - see serial_parse.h. Bytes are collected into one fixed line buffer (the one
 * Framebuffer line of a debug window, past that buffer, into a growing one bounded by its own
 * limit, checked before anything is buffered); each complete line is classified by
 * serial_parse_line.c, whose result lines accumulate into the open block as cJSON pieces, which
 * become the canonical result (in normalize's key order) when the block ends, with the debug
 * window's decoded JPEG as its image.
 *
 * Ownership: the parser owns its line buffers, names, the pending image and the open block's
 * cJSON pieces; each emitted inference is handed to the emit callback and owned by it from
 * then on. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "sources/runner_msg.h"
#include "sources/serial_parse_internal.h"

static const char *const timing_keys[T_COUNT] = {"dsp", "classification", "anomaly",
                                                 "postprocessing"};

/* ---- block life cycle -------------------------------------------------------------------- */

void sp__block_reset(sp_block *b)
{
    cJSON_Delete(b->cls);
    cJSON_Delete(b->boxes);
    cJSON_Delete(b->grid);
    cJSON_Delete(b->freeform);
    memset(b, 0, sizeof *b);
}

void sp__block_open(serial_parser *p)
{
    sp__block_reset(&p->b);
    p->b.open = true;
    p->b.ts = p->now_ms ? p->now_ms() : util_now_ms();
}

/* Adds each label of an array of boxes/cells to the label index. */
static er_rc index_boxes(inference *inf, const cJSON *arr)
{
    for (const cJSON *it = arr ? arr->child : NULL; it; it = it->next) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(it, "label");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "value");
        if (inference_add_label(inf, l->valuestring, v->valuedouble)) return ER_NOMEM;
    }
    return ER_OK;
}

static er_rc build_timing(const sp_block *b, inference *inf)
{
    er_rc rc = ER_OK;
    cJSON *t = NULL;
    if (!b->has_timing[T_DSP] && !b->has_timing[T_CLS] && !b->has_timing[T_ANOMALY] &&
        !b->has_timing[T_POST])
        goto fail;
    t = cJSON_CreateObject();
    if (!t) {
        rc = ER_NOMEM;
        goto fail;
    }
    for (int k = 0; k < T_COUNT; k++) {
        if (b->has_timing[k] && !cJSON_AddNumberToObject(t, timing_keys[k], b->timing[k])) {
            rc = ER_NOMEM;
            goto fail;
        }
    }
    inf->timing_json = cJSON_PrintUnformatted(t);
    if (!inf->timing_json) rc = ER_NOMEM;
fail:
    cJSON_Delete(t);
    return rc;
}

/* Moves *item (when set) into res under key; on failure it stays in the block (freed with it)
 * and the block is dropped whole: never an inference without one of its parts. */
static er_rc move_into(cJSON *res, const char *key, cJSON **item)
{
    if (!*item) return ER_OK;
    if (!cJSON_AddItemToObject(res, key, *item)) return ER_NOMEM;
    *item = NULL;
    return ER_OK;
}

/* The block's pieces to a canonical inference: result keys in normalize's order, kind and
 * anomaly by normalize's rules. Takes the cJSON pieces out of the block. */
static er_rc build_inference(serial_parser *p, inference **out)
{
    er_rc rc = ER_OK;
    sp_block *b = &p->b;
    cJSON *res = cJSON_CreateObject();
    inference *inf = inference_create();
    bool boxes_found = b->boxes && cJSON_GetArraySize(b->boxes) > 0;
    if (!res || !inf) {
        rc = ER_NOMEM;
        goto fail;
    }
    if ((rc = util_uuid7(inf->guid))) goto fail;
    inf->ts = b->ts;
    inf->model_width = p->model_w;
    inf->model_height = p->model_h;
    if ((rc = inference_set_str(&inf->device, p->device)) ||
        (rc = inference_set_str(&inf->source, p->source)))
        goto fail;
    if ((rc = index_boxes(inf, b->boxes)) || (rc = index_boxes(inf, b->grid))) goto fail;
    for (const cJSON *it = b->cls ? b->cls->child : NULL; it; it = it->next)
        if ((rc = inference_add_label(inf, it->string, it->valuedouble))) goto fail;

    /* a visual anomaly model's empty box list is dropped next to its grid, as normalize does */
    bool grid = b->grid != NULL;
    if (b->boxes && !boxes_found && grid) {
        cJSON_Delete(b->boxes);
        b->boxes = NULL;
    }
    if ((rc = move_into(res, "classification", &b->cls)) ||
        (rc = move_into(res, "bounding_boxes", &b->boxes)) ||
        (rc = move_into(res, "visual_anomaly_grid", &b->grid)))
        goto fail;
    if ((grid && b->has_vmax && !cJSON_AddNumberToObject(res, "visual_anomaly_max", b->vmax)) ||
        (grid && b->has_vmean && !cJSON_AddNumberToObject(res, "visual_anomaly_mean", b->vmean)) ||
        (b->has_anomaly && !cJSON_AddNumberToObject(res, "anomaly", b->anomaly))) {
        rc = ER_NOMEM;
        goto fail;
    }
    b->ff_cur = NULL;
    if ((rc = move_into(res, "freeform", &b->freeform))) goto fail;

    if (cJSON_GetObjectItemCaseSensitive(res, "classification"))
        inf->kind = INFERENCE_CLASSIFICATION;
    else if (cJSON_GetObjectItemCaseSensitive(res, "visual_anomaly_grid"))
        inf->kind = INFERENCE_VISUAL_ANOMALY;
    else if (boxes_found)
        inf->kind = INFERENCE_OBJECT_DETECTION;
    else if (cJSON_GetObjectItemCaseSensitive(res, "freeform"))
        inf->kind = INFERENCE_FREEFORM;
    else if (b->has_anomaly)
        inf->kind = INFERENCE_ANOMALY;
    else
        inf->kind = INFERENCE_EMPTY;
    if (b->has_anomaly) {
        inf->has_anomaly = 1;
        inf->anomaly = b->anomaly;
    } else if (inf->kind == INFERENCE_VISUAL_ANOMALY && b->has_vmax) {
        inf->has_anomaly = 1;
        inf->anomaly = b->vmax;
    }
    inf->result_json = cJSON_PrintUnformatted(res);
    if (!inf->result_json) {
        rc = ER_NOMEM;
        goto fail;
    }
    if ((rc = build_timing(b, inf))) goto fail;
    if (p->image.data) {
        /* the debug window's snapshot is the model input: its size is the model's when the
         * settings did not say */
        inf->image = p->image;
        memset(&p->image, 0, sizeof p->image);
        p->st.images++;
        if (!inf->model_width) {
            inf->model_width = inf->image.width;
            inf->model_height = inf->image.height;
        }
    }
    *out = inf;
    inf = NULL;
fail:
    cJSON_Delete(res);
    inference_destroy(inf);
    return rc;
}

/* Ends the open block: emits it if it holds a result, else counts it as empty. */
void sp__block_end(serial_parser *p, serial_emit_fn emit, void *arg)
{
    inference *inf = NULL;
    if (!p->b.open) return;
    if (!p->b.has_results) {
        p->st.empty_blocks++;
    } else if (build_inference(p, &inf) == ER_OK) {
        p->st.inferences++;
        emit(arg, inf);
    } else {
        p->st.dropped++;
        p->nomem = true;
    }
    sp__block_reset(&p->b);
}

void sp__image_clear(serial_parser *p)
{
    free(p->image.data);
    memset(&p->image, 0, sizeof p->image);
}

void sp__framebuffer(serial_parser *p, const char *s, size_t n)
{
    size_t k = strlen(SP_FRAMEBUFFER_PREFIX), out_len = 0;
    uint8_t *jpeg = NULL;
    int w = 0, h = 0;
    sp__image_clear(p);
    s += k;
    n -= k;
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    if (n == 0 || !(jpeg = malloc(util_b64_decoded_max(n)))) goto bad;
    if (util_b64_decode(s, n, jpeg, &out_len) != ER_OK ||
        runner_image_size(jpeg, out_len, false, &w, &h) != ER_OK)
        goto bad;
    p->image.data = jpeg;
    p->image.len = out_len;
    strcpy(p->image.mime, "image/jpeg");
    p->image.width = w;
    p->image.height = h;
    return;
bad:
    /* not a JPEG: the window's result is still stored, without an image */
    free(jpeg);
    p->st.bad_images++;
}

/* ---- public API -------------------------------------------------------------------------- */

er_rc serial_parser_create(const serial_parser_opts *o, serial_parser **out, er_err *err)
{
    er_rc rc = ER_OK;
    serial_parser *p = NULL;
    size_t cap = o->max_line ? o->max_line : SERIAL_PARSE_LINE_DEFAULT;
    size_t fb_max = o->max_framebuffer ? o->max_framebuffer : SERIAL_PARSE_FRAMEBUFFER_DEFAULT;
    *out = NULL;
    if (cap < SERIAL_PARSE_LINE_MIN || cap > SERIAL_PARSE_LINE_MAX) {
        rc = er_fail(err, ER_CONFIG, "serial max line must be %d..%d bytes", SERIAL_PARSE_LINE_MIN,
                     SERIAL_PARSE_LINE_MAX);
        goto fail;
    }
    if (fb_max < cap || fb_max > SERIAL_PARSE_FRAMEBUFFER_MAX) {
        rc = er_fail(err, ER_CONFIG, "serial max framebuffer line must be max line..%d bytes",
                     SERIAL_PARSE_FRAMEBUFFER_MAX);
        goto fail;
    }
    p = calloc(1, sizeof *p + cap + 1);
    if (!p || inference_set_str(&p->device, o->device) ||
        inference_set_str(&p->source, o->source)) {
        rc = er_fail(err, ER_NOMEM, "out of memory");
        goto fail;
    }
    p->cap = cap;
    p->fb_max = fb_max;
    p->now_ms = o->now_ms;
    *out = p;
    p = NULL;
fail:
    serial_parser_destroy(p);
    return rc;
}

void serial_parser_destroy(serial_parser *p)
{
    if (!p) return;
    sp__block_reset(&p->b);
    sp__image_clear(p);
    free(p->fb);
    free(p->device);
    free(p->source);
    free(p);
}

static bool is_framebuffer(const char *s, size_t n)
{
    size_t k = strlen(SP_FRAMEBUFFER_PREFIX);
    while (n && (*s == ' ' || *s == '\t' || *s == '\r')) {
        s++;
        n--;
    }
    return n >= k && memcmp(s, SP_FRAMEBUFFER_PREFIX, k) == 0;
}

/* Adds n bytes to the Framebuffer line, within fb_max (checked before buffering); past it the
 * line is skipped like any over-long one. */
static void fb_append(serial_parser *p, const uint8_t *d, size_t n)
{
    if (n > p->fb_max - p->fb_len) {
        p->overlong = true;
        p->fb_len = 0;
        return;
    }
    if (p->fb_len + n > p->fb_cap) {
        size_t cap = p->fb_cap ? p->fb_cap : p->cap * 4;
        while (cap < p->fb_len + n)
            cap *= 2;
        if (cap > p->fb_max) cap = p->fb_max;
        char *grown = realloc(p->fb, cap);
        if (!grown) {
            p->overlong = true;
            p->fb_len = 0;
            p->st.dropped++;
            p->nomem = true;
            return;
        }
        p->fb = grown;
        p->fb_cap = cap;
    }
    memcpy(p->fb + p->fb_len, d, n);
    p->fb_len += n;
}

/* k bytes of the current line: into the line buffer while they fit; a Framebuffer line moves
 * on to fb when it outgrows the line buffer; any other line that long is skipped. */
static void line_append(serial_parser *p, const uint8_t *d, size_t k)
{
    size_t fit = p->cap - p->len;
    if (p->overlong || k == 0) return;
    if (p->fb_len) {
        fb_append(p, d, k);
        return;
    }
    if (k <= fit) {
        memcpy(p->line + p->len, d, k);
        p->len += k;
        return;
    }
    /* a full line buffer (cap >= SERIAL_PARSE_LINE_MIN) shows whether this is a Framebuffer */
    memcpy(p->line + p->len, d, fit);
    p->len += fit;
    if (!is_framebuffer(p->line, p->len)) {
        p->overlong = true;
        p->len = 0;
        return;
    }
    fb_append(p, (const uint8_t *)p->line, p->len);
    p->len = 0;
    if (!p->overlong) fb_append(p, d + fit, k - fit);
}

er_rc serial_parser_feed(serial_parser *p, const uint8_t *data, size_t len, serial_emit_fn emit,
                         void *arg)
{
    size_t i = 0;
    if (!p || !emit || (!data && len)) return ER_INVALID;
    p->nomem = false;
    p->st.bytes += len;
    while (i < len) {
        const uint8_t *nl = memchr(data + i, '\n', len - i);
        size_t k = nl ? (size_t)(nl - (data + i)) : len - i;
        line_append(p, data + i, k);
        i += k;
        if (!nl) break;
        i++; /* the newline */
        if (p->overlong) {
            /* an over-long line is no result line: it ends the open block like any noise */
            p->st.lines++;
            p->st.long_lines++;
            sp__noise_line(p, "", 0, emit, arg);
            p->st.noise_lines--; /* counted as long, not as noise */
            p->overlong = false;
        } else if (p->fb_len) {
            sp__handle_line(p, p->fb, p->fb_len, emit, arg);
        } else {
            p->line[p->len] = '\0';
            sp__handle_line(p, p->line, p->len, emit, arg);
        }
        p->len = p->fb_len = 0;
    }
    return p->nomem ? ER_NOMEM : ER_OK;
}

er_rc serial_parser_flush(serial_parser *p, serial_emit_fn emit, void *arg)
{
    if (!p || !emit) return ER_INVALID;
    p->nomem = false;
    sp__block_end(p, emit, arg);
    return p->nomem ? ER_NOMEM : ER_OK;
}

er_rc serial_parser_finish(serial_parser *p, serial_emit_fn emit, void *arg)
{
    er_rc rc = ER_OK, rc2;
    if (!p || !emit) return ER_INVALID;
    if (p->len || p->overlong || p->fb_len) {
        /* the partial last line, as if its newline had arrived */
        rc = serial_parser_feed(p, (const uint8_t *)"\n", 1, emit, arg);
        p->st.bytes--;
    }
    rc2 = serial_parser_flush(p, emit, arg);
    p->len = p->fb_len = 0;
    p->overlong = false;
    sp__image_clear(p); /* a new stream starts no debug window */
    return rc ? rc : rc2;
}

void serial_parser_abort(serial_parser *p)
{
    if (!p) return;
    if (p->b.open && p->b.has_results) p->st.dropped++;
    sp__block_reset(&p->b);
    sp__image_clear(p);
    p->len = p->fb_len = 0;
    p->overlong = false;
}

void serial_parser_counters_get(const serial_parser *p, serial_parser_counters *out)
{
    *out = p->st;
}
