/* topics.h - the MQTT topic names of the Edge Impulse contract (leading slash kept):
 * /edgeimpulse/device/<name>/{inference/output, model/metrics, command/input, command/output}
 * and ei-relay's /edgeimpulse/device/<name>/inference/batch. Pure; owned by the forwarder. */
#ifndef EI_FORWARD_TOPICS_H
#define EI_FORWARD_TOPICS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/rc.h"

#define TOPICS_MAX_BYTES 256 /* IoT Core: topic <= 256 bytes */
#define TOPICS_MAX_SLASHES 7 /* IoT Core: <= 7 forward slashes */

typedef enum topics_kind {
    TOPICS_INFERENCE = 0, /* inference/output */
    TOPICS_MODEL_METRICS, /* model/metrics */
    TOPICS_CMD_IN,        /* command/input */
    TOPICS_CMD_OUT,       /* command/output */
    TOPICS_BATCH,         /* inference/batch */
    TOPICS_COUNT
} topics_kind;

/* All topics of one device, each NUL-terminated. */
typedef struct topics {
    char t[TOPICS_COUNT][TOPICS_MAX_BYTES + 1];
} topics;

/* True if topic is a valid IoT Core publish topic: 1..256 bytes, <= 7 slashes, no wildcard
 * (+ #) and no NUL. */
bool topics_valid(const char *topic);

/* Builds every topic for device; ER_INVALID (err says why) if the name is empty, contains '/',
 * '+' or '#', or a topic would break the IoT Core limits. */
er_rc topics_build(const char *device, topics *out, er_err *err);

#endif
