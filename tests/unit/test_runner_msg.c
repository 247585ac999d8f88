/* test_runner_msg.c - the runner-ws message layer: replays of the runner's preview WebSocket
 * sessions (tests/fixtures/runner-ws, described in its README), frame pairing, model info from
 * hello, the greeting, the image header parser, and rejected messages leaving the session as it
 * was. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "core/util.h"
#include "sources/runner_msg.h"

/* What the emit callback collected; owns the inferences. */
typedef struct sink {
    inference *inf[64];
    size_t n;
} sink;

static void collect(void *arg, inference *inf)
{
    sink *k = arg;
    if (k->n < sizeof k->inf / sizeof k->inf[0])
        k->inf[k->n++] = inf;
    else
        inference_destroy(inf);
}

static void sink_free(sink *k)
{
    for (size_t i = 0; i < k->n; i++)
        inference_destroy(k->inf[i]);
    k->n = 0;
}

/* Feeds a NUL-terminated text by length only, from a copy without terminator, so a read past
 * the end shows under ASan. */
static er_rc feed(runner_session *s, const char *text, sink *k, er_err *err)
{
    size_t n = strlen(text);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, text, n);
    memset(err, 0, sizeof *err);
    er_rc rc = runner_session_on_message(s, copy, n, collect, k, err);
    free(copy);
    return rc;
}

/* The raw text of a line's "msg" member, exactly as the runner sent it: the line is
 * {"dir":"...","msg":{...}} so it is everything after "msg": up to the line's last '}'. */
static char *raw_msg(const char *line)
{
    const char *p = strstr(line, "\"msg\":");
    const char *q = strrchr(line, '}');
    if (!p || !q || q < p + 6) return NULL;
    p += 6;
    char *out = malloc((size_t)(q - p) + 1);
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = '\0';
    return out;
}

/* Decodes the frame of a camera-preview message, to compare with what got attached. */
static uint8_t *frame_bytes(const cJSON *msg, size_t *len)
{
    const char *url = cJSON_GetStringValue(cJSON_GetObjectItem(msg, "image"));
    const char *b64 = url ? strchr(url, ',') : NULL;
    if (!b64) return NULL;
    b64++;
    uint8_t *out = malloc(util_b64_decoded_max(strlen(b64)) + 1);
    if (util_b64_decode(b64, strlen(b64), out, len) != ER_OK) {
        free(out);
        return NULL;
    }
    return out;
}

typedef struct expect {
    uint8_t *frame[64]; /* per inference: the frame that should be attached, or NULL */
    size_t frame_len[64];
    int time_ms[64]; /* per inference: the message's timeMs */
    size_t n;
} expect;

/* Replays one fixture file: server messages go into the session; the client message is
 * compared with the greeting. Returns the session for further checks. */
static runner_session *replay(const char *name, sink *k, expect *e)
{
    runner_session_opts o = {.source = "cam", .device = "pi", .want_images = true};
    runner_session *s = NULL;
    CHECK_EQ_INT(runner_session_create(&o, &s), ER_OK);
    char *text = fixture_read("runner-ws", name, NULL);
    CHECK(text != NULL);
    if (!s || !text) {
        free(text);
        return s;
    }
    uint8_t *pending = NULL;
    size_t pending_len = 0;
    int greetings = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *doc = cJSON_Parse(line);
        CHECK(doc != NULL);
        if (!doc) continue;
        const char *dir = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "dir"));
        const cJSON *msg = cJSON_GetObjectItem(doc, "msg");
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(msg, "type"));
        if (dir && strcmp(dir, "client") == 0) {
            /* What the real client sent is what the session asks us to send. */
            const char *g = runner_session_greeting(s);
            cJSON *gj = g ? cJSON_Parse(g) : NULL;
            CHECK(gj != NULL && cJSON_Compare(gj, msg, 1));
            cJSON_Delete(gj);
            greetings++;
        } else if (dir && strcmp(dir, "server") == 0 && type) {
            if (strcmp(type, "camera-preview") == 0) {
                free(pending);
                pending = frame_bytes(msg, &pending_len);
                CHECK(pending != NULL);
            } else if (strcmp(type, "classification") == 0 && e->n < 64) {
                e->time_ms[e->n] = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(msg, "timeMs"));
                e->frame[e->n] = pending;
                e->frame_len[e->n++] = pending_len;
                pending = NULL;
            }
            char *raw = raw_msg(line);
            er_err err;
            CHECK(raw != NULL);
            if (raw) {
                er_rc rc = feed(s, raw, k, &err);
                if (rc) fprintf(stderr, "  %s: %s\n", type, err.msg);
                CHECK_EQ_INT(rc, ER_OK);
            }
            free(raw);
        }
        cJSON_Delete(doc);
    }
    CHECK_EQ_INT(greetings, 1);
    free(pending);
    free(text);
    return s;
}

