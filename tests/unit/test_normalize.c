/* test_normalize.c - normalize_json: every accepted shape, the canonical output, and every
 * error path with the field it names. Also the runner fixtures' classification results. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "ingest/normalize.h"

static const normalize_opts opts = {
    .device = "dev1", .source = "http", .max_image_bytes = 1024, .now_ms = 1700000000000};

/* Parses a NUL-terminated literal (but passes only its length, as callers do). */
static er_rc parse(const char *json, inference **out, er_err *err)
{
    /* A copy without terminator so a read past len shows up under ASan. */
    size_t n = strlen(json);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, json, n);
    memset(err->msg, 0, sizeof err->msg);
    er_rc rc = normalize_json(copy, n, &opts, out, err);
    free(copy);
    return rc;
}

static void expect_error(const char *json, er_rc want, const char *needle)
{
    inference *inf = (inference *)1;
    er_err err;
    er_rc rc = parse(json, &inf, &err);
    CHECK_EQ_INT(rc, want);
    CHECK(inf == NULL);
    if (!strstr(err.msg, needle))
        fprintf(stderr, "  input %s: message \"%s\" lacks \"%s\"\n", json, err.msg, needle);
    CHECK(strstr(err.msg, needle) != NULL);
}

static double label_score(const inference *inf, const char *label)
{
    for (size_t i = 0; i < inf->n_labels; i++)
        if (strcmp(inf->labels[i].label, label) == 0) return inf->labels[i].score;
    return -1;
}

static void test_classification(void)
{
    inference *inf;
    er_err err;
    const char *doc = "{\"result\":{\"classification\":{\"cat\":0.25,\"dog\":0.75},\"anomaly\":-"
                      "0.5},\"timing\":{\"dsp\":1,\"classification\":3,\"anomaly\":0,\"note\":"
                      "\"x\"},\"info\":{\"a\":[1,2]},\"id\":\"AAAAAAAA-BBBB-4CCC-8DDD-"
                      "EEEEEEEEEEEE\",\"ts\":1690000000123,\"model\":{\"width\":96,\"height\":"
                      "64}}";
    CHECK_EQ_INT(parse(doc, &inf, &err), ER_OK);
    if (!inf) return;
    CHECK_EQ_INT(inf->kind, INFERENCE_CLASSIFICATION);
    CHECK_EQ_STR(inf->result_json, "{\"classification\":{\"cat\":0.25,\"dog\":0.75},\"anomaly\":-"
                                   "0.5}");
    CHECK_EQ_STR(inf->timing_json, "{\"dsp\":1,\"classification\":3,\"anomaly\":0}");
    CHECK_EQ_STR(inf->info_json, "{\"a\":[1,2]}");
    CHECK_EQ_STR(inf->guid, "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee");
    CHECK_EQ_INT(inf->ts, 1690000000123LL);
    CHECK_EQ_STR(inf->device, "dev1");
    CHECK_EQ_STR(inf->source, "http");
    CHECK_EQ_INT(inf->n_labels, 2);
    CHECK_EQ_STR(inf->top_label, "dog");
    CHECK(inf->top_score == 0.75);
    CHECK(label_score(inf, "cat") == 0.25);
    CHECK_EQ_INT(inf->has_anomaly, 1);
    CHECK(inf->anomaly == -0.5);
    CHECK_EQ_INT(inf->model_width, 96);
    CHECK_EQ_INT(inf->model_height, 64);
    CHECK(inf->image.data == NULL);
    inference_destroy(inf);
}

