/* test_message.c - the IoT Core inference message: field names and order byte for byte, the
 * single pass against the cJSON way, and its strings (id, s3_bucket, device) escaped as cJSON
 * escapes them (control bytes, quotes, backslash, DEL, UTF-8, U+2028, bytes not UTF-8). */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/inference.h"
#include "model/message.h"

static inference *sample(const char *result_json)
{
    inference *inf = inference_create();
    strcpy(inf->guid, "2f7c8a34-5d4e-4b5a-9d7e-0c1f2a3b4c5d");
    inf->ts = 1764000000000LL;
    inf->seq = 7;
    inference_set_str(&inf->device, "Dev_0242ac110002");
    inference_set_str(&inf->result_json, result_json);
    inference_set_str(&inf->timing_json, "{\"dsp\":2,\"classification\":9,\"anomaly\":1}");
    return inf;
}

static void test_classification(void)
{
    inference *inf = sample("{\"classification\":{\"idle\":0.25,\"wave\":0.75}}");
    inference_set_str(&inf->info_json, "\"model v3\"");
    util_buf out = {0};
    message_opts o = {0};
    CHECK_EQ_INT(message_inference_json(inf, &o, &out), ER_OK);
    CHECK_EQ_STR(out.data, "{\"time_ms\":12,\"info\":\"model v3\",\"inference_count\":2,"
                           "\"total_inferences\":7,\"id\":\"2f7c8a34-5d4e-4b5a-9d7e-0c1f2a3b4c5d\","
                           "\"ts\":1764000000000,\"c\":{\"idle\":0.25,\"wave\":0.75},"
                           "\"s3_bucket\":\"unset\",\"s3_prefix\":\"unset\",\"seq\":7,"
                           "\"device\":\"Dev_0242ac110002\"}");
    util_buf_free(&out);
    inference_destroy(inf);
}

static void test_boxes_with_image(void)
{
    inference *inf = sample("{\"bounding_boxes\":[{\"label\":\"person\",\"value\":0.5,\"x\":1,"
                            "\"y\":2,\"width\":3,\"height\":4}],\"anomaly\":0.5}");
    inf->has_anomaly = 1;
    inf->anomaly = 0.5;
    inf->image.data = malloc(3);
    memcpy(inf->image.data, "\xff\xd8\xff", 3);
    inf->image.len = 3;
    util_buf out = {0};
    message_opts o = {.include_image = true, .s3_bucket = "my-bucket"};
    CHECK_EQ_INT(message_inference_json(inf, &o, &out), ER_OK);
    CHECK_EQ_STR(out.data,
                 "{\"time_ms\":12,\"inference_count\":1,\"total_inferences\":7,"
                 "\"id\":\"2f7c8a34-5d4e-4b5a-9d7e-0c1f2a3b4c5d\",\"ts\":1764000000000,"
                 "\"image\":\"/9j/\",\"box\":[{\"label\":\"person\",\"value\":0.5,\"x\":1,\"y\":2,"
                 "\"width\":3,\"height\":4}],\"s3_bucket\":\"my-bucket\",\"s3_prefix\":\"unset\","
                 "\"seq\":7,\"device\":\"Dev_0242ac110002\",\"anomaly\":0.5}");
    util_buf_free(&out);
    inference_destroy(inf);
}

static void test_grid_and_freeform(void)
{
    inference *inf = sample("{\"visual_anomaly_grid\":[],\"visual_anomaly_max\":3}");
    util_buf out = {0};
    message_opts o = {0};
    CHECK_EQ_INT(message_inference_json(inf, &o, &out), ER_OK);
    CHECK(strstr(out.data, "\"grid\":[]") != NULL);
    CHECK(strstr(out.data, "\"c\"") == NULL);
    util_buf_free(&out);
    inference_destroy(inf);

    inf = sample("{\"freeform\":[[1,2],[3]]}");
    CHECK_EQ_INT(message_inference_json(inf, &o, &out), ER_OK);
    CHECK(strstr(out.data, "\"freeform\":[[1,2],[3]],\"s3_bucket\"") != NULL);
    util_buf_free(&out);
    inference_destroy(inf);
}

static void test_labels(void)
{
    inference *inf = inference_create();
    CHECK_EQ_INT(inference_add_label(inf, "cat", 0.2), ER_OK);
    CHECK_EQ_INT(inference_add_label(inf, "dog", 0.7), ER_OK);
    CHECK_EQ_INT(inference_add_label(inf, "cat", 0.9), ER_OK);
    CHECK_EQ_INT(inference_add_label(inf, "dog", 0.1), ER_OK);
    CHECK_EQ_INT(inf->n_labels, 2);
    CHECK_EQ_STR(inf->top_label, "cat");
    CHECK(inf->top_score == 0.9);
    CHECK(inf->labels[1].score == 0.7); /* best score per label is kept */
    CHECK_EQ_STR(inference_kind_name(INFERENCE_OBJECT_DETECTION), "object-detection");
    CHECK_EQ_INT(inference_kind_parse("visual-anomaly"), INFERENCE_VISUAL_ANOMALY);
    CHECK_EQ_INT(inference_kind_parse("nope"), -1);
    inference_destroy(inf);
}

