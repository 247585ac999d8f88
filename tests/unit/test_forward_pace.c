/* test_forward_pace.c - the reconnect backoff schedule with injected randomness, and the token
 * buckets that keep to IoT Core's per-connection rates. */
#include "check.h"
#include "forward/pace.h"

int main(void)
{
    pace_backoff b;
    pace_backoff_init(&b, 1000, 60000);
    /* rnd 0 always gives the floor, rnd max the ceiling, which doubles up to max */
    int64_t ceil_expected[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
    for (size_t i = 0; i < sizeof ceil_expected / sizeof ceil_expected[0]; i++) {
        pace_backoff probe = b;
        CHECK_EQ_INT(pace_backoff_next(&probe, 0), 1000);
        /* rnd = span - 1 lands on the ceiling of this attempt */
        CHECK_EQ_INT(pace_backoff_next(&b, (uint32_t)(ceil_expected[i] - 1000)), ceil_expected[i]);
    }
    /* many attempts never overflow and stay within bounds */
    for (int i = 0; i < 200; i++) {
        int64_t d = pace_backoff_next(&b, (uint32_t)i * 2654435761u);
        CHECK(d >= 1000 && d <= 60000);
    }
    pace_backoff_reset(&b);
    CHECK_EQ_INT(pace_backoff_next(&b, 123456789u), 1000); /* first ceiling is the floor */
    CHECK_EQ_INT(pace_backoff_next(&b, 500), 1500);        /* [1000, 2000] */

    /* token bucket: 100/s, burst of a tenth of a second */
    pace_bucket t;
    pace_bucket_init(&t, 100, 0);
    int taken = 0;
    while (pace_bucket_take(&t, 1, 0) == 0)
        taken++;
    CHECK_EQ_INT(taken, 10);
    CHECK_EQ_INT(pace_bucket_take(&t, 1, 0), 10); /* 1 token per 10 ms */
    CHECK_EQ_INT(pace_bucket_take(&t, 1, 9), 1);
    CHECK_EQ_INT(pace_bucket_take(&t, 1, 10), 0);
    /* a long idle time refills to the burst only */
    taken = 0;
    while (pace_bucket_take(&t, 1, 100000) == 0)
        taken++;
    CHECK_EQ_INT(taken, 10);
    /* over one second of steady demand no more than rate + burst go out */
    pace_bucket s1;
    pace_bucket_init(&s1, 100, 0);
    int sent = 0;
    for (int64_t ms = 0; ms < 1000; ms++)
        while (pace_bucket_take(&s1, 1, ms) == 0)
            sent++;
    CHECK(sent >= 100 && sent <= 110);
    /* bytes: 512 KiB/s; a 128 KiB message (over the 52 KiB burst) waits until 128 KiB accrued,
     * so four of them take a second */
    pace_bucket by;
    pace_bucket_init(&by, 524288, 0);
    CHECK_EQ_INT(pace_bucket_take(&by, 131072, 0), 150); /* 52428.8 there, 78643.2 to go */
    CHECK_EQ_INT(pace_bucket_take(&by, 131072, 150), 0);
    CHECK_EQ_INT(pace_bucket_take(&by, 131072, 150), 250);
    CHECK_EQ_INT(pace_bucket_take(&by, 131072, 400), 0);
    /* unpaced */
    pace_bucket u;
    pace_bucket_init(&u, 0, 0);
    for (int i = 0; i < 100000; i++)
        CHECK_EQ_INT(pace_bucket_take(&u, 1e6, 0), 0);
    /* a take over the burst passes once the bucket is full, it does not wait forever */
    pace_bucket small;
    pace_bucket_init(&small, 10, 0);
    CHECK_EQ_INT(pace_bucket_take(&small, 25, 0), 2400); /* burst 1, 24 to go at 10/s */
    CHECK_EQ_INT(pace_bucket_take(&small, 25, 2400), 0);
    return check_summary();
}
