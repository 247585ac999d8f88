/* test_ratelimit.c - the rate-limit table (core/ratelimit.c) with the time passed in: a
 * bucket's burst, refill and Retry-After; the failure back-off's free failures, doubling, cap,
 * reset on success and after quiet time; the table bounded (least recently used evicted, the
 * busy keys kept); address keys (IPv4, mapped, IPv6 by /64, loopback) and token keys. */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "check.h"
#include "core/ratelimit.h"

static ratelimit *make(size_t slots, double per_s, double burst)
{
    ratelimit_opts o = {.slots = slots,
                        .per_s = per_s,
                        .burst = burst,
                        .fail_free = 3,
                        .fail_base_ms = 1000,
                        .fail_max_ms = 8000,
                        .fail_forget_ms = 60000};
    ratelimit *t = NULL;
    CHECK_EQ_INT(ratelimit_create(&o, &t), ER_OK);
    return t;
}

static ratelimit_key v4(const char *text)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, text, &a.sin_addr);
    ratelimit_key k;
    bool loop;
    CHECK(ratelimit_key_addr((struct sockaddr *)&a, &k, &loop));
    return k;
}

static void bucket(void)
{
    ratelimit *t = make(8, 2, 3); /* 2 per second, burst 3 */
    ratelimit_key k = v4("10.0.0.1"), other = v4("10.0.0.2");
    int64_t retry = -1, now = 1000;
    for (int i = 0; i < 3; i++)
        CHECK(ratelimit_take(t, &k, now, &retry));
    CHECK(!ratelimit_take(t, &k, now, &retry));
    CHECK(retry > 0 && retry <= 501); /* one token back after 500 ms */
    CHECK_EQ_INT(ratelimit_retry_s(retry), 1);
    CHECK(ratelimit_take(t, &other, now, &retry)); /* a key of its own */
    CHECK(!ratelimit_take(t, &k, now + 499, &retry));
    CHECK(ratelimit_take(t, &k, now + 500, &retry));
    CHECK(!ratelimit_take(t, &k, now + 500, &retry));
    CHECK_EQ_INT(retry, 500); /* the bucket is empty at the same ms: exactly one token's time */
    /* a long pause refills to the burst, not beyond */
    now += 100000;
    for (int i = 0; i < 3; i++)
        CHECK(ratelimit_take(t, &k, now, &retry));
    CHECK(!ratelimit_take(t, &k, now, &retry));
    ratelimit_destroy(t);

    /* 1 per second, asked again in the same ms: Retry-After 1 (the wait is 1000 ms, not more) */
    t = make(8, 1, 1);
    CHECK(ratelimit_take(t, &k, now, &retry));
    CHECK(!ratelimit_take(t, &k, now, &retry));
    CHECK_EQ_INT(retry, 1000);
    CHECK_EQ_INT(ratelimit_retry_s(retry), 1);
    CHECK(ratelimit_take(t, &k, now + retry, &retry));
    ratelimit_destroy(t);

    t = make(8, 0, 1); /* per_s 0: never limits */
    for (int i = 0; i < 100; i++)
        CHECK(ratelimit_take(t, &k, 0, &retry));
    ratelimit_destroy(t);
}

static void backoff(void)
{
    ratelimit *t = make(8, 1, 1);
    ratelimit_key k = v4("10.0.0.1"), other = v4("10.0.0.2");
    int64_t retry = 0, now = 5000;
    CHECK(!ratelimit_blocked(t, &k, now, &retry));
    CHECK_EQ_INT(ratelimit_failed(t, &k, now), 0);
    CHECK_EQ_INT(ratelimit_failed(t, &k, now), 0);
    CHECK(!ratelimit_blocked(t, &k, now, &retry));
    CHECK_EQ_INT(ratelimit_failed(t, &k, now), 1000); /* the third: blocked 1 s */
    CHECK(ratelimit_blocked(t, &k, now + 1, &retry));
    CHECK_EQ_INT(retry, 999);
    CHECK(!ratelimit_blocked(t, &other, now, &retry));
    CHECK(!ratelimit_blocked(t, &k, now + 1000, &retry));
    /* each further failure doubles it, up to the cap */
    CHECK_EQ_INT(ratelimit_failed(t, &k, now + 1000), 2000);
    CHECK_EQ_INT(ratelimit_failed(t, &k, now + 3000), 4000);
    CHECK_EQ_INT(ratelimit_failed(t, &k, now + 7000), 8000);
    CHECK_EQ_INT(ratelimit_failed(t, &k, now + 15000), 8000);
    for (int i = 0; i < 2000; i++) /* no overflow however many */
        ratelimit_failed(t, &k, now + 15000);
    CHECK_EQ_INT(ratelimit_failed(t, &k, now + 15000), 8000);
    /* a success forgets everything */
    ratelimit_succeeded(t, &k);
    CHECK(!ratelimit_blocked(t, &k, now + 15000, &retry));
    CHECK_EQ_INT(ratelimit_failed(t, &k, now + 15000), 0);
    /* so does a quiet time (60 s without a failure) */
    ratelimit_failed(t, &k, now + 15000);
    CHECK_EQ_INT(ratelimit_failed(t, &k, now + 15000), 1000);
    CHECK_EQ_INT(ratelimit_failed(t, &k, now + 15000 + 59999), 2000);
    CHECK_EQ_INT(ratelimit_failed(t, &k, now + 15000 + 59999 + 60000), 0);
    ratelimit_destroy(t);
}

