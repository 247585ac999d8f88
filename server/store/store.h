/* store.h - the SQLite cache: inferences, images, per-label scores and the outbox.
 *
 * One writer thread owns the write connection and commits queued puts in groups (one
 * transaction and one fsync for many requests); each request's callback runs only after its
 * commit. An inference, its image, its label rows and its outbox row commit together or not at
 * all. Readers use their own connections from a small pool (WAL mode), so reads never wait for
 * the writer. After every commit the writer calls the subscribers (live hub, forwarder) with the
 * committed inferences, and the delete subscribers (live hub) with the ids deleted: that is the
 * only hand-off between threads.
 *
 * Retention (cache_max_rows / cache_max_bytes / cache_max_age) deletes the oldest rows in the
 * writer thread, never a row still pending in the outbox (dead letters age out like any row),
 * and gives pages back to the file
 * system (incremental vacuum). */
#ifndef EI_STORE_STORE_H
#define EI_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rc.h"
#include "core/util.h"
#include "model/inference.h"

typedef struct store store;

typedef struct store_opts {
    const char *path;       /* database file; its directory is created if missing */
    bool sync_full;         /* synchronous=FULL (default) or NORMAL */
    int busy_timeout_ms;    /* another process's lock waited for; 0 = default (5000) */
    bool outbox;            /* write an outbox row with each inference (forwarding enabled) */
    int64_t max_rows;       /* 0 = no limit */
    int64_t max_bytes;      /* 0 = no limit */
    bool max_bytes_default; /* max_bytes is the default: lowered to half of what the file
                             * system can hold (free + database) when that is less */
    int64_t max_age_ms;     /* 0 = no limit */
    int batch_max;          /* most puts in one transaction; 0 = default (256) */
    int readers;            /* reader connections in the pool; 0 = default (4) */
    /* outbox bounds (forwarding): 0 = no limit; on full drop the oldest pending row or refuse
     * to queue the new one (the inference is stored either way) */
    int64_t outbox_max_rows;
    int64_t outbox_max_bytes;
    bool outbox_reject_new;
    int max_attempts; /* publish attempts before a row is dead-lettered; 0 = default (10) */
    /* Row bytes one read may hold (inference_footprint, labels included, image bytes only
     * when read): a page ends early past it, with next_seq set, but always holds one row.
     * Bounds store_list, store_list_after, the outbox reads, store_foreach's pages and
     * store_stats (ER_TOOBIG past it). 0 = default (4 MiB). */
    int64_t page_max_bytes;
    /* A file that is corrupt or not a database (quick_check, SQLITE_CORRUPT, SQLITE_NOTADB) is
     * moved to <path>.corrupt-<UTC time> with its -wal/-shm and a fresh database created (the
     * service); false: store_create fails with ER_DB and touches nothing (the tools). Either
     * way a database of a newer schema version or of another application fails with ER_CONFIG,
     * untouched. */
    bool recover;
} store_opts;

er_rc store_create(const store_opts *opts, store **out, er_err *err);
/* Stops the writer after draining queued puts (their callbacks run), closes connections; when
 * no other process has the file open and no corruption was met, marks the stop clean
 * (<path>.clean, removed again at open), so the next start skips quick_check. */
void store_destroy(store *s);

typedef struct store_put_result {
    er_rc rc;       /* ER_OK, or ER_FULL / ER_DB / ER_CLOSED ... */
    bool duplicate; /* the guid was already stored: seq/ts are the stored row's */
    int64_t seq;
    int64_t ts;
    char guid[UTIL_UUID_LEN + 1];
    /* The inference was fine but its whole transaction was lost (disk full, the database locked
     * by another process past the busy timeout, an I/O error, corruption): offering it again
     * may succeed. False for a put that failed alone (the inference itself was refused). */
    bool retry;
    /* store_offer_async only, with retry: the inference handed back to the done callback, which
     * owns it from then on (to hold and offer again, or to free). NULL otherwise. */
    inference *held;
} store_put_result;

/* Called on the writer thread after the put's transaction committed (or failed). Must not
 * block; res is valid only during the call. */
typedef void (*store_done_fn)(void *arg, const store_put_result *res);

/* Queues inf for the next group commit. The store takes ownership of inf in every case
 * (on error it is destroyed before return). done may be NULL. The queue is bounded (4 x
 * batch_max jobs, 32 MB of images): when it is full the caller waits for room, except on the
 * writer thread itself (a done callback or subscriber may queue without waiting). Returns
 * ER_CLOSED once store_destroy has begun. A put that fails alone (e.g. a NOT NULL field left
 * NULL) answers ER_DB in res; disk full answers ER_FULL for every put of that transaction. */
