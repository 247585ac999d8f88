/* live_ticks.c - the live stream's periodic messages: the forwarder's state (polled every
 * FWD_POLL_MS, sent when it changes) and the per-label stats of the last hour (counted here as
 * inferences are committed, sent every STATS_EVERY_MS), plus both once after a client's hello.
 * Loop thread only, but for lv_stats_add: the store's commit hook counts every committed
 * inference on the writer thread, under mu (so nothing is read from the store for the stats,
 * and the hub need not read commits nobody listens to). struct live owns the stats table and
 * the last forwarder message text. */
#include "live/live_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_alloc.h"
#include "core/util.h"

#define FWD_POLL_MS 500
#define STATS_EVERY_MS 10000
#define STATS_LABELS_MAX 256

static void stat_count(lv_label_stat *ls, int slot, int64_t minute, double score)
{
    if (ls->minute[slot] != minute) {
        ls->minute[slot] = minute;
        ls->count[slot] = 0;
        ls->sum[slot] = 0;
    }
    ls->count[slot]++;
    ls->sum[slot] += score;
}

/* Count and score sum of ls over the window ending at minute. */
static int64_t stat_sum(const lv_label_stat *ls, int64_t minute, double *sum)
{
    int64_t count = 0;
    *sum = 0;
    for (int s = 0; s < LV_STATS_MINUTES; s++)
        if (ls->minute[s] > minute - LV_STATS_MINUTES) {
            count += ls->count[s];
            *sum += ls->sum[s];
        }
    return count;
}

void lv_stats_add(live *l, const inference *inf, int64_t now_ms)
{
    int64_t minute = now_ms / 60000;
    int slot = (int)(minute % LV_STATS_MINUTES);
    stat_count(&l->total, slot, minute, inf->top_score);
    for (size_t k = 0; k < inf->n_labels; k++) {
        lv_label_stat *ls = NULL;
        for (size_t i = 0; i < l->n_stats && !ls; i++)
            if (strcmp(l->stats[i].label, inf->labels[k].label) == 0) ls = &l->stats[i];
        if (!ls) {
            if (l->n_stats >= STATS_LABELS_MAX) continue;
            lv_label_stat *grown = realloc(l->stats, (l->n_stats + 1) * sizeof *grown);
            if (!grown) continue;
            l->stats = grown;
            ls = &l->stats[l->n_stats];
            memset(ls, 0, sizeof *ls);
            if (!(ls->label = strdup(inf->labels[k].label))) continue;
            l->n_stats++;
        }
        stat_count(ls, slot, minute, inf->labels[k].score);
    }
}

static cJSON *stats_json(live *l)
{
    int64_t now = util_now_ms(), minute = now / 60000;
    cJSON *o = cJSON_CreateObject();
    cJSON *labels = o ? cJSON_CreateObject() : NULL;
    if (!labels || !cJSON_AddStringToObject(o, "type", "stats") ||
        !cJSON_AddNumberToObject(o, "server_time", (double)now) ||
        !cJSON_AddNumberToObject(o, "window_ms", LV_STATS_MINUTES * 60000.0))
        goto fail;
    double sum = 0;
    if (!cJSON_AddNumberToObject(o, "total", (double)stat_sum(&l->total, minute, &sum))) goto fail;
    for (size_t i = 0; i < l->n_stats; i++) {
        int64_t count = stat_sum(&l->stats[i], minute, &sum);
        if (!count) continue;
        cJSON *e = cJSON_AddObjectToObject(labels, l->stats[i].label);
        if (!e || !cJSON_AddNumberToObject(e, "count", (double)count) ||
            !cJSON_AddNumberToObject(e, "mean_score", sum / (double)count))
            goto fail;
    }
    bool added = json_alloc_add(o, "labels", labels);
    labels = NULL; /* o's, or freed */
    if (!added) goto fail;
    return o;
fail:
    cJSON_Delete(labels);
    cJSON_Delete(o);
    return NULL;
}

