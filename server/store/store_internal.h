/* store_internal.h - what the files of the store module share and nothing outside it includes:
 * the struct store, jobs, reader connections, the statement lists, the small statement helpers,
 * and the functions one file offers another (prefix store__: private to the module).
 *
 * The files, one job each:
 *   store.c            create/destroy, puts, subscribers, delete, thumbnail, debug max pages
 *   store_db.c         connections, pragmas, WAL, migrations, prepared statements, reader pool
 *   store_walbuf.c     the writer connection's VFS: a commit's WAL frames written as one write
 *   store_sql.c        the text of every statement
 *   store_writer.c     the job queue, the writer thread and its group commit, waiting for a job
 *   store_exec.c       what a put, delete or thumbnail job does inside the transaction
 *   store_retention.c  retention passes (age, rows, bytes) and clear_cache
 *   store_age.c        the age clock retention measures ages with (persisted in meta)
 *   store_read.c       list (label pages: postings, then label_score below the watermark), get,
 *                      image, thumbnail, info, foreach, query plans
 *   store_labels.c     packed labels and label postings (writer), decoding labels, stats
 *   store_pack.c       the packed forms' pure encoders and decoders (store_pack.h)
 *   store_outbox.c     the forwarder's side: publish policy, outbox bounds, fetch, ack, fail
 *   store_meta.c       the small persistent key/value state
 *   store_prom.c       the store's series of /metrics
 *   store_check.c      the checks at open, moving a corrupt file aside, corruption at run time
 *   store_space.c      free space, the reserve file, making room when the disk is full
 *
 * Ownership: the store owns one writer connection (used only by the writer thread once it runs,
 * and by create/destroy around it) and `readers` reader connections, each with its own prepared
 * statements. Jobs are allocated by the caller side and freed by the writer after their
 * callbacks ran; a queued put owns its inference until then. */
#ifndef EI_STORE_STORE_INTERNAL_H
#define EI_STORE_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/ageclock.h"
#include "store/store.h"

typedef struct store_walbuf store_walbuf;

/* every connection waits this long for another process's lock (store_opts.busy_timeout_ms) */
#define STORE_BUSY_TIMEOUT_MS 5000
#define MAX_SUBSCRIBERS 16
/* The queue holds at most this many jobs / image bytes (beyond one job) before producers wait:
 * memory stays bounded when the disk is slower than ingest. */
#define QUEUE_JOBS_PER_BATCH 4
#define QUEUE_MAX_BYTES (32 * 1024 * 1024)

/* ---- statements: every one is a constant (store_sql.c), prepared once per connection ---- */

/* The writer connection's statements (s->wst[WSTMT_*]). */
enum {
    WSTMT_BEGIN,
    WSTMT_COMMIT,
    WSTMT_ROLLBACK,
    WSTMT_SAVEPOINT,
    WSTMT_RELEASE,
    WSTMT_ROLLBACK_TO,
    WSTMT_FIND_GUID,
    WSTMT_INS_INFERENCE,
    WSTMT_INS_IMAGE,
    WSTMT_INS_OUTBOX,
    WSTMT_DEL_GUID,
    WSTMT_SET_THUMB,
    WSTMT_COUNTERS,
    WSTMT_RET_AGE,
    WSTMT_RET_OLD,
    WSTMT_DEL_SEQ,
    WSTMT_VACUUM,
    WSTMT_VACUUM_ALL,
    WSTMT_OB_COUNTERS,
    WSTMT_OB_OLDEST,
    WSTMT_OB_DELETE,
    WSTMT_SET_PUBLISH,
    WSTMT_OB_DELETE_RANGE,
    WSTMT_SET_PUBLISH_RANGE,
    WSTMT_OB_TALLY,
    WSTMT_OB_FAIL,
    WSTMT_OB_KILL,
    WSTMT_META_SET,
    WSTMT_CLEAR_SCAN,
    WSTMT_META_GET,
    WSTMT_NEWEST_AGE,
    WSTMT_COUNTERS_ADD,
    WSTMT_INS_POST,   /* one label_post row (store_labels.c) */
    WSTMT_TRIM_POSTS, /* label_post rows whose inferences are all gone */
    WSTMT__N
};

