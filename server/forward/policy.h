/* policy.h - the publish policy of the Edge Impulse compatibility contract, as a pure module:
 * given an inference, decide whether it goes to IoT Core (pending), or is skipped (empty result,
 * or not the N-th under iotcore_backoff), or filtered (threshold on the mean confidence).
 *
 * No I/O. The decision runs on the store writer thread (policy_store_fn installed with
 * store_set_policy); the setters run on the forwarder's command handler. A mutex guards the
 * settings and the every-N-th counter, so both may be called from any thread. */
#ifndef EI_FORWARD_POLICY_H
#define EI_FORWARD_POLICY_H

#include <stdbool.h>

#include "config/config.h"
#include "core/rc.h"
#include "model/inference.h"
#include "store/store.h"

typedef struct policy_settings {
    bool skip_empty;        /* empty results are not published (always true per the contract) */
    bool threshold_enabled; /* enable_threshold_limit */
    double threshold;       /* 0..1; policy_create/policy_set_threshold take > 1 as a percentage */
    config_criteria criteria;
    int backoff; /* iotcore_backoff: N > 0 publishes every N-th message, N <= 0 all */
} policy_settings;

typedef struct policy policy;

/* Copies the settings (threshold normalized). ER_INVALID if the threshold is outside 0..100 or
 * not a number, or the criteria is unknown. */
er_rc policy_create(const policy_settings *settings, policy **out);
void policy_destroy(policy *p);

/* The decision for one inference, in ingest order: SKIPPED for an empty result; FILTERED when
 * the threshold filter is on and the mean confidence fails the criteria; then, under
 * iotcore_backoff N > 0, PENDING for the N-th, 2N-th, ... message that passed the filters and
 * SKIPPED for the others; else PENDING. */
inference_publish policy_decide(policy *p, const inference *inf);
/* policy_decide with the store_policy_fn signature (arg is the policy). */
inference_publish policy_store_fn(void *arg, const inference *inf);

/* The true mean of the confidences in a canonical result (classification values, else bounding
 * box values, else visual anomaly grid cell values). false if the result has none. */
bool policy_mean_confidence(const char *result_json, double *mean);

/* 0.5 stays 0.5; 50 means 0.50. ER_INVALID for < 0, > 100 or NaN. */
er_rc policy_normalize_threshold(double value, double *out);
/* criteria for the commands: "gt", "ge", "eq", "le", "lt" (lower case, as the components use). */
const char *policy_criteria_name(config_criteria c);
/* ER_INVALID if s names no criteria. */
er_rc policy_criteria_parse(const char *s, config_criteria *out);

/* Command-side accessors (thread-safe). */
void policy_set_threshold_enabled(policy *p, bool enabled);
er_rc policy_set_threshold(policy *p, double value); /* > 1 is a percentage */
er_rc policy_set_criteria(policy *p, config_criteria c);
void policy_get(policy *p, policy_settings *out);
/* Restarts the every-N-th count (e.g. after a restart command). */
void policy_reset_counter(policy *p);

#endif
