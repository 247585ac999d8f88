/* http_parse.c - see http_parse.h. Pure helpers of the HTTP server. */
#include "http/http_parse.h"

#include <stdio.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#define API_PREFIX "/api/v1/"
#define INFERENCES_PATH "/api/v1/inferences"

http_method http_method_parse(const char *method)
{
    if (!method) return HTTP_M_OTHER;
    if (strcmp(method, "GET") == 0) return HTTP_M_GET;
    if (strcmp(method, "HEAD") == 0) return HTTP_M_HEAD;
    if (strcmp(method, "POST") == 0) return HTTP_M_POST;
    if (strcmp(method, "DELETE") == 0) return HTTP_M_DELETE;
    return HTTP_M_OTHER;
}

/* Sets the route and decides 405 from the methods it takes; HEAD goes wherever GET does. */
static void take(http_route *r, http_route_id id, bool get, bool post, bool del, const char *allow)
{
    r->id = id;
    r->allow = allow;
    bool ok = ((r->method == HTTP_M_GET || r->method == HTTP_M_HEAD) && get) ||
              (r->method == HTTP_M_POST && post) || (r->method == HTTP_M_DELETE && del);
    r->status = ok ? 0 : 405;
    if (r->method == HTTP_M_POST)
        r->need = AUTH_INGEST;
    else if (r->method == HTTP_M_DELETE)
        r->need = AUTH_ADMIN;
    else
        r->need = AUTH_READ;
}

/* Copies the {id} segment (up to the next '/' or the end) and checks it is a uuid. Returns
 * the rest of the path after the segment. */
static const char *take_id(http_route *r, const char *seg)
{
    size_t n = strcspn(seg, "/");
    size_t keep = n < UTIL_UUID_LEN ? n : UTIL_UUID_LEN;
    /* ids are stored lower-case (normalize), so an upper-case spelling names the same row */
    for (size_t i = 0; i < keep; i++)
        r->guid[i] = (char)tolower((unsigned char)seg[i]);
    r->guid[keep] = '\0';
    r->id_ok = n == UTIL_UUID_LEN && util_is_uuid(r->guid);
    return seg + n;
}

void http_route_match(const char *method, const char *path, http_route *out)
{
    memset(out, 0, sizeof *out);
    out->method = http_method_parse(method);
    out->status = 404;
    if (!path || path[0] != '/') return;

    if (strcmp(path, "/metrics") == 0) {
        take(out, HTTP_ROUTE_METRICS, true, false, false, "GET, HEAD");
        return;
    }
    if (strncmp(path, "/api/", 5) != 0 && strcmp(path, "/api") != 0) {
        /* The dashboard: static files take GET and HEAD only, and need no token because a
         * browser navigating to the page cannot send one (the page asks for it). */
        take(out, HTTP_ROUTE_STATIC, true, false, false, "GET, HEAD");
        out->need = AUTH_NONE;
        if (out->status == 405 && strcmp(path, "/") != 0) {
            /* Only "/" is known without a file-system lookup; others answer 404. */
            out->id = HTTP_ROUTE_NONE;
            out->status = 404;
        }
        return;
    }
    if (strcmp(path, API_PREFIX "health") == 0) {
        take(out, HTTP_ROUTE_HEALTH, true, false, false, "GET, HEAD");
        out->need = AUTH_NONE;
        return;
    }
    if (strcmp(path, API_PREFIX "forwarder") == 0) {
        take(out, HTTP_ROUTE_FORWARDER, true, false, false, "GET, HEAD");
        return;
    }
    if (strcmp(path, API_PREFIX "sources") == 0) {
        take(out, HTTP_ROUTE_SOURCES, true, false, false, "GET, HEAD");
        return;
    }
    if (strcmp(path, API_PREFIX "stats") == 0) {
        take(out, HTTP_ROUTE_STATS, true, false, false, "GET, HEAD");
        return;
    }
    if (strcmp(path, INFERENCES_PATH) == 0) {
        take(out, HTTP_ROUTE_INFERENCES, true, true, false, "GET, HEAD, POST");
        return;
    }
    if (strncmp(path, INFERENCES_PATH "/", sizeof INFERENCES_PATH) == 0) {
        const char *seg = path + sizeof INFERENCES_PATH;
        if (*seg == '\0' || *seg == '/') return; /* empty id segment */
        const char *rest = take_id(out, seg);
        if (*rest == '\0')
            take(out, HTTP_ROUTE_INFERENCE, true, false, true, "GET, HEAD, DELETE");
        else if (strcmp(rest, "/image") == 0)
            take(out, HTTP_ROUTE_IMAGE, true, false, false, "GET, HEAD");
        else if (strcmp(rest, "/thumbnail") == 0)
            take(out, HTTP_ROUTE_THUMBNAIL, true, false, false, "GET, HEAD");
        return;
    }
}

