/* api_status.c - /api/v1/health (no token, cheap), /api/v1/stats (per-label buckets), the
 * modules' status objects (GET /api/v1/forwarder, /api/v1/sources: their report parts) and
 * /metrics (Prometheus text format 0.0.4: the server's counters, the store's series from one
 * store_get_info, then each report part's series, written with core/prom.h). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json_alloc.h"
#include "core/prom.h"
#include "http/http_internal.h"

#define DAY_MS (24LL * 3600 * 1000)
#define STATS_MAX_BUCKETS 10000

/* {"at": epoch ms, <key>: text, "reason": text} into db under name (health's db.recovered and
 * db.corrupt); skipped (true) when at is 0. */
static bool db_event(cJSON *db, const char *name, int64_t at, const char *key, const char *val,
                     const char *reason)
{
    if (!at) return true;
    cJSON *e = cJSON_AddObjectToObject(db, name);
    return e && cJSON_AddNumberToObject(e, "at", (double)at) &&
           (!key || cJSON_AddStringToObject(e, key, val ? val : "")) &&
           cJSON_AddStringToObject(e, "reason", reason);
}

/* epoch ms as RFC 3339 UTC, to the second. */
static void format_utc(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, cap, "%lld ms", (long long)ms);
}

enum MHD_Result http_api_health(http_req *r)
{
    static const char *const allowed[] = {NULL};
    enum MHD_Result ret;
    if (!http_query_check(r, allowed, &ret)) return ret;
    const http_deps *d = &r->srv->deps;
    store_info info;
    store_health h;
    er_rc rc = store_get_info(d->st, &info);
    store_health_get(d->st, &h); /* after: a read that met corruption has recorded it */
    if (rc)
        return http_reply_error(r, 503, "unavailable", "the database cannot be read (%s)%s%s",
                                er_rc_name(rc), h.corrupt_ms ? ": corruption: " : "",
                                h.corrupt_ms ? h.corrupt_reason : "");
    int64_t uptime = (util_now_ms() - d->started_ms) / 1000;
    /* checks.store: what a monitor alerts on; the first problem is also the status's reason */
    char check_store[320] = "ok", since[40];
    const char *reason = NULL;
    if (h.writes_failing_ms) {
        format_utc(h.writes_failing_ms, since, sizeof since);
        snprintf(check_store, sizeof check_store, "writes failing: %s since %s",
                 h.writes_failing_reason, since);
        reason = check_store;
    }
    if (h.corrupt_ms)
        reason = "database corruption detected; restart to check the database and move it aside";
    /* checks.disk: a warning, not degraded: the cache still works (a full disk evicts the rows
     * the broker has), but cache_max_bytes is not what bounds it */
    store_space sp;
    store_space_get(d->st, &sp);
    char check_disk[200] = "ok";
    if (sp.cap_exceeds_fs)
        snprintf(check_disk, sizeof check_disk,
                 "cache_max_bytes (%lld%s) exceeds what the file system can hold (%lld: free + "
                 "database); the disk fills before the cache limit",
                 (long long)d->cfg->cache_max_bytes, d->cfg->cache_max_bytes > 0 ? "" : ": none",
                 (long long)sp.fs_room_bytes);
    cJSON *o = cJSON_CreateObject();
    cJSON *db = o ? cJSON_CreateObject() : NULL;
    cJSON *checks = db ? cJSON_AddObjectToObject(o, "checks") : NULL;
    bool ok =
        checks && cJSON_AddStringToObject(checks, "store", check_store) &&
        cJSON_AddStringToObject(checks, "disk", check_disk) &&
        cJSON_AddStringToObject(o, "status", reason ? "degraded" : "ok") &&
        (!reason || cJSON_AddStringToObject(o, "reason", reason)) &&
        cJSON_AddStringToObject(o, "version", EI_RELAY_VERSION) &&
        cJSON_AddNumberToObject(o, "uptime_s", (double)(uptime > 0 ? uptime : 0)) &&
        cJSON_AddNumberToObject(o, "ws_port", d->ws_port) &&
        cJSON_AddStringToObject(db, "path", d->cfg->db_path ? d->cfg->db_path : "") &&
        cJSON_AddNumberToObject(db, "bytes", (double)info.db_file_bytes) &&
        cJSON_AddNumberToObject(db, "rows", (double)info.rows) &&
        cJSON_AddNumberToObject(db, "images", (double)info.images) &&
        cJSON_AddNumberToObject(db, "fs_free_bytes", (double)sp.fs_free_bytes) &&
        cJSON_AddNumberToObject(db, "fs_total_bytes", (double)sp.fs_total_bytes) &&
        db_event(db, "recovered", h.recovered_ms, "moved_to", h.moved_to, h.recovered_reason) &&
        db_event(db, "corrupt", h.corrupt_ms, NULL, NULL, h.corrupt_reason) &&
        db_event(db, "writes_failing", h.writes_failing_ms, NULL, NULL, h.writes_failing_reason);
    if (ok) {
        ok = json_alloc_add(o, "db", db);
        db = NULL; /* o's, or freed */
        ok = ok && cJSON_AddNumberToObject(o, "queue_depth", (double)info.outbox) &&
             cJSON_AddNumberToObject(o, "ingest_queue", (double)info.queue_depth) &&
             cJSON_AddStringToObject(o, "device", d->device ? d->device : "");
    }
    cJSON_Delete(db);
    if (!ok) {
        cJSON_Delete(o);
        return http_reply_error(r, 500, "internal", "out of memory rendering health");
    }
    return http_reply_cjson(r, 200, o);
}

