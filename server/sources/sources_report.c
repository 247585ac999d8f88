/* sources_report.c - the sources' report part (sources_report in sources.h): the ONE writer of
 * their status object for GET /api/v1/sources and of their ei_relay_source_* series. Both walk
 * the counters table below over one snapshot of every source's status. */
#include "sources/sources.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/prom.h"

/* The counters a source keeps, for GET /api/v1/sources ("<name>") and /metrics
 * ("ei_relay_source_<name>_total"): each at its offset in sources_status; kind NULL = every
 * kind keeps it, otherwise only that kind shows it. */
static const struct {
    const char *name, *kind, *help;
    size_t off;
} counters[] = {
    {"inferences", NULL, "Inferences the source produced.", offsetof(sources_status, inferences)},
    {"reconnects", NULL, "Times the source reopened its input.",
     offsetof(sources_status, reconnects)},
    {"bytes", "serial", "Bytes read by a serial source.", offsetof(sources_status, bytes)},
    {"lines", "serial", "Lines read by a serial source.", offsetof(sources_status, lines)},
    {"long_lines", "serial", "Over-long lines a serial source discarded.",
     offsetof(sources_status, long_lines)},
    {"noise_lines", "serial",
     "Lines of a serial source that belonged to no inference (banners, garbage).",
     offsetof(sources_status, noise_lines)},
    {"empty_blocks", "serial", "Inference headers of a serial source with no result after them.",
     offsetof(sources_status, empty_blocks)},
    {"dropped", "serial", "Results of a serial source lost to limits or lack of memory.",
     offsetof(sources_status, dropped)},
    {"messages", "runner-ws", "Messages received from the runner.",
     offsetof(sources_status, messages)},
    {"frames", "runner-ws", "Camera preview frames received from the runner.",
     offsetof(sources_status, frames)},
    {"frames_paired", "runner-ws", "Camera preview frames stored with their inference.",
     offsetof(sources_status, frames_paired)},
    {"unknown", "runner-ws", "Runner messages of an unknown type.",
     offsetof(sources_status, unknown)},
    {"rejected", "runner-ws", "Runner messages rejected as malformed.",
     offsetof(sources_status, rejected)},
};

/* Counter i of s; false when s's kind does not keep it. */
static bool counter_of(const sources_status *s, size_t i, uint64_t *v)
{
    if (counters[i].kind && strcmp(counters[i].kind, s->kind) != 0) return false;
    memcpy(v, (const char *)s + counters[i].off, sizeof *v);
    return true;
}

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
    ok = ok && cJSON_AddNumberToObject(o, "backoff_ms", (double)s->backoff_ms) != NULL;
    for (size_t i = 0; ok && i < sizeof counters / sizeof counters[0]; i++) {
        uint64_t v;
        if (counter_of(s, i, &v))
            ok = cJSON_AddNumberToObject(o, counters[i].name, (double)v) != NULL;
    }
    if (ok && strcmp(s->kind, "runner-ws") == 0) { /* the hello: null until the runner said it */
        cJSON *m = model ? cJSON_Parse(model) : cJSON_CreateNull();
        ok = m && cJSON_AddItemToObject(o, "model", m);
        if (!ok) cJSON_Delete(m);
    }
    return ok;
}

/* {"sources":[{"name","kind","state","last_error","backoff_ms", the kind's counters,
 * ("model")}, ...]} in configuration order; NULL when out of memory. */
static cJSON *sources_status_json(void *ctx)
{
    sources *src = ctx;
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
    if (ok) return o;
    cJSON_Delete(o);
    return NULL;
}

/* One series line: name{source="..",kind=".."} v */
static er_rc series(util_buf *b, const char *name, const sources_status *s, uint64_t v)
{
    const char *const kv[] = {"source", s->name, "kind", s->kind};
    return prom_sample(b, name, kv, 2, v);
}

/* ei_relay_source_up for every source, then each counter's family over the sources that keep
 * it (its # HELP / # TYPE once); nothing when no source is configured. */
static er_rc sources_prom(void *ctx, util_buf *b)
{
    er_rc rc = ER_OK;
    sources *src = ctx;
    size_t n = sources_count(src);
    if (n == 0) return ER_OK;
    /* One snapshot for every metric, so the series of one scrape agree with each other. */
    sources_status *all = calloc(n, sizeof *all);
    if (!all) return ER_NOMEM;
    size_t got = 0;
    for (size_t i = 0; i < n; i++)
        if (sources_status_get(src, i, &all[got]) == ER_OK) got++;
    static const prom_metric up = {"ei_relay_source_up", "gauge",
                                   "1 while the source is running (input open or connected)."};
    rc = prom_head(b, &up);
    for (size_t i = 0; rc == ER_OK && i < got; i++)
        rc = series(b, up.name, &all[i], strcmp(all[i].state, "running") == 0);
    for (size_t c = 0; rc == ER_OK && c < sizeof counters / sizeof counters[0]; c++) {
        char name[64];
        snprintf(name, sizeof name, "ei_relay_source_%s_total", counters[c].name);
        const prom_metric m = {name, "counter", counters[c].help};
        bool head = false;
        for (size_t i = 0; rc == ER_OK && i < got; i++) {
            uint64_t v;
            if (!counter_of(&all[i], c, &v)) continue;
            if (!head) rc = prom_head(b, &m);
            head = true;
            if (rc == ER_OK) rc = series(b, name, &all[i], v);
        }
    }
    free(all);
    return rc;
}

void sources_report(sources *s, report_part *out)
{
    *out = (report_part){
        .name = "sources", .status = sources_status_json, .prom = sources_prom, .ctx = s};
}
