/* media_internal.h - shared by server/media's files in the relay (not the libvips module): the
 * module's table, loaded on first use. */
#ifndef EI_MEDIA_MEDIA_INTERNAL_H
#define EI_MEDIA_MEDIA_INTERNAL_H

#include "media/vips_api.h"

/* The libvips module's table, loading and starting it on the first call (thread-safe); NULL
 * when it cannot be loaded, with err (may be NULL) naming the file and why. Every later call
 * gives the same answer: a missing module is not looked for again. */
const media_vips_api *media__vips(er_err *err);

/* Every call into the module holds this lock: two threads in libvips at once (two eim sources'
 * preprocessing, thumbnails on two HTTP threads) corrupted the heap now and then (abort in
 * malloc, unit.test_preprocess's two threads: 4 runs in 40), so the relay makes one call at a
 * time. The calls are short (a frame, a thumbnail) and rare next to everything else. */
void media__vips_lock(void);
void media__vips_unlock(void);

#endif
