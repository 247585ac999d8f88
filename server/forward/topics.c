/* topics.c - see topics.h. */
#include "forward/topics.h"

#include <stdio.h>
#include <string.h>

bool topics_valid(const char *topic)
{
    size_t len = strlen(topic);
    if (len == 0 || len > TOPICS_MAX_BYTES) return false;
    int slashes = 0;
    for (const char *p = topic; *p; p++) {
        if (*p == '+' || *p == '#') return false;
        if (*p == '/') slashes++;
    }
    return slashes <= TOPICS_MAX_SLASHES;
}

er_rc topics_build(const char *device, topics *out, er_err *err)
{
    static const char *const suffix[TOPICS_COUNT] = {
        [TOPICS_INFERENCE] = "inference/output", [TOPICS_MODEL_METRICS] = "model/metrics",
        [TOPICS_CMD_IN] = "command/input",       [TOPICS_CMD_OUT] = "command/output",
        [TOPICS_BATCH] = "inference/batch",
    };
    er_rc rc = ER_INVALID;
    if (!device || !*device) {
        er_fail(err, rc, "the device name is empty");
        goto fail;
    }
    if (strpbrk(device, "/+#")) {
        er_fail(err, rc, "the device name '%s' contains '/', '+' or '#'", device);
        goto fail;
    }
    for (int k = 0; k < TOPICS_COUNT; k++) {
        int n =
            snprintf(out->t[k], sizeof out->t[k], "/edgeimpulse/device/%s/%s", device, suffix[k]);
        if (n < 0 || (size_t)n >= sizeof out->t[k] || !topics_valid(out->t[k])) {
            er_fail(err, rc, "the device name (%zu bytes) makes topics longer than %d bytes",
                    strlen(device), TOPICS_MAX_BYTES);
            goto fail;
        }
    }
    return ER_OK;
fail:
    memset(out, 0, sizeof *out);
    return rc;
}