/* {"type":"forwarder","enabled":..} plus the keys below copied from the forwarder's status
 * object, in this order (a missing one as null); NULL when out of memory. Compared as text by
 * fwd_tick, so it changes only when one of these keys does. */
static char *forwarder_text(live *l)
{
    static const char *const keys[] = {"state", "queue_depth", "in_flight",
                                       "dead",  "dropped",     "last_error"};
    char *text = NULL;
    cJSON *status = NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "type", "forwarder") ||
        !cJSON_AddBoolToObject(o, "enabled", l->fwd != NULL))
        goto fail;
    if (l->fwd) {
        status = l->fwd->status(l->fwd->ctx);
        if (!status) goto fail;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            cJSON *v = cJSON_GetObjectItemCaseSensitive(status, keys[i]);
            if (!json_alloc_add(o, keys[i], v ? cJSON_Duplicate(v, true) : cJSON_CreateNull()))
                goto fail;
        }
    }
    text = cJSON_PrintUnformatted(o);
fail:
    cJSON_Delete(status);
    cJSON_Delete(o);
    return text;
}

static char *stats_text(live *l)
{
    pthread_mutex_lock(&l->mu); /* the commit hook counts on the writer thread */
    cJSON *o = stats_json(l);
    pthread_mutex_unlock(&l->mu);
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

/* Runs cb on the loop after ms. */
static void schedule(live *l, lws_sorted_usec_list_t *sul, sul_cb_t cb, int ms)
{
    lws_sul_schedule(wsloop_context(l->loop), 0, sul, cb, (lws_usec_t)ms * LWS_US_PER_MS);
}

static live *live_of_sul(lws_sorted_usec_list_t *sul, size_t off)
{
    return (live *)((char *)sul - off);
}

static void fwd_tick(lws_sorted_usec_list_t *sul)
{
    live *l = live_of_sul(sul, offsetof(live, fwd_sul));
    if (wsloop_stopping(l->loop)) return;
    if (l->n_clients) {
        char *text = forwarder_text(l);
        if (text && (!l->fwd_msg || strcmp(text, l->fwd_msg) != 0)) {
            free(l->fwd_msg);
            l->fwd_msg = text;
            text = NULL;
            for (lv_client *c = l->clients; c; c = c->next)
                if (c->state == LV_CS_OPEN) lv_queue_text(c, l->fwd_msg, LV_OUT_FORWARDER);
        }
        free(text);
    }
    schedule(l, &l->fwd_sul, fwd_tick, FWD_POLL_MS);
}

static void stats_tick(lws_sorted_usec_list_t *sul)
{
    live *l = live_of_sul(sul, offsetof(live, stats_sul));
    if (wsloop_stopping(l->loop)) return;
    if (l->n_clients) {
        char *text = stats_text(l);
        for (lv_client *c = l->clients; c && text; c = c->next)
            if (c->state == LV_CS_OPEN) lv_queue_text(c, text, LV_OUT_STATS);
        free(text);
    }
    schedule(l, &l->stats_sul, stats_tick, STATS_EVERY_MS);
}

void lv_ticks_start(live *l)
{
    schedule(l, &l->fwd_sul, fwd_tick, FWD_POLL_MS);
    schedule(l, &l->stats_sul, stats_tick, STATS_EVERY_MS);
}

void lv_ticks_hello(live *l, lv_client *c)
{
    if (!l->fwd_msg) l->fwd_msg = forwarder_text(l);
    lv_queue_text(c, l->fwd_msg, LV_OUT_FORWARDER);
    char *text = stats_text(l);
    lv_queue_text(c, text, LV_OUT_STATS);
    free(text);
}

void lv_ticks_free(live *l)
{
    for (size_t i = 0; i < l->n_stats; i++)
        free(l->stats[i].label);
    free(l->stats);
    free(l->fwd_msg);
}