er_rc store_put_async(store *s, inference *inf, store_done_fn done, void *arg);
/* The same, but when the queue is full it fails at once with ER_BUSY (inf destroyed) instead
 * of waiting: for callers that must not block (HTTP threads answer 503, Retry-After). */
er_rc store_try_put_async(store *s, inference *inf, store_done_fn done, void *arg);
/* The same, except that on ER_BUSY inf stays the caller's (to hold and offer again later);
 * on any other result the store has taken it. For callers that must not wait and must not
 * lose an inference: when its transaction fails as a whole (res.retry), done gets it back in
 * res.held (without a done callback it is freed). */
er_rc store_offer_async(store *s, inference *inf, store_done_fn done, void *arg);
/* Queues and waits for the commit. Takes ownership of inf. */
er_rc store_put(store *s, inference *inf, store_put_result *res);

/* Subscriber called on the writer thread after each commit with the inferences it committed
 * (borrowed for the call; image data included). Must not block. Subscribe before traffic. */
typedef void (*store_commit_fn)(void *arg, inference *const *committed, size_t n);
er_rc store_subscribe(store *s, store_commit_fn fn, void *arg);
/* Subscriber called on the writer thread after a commit that deleted inferences by id
 * (store_delete: an API DELETE, the clear_cache_file command) with their guids (borrowed for
 * the call), before the deleting caller is answered. Retention and store_clear are not
 * reported. Must not block. Subscribe before traffic. */
typedef void (*store_deleted_fn)(void *arg, const char *const *guids, size_t n);
er_rc store_subscribe_deleted(store *s, store_deleted_fn fn, void *arg);
/* Subscriber called on the writer thread after store_clear (clear_cache) removed rows, before
 * its caller is answered. It lists nothing (a clear may remove the whole cache): whoever holds
 * copies of rows (the live stream's ring) checks them against the store. Must not block. */
typedef void (*store_cleared_fn)(void *arg);
er_rc store_subscribe_cleared(store *s, store_cleared_fn fn, void *arg);

/* ---- reads (any thread; each call borrows a reader connection from the pool) ---- */

typedef struct store_filter {
    const char *label;  /* only inferences with this label; NULL = any */
    const char *source; /* NULL = any */
    bool has_min_score; /* with label: that label's score >= min; else top_score >= min */
    double min_score;
    bool has_since; /* ts >= since_ms */
    int64_t since_ms;
    bool has_until; /* ts < until_ms */
    int64_t until_ms;
    int64_t before_seq; /* keyset cursor: only seq < before_seq; 0 = start at the newest */
    int limit;          /* 1..1000 */
} store_filter;

typedef struct store_page {
    inference **items; /* owned; newest first; image metadata filled, image data NULL */
    size_t n;
    int64_t next_seq; /* cursor for the next page (pass as before_seq); 0 when no more */
} store_page;

er_rc store_list(store *s, const store_filter *f, store_page *out);
/* Up to limit (1..1000) inferences with seq > after_seq, OLDEST first, with their labels and
 * image metadata (no image bytes): the live stream's catch-up. Fewer past max_bytes of rows
 * (0: page_max_bytes; at least one row). next_seq is the page's last seq when more rows
 * follow, else 0. */
er_rc store_list_after(store *s, int64_t after_seq, int limit, size_t max_bytes, store_page *out);
void store_page_free(store_page *p);

/* One inference by guid, image metadata but no image bytes. ER_NOTFOUND if absent. */
er_rc store_get(store *s, const char *guid, inference **out);
/* Image bytes and metadata; caller frees out->data. ER_NOTFOUND if no inference or no image. */
er_rc store_get_image(store *s, const char *guid, inference_image *out);
/* Cached thumbnail (JPEG); caller frees *data. ER_NOTFOUND if none cached yet. */
er_rc store_get_thumbnail(store *s, const char *guid, uint8_t **data, size_t *len);
/* Caches a thumbnail (copied); written by the writer thread, waits for the commit. */
er_rc store_set_thumbnail(store *s, const char *guid, const uint8_t *data, size_t len);
/* Deletes an inference with its image, labels and outbox row; waits for the commit. */
er_rc store_delete(store *s, const char *guid);

typedef struct store_stats_row {
    char *label;       /* owned */
    int64_t bucket_ms; /* bucket start, epoch ms */
    int64_t count;     /* occurrences: inferences with this label, whatever their top class */
    double mean_score; /* of those occurrences */
    int64_t top;       /* inferences whose top class (top_label) is this label; may be 0 */
    double top_mean;   /* their mean top_score; 0 when top is 0 */
} store_stats_row;

