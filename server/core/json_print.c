/* json_print.c - see json_print.h. The layout rules are cJSON 1.7.15's print_value,
 * print_string_ptr and print_number, restated; test_json_print compares the two on every kind
 * of value and on many numbers. */
#include "core/json_print.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *grow(json_buf *o, size_t n)
{
    if (o->failed) return NULL;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *p = realloc(o->p, cap);
        if (!p) {
            o->failed = true;
            return NULL;
        }
        o->p = p;
        o->cap = cap;
    }
    char *at = o->p + o->len;
    o->len += n;
    return at;
}

static void put(json_buf *o, const char *s, size_t n)
{
    char *at = grow(o, n);
    if (at) memcpy(at, s, n);
}

static void put_c(json_buf *o, char c)
{
    char *at = grow(o, 1);
    if (at) *at = c;
}

/* cJSON's compare_double: equal within one relative epsilon. */
static bool near_equal(double a, double b)
{
    double max = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return fabs(a - b) <= max * DBL_EPSILON;
}

/* Digits of v (no sign) right-aligned ending at end; returns the first. */
static char *digits(uint64_t v, char *end)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

/* The shortest decimal of at most 15 significant digits, in fixed notation, that strtod turns
 * back into exactly a (1e-4 <= a < 1e15); 0 when there is none. */
static size_t short_fixed(double a, char *out)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8, 1e9,
                                   1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};
    for (size_t p = 0; p < sizeof pow10 / sizeof pow10[0]; p++) {
        double m = a * pow10[p];
        if (m >= 1e15) break; /* more than 15 significant digits */
        double r = nearbyint(m);
        /* m is a*10^p rounded, so a decimal with p places shows as m within a few ulps of an
         * integer; the exact check below decides */
        if (r < 1 || fabs(m - r) > m * 1e-12) continue;
        char buf[48], *end = buf + 24, *s = digits((uint64_t)r, end);
        size_t nd = (size_t)(end - s);
        char *o = out;
        if (nd <= p) { /* 0.000ddd */
            *o++ = '0';
            *o++ = '.';
            for (size_t z = nd; z < p; z++)
                *o++ = '0';
            memcpy(o, s, nd);
            o += nd;
        } else {
            memcpy(o, s, nd - p);
            o += nd - p;
            if (p) {
                *o++ = '.';
                memcpy(o, s + nd - p, p);
                o += p;
            }
        }
        *o = '\0';
        /* what strtod(out) gives: r < 2^53 and 10^p (p <= 18) are exact doubles, so their
         * quotient, rounded once, is the decimal's correctly rounded value */
        if (r / pow10[p] != a) continue;
        if (p) { /* %g drops trailing zeros (r may have come out one digit long) */
            while (o[-1] == '0')
                *--o = '\0';
            if (o[-1] == '.') *--o = '\0';
        }
        return (size_t)(o - out);
    }
    return 0;
}

size_t json_print_number(double d, char *out)
{
    if (isnan(d) || isinf(d)) {
        memcpy(out, "null", 5);
        return 4;
    }
    size_t neg = signbit(d) ? 1 : 0;
    if (neg) out[0] = '-';
    if (d == 0) { /* "%1.15g" writes -0 as "-0" */
        memcpy(out + neg, "0", 2);
        return neg + 1;
    }
    double a = fabs(d);
    if (a >= 1 && a < 1e15 && a == floor(a)) { /* a whole number of at most 15 digits: exact */
        char buf[24], *end = buf + sizeof buf, *s = digits((uint64_t)a, end);
        memcpy(out + neg, s, (size_t)(end - s));
        out[neg + (size_t)(end - s)] = '\0';
        return neg + (size_t)(end - s);
    }
    if (a >= 1e-4 && a < 1e15) {
        size_t n = short_fixed(a, out + neg);
        if (n) return neg + n;
    }
    /* cJSON's own path, for the numbers no short decimal gives back */
    double test = 0;
    int n = snprintf(out, JSON_PRINT_NUMBER_MAX, "%1.15g", d);
    if (sscanf(out, "%lg", &test) != 1 || !near_equal(test, d))
        n = snprintf(out, JSON_PRINT_NUMBER_MAX, "%1.17g", d);
    const struct lconv *lc = localeconv();
    char point = lc && lc->decimal_point ? lc->decimal_point[0] : '.';
    for (int i = 0; i < n; i++)
        if (out[i] == point) out[i] = '.';
    return (size_t)n;
}

