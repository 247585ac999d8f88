/* view.c - see view.h. Stored JSON fragments (result, timing, info) are the normalizer's
 * output, so they are inserted raw rather than parsed again. */
#include "model/view.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/json_alloc.h"
#include "core/json_print.h"

static bool add_raw_or_null(cJSON *o, const char *name, const char *raw)
{
    return json_alloc_add(o, name, raw && *raw ? cJSON_CreateRaw(raw) : cJSON_CreateNull());
}

static bool add_str_or_null(cJSON *o, const char *name, const char *s)
{
    return json_alloc_add(o, name, s ? cJSON_CreateString(s) : cJSON_CreateNull());
}

static bool add_image(cJSON *o, const inference *inf)
{
    if (inf->image.mime[0] == '\0' && inf->image.len == 0) return cJSON_AddNullToObject(o, "image");
    cJSON *img = cJSON_AddObjectToObject(o, "image");
    if (!img) return false;
    char url[96];
    bool ok = cJSON_AddStringToObject(img, "mime", inf->image.mime) &&
              cJSON_AddNumberToObject(img, "width", inf->image.width) &&
              cJSON_AddNumberToObject(img, "height", inf->image.height) &&
              cJSON_AddNumberToObject(img, "bytes", (double)inf->image.len);
    snprintf(url, sizeof url, "/api/v1/inferences/%s/image", inf->guid);
    ok = ok && cJSON_AddStringToObject(img, "url", url);
    snprintf(url, sizeof url, "/api/v1/inferences/%s/thumbnail", inf->guid);
    ok = ok && cJSON_AddStringToObject(img, "thumbnail_url", url);
    return ok;
}

cJSON *view_inference(const inference *inf)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) goto fail;
    bool ok = cJSON_AddStringToObject(o, "id", inf->guid) &&
              cJSON_AddNumberToObject(o, "seq", (double)inf->seq) &&
              cJSON_AddNumberToObject(o, "ts", (double)inf->ts) &&
              add_str_or_null(o, "device", inf->device) &&
              add_str_or_null(o, "source", inf->source) &&
              cJSON_AddStringToObject(o, "kind", inference_kind_name(inf->kind)) &&
              add_raw_or_null(o, "result", inf->result_json ? inf->result_json : "{}") &&
              add_raw_or_null(o, "timing", inf->timing_json) &&
              add_raw_or_null(o, "info", inf->info_json) &&
              add_str_or_null(o, "top_label", inf->top_label);
    if (!ok) goto fail;
    ok = inf->top_label ? cJSON_AddNumberToObject(o, "top_score", inf->top_score) != NULL
                        : cJSON_AddNullToObject(o, "top_score") != NULL;
    ok = ok && (inf->has_anomaly ? cJSON_AddNumberToObject(o, "anomaly", inf->anomaly) != NULL
                                 : cJSON_AddNullToObject(o, "anomaly") != NULL);
    if (!ok) goto fail;
    if (inf->model_width > 0 && inf->model_height > 0) {
        cJSON *m = cJSON_AddObjectToObject(o, "model");
        if (!m || !cJSON_AddNumberToObject(m, "width", inf->model_width) ||
            !cJSON_AddNumberToObject(m, "height", inf->model_height))
            goto fail;
    } else if (!cJSON_AddNullToObject(o, "model")) {
        goto fail;
    }
    /* what the publish policy / forwarder made of it: pending, published, filtered, ... */
    if (!cJSON_AddStringToObject(o, "publish", inference_publish_name(inf->publish))) goto fail;
    if (!add_image(o, inf)) goto fail;
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

/* Sets a number member in place: no allocation, so it cannot half-fail (cJSON's
 * ReplaceItemInObject copies the key and, in 1.7.15, keeps the item with a NULL key when that
 * copy fails). */
static bool set_number(cJSON *view, const char *name, double v)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive(view, name);
    if (!cJSON_IsNumber(item)) return false;
    cJSON_SetNumberValue(item, v);
    return true;
}

bool view_set_stored(cJSON *view, int64_t seq, int64_t ts)
{
    return set_number(view, "seq", (double)seq) && set_number(view, "ts", (double)ts);
}

/* ---- the ingest answer without a tree ---- */

static void buf_key(json_buf *b, const char *key)
{
    json_buf_raw(b, ",", 1);
    json_buf_string(b, key);
    json_buf_raw(b, ":", 1);
}

static void buf_raw_or_null(json_buf *b, const char *key, const char *raw)
{
    buf_key(b, key);
    if (raw && *raw)
        json_buf_raw(b, raw, strlen(raw));
    else
        json_buf_raw(b, "null", 4);
}

static void buf_str_or_null(json_buf *b, const char *key, const char *s)
{
    buf_key(b, key);
    if (s)
        json_buf_string(b, s);
    else
        json_buf_raw(b, "null", 4);
}

static void buf_number_or_null(json_buf *b, const char *key, bool has, double v)
{
    buf_key(b, key);
    if (has)
        json_buf_number(b, v);
    else
        json_buf_raw(b, "null", 4);
}

char *view_render_tail(const inference *inf)
{
    json_buf b = {0};
    buf_str_or_null(&b, "device", inf->device);
    buf_str_or_null(&b, "source", inf->source);
    buf_str_or_null(&b, "kind", inference_kind_name(inf->kind));
    buf_raw_or_null(&b, "result", inf->result_json ? inf->result_json : "{}");
    buf_raw_or_null(&b, "timing", inf->timing_json);
    buf_raw_or_null(&b, "info", inf->info_json);
    buf_str_or_null(&b, "top_label", inf->top_label);
    buf_number_or_null(&b, "top_score", inf->top_label != NULL, inf->top_score);
    buf_number_or_null(&b, "anomaly", inf->has_anomaly, inf->anomaly);
    buf_key(&b, "model");
    if (inf->model_width > 0 && inf->model_height > 0) {
        json_buf_raw(&b, "{\"width\":", 9);
        json_buf_number(&b, inf->model_width);
        json_buf_raw(&b, ",\"height\":", 10);
        json_buf_number(&b, inf->model_height);
        json_buf_raw(&b, "}", 1);
    } else {
        json_buf_raw(&b, "null", 4);
    }
    buf_str_or_null(&b, "publish", inference_publish_name(inf->publish));
    buf_key(&b, "image");
    if (inf->image.mime[0] == '\0' && inf->image.len == 0) {
        json_buf_raw(&b, "null", 4);
    } else {
        char url[96];
        json_buf_raw(&b, "{\"mime\":", 8);
        json_buf_string(&b, inf->image.mime);
        buf_number_or_null(&b, "width", true, inf->image.width);
        buf_number_or_null(&b, "height", true, inf->image.height);
        buf_number_or_null(&b, "bytes", true, (double)inf->image.len);
        snprintf(url, sizeof url, "/api/v1/inferences/%s/image", inf->guid);
        buf_str_or_null(&b, "url", url);
        snprintf(url, sizeof url, "/api/v1/inferences/%s/thumbnail", inf->guid);
        buf_str_or_null(&b, "thumbnail_url", url);
        json_buf_raw(&b, "}", 1);
    }
    json_buf_raw(&b, "}", 1);
    return json_buf_take(&b);
}

char *view_render(const char *guid, int64_t seq, int64_t ts, const char *tail)
{
    json_buf b = {0};
    json_buf_raw(&b, "{\"id\":", 6);
    json_buf_string(&b, guid);
    buf_number_or_null(&b, "seq", true, (double)seq);
    buf_number_or_null(&b, "ts", true, (double)ts);
    json_buf_raw(&b, tail, strlen(tail));
    return json_buf_take(&b);
}
