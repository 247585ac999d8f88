/* http.c - the libmicrohttpd daemon, the request lifecycle and routing, and the reply helpers.
 *
 * Lifecycle of one request (one http_req per request, in con_cls, freed when MHD reports the
 * request completed): on the first call the head's framing is checked (a head two parsers could
 * read two ways is a 400 with Connection: close), then the route, method and token are decided
 * and any 400/401/403/404/405/413 is queued at once, so MHD never reads that body. Ingest bodies
 * are then accumulated (bounded by max_body_bytes) and handed to api_inferences.c, which suspends
 * the connection until the store's commit callback resumes it. Routes, their roles and handlers are
 * the rows of the route table (http_routes.c). With a certificate (deps->tls) the daemon speaks
 * only HTTPS (GnuTLS inside libmicrohttpd). */
#include "http/http.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/json_print.h"
#include "core/log.h"
#include "http/http_internal.h"

#define HTTP_CONN_TIMEOUT_S 30  /* idle limit once a request has started (bodies, keep-alive) */
#define HTTP_HEADER_TIMEOUT_S 5 /* idle limit before a new connection's first request head */
#define HTTP_STOP_WAIT_MS 10000 /* period of the warning while stopping waits */
#define HTTP_DISCARD_MAX (64u * 1024 * 1024) /* most bytes drained after a 413 decision */
/* GnuTLS priorities of HTTPS: its defaults without TLS 1.0 and 1.1 */
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-TLS1.1:-VERS-TLS1.0"

static void count_status(http_req *r, unsigned status)
{
    if (status >= HTTP_STATUS_MAX) return;
    atomic_fetch_add_explicit(&r->srv->by_status[status], 1, memory_order_relaxed);
    if (r->route.id == HTTP_ROUTE_INFERENCES && r->route.method == HTTP_M_POST)
        atomic_fetch_add_explicit(&r->srv->ingest_by_status[status], 1, memory_order_relaxed);
}

