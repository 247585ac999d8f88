/* http_parse.h - the pure pieces of the HTTP server: the route table's types and its matcher,
 * the list cursor codec, stats bucket parsing, query-name checks, static path safety and content
 * types by extension. No I/O and no libmicrohttpd call here (its header only for the handler
 * type), so they are unit-tested on their own (test_http_parse.c). */
#ifndef EI_HTTP_HTTP_PARSE_H
#define EI_HTTP_HTTP_PARSE_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "core/rc.h"
#include "core/util.h"

/* The routes, one row each in the route table (http_routes.c); the ids name them for the tests
 * and the ingest counter. */
typedef enum http_route_id {
    HTTP_ROUTE_NONE = 0,   /* unknown path: 404 */
    HTTP_ROUTE_INFERENCES, /* /api/v1/inferences */
    HTTP_ROUTE_INFERENCE,  /* /api/v1/inferences/{id} */
    HTTP_ROUTE_IMAGE,      /* /api/v1/inferences/{id}/image */
    HTTP_ROUTE_THUMBNAIL,  /* /api/v1/inferences/{id}/thumbnail */
    HTTP_ROUTE_STATS,      /* /api/v1/stats */
    HTTP_ROUTE_HEALTH,     /* /api/v1/health */
    HTTP_ROUTE_METRICS,    /* /metrics */
    HTTP_ROUTE_FORWARDER,  /* /api/v1/forwarder */
    HTTP_ROUTE_SOURCES,    /* /api/v1/sources */
    HTTP_ROUTE_EXPORT,     /* /api/v1/export */
    HTTP_ROUTE_STATIC,     /* anything outside /api/ and /metrics: the dashboard */
} http_route_id;

typedef enum http_method {
    HTTP_M_OTHER = 0,
    HTTP_M_GET,
    HTTP_M_HEAD,
    HTTP_M_POST,
    HTTP_M_DELETE,
} http_method;

/* One request being answered (http_internal.h); a handler answers it (or, for ingest, may
 * suspend it) and returns libmicrohttpd's result. */
typedef struct http_req http_req;
typedef enum MHD_Result (*http_handler)(http_req *r);

/* A method a route takes, the role it needs (AUTH_NONE: no token) and its handler. HEAD goes
 * wherever GET does. */
typedef struct http_verb {
    http_method method;
    auth_role need;
    http_handler run;
} http_verb;

#define HTTP_VERBS_MAX 2

/* One row of the route table. pattern is the path, where "{id}" stands for one non-empty
 * segment (the inference id) and a final "*" for any rest: a "*" row is the dashboard, which
 * never answers under /api (an unknown API path is 404, not a file) and, knowing only its fixed
 * part exists, answers 405 there and 404 elsewhere to a method it does not take. allow is the
 * Allow header of a 405. */
typedef struct http_route_def {
    http_route_id id;
    const char *pattern;
    const char *allow;
    http_verb verbs[HTTP_VERBS_MAX]; /* unused ones: method HTTP_M_OTHER */
} http_route_def;

/* THE route table (http_routes.c), walked in order by http_route_match. */
extern const http_route_def http_routes[];
extern const size_t http_routes_n;

/* The outcome of matching one request line. status is 0 when the route and method match,
 * 404 for an unknown path and 405 for a known path with a method it does not take (allow then
 * lists the methods). need is the role the request needs (AUTH_NONE: no token needed) and run
 * its handler. For the {id} routes (has_id), guid holds the raw segment (lower-cased, truncated
 * to fit) and id_ok says whether it is a uuid: the server answers a bad id with 400 only after
 * authentication. */
typedef struct http_route {
    http_route_id id;
    http_method method;
    int status;
    const char *allow;
    auth_role need;
    http_handler run;
    bool has_id;
    bool id_ok;
    char guid[UTIL_UUID_LEN + 1];
} http_route;

http_method http_method_parse(const char *method);
/* path: the decoded URL path without the query string. Walks http_routes; the first row whose
 * pattern matches decides. */
void http_route_match(const char *method, const char *path, http_route *out);

/* The list cursor: an opaque token "c<seq>" carrying the store's next_seq (the keyset bound
 * passed back as before_seq). Clients must treat it as opaque. */
#define HTTP_CURSOR_MAX 24
void http_cursor_encode(int64_t seq, char out[HTTP_CURSOR_MAX]);
/* Strict: exactly "c" and a positive decimal without sign or leading zero. */
er_rc http_cursor_decode(const char *s, int64_t *seq);

/* Stats bucket: milliseconds ("60000") or a count with a unit s|m|h|d ("1h"); > 0. */
er_rc http_parse_bucket(const char *s, int64_t *ms);

/* In-place percent-decoding of a URL path or query value (the server's unescape callback):
 * "%HH" becomes its byte, except "%00", which stays as is so no NUL can cut a path short
 * ("/%00/../x" must not turn into "/"). Malformed escapes stay as they are. Returns the new
 * length. */
size_t http_unescape(char *s);

/* The framing of one request's head, gathered by http_framing_add from every header line
 * libmicrohttpd parsed, before anything else is decided: a head that two parsers could read
 * two ways (request smuggling) is refused, never guessed at. */
/* The headers a request may give once (http_parse.c's table): Content-Length,
 * Transfer-Encoding, Content-Type, Authorization, Host. Two of one would let two readers pick
 * different ones. */
#define HTTP_FRAMING_SINGLE 5
typedef struct http_framing {
    unsigned count[HTTP_FRAMING_SINGLE]; /* lines of each, in the table's order */
    bool encoding_other; /* a Transfer-Encoding value other than exactly "chunked" */
    char bad_name[48];   /* the first header name that is not an HTTP token or is a folded
                          * line (libmicrohttpd 0.9.75 glues an obs-fold continuation onto the
                          * name: "Content-Type" + " x" arrives as "Content-Typex") */
} http_framing;
void http_framing_add(http_framing *f, const char *name, const char *value);
/* What is wrong with the head (a sentence for the 400), or NULL when it is fine: a name that
 * is not a token or a folded line of one of the single headers, one of them given twice, a
 * Transfer-Encoding other than "chunked", or Transfer-Encoding together with Content-Length. */
const char *http_framing_problem(const http_framing *f, char *buf, size_t n);

/* A query value written as a plain decimal number: an optional '-', digits, and (when
 * fraction) an optional ".digits" and exponent. No sign '+', space, hex, "inf" or "nan": the
 * C parsers behind it (strtoll, strtod) take all of those. */
bool http_decimal_ok(const char *s, bool fraction);

/* A time query value: epoch milliseconds as a plain decimal (http_decimal_ok) or RFC 3339
 * (util_parse_time_ms). */
er_rc http_parse_time(const char *s, int64_t *ms);

/* True if name is one of the NULL-terminated allowed names. */
bool http_query_name_ok(const char *name, const char *const *allowed);

/* A request path that may be looked up under web_root: starts with "/", at most 1024 bytes,
 * no "." or ".." segment, no empty segment ("//"), no backslash, '%' or control byte.
 * libmicrohttpd already percent-decoded the path once, so "%2e%2e" arrives as "..". */
bool http_static_path_safe(const char *path);

/* Content type and Cache-Control for a file name by its extension (case-insensitive);
 * unknown extensions are application/octet-stream. */
const char *http_static_mime(const char *name);
const char *http_static_cache_control(const char *name);

#endif
