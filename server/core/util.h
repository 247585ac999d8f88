/* util.h - small pure helpers shared by modules: clocks, uuid v4 and v7, base64, constant-time
 * compare, strict number parsing, a growable byte buffer. */
#ifndef EI_CORE_UTIL_H
#define EI_CORE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "core/rc.h"

#define UTIL_UUID_LEN 36 /* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" without NUL */

int64_t util_now_ms(void);  /* wall clock, epoch milliseconds */
int64_t util_now_us(void);  /* wall clock, epoch microseconds (latency stamps) */
int64_t util_mono_ms(void); /* monotonic milliseconds, for intervals */
/* The moment ms milliseconds from now on clock (CLOCK_MONOTONIC, CLOCK_REALTIME), for
 * pthread_cond_timedwait. */
void util_deadline(struct timespec *ts, clockid_t clock, int64_t ms);

/* Fills buf (n bytes) from the kernel CSPRNG. */
er_rc util_random(void *buf, size_t n);
/* Writes a random (v4) uuid plus NUL into out (at least UTIL_UUID_LEN + 1 bytes). */
er_rc util_uuid4(char *out);
/* Writes a time-ordered (v7, RFC 9562) uuid plus NUL into out: 48 bits of wall-clock epoch ms,
 * then a counter seeded at random each ms (so ids made in one process sort in the order they
 * were made, even within one ms or across a clock step back), then random bits. Inference ids
 * the relay makes are these, so the store's id index is appended to instead of written at a
 * random place per insert. Thread-safe. */
er_rc util_uuid7(char *out);
/* True if s is a uuid in canonical 8-4-4-4-12 hex form (any version, any case). */
bool util_is_uuid(const char *s);

/* Compares two NUL-terminated secrets in time independent of where they differ. */
bool util_ct_equal(const char *a, const char *b);

/* Base64 (RFC 4648, standard alphabet, padding optional on decode, whitespace rejected).
 * util_b64_decoded_max gives a bound for the output buffer. */
size_t util_b64_encoded_len(size_t n);
void util_b64_encode(const void *src, size_t n, char *out); /* out gets len+1 with NUL */
size_t util_b64_decoded_max(size_t n);
er_rc util_b64_decode(const char *src, size_t n, uint8_t *out, size_t *out_len);

/* Strict parsing: the whole string must be the number, no overflow. */
er_rc util_parse_i64(const char *s, int64_t *out);
er_rc util_parse_double(const char *s, double *out);
/* Epoch ms or RFC 3339 UTC ("2026-11-24T10:00:00Z", optional .fff and +hh:mm). */
er_rc util_parse_time_ms(const char *s, int64_t *out);

/* Growable byte buffer; data is always NUL-terminated for convenience. */
typedef struct util_buf {
    char *data;
    size_t len;
    size_t cap;
} util_buf;

er_rc util_buf_append(util_buf *b, const void *p, size_t n);
er_rc util_buf_printf(util_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void util_buf_free(util_buf *b);

/* True when the n bytes are well-formed UTF-8 (no overlong forms, surrogates or values past
 * U+10FFFF): what every JSON text this service stores or sends must be. */
bool util_utf8_valid(const void *data, size_t n);
/* Makes the NUL-terminated s well-formed UTF-8 in place: each byte that does not start a
 * well-formed sequence (a stray or cut one) becomes '?'. Returns how many were replaced. For
 * text echoed from a request into a JSON answer, which must stay valid UTF-8. */
size_t util_utf8_scrub(char *s);

/* Reads the whole file at path into out (emptied first; NUL-terminated), at most max bytes:
 * ER_NOTFOUND when it does not exist, ER_TOOBIG when it is longer, ER_IO when it cannot be read;
 * err names it as "<what> <path>". */
er_rc util_read_file(const char *path, size_t max, const char *what, util_buf *out, er_err *err);

/* Writes the file name in the directory dirfd atomically and without following links: under
 * ".<name>.tmp", created exclusively (O_EXCL|O_NOFOLLOW: a leftover or planted entry of that
 * name loses its name and is never written through), then written, given to owner:group
 * ((uid_t)-1 / (gid_t)-1 keep the creator's), chmod'ed to mode, fsynced and renamed over name
 * (a link planted as name is replaced, not followed). The caller fsyncs dirfd to make the
 * rename durable. On failure the temporary is gone, errno is kept and *step says what failed
 * ("create", "write", "give"); ER_FULL when the disk is full, else ER_IO. */
er_rc util_write_file_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                         uid_t owner, gid_t group, const char **step);

/* Creates the directories above the file at path (mode 0750, existing ones kept): what the
 * database and the token file next to it need on first start. "what" names the file in err. */
er_rc util_mkdir_parents(const char *path, const char *what, er_err *err);

/* Names the calling thread prefix+name (cut to 15 bytes) for top -H, perf and gdb. */
void util_thread_name(const char *prefix, const char *name);

#endif
