/* normalize.c - one JSON document (Edge Impulse result, runner message or IoT Core message) to a
 * canonical inference. See normalize.h for the accepted shapes.
 *
 * Ownership: the cJSON trees built here are local and freed before returning; on success the
 * caller owns *out (an inference, released with inference_destroy). */
#include "ingest/normalize.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_alloc.h"
#include "core/json_parse.h"
#include "core/json_print.h"

#define NORM_LABEL_MAX 128   /* bytes in one label */
#define NORM_ITEMS_MAX 10000 /* classification labels plus boxes plus grid cells */
#define NORM_DEVICE_MAX 128  /* bytes in a device name */
#define NORM_MODEL_PX_MAX 65535

/* Where the pieces of a result live in the document and what to call them in errors: the two
 * input shapes differ only in key names, so one code path validates both. */
typedef struct result_src {
    cJSON *parent; /* the object holding them: the freeform array is moved out of it */
    const cJSON *cls, *boxes, *grid, *vmax, *vmean, *anomaly, *freeform;
    const char *cls_name, *boxes_name, *grid_name, *vmax_name, *vmean_name, *anomaly_name,
        *freeform_name;
} result_src;

typedef struct norm_ctx {
    inference *inf;
    normalize_limits lim; /* every field set (defaults filled in) */
    cJSON *res;           /* canonical result object being built; owned here */
    size_t n_items;       /* labels, boxes and cells seen, against NORM_ITEMS_MAX */
    er_err *err;
} norm_ctx;

static const char shape_hint[] = "expected an Edge Impulse result ({\"result\":{...}}) or IoT "
                                 "Core message (c|box|grid|freeform)";

/* A member that is absent or JSON null reads as absent: senders write null for "unknown". */
static const cJSON *member(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(it) ? NULL : it;
}

static er_rc take_number(const cJSON *it, const char *field, double *out, er_err *err)
{
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return er_fail(err, ER_SHAPE, "%s must be a finite number", field);
    *out = it->valuedouble;
    return ER_OK;
}

/* The checks of take_number and check_label without the error: a field's name for the message
 * is formatted only when there is an error (a snprintf per label cost more than the rest of
 * the label's work). */
static bool number_ok(const cJSON *it)
{
    return cJSON_IsNumber(it) && isfinite(it->valuedouble);
}

static bool label_ok(const char *label)
{
    size_t n = strlen(label);
    return n > 0 && n <= NORM_LABEL_MAX;
}

static er_rc check_label(const char *label, const char *field, er_err *err)
{
    size_t n = strlen(label);
    if (n == 0 || n > NORM_LABEL_MAX)
        return er_fail(err, ER_SHAPE, "%s: label must be 1..%d bytes", field, NORM_LABEL_MAX);
    return ER_OK;
}

static er_rc count_item(norm_ctx *c, const char *field)
{
    if (++c->n_items > NORM_ITEMS_MAX)
        return er_fail(c->err, ER_SHAPE, "%s: more than %d labels, boxes and cells in total", field,
                       NORM_ITEMS_MAX);
    return ER_OK;
}

static bool in_number(char ch)
{
    return (ch >= '0' && ch <= '9') || ch == '.' || ch == 'e' || ch == 'E' || ch == '+' ||
           ch == '-';
}

/* Whether a number starts at json[i] (outside strings) with a zero followed by a digit: JSON
 * forbids "01", which cJSON reads as 1. */
static bool leading_zero(const char *json, size_t len, size_t i)
{
    if (i > 0 && in_number(json[i - 1])) return false; /* inside a number */
    if (json[i] == '-') i++;
    return i + 1 < len && json[i] == '0' && json[i + 1] >= '0' && json[i + 1] <= '9';
}

static bool is_hex4(const char *p)
{
    for (int k = 0; k < 4; k++)
        if (!isxdigit((unsigned char)p[k])) return false;
    return true;
}

/* cJSON accepts raw control bytes inside strings and turns "\u0000" into a C string that ends
 * early, silently cutting labels and names. Strict JSON forbids the first (ER_INVALID); the
 * second is valid JSON that cannot be stored faithfully (ER_SHAPE). The same walk bounds the
 * tree cJSON would build (cJSON itself allows depth 1000 and any number of values, 64 bytes
 * each: 16 MB of "1," is 500 MB of tree): nesting by counting brackets, values as 1 + commas +
 * opening brackets (each member after the first follows a comma; an opening bracket stands for
 * the first member, or for nothing in an empty container). Walks the text once. */