static void test_defaults(void)
{
    inference *inf, *inf2;
    er_err err;
    /* No id, no ts, a device in the document, whitespace around the document. */
    CHECK_EQ_INT(parse("  {\"result\":{\"anomaly\":2.5},\"device\":\"cam-7\"}\n", &inf, &err),
                 ER_OK);
    if (!inf) return;
    CHECK_EQ_INT(inf->kind, INFERENCE_ANOMALY);
    CHECK_EQ_STR(inf->result_json, "{\"anomaly\":2.5}");
    CHECK_EQ_INT(inf->ts, opts.now_ms);
    CHECK_EQ_STR(inf->device, "cam-7");
    CHECK_EQ_INT(strlen(inf->guid), 36);
    CHECK(inf->timing_json == NULL);
    CHECK(inf->info_json == NULL);
    CHECK_EQ_INT(inf->n_labels, 0);
    CHECK(inf->top_label == NULL);
    CHECK_EQ_INT(parse("{\"result\":{\"anomaly\":2.5},\"ts\":0}", &inf2, &err), ER_OK);
    if (inf2) {
        CHECK(strcmp(inf->guid, inf2->guid) != 0); /* fresh uuids */
        CHECK_EQ_INT(inf2->ts, opts.now_ms);       /* ts 0: the sender had no clock */
        CHECK_EQ_STR(inf2->device, "dev1");
    }
    inference_destroy(inf2);
    inference_destroy(inf);
    /* a ts that is not epoch ms is the sender's mistake, named in the error */
    static const char *const bad_ts[] = {"\"soon\"", "-5", "1.5", "true", "[]"};
    for (size_t i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++) {
        char doc[128];
        snprintf(doc, sizeof doc, "{\"result\":{\"anomaly\":1},\"ts\":%s}", bad_ts[i]);
        inf = NULL;
        CHECK_EQ_INT(parse(doc, &inf, &err), ER_SHAPE);
        CHECK(inf == NULL);
        CHECK(strstr(err.msg, "ts") != NULL);
    }
}

static void test_boxes(void)
{
    inference *inf;
    er_err err;
    const char *doc = "{\"result\":{\"bounding_boxes\":[{\"label\":\"ball\",\"value\":0.5,\"x\":1,"
                      "\"y\":2,\"width\":3,\"height\":4,\"extra\":true},{\"label\":\"ball\","
                      "\"value\":0.9,\"x\":5,\"y\":6,\"width\":7,\"height\":8},{\"label\":"
                      "\"cup\",\"value\":0.6,\"x\":0,\"y\":0,\"width\":1,\"height\":1}]}}";
    CHECK_EQ_INT(parse(doc, &inf, &err), ER_OK);
    if (!inf) return;
    CHECK_EQ_INT(inf->kind, INFERENCE_OBJECT_DETECTION);
    CHECK_EQ_INT(inf->n_labels, 2);
    CHECK(label_score(inf, "ball") == 0.9);
    CHECK(label_score(inf, "cup") == 0.6);
    CHECK_EQ_STR(inf->top_label, "ball");
    CHECK_EQ_STR(inf->result_json,
                 "{\"bounding_boxes\":[{\"label\":\"ball\",\"value\":0.5,\"x\":1,\"y\":2,"
                 "\"width\":3,\"height\":4},{\"label\":\"ball\",\"value\":0.9,\"x\":5,\"y\":6,"
                 "\"width\":7,\"height\":8},{\"label\":\"cup\",\"value\":0.6,\"x\":0,\"y\":0,"
                 "\"width\":1,\"height\":1}]}");
    CHECK_EQ_INT(inf->has_anomaly, 0);
    inference_destroy(inf);

    /* "No objects found": an empty list is the empty kind. */
    CHECK_EQ_INT(parse("{\"result\":{\"bounding_boxes\":[]}}", &inf, &err), ER_OK);
    if (inf) {
        CHECK_EQ_INT(inf->kind, INFERENCE_EMPTY);
        CHECK_EQ_STR(inf->result_json, "{\"bounding_boxes\":[]}");
    }
    inference_destroy(inf);
}

