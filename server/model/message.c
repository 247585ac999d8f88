/* message.c - see message.h. cJSON keeps insertion order, which the contract fixes. */
#include "model/message.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

/* time_ms in the old components is the runner's total inference time. */
static double total_time_ms(const cJSON *timing)
{
    double t = 0;
    static const char *const parts[] = {"dsp", "classification", "anomaly"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(timing, parts[i]);
        if (cJSON_IsNumber(v)) t += v->valuedouble;
    }
    return t;
}

static int result_count(const cJSON *payload)
{
    if (cJSON_IsArray(payload)) return cJSON_GetArraySize(payload);
    if (cJSON_IsObject(payload)) return cJSON_GetArraySize(payload);
    return 0;
}

er_rc message_inference_json(const inference *inf, const message_opts *o, util_buf *out)
{
    er_rc rc = ER_NOMEM;
    cJSON *result = cJSON_Parse(inf->result_json ? inf->result_json : "{}");
    cJSON *timing = inf->timing_json ? cJSON_Parse(inf->timing_json) : NULL;
    cJSON *info = inf->info_json ? cJSON_Parse(inf->info_json) : NULL;
    cJSON *msg = cJSON_CreateObject();
    char *image_b64 = NULL, *text = NULL;
    if (!result || !msg) goto fail;

    static const struct {
        const char *from, *to;
    } kinds[] = {{"classification", "c"},
                 {"bounding_boxes", "box"},
                 {"visual_anomaly_grid", "grid"},
                 {"freeform", "freeform"}};
    const char *key = "c";
    cJSON *payload = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0] && !payload; i++) {
        payload = cJSON_DetachItemFromObjectCaseSensitive(result, kinds[i].from);
        if (payload) key = kinds[i].to;
    }
    if (!payload) payload = cJSON_CreateObject();
    if (!payload) goto fail;

    cJSON_AddNumberToObject(msg, "time_ms", total_time_ms(timing));
    if (info) {
        cJSON_AddItemToObject(msg, "info", info);
        info = NULL;
    }
    cJSON_AddNumberToObject(msg, "inference_count", result_count(payload));
    cJSON_AddNumberToObject(msg, "total_inferences", (double)inf->seq);
    cJSON_AddStringToObject(msg, "id", inf->guid);
    cJSON_AddNumberToObject(msg, "ts", (double)inf->ts);
    if (o->include_image && inf->image.data) {
        image_b64 = malloc(util_b64_encoded_len(inf->image.len) + 1);
        if (!image_b64) {
            cJSON_Delete(payload);
            goto fail;
        }
        util_b64_encode(inf->image.data, inf->image.len, image_b64);
        cJSON_AddStringToObject(msg, "image", image_b64);
    }
    cJSON_AddItemToObject(msg, key, payload);
    cJSON_AddStringToObject(msg, "s3_bucket", o->s3_bucket ? o->s3_bucket : "unset");
    cJSON_AddStringToObject(msg, "s3_prefix", "unset");
    cJSON_AddNumberToObject(msg, "seq", (double)inf->seq);
    cJSON_AddStringToObject(msg, "device", inf->device ? inf->device : "");
    /* the model's anomaly score as the result holds it (a grid's max is not one) */
    cJSON *anomaly = cJSON_DetachItemFromObjectCaseSensitive(result, "anomaly");
    if (anomaly) cJSON_AddItemToObject(msg, "anomaly", anomaly);
    if (o->image_omitted) cJSON_AddTrueToObject(msg, "image_omitted");
    if (o->full_fidelity) {
        static const char *const extra[] = {"visual_anomaly_max", "visual_anomaly_mean"};
        for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
            cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(result, extra[i]);
            if (v) cJSON_AddItemToObject(msg, extra[i], v);
        }
        if (timing) {
            cJSON_AddItemToObject(msg, "timing", timing);
            timing = NULL;
        }
    }

    text = cJSON_PrintUnformatted(msg);
    if (!text) goto fail;
    rc = util_buf_append(out, text, strlen(text));
fail:
    free(text);
    free(image_b64);
    cJSON_Delete(msg);
    cJSON_Delete(result);
    cJSON_Delete(timing);
    cJSON_Delete(info);
    return rc;
}
