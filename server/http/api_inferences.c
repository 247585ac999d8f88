/* api_inferences.c - /api/v1/inferences: ingest (POST), list, get, image, thumbnail, delete.
 *
 * Ingest never blocks an HTTP thread on the disk: after parsing, the connection is suspended
 * and the inference goes to the store's writer; the writer's done callback records the result
 * and resumes the connection, and the answer is built when MHD calls the handler again. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_print.h"
#include "core/log.h"
#include "http/http_internal.h"
#include "model/view.h"
#include "ingest/ingest.h"
#include "media/image.h"

#define LABEL_MAX 256
#define SOURCE_MAX 64

/* Source names as the config accepts them: short and safe to show anywhere. */
static bool source_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SOURCE_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* Answers a view (cJSON, consumed) with a Location header when guid is given. */
static enum MHD_Result reply_view(http_req *r, unsigned status, cJSON *view, const char *guid)
{
    char *text = view ? json_print(view) : NULL;
    cJSON_Delete(view);
    if (!text) return http_reply_error(r, 500, "internal", "out of memory rendering the view");
    char loc[64];
    if (guid) snprintf(loc, sizeof loc, "/api/v1/inferences/%s", guid);
    return http_reply_json_at(r, status, text, guid ? loc : NULL);
}

/* ---- ingest ---- */

/* Store writer thread: record the result and wake the connection. Must not block.
 * MHD_resume_connection writes the daemon's eventfd every time; the writer calls this for a
 * whole commit batch in a row, so only the first completion is resumed here and the rest queue
 * for the MHD thread that the first one wakes (http_api_ingest_resume_queued): one system call
 * per batch on the writer instead of one per request. */
static void on_put_done(void *arg, const store_put_result *res)
{
    http_req *r = arg;
    http_server *s = r->srv;
    if (atomic_exchange(&r->put_done, true)) return;
    r->put = *res;
    pthread_mutex_lock(&s->resume_mu);
    bool kick = !s->resume_kicked;
    if (kick) {
        s->resume_kicked = true;
    } else {
        r->resume_next = NULL;
        if (s->resume_tail)
            s->resume_tail->resume_next = r;
        else
            s->resume_head = r;
        s->resume_tail = r;
    }
    pthread_mutex_unlock(&s->resume_mu);
    if (kick) MHD_resume_connection(r->conn);
}

/* Invariant: while resume_kicked, some resumed request has not yet come here, so whatever is
 * queued is taken by it. It is cleared only with the queue found empty. */
void http_api_ingest_resume_queued(http_server *s)
{
    pthread_mutex_lock(&s->resume_mu);
    http_req *q = s->resume_head;
    s->resume_head = s->resume_tail = NULL;
    if (!q) s->resume_kicked = false; /* else the ones resumed below come here in turn */
    pthread_mutex_unlock(&s->resume_mu);
    while (q) {
        http_req *next = q->resume_next; /* read first: q may complete once resumed */
        MHD_resume_connection(q->conn);
        q = next;
    }
}

enum MHD_Result http_api_ingest(http_req *r)
{
    static const char *const allowed[] = {"source", NULL};
    http_server *s = r->srv;
    enum MHD_Result ret;
    if (!http_query_check(r, allowed, &ret)) return ret;
    const char *source = http_query(r, "source");
    if (source && !source_name_ok(source))
        return http_reply_error(r, 400, "bad_request",
                                "query parameter 'source' must be 1 to %d letters, digits, "
                                "'-', '_' or '.'",
                                SOURCE_MAX);
    const char *ct =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    int64_t max = s->deps.cfg->max_body_bytes;
    normalize_opts o = {.device = s->deps.device,
                        .source = source ? source : "http",
                        .max_image_bytes = max > 0 ? (size_t)max : 0,
                        .now_ms = util_now_ms(),
                        .lim = normalize_limits_of(s->deps.cfg)};
    inference *inf = NULL;
    er_err err = {{0}};
    const uint8_t *body = r->body.data ? (const uint8_t *)r->body.data : (const uint8_t *)"";
    er_rc rc = ingest_parse(ct, body, r->body.len, &o, &inf, &err);
    if (rc) return http_reply_rc(r, rc, err.msg);
    http_req_body_free(r);

    /* The store owns inf from store_put_async on, so the answer is rendered now; only id,
     * seq and ts are put before it from the commit result. */
    r->view_tail = view_render_tail(inf);
    if (!r->view_tail) {
        inference_destroy(inf);
        return http_reply_error(r, 500, "internal", "out of memory rendering the view");
    }

    /* Suspend before submitting: the done callback may run (and resume) before
     * store_put_async even returns. */
    if (!http_req_count_suspended(r)) {
        inference_destroy(inf);
        return http_reply_error(r, 503, "unavailable",
                                "the relay is shutting down; the inference was not stored");
    }
    r->state = HTTP_REQ_WAIT_PUT;
    MHD_suspend_connection(r->conn);
    rc = store_try_put_async(s->deps.st, inf, on_put_done, r);
    if (rc && !atomic_exchange(&r->put_done, true)) {
        r->put.rc = rc;
        MHD_resume_connection(r->conn);
    }
    return MHD_YES;
}

