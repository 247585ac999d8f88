/* test_forward_model_metrics.c - the model metrics message: sums, mean, population standard
 * deviation, trend against the previous window, field order, reset. */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "check.h"
#include "forward/model_metrics.h"

static cJSON *report(model_metrics_state *m)
{
    util_buf b = {0};
    CHECK_EQ_INT(model_metrics_report(m, 1736016142920, "e4faa78b-2a09-40d1-adfd-8e5fc32feb11", &b),
                 ER_OK);
    cJSON *o = cJSON_Parse(b.data);
    util_buf_free(&b);
    CHECK(o != NULL);
    return o;
}

static double num(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k)->valuedouble;
}

int main(void)
{
    model_metrics_state m;
    model_metrics_reset(&m);
    const double v[] = {0.6, 0.8, 0.7, 0.5, 0.9};
    for (size_t i = 0; i < 5; i++)
        model_metrics_add(&m, v[i]);
    cJSON *o = report(&m);
    CHECK(fabs(num(o, "mean_confidence") - 0.7) < 1e-12);
    CHECK(fabs(num(o, "standard_deviation") - sqrt(0.02)) < 1e-12);
    CHECK_EQ_STR(cJSON_GetObjectItemCaseSensitive(o, "confidence_trend")->valuestring, "FLAT");
    cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "details");
    CHECK_EQ_INT(num(d, "n"), 5);
    CHECK(fabs(num(d, "sum_confidences") - 3.5) < 1e-12);
    CHECK(fabs(num(d, "sum_confidences_squared") - 2.55) < 1e-12);
    CHECK_EQ_INT((long long)num(o, "ts"), 1736016142920LL);
    /* field order of the contract */
    const char *order[] = {
        "mean_confidence", "standard_deviation", "confidence_trend", "details", "ts", "id"};
    const cJSON *it = o->child;
    for (size_t i = 0; i < 6; i++, it = it ? it->next : NULL)
        CHECK(it && strcmp(it->string, order[i]) == 0);
    cJSON_Delete(o);

    /* next window higher by more than epsilon: INCREASING; then lower: DECREASING */
    model_metrics_add(&m, 0.9);
    o = report(&m);
    CHECK_EQ_STR(cJSON_GetObjectItemCaseSensitive(o, "confidence_trend")->valuestring,
                 "INCREASING");
    CHECK_EQ_INT(num(cJSON_GetObjectItemCaseSensitive(o, "details"), "n"), 1);
    cJSON_Delete(o);
    model_metrics_add(&m, 0.5);
    o = report(&m);
    CHECK_EQ_STR(cJSON_GetObjectItemCaseSensitive(o, "confidence_trend")->valuestring,
                 "DECREASING");
    cJSON_Delete(o);
    /* within epsilon of the previous mean: FLAT */
    model_metrics_add(&m, 0.5 + MODEL_METRICS_TREND_EPSILON / 2);
    o = report(&m);
    CHECK_EQ_STR(cJSON_GetObjectItemCaseSensitive(o, "confidence_trend")->valuestring, "FLAT");
    cJSON_Delete(o);
    /* an empty window reports zeros and keeps the reference */
    o = report(&m);
    CHECK_EQ_INT(num(cJSON_GetObjectItemCaseSensitive(o, "details"), "n"), 0);
    CHECK(num(o, "mean_confidence") == 0);
    cJSON_Delete(o);
    CHECK(m.has_prev);
    /* identical values: zero deviation, never NaN from rounding */
    for (int i = 0; i < 1000; i++)
        model_metrics_add(&m, 0.1);
    o = report(&m);
    double sd = num(o, "standard_deviation");
    CHECK(sd >= 0 && sd < 1e-6); /* rounding noise at most, never NaN */
    cJSON_Delete(o);
    model_metrics_reset(&m);
    CHECK(!m.has_prev && m.cur.n == 0);
    CHECK_EQ_STR(model_metrics_trend(false, 0, 0.9), "FLAT");
    return check_summary();
}