static er_rc prescan(const char *json, size_t len, const normalize_limits *lim, er_err *err)
{
    bool in_string = false;
    int depth = 0;
    int64_t nodes = 1;
    /* Text that is not UTF-8 would be stored and then sent to every API and live client,
     * whose JSON and WebSocket readers must refuse it. */
    if (!util_utf8_valid(json, len))
        return er_fail(err, ER_INVALID, "malformed JSON: the text is not valid UTF-8");
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)json[i];
        if (!in_string) {
            if (ch == '"') {
                in_string = true;
            } else if (ch == '{' || ch == '[') {
                if (++depth > lim->max_depth)
                    return er_fail(err, ER_SHAPE,
                                   "the document nests deeper than max_json_depth (%d) at byte %zu",
                                   lim->max_depth, i);
                nodes++;
            } else if (ch == '}' || ch == ']') {
                depth--;
            } else if (ch == ',') {
                nodes++;
            } else if (ch == 0) {
                return er_fail(err, ER_INVALID, "malformed JSON at byte %zu", i);
            } else if (leading_zero(json, len, i)) {
                return er_fail(err, ER_INVALID, "malformed JSON at byte %zu: a leading zero", i);
            }
            if (nodes > lim->max_nodes)
                return er_fail(err, ER_TOOBIG,
                               "the document has more than max_json_nodes (%lld) "
                               "JSON values",
                               (long long)lim->max_nodes);
            continue;
        }
        if (ch < 0x20)
            return er_fail(err, ER_INVALID,
                           "malformed JSON at byte %zu: control character in a string", i);
        if (ch == '"') {
            in_string = false;
        } else if (ch == '\\' && i + 1 < len) {
            if (json[i + 1] == 'u') {
                /* cJSON reads a \u whose four characters are not hex as U+0000: the string
                 * would end there, as with \u0000. */
                if (i + 5 >= len || !is_hex4(json + i + 2))
                    return er_fail(err, ER_INVALID,
                                   "malformed JSON at byte %zu: \\u needs four hex digits", i);
                if (memcmp(json + i + 2, "0000", 4) == 0)
                    return er_fail(err, ER_SHAPE, "strings must not contain \\u0000 (byte %zu)", i);
            }
            i++; /* the escaped character */
        }
    }
    return ER_OK;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks the whole tree once (depth bounded by cJSON's nesting limit):
 * - no object has a key twice: cJSON keeps every member and its lookups take the first, while
 *   most JSON readers (the dashboard's, Node's, Python's) take the last, so a repeated key
 *   would mean one thing here and another to whoever reads what is stored. Labels of a
 *   classification are such keys too. Sorting the keys keeps a 10,000-label map cheap.
 * - every number is finite: JSON has no NaN or Infinity, but 1e999 overflows to one, which
 *   cJSON would write back as null, silently changing what was sent (in info, freeform, ...). */
static er_rc check_tree(const cJSON *node, const char *parent, er_err *err)
{
    er_rc rc = ER_OK;
    const char **keys = NULL;
    size_t n = 0;
    if (cJSON_IsNumber(node) && !isfinite(node->valuedouble)) {
        /* named as "parent.key" (or "parent[]" in an array): enough to find it */
        rc =
            er_fail(err, ER_SHAPE, "%.64s%s%.64s%s must be a finite number (it overflows a double)",
                    parent ? parent : "", parent && node->string ? "." : "",
                    node->string ? node->string : "", node->string ? "" : "[]");
        goto fail;
    }
    for (const cJSON *it = node->child; it; it = it->next) {
        n++;
        if ((rc = check_tree(it, node->string ? node->string : parent, err))) goto fail;
    }
    if (!cJSON_IsObject(node) || n < 2) goto fail;
    if (n <= 8) { /* the usual object: comparing each pair is cheaper than sorting a copy */
        for (const cJSON *a = node->child; a; a = a->next)
            for (const cJSON *b = a->next; b; b = b->next)
                if (strcmp(a->string, b->string) == 0) {
                    rc = er_fail(err, ER_SHAPE, "key '%.64s' appears twice in one object",
                                 a->string);
                    goto fail;
                }
        goto fail;
    }
    keys = malloc(n * sizeof *keys);
    if (!keys) {
        rc = ER_NOMEM;
        goto fail;
    }
    n = 0;
    for (const cJSON *it = node->child; it; it = it->next)
        keys[n++] = it->string;
    qsort(keys, n, sizeof *keys, key_cmp);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            rc = er_fail(err, ER_SHAPE, "key '%.64s' appears twice in one object", keys[i]);
            goto fail;
        }
    }
fail:
    free(keys);
    return rc;
}