/* Each reader connection's statements (r->st[RSTMT_*]). */
enum {
    RSTMT_LIST,
    RSTMT_LIST_LABEL,
    RSTMT_GET,
    RSTMT_GET_LABELS,
    RSTMT_IMAGE,
    RSTMT_THUMB,
    RSTMT_STATS,
    RSTMT_COUNTERS,
    RSTMT_EDGES,
    RSTMT_PAGES,
    RSTMT_FOREACH,
    RSTMT_EXPLAIN_LIST,
    RSTMT_EXPLAIN_LABEL,
    RSTMT_OB_FETCH,
    RSTMT_OB_FETCH_META,
    RSTMT_OB_DEAD,
    RSTMT_OB_COUNTERS,
    RSTMT_OB_OLDEST,
    RSTMT_META_GET,
    RSTMT_AFTER,
    RSTMT_POST_SCAN, /* a label's label_post rows, newest first */
    RSTMT_BY_SEQS,   /* up to PROBE_SEQS inferences by seq (+ source): what postings point at */
    RSTMT_BY_RANGE,  /* the same as a seq range, newest first */
    RSTMT_EXPLAIN_POST,
    RSTMT_EXPLAIN_BY_SEQS,
    RSTMT__N
};

extern const char *const store__writer_sql[WSTMT__N];
extern const char *const store__reader_sql[RSTMT__N];

/* Columns 0..20 shared by list, get, foreach and the outbox reads (see row_to_inference). */
#define INF_COLS                                                                                   \
    "i.seq, i.guid, i.ts, i.device, i.source, i.kind, i.result, i.timing, i.info, i.top_label,"    \
    " i.top_score, i.anomaly, i.model_width, i.model_height, i.has_image, m.mime, m.width,"        \
    " m.height, length(m.data), i.publish, i.labels"
#define PROBE_SEQS 32 /* seqs RSTMT_BY_SEQS takes (?2 .. ?33) */
#define COL_LABELS 20 /* i.labels: packed (store_pack.h), NULL before 005 */
#define COL_DATA 21   /* m.data after INF_COLS, where a statement selects image bytes */

/* ---- types ---- */

/* Data jobs (put, delete, thumb, ack, fail, meta) run inside the group-commit transaction, each
 * in its own savepoint; control jobs (retain, max pages, clear) run after the commit. */
typedef enum job_kind {
    JOB_PUT,
    JOB_DELETE,
    JOB_THUMB,
    JOB_ACK,
    JOB_FAIL,
    JOB_META,
    JOB_RETAIN,
    JOB_MAX_PAGES,
    JOB_CLEAR
} job_kind;

/* For JOB_FAIL res.seq answers 1 when the row was dead-lettered; for JOB_CLEAR it answers the
 * number of inferences deleted (store_put_result is the one result every job carries). */
typedef struct job {
    job_kind kind;
    inference *inf; /* JOB_PUT: owned until the job is freed */
    bool offered;   /* JOB_PUT offered: on ER_BUSY or a retry inf goes back to the caller */
    char *guid;     /* JOB_DELETE / JOB_THUMB: owned copy; JOB_META: the key */
    char *text;     /* JOB_META: the value; JOB_FAIL: the reason (owned copies, may be NULL) */
    uint8_t *data;  /* JOB_THUMB: owned copy */
    size_t len;
    int64_t *seqs; /* JOB_ACK: owned array of n_seqs */
    size_t n_seqs;
    bool permanent;             /* JOB_FAIL */
    int64_t dropped, rejected;  /* JOB_PUT: outbox-full effects, counted after the commit */
    bool decided;               /* JOB_PUT: the policy was asked (once: it may count calls) */
    inference_publish decision; /* JOB_PUT: its answer, reused when the batch is run again */
    int64_t value;              /* JOB_MAX_PAGES: page limit; JOB_FAIL: the seq */
    size_t cost;                /* bytes accounted in the queue */
    store_done_fn done;         /* may be NULL */
    void *arg;
    store_put_result res;
    struct job *next;
} job;

typedef struct reader {
    store *owner; /* the store whose pool it is in (to record corruption it meets) */
    sqlite3 *db;
    sqlite3_stmt *st[RSTMT__N];
} reader;

