/* sources_report.c - the sources' report part (sources_report in sources.h): the ONE writer of
 * their status object for GET /api/v1/sources and of their ei_relay_source_* series. Both show
 * the counters every source keeps (the table below), then its kind's own (its row's table),
 * from one snapshot of every source's slot. */
#include "sources/sources_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/prom.h"

/* The counters every kind keeps, before the kind's own. */
static const struct {
    sources_counter c;
    size_t off;
} common[] = {
    {{"inferences", "Inferences the source produced."}, offsetof(sources_status, inferences)},
    {{"reconnects", "Times the source reopened its input."}, offsetof(sources_status, reconnects)},
    {{"store_retries", "Times a commit of the source's failed (disk full, locked) and its "
                       "inference was held to be offered again."},
     offsetof(sources_status, store_retries)},
    {{"store_refused", "Inferences of the source the store refused for themselves (dropped)."},
     offsetof(sources_status, store_refused)},
};

#define N_COMMON (sizeof common / sizeof common[0])

/* Counter i of s: the common ones first, then its kind's; NULL past the last. */
static const sources_counter *counter_at(const sources_status *s, size_t i, uint64_t *v)
{
    if (i < N_COMMON) {
        memcpy(v, (const char *)s + common[i].off, sizeof *v);
        return &common[i].c;
    }
    i -= N_COMMON;
    if (i >= s->kind->n_counters) return NULL;
    *v = s->counters[i];
    return &s->kind->counters[i];
}

/* A copy of every source's status (and, with models, its model info: malloc'ed, NULL when
 * none; the caller frees them); NULL when out of memory. */
static sources_status *snapshot(sources *s, char ***models)
{
    sources_status *all = calloc(s->n ? s->n : 1, sizeof *all);
    char **m = models ? calloc(s->n ? s->n : 1, sizeof *m) : NULL;
    bool ok = all && (!models || m);
    for (size_t i = 0; ok && i < s->n; i++) {
        sources_slot *sl = &s->e[i].slot;
        pthread_mutex_lock(&sl->mu);
        all[i] = sl->st;
        if (m && sl->model_info) ok = (m[i] = strdup(sl->model_info)) != NULL;
        pthread_mutex_unlock(&sl->mu);
    }
    if (!ok) {
        for (size_t i = 0; m && i < s->n; i++)
            free(m[i]);
        free(m);
        free(all);
        return NULL;
    }
    if (models) *models = m;
    return all;
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
    ok = ok && cJSON_AddStringToObject(o, "kind", s->kind->name) != NULL;
    ok = ok && cJSON_AddStringToObject(o, "state", s->state) != NULL;
    ok = ok && (s->last_error[0] ? cJSON_AddStringToObject(o, "last_error", s->last_error) != NULL
                                 : cJSON_AddNullToObject(o, "last_error") != NULL);
    ok = ok && cJSON_AddNumberToObject(o, "backoff_ms", (double)s->backoff_ms) != NULL;
    ok = ok && cJSON_AddNumberToObject(o, "held", (double)s->held) != NULL;
    uint64_t v;
    const sources_counter *c;
    for (size_t i = 0; ok && (c = counter_at(s, i, &v)); i++)
        ok = cJSON_AddNumberToObject(o, c->name, (double)v) != NULL;
    if (ok && s->kind->model) { /* the hello: null until the runner said it */
        cJSON *m = model ? cJSON_Parse(model) : cJSON_CreateNull();
        ok = m && cJSON_AddItemToObject(o, "model", m);
        if (!ok) cJSON_Delete(m);
    }
    return ok;
}

/* {"sources":[{"name","kind","state","last_error","backoff_ms","held", the counters, ("model")},
 * ...]} in configuration order; NULL when out of memory. */
