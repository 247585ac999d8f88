/* store_prom.c - the store's series of /metrics (store_prom in store.h): one table of families
 * over one store_info snapshot, walked by one loop. */
#include "store/store_internal.h"

#include <stddef.h>

#include "core/prom.h"

#define AT(field) offsetof(store_info, field)

static const struct {
    prom_metric m;
    size_t off;
} series[] = {
    {{"ei_relay_inferences_stored_total", "counter",
      "Inferences committed to the database since start."},
     AT(puts)},
    {{"ei_relay_duplicates_total", "counter",
      "Puts answered with an already stored inference (same id)."},
     AT(duplicates)},
    {{"ei_relay_put_errors_total", "counter", "Puts that failed."}, AT(put_errors)},
    {{"ei_relay_commits_total", "counter", "Database transactions committed."}, AT(commits)},
    {{"ei_relay_retention_deleted_total", "counter", "Inferences removed by the retention limits."},
     AT(retention_deleted)},
    {{"ei_relay_retention_passes_total", "counter",
      "Retention passes completed (every limit checked over the whole cache) since start."},
     AT(retention_passes)},
    {{"ei_relay_cache_rows", "gauge", "Inferences in the cache."}, AT(rows)},
    {{"ei_relay_cache_bytes", "gauge", "Accounted bytes of the cached inferences."}, AT(bytes)},
    {{"ei_relay_cache_images", "gauge", "Cached inferences with an image."}, AT(images)},
    {{"ei_relay_db_file_bytes", "gauge", "Database file plus WAL on disk."}, AT(db_file_bytes)},
    {{"ei_relay_outbox_depth", "gauge", "Outbox rows waiting to be forwarded."}, AT(outbox)},
    {{"ei_relay_ingest_queue_depth", "gauge", "Puts waiting for the store writer."},
     AT(queue_depth)},
    {{"ei_relay_store_write_failures_total", "counter",
      "Transactions lost as a whole (disk full, database locked, I/O error); their puts are "
      "answered with an error and sources hold and retry them."},
     AT(write_failures)},
    {{"ei_relay_store_writes_failing", "gauge",
      "1 while writes fail: no put committed since the last lost transaction."},
     AT(writes_failing)},
    {{"ei_relay_db_fs_free_bytes", "gauge",
      "Free bytes of the file system holding the database (statvfs f_bavail)."},
     AT(fs_free_bytes)},
    {{"ei_relay_cache_max_bytes_exceeds_fs", "gauge",
      "1 when cache_max_bytes is unlimited or more than the database's file system can hold."},
     AT(cap_exceeds_fs)},
    {{"ei_relay_newest_seq", "gauge", "Sequence number of the newest inference."}, AT(newest_seq)},
};

er_rc store_prom(const store_info *info, util_buf *b)
{
    er_rc rc = ER_OK;
    for (size_t i = 0; rc == ER_OK && i < sizeof series / sizeof series[0]; i++) {
        int64_t v;
        memcpy(&v, (const char *)info + series[i].off, sizeof v);
        rc = prom_value(b, &series[i].m, v);
    }
    return rc;
}
