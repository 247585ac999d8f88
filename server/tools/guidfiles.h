/* guidfiles.h - compatibility with the old `enable_cache_to_file` cache: a directory of
 * <guid>.img (the image bytes) and <guid>.json (the IoT Core inference message) pairs.
 * `ei-relay export --dir DIR` writes such pairs from the cache; `ei-relay import --dir DIR`
 * loads them (idempotent: an id already stored is skipped), so existing caches migrate.
 * Both take a directory only this user or root can change (ER_INVALID otherwise, naming why),
 * and never follow a link in it: export creates its files exclusively (mode 0600), import reads
 * regular files only. */
#ifndef EI_TOOLS_GUIDFILES_H
#define EI_TOOLS_GUIDFILES_H

#include <stdint.h>

#include "config/config.h"
#include "core/rc.h"
#include "store/store.h"

typedef struct guidfiles_stats {
    int64_t done;    /* pairs written / inferences imported */
    int64_t skipped; /* already present (import) */
    int64_t failed;  /* unreadable or invalid files, each logged with its name */
} guidfiles_stats;

er_rc guidfiles_export(store *st, const char *dir, const config *cfg, guidfiles_stats *stats,
                       er_err *err);
er_rc guidfiles_import(store *st, const char *dir, const config *cfg, guidfiles_stats *stats,
                       er_err *err);

#endif