enum MHD_Result http_reply(http_req *r, unsigned status, struct MHD_Response *resp)
{
    if (!resp) {
        log_error("http", "%s %s: out of memory building the response", r->method, r->path);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    /* libmicrohttpd closes the connection after a response that says so: nothing the client
     * sent after a head it could not frame is read as another request */
    if (r->close) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (status == 503) MHD_add_response_header(resp, "Retry-After", "1"); /* busy or stopping */
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    r->state = HTTP_REQ_ANSWERED;
    count_status(r, status);
    return ret;
}

enum MHD_Result http_reply_json(http_req *r, unsigned status, char *json)
{
    return http_reply_json_at(r, status, json, NULL);
}

enum MHD_Result http_reply_json_at(http_req *r, unsigned status, char *json, const char *location)
{
    if (!json) {
        log_error("http", "%s %s: out of memory rendering JSON", r->method, r->path);
        return MHD_NO;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(json);
        return http_reply(r, status, NULL);
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (location) MHD_add_response_header(resp, "Location", location);
    return http_reply(r, status, resp);
}

enum MHD_Result http_reply_cjson(http_req *r, unsigned status, void *cjson)
{
    char *text = cjson ? json_print(cjson) : NULL;
    cJSON_Delete(cjson);
    return http_reply_json(r, status, text);
}

/* Logs the error answer and renders its body {"error":{"code","message"}} (malloc'd). The
 * message may echo the client's bytes (a path, a method, a header), so it is made valid UTF-8
 * first: the answer must be JSON every client can read. */
static char *error_text(http_req *r, unsigned status, const char *code, char *message)
{
    util_utf8_scrub(message);
    /* One line per error answer, without headers (no token can reach the log); a client
     * past a rate limit would otherwise write one per request. */
    if (status == 429)
        log_ratelimited(LOG_INFO, "http", "429", "%s %s -> %u %s: %s", r->method ? r->method : "?",
                        r->path ? r->path : "?", status, code, message);
    else
        log_msg(status >= 500 ? LOG_WARN : LOG_INFO, "http", "%s %s -> %u %s: %s",
                r->method ? r->method : "?", r->path ? r->path : "?", status, code, message);
    cJSON *o = cJSON_CreateObject();
    cJSON *e = o ? cJSON_AddObjectToObject(o, "error") : NULL;
    char *text = NULL;
    if (e && cJSON_AddStringToObject(e, "code", code) &&
        cJSON_AddStringToObject(e, "message", message))
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/* libmicrohttpd 0.9.75 cannot queue a response while an upload is still arriving, yet a
 * chunked sender that went past a limit must hear the answer without sending everything. So the
 * answer is written straight to the socket and the connection is closed once the rest of the
 * body is drained or HTTP_DISCARD_MAX is reached. Over HTTPS the socket carries TLS records that
 * only libmicrohttpd may write: there the connection is closed at once, without an answer
 * (returns false). message is scrubbed in place (see error_text). */
static bool raw_reply(http_req *r, unsigned status, const char *code, char *message)
{
    if (r->srv->deps.tls) {
        log_ratelimited(LOG_INFO, "http", "raw-close", "%s %s -> %u %s: %s: closed (HTTPS)",
                        r->method, r->path, status, code, message);
        count_status(r, status);
        return false;
    }
    char *text = error_text(r, status, code, message);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    count_status(r, status);
    r->state = HTTP_REQ_DISCARD;
    if (!text || !ci) goto done;
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %u %s\r\nConnection: close\r\n%s"
                     "Content-Type: application/json\r\nCache-Control: no-store\r\n"
                     "X-Content-Type-Options: nosniff\r\nContent-Length: %zu\r\n\r\n",
                     status, status == 503 ? "Service Unavailable" : "Payload Too Large",
                     status == 503 ? "Retry-After: 1\r\n" : "", strlen(text));
    /* A few hundred bytes on an idle socket: the send buffer takes them at once. */
    if (n > 0 && (size_t)n < sizeof head &&
        send(ci->connect_fd, head, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n)
        (void)!send(ci->connect_fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
done:
    free(text);
    return true;
}

static bool raw_reply_413(http_req *r)
{
    char message[128];
    snprintf(message, sizeof message, "the body is larger than the limit of %lld bytes",
             (long long)r->srv->deps.cfg->max_body_bytes);
    return raw_reply(r, 413, "payload_too_large", message);
}

/* Takes n more bytes of the bodies budget for r; false (nothing taken) when they do not fit. */
static bool body_reserve(http_req *r, int64_t n)
{
    http_server *s = r->srv;
    int64_t held = atomic_fetch_add(&s->bodies_held, n);
    if (held + n > s->bodies_max) {
        atomic_fetch_sub(&s->bodies_held, n);
        return false;
    }
    r->body_held += n;
    return true;
}

void http_req_body_free(http_req *r)
{
    util_buf_free(&r->body);
    atomic_fetch_sub(&r->srv->bodies_held, r->body_held);
    r->body_held = 0;
}

static const char bodies_full_fmt[] =
    "request bodies being received hold max_bodies_bytes (%lld); retry shortly";

enum MHD_Result http_reply_error(http_req *r, unsigned status, const char *code, const char *fmt,
                                 ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    char *text = error_text(r, status, code, message);
    if (!text) return http_reply_json(r, status, NULL);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return http_reply(r, status, NULL);
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    if (status == 429) {
        char secs[24];
        snprintf(secs, sizeof secs, "%lld", ratelimit_retry_s(r->retry_ms));
        MHD_add_response_header(resp, "Retry-After", secs);
    }
    if (status == 405 && r->route.allow) MHD_add_response_header(resp, "Allow", r->route.allow);
    return http_reply(r, status, resp);
}

enum MHD_Result http_reply_rc(http_req *r, er_rc rc, const char *message)
{
    const char *m = message && *message ? message : er_rc_name(rc);
    switch (rc) {
    case ER_INVALID:
        return http_reply_error(r, 400, "bad_request", "%s", m);
    case ER_SHAPE:
        return http_reply_error(r, 422, "unprocessable", "%s", m);
    case ER_NOTFOUND:
        return http_reply_error(r, 404, "not_found", "%s", m);
    case ER_TOOBIG:
        return http_reply_error(r, 413, "payload_too_large", "%s", m);
    case ER_UNSUPPORTED:
        return http_reply_error(r, 415, "unsupported_media_type", "%s", m);
    case ER_FULL:
        return http_reply_error(r, 507, "storage_full", "the disk is full: %s", m);
    case ER_CLOSED:
        return http_reply_error(r, 503, "unavailable", "the service is shutting down");
    case ER_BUSY:
        return http_reply_error(r, 503, "unavailable",
                                "the database is locked by another process; retry: %s", m);
    default:
        return http_reply_error(r, 500, "internal", "internal error: %s", m);
    }
}

/* ---- query strings ---- */

typedef struct query_scan {
    const char *const *allowed;
    char bad[128]; /* first offending name */
    bool repeated; /* bad names a repeated parameter (else an unknown one) */
    const char *seen[16];
    size_t n_seen;
} query_scan;

static enum MHD_Result scan_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    query_scan *q = cls;
    if (q->bad[0]) return MHD_NO;
    if (!http_query_name_ok(key, q->allowed)) {
        snprintf(q->bad, sizeof q->bad, "%s", key ? key : "");
        if (!q->bad[0]) snprintf(q->bad, sizeof q->bad, "(empty)");
        return MHD_NO;
    }
    for (size_t i = 0; i < q->n_seen; i++) {
        if (strcmp(q->seen[i], key) == 0) {
            snprintf(q->bad, sizeof q->bad, "%s", key);
            q->repeated = true;
            return MHD_NO;
        }
    }
    /* allowed names are few (< 16), so seen cannot overflow for names that passed */
    if (q->n_seen < sizeof q->seen / sizeof q->seen[0]) q->seen[q->n_seen++] = key;
    return MHD_YES;
}

bool http_query_check(http_req *r, const char *const *allowed, enum MHD_Result *ret)
{
    query_scan q = {.allowed = allowed};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, scan_query, &q);
    if (!q.bad[0]) return true;
    if (q.repeated)
        *ret = http_reply_error(r, 400, "bad_request", "query parameter '%.100s' is given twice",
                                q.bad);
    else
        *ret = http_reply_error(r, 400, "bad_request", "unknown query parameter '%.100s'", q.bad);
    return false;
}

const char *http_query(http_req *r, const char *name)
{
    const char *v = NULL;
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v,
                                      NULL) != MHD_YES)
        return NULL;
    return v ? v : "";
}

