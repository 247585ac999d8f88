/* policy.c - the publish policy (see policy.h): empty results, the threshold filter on the true
 * mean confidence, and iotcore_backoff's every-N-th rule. Pure: cJSON parsing and arithmetic. */
#include "forward/policy.h"

#include <cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Confidences are printed with a few decimals by the runners: "eq" compares within this. */
#define EQ_EPSILON 1e-9

struct policy {
    pthread_mutex_t mu; /* guards everything below */
    policy_settings set;
    long long passed; /* messages that passed the filters, for the every-N-th rule */
};

static const char *const crit_names[] = {
    [CONFIG_CRIT_GT] = "gt", [CONFIG_CRIT_GE] = "ge", [CONFIG_CRIT_EQ] = "eq",
    [CONFIG_CRIT_LE] = "le", [CONFIG_CRIT_LT] = "lt",
};

static bool crit_valid(config_criteria c)
{
    return (int)c >= (int)CONFIG_CRIT_GT && (int)c <= (int)CONFIG_CRIT_LT;
}

const char *policy_criteria_name(config_criteria c)
{
    return crit_valid(c) ? crit_names[c] : "?";
}

er_rc policy_criteria_parse(const char *s, config_criteria *out)
{
    for (int c = CONFIG_CRIT_GT; s && c <= CONFIG_CRIT_LT; c++) {
        if (strcmp(s, crit_names[c]) == 0) {
            *out = (config_criteria)c;
            return ER_OK;
        }
    }
    return ER_INVALID;
}

er_rc policy_normalize_threshold(double value, double *out)
{
    if (isnan(value) || value < 0 || value > 100) return ER_INVALID;
    *out = value > 1 ? value / 100.0 : value;
    return ER_OK;
}

er_rc policy_create(const policy_settings *settings, policy **out)
{
    policy *p = NULL;
    er_rc rc = ER_INVALID;
    *out = NULL;
    if (!settings || !crit_valid(settings->criteria)) goto fail;
    p = calloc(1, sizeof *p);
    if (!p) {
        rc = ER_NOMEM;
        goto fail;
    }
    p->set = *settings;
    rc = policy_normalize_threshold(settings->threshold, &p->set.threshold);
    if (rc) goto fail;
    pthread_mutex_init(&p->mu, NULL);
    *out = p;
    p = NULL;
fail:
    free(p);
    return rc;
}

void policy_destroy(policy *p)
{
    if (!p) return;
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Adds the numeric "value" of every object in arr. */
static void sum_values(const cJSON *arr, double *sum, int *n)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "value");
        if (cJSON_IsNumber(v)) {
            *sum += v->valuedouble;
            (*n)++;
        }
    }
}

bool policy_mean_confidence(const char *result_json, double *mean)
{
    cJSON *root = result_json ? cJSON_Parse(result_json) : NULL;
    const cJSON *it, *cls, *boxes, *grid;
    double sum = 0;
    int n = 0;
    if (!cJSON_IsObject(root)) goto fail;
    /* The same precedence as the IoT Core message's one result field (c, box, grid). */
    cls = cJSON_GetObjectItemCaseSensitive(root, "classification");
    boxes = cJSON_GetObjectItemCaseSensitive(root, "bounding_boxes");
    grid = cJSON_GetObjectItemCaseSensitive(root, "visual_anomaly_grid");
    if (cJSON_IsObject(cls)) {
        cJSON_ArrayForEach(it, cls)
        {
            if (cJSON_IsNumber(it)) {
                sum += it->valuedouble;
                n++;
            }
        }
    } else if (cJSON_IsArray(boxes)) {
        sum_values(boxes, &sum, &n);
    } else if (cJSON_IsArray(grid)) {
        sum_values(grid, &sum, &n);
    }
    if (n > 0) *mean = sum / n;
fail:
    cJSON_Delete(root);
    return n > 0;
}

/* An inference with nothing to report: no classes, boxes or cells, no anomaly, no freeform. */
static bool is_empty(const inference *inf)
{
    return inf->kind == INFERENCE_EMPTY ||
           (inf->n_labels == 0 && !inf->has_anomaly && inf->kind != INFERENCE_FREEFORM);
}

static bool criteria_holds(config_criteria c, double mean, double t)
{
    bool eq = fabs(mean - t) <= EQ_EPSILON;
    switch (c) {
    case CONFIG_CRIT_GT:
        return mean > t && !eq;
    case CONFIG_CRIT_GE:
        return mean > t || eq;
    case CONFIG_CRIT_EQ:
        return eq;
    case CONFIG_CRIT_LE:
        return mean < t || eq;
    case CONFIG_CRIT_LT:
        return mean < t && !eq;
    }
    return false;
}

inference_publish policy_decide(policy *p, const inference *inf)
{
    inference_publish d = INFERENCE_PUBLISH_PENDING;
    policy_settings set;
    double mean = 0;
    pthread_mutex_lock(&p->mu);
    set = p->set;
    pthread_mutex_unlock(&p->mu);

    if (set.skip_empty && is_empty(inf)) {
        d = INFERENCE_PUBLISH_SKIPPED;
        goto done;
    }
    /* A result without confidences (anomaly score only, freeform) has no mean to compare: the
     * threshold filter does not apply to it. Parsing happens outside the lock. */
    if (set.threshold_enabled && policy_mean_confidence(inf->result_json, &mean) &&
        !criteria_holds(set.criteria, mean, set.threshold)) {
        d = INFERENCE_PUBLISH_FILTERED;
        goto done;
    }
    if (set.backoff > 1) {
        pthread_mutex_lock(&p->mu);
        long long n = ++p->passed;
        int every = p->set.backoff > 1 ? p->set.backoff : 1;
        pthread_mutex_unlock(&p->mu);
        if (n % every != 0) d = INFERENCE_PUBLISH_SKIPPED;
    }
done:
    return d;
}

inference_publish policy_store_fn(void *arg, const inference *inf)
{
    return policy_decide(arg, inf);
}

void policy_set_threshold_enabled(policy *p, bool enabled)
{
    pthread_mutex_lock(&p->mu);
    p->set.threshold_enabled = enabled;
    pthread_mutex_unlock(&p->mu);
}

er_rc policy_set_threshold(policy *p, double value)
{
    double t = 0;
    er_rc rc = policy_normalize_threshold(value, &t);
    if (rc) goto fail;
    pthread_mutex_lock(&p->mu);
    p->set.threshold = t;
    pthread_mutex_unlock(&p->mu);
fail:
    return rc;
}

er_rc policy_set_criteria(policy *p, config_criteria c)
{
    if (!crit_valid(c)) return ER_INVALID;
    pthread_mutex_lock(&p->mu);
    p->set.criteria = c;
    pthread_mutex_unlock(&p->mu);
    return ER_OK;
}

void policy_get(policy *p, policy_settings *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->set;
    pthread_mutex_unlock(&p->mu);
}

void policy_reset_counter(policy *p)
{
    pthread_mutex_lock(&p->mu);
    p->passed = 0;
    pthread_mutex_unlock(&p->mu);
}