/* One subscription: one of fn, deleted and cleared is set, the others NULL. */
typedef struct subscriber {
    store_commit_fn fn;
    store_deleted_fn deleted;
    store_cleared_fn cleared;
    void *arg;
} subscriber;

struct store {
    char *path;
    bool sync_full;
    int busy_timeout_ms;
    bool outbox;
    int64_t max_rows, max_bytes, max_age_ms;
    bool max_bytes_default; /* max_bytes not chosen: store__space_init may lower it */
    int batch_max;
    int64_t ob_max_rows, ob_max_bytes;
    bool ob_reject_new;
    int max_attempts;
    size_t page_max_bytes; /* row bytes one read holds (store_opts.page_max_bytes) */
    /* publish policy: set under mu before traffic, read by the writer (which takes mu for every
     * batch, so it sees the latest) */
    store_policy_fn policy_fn;
    void *policy_arg;

    /* writer side: the connection and statements belong to the writer thread */
    store_walbuf *walbuf; /* the writer connection's VFS (synchronous=FULL only), else NULL */
    sqlite3 *wdb;
    sqlite3_stmt *wst[WSTMT__N];
    pthread_t writer;
    bool writer_started;

    /* queue, guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t has_work; /* writer waits (monotonic clock) */
    pthread_cond_t has_room; /* producers wait */
    job *q_head, *q_tail;
    size_t q_len, q_bytes, q_max_len;
    bool stopping;
    subscriber subs[MAX_SUBSCRIBERS];
    size_t n_subs;

    /* reader pool, guarded by pool_mu */
    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    reader *readers;
    int n_readers;
    int *free_idx; /* stack of free reader indices */
    int n_free;

    /* counters: written by the writer, read by anyone */
    atomic_llong commits, puts, duplicates, put_errors, retention_deleted, retention_passes;
    atomic_llong ob_dropped, ob_rejected; /* outbox full, since start */

    /* the database's health (store_check.c). Set while opening, read-only afterwards: */
    bool recover;               /* opts.recover: move a corrupt file aside */
    char bad[256];              /* why the file being opened is corrupt; "" while it is not */
    int64_t recovered_ms;       /* when a corrupt file was moved aside at start; 0 = never */
    char *moved_to;             /* owned: where it went */
    char recovered_reason[256]; /* what was wrong with it */
    store_check start_check;    /* what store__check_file did */
    int64_t start_check_ms;
    bool opened;               /* store_create succeeded: destroy may mark a clean stop */
    pthread_mutex_t health_mu; /* guards the two below, set by any thread */
    int64_t corrupt_ms;        /* when SQLite first reported corruption while running */
    char corrupt_reason[256];
    int64_t wfail_ms; /* writes failing since (store_health.writes_failing_ms) */
    char wfail_reason[192];
    atomic_llong write_failures; /* transactions lost as a whole */
    int wlast_src;               /* writer thread: the last SQLite error code it met */

    /* What the open transaction's puts inserted, added to `counters` by one statement before
     * its COMMIT (schema/004_ingest.sql: no insert triggers); writer thread only. */
    struct {
        int64_t rows, bytes, images, outbox, outbox_bytes;
    } cnt_add;
    /* The open transaction's label postings (store_labels.c); writer thread only. */
    struct store_posts *posts;
    /* meta 'labels_packed_from' (schema/005_labels.sql): the first seq whose labels are packed;
     * below it they are in label_score. Set at open, read-only afterwards. */
    int64_t labels_from;

    /* retention schedule: writer thread only */
    int64_t ret_last_ms;
    int64_t ret_puts;
    bool ret_more;                    /* the last pass stopped early: run again soon */
    bool ret_in_pass;                 /* a pass is under way; the fields below are its cursor */
    bool ret_age_done, ret_size_done; /* phases of the current pass */
    int64_t ret_cutoff, ret_cur_seq;
    int64_t room_bytes; /* store__space_full: a pass that evicts this many bytes; else 0 */
    int64_t room_cap;   /* that pass's byte limit (its start's bytes - room_bytes) */

