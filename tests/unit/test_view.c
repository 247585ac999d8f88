/* test_view.c - the ingest answer rendered as text (view_render_tail + view_render) is the
 * printed view_inference tree byte for byte: with and without the optional members, with
 * strings that need escapes, with an image and a model size. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/json_print.h"
#include "model/view.h"

static void same(const inference *inf, int64_t seq, int64_t ts)
{
    cJSON *v = view_inference(inf);
    CHECK(v && view_set_stored(v, seq, ts));
    char *want = json_print(v);
    char *cj = cJSON_PrintUnformatted(v);
    char *tail = view_render_tail(inf);
    char *got = tail ? view_render(inf->guid, seq, ts, tail) : NULL;
    CHECK_EQ_STR(got, want);
    CHECK_EQ_STR(cj, want);
    free(want);
    free(cj);
    free(tail);
    free(got);
    cJSON_Delete(v);
}

int main(void)
{
    inference *inf = inference_create();
    CHECK(inf != NULL);
    if (!inf) return check_summary();
    strcpy(inf->guid, "0ed45ea5-6627-4220-8aeb-8bbb7fca0c6b");
    same(inf, 1, 0); /* nothing set: nulls, result {} */
    inference_set_str(&inf->device, "gate \"north\"\n\x01");
    inference_set_str(&inf->source, "http");
    inference_set_str(&inf->result_json, "{\"classification\":{\"a\":0.25,\"b\":0.75}}");
    inference_set_str(&inf->timing_json, "{\"dsp\":2}");
    inference_set_str(&inf->info_json, "\"caf\xc3\xa9\"");
    inference_add_label(inf, "a", 0.25);
    inference_add_label(inf, "b\\", 0.7512345678901234);
    inf->kind = INFERENCE_CLASSIFICATION;
    same(inf, 2147483648LL, 1796666881167LL);
    inf->has_anomaly = 1;
    inf->anomaly = -3.5e-7;
    inf->model_width = 96;
    inf->model_height = 64;
    same(inf, 9007199254740993LL, 1);
    strcpy(inf->image.mime, "image/jpeg");
    inf->image.len = 48123;
    inf->image.width = 640;
    inf->image.height = 480;
    inference_set_str(&inf->result_json, "");
    same(inf, 7, 1736016142999LL);
    inference_destroy(inf);
    return check_summary();
}
