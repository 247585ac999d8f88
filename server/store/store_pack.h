/* store_pack.h - the two packed label forms of the store (schema/005_labels.sql), pure (no I/O,
 * no allocation): an inference's labels in its own row (inference.labels) and a label's
 * postings of one commit batch (label_post.data). Decoders read bytes from the database file,
 * so they check every length and refuse (ER_INVALID) anything that is not what the encoder
 * writes; they never read past the blob.
 *
 * inference.labels: per label, in label order (byte order, SQLite's BINARY collation: what the
 * reads return): varint byte length, the label's bytes (no NUL), the score as the 8 bytes of
 * the IEEE double, little-endian. Zero labels: an empty blob.
 *
 * label_post.data: 1..STORE_PACK_POST_MAX entries in ascending seq: varint seq delta (from the
 * row's seq0 for the first, which is therefore 0; at least 1 after), the score (8 bytes as
 * above), the ts as a zigzag varint delta from the previous entry's (from 0 for the first).
 * The last entry's seq is the row's seq1. Varints are LEB128, at most 10 bytes. */
#ifndef EI_STORE_STORE_PACK_H
#define EI_STORE_STORE_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"
#include "model/inference.h"

#define STORE_PACK_POST_MAX 256 /* entries in one posting row */
#define STORE_PACK_ENTRY_MAX 28 /* bytes one posting entry takes at most */

/* ---- inference.labels ---- */

/* Bytes the packed form of these labels takes (label NULL counts as ""). */
size_t store_pack_labels_size(const inference_label *labels, size_t n);
/* Packs labels (n, in any order) into out (store_pack_labels_size bytes); order is the caller's
 * scratch of n pointers, sorted here. ER_INVALID: a label is NULL, holds a NUL or appears twice
 * (nothing usable is written then). */
er_rc store_pack_labels(const inference_label *labels, size_t n, const inference_label **order,
                        uint8_t *out);

/* Walks a packed labels blob. */
typedef struct store_pack_iter {
    const uint8_t *p, *end;
} store_pack_iter;

void store_pack_iter_init(store_pack_iter *it, const void *blob, size_t len);
/* The next label: 1 and *label (not NUL-terminated, inside the blob) / *len / *score set, 0 at
 * the end, -1 when the blob is corrupt. */
int store_pack_labels_next(store_pack_iter *it, const char **label, size_t *len, double *score);

/* ---- label_post.data ---- */

typedef struct store_pack_entry {
    int64_t seq;
    double score;
    int64_t ts;
} store_pack_entry;

/* Packs n (1..STORE_PACK_POST_MAX) entries in ascending seq into out (n * STORE_PACK_ENTRY_MAX
 * bytes room); returns the length. The row's seq0 / seq1 are e[0].seq / e[n-1].seq. */
size_t store_pack_post(const store_pack_entry *e, size_t n, uint8_t *out);
/* Unpacks the data of the posting row (seq0, seq1) into out (STORE_PACK_POST_MAX room), oldest
 * first; ER_INVALID when it is corrupt (then *n is 0). */
er_rc store_pack_post_read(const void *data, size_t len, int64_t seq0, int64_t seq1,
                           store_pack_entry *out, size_t *n);

#endif
