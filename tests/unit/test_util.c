/* test_util.c - core helpers: base64, uuid, time parsing, constant-time compare, device iface,
 * reading a whole file, deadlines. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "core/device.h"
#include "core/util.h"

static void test_base64(void)
{
    static const struct {
        const char *plain, *b64;
    } v[] = {{"", ""},
             {"f", "Zg=="},
             {"fo", "Zm8="},
             {"foo", "Zm9v"},
             {"foob", "Zm9vYg=="},
             {"fooba", "Zm9vYmE="},
             {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char enc[32];
        util_b64_encode(v[i].plain, strlen(v[i].plain), enc);
        CHECK_EQ_STR(enc, v[i].b64);
        uint8_t dec[32];
        size_t n = 0;
        CHECK_EQ_INT(util_b64_decode(v[i].b64, strlen(v[i].b64), dec, &n), ER_OK);
        CHECK_EQ_INT(n, strlen(v[i].plain));
        CHECK(memcmp(dec, v[i].plain, n) == 0);
    }
    uint8_t out[16];
    size_t n;
    CHECK_EQ_INT(util_b64_decode("Zm9vYmFy", 8, out, &n), ER_OK); /* padding optional */
    CHECK_EQ_INT(util_b64_decode("Zm9v YmFy", 9, out, &n), ER_INVALID);
    CHECK_EQ_INT(util_b64_decode("Z", 1, out, &n), ER_INVALID);
    CHECK_EQ_INT(util_b64_decode("Zm9*", 4, out, &n), ER_INVALID);
    /* every byte value survives a round trip */
    uint8_t all[256], back[256 + 3];
    char enc[400];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    util_b64_encode(all, 256, enc);
    CHECK_EQ_INT(strlen(enc), util_b64_encoded_len(256));
    CHECK_EQ_INT(util_b64_decode(enc, strlen(enc), back, &n), ER_OK);
    CHECK(n == 256 && memcmp(all, back, 256) == 0);
}

static void test_uuid(void)
{
    char a[UTIL_UUID_LEN + 1], b[UTIL_UUID_LEN + 1];
    CHECK_EQ_INT(util_uuid4(a), ER_OK);
    CHECK_EQ_INT(util_uuid4(b), ER_OK);
    CHECK(util_is_uuid(a));
    CHECK(strcmp(a, b) != 0);
    CHECK(a[14] == '4');
    CHECK(strchr("89ab", a[19]) != NULL);
    /* ids come from a per-thread block of random bytes: across refills every one is a valid,
     * different v4 uuid (sorted, so a repeat is next to its twin) */
    enum { N_IDS = 1000 };
    static char ids[N_IDS][UTIL_UUID_LEN + 1];
    for (int i = 0; i < N_IDS; i++) {
        CHECK_EQ_INT(util_uuid4(ids[i]), ER_OK);
        CHECK(util_is_uuid(ids[i]) && ids[i][14] == '4' && strchr("89ab", ids[i][19]));
    }
    qsort(ids, N_IDS, sizeof ids[0], (int (*)(const void *, const void *))strcmp);
    int repeats = 0;
    for (int i = 1; i < N_IDS; i++)
        repeats += strcmp(ids[i - 1], ids[i]) == 0;
    CHECK_EQ_INT(repeats, 0);
    /* a forked child does not reuse the parent's block: its next id is not the parent's */
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        char c[UTIL_UUID_LEN + 1];
        util_uuid4(c);
        _exit(write(fds[1], c, sizeof c) == (ssize_t)sizeof c ? 0 : 1);
    }
    char child[UTIL_UUID_LEN + 1] = {0}, parent[UTIL_UUID_LEN + 1];
    CHECK(read(fds[0], child, sizeof child) == (ssize_t)sizeof child);
    waitpid(pid, NULL, 0);
    close(fds[0]);
    close(fds[1]);
    CHECK_EQ_INT(util_uuid4(parent), ER_OK);
    CHECK(util_is_uuid(child) && strcmp(child, parent) != 0);
    CHECK(util_is_uuid("2F7C8A34-5D4E-4B5A-9D7E-0C1F2A3B4C5D"));
    CHECK(!util_is_uuid("2f7c8a34-5d4e-4b5a-9d7e-0c1f2a3b4c5"));
    CHECK(!util_is_uuid("2f7c8a34-5d4e-4b5a-9d7e-0c1f2a3b4c5dd"));
    CHECK(!util_is_uuid("2f7c8a34x5d4e-4b5a-9d7e-0c1f2a3b4c5d"));
    CHECK(!util_is_uuid("' OR 1=1 --"));
}

/* v7: format, version, variant, the timestamp, strict order and no repeats across many ids in
 * one ms, and from several threads at once. */
#define UUID7_N 20000
static char g_ids[4][UUID7_N][UTIL_UUID_LEN + 1];

