/* view.h - the inference view: the JSON of one stored inference as list, get and the ingest
 * answer return it (docs/api.md "Inference view"). */
#ifndef EI_HTTP_VIEW_H
#define EI_HTTP_VIEW_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "model/inference.h"

/* A new cJSON object for inf (caller deletes), NULL when out of memory. */
cJSON *http_view(const inference *inf);
/* Replaces seq and ts in a view, for the ingest answer once the store assigned them. */
void http_view_set_stored(cJSON *view, int64_t seq, int64_t ts);

#endif