static void expect_free(expect *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->frame[i]);
}

/* Every inference carries exactly the frame that came just before its classification, the
 * model's input size (side x side, from the hello) and its message's timeMs. */
static void check_pairing(const sink *k, const expect *e, int side)
{
    char timing[64];
    CHECK_EQ_INT(k->n, e->n);
    for (size_t i = 0; i < k->n && i < e->n; i++) {
        const inference *inf = k->inf[i];
        CHECK_EQ_INT(inf->model_width, side);
        CHECK_EQ_INT(inf->model_height, side);
        CHECK_EQ_STR(inf->source, "cam");
        CHECK_EQ_STR(inf->device, "pi");
        snprintf(timing, sizeof timing, "{\"classification\":%d}", e->time_ms[i]);
        CHECK_EQ_STR(inf->timing_json, timing);
        if (e->frame[i]) {
            CHECK(inf->image.data != NULL);
            CHECK_EQ_INT(inf->image.len, e->frame_len[i]);
            CHECK(inf->image.data && inf->image.len == e->frame_len[i] &&
                  memcmp(inf->image.data, e->frame[i], e->frame_len[i]) == 0);
            CHECK_EQ_STR(inf->image.mime, "image/jpeg");
            CHECK_EQ_INT(inf->image.width, side);
            CHECK_EQ_INT(inf->image.height, side);
        } else {
            CHECK(inf->image.data == NULL);
            CHECK_EQ_INT(inf->image.len, 0);
        }
    }
}

/* Per inference of a session: kind, top label and whether a frame came just before it. */
typedef struct want_inf {
    inference_kind kind;
    const char *top; /* NULL: no label */
    bool framed;
} want_inf;

static void check_kinds(const sink *k, const want_inf *want, size_t n)
{
    CHECK_EQ_INT(k->n, n);
    for (size_t i = 0; i < k->n && i < n; i++) {
        CHECK_EQ_INT(k->inf[i]->kind, want[i].kind);
        CHECK(want[i].top ? k->inf[i]->top_label && strcmp(k->inf[i]->top_label, want[i].top) == 0
                          : k->inf[i]->top_label == NULL);
        CHECK_EQ_INT(k->inf[i]->image.data != NULL, want[i].framed);
    }
}

