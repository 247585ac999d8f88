/* test_store_pack.c - the packed label forms (store/store_pack.c): an inference's labels round
 * trip in label order (byte order, as SQLite's BINARY collation sorts), with their exact scores;
 * a NULL or repeated label is refused; postings round trip (seq deltas, exact scores, ts deltas
 * of any size, negative and wrapping); and every truncation, overlong varint, NUL in a label,
 * out-of-order seq, wrong seq0 / seq1 and too many entries is refused without reading past the
 * blob (each blob is an exact-size heap copy, so an over-read is an ASan report). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "store/store_pack.h"

/* Decodes labels blob (a heap copy of exactly len bytes): the count, or -1 when refused. */
static int decode_labels(const uint8_t *blob, size_t len, const char **names, double *scores,
                         int max)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, blob, len);
    store_pack_iter it;
    store_pack_iter_init(&it, copy, len);
    const char *label;
    size_t n;
    double score;
    int got, k = 0;
    static char keep[16][64];
    while ((got = store_pack_labels_next(&it, &label, &n, &score)) > 0) {
        if (k < max && k < 16 && n < 64) {
            memcpy(keep[k], label, n);
            keep[k][n] = '\0';
            names[k] = keep[k];
            scores[k] = score;
        }
        k++;
    }
    free(copy);
    return got < 0 ? -1 : k;
}

static void labels_round_trip(void)
{
    inference_label in[] = {{"wave", 0.9}, {"idle", 0.02}, {"Zed", -0.0}, {"a", 1e-300},
                            {"ab", NAN},   {"", 0.5},      {"b", 0.1}};
    size_t n = sizeof in / sizeof in[0];
    const inference_label *order[8];
    size_t size = store_pack_labels_size(in, n);
    uint8_t *buf = malloc(size);
    CHECK_EQ_INT(store_pack_labels(in, n, order, buf), ER_OK);
    const char *names[8];
    double scores[8];
    CHECK_EQ_INT(decode_labels(buf, size, names, scores, 8), (int)n);
    const char *want[] = {"", "Zed", "a", "ab", "b", "idle", "wave"}; /* bytes: 'Z' < 'a' */
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_STR(names[i], want[i]);
    CHECK(signbit(scores[1]) && scores[1] == 0); /* -0 stays -0: the exact double */
    CHECK(scores[2] == 1e-300);
    CHECK(isnan(scores[3]));
    CHECK(scores[6] == 0.9);
    /* every cut of the blob is refused, except at a label boundary (a shorter list) */
    for (size_t cut = 0; cut < size; cut++) {
        int got = decode_labels(buf, cut, names, scores, 8);
        CHECK(got == -1 || (got >= 0 && got < (int)n));
    }
    free(buf);
    /* zero labels: an empty blob */
    CHECK_EQ_INT(store_pack_labels_size(in, 0), 0);
    CHECK_EQ_INT(decode_labels((const uint8_t *)"", 0, names, scores, 8), 0);
}

static void labels_refused(void)
{
    const inference_label *order[3];
    uint8_t buf[64];
    inference_label twice[] = {{"a", 0.1}, {"b", 0.2}, {"a", 0.3}};
    CHECK_EQ_INT(store_pack_labels(twice, 3, order, buf), ER_INVALID);
    inference_label null[] = {{"a", 0.1}, {NULL, 0.2}};
    CHECK_EQ_INT(store_pack_labels(null, 2, order, buf), ER_INVALID);

    const char *names[8];
    double scores[8];
    const uint8_t nul[] = {2, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0};            /* NUL in the label */
    const uint8_t long_len[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, /* 11-byte varint */
                                0x80, 0x80, 0x80, 0x01};
    const uint8_t past[] = {0xff, 0x01, 'a'}; /* length past the end */
    const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'a'};
    const uint8_t short_score[] = {1, 'a', 0, 0, 0, 0, 0, 0, 0}; /* 7 bytes of 8 */
    CHECK_EQ_INT(decode_labels(nul, sizeof nul, names, scores, 8), -1);
    CHECK_EQ_INT(decode_labels(long_len, sizeof long_len, names, scores, 8), -1);
    CHECK_EQ_INT(decode_labels(past, sizeof past, names, scores, 8), -1);
    CHECK_EQ_INT(decode_labels(huge, sizeof huge, names, scores, 8), -1);
    CHECK_EQ_INT(decode_labels(short_score, sizeof short_score, names, scores, 8), -1);
}

