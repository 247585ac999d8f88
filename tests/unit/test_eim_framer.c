/* test_eim_framer.c - the model reply framer (server/eim/eim_framer.c): replies split at every
 * byte, several replies in one chunk, with and without the NUL after "\n", braces and escaped
 * newlines inside strings, over-long replies and NULs inside a reply (dropped up to their "\n",
 * the next reply intact), and the pending count. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "eim/eim.h"

#define MAX_GOT 16

/* What a run of feeds gave: the replies, and the errors in order. */
typedef struct got {
    char *reply[MAX_GOT];
    size_t n;
    er_rc errors[MAX_GOT];
    size_t n_errors;
} got;

static void got_free(got *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->reply[i]);
    memset(g, 0, sizeof *g);
}

/* Feeds one chunk (copied into its own allocation, so ASan sees a read past it) until every
 * byte is consumed, collecting what comes out. */
static void feed(eim_framer *f, const char *data, size_t len, got *g)
{
    char *copy = malloc(len ? len : 1);
    memcpy(copy, data, len);
    size_t off = 0;
    do {
        size_t used = 0, rlen = 0;
        const char *r = NULL;
        er_err err = {{0}};
        er_rc rc = eim_framer_feed(f, copy + off, len - off, &used, &r, &rlen, &err);
        CHECK(used <= len - off);
        off += used;
        if (rc == ER_OK) {
            CHECK_EQ_INT(strlen(r), rlen);
            if (g->n < MAX_GOT) g->reply[g->n++] = strdup(r);
        } else if (rc != ER_AGAIN) {
            CHECK(err.msg[0] != '\0');
            if (g->n_errors < MAX_GOT) g->errors[g->n_errors++] = rc;
        } else {
            CHECK_EQ_INT(off, len);
        }
        if (rc != ER_AGAIN) CHECK(used > 0);
    } while (off < len);
    free(copy);
}

static eim_framer *framer(size_t max)
{
    eim_framer *f = NULL;
    CHECK_EQ_INT(eim_framer_create(max, &f), ER_OK);
    return f;
}

/* s fed to a fresh framer (bound max) in two chunks split at `at`; g (zeroed) gets the rest. */
static void feed_split(size_t max, const char *s, size_t len, size_t at, got *g)
{
    eim_framer *f = framer(max);
    memset(g, 0, sizeof *g);
    feed(f, s, at, g);
    feed(f, s + at, len - at, g);
    eim_framer_destroy(f);
}

/* The stream below: three replies, the first two as a real model ends them ("\n\0"), the third
 * as a stand-in may ("\n"), with braces and an escaped newline inside strings. */
static const char stream[] = "{\"id\":1,\"success\":true}\n\0"
                             "{\"error\":\"}{ {{ \\n }\",\"id\":2,\"success\":false}\n\0"
                             "{\"id\":3,\"result\":{\"classification\":{\"a{\":0.5}}}\n";
static const char *const want[] = {"{\"id\":1,\"success\":true}",
                                   "{\"error\":\"}{ {{ \\n }\",\"id\":2,\"success\":false}",
                                   "{\"id\":3,\"result\":{\"classification\":{\"a{\":0.5}}}"};

static void check_want(const got *g)
{
    CHECK_EQ_INT(g->n, 3);
    CHECK_EQ_INT(g->n_errors, 0);
    for (size_t i = 0; i < 3 && i < g->n; i++)
        CHECK_EQ_STR(g->reply[i], want[i]);
}

static void test_one_chunk(void)
{
    eim_framer *f = framer(0);
    got g = {0};
    feed(f, stream, sizeof stream - 1, &g);
    check_want(&g);
    CHECK_EQ_INT(eim_framer_pending(f), 0);
    got_free(&g);
    eim_framer_destroy(f);
}

static void test_every_split(void)
{
    size_t len = sizeof stream - 1;
    for (size_t i = 0; i <= len; i++) {
        got g;
        feed_split(0, stream, len, i, &g);
        check_want(&g);
        got_free(&g);
    }
    /* and every pair of split points: three chunks */
    for (size_t i = 0; i <= len; i += 3)
        for (size_t j = i; j <= len; j++) {
            eim_framer *f = framer(0);
            got g = {0};
            feed(f, stream, i, &g);
            feed(f, stream + i, j - i, &g);
            feed(f, stream + j, len - j, &g);
            check_want(&g);
            got_free(&g);
            eim_framer_destroy(f);
        }
}

static void test_byte_by_byte(void)
{
    eim_framer *f = framer(0);
    got g = {0};
    for (size_t i = 0; i < sizeof stream - 1; i++) {
        feed(f, stream + i, 1, &g);
        /* between replies nothing is pending; inside one, what came so far */
        CHECK(eim_framer_pending(f) <= i + 1);
    }
    check_want(&g);
    got_free(&g);
    eim_framer_destroy(f);
}

