/* test_forward_payload.c - the inference message made to fit IoT Core's 128 KB: a big libvips
 * JPEG is re-encoded smaller until the message fits, a limit no image can meet leaves the image
 * out with "image_omitted": true, and a message too big without image is ER_TOOBIG. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/util.h"
#include "forward/payload.h"
#include "media/image.h"
#include "media/synth.h"
#include "model/inference.h"

static inference *make(int w, int h, int quality)
{
    inference *inf = inference_create();
    util_uuid4(inf->guid);
    inf->ts = 1736016142920;
    inf->seq = 7;
    inference_set_str(&inf->device, "dev_0242ac110002");
    inference_set_str(&inf->result_json, "{\"classification\":{\"cat\":0.9,\"dog\":0.1}}");
    synth_rect r = {w / 4, h / 4, w / 3, h / 3, 200, 30, 30};
    CHECK_EQ_INT(synth_jpeg(w, h, &r, 1, 42, quality, &inf->image.data, &inf->image.len), ER_OK);
    strcpy(inf->image.mime, "image/jpeg");
    inf->image.width = w;
    inf->image.height = h;
    return inf;
}

/* The decoded image of a message, probed: its size, or -1 if absent. */
static long image_width(const cJSON *msg)
{
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(msg, "image");
    if (!cJSON_IsString(img)) return -1;
    size_t n = strlen(img->valuestring);
    uint8_t *bytes = malloc(util_b64_decoded_max(n));
    size_t len = 0;
    long w = -2;
    inference_image probe = {0};
    if (bytes && util_b64_decode(img->valuestring, n, bytes, &len) == ER_OK &&
        media_probe(bytes, len, &probe, NULL) == ER_OK && strcmp(probe.mime, "image/jpeg") == 0)
        w = probe.width;
    free(bytes);
    return w;
}

int main(int argc, char **argv)
{
    CHECK_EQ_INT(media_init(argc > 0 ? argv[0] : "test"), ER_OK);
    util_buf out = {0};
    payload_info pi;

    /* a big, detailed frame: well over the limit as base64 */
    inference *big = make(2400, 1800, 98);
    CHECK(util_b64_encoded_len(big->image.len) > PAYLOAD_MAX_BYTES);
    payload_opts o = {.include_image = true};
    CHECK_EQ_INT(payload_inference(big, &o, &out, &pi), ER_OK);
    CHECK(out.len <= PAYLOAD_MAX_BYTES);
    CHECK(pi.shrunk && !pi.omitted);
    cJSON *msg = cJSON_Parse(out.data);
    CHECK(msg != NULL);
    long w = image_width(msg);
    CHECK(w > 0 && w <= 2400);
    CHECK(cJSON_GetObjectItemCaseSensitive(msg, "image_omitted") == NULL);
    /* the contract's fields around the image are intact */
    CHECK_EQ_STR(cJSON_GetObjectItemCaseSensitive(msg, "id")->valuestring, big->guid);
    CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(msg, "c")));
    cJSON_Delete(msg);

    /* a limit only a tiny image could meet, none can: omitted, flagged, still valid */
    payload_opts tight = {.include_image = true, .max_bytes = 600};
    CHECK_EQ_INT(payload_inference(big, &tight, &out, &pi), ER_OK);
    CHECK(pi.omitted && !pi.shrunk);
    CHECK(out.len <= 600);
    msg = cJSON_Parse(out.data);
    CHECK(msg && image_width(msg) == -1);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg, "image_omitted")));
    cJSON_Delete(msg);

    /* a message over the limit even without image */
    payload_opts tiny = {.include_image = true, .max_bytes = 50};
    CHECK_EQ_INT(payload_inference(big, &tiny, &out, &pi), ER_TOOBIG);

    /* a small image fits as it is: the bytes are the original's */
    inference *small = make(64, 48, 80);
    CHECK_EQ_INT(payload_inference(small, &o, &out, &pi), ER_OK);
    CHECK(!pi.shrunk && !pi.omitted);
    msg = cJSON_Parse(out.data);
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(msg, "image");
    char *b64 = malloc(util_b64_encoded_len(small->image.len) + 1);
    util_b64_encode(small->image.data, small->image.len, b64);
    CHECK(cJSON_IsString(img) && strcmp(img->valuestring, b64) == 0);
    free(b64);
    cJSON_Delete(msg);

    /* images not asked for: no image field, nothing shrunk */
    payload_opts none = {.include_image = false};
    CHECK_EQ_INT(payload_inference(big, &none, &out, &pi), ER_OK);
    CHECK(strstr(out.data, "\"image\"") == NULL && !pi.shrunk && !pi.omitted);

    util_buf_free(&out);
    inference_destroy(big);
    inference_destroy(small);
    media_shutdown();
    return check_summary();
}