static void *uuid7_thread(void *arg)
{
    char(*ids)[UTIL_UUID_LEN + 1] = arg;
    for (int i = 0; i < UUID7_N; i++)
        if (util_uuid7(ids[i])) ids[i][0] = '\0';
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_uuid7(void)
{
    char a[UTIL_UUID_LEN + 1];
    int64_t before = util_now_ms();
    CHECK_EQ_INT(util_uuid7(a), ER_OK);
    int64_t after = util_now_ms();
    CHECK(util_is_uuid(a));
    CHECK(a[14] == '7');
    CHECK(strchr("89ab", a[19]) != NULL);
    char hex[13];
    memcpy(hex, a, 8);
    memcpy(hex + 8, a + 9, 4);
    hex[12] = '\0';
    int64_t ms = (int64_t)strtoll(hex, NULL, 16);
    CHECK(ms >= before && ms <= after);
    /* one thread: each id sorts after the one before (many share a ms) */
    int same_ms = 0;
    uuid7_thread(g_ids[0]);
    for (int i = 1; i < UUID7_N; i++) {
        CHECK(strcmp(g_ids[0][i - 1], g_ids[0][i]) < 0);
        same_ms += memcmp(g_ids[0][i - 1], g_ids[0][i], 13) == 0;
        if (strcmp(g_ids[0][i - 1], g_ids[0][i]) >= 0) break;
    }
    CHECK(same_ms > 0); /* the same-ms path was taken */
    /* threads at once: every id well-formed and unique, each thread's in order */
    pthread_t t[4];
    for (int k = 0; k < 4; k++)
        pthread_create(&t[k], NULL, uuid7_thread, g_ids[k]);
    for (int k = 0; k < 4; k++)
        pthread_join(t[k], NULL);
    for (int k = 0; k < 4; k++) {
        for (int i = 1; i < UUID7_N; i++)
            if (strcmp(g_ids[k][i - 1], g_ids[k][i]) >= 0) {
                CHECK(!"ids of one thread out of order");
                break;
            }
        CHECK(util_is_uuid(g_ids[k][0]) && g_ids[k][0][14] == '7');
    }
    qsort(g_ids, 4 * UUID7_N, UTIL_UUID_LEN + 1, cmp_id);
    int dups = 0;
    char(*all)[UTIL_UUID_LEN + 1] = &g_ids[0][0];
    for (int i = 1; i < 4 * UUID7_N; i++)
        dups += strcmp(all[i - 1], all[i]) == 0;
    CHECK_EQ_INT(dups, 0);
}

static void test_time(void)
{
    int64_t t = 0;
    CHECK_EQ_INT(util_parse_time_ms("1764000000000", &t), ER_OK);
    CHECK_EQ_INT(t, 1764000000000LL);
    CHECK_EQ_INT(util_parse_time_ms("1970-01-01T00:00:00Z", &t), ER_OK);
    CHECK_EQ_INT(t, 0);
    CHECK_EQ_INT(util_parse_time_ms("2026-11-24T10:00:00.250Z", &t), ER_OK);
    CHECK_EQ_INT(t, 1795514400250LL);
    CHECK_EQ_INT(util_parse_time_ms("2026-11-24T12:00:00+02:00", &t), ER_OK);
    CHECK_EQ_INT(t, 1795514400000LL);
    CHECK_EQ_INT(util_parse_time_ms("2000-02-29T00:00:00Z", &t), ER_OK);
    CHECK_EQ_INT(t, 951782400000LL);
    CHECK_EQ_INT(util_parse_time_ms("2026-13-01T00:00:00Z", &t), ER_INVALID);
    CHECK_EQ_INT(util_parse_time_ms("2026-11-24", &t), ER_INVALID);
    CHECK_EQ_INT(util_parse_time_ms("2026-11-24T10:00:00", &t), ER_INVALID);
    CHECK_EQ_INT(util_parse_time_ms("yesterday", &t), ER_INVALID);
    CHECK_EQ_INT(util_parse_time_ms("", &t), ER_INVALID);
}

static void test_numbers(void)
{
    int64_t i = 0;
    double d = 0;
    CHECK_EQ_INT(util_parse_i64("-42", &i), ER_OK);
    CHECK_EQ_INT(i, -42);
    CHECK_EQ_INT(util_parse_i64("42x", &i), ER_INVALID);
    CHECK_EQ_INT(util_parse_i64("99999999999999999999", &i), ER_INVALID);
    CHECK_EQ_INT(util_parse_double("0.5", &d), ER_OK);
    CHECK(d == 0.5);
    CHECK_EQ_INT(util_parse_double("nan", &d), ER_INVALID);
    CHECK_EQ_INT(util_parse_double("1e999", &d), ER_INVALID);
}

static void test_ct_equal(void)
{
    CHECK(util_ct_equal("secret-token", "secret-token"));
    CHECK(!util_ct_equal("secret-token", "secret-tokeN"));
    CHECK(!util_ct_equal("secret-token", "secret-token2"));
    CHECK(!util_ct_equal("secret", ""));
    CHECK(!util_ct_equal("", ""));
}

static void test_buf(void)
{
    util_buf b = {0};
    CHECK_EQ_INT(util_buf_printf(&b, "%d-%s", 7, "x"), ER_OK);
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK_EQ_INT(util_buf_printf(&b, "%s", big), ER_OK);
    CHECK_EQ_INT(b.len, 3 + 1999);
    CHECK(strncmp(b.data, "7-xaaa", 6) == 0);
    util_buf_free(&b);
}

static void test_default_iface(void)
{
    const char *route = "Iface\tDestination\tGateway \tFlags\n"
                        "eth1\t0011A8C0\t00000000\t0001\n"
                        "eth0\t00000000\t0100A8C0\t0003\n";
    char iface[32];
    CHECK_EQ_INT(device_default_iface(route, iface, sizeof iface), ER_OK);
    CHECK_EQ_STR(iface, "eth0");
    CHECK_EQ_INT(device_default_iface("Iface\tDestination\n", iface, sizeof iface), ER_NOTFOUND);
    char name[64];
    CHECK_EQ_INT(device_name_resolve("Dev", false, name, sizeof name), ER_OK);
    CHECK_EQ_STR(name, "Dev");
    CHECK_EQ_INT(device_name_resolve("Dev", true, name, sizeof name), ER_OK);
    CHECK(strncmp(name, "Dev", 3) == 0);
}

static void test_utf8(void)
{
    static const struct {
        const char *s;
        bool ok;
    } v[] = {{"", true},
             {"plain ascii", true},
             {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb1", true}, /* 2, 3 and 4 bytes */
             {"\xef\xbf\xbf\xf4\x8f\xbf\xbf", true},              /* U+FFFF, U+10FFFF */
             {"\xff", false},
             {"\x80", false},             /* continuation first */
             {"\xc3", false},             /* cut short */
             {"\xc3(", false},            /* bad continuation */
             {"\xc0\xaf", false},         /* overlong '/' */
             {"\xe0\x80\xaf", false},     /* overlong, 3 bytes */
             {"\xed\xa0\x80", false},     /* surrogate U+D800 */
             {"\xf4\x90\x80\x80", false}, /* past U+10FFFF */
             {"ok\xe2\x82", false}};      /* cut short at the end */
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        CHECK_EQ_INT(util_utf8_valid(v[i].s, strlen(v[i].s)), v[i].ok);
    CHECK(util_utf8_valid("a\0b", 3)); /* NUL is valid UTF-8; JSON layers refuse it */
    /* scrub: each byte that starts no well-formed sequence becomes '?', the rest stays */
    char cut[] = "ok\xf0\x9f\x98";
    CHECK_EQ_INT((int)util_utf8_scrub(cut), 3);
    CHECK(strcmp(cut, "ok???") == 0);
    char mixed[] = "\xc0\xaf\xc3\xa9\xed\xa0\x80x";
    util_utf8_scrub(mixed);
    CHECK(strcmp(mixed, "??\xc3\xa9???x") == 0);
    char fine[] = "caf\xc3\xa9 \xf0\x9f\x98\x80";
    CHECK_EQ_INT((int)util_utf8_scrub(fine), 0);
}

static void test_read_file(void)
{
    char path[] = "/tmp/test_util_XXXXXX";
    util_buf b = {0};
    er_err err = {{0}};
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, "hello", 5) == 5);
    if (fd >= 0) close(fd);
    CHECK_EQ_INT(util_read_file(path, 5, "test file", &b, &err), ER_OK);
    CHECK_EQ_INT(b.len, 5);
    CHECK_EQ_STR(b.data, "hello");
    CHECK_EQ_INT(util_read_file(path, 4, "test file", &b, &err), ER_TOOBIG);
    CHECK(strstr(err.msg, "test file /tmp/test_util_") && strstr(err.msg, "larger than 4 bytes"));
    unlink(path);
    CHECK_EQ_INT(util_read_file(path, 5, "test file", &b, &err), ER_NOTFOUND);
    CHECK(strstr(err.msg, "No such file") != NULL);
    CHECK_EQ_INT(util_read_file("/tmp", 5, "test file", &b, &err), ER_IO); /* a directory */
    util_buf_free(&b);
}

static void test_deadline(void)
{
    struct timespec now, at;
    clock_gettime(CLOCK_MONOTONIC, &now);
    util_deadline(&at, CLOCK_MONOTONIC, 1999);
    int64_t ms = (int64_t)(at.tv_sec - now.tv_sec) * 1000 + (at.tv_nsec - now.tv_nsec) / 1000000;
    CHECK(ms >= 1998 && ms <= 2100);
    CHECK(at.tv_nsec >= 0 && at.tv_nsec < 1000000000L);
}

int main(void)
{
    test_read_file();
    test_deadline();
    test_utf8();
    test_base64();
    test_uuid();
    test_uuid7();
    test_time();
    test_numbers();
    test_ct_equal();
    test_buf();
    test_default_iface();
    return check_summary();
}
