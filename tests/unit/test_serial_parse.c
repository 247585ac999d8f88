/* test_serial_parse.c - the serial firmware-output parser: every fixture fed whole and in random
 * chunks gives the same inferences, CRLF and noise do not change them, exact field values of
 * every inference of every fixture (tests/fixtures/serial, described in its README), and the
 * less common formats (regression, visual anomaly grid, tracking) inline. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "sources/serial_parse.h"

typedef struct sink {
    inference *v[64];
    size_t n;
    size_t overflow;
} sink;

static void collect(void *arg, inference *inf)
{
    sink *s = arg;
    if (s->n < sizeof s->v / sizeof s->v[0])
        s->v[s->n++] = inf;
    else {
        s->overflow++;
        inference_destroy(inf);
    }
}

static void sink_free(sink *s)
{
    for (size_t i = 0; i < s->n; i++)
        inference_destroy(s->v[i]);
    s->n = 0;
}

static int64_t fake_clock(void)
{
    return 42;
}

static const serial_parser_opts test_opts = {
    .device = "mcu", .source = "serial0", .max_line = 0, .now_ms = fake_clock};

/* xorshift: reproducible chunk sizes per seed */
static uint32_t rnd(uint32_t *st)
{
    uint32_t x = *st;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *st = x;
}

/* Feeds data in chunks of 1..max_chunk bytes (max_chunk 0 = all at once), then finishes. */
static void run(const char *data, size_t len, uint32_t seed, size_t max_chunk, sink *out,
                serial_parser_counters *stats)
{
    serial_parser *p = NULL;
    er_err err;
    uint32_t st = seed ? seed : 1;
    size_t off = 0;
    memset(out, 0, sizeof *out);
    CHECK_EQ_INT(serial_parser_create(&test_opts, &p, &err), ER_OK);
    if (!p) return;
    while (off < len) {
        size_t k = max_chunk ? 1 + rnd(&st) % max_chunk : len;
        if (k > len - off) k = len - off;
        if (serial_parser_feed(p, (const uint8_t *)data + off, k, collect, out) != ER_OK)
            check_failed++;
        off += k;
    }
    CHECK_EQ_INT(serial_parser_finish(p, collect, out), ER_OK);
    if (stats) serial_parser_counters_get(p, stats);
    serial_parser_destroy(p);
}

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Same inferences, field by field (guid aside: fresh per inference). */
static void check_same(const sink *a, const sink *b, const char *what)
{
    int before = check_failed;
    CHECK_EQ_INT(a->n, b->n);
    for (size_t i = 0; i < a->n && i < b->n; i++) {
        const inference *x = a->v[i], *y = b->v[i];
        CHECK_EQ_STR(x->result_json, y->result_json);
        CHECK(str_eq(x->timing_json, y->timing_json));
        CHECK_EQ_INT(x->kind, y->kind);
        CHECK_EQ_INT(x->has_anomaly, y->has_anomaly);
        CHECK(x->anomaly == y->anomaly);
        CHECK_EQ_INT(x->model_width, y->model_width);
        CHECK_EQ_INT(x->n_labels, y->n_labels);
        for (size_t k = 0; k < x->n_labels && k < y->n_labels; k++) {
            CHECK_EQ_STR(x->labels[k].label, y->labels[k].label);
            CHECK(x->labels[k].score == y->labels[k].score);
        }
        CHECK(str_eq(x->top_label, y->top_label));
        CHECK_EQ_INT(x->image.len, y->image.len);
        CHECK(x->image.len == y->image.len &&
              (x->image.len == 0 || memcmp(x->image.data, y->image.data, x->image.len) == 0));
    }
    if (check_failed != before) fprintf(stderr, "  ... while comparing %s\n", what);
}

static size_t count_boxes(const sink *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        for (const char *p = s->v[i]->result_json; (p = strstr(p, "\"height\":")); p++)
            n++;
    return n;
}

/* CRLF copy of an LF text. */
static char *to_crlf(const char *s, size_t len, size_t *out_len)
{
    char *o = malloc(len * 2 + 1);
    size_t k = 0;
    if (!o) return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n') o[k++] = '\r';
        o[k++] = s[i];
    }
    o[k] = '\0';
    *out_len = k;
    return o;
}