/* label -> score map; copied into the canonical result under "classification". */
static er_rc norm_classification(norm_ctx *c, const cJSON *map, const char *name)
{
    er_rc rc = ER_OK;
    char field[200];
    cJSON *out = NULL;
    if (!cJSON_IsObject(map)) {
        rc = er_fail(c->err, ER_SHAPE, "%s must be an object of label: score", name);
        goto fail;
    }
    out = cJSON_CreateObject();
    if (!out) {
        rc = ER_NOMEM;
        goto fail;
    }
    for (const cJSON *it = map->child; it; it = it->next) {
        double v = 0;
        if ((rc = count_item(c, name))) goto fail;
        if (!label_ok(it->string) || !number_ok(it)) {
            snprintf(field, sizeof field, "%s.%.64s", name, it->string);
            if (!(rc = check_label(it->string, field, c->err)))
                rc = take_number(it, field, &v, c->err);
            goto fail;
        }
        v = it->valuedouble;
        /* cJSON keeps duplicate keys; the result must hold one score per label. The label
         * index is empty before the classification, so a label it already has is a repeat
         * (found by its hash: a linear look-up here made 10,000 labels quadratic). */
        size_t before = c->inf->n_labels;
        if (inference_add_label(c->inf, it->string, v)) {
            rc = ER_NOMEM;
            goto fail;
        }
        if (c->inf->n_labels == before) {
            snprintf(field, sizeof field, "%s.%.64s", name, it->string);
            rc = er_fail(c->err, ER_SHAPE, "%s: label appears twice", field);
            goto fail;
        }
        if (!cJSON_AddNumberToObject(out, it->string, v)) {
            rc = ER_NOMEM;
            goto fail;
        }
    }
    /* cJSON copies the key: when that fails the item is not added (and stays ours) */
    if (!cJSON_AddItemToObject(c->res, "classification", out)) {
        rc = ER_NOMEM;
        goto fail;
    }
    out = NULL;
fail:
    cJSON_Delete(out);
    return rc;
}

/* One box or grid cell {label, value, x, y, width, height} to its canonical copy. */
static er_rc norm_box(norm_ctx *c, const cJSON *box, const char *name, size_t i, cJSON *arr,
                      double *value)
{
    static const char *const coords[] = {"x", "y", "width", "height"};
    er_rc rc = ER_OK;
    char field[200];
    cJSON *out = NULL;
    const cJSON *label = member(box, "label");
    if (!cJSON_IsObject(box)) {
        rc = er_fail(c->err, ER_SHAPE, "%s[%zu] must be an object", name, i);
        goto fail;
    }
    const cJSON *val = member(box, "value");
    if (!cJSON_IsString(label) || !label_ok(label->valuestring)) {
        snprintf(field, sizeof field, "%s[%zu].label", name, i);
        if (!cJSON_IsString(label))
            rc = er_fail(c->err, ER_SHAPE, "%s must be a string", field);
        else
            rc = check_label(label->valuestring, field, c->err);
        goto fail;
    }
    if (!number_ok(val)) {
        snprintf(field, sizeof field, "%s[%zu].value", name, i);
        rc = take_number(val, field, value, c->err);
        goto fail;
    }
    *value = val->valuedouble;
    out = cJSON_CreateObject();
    if (!out || !cJSON_AddStringToObject(out, "label", label->valuestring) ||
        !cJSON_AddNumberToObject(out, "value", *value)) {
        rc = ER_NOMEM;
        goto fail;
    }
    for (size_t k = 0; k < sizeof coords / sizeof coords[0]; k++) {
        const cJSON *it = member(box, coords[k]);
        if (!number_ok(it)) {
            snprintf(field, sizeof field, "%s[%zu].%s", name, i, coords[k]);
            rc = take_number(it, field, &(double){0}, c->err);
            goto fail;
        }
        if (!cJSON_AddNumberToObject(out, coords[k], it->valuedouble)) {
            rc = ER_NOMEM;
            goto fail;
        }
    }
    if (inference_add_label(c->inf, label->valuestring, *value)) {
        rc = ER_NOMEM;
        goto fail;
    }
    cJSON_AddItemToArray(arr, out);
    out = NULL;
fail:
    cJSON_Delete(out);
    return rc;
}