static cJSON *sources_status_json(void *ctx)
{
    static sources none;
    sources *s = ctx ? ctx : &none;
    char **models = NULL;
    sources_status *all = snapshot(s, &models);
    cJSON *o = all ? cJSON_CreateObject() : NULL;
    cJSON *arr = o ? cJSON_AddArrayToObject(o, "sources") : NULL;
    bool ok = arr != NULL;
    for (size_t i = 0; ok && i < s->n; i++)
        ok = add_source(arr, &all[i], models[i]);
    for (size_t i = 0; models && i < s->n; i++)
        free(models[i]);
    free(models);
    free(all);
    if (ok) return o;
    cJSON_Delete(o);
    return NULL;
}

/* One family: its head once, then a series {source,kind} for each source that keeps the
 * counter called name. */
static er_rc family(util_buf *b, const char *name, const char *help, const sources_status *all,
                    size_t n)
{
    char metric[64];
    snprintf(metric, sizeof metric, "ei_relay_source_%s_total", name);
    const prom_metric m = {metric, "counter", help};
    er_rc rc = ER_OK;
    bool head = false;
    for (size_t i = 0; rc == ER_OK && i < n; i++) {
        uint64_t v;
        const sources_counter *c;
        for (size_t k = 0; (c = counter_at(&all[i], k, &v)); k++)
            if (strcmp(c->name, name) == 0) break;
        if (!c) continue;
        if (!head) rc = prom_head(b, &m);
        head = true;
        const char *const kv[] = {"source", all[i].name, "kind", all[i].kind->name};
        if (rc == ER_OK) rc = prom_sample(b, metric, kv, 2, v);
    }
    return rc;
}

/* Whether a kind before kind k in the table, or the common counters, has a counter called
 * name: its family is written once, where it first appears. */
static bool seen_before(size_t k, const char *name)
{
    for (size_t i = 0; i < N_COMMON; i++)
        if (strcmp(common[i].c.name, name) == 0) return true;
    for (size_t j = 0; j < k; j++)
        for (size_t i = 0; i < sources__kinds[j]->n_counters; i++)
            if (strcmp(sources__kinds[j]->counters[i].name, name) == 0) return true;
    return false;
}

/* ei_relay_source_up for every source, the common counters' families, then each kind's own in
 * table order; nothing when no source is configured. */
static er_rc sources_prom(void *ctx, util_buf *b)
{
    static const prom_metric up = {"ei_relay_source_up", "gauge",
                                   "1 while the source is running (input open or connected)."};
    static const prom_metric held = {"ei_relay_source_held", "gauge",
                                     "Inferences the source made that are not committed yet."};
    sources *s = ctx;
    if (!s || s->n == 0) return ER_OK;
    /* One snapshot for every family, so the series of one scrape agree with each other. */
    sources_status *all = snapshot(s, NULL);
    if (!all) return ER_NOMEM;
    er_rc rc = prom_head(b, &up);
    for (size_t i = 0; rc == ER_OK && i < s->n; i++) {
        const char *const kv[] = {"source", all[i].name, "kind", all[i].kind->name};
        rc = prom_sample(b, up.name, kv, 2, strcmp(all[i].state, "running") == 0);
    }
    if (rc == ER_OK) rc = prom_head(b, &held);
    for (size_t i = 0; rc == ER_OK && i < s->n; i++) {
        const char *const kv[] = {"source", all[i].name, "kind", all[i].kind->name};
        rc = prom_sample(b, held.name, kv, 2, all[i].held);
    }
    for (size_t i = 0; rc == ER_OK && i < N_COMMON; i++)
        rc = family(b, common[i].c.name, common[i].c.help, all, s->n);
    for (size_t k = 0; rc == ER_OK && k < sources__n_kinds; k++) {
        const sources_kind *kind = sources__kinds[k];
        for (size_t i = 0; rc == ER_OK && i < kind->n_counters; i++)
            if (!seen_before(k, kind->counters[i].name))
                rc = family(b, kind->counters[i].name, kind->counters[i].help, all, s->n);
    }
    free(all);
    return rc;
}

void sources_report(sources *s, report_part *out)
{
    *out = (report_part){
        .name = "sources", .status = sources_status_json, .prom = sources_prom, .ctx = s};
}
