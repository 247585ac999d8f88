/* api_sources.c - see api_sources.h. */
#include "http/api_sources.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "sources/sources.h"

/* model: the runner's hello as JSON object text (borrowed), NULL when none. */
static bool add_source(cJSON *arr, const sources_status *s, const char *model)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(o);
        return false;
    }
    bool ok = cJSON_AddStringToObject(o, "name", s->name) != NULL;
    ok = ok && cJSON_AddStringToObject(o, "kind", s->kind) != NULL;
    ok = ok && cJSON_AddStringToObject(o, "state", s->state) != NULL;
    ok = ok && (s->last_error[0] ? cJSON_AddStringToObject(o, "last_error", s->last_error) != NULL
                                 : cJSON_AddNullToObject(o, "last_error") != NULL);
    bool serial = strcmp(s->kind, "serial") == 0, runner = strcmp(s->kind, "runner-ws") == 0;
    const struct {
        const char *name;
        uint64_t v;
        bool shown; /* each kind shows the counters it keeps */
    } nums[] = {{"inferences", s->inferences, true},
                {"reconnects", s->reconnects, true},
                {"backoff_ms", (uint64_t)s->backoff_ms, true},
                {"bytes", s->bytes, serial},
                {"lines", s->lines, serial},
                {"long_lines", s->long_lines, serial},
                {"noise_lines", s->noise_lines, serial},
                {"empty_blocks", s->empty_blocks, serial},
                {"dropped", s->dropped, serial},
                {"messages", s->messages, runner},
                {"frames", s->frames, runner},
                {"frames_paired", s->frames_paired, runner},
                {"unknown", s->unknown, runner},
                {"rejected", s->rejected, runner}};
    for (size_t i = 0; ok && i < sizeof nums / sizeof nums[0]; i++)
        if (nums[i].shown) ok = cJSON_AddNumberToObject(o, nums[i].name, (double)nums[i].v) != NULL;
    if (ok && runner) { /* the hello's model info: null until the runner said hello */
        cJSON *m = model ? cJSON_Parse(model) : cJSON_CreateNull();
        ok = m && cJSON_AddItemToObject(o, "model", m);
        if (!ok) cJSON_Delete(m);
    }
    return ok;
}

enum MHD_Result http_api_sources(http_req *r)
{
    static const char *const allowed[] = {NULL};
    enum MHD_Result ret;
    if (!http_query_check(r, allowed, &ret)) return ret;
    sources *src = r->srv->deps.src;
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = o ? cJSON_AddArrayToObject(o, "sources") : NULL;
    bool ok = arr != NULL;
    for (size_t i = 0; ok && i < sources_count(src); i++) {
        sources_status s;
        char *model = NULL;
        if (sources_status_get(src, i, &s) == ER_OK &&
            sources_model_info_get(src, i, &model) == ER_OK)
            ok = add_source(arr, &s, model);
        free(model);
    }
    if (!ok) {
        cJSON_Delete(o);
        return http_reply_error(r, 500, "internal", "out of memory rendering the sources");
    }
    return http_reply_cjson(r, 200, o);
}

/* ---- /metrics ---- */

#define METRIC_UP SIZE_MAX /* the off of ei_relay_source_up: derived from the state */

/* One metric name. off is the offset of its uint64_t counter in sources_status; kind NULL
 * means every source has it. */
