/* model_metrics.c - see model_metrics.h. Population standard deviation from the running sums. */
#include "forward/model_metrics.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void model_metrics_add(model_metrics_state *m, double confidence)
{
    m->cur.n++;
    m->cur.sum += confidence;
    m->cur.sum2 += confidence * confidence;
}

void model_metrics_reset(model_metrics_state *m)
{
    memset(m, 0, sizeof *m);
}

const char *model_metrics_trend(bool has_prev, double prev, double mean)
{
    if (!has_prev || fabs(mean - prev) < MODEL_METRICS_TREND_EPSILON) return "FLAT";
    return mean > prev ? "INCREASING" : "DECREASING";
}

er_rc model_metrics_report(model_metrics_state *m, int64_t ts, const char *id, util_buf *out)
{
    er_rc rc = ER_NOMEM;
    char *text = NULL;
    const model_metrics_window *w = &m->cur;
    double mean = 0, sd = 0;
    if (w->n > 0) {
        mean = w->sum / (double)w->n;
        double var = w->sum2 / (double)w->n - mean * mean;
        sd = var > 0 ? sqrt(var) : 0; /* rounding can make a zero variance slightly negative */
    }
    const char *trend = w->n > 0 ? model_metrics_trend(m->has_prev, m->prev_mean, mean) : "FLAT";
    cJSON *o = cJSON_CreateObject();
    if (!o) goto fail;
    cJSON *d = NULL;
    if (!cJSON_AddNumberToObject(o, "mean_confidence", mean) ||
        !cJSON_AddNumberToObject(o, "standard_deviation", sd) ||
        !cJSON_AddStringToObject(o, "confidence_trend", trend) ||
        !(d = cJSON_AddObjectToObject(o, "details")) ||
        !cJSON_AddNumberToObject(d, "n", (double)w->n) ||
        !cJSON_AddNumberToObject(d, "sum_confidences", w->sum) ||
        !cJSON_AddNumberToObject(d, "sum_confidences_squared", w->sum2) ||
        !cJSON_AddNumberToObject(o, "ts", (double)ts) || !cJSON_AddStringToObject(o, "id", id))
        goto fail;
    if (!(text = cJSON_PrintUnformatted(o))) goto fail;
    if ((rc = util_buf_append(out, text, strlen(text)))) goto fail;
    if (w->n > 0) {
        m->has_prev = true;
        m->prev_mean = mean;
    }
    memset(&m->cur, 0, sizeof m->cur);
fail:
    free(text);
    cJSON_Delete(o);
    return rc;
}
