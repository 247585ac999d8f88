/* model_metrics.h - the Edge Impulse model metrics message for IoT Core: running sums of the
 * confidences of the inferences committed in one window, and the JSON published on
 * .../model/metrics every metrics_sleeptime_ms:
 *   {"mean_confidence","standard_deviation","confidence_trend":"INCREASING|FLAT|DECREASING",
 *    "details":{"n","sum_confidences","sum_confidences_squared"},"ts","id"}
 * Not the Prometheus /metrics endpoint (core/prom.h) nor the sources' counters.
 * Pure; the caller serializes access. Owned by the forwarder. */
#ifndef EI_FORWARD_MODEL_METRICS_H
#define EI_FORWARD_MODEL_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/rc.h"
#include "core/util.h"

/* Means closer than this are a FLAT trend. */
#define MODEL_METRICS_TREND_EPSILON 0.01

typedef struct model_metrics_window {
    int64_t n;
    double sum, sum2;
} model_metrics_window;

typedef struct model_metrics_state {
    model_metrics_window cur;
    bool has_prev; /* a previous non-empty window's mean exists */
    double prev_mean;
} model_metrics_state;

void model_metrics_add(model_metrics_state *m, double confidence);
/* reset_metrics: forgets the current window and the trend reference. */
void model_metrics_reset(model_metrics_state *m);

/* "INCREASING", "FLAT" or "DECREASING" for mean compared with prev. */
const char *model_metrics_trend(bool has_prev, double prev, double mean);

/* Appends the message for the current window to out and starts a new window (an empty window
 * reports n 0, mean 0, FLAT, and keeps the previous trend reference). */
er_rc model_metrics_report(model_metrics_state *m, int64_t ts, const char *id, util_buf *out);

#endif
