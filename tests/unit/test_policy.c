/* test_policy.c - the publish policy: empty results, the threshold filter on the true mean
 * confidence with each criteria and percentage thresholds, iotcore_backoff every-N-th, the
 * command setters, and the store_policy_fn adapter. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "forward/policy.h"

/* A classification inference with labels and scores (result_json built from them). */
static inference *cls(int n, const char *const *labels, const double *scores)
{
    inference *inf = inference_create();
    char json[512];
    size_t off = (size_t)snprintf(json, sizeof json, "{\"classification\":{");
    inf->kind = INFERENCE_CLASSIFICATION;
    for (int i = 0; i < n; i++) {
        off += (size_t)snprintf(json + off, sizeof json - off, "%s\"%s\":%.4f", i ? "," : "",
                                labels[i], scores[i]);
        inference_add_label(inf, labels[i], scores[i]);
    }
    snprintf(json + off, sizeof json - off, "}}");
    inference_set_str(&inf->result_json, json);
    return inf;
}

static inference *cls1(double score)
{
    const char *l[] = {"a"};
    return cls(1, l, &score);
}

static inference *raw(inference_kind kind, const char *json, const char *label, double score)
{
    inference *inf = inference_create();
    inf->kind = kind;
    inference_set_str(&inf->result_json, json);
    if (label) inference_add_label(inf, label, score);
    return inf;
}

static policy *make(bool threshold, double t, config_criteria c, int backoff)
{
    policy_settings set = {.skip_empty = true,
                           .threshold_enabled = threshold,
                           .threshold = t,
                           .criteria = c,
                           .backoff = backoff};
    policy *p = NULL;
    CHECK_EQ_INT(policy_create(&set, &p), ER_OK);
    return p;
}

static inference_publish decide_free(policy *p, inference *inf)
{
    inference_publish d = policy_decide(p, inf);
    inference_destroy(inf);
    return d;
}

static void test_mean(void)
{
    double m = 0;
    /* True mean over every class, not the best one. */
    CHECK(policy_mean_confidence("{\"classification\":{\"a\":0.9,\"b\":0.1,\"c\":0.2}}", &m));
    CHECK(fabs(m - 0.4) < 1e-12);
    CHECK(policy_mean_confidence(
        "{\"bounding_boxes\":[{\"label\":\"x\",\"value\":0.8,\"x\":1,\"y\":1,\"width\":2,"
        "\"height\":2},{\"label\":\"x\",\"value\":0.4,\"x\":5,\"y\":5,\"width\":2,\"height\":2}]}",
        &m));
    CHECK(fabs(m - 0.6) < 1e-12);
    CHECK(policy_mean_confidence("{\"visual_anomaly_grid\":[{\"label\":\"anomaly\",\"value\":3.0},"
                                 "{\"label\":\"anomaly\",\"value\":1.0}],\"anomaly\":3.0}",
                                 &m));
    CHECK(fabs(m - 2.0) < 1e-12);
    CHECK(!policy_mean_confidence("{\"anomaly\":0.3}", &m));
    CHECK(!policy_mean_confidence("{\"bounding_boxes\":[]}", &m));
    CHECK(!policy_mean_confidence("not json", &m));
    CHECK(!policy_mean_confidence(NULL, &m));
}

static void test_empty(void)
{
    policy *p = make(false, 0, CONFIG_CRIT_GE, 0);
    CHECK_EQ_INT(decide_free(p, raw(INFERENCE_EMPTY, "{\"bounding_boxes\":[]}", NULL, 0)),
                 INFERENCE_PUBLISH_SKIPPED);
    /* A classification kind with no classes is empty too. */
    CHECK_EQ_INT(decide_free(p, raw(INFERENCE_CLASSIFICATION, "{\"classification\":{}}", NULL, 0)),
                 INFERENCE_PUBLISH_SKIPPED);
    /* An anomaly score alone, and freeform output, are results. */
    inference *an = raw(INFERENCE_ANOMALY, "{\"anomaly\":0.7}", NULL, 0);
    an->has_anomaly = 1;
    an->anomaly = 0.7;
    CHECK_EQ_INT(decide_free(p, an), INFERENCE_PUBLISH_PENDING);
    CHECK_EQ_INT(decide_free(p, raw(INFERENCE_FREEFORM, "{\"freeform\":[[1,2]]}", NULL, 0)),
                 INFERENCE_PUBLISH_PENDING);
    CHECK_EQ_INT(decide_free(p, cls1(0.01)), INFERENCE_PUBLISH_PENDING);
    policy_destroy(p);
}