/* A point {t, count, mean_score} appended to arr. */
static bool stats_point(cJSON *arr, int64_t t, int64_t count, double mean)
{
    cJSON *pt = cJSON_CreateObject();
    bool ok = pt && cJSON_AddNumberToObject(pt, "t", (double)t) &&
              cJSON_AddNumberToObject(pt, "count", (double)count) &&
              cJSON_AddNumberToObject(pt, "mean_score", mean);
    if (ok && cJSON_AddItemToArray(arr, pt)) return true;
    cJSON_Delete(pt);
    return false;
}

/* The answer's per-label parts from rows (ordered by label, then bucket): top_labels and
 * top_totals (by top class; every label seen, 0 when never the top class) and
 * label_occurrences (every label of every inference). */
static bool stats_render(cJSON *o, const store_stats_row *rows, size_t n, int64_t *occurrences)
{
    cJSON *top = cJSON_AddObjectToObject(o, "top_labels");
    cJSON *totals = top ? cJSON_AddObjectToObject(o, "top_totals") : NULL;
    cJSON *occ = totals ? cJSON_AddObjectToObject(o, "label_occurrences") : NULL;
    bool ok = occ != NULL;
    cJSON *top_arr = NULL, *occ_arr = NULL, *total = NULL;
    const char *run = NULL;
    for (size_t i = 0; ok && i < n; i++) {
        const store_stats_row *w = &rows[i];
        /* a new label starts its arrays, without a look-up in the objects (linear in cJSON:
         * quadratic over 10,000 labels) */
        if (!run || strcmp(run, w->label) != 0) {
            run = w->label;
            top_arr = cJSON_AddArrayToObject(top, run);
            occ_arr = top_arr ? cJSON_AddArrayToObject(occ, run) : NULL;
            total = occ_arr ? cJSON_AddNumberToObject(totals, run, 0) : NULL;
            if (!(ok = total != NULL)) break;
        }
        if (w->top) {
            cJSON_SetNumberValue(total, total->valuedouble + (double)w->top);
            ok = stats_point(top_arr, w->bucket_ms, w->top, w->top_mean);
        }
        if (ok && w->count) ok = stats_point(occ_arr, w->bucket_ms, w->count, w->mean_score);
        *occurrences += w->count;
    }
    return ok;
}