static void test_visual_anomaly(void)
{
    inference *a, *b;
    er_err err;
    const char *ei = "{\"result\":{\"bounding_boxes\":[],\"visual_anomaly_grid\":[{\"label\":"
                     "\"anomaly\",\"value\":7.5,\"x\":0,\"y\":0,\"width\":8,\"height\":8}],"
                     "\"visual_anomaly_max\":7.5,\"visual_anomaly_mean\":1.25}}";
    const char *iot = "{\"time_ms\":4,\"grid\":[{\"label\":\"anomaly\",\"value\":7.5,\"x\":0,"
                      "\"y\":0,\"width\":8,\"height\":8}],\"visual_anomaly_max\":7.5,"
                      "\"visual_anomaly_mean\":1.25}";
    CHECK_EQ_INT(parse(ei, &a, &err), ER_OK);
    CHECK_EQ_INT(parse(iot, &b, &err), ER_OK);
    if (a && b) {
        CHECK_EQ_INT(a->kind, INFERENCE_VISUAL_ANOMALY);
        CHECK_EQ_STR(a->result_json, b->result_json);
        CHECK_EQ_STR(a->result_json, "{\"visual_anomaly_grid\":[{\"label\":\"anomaly\",\"value\":"
                                     "7.5,\"x\":0,\"y\":0,\"width\":8,\"height\":8}],"
                                     "\"visual_anomaly_max\":7.5,\"visual_anomaly_mean\":1.25}");
        CHECK_EQ_INT(a->has_anomaly, 1);
        CHECK(a->anomaly == 7.5);
        CHECK(label_score(a, "anomaly") == 7.5);
        CHECK_EQ_STR(b->timing_json, "{\"classification\":4}");
    }
    inference_destroy(a);
    inference_destroy(b);
}

static void test_iot_equals_ei(void)
{
    inference *a, *b;
    er_err err;
    const char *iot = "{\"time_ms\":12,\"info\":\"model v3\",\"inference_count\":5,"
                      "\"total_inferences\":9,\"id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\","
                      "\"ts\":1700000000999,\"c\":{\"left\":0.1,\"right\":0.9},\"s3_bucket\":"
                      "\"unset\",\"s3_prefix\":\"unset\"}";
    const char *ei = "{\"result\":{\"classification\":{\"left\":0.1,\"right\":0.9}},\"timing\":{"
                     "\"classification\":12}}";
    CHECK_EQ_INT(parse(iot, &a, &err), ER_OK);
    CHECK_EQ_INT(parse(ei, &b, &err), ER_OK);
    if (a && b) {
        CHECK_EQ_STR(a->result_json, b->result_json);
        CHECK_EQ_STR(a->timing_json, b->timing_json);
        CHECK_EQ_INT(a->kind, INFERENCE_CLASSIFICATION);
        CHECK_EQ_STR(a->guid, "0f8fad5b-d9cb-469f-a165-70867728950e");
        CHECK_EQ_INT(a->ts, 1700000000999LL);
        CHECK_EQ_STR(a->info_json, "\"model v3\"");
        CHECK_EQ_STR(a->top_label, "right");
    }
    inference_destroy(a);
    inference_destroy(b);

    CHECK_EQ_INT(parse("{\"box\":[{\"label\":\"x\",\"value\":1,\"x\":1,\"y\":1,\"width\":1,"
                       "\"height\":1}],\"anomaly\":0.25}",
                       &a, &err),
                 ER_OK);
    if (a) {
        CHECK_EQ_INT(a->kind, INFERENCE_OBJECT_DETECTION);
        CHECK_EQ_STR(a->result_json, "{\"bounding_boxes\":[{\"label\":\"x\",\"value\":1,\"x\":1,"
                                     "\"y\":1,\"width\":1,\"height\":1}],\"anomaly\":0.25}");
        CHECK_EQ_INT(a->has_anomaly, 1);
    }
    inference_destroy(a);
    CHECK_EQ_INT(parse("{\"freeform\":[[1,2],[3]]}", &a, &err), ER_OK);
    if (a) {
        CHECK_EQ_INT(a->kind, INFERENCE_FREEFORM);
        CHECK_EQ_STR(a->result_json, "{\"freeform\":[[1,2],[3]]}");
    }
    inference_destroy(a);
}

static void test_runner_message(void)
{
    inference *inf;
    er_err err;
    CHECK_EQ_INT(parse("{\"type\":\"classification\",\"result\":{\"classification\":{\"a\":1}},"
                       "\"timeMs\":2,\"additionalInfo\":{\"k\":\"v\"}}",
                       &inf, &err),
                 ER_OK);
    if (!inf) return;
    CHECK_EQ_STR(inf->timing_json, "{\"classification\":2}");
    CHECK_EQ_STR(inf->info_json, "{\"k\":\"v\"}");
    inference_destroy(inf);
}

