/* api_export.c - GET /api/v1/export: the inferences a list filter selects (label, source,
 * min_score, since, until), newest first, as CSV (format=csv) or as a JSON array of the list's
 * views (format=json, the default). The answer is streamed: libmicrohttpd's content reader asks
 * for bytes, and each time the rendered ones run out the next store page is read (EXPORT_PAGE
 * rows, bounded by page_max_bytes like any list), so an export of the whole cache holds one page
 * in memory, never the cache. Rows committed during an export are not in it (the pages walk
 * down from the newest seq at the first read); rows deleted meanwhile may be missing. A store
 * error in the middle ends the stream without its last chunk, so a client sees a broken
 * transfer rather than a short file that looks whole. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json_print.h"
#include "http/http_internal.h"
#include "model/inference.h"
#include "model/view.h"

#define EXPORT_PAGE 200          /* rows per store read */
#define EXPORT_BLOCK (64 * 1024) /* libmicrohttpd's buffer per read */

/* Everything one export needs after its handler returned: owned by the response, freed by
 * libmicrohttpd (export_free) when the connection is done with it. */
typedef struct export_state {
    store *st;
    store_filter f;       /* label and source point into label/source below */
    char *label, *source; /* owned copies: the request's query strings end with the request */
    bool csv;
    bool started, done;
    util_buf out; /* rendered bytes; out.data[off..len) not yet handed out */
    size_t off;
} export_state;

static const char csv_header[] = "id,seq,ts,time,device,source,kind,top_label,top_score,anomaly,"
                                 "result,model_width,model_height,image_mime,image_bytes\r\n";

/* A CSV text field (RFC 4180): quoted when it holds a comma, quote, CR or LF, quotes doubled.
 * A field a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a leading '
 * (OWASP's advice for CSV injection): labels and names come from devices, not from the user. */
static er_rc csv_text(util_buf *b, const char *s)
{
    er_rc rc = ER_OK;
    if (!s) return ER_OK;
    bool formula = strchr("=+-@\t\r", s[0]) != NULL && s[0] != '\0';
    bool quote = formula || strpbrk(s, ",\"\r\n") != NULL;
    if (quote && (rc = util_buf_append(b, "\"", 1))) goto fail;
    if (formula && (rc = util_buf_append(b, "'", 1))) goto fail;
    for (const char *p = s; *p; p++) {
        if (*p == '"' && (rc = util_buf_append(b, "\"", 1))) goto fail;
        if ((rc = util_buf_append(b, p, 1))) goto fail;
    }
    if (quote) rc = util_buf_append(b, "\"", 1);
fail:
    return rc;
}

static er_rc csv_number(util_buf *b, bool has, double v)
{
    char num[JSON_PRINT_NUMBER_MAX];
    if (!has || !isfinite(v)) return ER_OK;
    return util_buf_append(b, num, json_print_number(v, num));
}

static er_rc csv_row(util_buf *b, const inference *inf)
{
    char time_s[40] = "";
    time_t t = (time_t)(inf->ts / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm)) {
        size_t n = strftime(time_s, sizeof time_s, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(time_s + n, sizeof time_s - n, ".%03dZ", (int)(inf->ts % 1000 + 1000) % 1000);
    }
    er_rc rc = util_buf_printf(b, "%s,%lld,%lld,%s,", inf->guid, (long long)inf->seq,
                               (long long)inf->ts, time_s);
    if (!rc) rc = csv_text(b, inf->device);
    if (!rc) rc = util_buf_append(b, ",", 1);
    if (!rc) rc = csv_text(b, inf->source);
    if (!rc) rc = util_buf_append(b, ",", 1);
    if (!rc) rc = csv_text(b, inference_kind_name(inf->kind));
    if (!rc) rc = util_buf_append(b, ",", 1);
    if (!rc) rc = csv_text(b, inf->top_label);
    if (!rc) rc = util_buf_append(b, ",", 1);
    if (!rc) rc = csv_number(b, inf->top_label != NULL, inf->top_score);
    if (!rc) rc = util_buf_append(b, ",", 1);
    if (!rc) rc = csv_number(b, inf->has_anomaly, inf->anomaly);
    if (!rc) rc = util_buf_append(b, ",", 1);
    if (!rc) rc = csv_text(b, inf->result_json ? inf->result_json : "{}");
    if (!rc)
        rc = util_buf_printf(b, ",%d,%d,%s,%zu\r\n", inf->model_width, inf->model_height,
                             inf->image.mime, inf->image.len);
    return rc;
}