/* ---- the single pass gives the cJSON way's bytes ---- */

/* Both ways on inf, each appending to a buffer that already holds some text. */
static void same_bytes(const inference *inf, const message_opts *o, const char *what)
{
    util_buf a = {0}, b = {0};
    util_buf_append(&a, "pre", 3);
    util_buf_append(&b, "pre", 3);
    er_rc ra = message_inference_json(inf, o, &a);
    er_rc rb = message_inference_json_cjson(inf, o, &b);
    CHECK_EQ_INT(ra, rb);
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
        fprintf(stderr, "differs for %s:\n  fast  %s\n  cjson %s\n", what, a.data, b.data);
    CHECK_EQ_INT(a.len, b.len);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    util_buf_free(&a);
    util_buf_free(&b);
}

static void same_all_opts(inference *inf, const char *what)
{
    message_opts plain = {0};
    message_opts img = {.include_image = true, .s3_bucket = "b\"k\x01t"};
    message_opts omitted = {.image_omitted = true};
    message_opts full = {.full_fidelity = true};
    same_bytes(inf, &plain, what);
    same_bytes(inf, &img, what);
    same_bytes(inf, &omitted, what);
    same_bytes(inf, &full, what);
}

static void test_fast_matches_cjson(void)
{
    static const char *const results[] = {
        "{\"classification\":{\"background\":0.0117,\"person\":0.9453}}",
        "{\"classification\":{\"a\":1e-05,\"b\":1.5e300,\"c\":12345678901234567,"
        "\"d\":0.30000001192092896,\"e\":-0,\"f\":-0.0,\"g\":1.0,\"h\":100,\"i\":2147483647}}",
        "{\"classification\":{\"a\":2147483648,\"b\":-2147483648,\"c\":-2147483649,"
        "\"d\":123456789012345,\"e\":1234567890123456,\"f\":0.0001,\"g\":0.00001234,\"h\":1E5,"
        "\"i\":1e400,\"j\":-1e400,\"k\":0.1234567890123456789,\"l\":0.000123456789012345}}",
        "{\"classification\":{\"x\":999999999999999,\"y\":-999999999999999.5,\"z\":0.1,"
        "\"w\":123456789.123456,\"v\":1.7976931348623157e308,\"u\":5e-324,\"t\":-0.5}}",
        "{\"bounding_boxes\":[{\"label\":\"a\\\"b\\\\c\\n\\t\\u0001\\u001f\",\"value\":0.5}]}",
        "{\"classification\":{\"\\/\":1,\"\\u00e9\":2}}",
        "{\"classification\":{\"\xc3\xa9t\xc3\xa9\":0.25,\"\\b\\f\\r\":0.75,\"\\u0000\":1}}",
        "{ \"classification\" : {} }",
        "{}x",
        "{}",
        "[1,2]",
        "5",
        "",
        "{\"classification\":{\"a\":1},\"classification\":{\"b\":2},\"anomaly\":1,\"anomaly\":2}",
        "{\"bounding_boxes\":[],\"classification\":{\"z\":1,\"z\":2}}",
        "{\"freeform\":[[1,2],[3]],\"visual_anomaly_grid\":[{\"x\":1}]}",
        "{\"visual_anomaly_grid\":[{\"label\":\"anomaly\",\"value\":7.25,\"x\":0,\"y\":8}],"
        "\"visual_anomaly_max\":7.25,\"visual_anomaly_mean\":0.125,\"anomaly\":3.5}",
        "{\"classification\":5,\"anomaly\":\"high\"}",
        "{\"classification\":\"x\",\"anomaly\":null}",
        "{\"classification\":{\"a\":true,\"b\":false,\"c\":null,\"d\":[],\"e\":{}}}",
        "{\"classification\":{\"a\":01}}",
        "{\"classification\":{\"a\":1.}}",
        "{\"classification\":{\"a\":.5}}",
        "{\"classification\":{\"a\":+1}}",
        "{\"classification\":{\"a\":\"raw\ttab\"}}",
        "{\"classification\":{\"a\":\"\\u0041\"}}",
        "{\"classification\":{\"a\":\"\\u000a\"}}",
        "{\"classification\":{\"a\":\"\\u001F\"}}",
        "{\"classification\":{\"a\":\"unterminated}}",
        "{\"classification\":{\"a\":1,}}",
        "{\"classification\":{\"a\":1}",
        "{\"classification\":[1,2,]}",
        "{\"classification\":tru}",
        "{\"anomaly\":0.5}",
    };
    static const char *const timings[] = {
        NULL,
        "{\"dsp\":2,\"classification\":9,\"anomaly\":1}",
        "{\"dsp\":\"x\",\"classification\":1.5,\"anomaly\":0.25}",
        "{\"dsp\":1e-3,\"classification\":0.1,\"anomaly\":0.2,\"dsp\":7}",
        "[1]",
        "{",
        "{ \"dsp\": 1 }",
        "{\"json\":1,\"stdin\":3}",
    };
    static const char *const infos[] = {
        NULL, "\"Inference took 16 ms\"", "{\"a\":[1,2.50]}", "null", "", " 1", "\"a\\u0000b\""};
    char what[96];
    for (size_t r = 0; r < sizeof results / sizeof results[0]; r++)
        for (size_t t = 0; t < sizeof timings / sizeof timings[0]; t++)
            for (size_t i = 0; i < sizeof infos / sizeof infos[0]; i++) {
                inference *inf = sample(results[r]);
                free(inf->timing_json);
                inf->timing_json = NULL;
                inference_set_str(&inf->timing_json, timings[t]);
                inference_set_str(&inf->info_json, infos[i]);
                snprintf(what, sizeof what, "result %zu timing %zu info %zu", r, t, i);
                same_all_opts(inf, what);
                inference_destroy(inf);
            }

    /* NULL result, an image, odd strings and large or negative numbers around it */
    inference *inf = sample("{\"classification\":{\"a\":0.5}}");
    free(inf->result_json);
    inf->result_json = NULL;
    same_all_opts(inf, "no result");
    inference_set_str(&inf->result_json, "{\"classification\":{\"a\":0.5}}");
    inf->image.data = malloc(5);
    memcpy(inf->image.data, "\xff\xd8\xff\xe0\x01", 5);
    inf->image.len = 5;
    inf->ts = -1764000000123LL;
    inf->seq = 9007199254740993LL;
    inference_set_str(&inf->device, "d\"e\\v\x7f\x1f\n\xc3\xa9");
    same_all_opts(inf, "image, odd device");
    inf->image.len = 0;
    same_all_opts(inf, "empty image");
    inf->ts = 1LL << 62;
    inf->seq = 0;
    free(inf->device);
    inf->device = NULL;
    same_all_opts(inf, "huge ts, no device");
    inference_destroy(inf);

    /* nesting around the single pass's depth limit */
    for (int depth = 60; depth <= 70; depth += 5) {
        util_buf b = {0};
        util_buf_append(&b, "{\"freeform\":", 12);
        for (int k = 0; k < depth; k++)
            util_buf_append(&b, "[", 1);
        for (int k = 0; k < depth; k++)
            util_buf_append(&b, "]", 1);
        util_buf_append(&b, "}", 1);
        inf = sample(b.data);
        same_all_opts(inf, "deep");
        inference_destroy(inf);
        util_buf_free(&b);
    }
}