static void test_fixture(const char *name, size_t want, size_t want_boxes, sink *whole)
{
    size_t len = 0, crlf_len = 0;
    char *data = fixture_read("serial", name, &len), *crlf;
    static const size_t max_chunks[] = {1, 2, 3, 7, 16, 64, 333};
    memset(whole, 0, sizeof *whole);
    if (!data) return;
    run(data, len, 0, 0, whole, NULL);
    CHECK_EQ_INT(whole->n, want);
    CHECK_EQ_INT(count_boxes(whole), want_boxes);
    for (size_t i = 0; i < whole->n; i++) {
        CHECK_EQ_STR(whole->v[i]->device, "mcu");
        CHECK_EQ_STR(whole->v[i]->source, "serial0");
        CHECK_EQ_INT(whole->v[i]->ts, 42);
        CHECK_EQ_INT(strlen(whole->v[i]->guid), UTIL_UUID_LEN);
    }
    for (size_t m = 0; m < sizeof max_chunks / sizeof max_chunks[0]; m++) {
        for (uint32_t seed = 1; seed <= 4; seed++) {
            sink chunked;
            run(data, len, seed * 2654435761u, max_chunks[m], &chunked, NULL);
            check_same(whole, &chunked, name);
            sink_free(&chunked);
        }
    }
    crlf = to_crlf(data, len, &crlf_len);
    if (crlf) {
        sink a, b;
        run(crlf, crlf_len, 0, 0, &a, NULL);
        run(crlf, crlf_len, 7, 5, &b, NULL);
        check_same(whole, &a, "crlf whole");
        check_same(whole, &b, "crlf chunked");
        sink_free(&a);
        sink_free(&b);
    }
    free(crlf);
    free(data);
}

/* One inference a fixture must give, field by field (result and timing as exact JSON). */
typedef struct want_inf {
    inference_kind kind;
    const char *result;
    const char *timing; /* NULL: no timing line */
    size_t n_labels;
    const char *top; /* NULL: no label */
    double top_score;
    int has_anomaly;
    double anomaly;
} want_inf;

#define CLS INFERENCE_CLASSIFICATION
#define OD INFERENCE_OBJECT_DETECTION
#define VA INFERENCE_VISUAL_ANOMALY
#define T(dsp, cls, an) "{\"dsp\":" #dsp ",\"classification\":" #cls ",\"anomaly\":" #an "}"
#define TP(dsp, cls, an, post)                                                                     \
    "{\"dsp\":" #dsp ",\"classification\":" #cls ",\"anomaly\":" #an ",\"postprocessing\":" #post  \
    "}"
#define BOX(l, v, x, y, w, h)                                                                      \
    "{\"label\":\"" l "\",\"value\":" #v ",\"x\":" #x ",\"y\":" #y ",\"width\":" #w                \
    ",\"height\":" #h "}"