static void test_classification_fixture(void)
{
    static const want_inf want[] = {
        {INFERENCE_CLASSIFICATION, "parcel", true},  {INFERENCE_CLASSIFICATION, "parcel", true},
        {INFERENCE_CLASSIFICATION, "parcel", false}, {INFERENCE_CLASSIFICATION, "empty", true},
        {INFERENCE_CLASSIFICATION, "person", true},  {INFERENCE_CLASSIFICATION, "person", false},
    };
    sink k = {0};
    expect e = {0};
    runner_session *s = replay("classification.jsonl", &k, &e);
    if (!s) return;
    check_pairing(&k, &e, 96);
    /* 6 classifications; the 3rd and 6th came after no new frame (the runner sends a frame
     * identical to the one before only once). */
    check_kinds(&k, want, sizeof want / sizeof want[0]);
    if (k.n >= 1) {
        /* float32 scores as the runner prints them: the label index keeps the exact double,
         * the stored JSON compares equal (its printer may spell a double differently) */
        cJSON *got = cJSON_Parse(k.inf[0]->result_json);
        cJSON *want0 =
            cJSON_Parse("{\"classification\":{\"empty\":0.041200000792741776,"
                        "\"parcel\":0.9107000231742859,\"person\":0.04809999838471413}}");
        CHECK(got && want0 && cJSON_Compare(got, want0, 1));
        CHECK(strstr(k.inf[0]->result_json, "{\"classification\":{\"empty\":") ==
              k.inf[0]->result_json); /* labels in the order sent */
        cJSON_Delete(got);
        cJSON_Delete(want0);
        CHECK(k.inf[0]->top_score == 0.9107000231742859);
        CHECK_EQ_INT(k.inf[0]->n_labels, 3);
    }
    int w, h;
    runner_session_model_size(s, &w, &h);
    CHECK_EQ_INT(w, 96);
    CHECK_EQ_INT(h, 96);
    cJSON *info = cJSON_Parse(runner_session_model_info(s));
    CHECK(info != NULL);
    const cJSON *proj = cJSON_GetObjectItem(info, "project");
    const cJSON *mp = cJSON_GetObjectItem(info, "modelParameters");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(proj, "name")), "parcel-classifier");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(proj, "owner")), "ei-relay tests");
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(proj, "id")), 213904);
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(proj, "deploy_version")), 7);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(info, "model_type")), "classification");
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(mp, "image_input_width")), 96);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(mp, "labels")), 3);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(mp, "labels"), 2)),
                 "person");
    CHECK(cJSON_GetObjectItem(mp, "thresholds") != NULL);
    cJSON_Delete(info);
    runner_session_counters st;
    runner_session_counters_get(s, &st);
    CHECK_EQ_INT(st.hellos, 1);
    CHECK_EQ_INT(st.acks, 1);
    CHECK_EQ_INT(st.frames, 4);
    CHECK_EQ_INT(st.frames_paired, 4);
    CHECK_EQ_INT(st.inferences, 6);
    CHECK_EQ_INT(st.rejected, 0);
    CHECK_EQ_INT(st.unknown, 0);
    sink_free(&k);
    expect_free(&e);
    runner_session_destroy(s);
}

static void test_object_detection_fixture(void)
{
    static const want_inf want[] = {
        {INFERENCE_OBJECT_DETECTION, "pallet", true},
        {INFERENCE_OBJECT_DETECTION, "forklift", true},
        {INFERENCE_EMPTY, NULL, true},
        {INFERENCE_EMPTY, NULL, false},
        {INFERENCE_OBJECT_DETECTION, "forklift", true},
        {INFERENCE_OBJECT_DETECTION, "forklift", false},
    };
    sink k = {0};
    expect e = {0};
    runner_session *s = replay("object-detection.jsonl", &k, &e);
    if (!s) return;
    check_pairing(&k, &e, 160);
    check_kinds(&k, want, sizeof want / sizeof want[0]);
    if (k.n == 6) {
        /* Boxes as sent, in the model's 160x160 input pixels. */
        CHECK_EQ_STR(k.inf[0]->result_json,
                     "{\"bounding_boxes\":[{\"label\":\"pallet\",\"value\":0.87109375,\"x\":24,"
                     "\"y\":104,\"width\":8,\"height\":8},{\"label\":\"pallet\",\"value\":0."
                     "6328125,\"x\":112,\"y\":96,\"width\":8,\"height\":16}]}");
        CHECK_EQ_INT(k.inf[0]->n_labels, 1);
        CHECK_EQ_STR(k.inf[2]->result_json, "{\"bounding_boxes\":[]}");
        /* The last box, compared as JSON (the printer may spell the double differently). */
        cJSON *got = cJSON_Parse(k.inf[5]->result_json);
        cJSON *want_last = cJSON_Parse("{\"bounding_boxes\":[{\"label\":\"forklift\",\"value\":"
                                       "0.88671875,\"x\":104,\"y\":40,\"width\":16,"
                                       "\"height\":16}]}");
        CHECK(got && want_last && cJSON_Compare(got, want_last, 1));
        cJSON_Delete(got);
        cJSON_Delete(want_last);
        CHECK(k.inf[1]->top_score == 0.94921875);
    }
    cJSON *info = cJSON_Parse(runner_session_model_info(s));
    CHECK_EQ_STR(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(info, "project"), "name")),
        "warehouse-fomo");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(info, "model_type")),
                 "constrained_object_detection");
    cJSON_Delete(info);
    runner_session_counters st;
    runner_session_counters_get(s, &st);
    CHECK_EQ_INT(st.frames, 4);
    CHECK_EQ_INT(st.frames_paired, 4);
    CHECK_EQ_INT(st.inferences, 6);
    sink_free(&k);
    expect_free(&e);
    runner_session_destroy(s);
}