/* An array of boxes (or grid cells) into the canonical result under key; *n gets the count
 * and *max the best value (left alone when the array is empty). */
static er_rc norm_boxes(norm_ctx *c, const cJSON *arr, const char *name, const char *key, size_t *n,
                        double *max)
{
    er_rc rc = ER_OK;
    cJSON *out = NULL;
    size_t i = 0;
    if (!cJSON_IsArray(arr)) {
        rc = er_fail(c->err, ER_SHAPE, "%s must be an array of boxes", name);
        goto fail;
    }
    out = cJSON_CreateArray();
    if (!out) {
        rc = ER_NOMEM;
        goto fail;
    }
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        double v = 0;
        if ((rc = count_item(c, name)) || (rc = norm_box(c, it, name, i, out, &v))) goto fail;
        if (i == 0 || v > *max) *max = v;
    }
    *n = i;
    if (!cJSON_AddItemToObject(c->res, key, out)) {
        rc = ER_NOMEM;
        goto fail;
    }
    out = NULL;
fail:
    cJSON_Delete(out);
    return rc;
}

static er_rc add_number(norm_ctx *c, const cJSON *it, const char *name, const char *key,
                        double *out)
{
    if (take_number(it, name, out, c->err)) return ER_SHAPE;
    return cJSON_AddNumberToObject(c->res, key, *out) ? ER_OK : ER_NOMEM;
}

/* Builds the canonical result object and fills kind, labels and anomaly. Keys are written in
 * one fixed order so both input shapes print the same text. */
static er_rc norm_result(norm_ctx *c, const result_src *s)
{
    er_rc rc = ER_OK;
    inference *inf = c->inf;
    size_t n_boxes = 0, n_cells = 0;
    double best = 0, vmax = 0, vmean = 0, anomaly = 0;
    bool has_vmax = false;
    if (!s->cls && !s->boxes && !s->grid && !s->anomaly && !s->freeform) {
        rc = er_fail(c->err, ER_SHAPE, "%s", shape_hint);
        goto fail;
    }
    c->res = cJSON_CreateObject();
    if (!c->res) {
        rc = ER_NOMEM;
        goto fail;
    }
    if (s->cls && (rc = norm_classification(c, s->cls, s->cls_name))) goto fail;
    if (s->boxes) {
        if ((rc = norm_boxes(c, s->boxes, s->boxes_name, "bounding_boxes", &n_boxes, &best)))
            goto fail;
        /* Visual anomaly models also send an empty box list; the grid is the result then. */
        if (n_boxes == 0 && s->grid)
            cJSON_DeleteItemFromObjectCaseSensitive(c->res, "bounding_boxes");
    }
    if (s->grid) {
        if ((rc = norm_boxes(c, s->grid, s->grid_name, "visual_anomaly_grid", &n_cells, &best)))
            goto fail;
        if (s->vmax) {
            if ((rc = add_number(c, s->vmax, s->vmax_name, "visual_anomaly_max", &vmax))) goto fail;
            has_vmax = true;
        }
        if (s->vmean &&
            (rc = add_number(c, s->vmean, s->vmean_name, "visual_anomaly_mean", &vmean)))
            goto fail;
    }
    if (s->anomaly && (rc = add_number(c, s->anomaly, s->anomaly_name, "anomaly", &anomaly)))
        goto fail;
    if (s->freeform) {
        if (!cJSON_IsArray(s->freeform)) {
            rc = er_fail(c->err, ER_SHAPE, "%s must be an array", s->freeform_name);
            goto fail;
        }
        /* moved, not copied: the tree is bounded by max_json_nodes once, not twice */
        cJSON *moved = cJSON_DetachItemViaPointer(s->parent, (cJSON *)s->freeform);
        if (!cJSON_AddItemToObject(c->res, "freeform", moved)) {
            cJSON_Delete(moved);
            rc = ER_NOMEM;
            goto fail;
        }
    }

    if (s->cls)
        inf->kind = INFERENCE_CLASSIFICATION;
    else if (s->grid)
        inf->kind = INFERENCE_VISUAL_ANOMALY;
    else if (n_boxes > 0)
        inf->kind = INFERENCE_OBJECT_DETECTION;
    else if (s->freeform)
        inf->kind = INFERENCE_FREEFORM;
    else if (s->anomaly)
        inf->kind = INFERENCE_ANOMALY;
    else
        inf->kind = INFERENCE_EMPTY; /* an empty box list: "No objects found" */

    if (s->anomaly) {
        inf->has_anomaly = 1;
        inf->anomaly = anomaly;
    } else if (has_vmax) {
        inf->has_anomaly = 1;
        inf->anomaly = vmax;
    }
    inf->result_json = json_print(c->res);
    if (!inf->result_json) {
        rc = ER_NOMEM;
        goto fail;
    }
    size_t n = strlen(inf->result_json);
    if (n > c->lim.max_result_bytes)
        rc = er_fail(c->err, ER_TOOBIG, "the result has %zu bytes, over max_result_bytes (%zu)", n,
                     c->lim.max_result_bytes);
fail:
    return rc;
}