static void bounded(void)
{
    ratelimit *t = make(4, 1, 1);
    ratelimit_key busy = v4("10.0.0.1");
    int64_t retry, now = 0;
    ratelimit_failed(t, &busy, now);
    ratelimit_failed(t, &busy, now);
    ratelimit_failed(t, &busy, now);
    for (int i = 0; i < 1000; i++) {
        char a[32];
        snprintf(a, sizeof a, "192.168.%d.%d", i / 250, i % 250 + 1);
        ratelimit_key k = v4(a);
        CHECK(ratelimit_take(t, &k, now, &retry)); /* a new key has its full burst */
        /* the busy key is used between the newcomers: it stays */
        if (i % 2 == 0) CHECK(ratelimit_blocked(t, &busy, now, &retry));
    }
    CHECK(ratelimit_size(t) <= 4);
    CHECK(ratelimit_evicted(t) >= 996);
    CHECK(ratelimit_blocked(t, &busy, now, &retry));
    ratelimit_destroy(t);

    /* a single slot: each new key replaces the last, and it is found again */
    t = make(1, 1, 1);
    ratelimit_key a = v4("10.0.0.1"), b = v4("10.0.0.2");
    CHECK(ratelimit_take(t, &a, 0, &retry));
    CHECK(!ratelimit_take(t, &a, 0, &retry));
    CHECK(ratelimit_take(t, &b, 0, &retry));
    CHECK(!ratelimit_take(t, &b, 0, &retry));
    CHECK(ratelimit_take(t, &a, 0, &retry)); /* a was evicted: a fresh bucket */
    CHECK_EQ_INT(ratelimit_size(t), 1);
    ratelimit_destroy(t);
}

static void keys(void)
{
    ratelimit_key k1, k2;
    bool loop = false;
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:10.0.0.1", &a6.sin6_addr);
    CHECK(ratelimit_key_addr((struct sockaddr *)&a6, &k1, &loop));
    k2 = v4("10.0.0.1");
    CHECK(memcmp(&k1, &k2, sizeof k1) == 0); /* mapped IPv4 is the IPv4 client */
    CHECK(!loop);
    k1 = v4("127.0.0.2");
    struct sockaddr_in a4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.3.4.5", &a4.sin_addr);
    CHECK(ratelimit_key_addr((struct sockaddr *)&a4, &k1, &loop) && loop);
    inet_pton(AF_INET6, "::1", &a6.sin6_addr);
    CHECK(ratelimit_key_addr((struct sockaddr *)&a6, &k1, &loop) && loop);
    /* one /64 is one client */
    inet_pton(AF_INET6, "2001:db8:1:2:aaaa::1", &a6.sin6_addr);
    CHECK(ratelimit_key_addr((struct sockaddr *)&a6, &k1, &loop) && !loop);
    inet_pton(AF_INET6, "2001:db8:1:2:bbbb::7", &a6.sin6_addr);
    CHECK(ratelimit_key_addr((struct sockaddr *)&a6, &k2, &loop));
    CHECK(memcmp(&k1, &k2, sizeof k1) == 0);
    inet_pton(AF_INET6, "2001:db8:1:3::1", &a6.sin6_addr);
    CHECK(ratelimit_key_addr((struct sockaddr *)&a6, &k2, &loop));
    CHECK(memcmp(&k1, &k2, sizeof k1) != 0);
    struct sockaddr other = {.sa_family = AF_UNIX};
    CHECK(!ratelimit_key_addr(&other, &k1, &loop));
    CHECK(!ratelimit_key_addr(NULL, &k1, &loop));

    /* tokens: the same token the same key, another token another key, never an address */
    ratelimit *t = make(4, 1, 1);
    ratelimit_key_token(t, "token-one-0123456789", 20, &k1);
    ratelimit_key_token(t, "token-one-0123456789", 20, &k2);
    CHECK(memcmp(&k1, &k2, sizeof k1) == 0);
    ratelimit_key_token(t, "token-two-0123456789", 20, &k2);
    CHECK(memcmp(&k1, &k2, sizeof k1) != 0);
    CHECK(memmem(&k1, sizeof k1, "token", 5) == NULL); /* the table holds no secret */
    ratelimit_destroy(t);
    ratelimit_destroy(NULL);
    CHECK_EQ_INT(ratelimit_retry_s(1), 1);
    CHECK_EQ_INT(ratelimit_retry_s(1000), 1);
    CHECK_EQ_INT(ratelimit_retry_s(1001), 2);
    CHECK_EQ_INT(ratelimit_retry_s(0), 1);
}

int main(void)
{
    bucket();
    backoff();
    bounded();
    keys();
    return check_summary();
}