/* ---- request lifecycle ---- */

bool http_req_count_suspended(http_req *r)
{
    /* One step with the stopping check: http_server_destroy sets stopping under this mutex
     * and then waits for the count, so no request can suspend after that wait saw zero. */
    pthread_mutex_lock(&r->srv->mu);
    bool ok = !atomic_load(&r->srv->stopping);
    if (ok) {
        r->srv->suspended++;
        r->counted = true;
    }
    pthread_mutex_unlock(&r->srv->mu);
    return ok;
}

static void uncount_suspended(http_req *r)
{
    if (!r->counted) return;
    http_api_ingest_resume_queued(r->srv); /* those committed behind r */
    pthread_mutex_lock(&r->srv->mu);
    r->srv->suspended--;
    r->counted = false;
    pthread_cond_broadcast(&r->srv->cv);
    pthread_mutex_unlock(&r->srv->mu);
}

/* Dispatches a request whose body (if any) is complete to the handler its route row names. */
static enum MHD_Result dispatch(http_req *r)
{
    if (r->route.run) return r->route.run(r);
    return http_reply_error(r, 404, "not_found", "no such resource: %s", r->path);
}

/* Everything decided before any body byte is read. Returns true if an answer was queued. */
static enum MHD_Result add_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    http_framing_add(cls, key, value);
    return MHD_YES;
}