    /* the file system (store_space.c): set by store__space_init, then the writer thread's */
    char *reserve_path;         /* owned: <path>-reserve */
    char *dir_path;             /* owned: the database's directory */
    int ckpt_pages;             /* WAL frames between passive checkpoints */
    char secure_delete_sql[32]; /* restores the connection's secure_delete after a full disk */
    int64_t reserve;            /* its size */
    bool reserve_held;          /* it holds its bytes now */
    int64_t room_next_ms, reserve_next_ms; /* monotonic: next make-room / reserve attempt */

    /* outbox acks without a waiter that failed (disk full): the writer queues them again after
     * ack_retry_at (monotonic ms), backing off; writer thread only */
    job *ack_retry;
    int64_t ack_retry_at, ack_backoff_ms;

    /* the age clock's mark of this run (store_age.c): set at open, read-only afterwards */
    ageclock_mark age_base;
    int64_t age_saved; /* the age of the last mark this run wrote, 0 if none (writer thread) */
};

/* store_space.c, the writer's hooks: after a transaction lost to a full disk / after a commit */
er_rc store__space_init(store *s, er_err *err);
void store__space_close(store *s);
void store__space_full(store *s);
void store__space_tick(store *s);

/* ---- statement helpers (inline: they run several times per put on the writer's hot path) ---- */

static inline void stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Steps a statement that returns no rows we need, then resets it; returns the step code. */
static inline int step_once(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    stmt_done(st);
    return rc;
}

static inline int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static inline char *col_strdup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

/* ---- store_db.c ---- */

/* Logs what failed and maps the SQLite code to an er_rc (disk full, busy, ...); corruption is
 * also recorded for health (store__note_corrupt). db is s's writer or one of its readers. */
er_rc store__db_error(store *s, sqlite3 *db, int rc, const char *what);
/* Opens everything behind s->path: its directory, the writer connection (migrated, with its
 * statements) and the s->n_readers reader connections of the pool (with theirs). On failure
 * what was opened stays in s for store__db_close. */
er_rc store__db_open(store *s, er_err *err);
/* Closes every connection and frees the pool; fine on a half-opened store. */
void store__db_close(store *s);
/* Borrows a reader connection from the pool, waiting for a free one; give it back with
 * store__reader_put on the same thread before returning to the caller. */
reader *store__reader_get(store *s);
void store__reader_put(store *s, reader *r);

/* ---- store_walbuf.c ---- */

/* Makes and registers the VFS the writer connection opens its files with when synchronous is
 * FULL: it writes each commit's WAL frames out as one write at the commit's sync. */
er_rc store__walbuf_create(store_walbuf **out, er_err *err);
/* Its registered name (sqlite3_open_v2's zVfs); NULL for NULL (the default VFS). */
const char *store__walbuf_name(const store_walbuf *wb);
/* Unregisters and frees it; only once no connection uses it. NULL is fine. */
void store__walbuf_destroy(store_walbuf *wb);

/* ---- store_check.c ---- */

/* SQLITE_CORRUPT or SQLITE_NOTADB (any extended code). */
bool store__corrupt_code(int src);
/* While opening: records in s->bad why the file is corrupt, when src says so (first wins). */
void store__note_bad(store *s, int src, const char *msg);
/* While running: records the first corruption SQLite reports (for health) and logs it. */
void store__note_corrupt(store *s, sqlite3 *db, int src, const char *what);
/* On the open writer connection, before migrating: refuses (ER_CONFIG) another application's
 * database; parses the schema; runs quick_check unless the file is new or the last run stopped
 * cleanly (<path>.clean); on corruption sets s->bad and fails with ER_DB. */
er_rc store__check_file(store *s, int64_t user_version, er_err *err);
/* After the checks, before the first write: removes <path>.clean durably. */
er_rc store__clean_take(store *s, er_err *err);
/* In store_destroy, the readers closed, the writer connection still open: writes <path>.clean
 * when the stop is clean (see store_check.c); logs why not otherwise. */
void store__clean_mark(store *s);
/* The writer connection closed: moves s->path and its companions to <path>.corrupt-<UTC time>,
 * logs it at error level and records it for health (clears s->bad). */
er_rc store__move_aside(store *s, er_err *err);

/* ---- store_writer.c ---- */

er_rc store__writer_start(store *s, er_err *err);
/* Stops the writer after it drained the queue (every queued job's callback runs) and joins it;
 * later puts answer ER_CLOSED. */