/* ---- the strings of the message (id, s3_bucket, device) as cJSON escapes them ---- */

/* The message of sample()'s classification with id, s3_bucket and device all set to in: equal
 * to the text with each written as json, and the same in both ways. */
static void check_string(const char *in, const char *json)
{
    inference *inf = sample("{\"classification\":{\"a\":0.5}}");
    inference_set_str(&inf->device, in);
    bool as_id = strlen(in) < sizeof inf->guid;
    if (as_id) strcpy(inf->guid, in);
    message_opts o = {.s3_bucket = in};
    util_buf want = {0}, got = {0};
    util_buf_printf(&want,
                    "{\"time_ms\":12,\"inference_count\":1,\"total_inferences\":7,\"id\":%s,"
                    "\"ts\":1764000000000,\"c\":{\"a\":0.5},\"s3_bucket\":%s,"
                    "\"s3_prefix\":\"unset\",\"seq\":7,\"device\":%s}",
                    as_id ? json : "\"2f7c8a34-5d4e-4b5a-9d7e-0c1f2a3b4c5d\"", json, json);
    CHECK_EQ_INT(message_inference_json(inf, &o, &got), ER_OK);
    if (!got.data || strcmp(got.data, want.data))
        fprintf(stderr, "string %s:\n  got  %s\n  want %s\n", json, got.data, want.data);
    CHECK(got.data && strcmp(got.data, want.data) == 0);
    same_bytes(inf, &o, json);
    util_buf_free(&want);
    util_buf_free(&got);
    inference_destroy(inf);
}