/* The inferences of each fixture of tests/fixtures/serial (see its README), in order. */
static const want_inf classic_cls[] = {
    {CLS,
     "{\"classification\":{\"fault\":0.003906,\"high\":0.019531,\"low\":0.964844,\"off\":0.011719},"
     "\"anomaly\":-0.24187}",
     T(21, 1, 2), 4, "low", 0.964844, 1, -0.24187},
    {CLS,
     "{\"classification\":{\"fault\":0.003906,\"high\":0.953125,\"low\":0.042969,\"off\":0},"
     "\"anomaly\":0.087512}",
     T(22, 1, 2), 4, "high", 0.953125, 1, 0.087512},
    {CLS,
     "{\"classification\":{\"fault\":0.980469,\"high\":0.015625,\"low\":0.003906,\"off\":0},"
     "\"anomaly\":1.734002}",
     T(21, 1, 3), 4, "fault", 0.980469, 1, 1.734002},
};
static const want_inf classic_od[] = {
    {OD,
     "{\"bounding_boxes\":[" BOX("forklift", 0.914062, 88, 40, 56, 64) "," BOX("pallet", 0.6875, 8,
                                                                               104, 48, 32) "]}",
     T(14, 402, 0), 2, "forklift", 0.914062, 0, 0},
    {INFERENCE_EMPTY, "{\"bounding_boxes\":[]}", T(14, 398, 0), 0, NULL, 0, 0, 0},
    {OD,
     "{\"bounding_boxes\":[" BOX("worker", 0.804688, 24, 16, 24, 72) "," BOX(
         "pallet", 0.738281, 72, 112, 48, 32) "," BOX("pallet", 0.527344, 120, 112, 32, 32) "]}",
     T(15, 401, 0), 2, "worker", 0.804688, 0, 0},
};
static const want_inf esp32[] = {
    {OD,
     "{\"bounding_boxes\":[" BOX("bird", 0.710938, 40, 24, 16, 16) "," BOX("bird", 0.566406, 8, 64,
                                                                           8, 8) "]}",
     T(9, 163, 0), 1, "bird", 0.710938, 0, 0},
    {INFERENCE_EMPTY, "{\"bounding_boxes\":[]}", T(9, 161, 0), 0, NULL, 0, 0, 0},
    {CLS, "{\"classification\":{\"door_closed\":0.13281,\"door_open\":0.86719},\"anomaly\":0.512}",
     T(8, 92, 1), 2, "door_open", 0.86719, 1, 0.512},
};
static const want_inf sdk[] = {
    {CLS, "{\"classification\":{\"dry\":0.0625,\"wet\":0.9375}}", T(3, 14, 0), 2, "wet", 0.9375, 0,
     0},
    {OD,
     "{\"bounding_boxes\":[" BOX("leak", 0.83984, 8, 48, 24, 16) "," BOX("drip", 0.51953, 64, 40,
                                                                         16, 16) "]}",
     TP(2, 9, 0, 0.12), 2, "leak", 0.83984, 0, 0},
    {INFERENCE_EMPTY, "{\"bounding_boxes\":[]}", T(2, 10, 0), 0, NULL, 0, 0, 0},
    /* "DSP 640 us", "anomaly 310 µs": microseconds become fractional milliseconds */
    {INFERENCE_ANOMALY, "{\"anomaly\":0.42188}", T(0.64, 2, 0.31), 0, NULL, 0, 1, 0.42188},
};
static const want_inf crlf_float[] = {
    {CLS, "{\"classification\":{\"circle\":0.82031,\"idle\":0.02734,\"swipe\":0.15234}}",
     T(1, 12.5, 0), 3, "circle", 0.82031, 0, 0},
    {CLS, "{\"classification\":{\"circle\":0.00391,\"idle\":0.98438,\"swipe\":0.01172}}",
     T(2.25, 12.75, 0), 3, "idle", 0.98438, 0, 0},
    {CLS, "{\"classification\":{\"circle\":0.08594,\"idle\":0,\"swipe\":0.91406}}", T(1, 12.5, 0),
     3, "swipe", 0.91406, 0, 0},
};
static const want_inf boot_noise[] = {
    {CLS, "{\"classification\":{\"horn\":0.01172,\"noise\":0.02734,\"siren\":0.96094}}",
     T(52, 7, 0), 3, "siren", 0.96094, 0, 0},
    /* its header came after bytes a reset left on the line */
    {CLS, "{\"classification\":{\"horn\":0.05078,\"noise\":0.91797,\"siren\":0.03125}}",
     T(51, 7, 0), 3, "noise", 0.91797, 0, 0},
    {CLS, "{\"classification\":{\"horn\":0.98828,\"noise\":0.00391,\"siren\":0.00781}}",
     T(52, 8, 0), 3, "horn", 0.98828, 0, 0},
};
static const want_inf regression[] = {
    {CLS, "{\"classification\":{\"value\":21.5}}", T(0, 0, 0), 1, "value", 21.5, 0, 0},
    {CLS, "{\"classification\":{\"value\":23.75}}", T(0, 0, 0), 1, "value", 23.75, 0, 0},
    {CLS, "{\"classification\":{\"value\":-4.125}}", T(0, 1, 0), 1, "value", -4.125, 0, 0},
};
static const want_inf visual_anomaly[] = {
    {VA,
     "{\"visual_anomaly_grid\":[" BOX("anomaly", 7.25, 0, 0, 16, 16) "," BOX(
         "anomaly", 6.5, 16, 0, 16, 16) "],\"visual_anomaly_max\":7.25,"
                                        "\"visual_anomaly_mean\":1.25}",
     T(3, 48, 6), 1, "anomaly", 7.25, 1, 7.25},
    {VA,
     "{\"visual_anomaly_grid\":[" BOX(
         "anomaly", 5.875, 32, 48, 16,
         16) "],"
             "\"visual_anomaly_max\":5.875,\"visual_anomaly_mean\":0.3125,\"anomaly\":5.875}",
     T(3, 47, 6), 1, "anomaly", 5.875, 1, 5.875},
    /* no cell over the threshold: the anomaly is the grid's max */
    {VA, "{\"visual_anomaly_grid\":[],\"visual_anomaly_max\":0.5,\"visual_anomaly_mean\":0.125}",
     T(3, 46, 6), 0, NULL, 0, 1, 0.5},
};
static const want_inf tracking[] = {
    {OD,
     "{\"bounding_boxes\":[" BOX("car", 1, 8, 16, 24, 16) "," BOX("bike", 0.5, 56, 40, 8, 16) "]}",
     T(4, 60, 0), 2, "car", 1, 0, 0},
    {OD, "{\"bounding_boxes\":[" BOX("car", 0.875, 12, 16, 24, 16) "]}", T(4, 61, 0), 1, "car",
     0.875, 0, 0},
    {INFERENCE_EMPTY, "{\"bounding_boxes\":[]}", T(4, 60, 0), 0, NULL, 0, 0, 0},
};
static const want_inf sections_only[] = {
    {CLS, "{\"classification\":{\"ok\":0.97266,\"worn\":0.02734}}", NULL, 2, "ok", 0.97266, 0, 0},
    {CLS, "{\"classification\":{\"ok\":0.10938,\"worn\":0.89063}}", NULL, 2, "worn", 0.89063, 0, 0},
    {CLS, "{\"classification\":{\"ok\":0.5,\"worn\":0.5}}", NULL, 2, "ok", 0.5, 0, 0},
};

