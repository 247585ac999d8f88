/* view.h - the inference view: the JSON of one stored inference as the REST API (list, get,
 * the ingest answer) and the live stream return it (docs/api.md "Inference view"). */
#ifndef EI_MODEL_VIEW_H
#define EI_MODEL_VIEW_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "model/inference.h"

/* A new cJSON object for inf (caller deletes), NULL when out of memory. */
cJSON *view_inference(const inference *inf);
/* Sets seq and ts in a view, for the ingest answer once the store assigned them; allocates
 * nothing. false (view unchanged or half set: drop it) if view is not one of view_inference's. */
bool view_set_stored(cJSON *view, int64_t seq, int64_t ts);

#endif