/* One item of the array: the list's view of the row (view_render: the same bytes as
 * json_print(view_inference(inf))). */
static er_rc json_row(util_buf *b, const inference *inf, bool first)
{
    er_rc rc = ER_NOMEM;
    char *text = NULL, *tail = view_render_tail(inf);
    if (!tail || !(text = view_render(inf->guid, inf->seq, inf->ts, tail))) goto fail;
    rc = util_buf_append(b, first ? "\n" : ",\n", first ? 1 : 2);
    if (!rc) rc = util_buf_append(b, text, strlen(text));
fail:
    free(text);
    free(tail);
    return rc;
}

/* Renders the next part into x->out: the head, one store page, or the tail. */
static er_rc fill(export_state *x)
{
    er_rc rc = ER_OK;
    store_page page = {0};
    if (!x->started) {
        x->started = true;
        return x->csv ? util_buf_append(&x->out, csv_header, sizeof csv_header - 1)
                      : util_buf_append(&x->out, "[", 1);
    }
    bool first = x->f.before_seq == 0;
    if ((rc = store_list(x->st, &x->f, &page))) goto fail;
    for (size_t i = 0; !rc && i < page.n; i++) {
        rc = x->csv ? csv_row(&x->out, page.items[i])
                    : json_row(&x->out, page.items[i], first && i == 0);
    }
    if (rc) goto fail;
    x->f.before_seq = page.next_seq;
    if (page.next_seq == 0) {
        x->done = true;
        if (!x->csv) rc = util_buf_append(&x->out, "\n]\n", 3);
    }
fail:
    store_page_free(&page);
    return rc;
}

/* libmicrohttpd's content reader (an MHD thread): up to max bytes of the answer. */
static ssize_t export_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    export_state *x = cls;
    (void)pos;
    while (x->off == x->out.len) {
        if (x->done) return MHD_CONTENT_READER_END_OF_STREAM;
        x->out.len = 0;
        x->off = 0;
        if (fill(x) != ER_OK) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = x->out.len - x->off;
    if (n > max) n = max;
    memcpy(buf, x->out.data + x->off, n);
    x->off += n;
    return (ssize_t)n;
}

static void export_free(void *cls)
{
    export_state *x = cls;
    if (!x) return;
    util_buf_free(&x->out);
    free(x->label);
    free(x->source);
    free(x);
}

enum MHD_Result http_api_export(http_req *r)
{
    static const char *const allowed[] = {"label",  "min_score", "since", "until",
                                          "source", "format",    NULL};
    enum MHD_Result ret;
    struct MHD_Response *resp = NULL;
    export_state *x = NULL;
    if (!http_query_check(r, allowed, &ret)) return ret;
    const char *format = http_query(r, "format");
    if (format && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0)
        return http_reply_error(r, 400, "bad_request",
                                "query parameter 'format' must be 'csv' or 'json'");
    bool csv = format && strcmp(format, "csv") == 0;
    store_filter f = {.limit = EXPORT_PAGE};
    if (!http_list_filter(r, &f, &ret)) return ret;
    if (!(x = calloc(1, sizeof *x))) goto fail;
    x->st = r->srv->deps.st;
    x->csv = csv;
    x->f = f;
    if (f.label && !(x->f.label = x->label = strdup(f.label))) goto fail;
    if (f.source && !(x->f.source = x->source = strdup(f.source))) goto fail;
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, EXPORT_BLOCK, export_read, x,
                                             export_free);
    if (!resp) goto fail;
    x = NULL; /* the response owns it now */
    char disp[96];
    time_t now = (time_t)(util_now_ms() / 1000);
    struct tm tm;
    char stamp[24] = "export";
    if (gmtime_r(&now, &tm)) strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(disp, sizeof disp, "attachment; filename=\"ei-relay-%s.%s\"", stamp,
             csv ? "csv" : "json");
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                csv ? "text/csv; charset=utf-8" : "application/json") != MHD_YES ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disp) != MHD_YES ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES) {
        MHD_destroy_response(resp);
        return http_reply_error(r, 500, "internal", "out of memory starting the export");
    }
    return http_reply(r, 200, resp);
fail:
    export_free(x);
    return http_reply_error(r, 500, "internal", "out of memory starting the export");
}