void http_cursor_encode(int64_t seq, char out[HTTP_CURSOR_MAX])
{
    snprintf(out, HTTP_CURSOR_MAX, "c%lld", (long long)seq);
}

er_rc http_cursor_decode(const char *s, int64_t *seq)
{
    if (!s || s[0] != 'c' || s[1] < '1' || s[1] > '9') return ER_INVALID;
    int64_t v = 0;
    for (const char *p = s + 1; *p; p++) {
        if (*p < '0' || *p > '9') return ER_INVALID;
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10) return ER_INVALID;
        v = v * 10 + d;
    }
    *seq = v;
    return ER_OK;
}

er_rc http_parse_bucket(const char *s, int64_t *ms)
{
    if (!s || *s < '0' || *s > '9') return ER_INVALID;
    int64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10) return ER_INVALID;
        v = v * 10 + d;
    }
    int64_t unit = 1;
    if (*p) {
        switch (*p) {
        case 's':
            unit = 1000;
            break;
        case 'm':
            unit = 60 * 1000;
            break;
        case 'h':
            unit = 3600 * 1000;
            break;
        case 'd':
            unit = 86400 * 1000;
            break;
        default:
            return ER_INVALID;
        }
        if (p[1] != '\0') return ER_INVALID;
    }
    if (v <= 0 || v > INT64_MAX / unit) return ER_INVALID;
    *ms = v * unit;
    return ER_OK;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t http_unescape(char *s)
{
    char *w = s;
    for (const char *p = s; *p;) {
        int hi, lo;
        if (p[0] == '%' && (hi = hex_value(p[1])) >= 0 && (lo = hex_value(p[2])) >= 0 &&
            (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            p += 3;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

bool http_query_name_ok(const char *name, const char *const *allowed)
{
    if (!name) return false;
    for (; *allowed; allowed++)
        if (strcmp(name, *allowed) == 0) return true;
    return false;
}

bool http_static_path_safe(const char *path)
{
    if (!path || path[0] != '/') return false;
    size_t n = strnlen(path, 1025);
    if (n > 1024) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c < 0x20 || c == 0x7f || c == '\\' || c == '%') return false;
    }
    /* Walk the segments after the leading '/'; "/" alone has one empty segment (the index). */
    const char *seg = path + 1;
    if (*seg == '\0') return true;
    for (;;) {
        size_t len = strcspn(seg, "/");
        if (len == 0) return false; /* "//" or a trailing "/" */
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        if (seg[len] == '\0') return true;
        seg += len + 1;
    }
}

static const struct {
    const char *ext;
    const char *mime;
} mime_table[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"ico", "image/x-icon"},
    {"json", "application/json"},
    {"woff2", "font/woff2"},
    {"txt", "text/plain; charset=utf-8"},
    {"map", "application/json"},
};

static const char *extension(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    const char *dot = strrchr(base, '.');
    return dot ? dot + 1 : "";
}

const char *http_static_mime(const char *name)
{
    const char *ext = extension(name);
    for (size_t i = 0; i < sizeof mime_table / sizeof mime_table[0]; i++)
        if (strcasecmp(ext, mime_table[i].ext) == 0) return mime_table[i].mime;
    return "application/octet-stream";
}

const char *http_static_cache_control(const char *name)
{
    const char *ext = extension(name);
    /* The dashboard's scripts are not content-hashed, so a browser must never run a stale
     * one against a new page or server: everything is revalidated (ETag, 304) on each load,
     * which costs one small round trip per file on the LAN. Images/fonts rarely change. */
    if (strcasecmp(ext, "png") == 0 || strcasecmp(ext, "svg") == 0 ||
        strcasecmp(ext, "ico") == 0 || strcasecmp(ext, "woff2") == 0)
        return "max-age=3600";
    return "no-cache";
}