/* the current SDK (v1.83+): "#"-prefixed headers */
static const want_inf sdk_current_cls[] = {
    {CLS,
     "{\"classification\":{\"idle\":0.996094,\"snake\":0,\"updown\":0.003906},\"anomaly\":-0.3125}",
     T(17, 1, 2), 3, "idle", 0.996094, 1, -0.3125},
    {CLS,
     "{\"classification\":{\"idle\":0.011719,\"snake\":0.976562,\"updown\":0.011719},"
     "\"anomaly\":0.25}",
     TP(16, 1, 2, 0.098), 3, "snake", 0.976562, 1, 0.25},
    {CLS,
     "{\"classification\":{\"idle\":0,\"snake\":0.054688,\"updown\":0.945312},\"anomaly\":1.4375}",
     T(17, 1, 2), 3, "updown", 0.945312, 1, 1.4375},
};
static const want_inf sdk_current_od[] = {
    {OD,
     "{\"bounding_boxes\":[" BOX("bottle", 0.867188, 24, 16, 16, 24) "," BOX("can", 0.632812, 56,
                                                                             48, 8, 16) "]}",
     TP(8, 112, 0, 0.245), 2, "bottle", 0.867188, 0, 0},
    {INFERENCE_EMPTY, "{\"bounding_boxes\":[]}", TP(8, 111, 0, 0.231), 0, NULL, 0, 0, 0},
    {OD, "{\"bounding_boxes\":[" BOX("can", 0.914062, 8, 64, 16, 16) "]}", TP(8, 112, 0, 0.24), 1,
     "can", 0.914062, 0, 0},
};
static const want_inf sdk_current_more[] = {
    {CLS, "{\"classification\":{\"value\":21.5}}", T(1, 0, 0), 1, "value", 21.5, 0, 0},
    {CLS, "{\"classification\":{\"value\":-3.25}}", T(1, 0, 0), 1, "value", -3.25, 0, 0},
    {VA,
     "{\"visual_anomaly_grid\":[" BOX("anomaly", 7.25, 0, 0, 16, 16) "," BOX(
         "anomaly", 6.5, 16, 0, 16, 16) "],\"visual_anomaly_max\":7.25,"
                                        "\"visual_anomaly_mean\":1.25}",
     T(3, 48, 6), 1, "anomaly", 7.25, 1, 7.25},
    {OD, "{\"bounding_boxes\":[" BOX("car", 1, 8, 16, 24, 16) "]}", T(4, 60, 0), 1, "car", 1, 0, 0},
    {INFERENCE_FREEFORM, "{\"freeform\":[[0.25,0.5,0.125],[1]]}", T(2, 30, 0), 0, NULL, 0, 0, 0},
};
static const want_inf debug_window[] = {
    {CLS, "{\"classification\":{\"empty\":0.011719,\"parcel\":0.976562,\"person\":0.011719}}",
     T(4, 37, 0), 3, "parcel", 0.976562, 0, 0},
    {CLS, "{\"classification\":{\"empty\":0,\"parcel\":0.0625,\"person\":0.9375}}", T(4, 38, 0), 3,
     "person", 0.9375, 0, 0},
    {CLS, "{\"classification\":{\"empty\":0.96875,\"parcel\":0.015625,\"person\":0.015625}}",
     T(4, 37, 0), 3, "empty", 0.96875, 0, 0},
};

#define WANT(a) a, sizeof a / sizeof a[0]

/* Every fixture: boxes and grid cells in all its inferences, the model size its "Image
 * resolution" line gives (0: none), and its inferences. */
static const struct fixture_want {
    const char *name;
    size_t boxes;
    int model_w, model_h;
    const want_inf *inf;
    size_t n;
} fixtures[] = {
    {"classic-classification.txt", 0, 0, 0, WANT(classic_cls)},
    {"classic-object-detection.txt", 5, 160, 160, WANT(classic_od)},
    {"esp32-camera.txt", 2, 0, 0, WANT(esp32)},
    {"sdk-timing.txt", 2, 0, 0, WANT(sdk)},
    {"crlf-float-timings.txt", 0, 0, 0, WANT(crlf_float)},
    {"boot-noise-garbage.txt", 0, 0, 0, WANT(boot_noise)},
    {"regression.txt", 0, 0, 0, WANT(regression)},
    {"visual-anomaly.txt", 3, 96, 96, WANT(visual_anomaly)},
    {"object-tracking.txt", 3, 96, 96, WANT(tracking)},
    {"sections-only.txt", 0, 0, 0, WANT(sections_only)},
    {"sdk-current-classification.txt", 0, 0, 0, WANT(sdk_current_cls)},
    {"sdk-current-object-detection.txt", 3, 96, 96, WANT(sdk_current_od)},
    {"sdk-current-more.txt", 3, 0, 0, WANT(sdk_current_more)},
    {"debug-window.txt", 0, 96, 96, WANT(debug_window)},
};