/* Decodes a posting (a heap copy of exactly len bytes); ER_OK and *n, or the refusal. */
static er_rc read_post(const uint8_t *data, size_t len, int64_t seq0, int64_t seq1,
                       store_pack_entry *out, size_t *n)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, data, len);
    er_rc rc = store_pack_post_read(copy, len, seq0, seq1, out, n);
    free(copy);
    return rc;
}

static void posts_round_trip(void)
{
    static store_pack_entry in[STORE_PACK_POST_MAX], out[STORE_PACK_POST_MAX];
    static uint8_t buf[STORE_PACK_POST_MAX * STORE_PACK_ENTRY_MAX];
    const int64_t ts[] = {INT64_MIN, INT64_MAX, -5, 0, 1733600000000, 1733600000000, 17};
    int64_t seq = 1000000;
    for (size_t i = 0; i < STORE_PACK_POST_MAX; i++) {
        seq += i % 3 ? 1 : (int64_t)(i * 977);
        in[i] = (store_pack_entry){seq, (double)i / 7.0, ts[i % 7] + (int64_t)(i % 7 > 1 ? i : 0)};
    }
    for (size_t n = 1; n <= STORE_PACK_POST_MAX; n += n < 4 ? 1 : 63) {
        size_t len = store_pack_post(in, n, buf), got = 0;
        CHECK(len <= n * STORE_PACK_ENTRY_MAX);
        CHECK_EQ_INT(read_post(buf, len, in[0].seq, in[n - 1].seq, out, &got), ER_OK);
        CHECK_EQ_INT(got, n);
        CHECK(memcmp(in, out, n * sizeof *in) == 0);
        /* wrong bounds, and every cut, are refused */
        CHECK_EQ_INT(read_post(buf, len, in[0].seq - 1, in[n - 1].seq, out, &got), ER_INVALID);
        CHECK_EQ_INT(got, 0);
        CHECK_EQ_INT(read_post(buf, len, in[0].seq, in[n - 1].seq + 1, out, &got), ER_INVALID);
        if (n > 1)
            CHECK_EQ_INT(read_post(buf, len, in[0].seq, in[n - 2].seq, out, &got), ER_INVALID);
        /* even a cut between entries: the last seq must be seq1 */
        for (size_t cut = 0; cut < len && n < 5; cut++)
            CHECK_EQ_INT(read_post(buf, cut, in[0].seq, in[n - 1].seq, out, &got), ER_INVALID);
    }
    /* one entry past the limit: refused */
    static uint8_t big[(STORE_PACK_POST_MAX + 1) * STORE_PACK_ENTRY_MAX];
    size_t len = store_pack_post(in, STORE_PACK_POST_MAX, big), got = 0;
    const uint8_t more[] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(big + len, more, sizeof more);
    CHECK_EQ_INT(read_post(big, len + sizeof more, in[0].seq, in[STORE_PACK_POST_MAX - 1].seq + 1,
                           out, &got),
                 ER_INVALID);
}

static void posts_refused(void)
{
    store_pack_entry out[STORE_PACK_POST_MAX];
    size_t n = 0;
    const uint8_t first_not_zero[] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t same_seq[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t ok_one[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t overlong_ts[] = {0,    0,    0,    0,    0,    0,    0,    0,    0,   0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    CHECK_EQ_INT(read_post(first_not_zero, sizeof first_not_zero, 5, 6, out, &n), ER_INVALID);
    CHECK_EQ_INT(read_post(same_seq, sizeof same_seq, 5, 5, out, &n), ER_INVALID);
    CHECK_EQ_INT(read_post(ok_one, sizeof ok_one, 5, 5, out, &n), ER_OK);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(read_post(ok_one, 0, 5, 5, out, &n), ER_INVALID); /* empty */
    CHECK_EQ_INT(read_post(ok_one, sizeof ok_one, 6, 5, out, &n), ER_INVALID);
    CHECK_EQ_INT(read_post(ok_one, sizeof ok_one, -1, -1, out, &n), ER_INVALID);
    CHECK_EQ_INT(read_post(overlong_ts, sizeof overlong_ts, 5, 5, out, &n), ER_INVALID);
    /* a seq delta that would pass seq1 (or overflow) */
    const uint8_t jump[] = {0,    0,    0,    0,    0,    0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
                            0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0,    0,    0,    0};
    CHECK_EQ_INT(read_post(jump, sizeof jump, 5, INT64_MAX, out, &n), ER_INVALID);
}

int main(void)
{
    labels_round_trip();
    labels_refused();
    posts_round_trip();
    posts_refused();
    return check_summary();
}