enum MHD_Result http_api_ingest_finish(http_req *r)
{
    const store_put_result *p = &r->put;
    if (p->rc != ER_OK) {
        if (p->rc == ER_FULL)
            return http_reply_error(r, 507, "storage_full",
                                    "the disk is full; the inference was not stored");
        return http_reply_rc(r, p->rc, "the inference could not be stored");
    }
    if (p->duplicate) {
        /* An idempotent retry: answer what is stored, not what was sent this time; but only to
         * a token that may read it. An ingest-only token gets just the id (and 200: the client
         * knows its retry landed), so posting a known id never reads a row back. */
        if (!auth_allows(r->role, AUTH_READ)) {
            cJSON *o = cJSON_CreateObject();
            if (o && !cJSON_AddStringToObject(o, "id", p->guid)) {
                cJSON_Delete(o);
                o = NULL;
            }
            return reply_view(r, 200, o, p->guid);
        }
        inference *stored = NULL;
        er_rc rc = store_get(r->srv->deps.st, p->guid, &stored);
        if (rc) return http_reply_rc(r, rc, "the stored inference could not be read");
        cJSON *view = view_inference(stored);
        inference_destroy(stored);
        return reply_view(r, 200, view, p->guid);
    }
    char *text = view_render(p->guid, p->seq, p->ts, r->view_tail);
    if (!text) return http_reply_error(r, 500, "internal", "out of memory rendering the view");
    char loc[64];
    snprintf(loc, sizeof loc, "/api/v1/inferences/%s", p->guid);
    return http_reply_json_at(r, 201, text, loc);
}

void http_req_free_ingest(http_req *r)
{
    free(r->view_tail);
    r->view_tail = NULL;
}

/* ---- reads ---- */

bool http_list_filter(http_req *r, store_filter *f, enum MHD_Result *ret)
{
    const char *v;
    if ((v = http_query(r, "label"))) {
        if (!*v || strlen(v) > LABEL_MAX) {
            *ret = http_reply_error(r, 400, "bad_request",
                                    "query parameter 'label' must be 1 to %d bytes", LABEL_MAX);
            return false;
        }
        f->label = v;
    }
    if ((v = http_query(r, "source"))) {
        if (!source_name_ok(v)) {
            *ret = http_reply_error(r, 400, "bad_request",
                                    "query parameter 'source' is not a source name");
            return false;
        }
        f->source = v;
    }
    if ((v = http_query(r, "min_score"))) {
        if (!http_decimal_ok(v, true) || util_parse_double(v, &f->min_score) || f->min_score < 0 ||
            f->min_score > 1) {
            *ret = http_reply_error(r, 400, "bad_request",
                                    "query parameter 'min_score' must be a number from 0 to 1");
            return false;
        }
        f->has_min_score = true;
    }
    if ((v = http_query(r, "since"))) {
        if (http_parse_time(v, &f->since_ms)) {
            *ret = http_reply_error(r, 400, "bad_request",
                                    "query parameter 'since' must be epoch ms or RFC 3339");
            return false;
        }
        f->has_since = true;
    }
    if ((v = http_query(r, "until"))) {
        if (http_parse_time(v, &f->until_ms)) {
            *ret = http_reply_error(r, 400, "bad_request",
                                    "query parameter 'until' must be epoch ms or RFC 3339");
            return false;
        }
        f->has_until = true;
    }
    return true;
}

enum MHD_Result http_api_list(http_req *r)
{
    static const char *const allowed[] = {"label",  "min_score", "since",  "until",
                                          "source", "limit",     "cursor", NULL};
    enum MHD_Result ret;
    if (!http_query_check(r, allowed, &ret)) return ret;
    store_filter f = {.limit = 50};
    const char *v;
    if (!http_list_filter(r, &f, &ret)) return ret;
    if ((v = http_query(r, "limit"))) {
        int64_t limit;
        if (!http_decimal_ok(v, false) || util_parse_i64(v, &limit) || limit < 1 || limit > 1000)
            return http_reply_error(r, 400, "bad_request",
                                    "query parameter 'limit' must be an integer from 1 to 1000");
        f.limit = (int)limit;
    }
    if ((v = http_query(r, "cursor"))) {
        if (http_cursor_decode(v, &f.before_seq))
            return http_reply_error(r, 400, "bad_request",
                                    "query parameter 'cursor' is not a cursor from 'next'");
    }

    store_page page = {0};
    er_rc rc = store_list(r->srv->deps.st, &f, &page);
    if (rc) return http_reply_rc(r, rc, "the inferences could not be listed");
    cJSON *o = cJSON_CreateObject();
    cJSON *items = o ? cJSON_AddArrayToObject(o, "items") : NULL;
    bool ok = items != NULL;
    for (size_t i = 0; ok && i < page.n; i++) {
        cJSON *view = view_inference(page.items[i]);
        ok = view != NULL;
        if (ok) cJSON_AddItemToArray(items, view);
    }
    if (ok && page.next_seq > 0) {
        char cursor[HTTP_CURSOR_MAX];
        http_cursor_encode(page.next_seq, cursor);
        ok = cJSON_AddStringToObject(o, "next", cursor) != NULL;
    } else if (ok) {
        ok = cJSON_AddNullToObject(o, "next") != NULL;
    }
    store_page_free(&page);
    if (!ok) {
        cJSON_Delete(o);
        return http_reply_error(r, 500, "internal", "out of memory rendering the list");
    }
    return http_reply_cjson(r, 200, o);
}