static const struct {
    const char *name, *type, *help, *kind;
    size_t off;
} source_metrics[] = {
    {"ei_relay_source_up", "gauge", "1 while the source is running (input open or connected).",
     NULL, METRIC_UP},
    {"ei_relay_source_inferences_total", "counter", "Inferences the source produced.", NULL,
     offsetof(sources_status, inferences)},
    {"ei_relay_source_reconnects_total", "counter", "Times the source reopened its input.", NULL,
     offsetof(sources_status, reconnects)},
    {"ei_relay_source_bytes_total", "counter", "Bytes read by a serial source.", "serial",
     offsetof(sources_status, bytes)},
    {"ei_relay_source_lines_total", "counter", "Lines read by a serial source.", "serial",
     offsetof(sources_status, lines)},
    {"ei_relay_source_long_lines_total", "counter", "Over-long lines a serial source discarded.",
     "serial", offsetof(sources_status, long_lines)},
    {"ei_relay_source_noise_lines_total", "counter",
     "Lines of a serial source that belonged to no inference (banners, garbage).", "serial",
     offsetof(sources_status, noise_lines)},
    {"ei_relay_source_empty_blocks_total", "counter",
     "Inference headers of a serial source with no result after them.", "serial",
     offsetof(sources_status, empty_blocks)},
    {"ei_relay_source_dropped_total", "counter",
     "Results of a serial source lost to limits or lack of memory.", "serial",
     offsetof(sources_status, dropped)},
    {"ei_relay_source_messages_total", "counter", "Messages received from the runner.", "runner-ws",
     offsetof(sources_status, messages)},
    {"ei_relay_source_frames_total", "counter", "Camera preview frames received from the runner.",
     "runner-ws", offsetof(sources_status, frames)},
    {"ei_relay_source_frames_paired_total", "counter",
     "Camera preview frames stored with their inference.", "runner-ws",
     offsetof(sources_status, frames_paired)},
    {"ei_relay_source_unknown_total", "counter", "Runner messages of an unknown type.", "runner-ws",
     offsetof(sources_status, unknown)},
    {"ei_relay_source_rejected_total", "counter", "Runner messages rejected as malformed.",
     "runner-ws", offsetof(sources_status, rejected)},
};

/* A label value as the text format wants it: backslash, double quote and newline escaped. */
static er_rc label_value(util_buf *b, const char *s)
{
    er_rc rc = ER_OK;
    const char *run = s; /* start of the bytes not yet copied */
    for (; rc == ER_OK && *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (!esc) continue;
        rc = util_buf_append(b, run, (size_t)(s - run));
        if (rc == ER_OK) rc = util_buf_append(b, esc, 2);
        run = s + 1;
    }
    if (rc == ER_OK) rc = util_buf_append(b, run, (size_t)(s - run));
    return rc;
}

er_rc http_sources_metrics(http_req *r, util_buf *b)
{
    er_rc rc = ER_OK;
    sources *src = r->srv->deps.src;
    size_t n = sources_count(src);
    if (n == 0) return ER_OK;
    /* One snapshot for every metric, so the series of one scrape agree with each other. */
    sources_status *all = calloc(n, sizeof *all);
    if (!all) return ER_NOMEM;
    size_t got = 0;
    for (size_t i = 0; i < n; i++)
        if (sources_status_get(src, i, &all[got]) == ER_OK) got++;
    for (size_t m = 0; rc == ER_OK && m < sizeof source_metrics / sizeof source_metrics[0]; m++) {
        bool head = false;
        for (size_t i = 0; rc == ER_OK && i < got; i++) {
            const sources_status *s = &all[i];
            if (source_metrics[m].kind && strcmp(source_metrics[m].kind, s->kind) != 0) continue;
            uint64_t v;
            if (source_metrics[m].off == METRIC_UP)
                v = strcmp(s->state, "running") == 0;
            else
                memcpy(&v, (const char *)s + source_metrics[m].off, sizeof v);
            if (!head) {
                rc = util_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", source_metrics[m].name,
                                     source_metrics[m].help, source_metrics[m].name,
                                     source_metrics[m].type);
                head = true;
            }
            if (rc == ER_OK) rc = util_buf_printf(b, "%s{source=\"", source_metrics[m].name);
            if (rc == ER_OK) rc = label_value(b, s->name);
            if (rc == ER_OK) rc = util_buf_printf(b, "\",kind=\"");
            if (rc == ER_OK) rc = label_value(b, s->kind);
            if (rc == ER_OK) rc = util_buf_printf(b, "\"} %llu\n", (unsigned long long)v);
        }
    }
    free(all);
    return rc;
}
