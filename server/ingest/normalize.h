/* normalize.h - turns one JSON document from any source into a canonical inference.
 *
 * Accepted shapes:
 *  - the Edge Impulse result shape, as the EIM model and `edge-impulse-linux-runner
 *    --run-http-server` return it: {"result":{"classification":{..}} | "bounding_boxes":[..] |
 *    "visual_anomaly_grid":[..] | "anomaly":n | "freeform":[..]}, "timing":{..}, "info":..},
 *    optionally with "id", "ts", "device", "image" (base64), "model":{"width","height"};
 *  - the Edge Impulse IoT Core message shape: time_ms, info, inference_count, total_inferences,
 *    id, ts, image (base64 JPEG), one of c | box | grid | freeform, s3_bucket, s3_prefix.
 *
 * The runner's message {"type":"classification","result":{..},"timeMs":n,"additionalInfo":..}
 * is accepted too. A bare timeMs / time_ms becomes timing {"classification": n}; additionalInfo
 * is the info. Both shapes give the same canonical result_json, keys in the fixed order
 * classification, bounding_boxes, visual_anomaly_grid, visual_anomaly_max, visual_anomaly_mean,
 * anomaly, freeform (an empty bounding_boxes next to a grid is dropped; box objects keep only
 * label, value, x, y, width, height). Labels are 1..128 bytes, at most 10000 labels + boxes +
 * cells per document, and the document within normalize_limits. A ts that is not a positive
 * integer means "receive time" (now_ms).
 *
 * Pure: no I/O. A base64 image is decoded into inf->image.data but not validated here (the
 * media module probes it). Errors: ER_INVALID for malformed JSON or base64, ER_SHAPE for valid
 * JSON of the wrong shape or type (err names the field), ER_TOOBIG for an image over the limit. */
#ifndef EI_INGEST_NORMALIZE_H
#define EI_INGEST_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/rc.h"
#include "model/inference.h"

/* The bounds on one document, each checked before the work it bounds: depth and values by a
 * pass over the bytes before cJSON builds a tree (so a tree never holds more than max_nodes
 * values), the result and info sizes on their canonical text before they are kept. A field left
 * 0 takes the setting's default (CONFIG_DEF_*), so no caller is unbounded. Over a bound: depth is
 * ER_SHAPE (422), the others ER_TOOBIG (413); the message names the setting and its value. */
typedef struct normalize_limits {
    int max_depth;           /* nesting of arrays and objects (max_json_depth) */
    int64_t max_nodes;       /* JSON values, counted as 1 + commas + brackets (max_json_nodes) */
    size_t max_result_bytes; /* the canonical result text (max_result_bytes) */
    size_t max_info_bytes;   /* the info text (max_info_bytes) */
} normalize_limits;

/* The limits a configuration sets. */
static inline normalize_limits normalize_limits_of(const config *cfg)
{
    return (normalize_limits){.max_depth = cfg->max_json_depth,
                              .max_nodes = cfg->max_json_nodes,
                              .max_result_bytes = (size_t)cfg->max_result_bytes,
                              .max_info_bytes = (size_t)cfg->max_info_bytes};
}

typedef struct normalize_opts {
    const char *device;     /* device name when the document names none */
    const char *source;     /* source name recorded on the inference */
    size_t max_image_bytes; /* decoded image size limit; 0 = no limit */
    int64_t now_ms;         /* ts when the document has none */
    normalize_limits lim;   /* zero fields: the defaults */
} normalize_opts;

er_rc normalize_json(const char *json, size_t len, const normalize_opts *o, inference **out,
                     er_err *err);

#endif
