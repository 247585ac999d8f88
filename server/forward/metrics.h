/* metrics.h - the Edge Impulse model metrics message: running sums of the confidences of the
 * inferences committed in one window, and the JSON published on .../model/metrics every
 * metrics_sleeptime_ms:
 *   {"mean_confidence","standard_deviation","confidence_trend":"INCREASING|FLAT|DECREASING",
 *    "details":{"n","sum_confidences","sum_confidences_squared"},"ts","id"}
 * Pure; the caller serializes access. Owned by the forwarder. */
#ifndef EI_FORWARD_METRICS_H
#define EI_FORWARD_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/rc.h"
#include "core/util.h"

/* Means closer than this are a FLAT trend. */
#define METRICS_TREND_EPSILON 0.01

typedef struct metrics_window {
    int64_t n;
    double sum, sum2;
} metrics_window;

typedef struct metrics_state {
    metrics_window cur;
    bool has_prev; /* a previous non-empty window's mean exists */
    double prev_mean;
} metrics_state;

void metrics_add(metrics_state *m, double confidence);
/* reset_metrics: forgets the current window and the trend reference. */
void metrics_reset(metrics_state *m);

/* "INCREASING", "FLAT" or "DECREASING" for mean compared with prev. */
const char *metrics_trend(bool has_prev, double prev, double mean);

/* Appends the message for the current window to out and starts a new window (an empty window
 * reports n 0, mean 0, FLAT, and keeps the previous trend reference). */
er_rc metrics_report(metrics_state *m, int64_t ts, const char *id, util_buf *out);

#endif
