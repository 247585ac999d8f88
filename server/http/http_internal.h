/* http_internal.h - what the HTTP server's files share: the server and per-request structs, the
 * reply helpers (http.c) and the handlers (api_inferences.c, api_status.c, static_files.c) the
 * route table (http_routes.c) names.
 * Not for other modules. */
#ifndef EI_HTTP_HTTP_INTERNAL_H
#define EI_HTTP_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/ratelimit.h"
#include "core/util.h"
#include "http/http.h"
#include "http/http_parse.h"
#include "store/store.h"

#define HTTP_STATUS_MAX 600

/* ---- absolute request deadlines (http_deadline.c) ---- */

typedef struct http_deadlines http_deadlines; /* the watchdog; owned by the server */
typedef struct http_conn http_conn;           /* one connection's deadline, its socket_context */

typedef enum http_phase {
    HTTP_PHASE_HEAD,   /* waiting for a request head: head deadline from now */
    HTTP_PHASE_BODY,   /* the head is in: body deadline from now */
    HTTP_PHASE_ANSWER, /* the body is in: no deadline (libmicrohttpd's idle timeout only) */
} http_phase;

/* Starts the watchdog thread. Deadlines in milliseconds. */
er_rc http_deadlines_create(int64_t head_ms, int64_t body_ms, http_deadlines **out, er_err *err);
/* After libmicrohttpd stopped (no connection left). NULL is fine. */
void http_deadlines_destroy(http_deadlines *d);
/* A new connection, in its head phase; NULL when out of memory (then it has no deadline). */
http_conn *http_deadlines_open(http_deadlines *d, int fd, const struct sockaddr *peer);
void http_deadlines_phase(http_deadlines *d, http_conn *c, http_phase phase);
/* Before the socket closes (libmicrohttpd's NOTIFY_CLOSED); frees c. NULL is fine. */
void http_deadlines_close(http_deadlines *d, http_conn *c);
/* Connections cut at a deadline so far. */
uint64_t http_deadlines_cut(http_deadlines *d);

struct http_server {
    http_deps deps; /* borrowed pointers, see http.h */
    struct MHD_Daemon *daemon;
    http_deadlines *deadlines;
    unsigned max_conns, max_per_ip; /* effective connection limits */
    ratelimit *requests;            /* owned: requests per token or address */
    ratelimit *auth_fails;          /* borrowed (deps): failed authentications per address */
    uint16_t port;
    /* the listening socket and its accept thread (http_accept.c); open_conns counts the
     * connections libmicrohttpd holds (its NOTIFY_CONNECTION started minus closed) */
    int listen_fd;
    pthread_t accept_thread;
    bool accept_started;
    atomic_bool accept_stop;
    atomic_int open_conns;
    atomic_bool stopping; /* set by destroy: new requests get 503 */
    /* Suspended ingest connections not yet re-entered; destroy waits for zero because
     * libmicrohttpd 0.9.75 must not be stopped with suspended connections. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int suspended;
    /* Committed ingest requests waiting to be resumed (api_inferences.c): the store's writer
     * resumes only the first of a commit batch itself (one eventfd write); the others queue
     * here and that request's MHD thread resumes them when it re-enters. resume_kicked: a
     * resumed request has yet to take the queue, so a new completion may just queue. */
    pthread_mutex_t resume_mu;
    http_req *resume_head, *resume_tail;
    bool resume_kicked;
    /* counters for /metrics (relaxed atomics: only ever added to and read) */
    atomic_uint_fast64_t by_status[HTTP_STATUS_MAX];
    atomic_uint_fast64_t ingest_by_status[HTTP_STATUS_MAX];
    atomic_uint_fast64_t bytes_received;
    /* request body bytes held now (reserved as they arrive, or at once from Content-Length),
     * against bodies_max: max(max_bodies_bytes, max_body_bytes) */
    atomic_int_fast64_t bodies_held;
    int64_t bodies_max;
};

typedef enum http_req_state {
    HTTP_REQ_NEW = 0,  /* first call: route and auth decided */
    HTTP_REQ_BODY,     /* receiving the upload */
    HTTP_REQ_DISCARD,  /* a chunked body passed the limit: drain it, then answer 413 */
    HTTP_REQ_WAIT_PUT, /* suspended, waiting for the store's commit */
    HTTP_REQ_ANSWERED, /* a response is queued */
} http_req_state;

/* One request, owned by the connection (con_cls), freed in the completion callback. */
struct http_req {
    http_server *srv;
    struct MHD_Connection *conn;
    const char *method; /* borrowed from libmicrohttpd, valid for the request */
    const char *path;
    http_route route;
    auth_role role;     /* the token's role (AUTH_NONE on routes that need none) */
    ratelimit_key peer; /* the client address's key (http_limits.c) */
    bool limited;       /* the rate limits apply to this client (not an exempt loopback) */
    int64_t retry_ms;   /* a 429's wait, for its Retry-After */
    http_req_state state;
    util_buf body;      /* ingest upload, bounded by max_body_bytes */
    int64_t body_held;  /* what this request holds of srv->bodies_held */
    uint64_t discarded; /* bytes drained in HTTP_REQ_DISCARD */
    /* ingest: the view's members after "ts", rendered before the inference went to the store
     * (view_render_tail; owned text) */
    char *view_tail;
    atomic_bool put_done;  /* set once by the store callback or a synchronous failure */
    http_req *resume_next; /* in srv's resume queue (api_inferences.c) */
    bool counted;          /* counted in srv->suspended (MHD threads only) */
    bool close;            /* answer with Connection: close (a head that cannot be trusted) */
    store_put_result put;
};

