/* api_status.c - /api/v1/health (no token, cheap), /api/v1/stats (per-label buckets) and
 * /metrics (Prometheus text format 0.0.4 from the server's counters and store_get_info). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "http/api_forwarder.h"
#include "http/api_sources.h"
#include "http/http_internal.h"

#define DAY_MS (24LL * 3600 * 1000)
#define STATS_MAX_BUCKETS 10000

enum MHD_Result http_api_health(http_req *r)
{
    static const char *const allowed[] = {NULL};
    enum MHD_Result ret;
    if (!http_query_check(r, allowed, &ret)) return ret;
    const http_deps *d = &r->srv->deps;
    store_info info;
    er_rc rc = store_get_info(d->st, &info);
    if (rc)
        return http_reply_error(r, 503, "unavailable", "the database cannot be read (%s)",
                                er_rc_name(rc));
    int64_t uptime = (util_now_ms() - d->started_ms) / 1000;
    cJSON *o = cJSON_CreateObject();
    cJSON *db = o ? cJSON_CreateObject() : NULL;
    bool ok = db && cJSON_AddStringToObject(o, "status", "ok") &&
              cJSON_AddStringToObject(o, "version", EI_RELAY_VERSION) &&
              cJSON_AddNumberToObject(o, "uptime_s", (double)(uptime > 0 ? uptime : 0)) &&
              cJSON_AddNumberToObject(o, "ws_port", d->ws_port) &&
              cJSON_AddStringToObject(db, "path", d->cfg->db_path ? d->cfg->db_path : "") &&
              cJSON_AddNumberToObject(db, "bytes", (double)info.db_file_bytes) &&
              cJSON_AddNumberToObject(db, "rows", (double)info.rows) &&
              cJSON_AddNumberToObject(db, "images", (double)info.images);
    if (ok) {
        cJSON_AddItemToObject(o, "db", db);
        db = NULL;
        ok = cJSON_AddNumberToObject(o, "queue_depth", (double)info.outbox) &&
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

enum MHD_Result http_api_stats(http_req *r)
{
    static const char *const allowed[] = {"since", "until", "bucket", NULL};
    enum MHD_Result ret;
    if (!http_query_check(r, allowed, &ret)) return ret;
    int64_t until = util_now_ms(), since, bucket = 3600 * 1000;
    const char *v;
    bool has_since = false;
    if ((v = http_query(r, "until")) && util_parse_time_ms(v, &until))
        return http_reply_error(r, 400, "bad_request",
                                "query parameter 'until' must be epoch ms or RFC 3339");
    if ((v = http_query(r, "since"))) {
        if (util_parse_time_ms(v, &since))
            return http_reply_error(r, 400, "bad_request",
                                    "query parameter 'since' must be epoch ms or RFC 3339");
        has_since = true;
    }
    if (!has_since && __builtin_sub_overflow(until, DAY_MS, &since))
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

    store_stats_row *rows = NULL;
    size_t n = 0;
    er_rc rc = store_stats(r->srv->deps.st, since, until, bucket, &rows, &n);
    if (rc) return http_reply_rc(r, rc, "the statistics could not be computed");
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddNumberToObject(o, "since", (double)since) &&
              cJSON_AddNumberToObject(o, "until", (double)until) &&
              cJSON_AddNumberToObject(o, "bucket_ms", (double)bucket);
    cJSON *labels = ok ? cJSON_AddObjectToObject(o, "labels") : NULL;
    ok = labels != NULL;
    int64_t total = 0;
    cJSON *arr = NULL;
    const char *arr_label = NULL;
    for (size_t i = 0; ok && i < n; i++) {
        /* rows usually come grouped by label; look up only when the label changes */
        if (!arr_label || strcmp(arr_label, rows[i].label) != 0) {
            arr = cJSON_GetObjectItemCaseSensitive(labels, rows[i].label);
            if (!arr) arr = cJSON_AddArrayToObject(labels, rows[i].label);
            arr_label = rows[i].label;
        }
        cJSON *pt = arr ? cJSON_CreateObject() : NULL;
        ok = pt && cJSON_AddNumberToObject(pt, "t", (double)rows[i].bucket_ms) &&
             cJSON_AddNumberToObject(pt, "count", (double)rows[i].count) &&
             cJSON_AddNumberToObject(pt, "mean_score", rows[i].mean_score);
        if (pt && ok)
            cJSON_AddItemToArray(arr, pt);
        else
            cJSON_Delete(pt);
        total += rows[i].count;
    }
    ok = ok && cJSON_AddNumberToObject(o, "total", (double)total);
    store_stats_free(rows, n);
    if (!ok) {
        cJSON_Delete(o);
        return http_reply_error(r, 500, "internal", "out of memory rendering statistics");
    }
    return http_reply_cjson(r, 200, o);
}

/* ---- /metrics ---- */

