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
 * cells per document. A ts that is not a positive integer means "receive time" (now_ms).
 *
 * Pure: no I/O. A base64 image is decoded into inf->image.data but not validated here (the
 * media module probes it). Errors: ER_INVALID for malformed JSON or base64, ER_SHAPE for valid
 * JSON of the wrong shape or type (err names the field), ER_TOOBIG for an image over the limit. */
#ifndef EI_INGEST_NORMALIZE_H
#define EI_INGEST_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"
#include "model/inference.h"

typedef struct normalize_opts {
    const char *device;     /* device name when the document names none */
    const char *source;     /* source name recorded on the inference */
    size_t max_image_bytes; /* decoded image size limit; 0 = no limit */
    int64_t now_ms;         /* ts when the document has none */
} normalize_opts;

er_rc normalize_json(const char *json, size_t len, const normalize_opts *o, inference **out,
                     er_err *err);

#endif