/* A 1x1 stand-in payload: normalize does not validate image bytes, ingest does. */
static void test_image(void)
{
    inference *inf;
    er_err err;
    CHECK_EQ_INT(parse("{\"c\":{\"a\":1},\"image\":\"aGVsbG8=\"}", &inf, &err), ER_OK);
    if (inf) {
        CHECK_EQ_INT(inf->image.len, 5);
        CHECK(inf->image.data && memcmp(inf->image.data, "hello", 5) == 0);
    }
    inference_destroy(inf);
    /* data: URL prefix, padding left off. */
    CHECK_EQ_INT(
        parse("{\"c\":{\"a\":1},\"image\":\"data:image/jpeg;base64,aGVsbG8\"}", &inf, &err), ER_OK);
    if (inf) {
        CHECK_EQ_INT(inf->image.len, 5);
        CHECK(inf->image.data && memcmp(inf->image.data, "hello", 5) == 0);
    }
    inference_destroy(inf);
    /* An empty string is no image. */
    CHECK_EQ_INT(parse("{\"c\":{\"a\":1},\"image\":\"\"}", &inf, &err), ER_OK);
    if (inf) CHECK(inf->image.data == NULL);
    inference_destroy(inf);
    expect_error("{\"c\":{\"a\":1},\"image\":\"aGVs bG8=\"}", ER_INVALID, "not valid base64");
    expect_error("{\"c\":{\"a\":1},\"image\":\"a\"}", ER_INVALID, "not valid base64");
    expect_error("{\"c\":{\"a\":1},\"image\":\"data:image/jpeg,aGVsbG8=\"}", ER_INVALID,
                 "not valid base64");
    expect_error("{\"c\":{\"a\":1},\"image\":42}", ER_SHAPE, "image");

    /* Limits: exactly max decodes, max + 1 is too big, and a huge one is refused unread. */
    char *doc = malloc(4096 * 2);
    size_t n = (size_t)sprintf(doc, "{\"c\":{\"a\":1},\"image\":\"");
    for (int i = 0; i < 1024 / 3 * 4; i++)
        doc[n++] = 'A';            /* 1023 bytes */
    memcpy(doc + n, "AA==\"}", 7); /* + 1 = 1024 */
    CHECK_EQ_INT(parse(doc, &inf, &err), ER_OK);
    if (inf) CHECK_EQ_INT(inf->image.len, 1024);
    inference_destroy(inf);
    memcpy(doc + n, "AAA=\"}", 7); /* 1025 */
    expect_error(doc, ER_TOOBIG, "larger than 1024 bytes");
    n = (size_t)sprintf(doc, "{\"c\":{\"a\":1},\"image\":\"");
    for (int i = 0; i < 6000; i++)
        doc[n++] = '!'; /* invalid, but refused on length first */
    memcpy(doc + n, "\"}", 3);
    expect_error(doc, ER_TOOBIG, "larger than");
    free(doc);
}

