/* store_pack.c - the packed label forms (see store_pack.h for the formats): pure encoders and
 * checking decoders, no I/O, no allocation. */
#include "store/store_pack.h"

#include <stdlib.h>
#include <string.h>

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t varint_put(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

/* 0 and *v set, or -1: runs past end, or more than 64 bits. */
static int varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return -1;
        uint8_t b = *(*p)++;
        if (shift == 63 && b > 1) return -1;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

static void double_put(uint8_t *out, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(u >> (8 * i));
}

static int double_get(const uint8_t **p, const uint8_t *end, double *d)
{
    if (end - *p < 8) return -1;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)(*p)[i] << (8 * i);
    memcpy(d, &u, sizeof *d);
    *p += 8;
    return 0;
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

size_t store_pack_labels_size(const inference_label *labels, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = labels[i].label ? strlen(labels[i].label) : 0;
        total += varint_size(len) + len + 8;
    }
    return total;
}

static int by_label(const void *a, const void *b)
{
    const inference_label *x = *(const inference_label *const *)a;
    const inference_label *y = *(const inference_label *const *)b;
    return strcmp(x->label, y->label);
}

er_rc store_pack_labels(const inference_label *labels, size_t n, const inference_label **order,
                        uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        if (!labels[i].label) return ER_INVALID;
        order[i] = &labels[i];
    }
    /* strcmp orders as SQLite's BINARY collation (memcmp, shorter first) for NUL-free text */
    if (n > 1) qsort(order, n, sizeof *order, by_label);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(order[i]->label);
        if (i > 0 && strcmp(order[i - 1]->label, order[i]->label) == 0) return ER_INVALID;
        out += varint_put(out, len);
        memcpy(out, order[i]->label, len);
        out += len;
        double_put(out, order[i]->score);
        out += 8;
    }
    return ER_OK;
}

void store_pack_iter_init(store_pack_iter *it, const void *blob, size_t len)
{
    it->p = blob;
    it->end = it->p ? it->p + len : NULL;
}

int store_pack_labels_next(store_pack_iter *it, const char **label, size_t *len, double *score)
{
    uint64_t n;
    if (it->p == it->end) return 0;
    if (varint_get(&it->p, it->end, &n) || n > (uint64_t)(it->end - it->p)) goto bad;
    if (memchr(it->p, 0, (size_t)n)) goto bad;
    *label = (const char *)it->p;
    *len = (size_t)n;
    it->p += n;
    if (double_get(&it->p, it->end, score)) goto bad;
    return 1;
bad:
    it->p = it->end; /* a corrupt blob stays corrupt: no later call reads further */
    return -1;
}

size_t store_pack_post(const store_pack_entry *e, size_t n, uint8_t *out)
{
    size_t len = 0;
    int64_t seq = n ? e[0].seq : 0, ts = 0;
    for (size_t i = 0; i < n; i++) {
        len += varint_put(out + len, (uint64_t)(e[i].seq - seq));
        double_put(out + len, e[i].score);
        len += 8;
        /* wrapping difference: any two ts have one, and the decoder wraps back the same way */
        len += varint_put(out + len, zigzag((int64_t)((uint64_t)e[i].ts - (uint64_t)ts)));
        seq = e[i].seq;
        ts = e[i].ts;
    }
    return len;
}

er_rc store_pack_post_read(const void *data, size_t len, int64_t seq0, int64_t seq1,
                           store_pack_entry *out, size_t *n)
{
    const uint8_t *p = data, *end = p ? p + len : NULL;
    int64_t seq = seq0, ts = 0;
    size_t k = 0;
    *n = 0;
    if (!p || len == 0 || seq0 < 0 || seq1 < seq0) return ER_INVALID;
    while (p < end) {
        uint64_t d, z;
        if (k == STORE_PACK_POST_MAX || varint_get(&p, end, &d)) return ER_INVALID;
        if (k == 0 ? d != 0 : (d == 0 || d > (uint64_t)(seq1 - seq))) return ER_INVALID;
        seq += (int64_t)d;
        out[k].seq = seq;
        if (double_get(&p, end, &out[k].score) || varint_get(&p, end, &z)) return ER_INVALID;
        ts = (int64_t)((uint64_t)ts + (uint64_t)unzigzag(z));
        out[k].ts = ts;
        k++;
    }
    if (seq != seq1) return ER_INVALID;
    *n = k;
    return ER_OK;
}