enum MHD_Result http_api_stats(http_req *r)
{
    static const char *const allowed[] = {"since", "until",     "bucket", "source",
                                          "label", "min_score", NULL};
    enum MHD_Result ret;
    if (!http_query_check(r, allowed, &ret)) return ret;
    /* the list's filters (docs/api.md): label, source, min_score, and the range */
    store_filter f = {0};
    if (!http_list_filter(r, &f, &ret)) return ret;
    int64_t until = f.has_until ? f.until_ms : util_now_ms(), since = f.since_ms;
    int64_t bucket = 3600 * 1000;
    const char *v;
    if (!f.has_since && __builtin_sub_overflow(until, DAY_MS, &since))
        return http_reply_error(r, 400, "bad_request", "query parameter 'until' is out of range");
    if ((v = http_query(r, "bucket")) && http_parse_bucket(v, &bucket))
        return http_reply_error(r, 400, "bad_request",
                                "query parameter 'bucket' must be milliseconds or a count with "
                                "s, m, h or d (e.g. 1h)");
    if (since >= until)
        return http_reply_error(r, 400, "bad_request", "'since' must be before 'until'");
    int64_t span;
    if (__builtin_sub_overflow(until, since, &span) ||
        span / bucket + (span % bucket != 0) > STATS_MAX_BUCKETS)
        return http_reply_error(r, 400, "bad_request",
                                "the range holds more than %d buckets; widen 'bucket'",
                                STATS_MAX_BUCKETS);

    store_stats_query q = {.since_ms = since,
                           .until_ms = until,
                           .bucket_ms = bucket,
                           .source = f.source,
                           .label = f.label,
                           .min_score = f.min_score};
    store_stats_row *rows = NULL;
    size_t n = 0;
    store_stats_sum sum;
    er_rc rc = store_stats(r->srv->deps.st, &q, &rows, &n, &sum);
    if (rc == ER_TOOBIG)
        return http_reply_error(r, 413, "payload_too_large",
                                "the statistics would pass page_max_bytes (%lld); narrow the "
                                "range or widen 'bucket'",
                                (long long)r->srv->deps.cfg->page_max_bytes);
    if (rc) return http_reply_rc(r, rc, "the statistics could not be computed");
    cJSON *o = cJSON_CreateObject();
    int64_t occurrences = 0;
    bool ok = o && cJSON_AddNumberToObject(o, "since", (double)since) &&
              cJSON_AddNumberToObject(o, "until", (double)until) &&
              cJSON_AddNumberToObject(o, "bucket_ms", (double)bucket) &&
              cJSON_AddNumberToObject(o, "inferences", (double)sum.inferences) &&
              cJSON_AddNumberToObject(o, "no_top", (double)sum.no_top) &&
              stats_render(o, rows, n, &occurrences) &&
              cJSON_AddNumberToObject(o, "occurrences_total", (double)occurrences);
    store_stats_free(rows, n);
    if (!ok) {
        cJSON_Delete(o);
        return http_reply_error(r, 500, "internal", "out of memory rendering statistics");
    }
    return http_reply_cjson(r, 200, o);
}

/* ---- the modules' status objects ---- */

enum MHD_Result http_api_part(http_req *r)
{
    static const char *const allowed[] = {NULL};
    enum MHD_Result ret;
    if (!http_query_check(r, allowed, &ret)) return ret;
    const http_deps *d = &r->srv->deps;
    const char *name = strrchr(r->path, '/') + 1; /* the route table's path: /api/v1/<name> */
    for (size_t i = 0; i < d->n_parts; i++) {
        const report_part *p = d->parts[i];
        if (strcmp(p->name, name) != 0 || !p->status) continue;
        cJSON *o = p->status(p->ctx);
        if (!o) return http_reply_error(r, 500, "internal", "out of memory rendering the %s", name);
        return http_reply_cjson(r, 200, o);
    }
    return http_reply_error(r, 404, "not_found", "no such resource: %s", r->path);
}

/* ---- /metrics ---- */

