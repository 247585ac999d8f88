/* http_parse.c - see http_parse.h. Pure helpers of the HTTP server. */
#include "http/http_parse.h"

#include <stdio.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Paths under it are the API's: only the API rows match there. */
#define API_ROOT "/api"

http_method http_method_parse(const char *method)
{
    if (!method) return HTTP_M_OTHER;
    if (strcmp(method, "GET") == 0) return HTTP_M_GET;
    if (strcmp(method, "HEAD") == 0) return HTTP_M_HEAD;
    if (strcmp(method, "POST") == 0) return HTTP_M_POST;
    if (strcmp(method, "DELETE") == 0) return HTTP_M_DELETE;
    return HTTP_M_OTHER;
}

static bool under_api(const char *path)
{
    size_t n = strlen(API_ROOT);
    return strncmp(path, API_ROOT, n) == 0 && (path[n] == '\0' || path[n] == '/');
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
    r->has_id = true;
    r->id_ok = n == UTIL_UUID_LEN && util_is_uuid(r->guid);
    return seg + n;
}

/* Whether path matches pat; fills the id of out. *exact is false when a final "*" matched
 * more than nothing. */
static bool pattern_match(const char *pat, const char *path, http_route *out, bool *exact)
{
    *exact = true;
    while (*pat) {
        if (strncmp(pat, "{id}", 4) == 0) {
            if (*path == '\0' || *path == '/') return false; /* empty id segment */
            path = take_id(out, path);
            pat += 4;
        } else if (pat[0] == '*' && pat[1] == '\0') {
            *exact = *path == '\0';
            return true;
        } else if (*pat++ != *path++) {
            return false;
        }
    }
    return *path == '\0';
}

void http_route_match(const char *method, const char *path, http_route *out)
{
    memset(out, 0, sizeof *out);
    out->method = http_method_parse(method);
    out->status = 404;
    if (!path || path[0] != '/') return;
    http_method m = out->method == HTTP_M_HEAD ? HTTP_M_GET : out->method;
    for (size_t i = 0; i < http_routes_n; i++) {
        const http_route_def *row = &http_routes[i];
        bool wildcard = row->pattern[strlen(row->pattern) - 1] == '*';
        http_route r = {.method = out->method};
        bool exact;
        if ((wildcard && under_api(path)) || !pattern_match(row->pattern, path, &r, &exact))
            continue;
        r.id = row->id;
        r.allow = row->allow;
        r.status = 405;
        for (size_t v = 0; v < HTTP_VERBS_MAX; v++) {
            if (row->verbs[v].method != m || m == HTTP_M_OTHER) continue;
            r.status = 0;
            r.need = row->verbs[v].need;
            r.run = row->verbs[v].run;
        }
        /* a "*" row knows only its fixed part exists: elsewhere a method it does not take
         * is 404 */
        if (r.status == 405 && !exact) return;
        *out = r;
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

/* The headers a request may give once, which are also those whose meaning a folded line would
 * change: libmicrohttpd 0.9.75 makes "Name: v\r\n x" a header named "Namex", so a longer name
 * starting with one of these is taken for a folded line (no real request header is such a
 * name). Indexes into http_framing.count. */
enum { FRAMING_LENGTH, FRAMING_ENCODING, FRAMING_TYPE, FRAMING_AUTH, FRAMING_HOST, FRAMING_N };
_Static_assert(FRAMING_N == HTTP_FRAMING_SINGLE, "the table and http_framing.count agree");
static const char *const single_names[FRAMING_N] = {"Content-Length", "Transfer-Encoding",
                                                    "Content-Type", "Authorization", "Host"};

/* RFC 9110 tchar */
static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool name_is_token(const char *name)
{
    if (!*name) return false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (!is_tchar(*p)) return false;
    return true;
}

void http_framing_add(http_framing *f, const char *name, const char *value)
{
    if (!name) name = "";
    bool bad = !name_is_token(name);
    size_t n = strlen(name);
    for (size_t i = 0; i < HTTP_FRAMING_SINGLE; i++) {
        size_t k = strlen(single_names[i]);
        if (n < k || strncasecmp(name, single_names[i], k) != 0) continue;
        if (n > k)
            bad = true; /* a folded line */
        else
            f->count[i]++;
    }
    if (bad && !f->bad_name[0])
        snprintf(f->bad_name, sizeof f->bad_name, "%s", name[0] ? name : "(empty)");
    /* libmicrohttpd trims the value; anything but the one coding it decodes is refused */
    if (n == strlen(single_names[FRAMING_ENCODING]) &&
        strcasecmp(name, single_names[FRAMING_ENCODING]) == 0 &&
        (!value || strcasecmp(value, "chunked") != 0))
        f->encoding_other = true;
}

const char *http_framing_problem(const http_framing *f, char *buf, size_t n)
{
    if (f->bad_name[0]) {
        snprintf(buf, n,
                 "malformed header line '%s' (a name that is not a token, or a folded "
                 "line)",
                 f->bad_name);
        return buf;
    }
    for (size_t i = 0; i < HTTP_FRAMING_SINGLE; i++) {
        if (f->count[i] > 1) {
            snprintf(buf, n, "%s is given %u times", single_names[i], f->count[i]);
            return buf;
        }
    }
    if (f->encoding_other)
        snprintf(buf, n, "the only Transfer-Encoding taken is 'chunked'");
    else if (f->count[FRAMING_ENCODING] && f->count[FRAMING_LENGTH])
        snprintf(buf, n, "Transfer-Encoding and Content-Length together");
    else
        return NULL;
    return buf;
}

bool http_decimal_ok(const char *s, bool fraction)
{
    if (!s) return false;
    if (*s == '-') s++;
    size_t digits = strspn(s, "0123456789");
    if (!digits) return false;
    s += digits;
    if (!fraction) return *s == '\0';
    if (*s == '.') {
        digits = strspn(++s, "0123456789");
        if (!digits) return false;
        s += digits;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        digits = strspn(s, "0123456789");
        if (!digits) return false;
        s += digits;
    }
    return *s == '\0';
}

er_rc http_parse_time(const char *s, int64_t *ms)
{
    if (!s) return ER_INVALID;
    if (http_decimal_ok(s, false)) return util_parse_i64(s, ms);
    /* RFC 3339 starts with the four digits of the year: no sign, space or hex gets through */
    if (*s < '0' || *s > '9') return ER_INVALID;
    return util_parse_time_ms(s, ms);
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
    if (strcasecmp(ext, "png") == 0 || strcasecmp(ext, "svg") == 0 || strcasecmp(ext, "ico") == 0 ||
        strcasecmp(ext, "woff2") == 0)
        return "max-age=3600";
    return "no-cache";
}