static void test_errors(void)
{
    expect_error("", ER_INVALID, "malformed JSON at byte 0");
    expect_error("{\"result\":", ER_INVALID, "malformed JSON at byte");
    expect_error("{\"c\":{\"a\":1}} x", ER_INVALID, "malformed JSON at byte 14");
    expect_error("{\"c\":{\"a\":1}}{}", ER_INVALID, "malformed JSON at byte 13");
    expect_error("[1,2]", ER_SHAPE, "expected an Edge Impulse result");
    expect_error("42", ER_SHAPE, "IoT Core message");
    expect_error("{\"hello\":1}", ER_SHAPE, "expected an Edge Impulse result");
    expect_error("{\"result\":{}}", ER_SHAPE, "expected an Edge Impulse result");
    expect_error("{\"result\":[1]}", ER_SHAPE, "result must be an object");
    expect_error("{\"result\":{\"classification\":{\"cat\":\"high\"}}}", ER_SHAPE,
                 "result.classification.cat");
    expect_error("{\"result\":{\"classification\":[1]}}", ER_SHAPE, "result.classification");
    expect_error("{\"c\":{\"cat\":true}}", ER_SHAPE, "c.cat");
    expect_error("{\"c\":{\"a\":1},\"box\":[]}", ER_SHAPE, "exactly one of c, box, grid");
    const char *box = "{\"label\":\"a\",\"value\":1,\"x\":1,\"y\":1,\"width\":1,\"height\":1}";
    char doc[1024];
    snprintf(doc, sizeof doc,
             "{\"result\":{\"bounding_boxes\":[%s,%s,%s,{\"label\":\"a\",\"value\":\"1\"}]}}", box,
             box, box);
    expect_error(doc, ER_SHAPE, "result.bounding_boxes[3].value");
    expect_error("{\"result\":{\"bounding_boxes\":[{\"value\":1}]}}", ER_SHAPE,
                 "result.bounding_boxes[0].label");
    expect_error("{\"result\":{\"bounding_boxes\":[{\"label\":\"a\",\"value\":1,\"x\":1}]}}",
                 ER_SHAPE, "result.bounding_boxes[0].y");
    expect_error("{\"result\":{\"bounding_boxes\":[7]}}", ER_SHAPE,
                 "result.bounding_boxes[0] must be an object");
    expect_error("{\"result\":{\"bounding_boxes\":{}}}", ER_SHAPE, "result.bounding_boxes");
    expect_error("{\"grid\":[{\"label\":\"a\",\"value\":1,\"x\":1,\"y\":1,\"width\":1,"
                 "\"height\":\"1\"}]}",
                 ER_SHAPE, "grid[0].height");
    expect_error("{\"result\":{\"anomaly\":\"big\"}}", ER_SHAPE, "result.anomaly");
    expect_error("{\"result\":{\"anomaly\":1e999}}", ER_SHAPE, "finite");
    expect_error("{\"result\":{\"freeform\":{}}}", ER_SHAPE, "result.freeform");
    expect_error("{\"result\":{\"anomaly\":1},\"id\":\"not-a-uuid\"}", ER_SHAPE,
                 "id must be a uuid");
    expect_error("{\"result\":{\"anomaly\":1},\"id\":7}", ER_SHAPE, "id must be a uuid");
    expect_error("{\"result\":{\"anomaly\":1},\"device\":[]}", ER_SHAPE, "device");
    expect_error("{\"result\":{\"anomaly\":1},\"timing\":5}", ER_SHAPE, "timing");
    expect_error("{\"c\":{\"a\":1},\"time_ms\":\"5\"}", ER_SHAPE, "time_ms");
    expect_error("{\"result\":{\"anomaly\":1},\"model\":{\"width\":9.5}}", ER_SHAPE, "model.width");
    expect_error("{\"result\":{\"anomaly\":1},\"model\":3}", ER_SHAPE, "model");
    expect_error("{\"c\":{\"\":1}}", ER_SHAPE, "label must be");
}

static void test_limits(void)
{
    /* A 129-byte label is refused, 128 is fine. */
    char doc[512];
    inference *inf;
    er_err err;
    snprintf(doc, sizeof doc, "{\"c\":{\"%0128d\":1}}", 0);
    CHECK_EQ_INT(parse(doc, &inf, &err), ER_OK);
    inference_destroy(inf);
    snprintf(doc, sizeof doc, "{\"c\":{\"%0129d\":1}}", 0);
    expect_error(doc, ER_SHAPE, "label must be 1..128 bytes");

    /* More than 10000 boxes in all. */
    size_t cap = 10001 * 64 + 64, n = 0;
    char *big = malloc(cap);
    n += (size_t)sprintf(big + n, "{\"box\":[");
    for (int i = 0; i < 10001; i++)
        n += (size_t)sprintf(big + n,
                             "%s{\"label\":\"a\",\"value\":1,\"x\":1,\"y\":1,\"width\":1,"
                             "\"height\":1}",
                             i ? "," : "");
    sprintf(big + n, "]}");
    expect_error(big, ER_SHAPE, "more than 10000");
    free(big);
}

