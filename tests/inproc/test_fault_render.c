/* test_fault_render.c - fault injection (support/fault.h, as test_fault.c) on the paths that
 * render or read JSON outside the store: the inference view (REST and live stream), the IoT
 * Core message (its single pass and its cJSON way), the runner-ws message layer, the live
 * stream's client messages and the serial parser.
 *
 * Each case runs once without a fault (the reference), then once failing the N-th allocation
 * for N = 1, 2, ... until a run no longer reaches N. A run must end in the reference exactly or
 * in a clean out-of-memory answer that leaves nothing behind:
 *   view, message    the whole text or ER_NOMEM with nothing appended (never a text without a
 *                    member: the old ignored cJSON_AddItemToObject results dropped fields);
 *   runner_msg       ER_NOMEM never reported as malformed; a message answered ER_NOMEM is
 *                    handed again (as runner_ws does) and the run then gives the reference:
 *                    the same inferences, frames paired, model info and counters;
 *   live_proto       the reference parse or ER_NOMEM (never ER_INVALID/ER_SHAPE);
 *   serial_parse     the inferences emitted are reference inferences, whole, in order; a block
 *                    lost to the fault is counted as dropped.
 * Leaks: the sanitizer build's LeakSanitizer at exit. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "fault.h"
#include "fixture.h"

#include "core/log.h"
#include "core/util.h"
#include "live/live_proto.h"
#include "model/message.h"
#include "model/view.h"
#include "sources/runner_msg.h"
#include "sources/serial_parse.h"

#define MAX_N 100000 /* never reached: each case needs a few hundred allocations */

/* ---- what a case produced: a text (malloc'd), or NULL with its code ---- */

typedef char *(*case_fn)(er_rc *rc);

/* Appends "what value" to a test-side buffer without counting it as the product's. */
static void note_line(util_buf *b, const char *what, const char *s, const char *end)
{
    fault_pause(true);
    util_buf_printf(b, "%s %s%s", what, s ? s : "(null)", end);
    fault_pause(false);
}

/* One inference as text: every field the product fills (the guid and ts of a parser aside). */
static void describe(util_buf *b, const inference *inf)
{
    fault_pause(true);
    util_buf_printf(b,
                    "kind=%d result=%s timing=%s info=%s top=%s/%g anomaly=%d/%g model=%dx%d"
                    " image=%zu/%s/%dx%d labels=%zu\n",
                    (int)inf->kind, inf->result_json ? inf->result_json : "-",
                    inf->timing_json ? inf->timing_json : "-",
                    inf->info_json ? inf->info_json : "-", inf->top_label ? inf->top_label : "-",
                    inf->top_score, inf->has_anomaly, inf->anomaly, inf->model_width,
                    inf->model_height, inf->image.len, inf->image.mime, inf->image.width,
                    inf->image.height, inf->n_labels);
    fault_pause(false);
}

/* ---- the inference the view and message cases render ---- */

static inference *g_inf;

static inference *make_inference(const char *info_json)
{
    static const uint8_t bytes[] = {0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4, 5, 6, 7, 8, 0xFF, 0xD9};
    inference *inf = inference_create();
    if (!inf) return NULL;
    snprintf(inf->guid, sizeof inf->guid, "6f1c2d3e-4b5a-4c6d-8e7f-000000000001");
    inf->ts = 1736016142000;
    inf->seq = 7;
    inf->kind = INFERENCE_CLASSIFICATION;
    inf->has_anomaly = 1;
    inf->anomaly = 0.5;
    inf->model_width = 96;
    inf->model_height = 96;
    inf->publish = INFERENCE_PUBLISH_PENDING;
    inf->image.data = malloc(sizeof bytes);
    bool ok = inf->image.data && !inference_set_str(&inf->device, "dev_0242ac110002") &&
              !inference_set_str(&inf->source, "http") &&
              !inference_set_str(&inf->result_json,
                                 "{\"classification\":{\"cat\":0.75,\"dog\":0.25},\"anomaly\":0.5,"
                                 "\"visual_anomaly_max\":0.5}") &&
              !inference_set_str(&inf->timing_json, "{\"dsp\":1,\"classification\":2}") &&
              !inference_set_str(&inf->info_json, info_json) &&
              !inference_add_label(inf, "cat", 0.75) && !inference_add_label(inf, "dog", 0.25);
    if (ok) {
        memcpy(inf->image.data, bytes, sizeof bytes);
        inf->image.len = sizeof bytes;
        strcpy(inf->image.mime, "image/jpeg");
        inf->image.width = inf->image.height = 32;
    }
    if (!ok) {
        inference_destroy(inf);
        return NULL;
    }
    return inf;
}

