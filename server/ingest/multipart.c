/* multipart.c - zero-copy multipart/form-data parsing over a complete body (RFC 7578, RFC 2046
 * section 5.1). Pure: no allocation, no I/O; every read is checked against len.
 *
 * Position protocol: *pos == 0 means "before the preamble"; afterwards *pos is the offset of
 * the "--boundary" that ends the part just returned, so the next call starts there. */
#include "ingest/multipart.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define MULTIPART_HEADERS_MAX 8192 /* bytes of one part's header block */

static bool is_ws(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Case-insensitive comparison of [s, s+n) with the NUL-terminated word. */
static bool word_eq(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

static const char *skip_ws(const char *p)
{
    while (is_ws(*p))
        p++;
    return p;
}

/* Reads one parameter value (token or quoted-string) at *pp; copies it into out when out is
 * not NULL. False when it is unterminated or longer than the boundary limit. */
static bool param_value(const char **pp, char *out, size_t *n)
{
    const char *p = *pp;
    bool ok = true;
    *n = 0;
    if (*p == '"') {
        /* quoted-string: a backslash escapes the next character */
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1]) p++;
            if (out && *n >= MULTIPART_BOUNDARY_MAX)
                ok = false;
            else if (out)
                out[(*n)++] = *p;
        }
        if (*p == '"')
            p++;
        else
            ok = false;
    } else {
        for (; *p && *p != ';' && !is_ws(*p); p++) {
            if (out && *n >= MULTIPART_BOUNDARY_MAX)
                ok = false;
            else if (out)
                out[(*n)++] = *p;
        }
    }
    *pp = p;
    return ok;
}

er_rc multipart_boundary(const char *content_type, char *out)
{
    static const char type[] = "multipart/form-data";
    er_rc rc = ER_UNSUPPORTED;
    const char *p = content_type ? skip_ws(content_type) : NULL;
    size_t n = 0;
    if (!p || strncasecmp(p, type, sizeof type - 1) != 0) goto fail;
    p += sizeof type - 1;
    if (*p && *p != ';' && !is_ws(*p)) goto fail;
    rc = ER_INVALID; /* from here on: the right type without a usable boundary */
    for (;;) {
        p = skip_ws(p);
        if (*p != ';') goto fail; /* end of the value (or junk): no boundary */
        const char *name = skip_ws(p + 1);
        p = name;
        while (*p && *p != '=' && *p != ';' && !is_ws(*p))
            p++;
        bool want = word_eq(name, (size_t)(p - name), "boundary");
        p = skip_ws(p);
        if (*p != '=') continue; /* a parameter without value: skip it */
        p = skip_ws(p + 1);
        if (!param_value(&p, want ? out : NULL, &n)) goto fail;
        if (want) break;
    }
    out[n] = '\0';
    if (n == 0 || out[n - 1] == ' ') goto fail;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e) goto fail;
    rc = ER_OK;
fail:
    return rc;
}

/* True when body[at..] holds "--" boundary. */
static bool delim_at(const uint8_t *body, size_t len, size_t at, const char *b, size_t blen)
{
    return at <= len && len - at >= blen + 2 && body[at] == '-' && body[at + 1] == '-' &&
           memcmp(body + at + 2, b, blen) == 0;
}

/* True when the delimiter at at ends like one: "--" (close) or padding and a line end. Text
 * that merely starts with the boundary is content. */
static bool delim_tail_ok(const uint8_t *body, size_t len, size_t at)
{
    if (len - at >= 2 && body[at] == '-' && body[at + 1] == '-') return true;
    while (at < len && is_ws((char)body[at]))
        at++;
    if (at < len && body[at] == '\r') at++;
    return at < len && body[at] == '\n';
}

/* Offset of the first delimiter at or after from that starts a line (offset 0 counts as a
 * line start), or len when there is none. */
static size_t find_delim(const uint8_t *body, size_t len, size_t from, const char *b, size_t blen)
{
    for (size_t i = from; i < len; i++) {
        if ((i == 0 || body[i - 1] == '\n') && delim_at(body, len, i, b, blen) &&
            delim_tail_ok(body, len, i + 2 + blen))
            return i;
        const uint8_t *nl = memchr(body + i, '\n', len - i);
        if (!nl) break;
        i = (size_t)(nl - body); /* loop's ++ moves to the byte after the newline */
    }
    return len;
}