/* Parses text (without its terminator) under the limits lim; the message goes to err. */
static er_rc parse_lim(const char *json, normalize_limits lim, inference **out, er_err *err)
{
    size_t n = strlen(json);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, json, n);
    normalize_opts o = opts;
    o.lim = lim;
    memset(err->msg, 0, sizeof err->msg);
    er_rc rc = normalize_json(copy, n, &o, out, err);
    free(copy);
    return rc;
}

/* {"result":{"freeform":[1,1,...]}} with k values: exactly k + 3 JSON values. */
static char *freeform_doc(size_t k)
{
    char *doc = malloc(2 * k + 64);
    size_t n = (size_t)sprintf(doc, "{\"result\":{\"freeform\":[");
    for (size_t i = 0; i < k; i++)
        n += (size_t)sprintf(doc + n, i ? ",1" : "1");
    sprintf(doc + n, "]}}");
    return doc;
}

/* {"result":{"anomaly":1},"info":[[...]]} with levels brackets in info, into doc. */
static void nested_doc(char *doc, int levels)
{
    size_t n = (size_t)sprintf(doc, "{\"result\":{\"anomaly\":1},\"info\":");
    memset(doc + n, '[', (size_t)levels);
    memset(doc + n + (size_t)levels, ']', (size_t)levels);
    strcpy(doc + n + 2 * (size_t)levels, "}");
}

/* Each document limit holds at its bound and refuses one past it, naming the setting and its
 * value; the defaults apply when a caller sets none. */
static void test_doc_limits(void)
{
    inference *inf = NULL;
    er_err err;
    char doc[512];
    const normalize_limits lim = {
        .max_depth = 4, .max_nodes = 100, .max_result_bytes = 1024, .max_info_bytes = 16};

    /* depth: the root and three levels in info */
    CHECK_EQ_INT(parse_lim("{\"result\":{\"anomaly\":1},\"info\":[[[1]]]}", lim, &inf, &err),
                 ER_OK);
    inference_destroy(inf);
    CHECK_EQ_INT(parse_lim("{\"result\":{\"anomaly\":1},\"info\":[[[[1]]]]}", lim, &inf, &err),
                 ER_SHAPE);
    CHECK(strstr(err.msg, "max_json_depth (4)") != NULL);
    /* the default depth (32), with no limits given: the root and 31 or 32 levels in info */
    nested_doc(doc, 31);
    CHECK_EQ_INT(parse(doc, &inf, &err), ER_OK);
    inference_destroy(inf);
    nested_doc(doc, 32);
    expect_error(doc, ER_SHAPE, "max_json_depth (32)");

    /* values: freeform counts, before any tree is built */
    char *ff = freeform_doc(97);
    CHECK_EQ_INT(parse_lim(ff, lim, &inf, &err), ER_OK);
    inference_destroy(inf);
    free(ff);
    ff = freeform_doc(98);
    CHECK_EQ_INT(parse_lim(ff, lim, &inf, &err), ER_TOOBIG);
    CHECK(strstr(err.msg, "max_json_nodes (100)") != NULL);
    free(ff);
    ff = freeform_doc(CONFIG_DEF_JSON_NODES); /* the default bound */
    expect_error(ff, ER_TOOBIG, "max_json_nodes (200000)");
    free(ff);

    /* the result's stored size: 120 values of 10 bytes */
    normalize_limits wide = lim;
    wide.max_nodes = 1000;
    char *big = malloc(120 * 11 + 64);
    size_t n = (size_t)sprintf(big, "{\"result\":{\"freeform\":[");
    for (int i = 0; i < 120; i++)
        n += (size_t)sprintf(big + n, "%s123456789", i ? "," : "");
    sprintf(big + n, "]}}");
    CHECK_EQ_INT(parse_lim(big, wide, &inf, &err), ER_TOOBIG);
    CHECK(strstr(err.msg, "max_result_bytes (1024)") != NULL);
    free(big);

    /* info's stored size: 16 bytes pass, 17 do not */
    CHECK_EQ_INT(
        parse_lim("{\"result\":{\"anomaly\":1},\"info\":\"0123456789abcd\"}", lim, &inf, &err),
        ER_OK);
    if (inf) CHECK_EQ_INT(strlen(inf->info_json), 16);
    inference_destroy(inf);
    CHECK_EQ_INT(
        parse_lim("{\"result\":{\"anomaly\":1},\"info\":\"0123456789abcde\"}", lim, &inf, &err),
        ER_TOOBIG);
    CHECK(strstr(err.msg, "max_info_bytes (16)") != NULL);
}