/* The REST view (the ingest answer: seq and ts set after the commit) and the live stream's. */
static char *case_view(er_rc *rc)
{
    cJSON *v = view_inference(g_inf);
    char *text = v && view_set_stored(v, 42, 1736016142999) ? cJSON_PrintUnformatted(v) : NULL;
    cJSON_Delete(v);
    *rc = text ? ER_OK : ER_NOMEM;
    return text;
}

/* The ingest answer rendered without a tree: the same text as case_view. */
static char *case_view_text(er_rc *rc)
{
    char *tail = view_render_tail(g_inf);
    char *text = tail ? view_render(g_inf->guid, 42, 1736016142999, tail) : NULL;
    free(tail);
    *rc = text ? ER_OK : ER_NOMEM;
    return text;
}

static char *message_with(const message_opts *o, bool cjson_way)
{
    util_buf out = {0};
    er_rc rc = cjson_way ? message_inference_json_cjson(g_inf, o, &out)
                         : message_inference_json(g_inf, o, &out);
    if (rc) {
        CHECK_EQ_INT(out.len, 0); /* nothing half-appended */
        util_buf_free(&out);
        return NULL;
    }
    return out.data;
}

/* The forwarder's message; g_inf's info is not canonical text in the fallback runs, so
 * message_inference_json takes the cJSON way there. */
static char *case_message(er_rc *rc)
{
    message_opts o = {.include_image = true, .s3_bucket = "bucket", .image_omitted = true};
    char *text = message_with(&o, false);
    *rc = text ? ER_OK : ER_NOMEM;
    return text;
}

/* guid-file export's message, the cJSON way with every member it may move */
static char *case_message_full(er_rc *rc)
{
    message_opts o = {.include_image = true, .full_fidelity = true};
    char *text = message_with(&o, true);
    *rc = text ? ER_OK : ER_NOMEM;
    return text;
}

/* ---- runner-ws messages ---- */

static char *g_runner_msgs[3]; /* hello, camera-preview, classification */

static void runner_emit(void *arg, inference *inf)
{
    describe(arg, inf);
    inference_destroy(inf);
}