static void test_criteria(void)
{
    /* mean 0.5 against threshold 0.5, then 0.6 and 0.4 */
    static const struct {
        config_criteria c;
        bool below, equal, above;
    } cases[] = {
        {CONFIG_CRIT_GT, false, false, true}, {CONFIG_CRIT_GE, false, true, true},
        {CONFIG_CRIT_EQ, false, true, false}, {CONFIG_CRIT_LE, true, true, false},
        {CONFIG_CRIT_LT, true, false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        policy *p = make(true, 0.5, cases[i].c, 0);
        inference_publish want[3] = {
            cases[i].below ? INFERENCE_PUBLISH_PENDING : INFERENCE_PUBLISH_FILTERED,
            cases[i].equal ? INFERENCE_PUBLISH_PENDING : INFERENCE_PUBLISH_FILTERED,
            cases[i].above ? INFERENCE_PUBLISH_PENDING : INFERENCE_PUBLISH_FILTERED,
        };
        CHECK_EQ_INT(decide_free(p, cls1(0.4)), want[0]);
        CHECK_EQ_INT(decide_free(p, cls1(0.5)), want[1]);
        CHECK_EQ_INT(decide_free(p, cls1(0.6)), want[2]);
        policy_destroy(p);
    }
    /* The filter uses the mean of all classes: best 0.9 but mean 0.45 fails "ge 0.5". */
    policy *p = make(true, 0.5, CONFIG_CRIT_GE, 0);
    const char *l[] = {"a", "b"};
    const double sc[] = {0.9, 0.0};
    CHECK_EQ_INT(decide_free(p, cls(2, l, sc)), INFERENCE_PUBLISH_FILTERED);
    /* No confidences to compare (anomaly only): the filter does not apply. */
    inference *an = raw(INFERENCE_ANOMALY, "{\"anomaly\":0.1}", NULL, 0);
    an->has_anomaly = 1;
    CHECK_EQ_INT(decide_free(p, an), INFERENCE_PUBLISH_PENDING);
    /* Disabled filter: everything non-empty is pending. */
    policy_set_threshold_enabled(p, false);
    CHECK_EQ_INT(decide_free(p, cls1(0.01)), INFERENCE_PUBLISH_PENDING);
    policy_destroy(p);
}

static void test_percentage(void)
{
    double t = 0;
    CHECK_EQ_INT(policy_normalize_threshold(50.0, &t), ER_OK);
    CHECK(fabs(t - 0.5) < 1e-12);
    CHECK_EQ_INT(policy_normalize_threshold(0.75, &t), ER_OK);
    CHECK(fabs(t - 0.75) < 1e-12);
    CHECK_EQ_INT(policy_normalize_threshold(1.0, &t), ER_OK);
    CHECK(fabs(t - 1.0) < 1e-12);
    CHECK_EQ_INT(policy_normalize_threshold(100.0, &t), ER_OK);
    CHECK(fabs(t - 1.0) < 1e-12);
    CHECK_EQ_INT(policy_normalize_threshold(-0.1, &t), ER_INVALID);
    CHECK_EQ_INT(policy_normalize_threshold(100.5, &t), ER_INVALID);
    CHECK_EQ_INT(policy_normalize_threshold(NAN, &t), ER_INVALID);

    /* A percentage given at create time and by command acts as the fraction. */
    policy *p = make(true, 80.0, CONFIG_CRIT_GE, 0);
    policy_settings got;
    policy_get(p, &got);
    CHECK(fabs(got.threshold - 0.8) < 1e-12);
    CHECK_EQ_INT(decide_free(p, cls1(0.79)), INFERENCE_PUBLISH_FILTERED);
    CHECK_EQ_INT(decide_free(p, cls1(0.81)), INFERENCE_PUBLISH_PENDING);
    CHECK_EQ_INT(policy_set_threshold(p, 30.0), ER_OK);
    policy_get(p, &got);
    CHECK(fabs(got.threshold - 0.3) < 1e-12);
    CHECK_EQ_INT(decide_free(p, cls1(0.31)), INFERENCE_PUBLISH_PENDING);
    CHECK_EQ_INT(decide_free(p, cls1(0.29)), INFERENCE_PUBLISH_FILTERED);
    /* A bad value changes nothing. */
    CHECK_EQ_INT(policy_set_threshold(p, 250.0), ER_INVALID);
    policy_get(p, &got);
    CHECK(fabs(got.threshold - 0.3) < 1e-12);
    policy_destroy(p);

    policy_settings bad = {.threshold = 101, .criteria = CONFIG_CRIT_GE};
    policy *q = NULL;
    CHECK_EQ_INT(policy_create(&bad, &q), ER_INVALID);
    CHECK(q == NULL);
    bad.threshold = 0.5;
    bad.criteria = (config_criteria)9;
    CHECK_EQ_INT(policy_create(&bad, &q), ER_INVALID);
}

static void test_backoff(void)
{
    /* N = 3: the 3rd, 6th, ... message that passed the filters is published. */
    policy *p = make(true, 0.5, CONFIG_CRIT_GE, 3);
    inference_publish seen[7];
    seen[0] = decide_free(p, cls1(0.9));                           /* 1 */
    seen[1] = decide_free(p, cls1(0.1));                           /* filtered: not counted */
    seen[2] = decide_free(p, raw(INFERENCE_EMPTY, "{}", NULL, 0)); /* empty: not counted */
    seen[3] = decide_free(p, cls1(0.9));                           /* 2 */
    seen[4] = decide_free(p, cls1(0.9));                           /* 3: published */
    seen[5] = decide_free(p, cls1(0.9));                           /* 4 */
    seen[6] = decide_free(p, cls1(0.9));                           /* 5 */
    CHECK_EQ_INT(seen[0], INFERENCE_PUBLISH_SKIPPED);
    CHECK_EQ_INT(seen[1], INFERENCE_PUBLISH_FILTERED);
    CHECK_EQ_INT(seen[2], INFERENCE_PUBLISH_SKIPPED);
    CHECK_EQ_INT(seen[3], INFERENCE_PUBLISH_SKIPPED);
    CHECK_EQ_INT(seen[4], INFERENCE_PUBLISH_PENDING);
    CHECK_EQ_INT(seen[5], INFERENCE_PUBLISH_SKIPPED);
    CHECK_EQ_INT(seen[6], INFERENCE_PUBLISH_SKIPPED);
    CHECK_EQ_INT(decide_free(p, cls1(0.9)), INFERENCE_PUBLISH_PENDING); /* 6 */
    /* After a reset the count starts over. */
    policy_reset_counter(p);
    CHECK_EQ_INT(decide_free(p, cls1(0.9)), INFERENCE_PUBLISH_SKIPPED);
    CHECK_EQ_INT(decide_free(p, cls1(0.9)), INFERENCE_PUBLISH_SKIPPED);
    CHECK_EQ_INT(decide_free(p, cls1(0.9)), INFERENCE_PUBLISH_PENDING);
    policy_destroy(p);

    /* N <= 1 publishes all. */
    int all[] = {0, -2, 1};
    for (size_t i = 0; i < 3; i++) {
        policy *q = make(false, 0, CONFIG_CRIT_GE, all[i]);
        for (int k = 0; k < 5; k++)
            CHECK_EQ_INT(decide_free(q, cls1(0.5)), INFERENCE_PUBLISH_PENDING);
        policy_destroy(q);
    }
}

static void test_commands(void)
{
    policy *p = make(false, 0.5, CONFIG_CRIT_GT, 0);
    config_criteria c = CONFIG_CRIT_GT;
    CHECK_EQ_INT(policy_criteria_parse("lt", &c), ER_OK);
    CHECK_EQ_INT(c, CONFIG_CRIT_LT);
    CHECK_EQ_INT(policy_criteria_parse("GT!", &c), ER_INVALID);
    CHECK_EQ_INT(policy_criteria_parse(NULL, &c), ER_INVALID);
    CHECK_EQ_STR(policy_criteria_name(CONFIG_CRIT_LE), "le");
    CHECK_EQ_INT(policy_set_criteria(p, CONFIG_CRIT_LT), ER_OK);
    CHECK_EQ_INT(policy_set_criteria(p, (config_criteria)-1), ER_INVALID);
    policy_set_threshold_enabled(p, true);
    policy_settings got;
    policy_get(p, &got);
    CHECK(got.threshold_enabled);
    CHECK_EQ_INT(got.criteria, CONFIG_CRIT_LT);
    /* lt 0.5 now: 0.4 passes, 0.6 is filtered. */
    store_policy_fn fn = policy_store_fn; /* the adapter has the store's signature */
    inference *lo = cls1(0.4), *hi = cls1(0.6);
    CHECK_EQ_INT(fn(p, lo), INFERENCE_PUBLISH_PENDING);
    CHECK_EQ_INT(fn(p, hi), INFERENCE_PUBLISH_FILTERED);
    inference_destroy(lo);
    inference_destroy(hi);
    policy_destroy(p);
}

int main(void)
{
    test_mean();
    test_empty();
    test_criteria();
    test_percentage();
    test_backoff();
    test_commands();
    return check_summary();
}