/* Label look-ups are hashed: 10,000 distinct labels cost a few comparisons each, not one per
 * label already seen (50 million). Counted, not timed. */
static void test_label_lookups(void)
{
    const int n_labels = 10000;
    char *doc = malloc((size_t)n_labels * 24 + 64);
    size_t n = (size_t)sprintf(doc, "{\"c\":{");
    for (int i = 0; i < n_labels; i++)
        n += (size_t)sprintf(doc + n, "%s\"label%05d\":0.%d", i ? "," : "", i, i % 10);
    sprintf(doc + n, "}}");
    inference *inf = NULL;
    er_err err;
    CHECK_EQ_INT(parse(doc, &inf, &err), ER_OK);
    if (inf) {
        CHECK_EQ_INT(inf->n_labels, n_labels);
        if (inf->label_probes > 3u * (size_t)n_labels)
            fprintf(stderr, "  %zu label comparisons for %d labels\n", inf->label_probes, n_labels);
        CHECK(inf->label_probes <= 3u * (size_t)n_labels);
        CHECK(label_score(inf, "label09999") > 0.85);
    }
    inference_destroy(inf);
    /* the duplicate check rides on the same look-up */
    memcpy(doc + 6, "\"label00001\"", 11);
    expect_error(doc, ER_SHAPE, "appears twice");
    free(doc);

    /* the same through inference_add_label on a reader-built inference (no hash yet): the
     * best score per label is kept and top_label follows it */
    inference *r = inference_create();
    r->labels = calloc(2, sizeof *r->labels);
    r->labels[0] = (inference_label){.label = strdup("a"), .score = 0.5};
    r->labels[1] = (inference_label){.label = strdup("b"), .score = 0.25};
    r->n_labels = 2;
    CHECK_EQ_INT(inference_add_label(r, "b", 0.75), ER_OK);
    CHECK_EQ_INT(inference_add_label(r, "a", 0.1), ER_OK);
    CHECK_EQ_INT(inference_add_label(r, "c", 0.2), ER_OK);
    CHECK_EQ_INT(r->n_labels, 3);
    CHECK(label_score(r, "a") == 0.5 && label_score(r, "b") == 0.75 && label_score(r, "c") == 0.2);
    CHECK_EQ_STR(r->top_label, "b");
    inference_destroy(r);
}

/* Every "classification" message of the runner sessions (tests/fixtures/runner-ws) normalizes
 * once wrapped: 6 classifications with 3 labels each, then 6 object-detection results of
 * which the 3rd and 4th found nothing. */
static void test_fixtures(void)
{
    static const char *const files[] = {"classification.jsonl", "object-detection.jsonl"};
    static const char key[] = "\"type\":\"classification\",\"result\":";
    static const inference_kind od_kinds[] = {
        INFERENCE_OBJECT_DETECTION, INFERENCE_OBJECT_DETECTION, INFERENCE_EMPTY, INFERENCE_EMPTY,
        INFERENCE_OBJECT_DETECTION, INFERENCE_OBJECT_DETECTION};
    int seen[2] = {0, 0};
    for (size_t f = 0; f < 2; f++) {
        char *text = fixture_read("runner-ws", files[f], NULL);
        CHECK(text != NULL);
        for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
            const char *r = strstr(line, key);
            if (!r) continue;
            r += strlen(key);
            const char *e = strstr(r, "},\"timeMs\"");
            CHECK(e != NULL);
            if (!e) continue;
            char *doc = malloc((size_t)(e - r) + 32);
            sprintf(doc, "{\"result\":%.*s}}", (int)(e - r), r);
            inference *inf;
            er_err err;
            er_rc rc = parse(doc, &inf, &err);
            if (rc) fprintf(stderr, "  fixture %s: %s\n", doc, err.msg);
            CHECK_EQ_INT(rc, ER_OK);
            if (inf && f == 0) {
                CHECK_EQ_INT(inf->kind, INFERENCE_CLASSIFICATION);
                CHECK_EQ_INT(inf->n_labels, 3);
            } else if (inf && seen[1] < 6) {
                CHECK_EQ_INT(inf->kind, od_kinds[seen[1]]);
                CHECK_EQ_INT(inf->n_labels == 0, od_kinds[seen[1]] == INFERENCE_EMPTY);
            }
            if (inf) seen[f]++;
            inference_destroy(inf);
            free(doc);
        }
        free(text);
    }
    CHECK_EQ_INT(seen[0], 6);
    CHECK_EQ_INT(seen[1], 6);
}