/* "timing" keeps its numeric members; a bare timeMs / time_ms becomes the classification time
 * (the runner and the IoT message report only that one figure). */
static er_rc norm_timing(norm_ctx *c, const cJSON *root)
{
    er_rc rc = ER_OK;
    cJSON *t = NULL;
    const cJSON *timing = member(root, "timing");
    const char *single_name = member(root, "timeMs") ? "timeMs" : "time_ms";
    const cJSON *single = member(root, single_name);
    if (!timing && !single) goto fail;
    t = cJSON_CreateObject();
    if (!t) {
        rc = ER_NOMEM;
        goto fail;
    }
    if (timing) {
        if (!cJSON_IsObject(timing)) {
            rc = er_fail(c->err, ER_SHAPE, "timing must be an object of numbers");
            goto fail;
        }
        for (const cJSON *it = timing->child; it; it = it->next) {
            if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble)) continue;
            if (strlen(it->string) > 64) continue;
            if (!cJSON_AddNumberToObject(t, it->string, it->valuedouble)) {
                rc = ER_NOMEM;
                goto fail;
            }
        }
    } else {
        double v = 0;
        if ((rc = take_number(single, single_name, &v, c->err))) goto fail;
        if (!cJSON_AddNumberToObject(t, "classification", v)) {
            rc = ER_NOMEM;
            goto fail;
        }
    }
    if (!t->child) goto fail; /* nothing numeric: no timing */
    c->inf->timing_json = json_print(t);
    if (!c->inf->timing_json) rc = ER_NOMEM;
fail:
    cJSON_Delete(t);
    return rc;
}

/* Decodes a base64 image, with or without a data: URL prefix, bounding the size first. */
static er_rc norm_image(norm_ctx *c, const cJSON *img, size_t max)
{
    er_rc rc = ER_OK;
    uint8_t *buf = NULL;
    const char *s;
    size_t n, got = 0;
    if (!cJSON_IsString(img)) {
        rc = er_fail(c->err, ER_SHAPE, "image must be a base64 string");
        goto fail;
    }
    s = img->valuestring;
    if (strncmp(s, "data:", 5) == 0) {
        const char *comma = strchr(s, ',');
        if (!comma || comma - s < 12 || strncmp(comma - 7, ";base64", 7) != 0) {
            rc = er_fail(c->err, ER_INVALID, "image is not valid base64");
            goto fail;
        }
        s = comma + 1;
    }
    n = strlen(s);
    if (n == 0) goto fail; /* "" means no image */
    /* 4 characters carry 3 bytes; padding adds at most 2 more characters. */
    if (max && n / 4 * 3 > max + 3) {
        rc = er_fail(c->err, ER_TOOBIG, "image is larger than %zu bytes", max);
        goto fail;
    }
    buf = malloc(util_b64_decoded_max(n));
    if (!buf) {
        rc = ER_NOMEM;
        goto fail;
    }
    if (util_b64_decode(s, n, buf, &got)) {
        rc = er_fail(c->err, ER_INVALID, "image is not valid base64");
        goto fail;
    }
    if (max && got > max) {
        rc = er_fail(c->err, ER_TOOBIG, "image is larger than %zu bytes", max);
        goto fail;
    }
    if (got == 0) goto fail;
    c->inf->image.data = buf;
    c->inf->image.len = got;
    buf = NULL;
fail:
    free(buf);
    return rc;
}