/* A minimal baseline JPEG header: SOI, SOF0 (h=24, w=40), EOI. */
static const uint8_t tiny_jpeg[] = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x18,
                                    0x00, 0x28, 0x01, 0x01, 0x11, 0x00, 0xFF, 0xD9};

static char *data_url(const char *prefix, const uint8_t *d, size_t n)
{
    size_t pl = strlen(prefix);
    char *out = malloc(pl + util_b64_encoded_len(n) + 1);
    memcpy(out, prefix, pl);
    util_b64_encode(d, n, out + pl);
    return out;
}

static char *preview_msg(const char *prefix, const uint8_t *d, size_t n)
{
    char *url = data_url(prefix, d, n);
    util_buf b = {0};
    util_buf_printf(&b, "{\"type\":\"camera-preview\",\"image\":\"%s\"}", url);
    free(url);
    return b.data;
}

static const char *HELLO = "{\"type\":\"hello\",\"project\":{\"id\":7,\"name\":\"p\"},"
                           "\"modelParameters\":{\"image_input_width\":320,"
                           "\"image_input_height\":240,\"labels\":[\"a\",\"b\"],"
                           "\"model_type\":\"classification\"}}";
static const char *CLS = "{\"type\":\"classification\",\"result\":{\"classification\":{\"a\":0,"
                         "\"b\":0.9}},\"timeMs\":5,\"additionalInfo\":\"x\"}";

static runner_session *fresh(bool want_images, size_t max_frame)
{
    runner_session_opts o = {.want_images = want_images, .max_frame_bytes = max_frame};
    runner_session *s = NULL;
    CHECK_EQ_INT(runner_session_create(&o, &s), ER_OK);
    return s;
}

static void test_pairing_rules(void)
{
    runner_session *s = fresh(true, 1024);
    sink k = {0};
    er_err err;
    char *frame = preview_msg("data:image/jpeg;base64,", tiny_jpeg, sizeof tiny_jpeg);
    /* Classification before any hello or frame: no image, unknown model size, default names. */
    CHECK_EQ_INT(feed(s, CLS, &k, &err), ER_OK);
    CHECK(runner_session_model_info(s) == NULL);
    CHECK_EQ_INT(feed(s, HELLO, &k, &err), ER_OK);
    CHECK_EQ_INT(feed(s, frame, &k, &err), ER_OK);
    CHECK_EQ_INT(feed(s, "{\"type\":\"handling-message-success\",\"messageId\":1}", &k, &err),
                 ER_OK);
    CHECK_EQ_INT(feed(s, "{\"type\":\"something-new\",\"x\":[1]}", &k, &err), ER_OK);
    CHECK_EQ_INT(feed(s, CLS, &k, &err), ER_OK); /* takes the frame */
    CHECK_EQ_INT(feed(s, CLS, &k, &err), ER_OK); /* none left */
    CHECK_EQ_INT(k.n, 3);
    if (k.n == 3) {
        CHECK(k.inf[0]->image.data == NULL);
        CHECK_EQ_INT(k.inf[0]->model_width, 0);
        CHECK_EQ_STR(k.inf[0]->source, "runner");
        CHECK_EQ_INT(k.inf[1]->image.len, sizeof tiny_jpeg);
        CHECK_EQ_INT(k.inf[1]->image.width, 40);
        CHECK_EQ_INT(k.inf[1]->image.height, 24);
        CHECK_EQ_INT(k.inf[1]->model_width, 320);
        CHECK_EQ_INT(k.inf[1]->model_height, 240);
        /* A score the runner zeroed stays as sent. */
        CHECK_EQ_STR(k.inf[1]->result_json, "{\"classification\":{\"a\":0,\"b\":0.9}}");
        CHECK_EQ_STR(k.inf[1]->info_json, "\"x\"");
        CHECK_EQ_STR(k.inf[1]->timing_json, "{\"classification\":5}");
        CHECK(k.inf[2]->image.data == NULL);
    }
    /* Two frames in a row: the second one is paired, the first counted as unpaired. */
    static const uint8_t png[] = {0x89, 'P',  'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0,
                                  13,   'I',  'H', 'D', 'R',  0,    0,    1,    0, 0, 0,
                                  0,    0x80, 8,   2,   0,    0,    0,    0,    0, 0, 0};
    char *pframe = preview_msg("data:image/png;base64,", png, sizeof png);
    CHECK_EQ_INT(feed(s, frame, &k, &err), ER_OK);
    CHECK_EQ_INT(feed(s, pframe, &k, &err), ER_OK);
    CHECK_EQ_INT(feed(s, CLS, &k, &err), ER_OK);
    CHECK_EQ_INT(k.n, 4);
    if (k.n == 4) {
        CHECK_EQ_STR(k.inf[3]->image.mime, "image/png");
        CHECK_EQ_INT(k.inf[3]->image.width, 256);
        CHECK_EQ_INT(k.inf[3]->image.height, 128);
    }
    runner_session_counters st;
    runner_session_counters_get(s, &st);
    CHECK_EQ_INT(st.frames, 3);
    CHECK_EQ_INT(st.frames_paired, 2);
    CHECK_EQ_INT(st.frames_unpaired, 1);
    CHECK_EQ_INT(st.unknown, 1);
    CHECK_EQ_INT(st.acks, 1);
    CHECK_EQ_INT(st.messages, 10);
    /* A new hello (runner restarted) drops a pending frame. */
    CHECK_EQ_INT(feed(s, frame, &k, &err), ER_OK);
    CHECK_EQ_INT(feed(s, HELLO, &k, &err), ER_OK);
    CHECK_EQ_INT(feed(s, CLS, &k, &err), ER_OK);
    CHECK(k.n == 5 && k.inf[4]->image.data == NULL);
    /* A message the transport refused (binary, too big) drops it too, and is counted. */
    runner_session_counters_get(s, &st);
    CHECK_EQ_INT(feed(s, frame, &k, &err), ER_OK);
    runner_session_reject(s);
    CHECK_EQ_INT(feed(s, CLS, &k, &err), ER_OK);
    CHECK(k.n == 6 && k.inf[5]->image.data == NULL);
    runner_session_counters st2;
    runner_session_counters_get(s, &st2);
    CHECK_EQ_INT(st2.rejected, st.rejected + 1);
    CHECK_EQ_INT(st2.messages, st.messages + 3);
    CHECK_EQ_INT(st2.frames_unpaired, st.frames_unpaired + 1);
    free(frame);
    free(pframe);
    sink_free(&k);
    runner_session_destroy(s);
}

