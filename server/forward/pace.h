/* pace.h - the forwarder's timing arithmetic, pure so it is unit-tested with injected clocks
 * and randomness: reconnect backoff (exponential with full jitter) and token buckets for the
 * IoT Core per-connection limits (publishes/s and bytes/s). Owned by the forwarder. */
#ifndef EI_FORWARD_PACE_H
#define EI_FORWARD_PACE_H

#include <stdbool.h>
#include <stdint.h>

/* Reconnect backoff: the n-th consecutive failure waits a uniformly random time in
 * [min, min(max, min * 2^n)] ("full jitter" above the floor, so a fleet that lost its broker
 * together does not reconnect together). */
typedef struct pace_backoff {
    int64_t min_ms, max_ms;
    int attempt; /* consecutive failures so far */
} pace_backoff;

void pace_backoff_init(pace_backoff *b, int64_t min_ms, int64_t max_ms);
/* The delay before the next attempt; rnd is a uniform random 32-bit value. Counts an attempt. */
int64_t pace_backoff_next(pace_backoff *b, uint32_t rnd);
/* After a connection that stayed up long enough: start again from min. */
void pace_backoff_reset(pace_backoff *b);

/* Token bucket: rate tokens per second, burst capacity of a tenth of a second's worth (at
 * least 1; a single larger take waits until that many tokens accrued). rate 0 = unlimited. */
typedef struct pace_bucket {
    double rate; /* tokens per second; 0 = unlimited */
    double cap;
    double tokens;
    int64_t last_ms;
} pace_bucket;

void pace_bucket_init(pace_bucket *b, double rate, int64_t now_ms);
/* Takes n tokens and returns 0 if available at now_ms; otherwise takes nothing and returns how
 * many ms until they will be (>= 1). A take larger than cap waits for a full bucket. */
int64_t pace_bucket_take(pace_bucket *b, double n, int64_t now_ms);

#endif