/* ---- the listening socket and the accept thread (http_accept.c) ---- */

/* Binds and listens on addr (s->listen_fd, s->port: the bound port, also for port 0); where
 * names the address in the error. */
er_rc http_accept_listen(http_server *s, const struct sockaddr *addr, socklen_t len,
                         const char *where, er_err *err);
/* Starts eir-http-acc once s->daemon runs: it hands each connection to MHD_add_connection. */
er_rc http_accept_start(http_server *s, er_err *err);
/* Stops the thread and closes the socket (before libmicrohttpd stops). Idempotent. */
void http_accept_stop(http_server *s);

/* ---- rate limits and failed authentications (http_limits.c) ---- */

/* Creates the server's request table (srv->requests) from the configuration. */
er_rc http_limits_create(http_server *s, er_err *err);
/* Sets r->peer and r->limited from the connection's client address. */
void http_limits_peer(http_req *r);
/* Before the token is checked: true when r's address is refused for its failed
 * authentications (a 429 is queued; *ret holds its result). */
bool http_limits_blocked(http_req *r, enum MHD_Result *ret);
/* The outcome of checking r's token: a failure counts against the address, a success clears. */
void http_limits_auth(http_req *r, bool ok);
/* Takes one request from the bucket of r's token (authorization, when its role is known) or
 * else of its address: true when allowed, else a 429 is queued (*ret holds its result). */
bool http_limits_take(http_req *r, const char *authorization, enum MHD_Result *ret);

/* ---- replies (http.c); each returns the MHD_queue_response result ---- */
/* Queues resp (destroyed here) with X-Content-Type-Options and counts it. */
enum MHD_Result http_reply(http_req *r, unsigned status, struct MHD_Response *resp);
/* {"error":{"code","message"}}; logs one line (info for 4xx, warn for 5xx). A 429 carries
 * Retry-After from r->retry_ms. */
enum MHD_Result http_reply_error(http_req *r, unsigned status, const char *code, const char *fmt,
                                 ...) __attribute__((format(printf, 4, 5)));
/* Takes ownership of json (malloc'd, NUL-terminated). */
enum MHD_Result http_reply_json(http_req *r, unsigned status, char *json);
/* The same with a Location header (NULL for none; copied). */
enum MHD_Result http_reply_json_at(http_req *r, unsigned status, char *json, const char *location);
/* Serializes and frees the cJSON value (void * to keep cJSON out of this header). */
enum MHD_Result http_reply_cjson(http_req *r, unsigned status, void *cjson);
/* Maps a store/ingest rc to the matching error answer. */
enum MHD_Result http_reply_rc(http_req *r, er_rc rc, const char *message);

/* Checks the query string against allowed names: 400 for an unknown or repeated name.
 * Returns true when fine; otherwise an error reply has been queued (*ret holds its result). */
bool http_query_check(http_req *r, const char *const *allowed, enum MHD_Result *ret);
/* A query value or NULL; "?x" without '=' gives "". */
const char *http_query(http_req *r, const char *name);

/* Frees the body and gives its bytes back to the bodies budget (max_bodies_bytes). */
void http_req_body_free(http_req *r);

/* Counts r in srv->suspended before it is suspended (false, counting nothing, once the server
 * is stopping: answer 503 instead); http.c uncounts it when the request is
 * re-entered after resume or completes, whichever comes first. */
bool http_req_count_suspended(http_req *r);

/* The list filters of the query (label, source, min_score, since, until) into f; f's strings
 * borrow the request's query values (alive until the request completes). Returns true when
 * fine; otherwise a 400 has been queued (*ret holds its result). The caller checks the query's
 * names first (http_query_check). */
bool http_list_filter(http_req *r, store_filter *f, enum MHD_Result *ret);

/* ---- handlers: each answers the request (or, for ingest, may suspend it) ---- */
enum MHD_Result http_api_list(http_req *r);
/* GET /api/v1/export: the list filter's inferences as CSV or JSON, streamed page by page
 * (api_export.c). */
enum MHD_Result http_api_export(http_req *r);
enum MHD_Result http_api_get(http_req *r);
enum MHD_Result http_api_image(http_req *r);
enum MHD_Result http_api_thumbnail(http_req *r);
enum MHD_Result http_api_delete(http_req *r);
/* Called with the complete body; parses, suspends and submits to the store. */
enum MHD_Result http_api_ingest(http_req *r);
/* Called when the suspended ingest connection is resumed after the commit. */
enum MHD_Result http_api_ingest_finish(http_req *r);
/* On an MHD thread, when a resumed ingest request re-enters or completes: resumes every
 * request queued behind it (see http_server.resume_head). */
void http_api_ingest_resume_queued(http_server *s);
void http_req_free_ingest(http_req *r);

enum MHD_Result http_api_health(http_req *r);
enum MHD_Result http_api_stats(http_req *r);
/* Prometheus text format 0.0.4: the server's own series, the store's, then each part's. */
enum MHD_Result http_api_metrics(http_req *r);
/* GET /api/v1/<name>: the status object of the report part of that name (deps.parts). */
enum MHD_Result http_api_part(http_req *r);

enum MHD_Result http_static(http_req *r);

#endif