static const prom_metric requests_total = {"ei_relay_http_requests_total", "counter",
                                           "HTTP requests answered, by status code."};
static const prom_metric ingest_total = {"ei_relay_ingest_requests_total", "counter",
                                         "POST /api/v1/inferences requests answered, by status."};
static const prom_metric received_total = {"ei_relay_http_received_bytes_total", "counter",
                                           "Request body bytes received by the HTTP server."};
static const prom_metric uptime_seconds = {"ei_relay_uptime_seconds", "gauge",
                                           "Seconds since the service started."};
static const prom_metric relay_info = {"ei_relay_info", "gauge", "Version and device name."};

/* One family of per-status counters, labelled {label="<code>"}; codes never answered are left
 * out, except that an empty family shows zero_code with 0. extra is added to code 200. */
static er_rc status_family(util_buf *b, const prom_metric *m, const char *label,
                           const atomic_uint_fast64_t *by_status, uint64_t extra,
                           const char *zero_code)
{
    er_rc rc = prom_head(b, m);
    bool any = false;
    for (unsigned c = 100; rc == ER_OK && c < HTTP_STATUS_MAX; c++) {
        uint64_t v = atomic_load_explicit(&by_status[c], memory_order_relaxed);
        if (c == 200) v += extra;
        if (!v) continue;
        char code[8];
        snprintf(code, sizeof code, "%u", c);
        const char *const kv[] = {label, code};
        rc = prom_sample(b, m->name, kv, 1, v);
        any = true;
    }
    if (rc == ER_OK && !any && zero_code) {
        const char *const kv[] = {label, zero_code};
        rc = prom_sample(b, m->name, kv, 1, 0);
    }
    return rc;
}

/* The server's own series before the store's: requests by status, ingest by status, bytes. */
static er_rc http_prom(http_server *s, util_buf *b)
{
    /* Count this scrape's own 200 first so the numbers it shows include itself. */
    er_rc rc = status_family(b, &requests_total, "code", s->by_status, 1, NULL);
    if (rc == ER_OK) rc = status_family(b, &ingest_total, "status", s->ingest_by_status, 0, "201");
    if (rc == ER_OK)
        rc = prom_value(b, &received_total,
                        (int64_t)atomic_load_explicit(&s->bytes_received, memory_order_relaxed));
    return rc;
}

/* The series after every module's: uptime and the info gauge. */
static er_rc http_prom_tail(http_server *s, util_buf *b)
{
    int64_t uptime = (util_now_ms() - s->deps.started_ms) / 1000;
    er_rc rc = prom_value(b, &uptime_seconds, uptime > 0 ? uptime : 0);
    if (rc == ER_OK) rc = prom_head(b, &relay_info);
    const char *const kv[] = {"version", EI_RELAY_VERSION, "device", s->deps.device};
    if (rc == ER_OK) rc = prom_sample(b, relay_info.name, kv, 2, 1);
    return rc;
}

enum MHD_Result http_api_metrics(http_req *r)
{
    static const char *const allowed[] = {NULL};
    enum MHD_Result ret;
    if (!http_query_check(r, allowed, &ret)) return ret;
    http_server *s = r->srv;
    store_info info;
    er_rc rc = store_get_info(s->deps.st, &info);
    if (rc) return http_reply_rc(r, rc, "the store could not be read");
    util_buf b = {0};
    rc = http_prom(s, &b);
    if (rc == ER_OK) rc = store_prom(&info, &b);
    for (size_t i = 0; rc == ER_OK && i < s->deps.n_parts; i++) {
        const report_part *p = s->deps.parts[i];
        if (p->prom) rc = p->prom(p->ctx, &b);
    }
    if (rc == ER_OK) rc = http_prom_tail(s, &b);
    if (rc != ER_OK || !b.data) {
        util_buf_free(&b);
        return http_reply_error(r, 500, "internal", "out of memory rendering metrics");
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        util_buf_free(&b);
        return http_reply(r, 200, NULL);
    }
    MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    return http_reply(r, 200, resp);
}
