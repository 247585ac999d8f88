/* util.c - see util.h. */
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

int64_t util_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t util_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void util_deadline(struct timespec *ts, clockid_t clock, int64_t ms)
{
    clock_gettime(clock, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

er_rc util_random(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return ER_IO;
        }
        p += got;
        n -= (size_t)got;
    }
    return ER_OK;
}

/* Random bytes for ids, taken from getrandom in blocks: one system call per UUID_POOL / 16 ids
 * instead of one per id (an ingest request made one). Per thread, so no lock; a forked child
 * drops the block it inherited, so parent and child never hand out the same bytes. */
#define UUID_POOL 256
static _Thread_local uint8_t t_pool[UUID_POOL];
static _Thread_local size_t t_pool_left;
static pthread_once_t g_pool_once = PTHREAD_ONCE_INIT;

static void pool_forget(void)
{
    t_pool_left = 0;
}

static void pool_init(void)
{
    pthread_atfork(NULL, NULL, pool_forget);
}

/* n (at most 16) random bytes from this thread's block. */
static er_rc pool_take(uint8_t *out, size_t n)
{
    pthread_once(&g_pool_once, pool_init);
    if (t_pool_left < n) {
        er_rc rc = util_random(t_pool, sizeof t_pool);
        if (rc) return rc;
        t_pool_left = sizeof t_pool;
    }
    memcpy(out, t_pool + sizeof t_pool - t_pool_left, n);
    memset(t_pool + sizeof t_pool - t_pool_left, 0, n); /* each byte is used once */
    t_pool_left -= n;
    return ER_OK;
}

static void uuid_format(const uint8_t b[16], char *out)
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}

er_rc util_uuid4(char *out)
{
    uint8_t b[16];
    er_rc rc = pool_take(b, sizeof b);
    if (rc) return rc;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    uuid_format(b, out);
    return ER_OK;
}

/* The v7 generator's state (RFC 9562 section 6.2, method 1 with a 42-bit counter: rand_a's
 * 12 bits and the top 30 of rand_b). The counter starts at a random value below 2^41 each new
 * ms, so about 2^41 ids fit in one ms; the last 32 bits are random (the thread's block). */
static struct {
    pthread_mutex_t mu;
    int64_t ms;       /* the timestamp of the last id */
    uint64_t counter; /* its counter */
} g_uuid7 = {.mu = PTHREAD_MUTEX_INITIALIZER};

#define UUID7_COUNTER_BITS 42
#define UUID7_COUNTER_MAX ((UINT64_C(1) << UUID7_COUNTER_BITS) - 1)

er_rc util_uuid7(char *out)
{
    uint8_t b[16], r[12];
    uint64_t seed = 0;
    er_rc rc = pool_take(r, sizeof r); /* 4 for the tail, 8 for a new ms's seed */
    if (rc) return rc;
    memcpy(&seed, r + 4, sizeof seed);
    int64_t now = util_now_ms();
    pthread_mutex_lock(&g_uuid7.mu);
    if (now > g_uuid7.ms) {
        g_uuid7.ms = now;
        g_uuid7.counter = seed & (UUID7_COUNTER_MAX >> 1);
    } else if (g_uuid7.counter < UUID7_COUNTER_MAX) {
        g_uuid7.counter++; /* same ms, or the clock stepped back: keep counting from the last */
    } else {
        g_uuid7.ms++; /* counter used up (never in practice): borrow the next ms */
        g_uuid7.counter = 0;
    }
    uint64_t ms = (uint64_t)g_uuid7.ms, c = g_uuid7.counter;
    pthread_mutex_unlock(&g_uuid7.mu);
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70 | ((c >> 38) & 0x0f)); /* version 7, counter bits 41..38 */
    b[7] = (uint8_t)(c >> 30);
    b[8] = (uint8_t)(0x80 | ((c >> 24) & 0x3f)); /* variant 10, counter bits 29..24 */
    b[9] = (uint8_t)(c >> 16);
    b[10] = (uint8_t)(c >> 8);
    b[11] = (uint8_t)c;
    memcpy(b + 12, r, 4);
    uuid_format(b, out);
    return ER_OK;
}

bool util_is_uuid(const char *s)
{
    for (int i = 0; i < UTIL_UUID_LEN; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return s[UTIL_UUID_LEN] == '\0';
}

bool util_ct_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), n = la > lb ? la : lb;
    /* Walk the longer length whatever the content so timing does not reveal a prefix match. */
    unsigned diff = la != lb;
    for (size_t i = 0; i < n; i++) {
        unsigned char ca = i < la ? (unsigned char)a[i] : 0;
        unsigned char cb = i < lb ? (unsigned char)b[i] : 0;
        diff |= ca ^ cb;
    }
    return diff == 0 && lb > 0;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t util_b64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

void util_b64_encode(const void *src, size_t n, char *out)
{
    const uint8_t *s = src;
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
}

size_t util_b64_decoded_max(size_t n)
{
    return n / 4 * 3 + 3;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

er_rc util_b64_decode(const char *src, size_t n, uint8_t *out, size_t *out_len)
{
    while (n > 0 && src[n - 1] == '=')
        n--;
    if (n % 4 == 1) return ER_INVALID;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(src[i]);
        if (v < 0) return ER_INVALID;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    *out_len = o;
    return ER_OK;
}

er_rc util_parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s) return ER_INVALID;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s) return ER_INVALID;
    *out = v;
    return ER_OK;
}

er_rc util_parse_double(const char *s, double *out)
{
    if (!s || !*s) return ER_INVALID;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !isfinite(v)) return ER_INVALID;
    *out = v;
    return ER_OK;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* Howard Hinnant's algorithm: proleptic Gregorian date to days since 1970-01-01. */
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool take_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