static void test_fixture_values(void)
{
    for (size_t f = 0; f < sizeof fixtures / sizeof fixtures[0]; f++) {
        const struct fixture_want *w = &fixtures[f];
        int before = check_failed;
        sink s;
        test_fixture(w->name, w->n, w->boxes, &s);
        for (size_t i = 0; i < s.n && i < w->n; i++) {
            const inference *got = s.v[i];
            const want_inf *want = &w->inf[i];
            CHECK_EQ_INT(got->kind, want->kind);
            CHECK_EQ_STR(got->result_json, want->result);
            CHECK(str_eq(got->timing_json, want->timing));
            CHECK_EQ_INT(got->n_labels, want->n_labels);
            CHECK(str_eq(got->top_label, want->top));
            CHECK(got->top_score == want->top_score);
            CHECK_EQ_INT(got->has_anomaly, want->has_anomaly);
            CHECK(got->anomaly == want->anomaly);
            CHECK_EQ_INT(got->model_width, w->model_w);
            CHECK_EQ_INT(got->model_height, w->model_h);
        }
        if (check_failed != before) fprintf(stderr, "  ... in fixture %s\n", w->name);
        sink_free(&s);
    }
}

/* Garbage bytes and a 100 KB line between two fixtures change neither's inferences. */
static void test_noise_between_blocks(void)
{
    size_t la = 0, lb = 0, n = 0;
    char *a = fixture_read("serial", "sdk-timing.txt", &la);
    char *b = fixture_read("serial", "classic-classification.txt", &lb);
    size_t big = 100 * 1024;
    char *all = malloc(la + lb + big + 4096);
    sink ref_a, ref_b, got, got2;
    serial_parser_counters st;
    uint32_t r = 99;
    if (!a || !b || !all) goto out;
    memcpy(all, a, la);
    n = la;
    for (int i = 0; i < 300; i++)
        all[n++] = (char)(rnd(&r) & 0xff);
    all[n++] = '\n';
    for (size_t i = 0; i < big; i++)
        all[n++] = (char)('a' + i % 26);
    all[n++] = '\n';
    const char *boot = "\xff\xfe\x01boot: rst:0x1 (POWERON)\n\n  \n";
    memcpy(all + n, boot, strlen(boot));
    n += strlen(boot);
    memcpy(all + n, b, lb);
    n += lb;

    run(a, la, 0, 0, &ref_a, NULL);
    run(b, lb, 0, 0, &ref_b, NULL);
    run(all, n, 0, 0, &got, &st);
    CHECK_EQ_INT(got.n, ref_a.n + ref_b.n);
    CHECK_EQ_INT(st.long_lines, 1);
    CHECK_EQ_INT(st.inferences, 7);
    if (got.n == ref_a.n + ref_b.n) {
        sink head = {.n = ref_a.n}, tail = {.n = ref_b.n};
        memcpy(head.v, got.v, ref_a.n * sizeof got.v[0]);
        memcpy(tail.v, got.v + ref_a.n, ref_b.n * sizeof got.v[0]);
        check_same(&ref_a, &head, "sdk before noise");
        check_same(&ref_b, &tail, "classic after noise");
    }
    run(all, n, 5, 97, &got2, NULL);
    check_same(&got, &got2, "noise stream chunked");
    sink_free(&ref_a);
    sink_free(&ref_b);
    sink_free(&got);
    sink_free(&got2);
out:
    free(a);
    free(b);
    free(all);
}

/* An over-long line inside a block ends it (emitted), and is never buffered. */
static void test_long_line_in_block(void)
{
    const char *head = "Predictions (DSP: 1 ms., Classification: 2 ms., Anomaly: 0 ms.):\n"
                       "#Classification results:\n    a: 0.25\n";
    const char *next = "\n    b: 0.5\nTiming: DSP 1 ms, inference 2 ms, anomaly 0 ms\n"
                       "Predictions:\n  c: 1\n";
    char *buf = malloc(8192);
    size_t n = 0;
    sink s;
    serial_parser_counters st;
    if (!buf) return;
    memcpy(buf, head, strlen(head));
    n = strlen(head);
    memset(buf + n, 'x', 5000);
    n += 5000;
    memcpy(buf + n, next, strlen(next));
    n += strlen(next);
    run(buf, n, 3, 11, &s, &st);
    CHECK_EQ_INT(s.n, 2);
    if (s.n == 2) {
        CHECK_EQ_STR(s.v[0]->result_json, "{\"classification\":{\"a\":0.25}}");
        CHECK_EQ_STR(s.v[1]->result_json, "{\"classification\":{\"c\":1}}");
        CHECK_EQ_STR(s.v[1]->timing_json, "{\"dsp\":1,\"classification\":2,\"anomaly\":0}");
    }
    CHECK_EQ_INT(st.long_lines, 1);
    CHECK_EQ_INT(st.noise_lines, 1); /* "b: 0.5" with no block open */
    sink_free(&s);
    free(buf);
}