static bool first_call(http_req *r, enum MHD_Result *ret)
{
    http_server *s = r->srv;
    if (atomic_load(&s->stopping)) {
        *ret = http_reply_error(r, 503, "unavailable", "the service is shutting down");
        return true;
    }
    http_limits_peer(r);
    /* Before anything else: a head two parsers could frame two ways (request smuggling) is
     * refused and the connection closed, whatever the path. */
    http_framing f = {0};
    char why[160];
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, add_framing, &f);
    if (http_framing_problem(&f, why, sizeof why)) {
        r->close = true;
        *ret = http_reply_error(r, 400, "bad_request", "%s", why);
        return true;
    }
    http_route_match(r->method, r->path, &r->route);
    if (r->route.status == 404) {
        *ret = http_reply_error(r, 404, "not_found", "no such resource: %s", r->path);
        return true;
    }
    if (r->route.status == 405) {
        *ret =
            http_reply_error(r, 405, "method_not_allowed", "%s is not allowed on %s (allowed: %s)",
                             r->method, r->path, r->route.allow);
        return true;
    }
    if (r->route.method != HTTP_M_POST) {
        /* Only ingest takes a body; refusing one up front keeps an unauthenticated client
         * from streaming an endless body at GET / or the health check. */
        const char *cl =
            MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *te = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_TRANSFER_ENCODING);
        if ((cl && strcmp(cl, "0") != 0) || te) {
            *ret = http_reply_error(r, 400, "bad_request", "%s %s takes no request body", r->method,
                                    r->path);
            return true;
        }
    }
    const char *authz =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (r->route.need != AUTH_NONE) {
        /* an address refused for its failed logins is refused whatever token it sends now */
        if (http_limits_blocked(r, ret)) return true;
        auth_role have = auth_check(s->deps.au, authz);
        if (authz) http_limits_auth(r, have != AUTH_NONE); /* no token is not a guess */
        if (have == AUTH_NONE) {
            *ret = http_reply_error(r, 401, "unauthorized",
                                    authz ? "the bearer token is not valid"
                                          : "an Authorization: Bearer token is required");
            return true;
        }
        r->role = have;
        if (!auth_allows(have, r->route.need)) {
            *ret = http_reply_error(r, 403, "forbidden", "this token's role may not %s %s",
                                    r->method, r->path);
            return true;
        }
    }
    if (!http_limits_take(r, authz, ret)) return true;
    if (r->route.has_id && !r->route.id_ok) {
        *ret = http_reply_error(r, 400, "bad_request", "id '%s' is not a uuid", r->route.guid);
        return true;
    }
    if (r->route.method == HTTP_M_POST) {
        const char *cl =
            MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        int64_t len = 0;
        int64_t max = s->deps.cfg->max_body_bytes;
        if (cl && util_parse_i64(cl, &len) == ER_OK && max > 0 && len > max) {
            *ret = http_reply_error(r, 413, "payload_too_large",
                                    "the body has %lld bytes; the limit is %lld", (long long)len,
                                    (long long)max);
            return true;
        }
        /* a declared body takes its room before a byte is read (refused while others hold it) */
        if (cl && len > 0 && !body_reserve(r, len)) {
            *ret =
                http_reply_error(r, 503, "unavailable", bodies_full_fmt, (long long)s->bodies_max);
            return true;
        }
    }
    return false;
}