static void test_empty_lines_and_nuls(void)
{
    static const char s[] = "\0\0\n\n{\"id\":1}\n\0\0\0\n\0{\"id\":2}\n";
    eim_framer *f = framer(0);
    got g = {0};
    feed(f, s, sizeof s - 1, &g);
    CHECK_EQ_INT(g.n, 2);
    CHECK_EQ_INT(g.n_errors, 0);
    CHECK_EQ_STR(g.reply[0], "{\"id\":1}");
    CHECK_EQ_STR(g.reply[1], "{\"id\":2}");
    got_free(&g);
    /* nothing at all, and a chunk of only NULs */
    feed(f, "", 0, &g);
    feed(f, "\0\0", 2, &g);
    CHECK_EQ_INT(g.n, 0);
    CHECK_EQ_INT(eim_framer_pending(f), 0);
    eim_framer_destroy(f);
}

/* A reply the framer drops (with error), split at every byte: the replies around it intact. */
static void check_dropped(size_t max, const char *s, size_t len, er_rc error, const char *before,
                          const char *after)
{
    for (size_t i = 0; i <= len; i++) {
        got g;
        feed_split(max, s, len, i, &g);
        CHECK_EQ_INT(g.n_errors, 1);
        CHECK_EQ_INT(g.errors[0], error);
        CHECK_EQ_INT(g.n, before ? 2 : 1);
        if (g.n == (before ? 2u : 1u)) {
            if (before) CHECK_EQ_STR(g.reply[0], before);
            CHECK_EQ_STR(g.reply[g.n - 1], after);
        }
        got_free(&g);
    }
}

static void test_too_long(void)
{
    /* max 16: a 16-byte reply passes, a 17-byte one is dropped up to its "\n", then a good one */
    static const char s[] = "{\"a\":\"12345678\"}\n\0{\"a\":\"123456789\"}\n\0{\"id\":3}\n";
    check_dropped(16, s, sizeof s - 1, ER_TOOBIG, "{\"a\":\"12345678\"}", "{\"id\":3}");
    /* an endless reply: one error, then nothing held while the rest streams in */
    eim_framer *f = framer(16);
    got g = {0};
    for (int i = 0; i < 10; i++)
        feed(f, "xxxxxxxxxx", 10, &g);
    CHECK_EQ_INT(g.n_errors, 1);
    CHECK_EQ_INT(eim_framer_pending(f), 0);
    feed(f, "\n{\"id\":4}\n", 10, &g);
    CHECK_EQ_INT(g.n, 1);
    if (g.n) CHECK_EQ_STR(g.reply[0], "{\"id\":4}");
    got_free(&g);
    eim_framer_destroy(f);
    /* the default bound is EIM_MAX_REPLY_BYTES */
    f = framer(0);
    size_t big = EIM_MAX_REPLY_BYTES + 1;
    char *b = malloc(big + 1);
    memset(b, 'x', big);
    b[big] = '\n';
    feed(f, b, big + 1, &g);
    CHECK_EQ_INT(g.n, 0);
    CHECK_EQ_INT(g.n_errors, 1);
    CHECK_EQ_INT(g.errors[0], ER_TOOBIG);
    got_free(&g);
    b[big - 1] = '\n'; /* exactly the bound: accepted */
    feed(f, b, big, &g);
    CHECK_EQ_INT(g.n, 1);
    CHECK_EQ_INT(g.n_errors, 0);
    if (g.n) CHECK_EQ_INT(strlen(g.reply[0]), EIM_MAX_REPLY_BYTES);
    got_free(&g);
    free(b);
    eim_framer_destroy(f);
}

static void test_nul_inside(void)
{
    static const char s[] = "{\"id\":1,\0\"x\":2}\n\0{\"id\":2}\n";
    check_dropped(0, s, sizeof s - 1, ER_INVALID, NULL, "{\"id\":2}");
}

static void test_pending(void)
{
    eim_framer *f = framer(0);
    got g = {0};
    feed(f, "{\"id\":", 6, &g);
    CHECK_EQ_INT(eim_framer_pending(f), 6);
    feed(f, "1}\n\0{\"i", 7, &g);
    CHECK_EQ_INT(g.n, 1);
    CHECK_EQ_INT(eim_framer_pending(f), 3);
    got_free(&g);
    eim_framer_destroy(f);
    eim_framer_destroy(NULL);
}

int main(void)
{
    test_one_chunk();
    test_every_split();
    test_byte_by_byte();
    test_empty_lines_and_nuls();
    test_too_long();
    test_nul_inside();
    test_pending();
    return check_summary();
}
