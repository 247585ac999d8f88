/* pace.c - see pace.h. */
#include "forward/pace.h"

#include <math.h>

void pace_backoff_init(pace_backoff *b, int64_t min_ms, int64_t max_ms)
{
    b->min_ms = min_ms > 0 ? min_ms : 1;
    b->max_ms = max_ms > b->min_ms ? max_ms : b->min_ms;
    b->attempt = 0;
}

int64_t pace_backoff_next(pace_backoff *b, uint32_t rnd)
{
    int64_t ceil = b->min_ms;
    /* doubling stops at max, so the shift never overflows */
    for (int i = 0; i < b->attempt && ceil < b->max_ms; i++)
        ceil *= 2;
    if (ceil > b->max_ms) ceil = b->max_ms;
    if (b->attempt < 64) b->attempt++;
    uint64_t span = (uint64_t)(ceil - b->min_ms) + 1;
    return b->min_ms + (int64_t)((uint64_t)rnd % span);
}

void pace_backoff_reset(pace_backoff *b)
{
    b->attempt = 0;
}

void pace_bucket_init(pace_bucket *b, double rate, int64_t now_ms)
{
    b->rate = rate > 0 ? rate : 0;
    /* a tenth of a second of burst: in any one-second window at most 1.1 x rate goes out */
    b->cap = b->rate / 10 >= 1 ? b->rate / 10 : 1;
    b->tokens = b->cap;
    b->last_ms = now_ms;
}

int64_t pace_bucket_take(pace_bucket *b, double n, int64_t now_ms)
{
    if (b->rate <= 0) return 0;
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
        b->last_ms = now_ms;
    }
    double cap = n > b->cap ? n : b->cap; /* one oversized take still passes, at full bucket */
    if (b->tokens > cap) b->tokens = cap;
    if (b->tokens >= n) {
        b->tokens -= n;
        return 0;
    }
    int64_t wait = (int64_t)ceil((n - b->tokens) * 1000.0 / b->rate);
    return wait > 0 ? wait : 1;
}