/* Bytes cJSON would accept but that cannot be stored faithfully. */
static void test_strict_strings(void)
{
    /* a raw NUL (given with an explicit length, since it ends a C string) */
    static const char nul_label[] = "{\"result\":{\"classification\":{\"cat\0dog\":0.5}}}";
    inference *inf = NULL;
    er_err err;
    CHECK_EQ_INT(normalize_json(nul_label, sizeof nul_label - 1, &opts, &inf, &err), ER_INVALID);
    CHECK(inf == NULL);
    static const char nul_outside[] = "{\"result\":{\"anomaly\":1}}\0";
    CHECK_EQ_INT(normalize_json(nul_outside, sizeof nul_outside - 1, &opts, &inf, &err),
                 ER_INVALID);
    expect_error("{\"result\":{\"classification\":{\"a\tb\":0.5}}}", ER_INVALID,
                 "control character");
    expect_error("{\"result\":{\"anomaly\":1},\"info\":\"a\nb\"}", ER_INVALID, "control character");
    expect_error("{\"result\":{\"classification\":{\"caf\xc3\":0.9}}}", ER_INVALID, "UTF-8");
    expect_error("{\"result\":{\"anomaly\":1},\"device\":\"\xed\xa0\x80\"}", ER_INVALID, "UTF-8");
    expect_error("{\"result\":{\"classification\":{\"a\\u0000x\":0.1,\"a\":0.9}}}", ER_SHAPE,
                 "\\u0000");
    expect_error("{\"result\":{\"anomaly\":1},\"device\":\"x\\u0000y\"}", ER_SHAPE, "\\u0000");
    /* cJSON reads \u with a non-hex digit as U+0000: the label would be cut to "dog" */
    expect_error("{\"result\":{\"classification\":{\"dog\\u00zz\":0.9}}}", ER_INVALID,
                 "four hex digits");
    expect_error("{\"result\":{\"anomaly\":1},\"info\":\"x\\uGGGGy\"}", ER_INVALID,
                 "four hex digits");
    expect_error("{\"result\":{\"anomaly\":1},\"info\":\"x\\u12\"}", ER_INVALID, "four hex digits");
    CHECK_EQ_INT(parse("{\"result\":{\"classification\":{\"d\\u00E9j\\u00e0\":0.5}}}", &inf, &err),
                 ER_OK);
    if (inf) CHECK_EQ_STR(inf->labels[0].label, "d\xc3\xa9j\xc3\xa0");
    inference_destroy(inf);
    expect_error("{\"result\":{\"classification\":{\"a\":0.1,\"a\":0.9}}}", ER_SHAPE, "twice");
    expect_error("{\"c\":{\"a\":0.1,\"a\":0.9}}", ER_SHAPE, "twice");
    /* escapes that are fine: an escaped backslash before u0000 is the text "\u0000" */
    CHECK_EQ_INT(
        parse("{\"result\":{\"classification\":{\"a\\\\u0000\":0.5,\"tab\\t\":0.5}}}", &inf, &err),
        ER_OK);
    if (inf) CHECK_EQ_INT(inf->n_labels, 2);
    inference_destroy(inf);
}

int main(void)
{
    test_strict_strings();
    test_classification();
    test_defaults();
    test_boxes();
    test_visual_anomaly();
    test_iot_equals_ei();
    test_runner_message();
    test_image();
    test_errors();
    test_limits();
    test_doc_limits();
    test_label_lookups();
    test_fixtures();
    return check_summary();
}