static er_rc norm_model(norm_ctx *c, const cJSON *model)
{
    static const char *const keys[] = {"width", "height"};
    int *dst[] = {&c->inf->model_width, &c->inf->model_height};
    er_rc rc = ER_SHAPE;
    if (!cJSON_IsObject(model)) {
        er_fail(c->err, rc, "model must be an object {\"width\",\"height\"}");
        goto fail;
    }
    for (int k = 0; k < 2; k++) {
        const cJSON *it = member(model, keys[k]);
        if (!it) continue;
        double v = cJSON_IsNumber(it) ? it->valuedouble : 0;
        if (v != floor(v) || v < 1 || v > NORM_MODEL_PX_MAX) {
            er_fail(c->err, rc, "model.%s must be an integer 1..%d", keys[k], NORM_MODEL_PX_MAX);
            goto fail;
        }
        *dst[k] = (int)v;
    }
    rc = ER_OK;
fail:
    return rc;
}

/* Everything around the result: id, ts, device, source, info, timing, model, image. */
static er_rc norm_meta(norm_ctx *c, const cJSON *root, const normalize_opts *o)
{
    er_rc rc = ER_OK;
    inference *inf = c->inf;
    const cJSON *id = member(root, "id"), *ts = member(root, "ts");
    const cJSON *device = member(root, "device"), *model = member(root, "model");
    const cJSON *info = member(root, "info"), *image = member(root, "image");
    const char *dev = o->device;
    if (!info) info = member(root, "additionalInfo");

    if (id) {
        if (!cJSON_IsString(id) || !util_is_uuid(id->valuestring)) {
            rc = er_fail(c->err, ER_SHAPE, "id must be a uuid");
            goto fail;
        }
        for (int i = 0; i < UTIL_UUID_LEN; i++)
            inf->guid[i] = (char)tolower((unsigned char)id->valuestring[i]);
        inf->guid[UTIL_UUID_LEN] = '\0';
    } else if ((rc = util_uuid7(inf->guid))) {
        goto fail;
    }

    /* ts is epoch milliseconds; 0 (some runners send it before their clock is set) means
     * "now", anything that is not a whole non-negative number is the sender's mistake. */
    inf->ts = o->now_ms;
    if (ts) {
        if (!cJSON_IsNumber(ts) || ts->valuedouble < 0 || ts->valuedouble >= 9007199254740992.0 ||
            ts->valuedouble != floor(ts->valuedouble)) {
            rc = er_fail(c->err, ER_SHAPE, "ts must be epoch milliseconds (a whole number)");
            goto fail;
        }
        if (ts->valuedouble > 0) inf->ts = (int64_t)ts->valuedouble;
    }

    if (device) {
        if (!cJSON_IsString(device) || strlen(device->valuestring) > NORM_DEVICE_MAX) {
            rc = er_fail(c->err, ER_SHAPE, "device must be a string of at most %d bytes",
                         NORM_DEVICE_MAX);
            goto fail;
        }
        if (device->valuestring[0]) dev = device->valuestring;
    }
    if ((rc = inference_set_str(&inf->device, dev)) ||
        (rc = inference_set_str(&inf->source, o->source)))
        goto fail;

    if (info) {
        inf->info_json = json_print(info);
        if (!inf->info_json) {
            rc = ER_NOMEM;
            goto fail;
        }
        size_t n = strlen(inf->info_json);
        if (n > c->lim.max_info_bytes) {
            rc = er_fail(c->err, ER_TOOBIG, "info has %zu bytes, over max_info_bytes (%zu)", n,
                         c->lim.max_info_bytes);
            goto fail;
        }
    }
    if ((rc = norm_timing(c, root))) goto fail;
    if (model && (rc = norm_model(c, model))) goto fail;
    if (image && (rc = norm_image(c, image, o->max_image_bytes))) goto fail;
fail:
    return rc;
}