static void test_float_timings_and_finish(void)
{
    /* float and unspaced timings, CRLF, and a last line without its newline */
    const char *t = "Predictions (DSP: 1.000000 ms., Classification: 0ms., Anomaly: 250 us):\r\n"
                    "#Classification results:\r\n    on: 0.75\r\n    off: 0.25\r\n"
                    "Anomaly prediction: 0.5";
    sink s;
    run(t, strlen(t), 0, 0, &s, NULL);
    CHECK_EQ_INT(s.n, 1);
    if (s.n == 1) {
        CHECK_EQ_STR(s.v[0]->timing_json, "{\"dsp\":1,\"classification\":0,\"anomaly\":0.25}");
        CHECK_EQ_STR(s.v[0]->result_json,
                     "{\"classification\":{\"on\":0.75,\"off\":0.25},\"anomaly\":0.5}");
    }
    sink_free(&s);
}

static void test_other_formats(void)
{
    const char *t =
        /* regression */
        "Predictions (DSP: 2 ms., Classification: 1 ms., Anomaly: 0 ms.):\n"
        "#Regression results:\n    value: 21.5\n"
        "Starting inferencing in 2 seconds...\n"
        /* visual anomaly grid */
        "Predictions (DSP: 3 ms., Classification: 40 ms., Anomaly: 5 ms.):\n"
        "#Visual anomaly grid results:\n"
        "    anomaly (7.250000) [ x: 0, y: 0, width: 16, height: 16 ]\n"
        "    anomaly (6.5) [ x: 16, y: 0, width: 16, height: 16 ]\n"
        "Visual anomaly values: Mean : 1.250 Max : 7.250\n"
        "-----------------------------------------------------\n"
        /* tracking, with and without a score */
        "Predictions (DSP: 3 ms., Classification: 40 ms., Anomaly: 0 ms.):\n"
        "#Object tracking results:\n"
        "  car (ID 3) [ x: 1, y: 2, width: 3, height: 4 ]\n"
        "  bike (ID 4) (0.5) [ x: 5, y: 6, width: 7, height: 8 ]\n"
        "Starting inferencing in 2 seconds...\n"
        /* newer SDK, no objects: the section header alone, then noise */
        "Timing: DSP 1 ms, inference 2 ms, anomaly 0 ms\n"
        "Object detection bounding boxes:\n"
        "Starting inferencing in 2 seconds...\n"
        /* a header with nothing after it is dropped */
        "Predictions (DSP: 1 ms., Classification: 2 ms., Anomaly: 0 ms.):\n"
        "Recording...\n";
    sink s;
    serial_parser_counters st;
    run(t, strlen(t), 0, 0, &s, &st);
    CHECK_EQ_INT(s.n, 4);
    CHECK_EQ_INT(st.empty_blocks, 1);
    if (s.n == 4) {
        CHECK_EQ_STR(s.v[0]->result_json, "{\"classification\":{\"value\":21.5}}");
        CHECK_EQ_INT(s.v[0]->kind, INFERENCE_CLASSIFICATION);
        CHECK_EQ_STR(s.v[1]->result_json,
                     "{\"visual_anomaly_grid\":[{\"label\":\"anomaly\",\"value\":7.25,\"x\":0,"
                     "\"y\":0,\"width\":16,\"height\":16},{\"label\":\"anomaly\",\"value\":6.5,"
                     "\"x\":16,\"y\":0,\"width\":16,\"height\":16}],\"visual_anomaly_max\":7.25,"
                     "\"visual_anomaly_mean\":1.25}");
        CHECK_EQ_INT(s.v[1]->kind, INFERENCE_VISUAL_ANOMALY);
        CHECK(s.v[1]->has_anomaly && s.v[1]->anomaly == 7.25);
        CHECK_EQ_STR(s.v[2]->result_json,
                     "{\"bounding_boxes\":[{\"label\":\"car\",\"value\":1,\"x\":1,\"y\":2,"
                     "\"width\":3,\"height\":4},{\"label\":\"bike\",\"value\":0.5,\"x\":5,\"y\":6,"
                     "\"width\":7,\"height\":8}]}");
        CHECK_EQ_INT(s.v[2]->kind, INFERENCE_OBJECT_DETECTION);
        CHECK_EQ_STR(s.v[3]->result_json, "{\"bounding_boxes\":[]}");
        CHECK_EQ_INT(s.v[3]->kind, INFERENCE_EMPTY);
    }
    sink_free(&s);
}