void store__writer_stop(store *s);
/* Queues j, waiting for room when the queue is full, or, with nowait, failing with ER_BUSY.
 * Takes ownership of j. */
er_rc store__enqueue(store *s, job *j, bool nowait);
/* Queues j and waits for its result (copied to *res if not NULL). Takes ownership of j. */
er_rc store__run_sync_res(store *s, job *j, store_put_result *res);
er_rc store__run_sync(store *s, job *j);
void store__free_job(job *j);

/* ---- the jobs, run by the writer thread ---- */

/* store_exec.c: runs one data job inside the open transaction (dispatches to the files below). */
er_rc store__exec_data_job(store *s, job *j, int64_t now, int64_t age);
er_rc store__exec_max_pages(store *s, int64_t pages);
/* store_exec.c: adds s->cnt_add to `counters` and clears it (before the batch's COMMIT). */
er_rc store__counters_flush(store *s);
/* store_outbox.c */
er_rc store__outbox_make_room(store *s, job *j, int64_t add, inference_publish *decision);
er_rc store__exec_ack(store *s, job *j);
er_rc store__exec_fail(store *s, job *j, int64_t now);
/* store_meta.c */
er_rc store__exec_meta(store *s, job *j);
/* store_retention.c: full = until the limits hold (store_retain), else one yielding pass. */
er_rc store__run_retention(store *s, bool full);
er_rc store__run_clear(store *s, int64_t *deleted);
/* When retention should run next: -1 not scheduled, 0 now, else in that many ms. */
int64_t store__retention_wait_ms(const store *s);

/* store_age.c: the age clock (core/ageclock.h). open: on the writer connection at open, resumes
 * the persisted clock (or starts one); writes nothing and never fails the open. now: its
 * current value (any thread once open: s->age_base is written only by open). save: persists the
 * mark for age (taken now) through the writer connection, inside the caller's transaction or alone.
 */
void store__age_open(store *s);
int64_t store__age_now(const store *s);
er_rc store__age_save(store *s, int64_t age);
/* Whether a commit at age should rewrite the mark (the last one is old enough). */
bool store__age_due(const store *s, int64_t age);

/* ---- store_labels.c ---- */

er_rc store__posts_create(store *s);
void store__posts_destroy(store *s);
/* Packs inf's labels for its row into the writer's buffer (*blob valid until the next call);
 * ER_INVALID: a label is NULL or appears twice. */
er_rc store__labels_pack(store *s, const inference *inf, const void **blob, size_t *len);
/* A put went in as seq: its labels' entries join the open transaction's postings (all or,
 * ER_NOMEM, none). */
er_rc store__posts_add(store *s, const inference *inf, int64_t seq);
/* Forgets the postings gathered (a transaction starts or starts again). */
void store__posts_reset(store *s);
/* Writes the gathered postings, one row per label (per STORE_PACK_POST_MAX entries), in the
 * open transaction, just before its COMMIT. */
er_rc store__posts_flush(store *s);
/* Deletes the posting rows that end at or below upto and whose seq range holds no inference any
 * more (retention and clear, after a chunk examined every row up to upto: what stays there is
 * kept for the forwarder, and only the few posting rows around it stay too). */
er_rc store__posts_trim(store *s, int64_t upto);
/* Adds inf's labels: from column col of row (packed) or, when that is NULL, from label_score. */
er_rc store__read_labels(reader *r, sqlite3_stmt *row, int col, inference *inf);

/* ---- store_read.c ---- */

enum { PAGE_DATA = 1, PAGE_LABELS = 2 }; /* what store__read_page adds to each row */
/* One page of INF_COLS rows from reader statement which (?1 cursor, ?2 limit + 1: the extra row
 * sets next_seq), with image bytes (PAGE_DATA) and labels (PAGE_LABELS) as asked; it ends early
 * (next_seq set) once its rows pass max_bytes (0 or more: page_max_bytes). */
er_rc store__read_page(store *s, int which, int64_t cursor, int limit, unsigned what,
                       size_t max_bytes, store_page *out);
/* The first n int64 columns of the one row reader statement which answers. */
er_rc store__read_row(reader *r, int which, int64_t *vals, int n);

#endif
