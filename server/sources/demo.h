/* demo.h - the --demo source: replays bundled sample inferences (an object-detection camera
 * and a classification model) with synthetic camera frames, through the same ingest path as
 * HTTP, so a fresh install shows data in the API and dashboard at once. */
#ifndef EI_SOURCES_DEMO_H
#define EI_SOURCES_DEMO_H

#include <stdint.h>

#include "core/rc.h"
#include "store/store.h"

typedef struct demo_source demo_source;

/* st is borrowed and must outlive the source; device is copied. */
er_rc demo_source_create(store *st, const char *device, int64_t interval_ms, demo_source **out,
                         er_err *err);
/* Stops the thread (waking it at once) and frees; NULL is fine. */
void demo_source_destroy(demo_source *d);

#endif
