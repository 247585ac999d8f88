/* test_json_parse.c - json_parse builds cJSON's tree: the same answer, the same end and the
 * same nodes (every double bit for bit) for hand-picked texts of every kind and cJSON quirk, and
 * for many random numbers of every shape (short decimals, long mantissas, far exponents). */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/json_parse.h"

static int n_mismatch;

static bool same_tree(const cJSON *a, const cJSON *b)
{
    if (!a || !b) return a == b;
    if (a->type != b->type || a->valueint != b->valueint ||
        memcmp(&a->valuedouble, &b->valuedouble, sizeof a->valuedouble) != 0)
        return false;
    if ((a->string == NULL) != (b->string == NULL) || (a->string && strcmp(a->string, b->string)))
        return false;
    if ((a->valuestring == NULL) != (b->valuestring == NULL) ||
        (a->valuestring && strcmp(a->valuestring, b->valuestring)))
        return false;
    const cJSON *x = a->child, *y = b->child;
    if (x && (!y || x->prev == NULL || y->prev == NULL)) return false;
    for (; x || y; x = x->next, y = y->next) {
        if (!x || !y || !same_tree(x, y)) return false;
        if (!x->next && a->child->prev != x) return false;
    }
    return true;
}

/* Parses text[0..len) both ways; a difference is one failed check (the first few shown). */
static void same_n(const char *text, size_t len)
{
    const char *e1 = NULL, *e2 = NULL;
    cJSON *ours = json_parse(text, len, &e1);
    cJSON *theirs = cJSON_ParseWithLengthOpts(text, len, &e2, 0);
    bool eq = (ours == NULL) == (theirs == NULL) && (!ours || e1 == e2) && same_tree(ours, theirs);
    if (!eq && ++n_mismatch <= 5)
        fprintf(stderr, "json_parse differs from cJSON on \"%.*s\" (%s / %s)\n", (int)len, text,
                ours ? "parsed" : "refused", theirs ? "parsed" : "refused");
    CHECK(eq);
    cJSON_Delete(ours);
    cJSON_Delete(theirs);
}

static void same(const char *text)
{
    same_n(text, strlen(text));
}

static void test_texts(void)
{
    static const char *const texts[] = {
        "{}",
        "[]",
        "{ }",
        "[ ]",
        "null",
        "true",
        "false",
        "nul",
        "tru",
        "fals",
        "nullx",
        "\"s\"",
        "0",
        "-0",
        "1",
        "-1",
        "0.5",
        "1e5",
        "1E+5",
        "1e-5",
        "-1.25e-3",
        "1.",
        "-.5",
        ".5",
        "1e",
        "1e+",
        "-",
        "+1",
        "01",
        "0x10",
        "1+2",
        "1.5.5",
        "1e5e5",
        "123456789012345678",
        "1234567890123456789012",
        "9007199254740993",
        "0.1",
        "0.30000000000000004",
        "1e22",
        "1e23",
        "1e-22",
        "1e-23",
        "2147483647",
        "2147483648",
        "-2147483648",
        "-2147483649",
        "1e400",
        "-1e400",
        "4.9e-324",
        "2.2250738585072014e-308",
        "0e999999999",
        "[1,2,3]",
        "[1,]",
        "[,1]",
        "[1 2]",
        "[1",
        "[",
        "{",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "{\"a\":1}x",
        "{\"a\":1} ",
        "{\"a\":[{\"b\":[null,{}]}]}",
        "{\"\":1}",
        "{\"a\":1,\"a\":2}",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
        "\"\\u00e9\\u20ac\"",
        "\"\\ud83d\\ude00\"",
        "\"\\uZZZZ\"",
        "\"x\\u0041y\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\\x\"",
        "\"\\u12\"",
        "\"abc",
        "\"abc\\",
        "\"a\\\"",
        "[\"a\\\"]\"]",
        "\xef\xbb\xbf{\"a\":1}",
        "\xef\xbb\xbf\x31",
        "\xef\xbb\xbf",
        " \t\r\n\x01\x1f[ 1 , 2 ] ",
        "\x7f",
        "[\"caf\xc3\xa9\"]",
        "   ",
        "{\"result\":{\"classification\":{\"a\":0.0117}}}",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        same(texts[i]);
    same_n("[1]\0[2]", 7); /* stops after the value, whatever follows */
    same_n("\"a\0b\"", 5); /* a NUL byte inside a string is copied (and ends the C string) */
    same_n("", 0);
    /* a number run of any length is one strtod (Debian's cJSON; upstream 1.7.15 cut it at 63) */
    char run[80];
    memset(run, '1', sizeof run);
    for (size_t n = 60; n <= sizeof run; n++)
        same_n(run, n);
    run[0] = '[';
    run[sizeof run - 1] = ']';
    same_n(run, sizeof run);
    /* nesting stops at 1000 */
    for (int depth = 998; depth <= 1001; depth++) {
        char *t = malloc((size_t)depth * 2);
        memset(t, '[', (size_t)depth);
        memset(t + depth, ']', (size_t)depth);
        same_n(t, (size_t)depth * 2);
        free(t);
    }
    /* the end is just past the value */
    const char *end = NULL;
    cJSON *v = json_parse("{\"a\":1}  x", 10, &end);
    CHECK(v != NULL);
    CHECK_EQ_INT((int)(end - "{\"a\":1}  x"), 7);
    cJSON_Delete(v);
    CHECK(json_parse(NULL, 3, &end) == NULL);
}

static void test_random_numbers(void)
{
    char buf[96];
    for (int i = 0; i < 200000; i++) {
        uint64_t r = check_rand();
        switch (i % 6) {
        case 0: /* a score: 0.dddd */
            snprintf(buf, sizeof buf, "0.%0*llu", (int)(r % 17) + 1,
                     (unsigned long long)(check_rand() % 10000000000000000ull));
            break;
        case 1: /* an integer of any size */
            snprintf(buf, sizeof buf, "%lld", (long long)(r >> (check_rand() % 64)));
            break;
        case 2: { /* any double, shortest-ish and full */
            double d;
            memcpy(&d, &r, sizeof d);
            if (!isfinite(d)) d = (double)r;
            snprintf(buf, sizeof buf, (i & 1) ? "%.17g" : "%.15g", d);
            break;
        }
        case 3: /* mantissa and exponent near the fast path's edges */
            snprintf(buf, sizeof buf, "%s%llu.%llue%s%d", (r & 1) ? "-" : "",
                     (unsigned long long)(check_rand() % 100000000ull),
                     (unsigned long long)(check_rand() % 1000000000ull), (r & 2) ? "-" : "",
                     (int)(check_rand() % 40));
            break;
        case 4: /* 2^53 and around */
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)((1ull << 53) - 50 + r % 100));
            break;
        default: /* a box or timing: d.d */
            snprintf(buf, sizeof buf, "%llu.%llu", (unsigned long long)(r % 100000),
                     (unsigned long long)(check_rand() % 1000));
            break;
        }
        same(buf);
    }
}

int main(void)
{
    test_texts();
    test_random_numbers();
    return check_summary();
}