/* Finds the result pieces of either shape; ER_SHAPE when the document is neither. */
static er_rc locate_result(cJSON *root, result_src *s, er_err *err)
{
    static const char *const iot_keys[] = {"c", "box", "grid", "freeform"};
    er_rc rc = ER_SHAPE;
    cJSON *result = (cJSON *)member(root, "result"), *o;
    int n_iot = 0;
    bool ei = result != NULL;
    memset(s, 0, sizeof *s);
    if (ei && !cJSON_IsObject(result)) {
        er_fail(err, rc, "result must be an object; %s", shape_hint);
        goto fail;
    }
    for (size_t k = 0; !ei && k < sizeof iot_keys / sizeof iot_keys[0]; k++)
        n_iot += member(root, iot_keys[k]) != NULL;
    if (!ei && n_iot != 1) {
        if (n_iot == 0)
            er_fail(err, rc, "%s", shape_hint);
        else
            er_fail(err, rc, "an IoT Core message has exactly one of c, box, grid, freeform");
        goto fail;
    }
    /* The IoT message keeps the result keys at top level under short names. */
    o = ei ? result : root;
    s->parent = o;
    s->cls = member(o, ei ? "classification" : "c");
    s->boxes = member(o, ei ? "bounding_boxes" : "box");
    s->grid = member(o, ei ? "visual_anomaly_grid" : "grid");
    s->vmax = member(o, "visual_anomaly_max");
    s->vmean = member(o, "visual_anomaly_mean");
    s->anomaly = member(o, "anomaly");
    s->freeform = member(o, "freeform");
    s->cls_name = ei ? "result.classification" : "c";
    s->boxes_name = ei ? "result.bounding_boxes" : "box";
    s->grid_name = ei ? "result.visual_anomaly_grid" : "grid";
    s->vmax_name = ei ? "result.visual_anomaly_max" : "visual_anomaly_max";
    s->vmean_name = ei ? "result.visual_anomaly_mean" : "visual_anomaly_mean";
    s->anomaly_name = ei ? "result.anomaly" : "anomaly";
    s->freeform_name = ei ? "result.freeform" : "freeform";
    rc = ER_OK;
fail:
    return rc;
}

er_rc normalize_json(const char *json, size_t len, const normalize_opts *o, inference **out,
                     er_err *err)
{
    er_rc rc = ER_OK;
    const char *end = json;
    cJSON *root = NULL;
    result_src src;
    norm_ctx c = {.err = err, .lim = o->lim};
    *out = NULL;
    if (c.lim.max_depth <= 0) c.lim.max_depth = CONFIG_DEF_JSON_DEPTH;
    if (c.lim.max_nodes <= 0) c.lim.max_nodes = CONFIG_DEF_JSON_NODES;
    if (!c.lim.max_result_bytes) c.lim.max_result_bytes = CONFIG_DEF_RESULT_BYTES;
    if (!c.lim.max_info_bytes) c.lim.max_info_bytes = CONFIG_DEF_INFO_BYTES;
    if (!json || len == 0) {
        rc = er_fail(err, ER_INVALID, "malformed JSON at byte 0");
        goto fail;
    }
    if ((rc = prescan(json, len, &c.lim, err))) goto fail;
    /* The trees below live only in this call: one arena instead of a malloc per node. */
    json_alloc_scratch_begin();
    /* Not NUL-terminated, so cJSON must not check for a terminator; we check the tail. */
    json_alloc_reset();
    root = json_parse(json, len, &end); /* cJSON's tree, at 40 % of cJSON_Parse's cost */
    if (!root && json_alloc_failed()) {
        rc = ER_NOMEM; /* not the client's fault: it may send the same body again */
        goto fail;
    }
    if (root) {
        while (end < json + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
            end++;
    }
    if (!root || end != json + len) {
        rc = er_fail(err, ER_INVALID, "malformed JSON at byte %zu",
                     end ? (size_t)(end - json) : (size_t)0);
        goto fail;
    }
    if (!cJSON_IsObject(root)) {
        rc = er_fail(err, ER_SHAPE, "%s", shape_hint);
        goto fail;
    }
    if ((rc = check_tree(root, NULL, err)) || (rc = locate_result(root, &src, err))) goto fail;
    c.inf = inference_create();
    if (!c.inf) {
        rc = ER_NOMEM;
        goto fail;
    }
    if ((rc = norm_result(&c, &src)) || (rc = norm_meta(&c, root, o))) goto fail;
    *out = c.inf;
    c.inf = NULL;
fail:
    if (rc == ER_NOMEM) er_fail(err, rc, "out of memory");
    inference_destroy(c.inf);
    cJSON_Delete(c.res);
    cJSON_Delete(root);
    json_alloc_scratch_end();
    return rc;
}