er_rc http_metric_head(util_buf *b, const char *name, const char *type, const char *help)
{
    return util_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void http_metric(util_buf *b, const char *name, const char *type, const char *help, int64_t value)
{
    http_metric_head(b, name, type, help);
    util_buf_printf(b, "%s %lld\n", name, (long long)value);
}

er_rc http_metric_label(util_buf *b, const char *s)
{
    er_rc rc = ER_OK;
    if (!s) return ER_OK;
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

enum MHD_Result http_api_metrics(http_req *r)
{
    static const char *const allowed[] = {NULL};
    enum MHD_Result ret;
    if (!http_query_check(r, allowed, &ret)) return ret;
    http_server *s = r->srv;
    store_info info;
    er_rc rc = store_get_info(s->deps.st, &info);
    if (rc) return http_reply_rc(r, rc, "the store could not be read");
    /* Count this scrape's own 200 first so the numbers it shows include itself. */
    util_buf b = {0};
    http_metric_head(&b, "ei_relay_http_requests_total", "counter",
                     "HTTP requests answered, by status code.");
    for (unsigned c = 100; c < HTTP_STATUS_MAX; c++) {
        uint64_t v = atomic_load_explicit(&s->by_status[c], memory_order_relaxed);
        if (c == 200) v++; /* this answer */
        if (v)
            util_buf_printf(&b, "ei_relay_http_requests_total{code=\"%u\"} %llu\n", c,
                            (unsigned long long)v);
    }
    http_metric_head(&b, "ei_relay_ingest_requests_total", "counter",
                     "POST /api/v1/inferences requests answered, by status.");
    bool any = false;
    for (unsigned c = 100; c < HTTP_STATUS_MAX; c++) {
        uint64_t v = atomic_load_explicit(&s->ingest_by_status[c], memory_order_relaxed);
        if (!v) continue;
        any = true;
        util_buf_printf(&b, "ei_relay_ingest_requests_total{status=\"%u\"} %llu\n", c,
                        (unsigned long long)v);
    }
    if (!any) util_buf_printf(&b, "ei_relay_ingest_requests_total{status=\"201\"} 0\n");
    http_metric(&b, "ei_relay_http_received_bytes_total", "counter",
                "Request body bytes received by the HTTP server.",
                (int64_t)atomic_load_explicit(&s->bytes_received, memory_order_relaxed));
    http_metric(&b, "ei_relay_inferences_stored_total", "counter",
                "Inferences committed to the database since start.", info.puts);
    http_metric(&b, "ei_relay_duplicates_total", "counter",
                "Puts answered with an already stored inference (same id).", info.duplicates);
    http_metric(&b, "ei_relay_put_errors_total", "counter", "Puts that failed.", info.put_errors);
    http_metric(&b, "ei_relay_commits_total", "counter", "Database transactions committed.",
                info.commits);
    http_metric(&b, "ei_relay_retention_deleted_total", "counter",
                "Inferences removed by the retention limits.", info.retention_deleted);
    http_metric(&b, "ei_relay_cache_rows", "gauge", "Inferences in the cache.", info.rows);
    http_metric(&b, "ei_relay_cache_bytes", "gauge", "Accounted bytes of the cached inferences.",
                info.bytes);
    http_metric(&b, "ei_relay_cache_images", "gauge", "Cached inferences with an image.",
                info.images);
    http_metric(&b, "ei_relay_db_file_bytes", "gauge", "Database file plus WAL on disk.",
                info.db_file_bytes);
    http_metric(&b, "ei_relay_outbox_depth", "gauge", "Outbox rows waiting to be forwarded.",
                info.outbox);
    http_metric(&b, "ei_relay_ingest_queue_depth", "gauge", "Puts waiting for the store writer.",
                info.queue_depth);
    http_metric(&b, "ei_relay_newest_seq", "gauge", "Sequence number of the newest inference.",
                info.newest_seq);
    live_stats ls;
    live_get_stats(s->deps.lv, &ls);
    http_metric(&b, "ei_relay_live_clients", "gauge", "Live stream connections now.", ls.clients);
    http_metric(&b, "ei_relay_live_sent_total", "counter",
                "Inference messages written to live stream clients.", ls.sent);
    http_metric(&b, "ei_relay_live_missed_total", "counter",
                "Inferences live clients lost (too slow, or past the resume bound).", ls.missed);
    http_metric(&b, "ei_relay_live_refused_total", "counter",
                "Live connections refused at auth (bad token or timeout).", ls.refused);
    http_metric(&b, "ei_relay_live_resumes_total", "counter", "Live connections that resumed.",
                ls.resumes);
    http_forwarder_metrics(r, &b);
    bool sources_ok = http_sources_metrics(r, &b) == ER_OK;
    int64_t uptime = (util_now_ms() - s->deps.started_ms) / 1000;
    http_metric(&b, "ei_relay_uptime_seconds", "gauge", "Seconds since the service started.",
                uptime > 0 ? uptime : 0);
    http_metric_head(&b, "ei_relay_info", "gauge", "Version and device name.");
    util_buf_printf(&b, "ei_relay_info{version=\"%s\",device=\"", EI_RELAY_VERSION);
    http_metric_label(&b, s->deps.device);
    if (util_buf_printf(&b, "\"} 1\n") != ER_OK || !b.data || !sources_ok) {
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