er_rc util_parse_time_ms(const char *s, int64_t *out)
{
    if (util_parse_i64(s, out) == ER_OK) return ER_OK;
    const char *p = s;
    int y, mo, d, h, mi, sec, ms = 0;
    if (!take_digits(&p, 4, &y) || *p++ != '-' || !take_digits(&p, 2, &mo) || *p++ != '-' ||
        !take_digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' '))
        return ER_INVALID;
    p++;
    if (!take_digits(&p, 2, &h) || *p++ != ':' || !take_digits(&p, 2, &mi) || *p++ != ':' ||
        !take_digits(&p, 2, &sec))
        return ER_INVALID;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return ER_INVALID;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3) ms = ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0) return ER_INVALID;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (!take_digits(&p, 2, &oh) || *p++ != ':' || !take_digits(&p, 2, &om)) return ER_INVALID;
        offset_min = sign * (oh * 60 + om);
    } else {
        return ER_INVALID;
    }
    if (*p) return ER_INVALID;
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    *out = secs * 1000 + ms;
    return ER_OK;
}

er_rc util_buf_append(util_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) return ER_NOMEM;
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return ER_OK;
}

er_rc util_buf_printf(util_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return ER_INVALID;
    if ((size_t)n < sizeof tmp) return util_buf_append(b, tmp, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big) return ER_NOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    er_rc rc = util_buf_append(b, big, (size_t)n);
    free(big);
    return rc;
}

void util_buf_free(util_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* The length (1..4) of the well-formed UTF-8 sequence at s[0..n), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t more;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        more = 1;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        more = 2;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        more = 3;
        cp = c & 0x07;
    } else {
        return 0; /* a continuation byte first, C0/C1 overlong leads, F5..FF */
    }
    if (more >= n) return 0;
    for (size_t k = 1; k <= more; k++) {
        if ((s[k] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    /* overlong forms, surrogates and values past U+10FFFF */
    if ((more == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (more == 3 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return more + 1;
}

bool util_utf8_valid(const void *data, size_t n)
{
    const unsigned char *s = data;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq(s + i, n - i);
        if (!len) return false;
        i += len;
    }
    return true;
}

size_t util_utf8_scrub(char *s)
{
    unsigned char *u = (unsigned char *)s;
    size_t n = strlen(s), replaced = 0;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq(u + i, n - i);
        if (len) {
            i += len;
            continue;
        }
        u[i++] = '?';
        replaced++;
    }
    return replaced;
}

void util_thread_name(const char *prefix, const char *name)
{
    char buf[16]; /* the kernel keeps 15 bytes */
    snprintf(buf, sizeof buf, "%s%s", prefix, name ? name : "");
    prctl(PR_SET_NAME, buf, 0, 0, 0);
}

er_rc util_read_file(const char *path, size_t max, const char *what, util_buf *out, er_err *err)
{
    er_rc rc = ER_OK;
    char chunk[4096];
    out->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT || errno == ENOTDIR ? ER_NOTFOUND : ER_IO;
        er_fail(err, rc, "%s %s: %s", what, path, strerror(errno));
        goto done;
    }
    for (;;) {
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            rc = er_fail(err, ER_IO, "%s %s: %s", what, path, strerror(errno));
            goto done;
        }
        if (got == 0) break;
        if (out->len + (size_t)got > max) {
            rc = er_fail(err, ER_TOOBIG, "%s %s is larger than %zu bytes", what, path, max);
            goto done;
        }
        if ((rc = util_buf_append(out, chunk, (size_t)got))) {
            er_fail(err, rc, "%s %s: out of memory", what, path);
            goto done;
        }
    }
    if ((rc = util_buf_append(out, "", 0))) er_fail(err, rc, "%s %s: out of memory", what, path);
done:
    if (fd >= 0) close(fd);
    return rc;
}

er_rc util_write_file_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                         uid_t owner, gid_t group, const char **step)
{
    char tmp[PATH_MAX];
    const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    int fd = -1, saved;
    *step = "create";
    if ((size_t)snprintf(tmp, sizeof tmp, ".%s.tmp", name) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return ER_IO;
    }
    fd = openat(dirfd, tmp, flags, 0600);
    if (fd < 0 && errno == EEXIST && unlinkat(dirfd, tmp, 0) == 0) /* a crash's leftover */
        fd = openat(dirfd, tmp, flags, 0600);
    if (fd < 0) return ER_IO; /* nothing of ours to remove */
    *step = "write";
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, (const char *)data + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) goto fail;
        off += (size_t)n;
    }
    *step = "give";
    if ((owner != (uid_t)-1 || group != (gid_t)-1) && fchown(fd, owner, group) != 0) goto fail;
    *step = "write";
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0) goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (renameat(dirfd, tmp, dirfd, name) != 0) goto fail;
    return ER_OK;
fail:
    saved = errno;
    if (fd >= 0) close(fd);
    unlinkat(dirfd, tmp, 0);
    errno = saved;
    return saved == ENOSPC || saved == EDQUOT ? ER_FULL : ER_IO;
}

er_rc util_mkdir_parents(const char *path, const char *what, er_err *err)
{
    er_rc rc = ER_OK;
    char *dir = strdup(path);
    if (!dir) return er_fail(err, ER_NOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) goto done; /* current directory or "/" */
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
                rc = er_fail(err, ER_IO, "cannot create the %s directory %s: %s", what, dir,
                             strerror(errno));
                goto done;
            }
            if (end) break;
            *p = '/';
        }
    }
done:
    free(dir);
    return rc;
}
