/* json_parse.c - JSON text to a cJSON tree as cJSON 1.7.15 builds it (json_parse.h). The
 * structure follows cJSON's parse_value / parse_string / parse_array / parse_object so that
 * both accept exactly the same texts; only the two hot paths differ (numbers, plain strings). */
#include "core/json_parse.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JP_NESTING_LIMIT 1000 /* CJSON_NESTING_LIMIT */
#define JP_NUMBER_SMALL 64    /* number runs shorter than this are copied on the stack */

typedef struct jp {
    const unsigned char *s;
    size_t len;
    size_t off;
    size_t depth;
} jp;

static bool parse_value(jp *p, cJSON *item);

/* cJSON's buffer_skip_whitespace without its step back at the end of the text: that step only
 * ever puts the parser on a white-space byte, where every caller then fails either way. */
static void skip_ws(jp *p)
{
    while (p->off < p->len && p->s[p->off] <= 32)
        p->off++;
}

static bool has(const jp *p, size_t n)
{
    return p->off + n <= p->len;
}

/* ---- numbers ---- */

static bool num_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'e' || c == 'E' || c == '.';
}

/* The whole run b[0..n) as a strict JSON number whose value is m * 10^e10 with m <= 2^53 and
 * |e10| <= 22: then one multiplication or division of two exact doubles, rounded once, is the
 * correctly rounded value strtod gives. Anything else (more digits, a far exponent, a run that
 * is not one JSON number) answers false and goes to strtod. */
static bool fast_number(const unsigned char *b, size_t n, double *out)
{
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    size_t i = 0;
    bool neg = b[0] == '-';
    if (neg) i++;
    if (i >= n || b[i] < '0' || b[i] > '9') return false;
    uint64_t m = 0;
    int sig = 0;  /* significant digits taken into m */
    int frac = 0; /* digits after the point */
    if (b[i] == '0') {
        i++;
    } else {
        for (; i < n && b[i] >= '0' && b[i] <= '9'; i++) {
            if (++sig > 19) return false;
            m = m * 10 + (uint64_t)(b[i] - '0');
        }
    }
    if (i < n && b[i] == '.') {
        i++;
        size_t start = i;
        for (; i < n && b[i] >= '0' && b[i] <= '9'; i++, frac++) {
            if (m > 0 || b[i] != '0') sig++;
            if (sig > 19) return false;
            m = m * 10 + (uint64_t)(b[i] - '0');
        }
        if (i == start) return false;
    }
    int exp = 0;
    if (i < n && (b[i] == 'e' || b[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < n && (b[i] == '+' || b[i] == '-')) eneg = b[i++] == '-';
        size_t start = i;
        for (; i < n && b[i] >= '0' && b[i] <= '9'; i++) {
            if (exp > 10000) return false;
            exp = exp * 10 + (b[i] - '0');
        }
        if (i == start) return false;
        if (eneg) exp = -exp;
    }
    if (i != n) return false;
    double d;
    int e10 = exp - frac;
    if (m == 0)
        d = 0.0;
    else if (m > (1ull << 53) || e10 < -22 || e10 > 22)
        return false;
    else if (e10 >= 0)
        d = (double)m * p10[e10];
    else
        d = (double)m / p10[-e10];
    *out = neg ? -d : d;
    return true;
}

static bool parse_number(jp *p, cJSON *item)
{
    const unsigned char *b = p->s + p->off;
    size_t avail = p->len - p->off;
    size_t n = 0;
    while (n < avail && num_byte(b[n]))
        n++;
    double d;
    size_t used = n;
    if (n == 0 || !fast_number(b, n, &d)) {
        /* strtod needs a terminated copy; a long run's copy comes from cJSON's allocator, as
         * in cJSON (its failure is an allocation failure) */
        char small[JP_NUMBER_SMALL];
        char *tmp = n < sizeof small ? small : cJSON_malloc(n + 1);
        char *after = NULL;
        if (!tmp) return false;
        memcpy(tmp, b, n);
        tmp[n] = '\0';
        d = strtod(tmp, &after);
        used = (size_t)(after - tmp);
        if (tmp != small) cJSON_free(tmp);
        if (used == 0) return false;
    }
    item->valuedouble = d;
    /* cJSON's saturation */
    if (d >= INT_MAX)
        item->valueint = INT_MAX;
    else if (d <= (double)INT_MIN)
        item->valueint = INT_MIN;
    else
        item->valueint = (int)d;
    item->type = cJSON_Number;
    p->off += used;
    return true;
}

/* ---- strings ---- */

static unsigned hex4(const unsigned char *h)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = h[i];
        if (c >= '0' && c <= '9')
            v = v * 16 + (c - '0');
        else if (c >= 'A' && c <= 'F')
            v = v * 16 + 10 + (c - 'A');
        else if (c >= 'a' && c <= 'f')
            v = v * 16 + 10 + (c - 'a');
        else
            return 0; /* cJSON's parse_hex4: an invalid digit makes the whole escape 0 */
    }
    return v;
}

/* "\uXXXX" (or a surrogate pair of them) at in, before end, as UTF-8 at *o. Returns the escape's
 * length, 0 when cJSON refuses it. */
