/* message.h - the Edge Impulse IoT Core inference message, field for field as the Greengrass
 * components publish it: time_ms, info (if known), inference_count, total_inferences, id, ts,
 * image (only when asked), exactly one of c | box | grid | freeform, s3_bucket, s3_prefix; then
 * ei-relay's own fields seq, device (and anomaly when the model has one). Used by guid-file
 * export now and by the forwarder. */
#ifndef EI_MODEL_MESSAGE_H
#define EI_MODEL_MESSAGE_H

#include <stdbool.h>

#include "core/rc.h"
#include "core/util.h"
#include "model/inference.h"

typedef struct message_opts {
    bool include_image;    /* add "image": base64 of inf->image.data (must be a JPEG) */
    const char *s3_bucket; /* NULL -> "unset" */
    bool image_omitted;    /* append "image_omitted": true (the forwarder left out an image that
                              could not be shrunk to fit the 128 KB IoT Core limit) */
    bool full_fidelity;    /* also append "timing" and visual_anomaly_max/mean, so an import
                            * gives back what was stored (guid-file export) */
} message_opts;

/* Appends the message JSON to out. */
er_rc message_inference_json(const inference *inf, const message_opts *o, util_buf *out);
/* The same bytes made the slow way: the stored JSON parsed with cJSON and the message printed
 * by cJSON_PrintUnformatted. message_inference_json falls back to it when the stored text is not
 * what cJSON prints; tests compare the two. */
er_rc message_inference_json_cjson(const inference *inf, const message_opts *o, util_buf *out);

#endif
