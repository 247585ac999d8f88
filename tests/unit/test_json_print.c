/* test_json_print.c - json_print gives cJSON_PrintUnformatted's text byte for byte: every kind
 * of value, every string byte, and numbers of every shape (short decimals, integers in and out
 * of int range, the ends of the fixed-notation range, random doubles of any bit pattern); and
 * json_string_append gives json_buf_string's bytes in a util_buf. */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/json_print.h"

static int n_mismatch;

/* Prints item both ways; a difference is one failed check (the first few are shown). */
static void same(const cJSON *item)
{
    char *want = cJSON_PrintUnformatted(item);
    char *got = json_print(item);
    bool eq = (!want && !got) || (want && got && strcmp(want, got) == 0);
    if (!eq && ++n_mismatch <= 5)
        fprintf(stderr, "json_print \"%s\", cJSON \"%s\"\n", got ? got : "(null)",
                want ? want : "(null)");
    CHECK(eq);
    free(want);
    free(got);
}

static void same_number(double d)
{
    cJSON *n = cJSON_CreateNumber(d);
    same(n);
    cJSON_Delete(n);
}

static void test_numbers(void)
{
    static const double fixed[] = {0,
                                   -0.0,
                                   1,
                                   -1,
                                   0.5,
                                   0.1,
                                   0.2,
                                   0.3,
                                   0.1 + 0.2,
                                   1.0 / 3,
                                   2.0 / 3,
                                   0.9453,
                                   0.0117,
                                   0.0078,
                                   13912,
                                   2147483647,
                                   2147483648.0,
                                   -2147483648.0,
                                   -2147483649.0,
                                   1796666881167.0,
                                   1e-4,
                                   9.9999e-5,
                                   1.00001e-4,
                                   1e15,
                                   1e15 - 1,
                                   999999999999999.4,
                                   1e14 + 0.5,
                                   123456789012345.6,
                                   1e16,
                                   1e300,
                                   1e-300,
                                   5e-324,
                                   DBL_MAX,
                                   DBL_MIN,
                                   123.456,
                                   -0.001,
                                   3.14159265358979,
                                   0.30000000000000004,
                                   9007199254740993.0};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        same_number(fixed[i]);
        same_number(-fixed[i]);
    }
    /* short decimals at every scale: what sensors and models send */
    for (int i = 0; i < 20000; i++) {
        uint64_t r = check_rand();
        int digits = 1 + (int)(r % 16);
        int64_t mant = (int64_t)(check_rand() % (uint64_t)pow(10, digits));
        int exp10 = (int)(check_rand() % 40) - 24;
        same_number((double)mant * pow(10, exp10));
        same_number((double)mant / pow(10, (check_rand() % 19)));
    }
    /* any finite double */
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = check_rand();
        double d;
        memcpy(&d, &bits, sizeof d);
        if (isfinite(d)) same_number(d);
    }
    /* integers near and past the int range and 2^53 */
    for (int i = 0; i < 2000; i++)
        same_number((double)(int64_t)(check_rand() >> (check_rand() % 64)));
    /* a number item whose valueint is not its double's (cJSON 1.7.15 prints the double) */
    cJSON *n = cJSON_CreateNumber(7);
    n->valuedouble = 7.25;
    same(n);
    cJSON_Delete(n);
}

static void test_values(void)
{
    char all[256];
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    all[255] = '\0';
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "every byte", all);
    cJSON_AddStringToObject(o, "", "");
    cJSON_AddStringToObject(o, "quote\"\\key\n", "caf\xc3\xa9 \xe2\x82\xac");
    cJSON_AddNullToObject(o, "n");
    cJSON_AddTrueToObject(o, "t");
    cJSON_AddFalseToObject(o, "f");
    cJSON_AddRawToObject(o, "raw", "{\"a\":[1,2.5]}");
    cJSON_AddObjectToObject(o, "empty object");
    cJSON_AddArrayToObject(o, "empty array");
    cJSON *a = cJSON_AddArrayToObject(o, "array");
    cJSON_AddItemToArray(a, cJSON_CreateNumber(0.0234));
    cJSON_AddItemToArray(a, cJSON_CreateString("x"));
    cJSON *inner = cJSON_CreateObject();
    cJSON_AddNumberToObject(inner, "w", 96);
    cJSON_AddItemToArray(a, inner);
    cJSON_AddItemToArray(a, cJSON_CreateArray());
    same(o);
    /* a string item without text prints as "" */
    cJSON *s = cJSON_CreateString("x");
    free(s->valuestring);
    s->valuestring = NULL;
    same(s);
    cJSON_Delete(s);
    /* what cJSON cannot print, json_print refuses too */
    cJSON *raw = cJSON_CreateRaw("1");
    free(raw->valuestring);
    raw->valuestring = NULL;
    cJSON_AddItemToObject(o, "bad", raw);
    CHECK(json_print(o) == NULL);
    CHECK(json_print(NULL) == NULL);
    cJSON_Delete(o);
    /* a parsed document, with its numbers as written */
    const char *doc = "{\"result\":{\"classification\":{\"background\":0.0117,\"person\":0.9453}},"
                      "\"timing\":{\"dsp\":2,\"classification_us\":13912},\"info\":\"x\\u0001y\","
                      "\"l\":[1e3,-2.5E-7,123456789012345678,0.1]}";
    cJSON *p = cJSON_Parse(doc);
    CHECK(p != NULL);
    same(p);
    cJSON_Delete(p);
}

/* json_string_append writes json_buf_string's bytes after what a util_buf holds, growing it
 * from nothing and past its first 256 bytes, and leaves it NUL-terminated. */
static void test_string_append(void)
{
    char all[256];
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    all[255] = '\0';
    const char *const strings[] = {"", "plain", all, "q\"b\\\x01\x7f\xe2\x80\xa8", NULL};
    for (size_t k = 0; k < sizeof strings / sizeof strings[0]; k++) {
        for (int pre = 0; pre < 2; pre++) {
            json_buf want = {0};
            if (pre) json_buf_raw(&want, "pre:", 4);
            json_buf_string(&want, strings[k]);
            size_t want_len = want.len;
            char *want_text = json_buf_take(&want);
            util_buf out = {0};
            if (pre) CHECK_EQ_INT(util_buf_append(&out, "pre:", 4), ER_OK);
            CHECK_EQ_INT(json_string_append(&out, strings[k]), ER_OK);
            CHECK_EQ_INT(out.len, want_len);
            CHECK(want_text && out.data && memcmp(out.data, want_text, want_len + 1) == 0);
            /* again, into the buffer that grew */
            CHECK_EQ_INT(json_string_append(&out, strings[k]), ER_OK);
            CHECK_EQ_INT(out.len, 2 * want_len - 4 * pre);
            CHECK(out.data && out.data[out.len] == '\0');
            free(want_text);
            util_buf_free(&out);
        }
    }
}

int main(void)
{
    test_numbers();
    test_values();
    test_string_append();
    return check_summary();
}