static char *case_runner(er_rc *rc)
{
    runner_session_opts o = {.source = "cam", .device = "pi", .want_images = true};
    runner_session *s = NULL;
    util_buf b = {0};
    *rc = runner_session_create(&o, &s);
    for (size_t i = 0; *rc == ER_OK && i < 3; i++) {
        er_err err = {{0}};
        const char *m = g_runner_msgs[i];
        /* out of memory: handed again, as runner_ws does (the fault is transient) */
        for (int tries = 0; tries < 2; tries++) {
            *rc = runner_session_on_message(s, m, strlen(m), runner_emit, &b, &err);
            if (*rc != ER_NOMEM) break;
        }
        if (*rc) {
            fprintf(stderr, "runner message %zu: %s (%s)\n", i, er_rc_name(*rc), err.msg);
            check_failed++;
        }
    }
    if (*rc == ER_OK) {
        runner_session_counters c;
        runner_session_counters_get(s, &c);
        note_line(&b, "model", runner_session_model_info(s), "\n");
        fault_pause(true);
        util_buf_printf(&b, "messages=%llu inferences=%llu frames=%llu/%llu/%llu rejected=%llu\n",
                        (unsigned long long)c.messages, (unsigned long long)c.inferences,
                        (unsigned long long)c.frames, (unsigned long long)c.frames_paired,
                        (unsigned long long)c.frames_unpaired, (unsigned long long)c.rejected);
        fault_pause(false);
    }
    runner_session_destroy(s);
    if (*rc) {
        util_buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* ---- the live stream's client messages ---- */

static char *case_live(er_rc *rc)
{
    static const char *const msgs[] = {
        ("{\"type\":\"auth\",\"token\":\"0123456789abcdef\",\"since_seq\":5,"
         "\"filter\":{\"labels\":[\"cat\",\"dog\"],\"min_score\":0.5,\"sources\":[\"cam\"]}}"),
        "{\"type\":\"subscribe\",\"labels\":[\"cat\"],\"sources\":[\"http\",\"cam\"]}",
        "{\"type\":\"ping\",\"id\":{\"n\":[1,2,{\"k\":\"v\"}]}}",
    };
    util_buf b = {0};
    *rc = ER_OK;
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        live_msg m;
        er_err err = {{0}};
        er_rc r = live_msg_parse(msgs[i], strlen(msgs[i]), &m, &err);
        bool parsed = r == ER_OK;
        cJSON *f = parsed ? live_filter_to_json(&m.filter) : NULL;
        char *ft = f ? cJSON_PrintUnformatted(f) : NULL;
        if (r == ER_OK && !ft) r = ER_NOMEM; /* the subscribed answer: not made */
        if (r == ER_OK) {
            note_line(&b, "token", m.token, " ");
            note_line(&b, "ping", m.ping_id, " ");
            note_line(&b, "filter", ft, "\n");
        } else if (r != ER_NOMEM) {
            fprintf(stderr, "live message %zu: %s (%s)\n", i, er_rc_name(r), err.msg);
            check_failed++;
        }
        if (r) *rc = r;
        free(ft);
        cJSON_Delete(f);
        if (parsed) live_msg_free(&m);
    }
    if (*rc) {
        util_buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* ---- the serial parser: its output checked line by line against the reference ---- */

static const char *const g_serial_fixtures[] = {"classic-classification.txt",
                                                "classic-object-detection.txt",
                                                "visual-anomaly.txt", "regression.txt"};
static char *g_serial_text;

static void serial_emit(void *arg, inference *inf)
{
    describe(arg, inf);
    inference_destroy(inf);
}

static char *case_serial(er_rc *rc)
{
    serial_parser_opts o = {.device = "board", .source = "serial"};
    serial_parser *p = NULL;
    util_buf b = {0};
    *rc = serial_parser_create(&o, &p, NULL);
    if (*rc == ER_OK) {
        er_rc f = serial_parser_feed(p, (const uint8_t *)g_serial_text, strlen(g_serial_text),
                                     serial_emit, &b);
        er_rc e = serial_parser_finish(p, serial_emit, &b);
        serial_parser_counters c;
        serial_parser_counters_get(p, &c);
        /* a dropped block is said: ER_NOMEM and counted */
        if ((f || e) && c.dropped == 0) {
            fprintf(stderr, "serial: %s without a dropped block\n", er_rc_name(f ? f : e));
            check_failed++;
        }
        *rc = f ? f : e;
    }
    serial_parser_destroy(p);
    if (*rc == ER_NOMEM && b.data) {
        return b.data; /* checked as a subsequence of the reference */
    }
    if (*rc) {
        util_buf_free(&b);
        return NULL;
    }
    return b.data ? b.data : strdup("");
}

/* true when every line of part is a line of whole, in order */
static bool lines_in_order(const char *part, const char *whole)
{
    const char *w = whole;
    for (const char *p = part; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        const char *at = w;
        while (at && strncmp(at, p, n) != 0) {
            at = strchr(at, '\n');
            if (at) at++;
            if (at && !*at) at = NULL;
        }
        if (!at) return false;
        w = at + n;
        p += n;
    }
    return true;
}

/* ---- the loop over N ---- */

static void run_case(const char *name, case_fn fn, bool partial_ok)
{
    er_rc rc = ER_OK;
    char *ref = fn(&rc);
    CHECK_EQ_INT(rc, ER_OK);
    if (!ref) return;
    long n, events = 0;
    bool done = false;
    int fails = check_failed;
    for (n = 1; n <= MAX_N && !done && check_failed - fails < 5; n++) {
        fault_arm(FAULT_ALLOC, n);
        char *got = fn(&rc);
        long counted = fault_disarm();
        done = !fault_hit();
        if (done) events = counted;
        bool ok;
        if (rc == ER_OK)
            ok = got && strcmp(got, ref) == 0;
        else if (rc == ER_NOMEM)
            ok = !got || (partial_ok && lines_in_order(got, ref));
        else
            ok = false;
        if (!ok) {
            check_failed++;
            fprintf(stderr, "%s N=%ld: %s\n  got  %s\n  want %s\n", name, n, er_rc_name(rc),
                    got ? got : "(nothing)", ref);
        } else {
            check_passed++;
        }
        free(got);
    }
    printf("%s: %ld allocations in a run without fault; runs failing N = 1..%ld\n", name, events,
           n - 1);
    fflush(stdout);
    CHECK(done);
    free(ref);
}

/* The fixture's server messages of each type, in the session's order. */
static bool load_runner_msgs(void)
{
    static const char *const types[] = {"hello", "camera-preview", "classification"};
    char *text = fixture_read("runner-ws", "classification.jsonl", NULL);
    if (!text) return false;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *doc = cJSON_Parse(line);
        const cJSON *msg = cJSON_GetObjectItem(doc, "msg");
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(msg, "type"));
        for (size_t i = 0; type && i < 3; i++)
            if (!g_runner_msgs[i] && strcmp(type, types[i]) == 0 &&
                (i == 0 || g_runner_msgs[i - 1]))
                g_runner_msgs[i] = cJSON_PrintUnformatted(msg);
        cJSON_Delete(doc);
    }
    free(text);
    return g_runner_msgs[0] && g_runner_msgs[1] && g_runner_msgs[2];
}

static bool load_serial(void)
{
    util_buf b = {0};
    for (size_t i = 0; i < sizeof g_serial_fixtures / sizeof g_serial_fixtures[0]; i++) {
        char *t = fixture_read("serial", g_serial_fixtures[i], NULL);
        if (!t || util_buf_printf(&b, "%s\n", t)) {
            free(t);
            util_buf_free(&b);
            return false;
        }
        free(t);
    }
    g_serial_text = b.data;
    return true;
}

int main(void)
{
    if (!fault_install()) return 1;
    log_set_level((log_level)(LOG_ERROR + 1)); /* none */
    CHECK(load_runner_msgs());
    CHECK(load_serial());

    g_inf = make_inference("\"fault run\"");
    CHECK(g_inf != NULL);
    if (g_inf) {
        run_case("view", case_view, false);
        run_case("view-text", case_view_text, false);
        er_rc rc1, rc2;
        char *tree = case_view(&rc1), *text = case_view_text(&rc2);
        CHECK_EQ_STR(text, tree);
        free(tree);
        free(text);
        run_case("message", case_message, false);
        run_case("message-full", case_message_full, false);
        inference_destroy(g_inf);
    }
    /* stored text cJSON does not print this way: message_inference_json falls back */
    g_inf = make_inference("{\"a\": [1, 2]}");
    CHECK(g_inf != NULL);
    if (g_inf) {
        run_case("message-fallback", case_message, false);
        inference_destroy(g_inf);
    }
    if (g_runner_msgs[2]) run_case("runner", case_runner, false);
    run_case("live", case_live, false);
    if (g_serial_text) run_case("serial", case_serial, true);

    for (size_t i = 0; i < 3; i++)
        free(g_runner_msgs[i]);
    free(g_serial_text);
    return check_summary();
}