static void test_strings(void)
{
    static const struct {
        const char *in, *json;
    } cases[] = {
        {"", "\"\""},
        {"Dev_0242ac110002 x/y", "\"Dev_0242ac110002 x/y\""}, /* '/' is not escaped */
        {"q\"b\\e", "\"q\\\"b\\\\e\""},
        {"\"\\\"", "\"\\\"\\\\\\\"\""},
        {"\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\""},
        /* the other control bytes as \u00xx, lowercase */
        {"\x01\x02\x07\x0b\x0e\x10\x1a\x1b\x1f",
         "\"\\u0001\\u0002\\u0007\\u000b\\u000e\\u0010\\u001a\\u001b\\u001f\""},
        {"a\x1f"
         "b\x7f"
         "c",
         "\"a\\u001fb\x7f"
         "c\""}, /* DEL (0x7f) stays a raw byte */
        {" \x20~", "\" \x20~\""},
        /* UTF-8 of 2, 3 and 4 bytes, raw */
        {"\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
         "\"\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
        /* U+2028 and U+2029 raw too (valid in JSON; cJSON does not escape them) */
        {"a\xe2\x80\xa8"
         "b\xe2\x80\xa9",
         "\"a\xe2\x80\xa8"
         "b\xe2\x80\xa9\""},
        /* bytes that are not UTF-8 go through as they are (the store keeps UTF-8; the escaper
         * does not judge it) */
        {"\x80\xbf\xc0\xff", "\"\x80\xbf\xc0\xff\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_string(cases[i].in, cases[i].json);

    /* every byte 1..255, and a long run of escapes (past the buffers' first 256 bytes) */
    char all[256], json[2048];
    size_t j = 0;
    json[j++] = '"';
    for (int c = 1; c < 256; c++) {
        all[c - 1] = (char)c;
        static const char esc[] = {['"'] = '"',  ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
                                   ['\n'] = 'n', ['\r'] = 'r',  ['\t'] = 't'};
        if (c < (int)sizeof esc && esc[c])
            j += (size_t)snprintf(json + j, sizeof json - j, "\\%c", esc[c]);
        else if (c < 0x20)
            j += (size_t)snprintf(json + j, sizeof json - j, "\\u%04x", c);
        else
            json[j++] = (char)c;
    }
    all[255] = '\0';
    json[j++] = '"';
    json[j] = '\0';
    check_string(all, json);
    char many[600];
    memset(many, '\x01', sizeof many - 1);
    many[sizeof many - 1] = '\0';
    util_buf want = {0};
    util_buf_append(&want, "\"", 1);
    for (size_t k = 0; k < sizeof many - 1; k++)
        util_buf_append(&want, "\\u0001", 6);
    util_buf_append(&want, "\"", 1);
    check_string(many, want.data);
    util_buf_free(&want);
}

/* Random doubles of every magnitude, as cJSON stores them and as other writers might. */
static void test_fast_matches_cjson_numbers(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    message_opts o = {0};
    for (int n = 0; n < 3000; n++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        switch (n % 4) {
        case 0: { /* any bit pattern but NaN and infinity */
            uint64_t bits = x;
            memcpy(&d, &bits, sizeof d);
            if (d != d || d - d != 0) d = 1.0 / 3;
            break;
        }
        case 1:
            d = (double)(x % 1000000) / 1000000.0;
            break; /* scores */
        case 2:
            d = (float)((double)(x % 10000000) / 9999991.0);
            break; /* float32 scores */
        default:
            d = (double)(int64_t)(x >> (x % 64)) * ((x & 1) ? -1 : 1);
            break;
        }
        cJSON *root = cJSON_CreateObject(), *c = cJSON_AddObjectToObject(root, "classification");
        cJSON_AddNumberToObject(c, "v", d);
        cJSON_AddNumberToObject(root, "anomaly", -d / 7);
        char *text = cJSON_PrintUnformatted(root);
        char hand[512];
        for (int p = 1; p <= 17; p += 4) { /* a writer other than cJSON */
            snprintf(hand, sizeof hand, "{\"classification\":{\"v\":%.*g,\"w\":%.*f}}", p, d, p % 8,
                     d / 1e10);
            inference *inf = sample(hand);
            same_bytes(inf, &o, hand);
            inference_destroy(inf);
        }
        inference *inf = sample(text);
        same_bytes(inf, &o, text);
        inference_destroy(inf);
        free(text);
        cJSON_Delete(root);
    }
}

int main(void)
{
    test_fast_matches_cjson();
    test_fast_matches_cjson_numbers();
    test_strings();
    test_classification();
    test_boxes_with_image();
    test_grid_and_freeform();
    test_labels();
    return check_summary();
}