/* What store_stats reads: ts in [since_ms, until_ms) in buckets of bucket_ms, and only the
 * inferences that pass the live stream's filter (docs/live.md): source equal (NULL: any), one
 * of their labels equal to label (NULL: any), top score >= min_score (0: any). */
typedef struct store_stats_query {
    int64_t since_ms, until_ms, bucket_ms;
    const char *source; /* borrowed */
    const char *label;  /* borrowed */
    double min_score;
} store_stats_query;

typedef struct store_stats_sum {
    int64_t inferences; /* inferences that passed the query */
    int64_t no_top;     /* of those, the ones without a top class (anomaly-only, empty) */
} store_stats_sum;

/* Per label per bucket occurrences and top-class counts with their mean scores, ordered by
 * label, then bucket; the inferences counted into *sum. Found through the ts index (the range
 * bounds the rows read). ER_TOOBIG when the rows would pass page_max_bytes (a narrower range or
 * a wider bucket holds fewer). */
er_rc store_stats(store *s, const store_stats_query *q, store_stats_row **rows, size_t *n,
                  store_stats_sum *sum);
void store_stats_free(store_stats_row *rows, size_t n);

typedef struct store_info {
    int64_t rows;  /* inferences in the cache */
    int64_t bytes; /* their accounted footprint */
    int64_t images;
    int64_t outbox;        /* outbox rows waiting */
    int64_t db_file_bytes; /* main file + WAL on disk */
    int64_t newest_seq;
    int64_t oldest_ts; /* 0 if empty */
    int64_t newest_ts;
    int64_t commits;           /* transactions committed since start */
    int64_t puts;              /* inferences committed since start */
    int64_t duplicates;        /* puts answered with an existing row */
    int64_t put_errors;        /* puts that failed */
    int64_t retention_deleted; /* rows removed by retention since start */
    int64_t retention_passes;  /* retention passes completed since start */
    int64_t queue_depth;       /* puts waiting for the writer */
    int64_t write_failures;    /* transactions lost as a whole (disk full, locked, I/O) */
    int64_t writes_failing;    /* 1 while the latest of them came after the latest put commit */
    int64_t fs_free_bytes;     /* free bytes of the database's file system (store_space) */
    int64_t cap_exceeds_fs;    /* 1 when cache_max_bytes is more than the file system holds */
} store_info;

er_rc store_get_info(store *s, store_info *out);
/* Appends the store's series of /metrics (ei_relay_inferences_stored_total ... _newest_seq)
 * from one snapshot, with core/prom.h; ER_NOMEM when b cannot grow. */
er_rc store_prom(const store_info *info, util_buf *b);

/* Calls fn for every inference, oldest first, with image bytes (borrowed for the call).
 * Stops at the first non-OK return and returns it. */
typedef er_rc (*store_each_fn)(void *arg, const inference *inf);
er_rc store_foreach(store *s, store_each_fn fn, void *arg);

/* What was checked when the database was opened (see store_check.c). */
typedef enum store_check {
    STORE_CHECK_NONE = 0, /* nothing yet */
    STORE_CHECK_NEW,      /* a brand-new database: nothing to check */
    STORE_CHECK_SKIPPED,  /* the last run stopped cleanly: quick_check skipped */
    STORE_CHECK_QUICK     /* the last run did not stop cleanly: quick_check ran */
} store_check;

/* The database's health since store_create. */
typedef struct store_health {
    store_check start_check;    /* of the database in use (the fresh one after a recovery) */
    int64_t start_check_ms;     /* how long quick_check took (STORE_CHECK_QUICK) */
    int64_t recovered_ms;       /* a corrupt file was moved aside at start (epoch ms); 0 = no */
    const char *moved_to;       /* where it went (borrowed: lives as long as the store) */
    char recovered_reason[256]; /* what was wrong with it */
    int64_t corrupt_ms;         /* SQLite reported corruption while running (first time); 0 = no */
    char corrupt_reason[256];   /* what was being done and SQLite's message */
    /* Writes failing: the first of the failed transactions since the last commit of a put
     * (epoch ms; 0 = writes work) and why the latest failed ("disk full (SQLITE_FULL)"). */
    int64_t writes_failing_ms;
    char writes_failing_reason[192];
} store_health;
/* Any thread. */
void store_health_get(store *s, store_health *out);

/* The database's file system (statvfs of its directory) against cache_max_bytes. The store
 * keeps a reserve file (<path>-reserve) so that a full disk can be recovered from: on a
 * transaction lost to a full disk it releases it, checkpoints, evicts the oldest rows the
 * forwarder is done with and takes the reserve back (store_space.c). Any thread. */