/* Reads one Content-Disposition value: type, then ; name=value pairs. */
static void parse_disposition(const char *v, size_t n, multipart_part *part)
{
    const char *end = v + n, *p = v;
    while (p < end && *p != ';')
        p++;
    while (p < end) {
        const char *name, *val;
        size_t name_len, val_len;
        p++; /* the ';' */
        while (p < end && is_ws(*p))
            p++;
        name = p;
        while (p < end && *p != '=' && *p != ';' && !is_ws(*p))
            p++;
        name_len = (size_t)(p - name);
        while (p < end && is_ws(*p))
            p++;
        if (p >= end || *p != '=') {
            while (p < end && *p != ';')
                p++;
            continue;
        }
        p++;
        while (p < end && is_ws(*p))
            p++;
        if (p < end && *p == '"') {
            /* Zero-copy: escapes are left in place (browsers percent-encode instead). */
            val = ++p;
            while (p < end && *p != '"')
                p += (*p == '\\' && p + 1 < end) ? 2 : 1;
            if (p > end) p = end;
            val_len = (size_t)(p - val);
            if (p < end) p++;
        } else {
            val = p;
            while (p < end && *p != ';' && !is_ws(*p))
                p++;
            val_len = (size_t)(p - val);
        }
        while (p < end && *p != ';')
            p++;
        if (word_eq(name, name_len, "name")) {
            part->name = val;
            part->name_len = val_len;
        } else if (word_eq(name, name_len, "filename")) {
            part->filename = val;
            part->filename_len = val_len;
        }
    }
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_ws(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_ws((*s)[*n - 1]))
        (*n)--;
}

/* Parses header lines from *at up to and including the blank line; *at moves past it. */
static er_rc parse_headers(const uint8_t *body, size_t len, size_t *at, multipart_part *part)
{
    er_rc rc = ER_INVALID;
    size_t start = *at, p = *at;
    for (;;) {
        const uint8_t *nl = memchr(body + p, '\n', len - p);
        if (!nl) goto fail; /* truncated inside the headers */
        size_t next = (size_t)(nl - body) + 1, line_len = (size_t)(nl - body) - p;
        if (next - start > MULTIPART_HEADERS_MAX) goto fail;
        if (line_len > 0 && body[p + line_len - 1] == '\r') line_len--;
        const char *line = (const char *)body + p;
        p = next;
        if (line_len == 0) break;
        if (is_ws(line[0])) continue; /* obsolete folding: ignored */
        const char *colon = memchr(line, ':', line_len);
        if (!colon) goto fail;
        size_t name_len = (size_t)(colon - line);
        const char *val = colon + 1;
        size_t val_len = line_len - name_len - 1;
        trim(&val, &val_len);
        if (word_eq(line, name_len, "content-disposition")) {
            parse_disposition(val, val_len, part);
        } else if (word_eq(line, name_len, "content-type")) {
            part->content_type = val_len ? val : NULL;
            part->content_type_len = val_len;
        }
    }
    *at = p;
    rc = ER_OK;
fail:
    return rc;
}

er_rc multipart_next(const uint8_t *body, size_t len, const char *boundary, size_t *pos,
                     multipart_part *part)
{
    er_rc rc = ER_OK;
    size_t blen = boundary ? strlen(boundary) : 0, at = *pos, data_start, end;
    memset(part, 0, sizeof *part);
    if (!body || blen == 0 || blen > MULTIPART_BOUNDARY_MAX || at > len) {
        rc = ER_INVALID;
        goto fail;
    }
    if (at == 0) at = find_delim(body, len, 0, boundary, blen);
    if (!delim_at(body, len, at, boundary, blen)) {
        rc = ER_INVALID; /* no opening delimiter, or a stale position */
        goto fail;
    }
    at += 2 + blen;
    if (len - at >= 2 && body[at] == '-' && body[at + 1] == '-') {
        *pos = at - 2 - blen; /* stay on the close delimiter: later calls say NOTFOUND too */
        rc = ER_NOTFOUND;
        goto fail;
    }
    while (at < len && is_ws((char)body[at]))
        at++; /* transport padding */
    if (at < len && body[at] == '\r') at++;
    if (at >= len || body[at] != '\n') {
        rc = ER_INVALID;
        goto fail;
    }
    at++;
    if ((rc = parse_headers(body, len, &at, part))) goto fail;
    /* The CRLF before the next delimiter belongs to it; that newline may be the one that
     * ended the headers when the part is empty, hence the search from at - 1. */
    data_start = at;
    end = find_delim(body, len, at - 1, boundary, blen);
    if (end == len) {
        rc = ER_INVALID; /* missing closing delimiter */
        goto fail;
    }
    part->data = body + data_start;
    part->len = 0;
    if (end - 1 > data_start) {
        size_t stop = end - 1; /* the '\n' */
        if (body[stop - 1] == '\r') stop--;
        part->len = stop - data_start;
    }
    *pos = end;
fail:
    if (rc && rc != ER_NOTFOUND) memset(part, 0, sizeof *part);
    return rc;
}
