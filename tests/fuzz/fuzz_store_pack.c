/* fuzz_store_pack.c - the packed label decoders (store/store_pack.c) on arbitrary bytes, as a
 * corrupt database file could hand them: byte 0 even = an inference's labels blob (the rest),
 * odd = a label_post row: bytes 1..8 seq0, 9..16 seq1 - seq0 (little-endian, masked to stay
 * positive), the rest its data. Each blob is an exact-size heap copy, so an over-read is a
 * sanitizer report. Checks: decoded labels lie inside the blob without a NUL, and re-packing
 * them (when distinct and in order) decodes to the same; decoded postings are 1..256 entries,
 * strictly ascending from seq0 to seq1, and re-pack to the same entries. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_labels(const uint8_t *blob, size_t len)
{
    inference_label labels[64];
    const inference_label *order[64];
    size_t n = 0;
    store_pack_iter it;
    store_pack_iter_init(&it, blob, len);
    const char *label;
    size_t llen;
    double score;
    int got;
    while ((got = store_pack_labels_next(&it, &label, &llen, &score)) > 0) {
        if (label < (const char *)blob || label + llen > (const char *)blob + len ||
            memchr(label, 0, llen))
            abort();
        if (n < 64) {
            /* not strndup: the label is not NUL-terminated, and ASan's strict_string_checks
             * (scripts/test.sh) makes strndup's interceptor look for the NUL past the blob */
            char *copy = malloc(llen + 1);
            if (!copy) abort();
            memcpy(copy, label, llen);
            copy[llen] = '\0';
            labels[n].label = copy;
            labels[n].score = score;
            n++;
        }
    }
    if (got == 0 && n < 64) { /* a whole blob: packing what it said gives it back */
        size_t size = store_pack_labels_size(labels, n);
        uint8_t *again = malloc(size ? size : 1);
        if (store_pack_labels(labels, n, order, again) == ER_OK) {
            store_pack_iter_init(&it, again, size);
            for (size_t i = 0; i < n; i++)
                if (store_pack_labels_next(&it, &label, &llen, &score) != 1 ||
                    strlen(order[i]->label) != llen || memcmp(order[i]->label, label, llen) ||
                    memcmp(&order[i]->score, &score, sizeof score))
                    abort();
            if (store_pack_labels_next(&it, &label, &llen, &score) != 0) abort();
        }
        free(again);
    }
    for (size_t i = 0; i < n; i++)
        free(labels[i].label);
}

static int64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return (int64_t)(v & 0x3fffffffffffffffu);
}

static void fuzz_post(const uint8_t *head, const uint8_t *blob, size_t len)
{
    static store_pack_entry e[STORE_PACK_POST_MAX], again[STORE_PACK_POST_MAX];
    static uint8_t buf[STORE_PACK_POST_MAX * STORE_PACK_ENTRY_MAX];
    int64_t seq0 = le64(head), seq1 = seq0 + le64(head + 8);
    size_t n = 0, m = 0;
    if (store_pack_post_read(blob, len, seq0, seq1, e, &n) != ER_OK) {
        if (n != 0) abort();
        return;
    }
    if (n < 1 || n > STORE_PACK_POST_MAX || e[0].seq != seq0 || e[n - 1].seq != seq1) abort();
    for (size_t i = 1; i < n; i++)
        if (e[i].seq <= e[i - 1].seq) abort();
    size_t plen = store_pack_post(e, n, buf);
    if (store_pack_post_read(buf, plen, seq0, seq1, again, &m) != ER_OK || m != n ||
        memcmp(e, again, n * sizeof *e))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t skip = data[0] & 1 ? 17 : 1;
    if (size < skip) return 0;
    uint8_t *blob = malloc(size - skip ? size - skip : 1);
    if (!blob) return 0;
    memcpy(blob, data + skip, size - skip);
    if (data[0] & 1)
        fuzz_post(data + 1, blob, size - skip);
    else
        fuzz_labels(blob, size - skip);
    free(blob);
    return 0;
}