/* Moves the connection's deadline (http_deadline.c) to the request's new phase. */
static void conn_phase(http_server *s, struct MHD_Connection *conn, http_phase phase)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci) http_deadlines_phase(s->deadlines, ci->socket_context, phase);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    http_server *s = cls;
    http_req *r = *con_cls;
    enum MHD_Result ret = MHD_YES;
    if (r && *upload_data_size == 0) conn_phase(s, conn, HTTP_PHASE_ANSWER); /* body complete */
    if (!r) {
        conn_phase(s, conn, HTTP_PHASE_BODY); /* the head is complete */
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO; /* MHD closes the connection */
        r->srv = s;
        r->conn = conn;
        r->method = method;
        r->path = url;
        *con_cls = r;
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
                                  (unsigned)HTTP_CONN_TIMEOUT_S);
        if (first_call(r, &ret)) return ret;
        r->state = HTTP_REQ_BODY;
        return MHD_YES;
    }
    switch (r->state) {
    case HTTP_REQ_BODY:
        if (*upload_data_size > 0) {
            size_t n = *upload_data_size;
            *upload_data_size = 0;
            atomic_fetch_add_explicit(&s->bytes_received, n, memory_order_relaxed);
            if (r->route.method != HTTP_M_POST) return MHD_YES; /* bodies of GETs are ignored */
            int64_t max = s->deps.cfg->max_body_bytes;
            if (max > 0 && (r->body.len > (size_t)max || n > (size_t)max - r->body.len)) {
                /* A chunked (or lying) body grew past the limit. libmicrohttpd 0.9.75 cannot
                 * queue a response in the middle of an upload (see raw_reply_413). */
                http_req_body_free(r);
                return raw_reply_413(r) ? MHD_YES : MHD_NO;
            }
            int64_t more = (int64_t)(r->body.len + n) - r->body_held;
            if (more > 0 && !body_reserve(r, more)) { /* chunked, or longer than declared */
                char message[160];
                snprintf(message, sizeof message, bodies_full_fmt, (long long)s->bodies_max);
                http_req_body_free(r);
                return raw_reply(r, 503, "unavailable", message) ? MHD_YES : MHD_NO;
            }
            if (util_buf_append(&r->body, upload_data, n) != ER_OK)
                return http_reply_error(r, 500, "internal", "out of memory for the body");
            return MHD_YES;
        }
        return dispatch(r);
    case HTTP_REQ_DISCARD:
        if (*upload_data_size > 0) {
            r->discarded += *upload_data_size;
            atomic_fetch_add_explicit(&s->bytes_received, *upload_data_size, memory_order_relaxed);
            *upload_data_size = 0;
            /* Draining is bounded too: a sender that keeps going past this is cut off. */
            return r->discarded > HTTP_DISCARD_MAX ? MHD_NO : MHD_YES;
        }
        return MHD_NO; /* the 413 went out already: close */
    case HTTP_REQ_WAIT_PUT:
        if (*upload_data_size > 0) {
            *upload_data_size = 0; /* cannot happen: the body was complete before suspending */
            return MHD_YES;
        }
        uncount_suspended(r);
        return http_api_ingest_finish(r);
    case HTTP_REQ_ANSWERED:
        *upload_data_size = 0; /* discard whatever is still arriving */
        return MHD_YES;
    default:
        return MHD_NO;
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_req *r = *con_cls;
    if (!r) return;
    conn_phase(r->srv, conn, HTTP_PHASE_HEAD); /* a keep-alive connection's next request */
    /* a resumed connection whose client went away completes without another handler call */
    uncount_suspended(r);
    http_req_body_free(r);
    http_req_free_ingest(r);
    free(r);
    *con_cls = NULL;
}

static size_t on_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    return http_unescape(s);
}

/* A new connection gets its absolute head deadline (http_deadline.c), and an idle limit of
 * HTTP_HEADER_TIMEOUT_S: libmicrohttpd waits for a line end forever otherwise (binary garbage,
 * a TLS hello on the plain port). The deadline is dropped before libmicrohttpd closes the
 * socket. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    http_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        atomic_fetch_sub(&s->open_conns, 1);
        http_deadlines_close(s->deadlines, *socket_context);
        *socket_context = NULL;
        return;
    }
    atomic_fetch_add(&s->open_conns, 1);
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)HTTP_HEADER_TIMEOUT_S);
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *peer =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    *socket_context =
        fd ? http_deadlines_open(s->deadlines, fd->connect_fd, peer ? peer->client_addr : NULL)
           : NULL;
}

/* MHD's format strings are its own, so the printf-style check is satisfied by the attribute */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    /* a client can make libmicrohttpd log at will (an accept storm at the limits): the kind
     * is the message's format, so each message has its own budget */
    char kind[40];
    snprintf(kind, sizeof kind, "%s", fmt);
    log_ratelimited(LOG_WARN, "http", kind, "libmicrohttpd: %s", line);
}