static size_t utf16_escape(const unsigned char *in, const unsigned char *end, unsigned char **o)
{
    if (end - in < 6) return 0;
    unsigned long cp = hex4(in + 2);
    size_t n = 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return 0;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        const unsigned char *s2 = in + 6;
        if (end - s2 < 6 || s2[0] != '\\' || s2[1] != 'u') return 0;
        unsigned lo = hex4(s2 + 2);
        if (lo < 0xDC00 || lo > 0xDFFF) return 0;
        cp = 0x10000 + (((cp & 0x3FF) << 10) | (lo & 0x3FF));
        n = 12;
    }
    unsigned char *w = *o;
    if (cp < 0x80) {
        *w++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *w++ = (unsigned char)(0xC0 | (cp >> 6));
        *w++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *w++ = (unsigned char)(0xE0 | (cp >> 12));
        *w++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *w++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
        *w++ = (unsigned char)(0xF0 | (cp >> 18));
        *w++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        *w++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *w++ = (unsigned char)(0x80 | (cp & 0x3F));
    }
    *o = w;
    return n;
}

/* The string at p->off (its opening quote) into a cJSON_malloc'd C string (*out). */
static bool parse_string(jp *p, char **out)
{
    if (p->off >= p->len || p->s[p->off] != '"') return false;
    const unsigned char *start = p->s + p->off + 1;
    const unsigned char *end = start;
    const unsigned char *limit = p->s + p->len;
    size_t skipped = 0;
    while (end < limit && *end != '"') {
        if (*end == '\\') {
            if (end + 1 >= limit) return false; /* a backslash as the last byte */
            skipped++;
            end++;
        }
        end++;
    }
    if (end >= limit) {
        p->off = (size_t)(end - p->s);
        return false; /* no closing quote */
    }
    unsigned char *o = cJSON_malloc((size_t)(end - start) - skipped + 1);
    if (!o) return false;
    unsigned char *w = o;
    const unsigned char *r = start;
    if (skipped == 0) {
        memcpy(w, r, (size_t)(end - r));
        w += end - r;
        r = end;
    }
    while (r < end) {
        if (*r != '\\') {
            *w++ = *r++;
            continue;
        }
        size_t n = 2;
        switch (r[1]) {
        case 'b':
            *w++ = '\b';
            break;
        case 'f':
            *w++ = '\f';
            break;
        case 'n':
            *w++ = '\n';
            break;
        case 'r':
            *w++ = '\r';
            break;
        case 't':
            *w++ = '\t';
            break;
        case '"':
        case '\\':
        case '/':
            *w++ = r[1];
            break;
        case 'u':
            n = utf16_escape(r, end, &w);
            if (n) break;
            /* fall through */
        default:
            cJSON_free(o);
            p->off = (size_t)(r - p->s);
            return false;
        }
        r += n;
    }
    *w = '\0';
    *out = (char *)o;
    p->off = (size_t)(end - p->s) + 1;
    return true;
}

/* ---- containers ---- */

/* The members of an array or object after its opening bracket, up to close. cJSON links them
 * as a list whose head's prev is the tail. */
static bool parse_members(jp *p, cJSON *item, unsigned char close, bool named)
{
    cJSON *head = NULL, *tail = NULL;
    if (p->depth >= JP_NESTING_LIMIT) return false;
    p->depth++;
    p->off++; /* the opening bracket */
    skip_ws(p);
    if (p->off >= p->len) goto fail;
    if (p->s[p->off] != close) {
        p->off--; /* as cJSON: each member starts by stepping over one byte */
        do {
            cJSON *m = cJSON_CreateNull();
            if (!m) goto fail;
            if (!head) {
                head = m;
            } else {
                tail->next = m;
                m->prev = tail;
            }
            tail = m;
            p->off++;
            skip_ws(p);
            if (named) {
                if (!parse_string(p, &m->string)) goto fail;
                skip_ws(p);
                if (p->off >= p->len || p->s[p->off] != ':') goto fail;
                p->off++;
                skip_ws(p);
            }
            if (!parse_value(p, m)) goto fail;
            skip_ws(p);
        } while (p->off < p->len && p->s[p->off] == ',');
        if (p->off >= p->len || p->s[p->off] != close) goto fail;
    }
    p->depth--;
    if (head) head->prev = tail;
    item->type = named ? cJSON_Object : cJSON_Array;
    item->child = head;
    p->off++;
    return true;
fail:
    cJSON_Delete(head);
    return false;
}

static bool parse_value(jp *p, cJSON *item)
{
    const unsigned char *b = p->s + p->off;
    if (has(p, 4) && memcmp(b, "null", 4) == 0) {
        item->type = cJSON_NULL;
        p->off += 4;
        return true;
    }
    if (has(p, 5) && memcmp(b, "false", 5) == 0) {
        item->type = cJSON_False;
        p->off += 5;
        return true;
    }
    if (has(p, 4) && memcmp(b, "true", 4) == 0) {
        item->type = cJSON_True;
        item->valueint = 1;
        p->off += 4;
        return true;
    }
    if (!has(p, 1)) return false;
    if (b[0] == '"') {
        if (!parse_string(p, &item->valuestring)) return false;
        item->type = cJSON_String;
        return true;
    }
    if (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')) return parse_number(p, item);
    if (b[0] == '[') return parse_members(p, item, ']', false);
    if (b[0] == '{') return parse_members(p, item, '}', true);
    return false;
}

cJSON *json_parse(const char *text, size_t len, const char **end)
{
    jp p = {.s = (const unsigned char *)text, .len = len};
    cJSON *root = NULL;
    if (end) *end = text;
    if (!text || len == 0) return NULL;
    root = cJSON_CreateNull();
    if (!root) return NULL;
    /* cJSON skips a byte order mark only when a fifth byte follows it */
    if (len > 4 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) p.off = 3;
    skip_ws(&p);
    if (!parse_value(&p, root)) {
        cJSON_Delete(root);
        root = NULL;
    }
    if (end) *end = text + (p.off < len ? p.off : len);
    return root;
}