static enum MHD_Result reply_not_found(http_req *r, const char *what)
{
    return http_reply_error(r, 404, "not_found", "%s %s", what, r->route.guid);
}

enum MHD_Result http_api_get(http_req *r)
{
    static const char *const allowed[] = {NULL};
    enum MHD_Result ret;
    if (!http_query_check(r, allowed, &ret)) return ret;
    inference *inf = NULL;
    er_rc rc = store_get(r->srv->deps.st, r->route.guid, &inf);
    if (rc == ER_NOTFOUND) return reply_not_found(r, "no inference with id");
    if (rc) return http_reply_rc(r, rc, "the inference could not be read");
    cJSON *view = view_inference(inf);
    inference_destroy(inf);
    return reply_view(r, 200, view, NULL);
}

/* Answers bytes (malloc'd, consumed) with a type and an immutable cache policy: an id's
 * image never changes (the id would be deleted, never rewritten). */
static enum MHD_Result reply_bytes(http_req *r, uint8_t *data, size_t len, const char *mime)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(data);
        return http_reply(r, 200, NULL);
    }
    MHD_add_response_header(resp, "Content-Type", mime);
    MHD_add_response_header(resp, "Cache-Control", "private, max-age=86400, immutable");
    return http_reply(r, 200, resp);
}

enum MHD_Result http_api_image(http_req *r)
{
    static const char *const allowed[] = {NULL};
    enum MHD_Result ret;
    if (!http_query_check(r, allowed, &ret)) return ret;
    inference_image img = {0};
    er_rc rc = store_get_image(r->srv->deps.st, r->route.guid, &img);
    if (rc == ER_NOTFOUND || (rc == ER_OK && (!img.data || img.len == 0))) {
        free(img.data);
        return reply_not_found(r, "no image for inference");
    }
    if (rc) return http_reply_rc(r, rc, "the image could not be read");
    /* MHD copies the header value, so img.mime may stay on the stack */
    return reply_bytes(r, img.data, img.len, img.mime[0] ? img.mime : "application/octet-stream");
}

enum MHD_Result http_api_thumbnail(http_req *r)
{
    static const char *const allowed[] = {NULL};
    enum MHD_Result ret;
    if (!http_query_check(r, allowed, &ret)) return ret;
    store *st = r->srv->deps.st;
    uint8_t *thumb = NULL;
    size_t thumb_len = 0;
    er_rc rc = store_get_thumbnail(st, r->route.guid, &thumb, &thumb_len);
    if (rc == ER_OK) return reply_bytes(r, thumb, thumb_len, "image/jpeg");
    if (rc != ER_NOTFOUND) return http_reply_rc(r, rc, "the thumbnail could not be read");

    /* Not cached yet: make it from the image and cache it for the next request. */
    inference_image img = {0};
    rc = store_get_image(st, r->route.guid, &img);
    if (rc == ER_NOTFOUND || (rc == ER_OK && (!img.data || img.len == 0))) {
        free(img.data);
        return reply_not_found(r, "no image for inference");
    }
    if (rc) return http_reply_rc(r, rc, "the image could not be read");
    int px = r->srv->deps.cfg->thumbnail_px > 0 ? r->srv->deps.cfg->thumbnail_px : 160;
    rc = media_thumbnail(img.data, img.len, px, &thumb, &thumb_len);
    free(img.data);
    if (rc) {
        /* ER_IO: no libvips module; say which file, so the operator can install it */
        const char *missing = rc == ER_IO ? media_unavailable() : NULL;
        char why[400];
        snprintf(why, sizeof why, "the thumbnail could not be made%s%s", missing ? ": " : "",
                 missing ? missing : "");
        return http_reply_rc(r, rc == ER_NOMEM ? ER_NOMEM : ER_INTERNAL, why);
    }
    er_rc crc = store_set_thumbnail(st, r->route.guid, thumb, thumb_len);
    if (crc) log_warn("http", "thumbnail of %s not cached: %s", r->route.guid, er_rc_name(crc));
    return reply_bytes(r, thumb, thumb_len, "image/jpeg");
}

enum MHD_Result http_api_delete(http_req *r)
{
    static const char *const allowed[] = {NULL};
    enum MHD_Result ret;
    if (!http_query_check(r, allowed, &ret)) return ret;
    er_rc rc = store_delete(r->srv->deps.st, r->route.guid);
    if (rc == ER_NOTFOUND) return reply_not_found(r, "no inference with id");
    if (rc) return http_reply_rc(r, rc, "the inference could not be deleted");
    /* the store told the live stream before answering, so dashboards drop its card */
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    return http_reply(r, 204, resp);
}