/* The two-character escapes cJSON writes; every other byte below 0x20 is \u00xx. */
static const char short_escape[128] = {['"'] = '"',  ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
                                       ['\n'] = 'n', ['\r'] = 'r',  ['\t'] = 't'};

/* The bytes a string run stops at: the end (NUL), control bytes, '"' and '\\'. */
static const bool run_stop[256] = {
    [0] = 1,  [1] = 1,  [2] = 1,  [3] = 1,  [4] = 1,  [5] = 1,   [6] = 1,   [7] = 1,  [8] = 1,
    [9] = 1,  [10] = 1, [11] = 1, [12] = 1, [13] = 1, [14] = 1,  [15] = 1,  [16] = 1, [17] = 1,
    [18] = 1, [19] = 1, [20] = 1, [21] = 1, [22] = 1, [23] = 1,  [24] = 1,  [25] = 1, [26] = 1,
    [27] = 1, [28] = 1, [29] = 1, [30] = 1, [31] = 1, ['"'] = 1, ['\\'] = 1};

static void put_string(json_buf *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    put_c(o, '"');
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    for (;;) {
        const unsigned char *run = p;
        while (!run_stop[*p])
            p++;
        put(o, (const char *)run, (size_t)(p - run));
        if (!*p) break;
        char esc[6] = {'\\', short_escape[*p]};
        if (esc[1]) {
            put(o, esc, 2);
        } else {
            esc[1] = 'u';
            esc[2] = esc[3] = '0';
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            put(o, esc, 6);
        }
        p++;
    }
    put_c(o, '"');
}

/* depth is bounded by the tree, which cJSON's parser bounds (CJSON_NESTING_LIMIT) and the
 * project's builders keep shallow */
static bool put_value(json_buf *o, const cJSON *it)
{
    switch (it->type & 0xFF) {
    case cJSON_NULL:
        put(o, "null", 4);
        return true;
    case cJSON_False:
        put(o, "false", 5);
        return true;
    case cJSON_True:
        put(o, "true", 4);
        return true;
    case cJSON_Number: {
        char num[JSON_PRINT_NUMBER_MAX];
        put(o, num, json_print_number(it->valuedouble, num));
        return true;
    }
    case cJSON_Raw:
        if (!it->valuestring) return false;
        put(o, it->valuestring, strlen(it->valuestring));
        return true;
    case cJSON_String:
        put_string(o, it->valuestring);
        return true;
    case cJSON_Array:
    case cJSON_Object: {
        bool obj = (it->type & 0xFF) == cJSON_Object;
        put_c(o, obj ? '{' : '[');
        for (const cJSON *c = it->child; c; c = c->next) {
            if (obj) {
                put_string(o, c->string);
                put_c(o, ':');
            }
            if (!put_value(o, c)) return false;
            if (c->next) put_c(o, ',');
        }
        put_c(o, obj ? '}' : ']');
        return true;
    }
    default:
        return false;
    }
}

void json_buf_raw(json_buf *b, const char *s, size_t n)
{
    put(b, s, n);
}

void json_buf_string(json_buf *b, const char *s)
{
    put_string(b, s);
}

void json_buf_number(json_buf *b, double d)
{
    char num[JSON_PRINT_NUMBER_MAX];
    put(b, num, json_print_number(d, num));
}

bool json_buf_value(json_buf *b, const cJSON *item)
{
    if (!put_value(b, item)) b->failed = true;
    return !b->failed;
}

char *json_buf_take(json_buf *b)
{
    char *text = NULL;
    if (grow(b, 0)) {
        b->p[b->len] = '\0';
        text = b->p;
    } else {
        free(b->p);
    }
    *b = (json_buf){0};
    return text;
}

er_rc json_string_append(util_buf *out, const char *s)
{
    /* out's storage is lent to a json_buf and taken back: both grow it with realloc and keep a
     * byte past len free (util_buf's NUL), so no copy is made */
    json_buf b = {.p = out->data, .len = out->len, .cap = out->cap};
    put_string(&b, s);
    out->data = b.p;
    out->cap = b.cap;
    if (!b.failed) out->len = b.len;
    if (out->data) out->data[out->len] = '\0';
    return b.failed ? ER_NOMEM : ER_OK;
}

char *json_print(const cJSON *item)
{
    json_buf b = {0};
    if (!item) return NULL;
    json_buf_value(&b, item);
    return json_buf_take(&b);
}