typedef struct store_space {
    int64_t fs_free_bytes;  /* free to the service (f_bavail) */
    int64_t fs_total_bytes; /* the file system's size */
    int64_t db_bytes;       /* database file + WAL */
    int64_t reserve_bytes;  /* the reserve file's size when held */
    int64_t fs_room_bytes;  /* what the cache can grow to: free + database */
    bool cap_exceeds_fs;    /* cache_max_bytes is 0 (unlimited) or above fs_room_bytes */
} store_space;
void store_space_get(store *s, store_space *out);

/* ---- maintenance and diagnostics ---- */

/* Runs a retention pass on the writer thread now and waits for it (admin "clear old rows",
 * tests). Retention also runs by itself at most every second or every 1000 puts. */
er_rc store_retain(store *s);

/* The query plan (EXPLAIN QUERY PLAN details, one per line) of store_list's statement without
 * or with a label filter; caller frees *plan. For tests and diagnostics. */
er_rc store_explain_list(store *s, bool with_label, char **plan);

/* Test hook: sets PRAGMA max_page_count on the writer connection (SQLite answers SQLITE_FULL
 * past it), so the disk-full path can be exercised without filling a real disk. */
er_rc store_debug_max_pages(store *s, int64_t pages);

/* ---- publish policy and outbox (the forwarder's side) ----
 *
 * Whether an inference is to be published is decided at ingest, in the writer thread, in seq
 * order, by the policy callback (forward/policy), and recorded on the inference row (its
 * inference_publish, model/inference.h); only an INFERENCE_PUBLISH_PENDING decision writes an
 * outbox row, in the same transaction. */

/* Called on the writer thread for each new (non-duplicate) inference before it is inserted.
 * Must not block. Returns the decision to record. */
typedef inference_publish (*store_policy_fn)(void *arg, const inference *inf);
/* Installs the policy; NULL means "every inference pending" when opts.outbox is set. Call
 * before traffic. */
void store_set_policy(store *s, store_policy_fn fn, void *arg);

/* Up to limit pending outbox rows with seq > after_seq, in seq order, with image bytes.
 * *items is an owned array of owned inferences (free with store_page_free on a store_page,
 * or inference_destroy each + free). Dead rows are not returned. */
er_rc store_outbox_fetch(store *s, int64_t after_seq, int limit, store_page *out);
/* The same without the image bytes (image.data NULL; mime, width, height and len kept): for a
 * forwarder that publishes no images, so a drain does not read every stored JPEG. */
er_rc store_outbox_fetch_meta(store *s, int64_t after_seq, int limit, store_page *out);

/* Marks rows published: deletes their outbox rows and records PUBLISHED (writer, batched;
 * returns after commit). */
er_rc store_outbox_ack(store *s, const int64_t *seqs, size_t n);
/* The same without waiting for the commit (the forwarder keeps its window full meanwhile): a
 * crash before that commit only means the rows are sent again, which at-least-once allows. A
 * later store_outbox_fetch may still return them until the commit. While an earlier such ack
 * still waits in the queue (the writer is committing), the seqs join it: one job, and one
 * statement per run of consecutive seqs, however many calls. */
er_rc store_outbox_ack_async(store *s, const int64_t *seqs, size_t n);

/* Records a failed attempt; permanent (or attempts reaching max_attempts) moves the row to the
 * dead-letter state with reason, so it no longer blocks the queue. *dead tells which. */
er_rc store_outbox_fail(store *s, int64_t seq, bool permanent, const char *reason, bool *dead);

typedef struct store_outbox_stats {
    int64_t pending; /* rows waiting */
    int64_t pending_bytes;
    int64_t dead;              /* dead-lettered rows */
    int64_t dropped;           /* rows dropped because the outbox was full, since start */
    int64_t rejected;          /* inferences not queued because the outbox was full, since start */
    int64_t oldest_pending_ts; /* ts of the oldest pending row; 0 if none */
} store_outbox_stats;
er_rc store_outbox_stats_get(store *s, store_outbox_stats *out);

/* Dead letters, newest first, paginated like store_list (image data NULL). */
er_rc store_outbox_dead(store *s, int64_t before_seq, int limit, store_page *out);

/* clear_cache: deletes every cached inference that is not waiting in the outbox; waits for the
 * commit. */
er_rc store_clear(store *s, int64_t *deleted);

/* Small persistent key/value state (settings changed by command survive restarts). *value is
 * malloc'ed; ER_NOTFOUND if unset. store_meta_set waits for the commit. */
er_rc store_meta_get(store *s, const char *key, char **value);
er_rc store_meta_set(store *s, const char *key, const char *value);

#endif