/* Header-less firmware: a repeated section header starts the next inference; bad result lines
 * (garbage label bytes, broken boxes) end the block instead of joining it. */
static void test_repeat_and_bad_lines(void)
{
    const char *t = "#Classification results:\n  a: 0.5\n"
                    "#Classification results:\n  a: 0.25\n"
                    "  \xff\xfe: 0.5\n"
                    "  b: 0.75\n"
                    "Predictions (DSP: 1 ms., Classification: 2 ms., Anomaly: 0 ms.):\n"
                    "  box (0.5) [ x: 1, y: 2, width: 3 ]\n";
    sink s;
    serial_parser_counters st;
    run(t, strlen(t), 0, 0, &s, &st);
    CHECK_EQ_INT(s.n, 2);
    if (s.n == 2) {
        CHECK_EQ_STR(s.v[0]->result_json, "{\"classification\":{\"a\":0.5}}");
        CHECK_EQ_STR(s.v[1]->result_json, "{\"classification\":{\"a\":0.25}}");
        CHECK(s.v[1]->timing_json == NULL);
    }
    CHECK_EQ_INT(st.empty_blocks, 1);
    sink_free(&s);
}

static void test_create_and_args(void)
{
    serial_parser *p = NULL;
    er_err err = {{0}};
    serial_parser_opts o = test_opts;
    sink s = {.n = 0};
    o.max_line = 10;
    CHECK_EQ_INT(serial_parser_create(&o, &p, &err), ER_CONFIG);
    CHECK(p == NULL);
    CHECK(strstr(err.msg, "max line") != NULL);
    o.max_line = SERIAL_PARSE_LINE_MIN;
    CHECK_EQ_INT(serial_parser_create(&o, &p, &err), ER_OK);
    CHECK_EQ_INT(serial_parser_feed(p, NULL, 3, collect, &s), ER_INVALID);
    CHECK_EQ_INT(serial_parser_feed(p, (const uint8_t *)"x", 1, NULL, &s), ER_INVALID);
    /* flush emits the open block without waiting for the next line; the partial line stays */
    const char *t = "Timing: DSP 1 ms, inference 2 ms, anomaly 0 ms\nAnomaly prediction: 1.5\n  a";
    CHECK_EQ_INT(serial_parser_feed(p, (const uint8_t *)t, strlen(t), collect, &s), ER_OK);
    CHECK_EQ_INT(s.n, 0);
    CHECK_EQ_INT(serial_parser_flush(p, collect, &s), ER_OK);
    CHECK_EQ_INT(s.n, 1);
    CHECK_EQ_INT(serial_parser_finish(p, collect, &s), ER_OK);
    CHECK_EQ_INT(s.n, 1); /* "  a" alone is noise */
    sink_free(&s);
    serial_parser_destroy(p);
    serial_parser_destroy(NULL);
}

/* The debug fixture's snapshots are the JPEG files it was written from, byte for byte; the one
 * that is no base64 JPEG leaves its result without an image. */
static void test_debug_images(void)
{
    static const char *const files[] = {"belt-parcel-centre.jpg", "belt-person.jpg", NULL};
    size_t len = 0;
    char *data = fixture_read("serial", "debug-window.txt", &len);
    sink s;
    serial_parser_counters st;
    if (!data) return;
    run(data, len, 9, 5, &s, &st);
    CHECK_EQ_INT(s.n, 3);
    CHECK_EQ_INT(st.images, 2);
    CHECK_EQ_INT(st.bad_images, 1);
    CHECK_EQ_INT(st.long_lines, 0);
    for (size_t i = 0; i < s.n && i < 3; i++) {
        size_t jl = 0;
        char *jpeg = files[i] ? fixture_read("images", files[i], &jl) : NULL;
        CHECK_EQ_INT(s.v[i]->image.len, jl);
        if (jpeg && s.v[i]->image.len == jl) {
            CHECK(memcmp(s.v[i]->image.data, jpeg, jl) == 0);
            CHECK_EQ_STR(s.v[i]->image.mime, "image/jpeg");
            CHECK_EQ_INT(s.v[i]->image.width, 96);
            CHECK_EQ_INT(s.v[i]->image.height, 96);
        }
        free(jpeg);
    }
    sink_free(&s);
    free(data);
}

/* A Framebuffer line of ~400 KB (a JPEG padded with comment segments) passes the 1 KB line
 * limit and gives the model size; over max_framebuffer it is skipped and the result kept. */