/* An image inside a classification message is not a checked preview frame: dropped. */
static void test_classification_image_dropped(void)
{
    runner_session *s = fresh(true, 0);
    sink k = {0};
    er_err err;
    CHECK_EQ_INT(feed(s,
                      "{\"type\":\"classification\",\"result\":{\"classification\":{\"a\":"
                      "1}},\"image\":\"AAECAwQF\"}",
                      &k, &err),
                 ER_OK);
    CHECK(k.n == 1 && k.inf[0]->image.data == NULL && k.inf[0]->image.len == 0);
    sink_free(&k);
    runner_session_destroy(s);
}

static void test_no_images(void)
{
    runner_session *s = fresh(false, 0);
    sink k = {0};
    er_err err;
    CHECK(runner_session_greeting(s) == NULL);
    char *frame = preview_msg("data:image/jpeg;base64,", tiny_jpeg, sizeof tiny_jpeg);
    CHECK_EQ_INT(feed(s, frame, &k, &err), ER_OK);
    CHECK_EQ_INT(feed(s, CLS, &k, &err), ER_OK);
    CHECK(k.n == 1 && k.inf[0]->image.data == NULL);
    free(frame);
    sink_free(&k);
    runner_session_destroy(s);
}

/* Every bad message: the error, a message naming it, nothing emitted, model info unchanged,
 * and the pending frame dropped (so the next classification has no image). */
static void expect_reject(runner_session *s, const char *msg, size_t len, er_rc want,
                          const char *needle)
{
    sink k = {0};
    er_err err = {{0}};
    char *frame = preview_msg("data:image/jpeg;base64,", tiny_jpeg, sizeof tiny_jpeg);
    CHECK_EQ_INT(feed(s, frame, &k, &err), ER_OK);
    char *before = strdup(runner_session_model_info(s));
    char *copy = malloc(len ? len : 1);
    memcpy(copy, msg, len);
    er_rc rc = runner_session_on_message(s, copy, len, collect, &k, &err);
    free(copy);
    CHECK_EQ_INT(rc, want);
    if (!strstr(err.msg, needle))
        fprintf(stderr, "  \"%.60s\": message \"%s\" lacks \"%s\"\n", msg, err.msg, needle);
    CHECK(strstr(err.msg, needle) != NULL);
    CHECK_EQ_INT(k.n, 0);
    CHECK_EQ_STR(runner_session_model_info(s), before);
    int w, h;
    runner_session_model_size(s, &w, &h);
    CHECK(w == 320 && h == 240);
    CHECK_EQ_INT(feed(s, CLS, &k, &err), ER_OK);
    CHECK(k.n == 1 && k.inf[0]->image.data == NULL);
    free(before);
    free(frame);
    sink_free(&k);
}

