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

/* The same view as text without a cJSON tree (the ingest answer: a tree cost ~45 allocations
 * per request), in two steps because seq and ts come from the commit, after the store took
 * the inference: view_render_tail renders every member after "ts" (",\"device\":...}") while
 * the inference is still the caller's; view_render puts id, seq and ts before it. Both give
 * malloc'd text, NULL when out of memory; the text is json_print(view_inference(inf)) with
 * seq and ts set, byte for byte. */
char *view_render_tail(const inference *inf);
char *view_render(const char *guid, int64_t seq, int64_t ts, const char *tail);

#endif