static void test_big_framebuffer(void)
{
    size_t jl = 0, big_len = 0, text_len = 0;
    char *jpeg = fixture_read("images", "belt-empty.jpg", &jl);
    uint8_t *big = NULL;
    char *text = NULL;
    sink s;
    serial_parser_counters st;
    serial_parser *p = NULL;
    er_err err;
    if (!jpeg) return;
    big = malloc(jl + 5 * 60004);
    if (!big) goto out;
    memcpy(big, jpeg, 2); /* SOI */
    big_len = 2;
    for (int i = 0; i < 5; i++) { /* COM segments before the frame header */
        big[big_len++] = 0xFF;
        big[big_len++] = 0xFE;
        big[big_len++] = 60002 >> 8;
        big[big_len++] = 60002 & 0xFF;
        memset(big + big_len, 'c', 60000);
        big_len += 60000;
    }
    memcpy(big + big_len, jpeg + 2, jl - 2);
    big_len += jl - 2;
    const char *head = "Begin output\r\nFramebuffer: ";
    const char *tail = "\r\nTiming: DSP 1 ms, inference 2 ms, anomaly 0 ms\r\n"
                       "#Classification predictions:\r\n  a: 1.0\r\n----\r\nEnd output\r\n";
    text = malloc(strlen(head) + util_b64_encoded_len(big_len) + strlen(tail) + 1);
    if (!text) goto out;
    strcpy(text, head);
    util_b64_encode(big, big_len, text + strlen(head));
    strcat(text, tail);
    text_len = strlen(text);
    run(text, text_len, 3, 5000, &s, &st);
    CHECK_EQ_INT(s.n, 1);
    CHECK_EQ_INT(st.long_lines, 0);
    if (s.n == 1) {
        CHECK_EQ_INT(s.v[0]->image.len, big_len);
        CHECK(s.v[0]->image.len == big_len && memcmp(s.v[0]->image.data, big, big_len) == 0);
        CHECK_EQ_INT(s.v[0]->model_width, 96);
        CHECK_EQ_INT(s.v[0]->model_height, 96);
    }
    sink_free(&s);

    /* a limit below the line: skipped, never buffered past it, the result stays */
    serial_parser_opts o = test_opts;
    o.max_framebuffer = 64 * 1024;
    CHECK_EQ_INT(serial_parser_create(&o, &p, &err), ER_OK);
    memset(&s, 0, sizeof s);
    for (size_t off = 0; p && off < text_len; off += 4096) {
        size_t k = text_len - off < 4096 ? text_len - off : 4096;
        CHECK_EQ_INT(serial_parser_feed(p, (const uint8_t *)text + off, k, collect, &s), ER_OK);
    }
    if (p) {
        CHECK_EQ_INT(serial_parser_finish(p, collect, &s), ER_OK);
        serial_parser_counters_get(p, &st);
        CHECK_EQ_INT(st.long_lines, 1);
        CHECK_EQ_INT(s.n, 1);
        if (s.n == 1) CHECK(s.v[0]->image.data == NULL);
    }
    serial_parser_destroy(p);
    sink_free(&s);
    o.max_framebuffer = 100; /* below max_line */
    CHECK_EQ_INT(serial_parser_create(&o, &p, &err), ER_CONFIG);
out:
    free(text);
    free(big);
    free(jpeg);
}

/* A stream cut off mid-window (a device unplugged) stores nothing of it; the next stream parses
 * as new. */
static void test_abort(void)
{
    const char *cut =
        "Timing: DSP 1 ms, inference 2 ms, anomaly 0 ms\n#Classification predictions:\n"
        "  a: 0.5\n  b: 0.";
    const char *next = "  c: 0.25\nTiming: DSP 1 ms, inference 2 ms, anomaly 0 ms\n"
                       "#Classification predictions:\n  a: 1\n";
    serial_parser *p = NULL;
    serial_parser_counters st;
    er_err err;
    sink s = {.n = 0};
    CHECK_EQ_INT(serial_parser_create(&test_opts, &p, &err), ER_OK);
    if (!p) return;
    CHECK_EQ_INT(serial_parser_feed(p, (const uint8_t *)cut, strlen(cut), collect, &s), ER_OK);
    serial_parser_abort(p);
    CHECK_EQ_INT(s.n, 0);
    serial_parser_counters_get(p, &st);
    CHECK_EQ_INT(st.dropped, 1);
    CHECK_EQ_INT(serial_parser_feed(p, (const uint8_t *)next, strlen(next), collect, &s), ER_OK);
    CHECK_EQ_INT(serial_parser_finish(p, collect, &s), ER_OK);
    CHECK_EQ_INT(s.n, 1);
    if (s.n == 1) CHECK_EQ_STR(s.v[0]->result_json, "{\"classification\":{\"a\":1}}");
    sink_free(&s);
    serial_parser_destroy(p);
    serial_parser_abort(NULL);
}

int main(void)
{
    test_abort();
    test_fixture_values();
    test_noise_between_blocks();
    test_long_line_in_block();
    test_float_timings_and_finish();
    test_other_formats();
    test_repeat_and_bad_lines();
    test_create_and_args();
    test_debug_images();
    test_big_framebuffer();
    return check_summary();
}