static void reject(runner_session *s, const char *msg, er_rc want, const char *needle)
{
    expect_reject(s, msg, strlen(msg), want, needle);
}

static void test_rejects(void)
{
    runner_session *s = fresh(true, 64);
    sink k = {0};
    er_err err;
    CHECK_EQ_INT(feed(s, HELLO, &k, &err), ER_OK);
    reject(s, "", ER_INVALID, "malformed");
    reject(s, "{\"type\":\"hello\"", ER_INVALID, "malformed JSON");
    reject(s, "{\"type\":\"hello\"} x", ER_INVALID, "malformed JSON");
    reject(s, "\x01\xff garbage", ER_INVALID, "malformed JSON");
    expect_reject(s, "{\"type\":\"hel\0lo\"}", 16, ER_INVALID, "NUL");
    reject(s, "[1,2]", ER_SHAPE, "\"type\"");
    reject(s, "{\"type\":5}", ER_SHAPE, "\"type\"");
    reject(s, "{\"type\":\"hello\",\"project\":[]}", ER_SHAPE, "project");
    reject(s, "{\"type\":\"hello\",\"project\":{\"name\":3}}", ER_SHAPE, "project.name");
    reject(s, "{\"type\":\"hello\",\"modelParameters\":{\"image_input_width\":-1}}", ER_SHAPE,
           "image_input_width");
    reject(s, "{\"type\":\"hello\",\"modelParameters\":{\"image_input_height\":1.5}}", ER_SHAPE,
           "image_input_height");
    reject(s, "{\"type\":\"hello\",\"modelParameters\":{\"labels\":[1]}}", ER_SHAPE, "labels");
    reject(s, "{\"type\":\"classification\",\"result\":7}", ER_SHAPE, "result");
    reject(s, "{\"type\":\"classification\"}", ER_SHAPE, "result");
    reject(s, "{\"type\":\"camera-preview\"}", ER_SHAPE, "image");
    reject(s, "{\"type\":\"camera-preview\",\"image\":\"data:image/gif;base64,R0lG\"}", ER_INVALID,
           "data:image/jpeg;base64,");
    reject(s, "{\"type\":\"camera-preview\",\"image\":\"/9j/4AAQ\"}", ER_INVALID, "data:image");
    reject(s, "{\"type\":\"camera-preview\",\"image\":\"data:image/jpeg;base64,/9j/*AAQ\"}",
           ER_INVALID, "base64");
    reject(s, "{\"type\":\"camera-preview\",\"image\":\"data:image/jpeg;base64, /9j/4AAQ\"}",
           ER_INVALID, "base64");
    /* Valid base64 but a truncated JPEG (SOI, then a segment cut short) and a PNG label on
     * JPEG bytes. */
    reject(s, "{\"type\":\"camera-preview\",\"image\":\"data:image/jpeg;base64,/9j/wAAR\"}",
           ER_INVALID, "JPEG");
    char *wrong = preview_msg("data:image/png;base64,", tiny_jpeg, sizeof tiny_jpeg);
    reject(s, wrong, ER_INVALID, "PNG");
    free(wrong);
    /* A frame over the 64-byte limit. */
    uint8_t big[200];
    memset(big, 0, sizeof big);
    memcpy(big, tiny_jpeg, sizeof tiny_jpeg);
    char *over = preview_msg("data:image/jpeg;base64,", big, sizeof big);
    reject(s, over, ER_TOOBIG, "limit");
    free(over);
    /* A message over the message limit, rejected before it is parsed. */
    size_t huge = util_b64_encoded_len(64) + RUNNER_MSG_OVERHEAD_BYTES + 1;
    char *junk = malloc(huge);
    memset(junk, ' ', huge);
    junk[0] = '{';
    expect_reject(s, junk, huge, ER_TOOBIG, "limit");
    free(junk);
    runner_session_counters st;
    runner_session_counters_get(s, &st);
    CHECK_EQ_INT(st.rejected, 23);
    CHECK_EQ_INT(st.hellos, 1);
    CHECK_EQ_INT(st.frames_paired, 0);
    CHECK_EQ_INT(st.frames_unpaired, 23);
    runner_session_destroy(s);
}