er_rc http_server_create(const http_deps *deps, http_server **out, er_err *err)
{
    er_rc rc = ER_NOMEM;
    http_server *s = calloc(1, sizeof *s);
    if (!s) goto fail;
    s->deps = *deps;
    s->listen_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->resume_mu, NULL);
    const config *cfg = deps->cfg;
    s->max_conns =
        (unsigned)(deps->max_connections > 0 ? deps->max_connections : cfg->http_max_connections);
    s->max_per_ip = (unsigned)cfg->http_max_connections_per_ip;
    s->bodies_max =
        cfg->max_bodies_bytes > cfg->max_body_bytes ? cfg->max_bodies_bytes : cfg->max_body_bytes;
    rc = http_deadlines_create(cfg->http_header_timeout_ms, cfg->http_body_timeout_ms,
                               &s->deadlines, err);
    if (rc) goto fail;
    rc = http_limits_create(s, err);
    if (rc) goto fail;
    rc = ER_NOMEM;

    struct sockaddr_in a4 = {0};
    struct sockaddr_in6 a6 = {0};
    const struct sockaddr *addr;
    socklen_t addr_len;
    /* the listening socket is http_accept.c's, which spreads the connections evenly */
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_NO_LISTEN_SOCKET;
    const char *bind = cfg->bind && *cfg->bind ? cfg->bind : "0.0.0.0";
    if (cfg->http_port < 0 || cfg->http_port > 65535) {
        rc = er_fail(err, ER_CONFIG, "http_port %d is not a port number", cfg->http_port);
        goto fail;
    }
    if (inet_pton(AF_INET, bind, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)cfg->http_port);
        addr = (const struct sockaddr *)&a4;
        addr_len = sizeof a4;
    } else if (inet_pton(AF_INET6, bind, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)cfg->http_port);
        addr = (const struct sockaddr *)&a6;
        addr_len = sizeof a6;
    } else {
        rc = er_fail(err, ER_CONFIG, "bind '%s' is not an IP address", bind);
        goto fail;
    }
    /* HTTPS: the certificate and key from memory (read and checked by tls/), TLS 1.2 or newer;
     * the same port then never speaks plain HTTP. Without TLS the array is empty. */
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, deps->tls ? (void *)tls_cert_pem(deps->tls) : NULL},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, deps->tls ? (void *)tls_key_pem(deps->tls) : NULL},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)HTTP_TLS_PRIORITIES},
        {MHD_OPTION_END, 0, NULL},
    };
    if (deps->tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            rc = er_fail(err, ER_CONFIG,
                         "tls_cert_file is set but this libmicrohttpd was built without TLS");
            goto fail;
        }
        flags |= MHD_USE_TLS;
    }
    char where[80];
    snprintf(where, sizeof where, "%s:%d", bind, cfg->http_port);
    rc = http_accept_listen(s, addr, addr_len, where, err);
    if (rc) goto fail;
    unsigned threads = cfg->http_threads > 1 ? (unsigned)cfg->http_threads : 1;
    /* the logger must be the first option so MHD's own start-up messages use it too */
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->http_port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, s, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
        s->max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->max_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONN_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_UNESCAPE_CALLBACK, on_unescape, s, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, s, MHD_OPTION_ARRAY, deps->tls ? tls_opts : tls_opts + 3, MHD_OPTION_END);
    if (!s->daemon) {
        rc = er_fail(err, ER_IO, "cannot start the HTTP server on %s:%d (%s%s)", bind,
                     cfg->http_port, strerror(errno),
                     deps->tls ? "; or GnuTLS refused the certificate" : "");
        goto fail;
    }
    rc = http_accept_start(s, err);
    if (rc) goto fail;
    *out = s;
    return ER_OK;
fail:
    http_server_destroy(s);
    return rc;
}

uint16_t http_server_port(const http_server *h)
{
    return h ? h->port : 0;
}

void http_server_destroy(http_server *h)
{
    if (!h) return;
    pthread_mutex_lock(&h->mu);
    atomic_store(&h->stopping, true);
    pthread_mutex_unlock(&h->mu);
    http_accept_stop(h); /* no new connection from here on */
    if (h->daemon) {
        /* Let suspended ingest requests finish (the store is still running and calls back
         * every queued put) before stopping: libmicrohttpd 0.9.75 must not be stopped with
         * suspended connections, and their request structs are still the callbacks' args, so
         * there is no safe timeout here, only a warning while it takes long. */
        pthread_mutex_lock(&h->mu);
        while (h->suspended > 0) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += HTTP_STOP_WAIT_MS / 1000;
            if (pthread_cond_timedwait(&h->cv, &h->mu, &until) == ETIMEDOUT)
                log_warn("http", "stopping: still waiting for %d ingest commit(s)", h->suspended);
        }
        pthread_mutex_unlock(&h->mu);
        MHD_stop_daemon(h->daemon);
    }
    http_deadlines_destroy(h->deadlines); /* no connection is left */
    ratelimit_destroy(h->requests);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->resume_mu);
    free(h);
}