/* The session's document limits reach normalize: a classification nested past max_depth or
 * with more values than max_nodes is refused, naming the setting; within them it is stored. */
static void test_document_limits(void)
{
    runner_session_opts o = {
        .want_images = true, .max_frame_bytes = 64, .lim = {.max_depth = 3, .max_nodes = 20}};
    runner_session *s = NULL;
    CHECK_EQ_INT(runner_session_create(&o, &s), ER_OK);
    sink k = {0};
    er_err err;
    CHECK_EQ_INT(feed(s, HELLO, &k, &err), ER_OK);
    CHECK_EQ_INT(feed(s, CLS, &k, &err), ER_OK);
    reject(s,
           "{\"type\":\"classification\",\"result\":{\"classification\":{\"a\":1}},"
           "\"additionalInfo\":[[[1]]]}",
           ER_SHAPE, "max_json_depth (3)");
    reject(s,
           "{\"type\":\"classification\",\"result\":{\"freeform\":[1,2,3,4,5,6,7,8,9,10,"
           "11,12,13,14,15,16,17,18]}}",
           ER_TOOBIG, "max_json_nodes (20)");
    runner_session_destroy(s);
    for (size_t i = 0; i < k.n; i++)
        inference_destroy(k.inf[i]);
}

static void test_image_size(void)
{
    int w = -1, h = -1;
    CHECK_EQ_INT(runner_image_size(tiny_jpeg, sizeof tiny_jpeg, false, &w, &h), ER_OK);
    CHECK(w == 40 && h == 24);
    /* An APP0 segment, fill bytes and a progressive SOF2 before the size. */
    static const uint8_t prog[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x4A, 0x46, 0xFF, 0xFF,
                                   0xC2, 0x00, 0x08, 0x08, 0x01, 0x00, 0x02, 0x00, 0x01};
    CHECK_EQ_INT(runner_image_size(prog, sizeof prog, false, &w, &h), ER_OK);
    CHECK(w == 512 && h == 256);
    /* Every truncation of a valid header fails without reading past the end. */
    for (size_t n = 0; n < sizeof tiny_jpeg - 4; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, tiny_jpeg, n);
        w = h = -1;
        CHECK_EQ_INT(runner_image_size(cut, n, false, &w, &h), ER_INVALID);
        CHECK(w == -1 && h == -1);
        free(cut);
    }
    /* A segment length running past the end, a zero width, DHT (not a SOF), EOI first. */
    static const uint8_t badlen[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x01, 0x00, 0x00};
    static const uint8_t zero_w[] = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x08,
                                     0x08, 0x00, 0x10, 0x00, 0x00};
    static const uint8_t dht[] = {0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x08, 0x08, 0x00, 0x10, 0x00, 0x10};
    static const uint8_t eoi[] = {0xFF, 0xD8, 0xFF, 0xD9, 0xFF, 0xC0, 0x00, 0x08, 0x08, 0, 1, 0, 1};
    CHECK_EQ_INT(runner_image_size(badlen, sizeof badlen, false, &w, &h), ER_INVALID);
    CHECK_EQ_INT(runner_image_size(zero_w, sizeof zero_w, false, &w, &h), ER_INVALID);
    CHECK_EQ_INT(runner_image_size(dht, sizeof dht, false, &w, &h), ER_INVALID);
    CHECK_EQ_INT(runner_image_size(eoi, sizeof eoi, false, &w, &h), ER_INVALID);
    CHECK_EQ_INT(runner_image_size(tiny_jpeg, sizeof tiny_jpeg, true, &w, &h), ER_INVALID);
}

int main(void)
{
    test_classification_fixture();
    test_object_detection_fixture();
    test_pairing_rules();
    test_no_images();
    test_classification_image_dropped();
    test_rejects();
    test_image_size();
    test_document_limits();
    return check_summary();
}
