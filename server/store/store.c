/* store.c - the SQLite cache behind store.h: connection setup and migrations, the writer thread
 * with its bounded job queue and group commit, retention, the reader pool, and the outbox the
 * forwarder drains (publish decisions, bounds, ack/fail/dead letters, clear, meta).
 *
 * Retention and dead letters: only a PENDING outbox row protects its inference. A dead letter
 * keeps its inference (visible in the API and in store_outbox_dead) like any cached row, until
 * retention removes it by age or size, oldest first; so a poison message never pins the cache.
 *
 * Ownership: the store owns one writer connection (used only by the writer thread once it runs,
 * and by create/destroy around it) and `readers` reader connections, each with its own prepared
 * statements. Jobs are allocated by the caller side and freed by the writer after their
 * callbacks ran; a queued put owns its inference until then. */
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"
#include "store/migrations.h"

#define DEFAULT_BATCH 256
#define DEFAULT_READERS 4
#define DEFAULT_MAX_ATTEMPTS 10
#define MAX_SUBSCRIBERS 16
#define BUSY_TIMEOUT_MS 5000
/* The queue holds at most this many jobs / image bytes (beyond one job) before producers wait:
 * memory stays bounded when the disk is slower than ingest. */
#define QUEUE_JOBS_PER_BATCH 4
#define QUEUE_MAX_BYTES (32 * 1024 * 1024)
/* Retention runs at most once a second, or after this many committed puts. */
#define RET_INTERVAL_MS 1000
#define RET_EVERY_PUTS 1000
#define RET_CHUNK 256           /* rows examined per retention transaction */
#define RET_DELETE_BUDGET 4096  /* rows deleted per pass before the writer serves puts again */
#define RET_SCAN_BUDGET 16384   /* rows examined per pass (bounded cost when outbox protects) */
#define RET_VACUUM_PAGES "2048" /* pages given back per pass */
#define FOREACH_PAGE 32
/* The writer checkpoints when the WAL reaches 4000 pages (SQLite's default is 1000): the
 * pages every commit rewrites (table tails, counters, index tails) are copied into the database
 * once per checkpoint rather than once per 1000 pages. 4000 pages of 4 KiB stay well under
 * journal_size_limit. */
#define WRITER_PRAGMAS " PRAGMA journal_size_limit=67108864; PRAGMA wal_autocheckpoint=4000;"

/* ---- SQL: every statement is a constant, prepared once per connection ---- */

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
    WSTMT_INS_LABEL,
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
    WSTMT_OB_TALLY,
    WSTMT_OB_FAIL,
    WSTMT_OB_KILL,
    WSTMT_META_SET,
    WSTMT_CLEAR_SCAN,
    WSTMT__N
};

static const char *const writer_sql[WSTMT__N] = {
    [WSTMT_BEGIN] = "BEGIN IMMEDIATE",
    [WSTMT_COMMIT] = "COMMIT",
    [WSTMT_ROLLBACK] = "ROLLBACK",
    [WSTMT_SAVEPOINT] = "SAVEPOINT job",
    [WSTMT_RELEASE] = "RELEASE job",
    [WSTMT_ROLLBACK_TO] = "ROLLBACK TO job",
    [WSTMT_FIND_GUID] = "SELECT seq, ts FROM inference WHERE guid = ?1",
    [WSTMT_INS_INFERENCE] =
        "INSERT INTO inference (guid, ts, received_ms, device, source, kind, result, timing, info,"
        " top_label, top_score, anomaly, model_width, model_height, has_image, bytes, publish)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    [WSTMT_INS_IMAGE] =
        "INSERT INTO image (seq, mime, width, height, data) VALUES (?1, ?2, ?3, ?4, ?5)",
    [WSTMT_INS_LABEL] = "INSERT INTO label_score (label, seq, ts, score) VALUES (?1, ?2, ?3, ?4)",
    [WSTMT_INS_OUTBOX] = "INSERT INTO outbox (seq, created_ms, bytes) VALUES (?1, ?2, ?3)",
    [WSTMT_DEL_GUID] = "DELETE FROM inference WHERE guid = ?1",
    [WSTMT_SET_THUMB] = "UPDATE image SET thumbnail = ?2"
                        " WHERE seq = (SELECT seq FROM inference WHERE guid = ?1)",
    [WSTMT_COUNTERS] = "SELECT rows, bytes FROM counters WHERE id = 1",
    /* Only pending outbox rows protect an inference: a dead letter is an ordinary cached row
     * for retention (see store_outbox_dead). */
    /* Age is the relay's own receive time, not the sender's ts (a runner without a set clock
     * sends ts from boot). received_ms grows with seq, so the oldest are a prefix by seq. */
    [WSTMT_RET_AGE] = "SELECT i.seq, i.received_ms,"
                      " EXISTS (SELECT 1 FROM outbox o WHERE o.seq = i.seq AND o.state = 0)"
                      " FROM inference i WHERE i.seq > ?1 ORDER BY i.seq LIMIT ?2",
    [WSTMT_RET_OLD] = "SELECT i.seq, i.bytes,"
                      " EXISTS (SELECT 1 FROM outbox o WHERE o.seq = i.seq AND o.state = 0)"
                      " FROM inference i WHERE i.seq > ?1 ORDER BY i.seq LIMIT ?2",
    /* The NOT EXISTS re-check makes "never delete a row with an outbox entry" hold even if
     * another connection added one between the scan and the delete. */
    [WSTMT_DEL_SEQ] = "DELETE FROM inference WHERE seq = ?1"
                      " AND NOT EXISTS (SELECT 1 FROM outbox WHERE seq = ?1 AND state = 0)",
    [WSTMT_VACUUM] = "PRAGMA incremental_vacuum(" RET_VACUUM_PAGES ")",
    [WSTMT_VACUUM_ALL] = "PRAGMA incremental_vacuum",
    [WSTMT_OB_COUNTERS] = "SELECT outbox, outbox_bytes FROM counters WHERE id = 1",
    /* INDEXED BY: the partial index of pending rows, so dead rows are never walked over. */
    [WSTMT_OB_OLDEST] = "SELECT seq, bytes FROM outbox INDEXED BY outbox_pending WHERE state = 0"
                        " ORDER BY seq LIMIT ?1",
    [WSTMT_OB_DELETE] = "DELETE FROM outbox WHERE seq = ?1",
    [WSTMT_SET_PUBLISH] = "UPDATE inference SET publish = ?2 WHERE seq = ?1",
    [WSTMT_OB_TALLY] = "UPDATE counters SET outbox_dropped = outbox_dropped + ?1,"
                       " outbox_rejected = outbox_rejected + ?2 WHERE id = 1",
    [WSTMT_OB_FAIL] = "UPDATE outbox SET attempts = attempts + 1, last_error = ?2"
                      " WHERE seq = ?1 AND state = 0 RETURNING attempts",
    [WSTMT_OB_KILL] = "UPDATE outbox SET state = 1, dead_ms = ?2 WHERE seq = ?1",
    [WSTMT_META_SET] = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
                       " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [WSTMT_CLEAR_SCAN] = "SELECT i.seq,"
                         " EXISTS (SELECT 1 FROM outbox o WHERE o.seq = i.seq AND o.state = 0)"
                         " FROM inference i WHERE i.seq > ?1 ORDER BY i.seq LIMIT ?2",
};

/* Columns 0..19 shared by list, get, foreach and the outbox reads (see row_to_inference). */
#define INF_COLS                                                                                   \
    "i.seq, i.guid, i.ts, i.device, i.source, i.kind, i.result, i.timing, i.info, i.top_label,"    \
    " i.top_score, i.anomaly, i.model_width, i.model_height, i.has_image, m.mime, m.width,"        \
    " m.height, length(m.data), i.publish"
#define COL_DATA 20 /* m.data after INF_COLS, where a statement selects image bytes */

/* Newest first by seq; each optional filter is `?n IS NULL OR ...` so one static statement
 * serves every combination. */
#define SQL_LIST                                                                                   \
    "SELECT " INF_COLS " FROM inference i LEFT JOIN image m ON m.seq = i.seq"                      \
    " WHERE i.seq < ?1 AND (?2 IS NULL OR i.source = ?2) AND (?3 IS NULL OR i.top_score >= ?3)"    \
    " AND (?4 IS NULL OR i.ts >= ?4) AND (?5 IS NULL OR i.ts < ?5)"                                \
    " ORDER BY i.seq DESC LIMIT ?6"

/* With a label: a range scan of the covering (label, seq, score, ts) index drives the query
 * (CROSS JOIN pins that loop order), so "newest N with label X" never scans. */
#define SQL_LIST_LABEL                                                                             \
    "SELECT " INF_COLS " FROM label_score l CROSS JOIN inference i ON i.seq = l.seq"               \
    " LEFT JOIN image m ON m.seq = i.seq"                                                          \
    " WHERE l.label = ?7 AND l.seq < ?1 AND (?2 IS NULL OR i.source = ?2)"                         \
    " AND (?3 IS NULL OR l.score >= ?3) AND (?4 IS NULL OR l.ts >= ?4)"                            \
    " AND (?5 IS NULL OR l.ts < ?5) ORDER BY l.seq DESC LIMIT ?6"

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
    RSTMT_OB_DEAD,
    RSTMT_OB_COUNTERS,
    RSTMT_OB_OLDEST,
    RSTMT_META_GET,
    RSTMT_AFTER,
    RSTMT__N
};

static const char *const reader_sql[RSTMT__N] = {
    [RSTMT_LIST] = SQL_LIST,
    [RSTMT_LIST_LABEL] = SQL_LIST_LABEL,
    [RSTMT_GET] = "SELECT " INF_COLS " FROM inference i LEFT JOIN image m ON m.seq = i.seq"
                  " WHERE i.guid = ?1",
    [RSTMT_GET_LABELS] = "SELECT label, score FROM label_score WHERE seq = ?1 ORDER BY label",
    [RSTMT_IMAGE] = "SELECT m.mime, m.width, m.height, m.data FROM inference i"
                    " JOIN image m ON m.seq = i.seq WHERE i.guid = ?1",
    [RSTMT_THUMB] = "SELECT m.thumbnail FROM inference i JOIN image m ON m.seq = i.seq"
                    " WHERE i.guid = ?1 AND m.thumbnail IS NOT NULL",
    /* The ts index finds the range; each inference's labels are a prefix lookup by seq. */
    [RSTMT_STATS] = "SELECT l.label, (i.ts / ?3) * ?3 AS bucket, count(*), avg(l.score)"
                    " FROM inference i JOIN label_score l ON l.seq = i.seq"
                    " WHERE i.ts >= ?1 AND i.ts < ?2 GROUP BY bucket, l.label"
                    " ORDER BY bucket, l.label",
    [RSTMT_COUNTERS] = "SELECT rows, bytes, images, outbox FROM counters WHERE id = 1",
    /* Separate sub-selects so each min/max is one index probe. */
    [RSTMT_EDGES] = "SELECT (SELECT min(ts) FROM inference), (SELECT max(ts) FROM inference),"
                    " (SELECT max(seq) FROM inference)",
    [RSTMT_PAGES] = "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
    [RSTMT_FOREACH] = "SELECT " INF_COLS ", m.data FROM inference i LEFT JOIN image m"
                      " ON m.seq = i.seq WHERE i.seq > ?1 ORDER BY i.seq LIMIT ?2",
    [RSTMT_EXPLAIN_LIST] = "EXPLAIN QUERY PLAN " SQL_LIST,
    [RSTMT_EXPLAIN_LABEL] = "EXPLAIN QUERY PLAN " SQL_LIST_LABEL,
    /* The drain: a range scan of the pending index in seq order (no sort, no COUNT), each row
     * then one primary-key probe into inference and image. CROSS JOIN pins that loop order. */
    [RSTMT_OB_FETCH] = "SELECT " INF_COLS ", m.data FROM outbox o INDEXED BY outbox_pending"
                       " CROSS JOIN inference i ON i.seq = o.seq LEFT JOIN image m ON m.seq = o.seq"
                       " WHERE o.state = 0 AND o.seq > ?1 ORDER BY o.seq LIMIT ?2",
    [RSTMT_OB_DEAD] = "SELECT " INF_COLS " FROM outbox o INDEXED BY outbox_dead"
                      " CROSS JOIN inference i ON i.seq = o.seq LEFT JOIN image m ON m.seq = o.seq"
                      " WHERE o.state = 1 AND o.seq < ?1 ORDER BY o.seq DESC LIMIT ?2",
    [RSTMT_OB_COUNTERS] = "SELECT outbox, outbox_bytes, outbox_dead FROM counters WHERE id = 1",
    /* The live stream's catch-up: a primary-key range, oldest first. */
    [RSTMT_AFTER] = "SELECT " INF_COLS " FROM inference i LEFT JOIN image m ON m.seq = i.seq"
                    " WHERE i.seq > ?1 ORDER BY i.seq LIMIT ?2",
    [RSTMT_OB_OLDEST] = "SELECT i.ts FROM outbox o INDEXED BY outbox_pending"
                        " CROSS JOIN inference i ON i.seq = o.seq WHERE o.state = 0"
                        " ORDER BY o.seq LIMIT 1",
    [RSTMT_META_GET] = "SELECT value FROM meta WHERE key = ?1",
};

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
    inference *inf;    /* JOB_PUT: owned until the job is freed */
    bool keep_on_busy; /* JOB_PUT offered: on ER_BUSY inf goes back to the caller */
    char *guid;        /* JOB_DELETE / JOB_THUMB: owned copy; JOB_META: the key */
    char *text;        /* JOB_META: the value; JOB_FAIL: the reason (owned copies, may be NULL) */
    uint8_t *data;     /* JOB_THUMB: owned copy */
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
    sqlite3 *db;
    sqlite3_stmt *st[RSTMT__N];
} reader;

typedef struct subscriber {
    store_commit_fn fn;
    void *arg;
} subscriber;

struct store {
    char *path;
    bool sync_full;
    bool outbox;
    int64_t max_rows, max_bytes, max_age_ms;
    int batch_max;
    int64_t ob_max_rows, ob_max_bytes;
    bool ob_reject_new;
    int max_attempts;
    /* publish policy: set under mu before traffic, read by the writer (which takes mu for every
     * batch, so it sees the latest) */
    store_policy_fn policy_fn;
    void *policy_arg;

    /* writer side: the connection and statements belong to the writer thread */
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
    atomic_llong commits, puts, duplicates, put_errors, retention_deleted;
    atomic_llong ob_dropped, ob_rejected; /* outbox full, since start */

    /* retention schedule: writer thread only */
    int64_t ret_last_ms;
    int64_t ret_puts;
    bool ret_more;                    /* the last pass stopped early: run again soon */
    bool ret_in_pass;                 /* a pass is under way; the fields below are its cursor */
    bool ret_age_done, ret_size_done; /* phases of the current pass */
    int64_t ret_cutoff, ret_cur_seq;
};

/* ---- small helpers ---- */

/* SQLITE_FULL, or an I/O error whose cause was ENOSPC, is "disk full": the caller answers 507
 * and the next batch tries again. */
static er_rc map_sqlite(sqlite3 *db, int rc)
{
    int primary = rc & 0xff;
    if (primary == SQLITE_FULL) return ER_FULL;
    if (primary == SQLITE_IOERR && sqlite3_system_errno(db) == ENOSPC) return ER_FULL;
    if (primary == SQLITE_NOMEM) return ER_NOMEM;
    /* another process (an `ei-relay import` on the live database) held the lock past the busy
     * timeout: the request may simply be retried */
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return ER_BUSY;
    return ER_DB;
}

static er_rc db_error(sqlite3 *db, int rc, const char *what)
{
    log_error("store", "%s: %s (%s)", what, sqlite3_errmsg(db), sqlite3_errstr(rc));
    return map_sqlite(db, rc);
}

static void stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Steps a statement that returns no rows we need, then resets it; returns the step code. */
static int step_once(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    stmt_done(st);
    return rc;
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static char *col_strdup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

static er_rc mkdir_p(const char *file, er_err *err)
{
    er_rc rc = ER_OK;
    char *dir = strdup(file);
    if (!dir) return er_fail(err, ER_NOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) goto done; /* current directory or "/" */
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
                rc = er_fail(err, ER_IO, "cannot create database directory %s: %s", dir,
                             strerror(errno));
                goto done;
            }
            if (end) break;
            *p = '/';
        }
    }
done:
    free(dir);
    return rc;
}

/* ---- connections ---- */

/* Opens one connection with the pragmas every connection gets. */
static er_rc conn_open(store *s, bool writer, sqlite3 **out, er_err *err)
{
    sqlite3 *db = NULL;
    char *errmsg = NULL;
    char sql[320];
    er_rc rc = ER_OK;
    int src = sqlite3_open_v2(
        s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        rc = er_fail(err, ER_DB, "cannot open database %s: %s", s->path,
                     db ? sqlite3_errmsg(db) : sqlite3_errstr(src));
        goto fail;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    /* journal_mode is checked separately below: it answers the mode it ended up in. */
    snprintf(sql, sizeof sql,
             "PRAGMA synchronous=%s; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=%d;"
             " PRAGMA temp_store=MEMORY;"
             " PRAGMA cache_size=%d;%s",
             s->sync_full ? "FULL" : "NORMAL", BUSY_TIMEOUT_MS, writer ? -4096 : -1024,
             writer ? WRITER_PRAGMAS : "");
    if (sqlite3_exec(db, sql, NULL, NULL, &errmsg) != SQLITE_OK) {
        rc =
            er_fail(err, ER_DB, "cannot configure database %s: %s", s->path, errmsg ? errmsg : "?");
        goto fail;
    }
    *out = db;
    db = NULL;
fail:
    sqlite3_free(errmsg);
    if (db) sqlite3_close(db);
    return rc;
}

static er_rc set_wal(sqlite3 *db, const char *path, er_err *err)
{
    sqlite3_stmt *st = NULL;
    er_rc rc = ER_OK;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = er_fail(err, ER_DB, "cannot set WAL mode on %s: %s", path, sqlite3_errmsg(db));
        goto fail;
    }
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    if (!mode || strcmp(mode, "wal") != 0) {
        rc = er_fail(err, ER_DB, "database %s refused WAL mode (got %s)", path, mode ? mode : "?");
        goto fail;
    }
fail:
    sqlite3_finalize(st);
    return rc;
}

static er_rc pragma_int(sqlite3 *db, const char *sql, int64_t *out, er_err *err)
{
    sqlite3_stmt *st = NULL;
    er_rc rc = ER_OK;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        rc = er_fail(err, ER_DB, "%s: %s", sql, sqlite3_errmsg(db));
        goto fail;
    }
    *out = sqlite3_column_int64(st, 0);
fail:
    sqlite3_finalize(st);
    return rc;
}

static size_t migrations_count(void)
{
    return store_migrations_count;
}

static const store_migration *migration_at(size_t i)
{
    return &store_migrations[i];
}

/* Applies every embedded migration newer than user_version, each in its own transaction
 * together with the user_version bump; refuses a database from a newer binary. */
static er_rc migrate(store *s, er_err *err)
{
    sqlite3 *db = s->wdb;
    char *errmsg = NULL;
    int64_t have = 0;
    int known = 0;
    er_rc rc = pragma_int(db, "PRAGMA user_version", &have, err);
    if (rc) goto fail;
    for (size_t i = 0; i < migrations_count(); i++) {
        if (migration_at(i)->version <= known) {
            rc = er_fail(err, ER_INTERNAL, "migration %s is out of order", migration_at(i)->name);
            goto fail;
        }
        known = migration_at(i)->version;
    }
    if (have > known) {
        rc = er_fail(err, ER_DB,
                     "database %s has schema version %" PRId64
                     ", newer than this ei-relay knows (%d); refusing to open it",
                     s->path, have, known);
        goto fail;
    }
    if (have == 0) {
        /* Must precede the first CREATE TABLE to take effect. */
        if (sqlite3_exec(db, "PRAGMA auto_vacuum=INCREMENTAL", NULL, NULL, &errmsg) != SQLITE_OK) {
            rc = er_fail(err, ER_DB, "cannot set auto_vacuum: %s", errmsg ? errmsg : "?");
            goto fail;
        }
    }
    rc = set_wal(db, s->path, err);
    if (rc) goto fail;
    for (size_t i = 0; i < migrations_count(); i++) {
        const store_migration *m = migration_at(i);
        char bump[64];
        if (m->version <= have) continue;
        snprintf(bump, sizeof bump, "PRAGMA user_version=%d", m->version);
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &errmsg) != SQLITE_OK ||
            sqlite3_exec(db, m->sql, NULL, NULL, &errmsg) != SQLITE_OK ||
            sqlite3_exec(db, bump, NULL, NULL, &errmsg) != SQLITE_OK ||
            sqlite3_exec(db, "COMMIT", NULL, NULL, &errmsg) != SQLITE_OK) {
            rc = er_fail(err, ER_DB, "migration %s failed: %s", m->name, errmsg ? errmsg : "?");
            if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
        log_info("store", "applied migration %s", m->name);
    }
fail:
    sqlite3_free(errmsg);
    return rc;
}

static er_rc prepare_all(sqlite3 *db, const char *const *sql, sqlite3_stmt **st, int n, er_err *err)
{
    er_rc rc = ER_OK;
    for (int i = 0; i < n; i++) {
        if (sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i], NULL) !=
            SQLITE_OK) {
            rc = er_fail(err, ER_DB, "cannot prepare \"%.60s\": %s", sql[i], sqlite3_errmsg(db));
            goto fail;
        }
    }
fail:
    return rc;
}

static void close_conn(sqlite3 *db, sqlite3_stmt **st, int n)
{
    for (int i = 0; i < n; i++)
        sqlite3_finalize(st[i]);
    if (db && sqlite3_close(db) != SQLITE_OK)
        log_error("store", "closing connection: %s", sqlite3_errmsg(db));
}

/* ---- reader pool ---- */

static reader *reader_get(store *s)
{
    pthread_mutex_lock(&s->pool_mu);
    while (s->n_free == 0)
        pthread_cond_wait(&s->pool_cv, &s->pool_mu);
    reader *r = &s->readers[s->free_idx[--s->n_free]];
    pthread_mutex_unlock(&s->pool_mu);
    return r;
}

static void reader_put(store *s, reader *r)
{
    pthread_mutex_lock(&s->pool_mu);
    s->free_idx[s->n_free++] = (int)(r - s->readers);
    pthread_cond_signal(&s->pool_cv);
    pthread_mutex_unlock(&s->pool_mu);
}

/* ---- the writer: job execution ---- */

static er_rc set_publish(store *s, int64_t seq, inference_publish p)
{
    sqlite3_stmt *st = s->wst[WSTMT_SET_PUBLISH];
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int(st, 2, (int)p);
    int src = step_once(st);
    return src == SQLITE_DONE ? ER_OK : db_error(s->wdb, src, "recording publish state");
}

static er_rc outbox_delete(store *s, int64_t seq)
{
    sqlite3_stmt *st = s->wst[WSTMT_OB_DELETE];
    sqlite3_bind_int64(st, 1, seq);
    int src = step_once(st);
    return src == SQLITE_DONE ? ER_OK : db_error(s->wdb, src, "deleting outbox row");
}

static bool outbox_fits(const store *s, int64_t rows, int64_t bytes, int64_t add)
{
    return (s->ob_max_rows <= 0 || rows + 1 <= s->ob_max_rows) &&
           (s->ob_max_bytes <= 0 || bytes + add <= s->ob_max_bytes);
}

/* Before a new pending row of `add` bytes: if the outbox bounds would be exceeded, either
 * refuse the new row (reject_new, or a row larger than the whole byte bound) or drop the
 * oldest pending rows until it fits. Changes *decision to DROPPED when the new row is refused;
 * counts into j->dropped / j->rejected. The counters row is one primary-key read per put. */
#define DROP_CHUNK 64
static er_rc outbox_make_room(store *s, job *j, int64_t add, inference_publish *decision)
{
    sqlite3_stmt *st = s->wst[WSTMT_OB_COUNTERS];
    int64_t rows = 0, bytes = 0;
    er_rc rc = ER_OK;
    int src;
    if (s->ob_max_rows <= 0 && s->ob_max_bytes <= 0) goto fail;
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        rows = sqlite3_column_int64(st, 0);
        bytes = sqlite3_column_int64(st, 1);
    }
    stmt_done(st);
    if (src != SQLITE_ROW) {
        rc = db_error(s->wdb, src, "reading outbox counters");
        goto fail;
    }
    if (outbox_fits(s, rows, bytes, add)) goto fail;
    if (s->ob_reject_new || (s->ob_max_bytes > 0 && add > s->ob_max_bytes)) {
        *decision = INFERENCE_PUBLISH_DROPPED;
        j->rejected++;
        goto fail;
    }
    while (!outbox_fits(s, rows, bytes, add) && rows > 0) {
        int64_t seqs[DROP_CHUNK], sizes[DROP_CHUNK];
        int n = 0;
        st = s->wst[WSTMT_OB_OLDEST];
        sqlite3_bind_int(st, 1, DROP_CHUNK);
        while (n < DROP_CHUNK && (src = sqlite3_step(st)) == SQLITE_ROW) {
            seqs[n] = sqlite3_column_int64(st, 0);
            sizes[n++] = sqlite3_column_int64(st, 1);
        }
        stmt_done(st);
        if (src != SQLITE_ROW && src != SQLITE_DONE) {
            rc = db_error(s->wdb, src, "finding the oldest outbox rows");
            goto fail;
        }
        if (n == 0) break; /* the counters say rows, the table has none: stop, don't spin */
        for (int i = 0; i < n && !outbox_fits(s, rows, bytes, add); i++) {
            if ((rc = outbox_delete(s, seqs[i]))) goto fail;
            if ((rc = set_publish(s, seqs[i], INFERENCE_PUBLISH_DROPPED))) goto fail;
            rows--;
            bytes -= sizes[i];
            j->dropped++;
        }
    }
    if (!outbox_fits(s, rows, bytes, add)) {
        *decision = INFERENCE_PUBLISH_DROPPED;
        j->rejected++;
    }
fail:
    return rc;
}

static er_rc exec_put(store *s, job *j, int64_t now)
{
    sqlite3 *db = s->wdb;
    inference *inf = j->inf;
    sqlite3_stmt *st = s->wst[WSTMT_FIND_GUID];
    inference_publish decision = INFERENCE_PUBLISH_NONE;
    int64_t footprint = (int64_t)inference_footprint(inf);
    er_rc rc = ER_OK;
    int src;
    snprintf(j->res.guid, sizeof j->res.guid, "%s", inf->guid);
    sqlite3_bind_text(st, 1, inf->guid, -1, SQLITE_STATIC);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        j->res.duplicate = true;
        j->res.seq = sqlite3_column_int64(st, 0);
        j->res.ts = sqlite3_column_int64(st, 1);
        stmt_done(st);
        goto fail; /* rc stays ER_OK: answered with the stored row */
    }
    stmt_done(st);
    if (src != SQLITE_DONE) {
        rc = db_error(db, src, "looking up guid");
        goto fail;
    }
    /* The decision comes before the insert so it is recorded on the row in the same txn. */
    if (s->outbox) {
        if (!j->decided) {
            j->decision =
                s->policy_fn ? s->policy_fn(s->policy_arg, inf) : INFERENCE_PUBLISH_PENDING;
            j->decided = true;
        }
        decision = j->decision;
        if (decision == INFERENCE_PUBLISH_PENDING) {
            rc = outbox_make_room(s, j, footprint, &decision);
            if (rc) goto fail;
        }
    }

    st = s->wst[WSTMT_INS_INFERENCE];
    sqlite3_bind_text(st, 1, inf->guid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, inf->ts);
    sqlite3_bind_int64(st, 3, now);
    bind_text(st, 4, inf->device);
    bind_text(st, 5, inf->source);
    sqlite3_bind_text(st, 6, inference_kind_name(inf->kind), -1, SQLITE_STATIC);
    bind_text(st, 7, inf->result_json);
    bind_text(st, 8, inf->timing_json);
    bind_text(st, 9, inf->info_json);
    bind_text(st, 10, inf->top_label);
    sqlite3_bind_double(st, 11, inf->top_score);
    if (inf->has_anomaly)
        sqlite3_bind_double(st, 12, inf->anomaly);
    else
        sqlite3_bind_null(st, 12);
    sqlite3_bind_int(st, 13, inf->model_width);
    sqlite3_bind_int(st, 14, inf->model_height);
    sqlite3_bind_int(st, 15, inf->image.data ? 1 : 0);
    sqlite3_bind_int64(st, 16, footprint);
    sqlite3_bind_int(st, 17, (int)decision);
    src = step_once(st);
    if (src != SQLITE_DONE) {
        rc = db_error(db, src, "inserting inference");
        goto fail;
    }
    int64_t seq = sqlite3_last_insert_rowid(db);

    if (inf->image.data) {
        st = s->wst[WSTMT_INS_IMAGE];
        sqlite3_bind_int64(st, 1, seq);
        sqlite3_bind_text(st, 2, inf->image.mime, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, inf->image.width);
        sqlite3_bind_int(st, 4, inf->image.height);
        sqlite3_bind_blob64(st, 5, inf->image.data, inf->image.len, SQLITE_STATIC);
        src = step_once(st);
        if (src != SQLITE_DONE) {
            rc = db_error(db, src, "inserting image");
            goto fail;
        }
    }
    st = s->wst[WSTMT_INS_LABEL];
    for (size_t i = 0; i < inf->n_labels; i++) {
        bind_text(st, 1, inf->labels[i].label);
        sqlite3_bind_int64(st, 2, seq);
        sqlite3_bind_int64(st, 3, inf->ts);
        sqlite3_bind_double(st, 4, inf->labels[i].score);
        src = step_once(st);
        if (src != SQLITE_DONE) {
            rc = db_error(db, src, "inserting label score");
            goto fail;
        }
    }
    if (decision == INFERENCE_PUBLISH_PENDING) {
        st = s->wst[WSTMT_INS_OUTBOX];
        sqlite3_bind_int64(st, 1, seq);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_int64(st, 3, footprint);
        src = step_once(st);
        if (src != SQLITE_DONE) {
            rc = db_error(db, src, "inserting outbox row");
            goto fail;
        }
    }
    if (j->dropped || j->rejected) {
        st = s->wst[WSTMT_OB_TALLY];
        sqlite3_bind_int64(st, 1, j->dropped);
        sqlite3_bind_int64(st, 2, j->rejected);
        src = step_once(st);
        if (src != SQLITE_DONE) {
            rc = db_error(db, src, "counting outbox drops");
            goto fail;
        }
    }
    inf->publish = decision;
    j->res.seq = seq;
    j->res.ts = inf->ts;
fail:
    if (rc) log_error("store", "put %s failed: %s", inf->guid, er_rc_name(rc));
    return rc;
}

static er_rc exec_guid_change(store *s, job *j)
{
    sqlite3_stmt *st = s->wst[j->kind == JOB_DELETE ? WSTMT_DEL_GUID : WSTMT_SET_THUMB];
    er_rc rc = ER_OK;
    sqlite3_bind_text(st, 1, j->guid, -1, SQLITE_STATIC);
    if (j->kind == JOB_THUMB) sqlite3_bind_blob64(st, 2, j->data, j->len, SQLITE_STATIC);
    int src = step_once(st);
    if (src != SQLITE_DONE) {
        rc = db_error(s->wdb, src, j->kind == JOB_DELETE ? "deleting" : "caching thumbnail");
        goto fail;
    }
    if (sqlite3_changes(s->wdb) == 0) rc = ER_NOTFOUND;
fail:
    return rc;
}

/* Broker acknowledged: the outbox rows go, the inferences say PUBLISHED (also for a row the
 * outbox dropped meanwhile: the broker has it, so that is the truth). */
static er_rc exec_ack(store *s, job *j)
{
    er_rc rc = ER_OK;
    for (size_t i = 0; i < j->n_seqs; i++) {
        if ((rc = outbox_delete(s, j->seqs[i]))) goto fail;
        if ((rc = set_publish(s, j->seqs[i], INFERENCE_PUBLISH_PUBLISHED))) goto fail;
    }
fail:
    return rc;
}

static er_rc exec_fail(store *s, job *j, int64_t now)
{
    sqlite3_stmt *st = s->wst[WSTMT_OB_FAIL];
    int64_t attempts = 0;
    er_rc rc = ER_OK;
    sqlite3_bind_int64(st, 1, j->value);
    bind_text(st, 2, j->text);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) attempts = sqlite3_column_int64(st, 0);
    if (src == SQLITE_ROW) src = sqlite3_step(st);
    stmt_done(st);
    if (src != SQLITE_DONE) {
        rc = db_error(s->wdb, src, "recording a failed publish");
        goto fail;
    }
    if (attempts == 0) { /* no pending row with that seq (acked, dropped or already dead) */
        rc = ER_NOTFOUND;
        goto fail;
    }
    if (j->permanent || attempts >= s->max_attempts) {
        st = s->wst[WSTMT_OB_KILL];
        sqlite3_bind_int64(st, 1, j->value);
        sqlite3_bind_int64(st, 2, now);
        src = step_once(st);
        if (src != SQLITE_DONE) {
            rc = db_error(s->wdb, src, "dead-lettering");
            goto fail;
        }
        if ((rc = set_publish(s, j->value, INFERENCE_PUBLISH_DEAD))) goto fail;
        j->res.seq = 1;
    }
fail:
    return rc;
}

static er_rc exec_meta(store *s, job *j)
{
    sqlite3_stmt *st = s->wst[WSTMT_META_SET];
    sqlite3_bind_text(st, 1, j->guid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, j->text, -1, SQLITE_STATIC);
    int src = step_once(st);
    return src == SQLITE_DONE ? ER_OK : db_error(s->wdb, src, "writing meta");
}

static er_rc exec_data_job(store *s, job *j, int64_t now)
{
    switch (j->kind) {
    case JOB_PUT:
        return exec_put(s, j, now);
    case JOB_DELETE:
    case JOB_THUMB:
        return exec_guid_change(s, j);
    case JOB_ACK:
        return exec_ack(s, j);
    case JOB_FAIL:
        return exec_fail(s, j, now);
    case JOB_META:
        return exec_meta(s, j);
    default:
        return ER_INTERNAL;
    }
}

static bool is_data_job(const job *j)
{
    return j->kind != JOB_RETAIN && j->kind != JOB_MAX_PAGES && j->kind != JOB_CLEAR;
}

/* A job that failed without writing anything: nothing to roll back for it. */
static bool failed_clean(const job *j, er_rc rc)
{
    return rc == ER_NOTFOUND && j->kind != JOB_PUT;
}

/* Runs one job inside its own savepoint, so a failing job rolls back alone. Returns the job's
 * rc; *fatal is set when the whole transaction is lost (disk full, SQLite rolled back). */
static er_rc exec_in_savepoint(store *s, job *j, int64_t now, bool *fatal)
{
    er_rc rc;
    int src = step_once(s->wst[WSTMT_SAVEPOINT]);
    if (src != SQLITE_DONE) {
        *fatal = true;
        rc = db_error(s->wdb, src, "savepoint");
        goto fail;
    }
    rc = exec_data_job(s, j, now);
    if (rc == ER_FULL || sqlite3_get_autocommit(s->wdb)) {
        *fatal = true;
        goto fail;
    }
    if (rc) step_once(s->wst[WSTMT_ROLLBACK_TO]);
    src = step_once(s->wst[WSTMT_RELEASE]);
    if (src != SQLITE_DONE) {
        *fatal = true;
        rc = db_error(s->wdb, src, "release savepoint");
    }
fail:
    return rc;
}

static er_rc exec_max_pages(store *s, int64_t pages)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count=%" PRId64, pages);
    int src = sqlite3_exec(s->wdb, sql, NULL, NULL, NULL);
    return src == SQLITE_OK ? ER_OK : db_error(s->wdb, src, "max_page_count");
}

/* ---- retention ---- */

static er_rc ret_counters(store *s, int64_t *rows, int64_t *bytes)
{
    sqlite3_stmt *st = s->wst[WSTMT_COUNTERS];
    er_rc rc = ER_OK;
    int src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = db_error(s->wdb, src, "reading counters");
        goto fail;
    }
    *rows = sqlite3_column_int64(st, 0);
    *bytes = sqlite3_column_int64(st, 1);
fail:
    stmt_done(st);
    return rc;
}

static er_rc ret_delete(store *s, int64_t seq, int64_t *deleted)
{
    sqlite3_stmt *st = s->wst[WSTMT_DEL_SEQ];
    sqlite3_bind_int64(st, 1, seq);
    int src = step_once(st);
    if (src != SQLITE_DONE) return db_error(s->wdb, src, "retention delete");
    *deleted += sqlite3_changes(s->wdb);
    return ER_OK;
}

/* The end of a retention scan: a scan error fails the chunk, else the picked rows go. */
static er_rc ret_delete_picked(store *s, int src, const int64_t *seqs, int n, int64_t *deleted)
{
    er_rc rc = ER_OK;
    if (src != SQLITE_DONE && src != SQLITE_ROW) return db_error(s->wdb, src, "retention scan");
    for (int i = 0; i < n && !rc; i++)
        rc = ret_delete(s, seqs[i], deleted);
    return rc;
}

/* One chunk of age retention: the oldest rows by seq while their receive time is before the
 * cutoff; *reached is set at the first row young enough (or at the end of the table). */
static er_rc ret_age_chunk(store *s, int64_t cutoff, int64_t *cur_seq, int *scanned,
                           int64_t *deleted, bool *reached)
{
    sqlite3_stmt *st = s->wst[WSTMT_RET_AGE];
    int64_t seqs[RET_CHUNK];
    int n = 0, got = 0, src;
    er_rc rc = ER_OK;
    *reached = false;
    sqlite3_bind_int64(st, 1, *cur_seq);
    sqlite3_bind_int(st, 2, RET_CHUNK);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int64(st, 1) >= cutoff) {
            *reached = true;
            break;
        }
        got++;
        *cur_seq = sqlite3_column_int64(st, 0);
        if (!sqlite3_column_int(st, 2)) seqs[n++] = *cur_seq;
    }
    if (src == SQLITE_DONE) *reached = true;
    stmt_done(st);
    rc = ret_delete_picked(s, src, seqs, n, deleted);
    if (rc) goto fail;
    *scanned = got;
fail:
    return rc;
}

/* One chunk of row/byte retention: oldest seq first, until both limits hold. */
static er_rc ret_size_chunk(store *s, int64_t *cur_seq, int *scanned, int64_t *deleted,
                            bool *satisfied)
{
    sqlite3_stmt *st = s->wst[WSTMT_RET_OLD];
    int64_t seqs[RET_CHUNK], rows = 0, bytes = 0;
    int n = 0, got = 0, src;
    er_rc rc = ret_counters(s, &rows, &bytes);
    if (rc) goto fail;
    *satisfied = false;
    sqlite3_bind_int64(st, 1, *cur_seq);
    sqlite3_bind_int(st, 2, RET_CHUNK);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        bool over =
            (s->max_rows > 0 && rows > s->max_rows) || (s->max_bytes > 0 && bytes > s->max_bytes);
        if (!over) {
            *satisfied = true;
            break;
        }
        got++;
        *cur_seq = sqlite3_column_int64(st, 0);
        if (sqlite3_column_int(st, 2)) continue; /* still waiting for the forwarder */
        seqs[n++] = *cur_seq;
        rows--;
        bytes -= sqlite3_column_int64(st, 1);
    }
    if (src == SQLITE_DONE && got == 0) *satisfied = true; /* nothing more to examine */
    stmt_done(st);
    rc = ret_delete_picked(s, src, seqs, n, deleted);
    if (rc) goto fail;
    *scanned = got;
fail:
    return rc;
}

static bool puts_waiting(store *s)
{
    pthread_mutex_lock(&s->mu);
    bool waiting = s->q_head != NULL;
    pthread_mutex_unlock(&s->mu);
    return waiting;
}

/* Deletes old rows until the limits hold. A pass is resumable: it stops (setting *more) when
 * puts are waiting or its budget is used, keeps its cursors in the store, and the next pass
 * goes on from there, so a long stretch of outbox-protected rows is not rescanned every time.
 * Each chunk is its own transaction, so queued puts wait at most one chunk. */
static er_rc retention_pass(store *s, bool yield, bool *more)
{
    int64_t deleted = 0, deleted_total = 0; /* in this chunk / this pass */
    int scanned_total = 0, scanned = 0, chunks = 0;
    bool satisfied = false;
    er_rc rc = ER_OK;
    *more = false;
    if (!s->ret_in_pass) {
        s->ret_in_pass = true;
        s->ret_age_done = s->max_age_ms <= 0;
        s->ret_size_done = s->max_rows <= 0 && s->max_bytes <= 0;
        s->ret_cutoff = util_now_ms() - s->max_age_ms;
        s->ret_cur_seq = 0;
    }
    while (!s->ret_age_done || !s->ret_size_done) {
        if (deleted_total >= RET_DELETE_BUDGET || scanned_total >= RET_SCAN_BUDGET ||
            (yield && chunks > 0 && puts_waiting(s))) {
            *more = scanned_total < RET_SCAN_BUDGET; /* else resume at the next tick */
            break;
        }
        int src = step_once(s->wst[WSTMT_BEGIN]);
        if (src != SQLITE_DONE) {
            rc = db_error(s->wdb, src, "retention begin");
            goto fail;
        }
        if (!s->ret_age_done) {
            bool reached = false;
            rc = ret_age_chunk(s, s->ret_cutoff, &s->ret_cur_seq, &scanned, &deleted, &reached);
            if (!rc && reached) {
                s->ret_age_done = true;
                s->ret_cur_seq = 0; /* the size phase starts at the oldest seq */
            }
        } else {
            rc = ret_size_chunk(s, &s->ret_cur_seq, &scanned, &deleted, &satisfied);
            if (!rc && (satisfied || scanned < RET_CHUNK)) s->ret_size_done = true;
        }
        if (!rc) {
            src = step_once(s->wst[WSTMT_COMMIT]);
            if (src != SQLITE_DONE) rc = db_error(s->wdb, src, "retention commit");
        }
        if (rc) {
            if (!sqlite3_get_autocommit(s->wdb)) step_once(s->wst[WSTMT_ROLLBACK]);
            goto fail;
        }
        atomic_fetch_add(&s->retention_deleted, deleted);
        deleted_total += deleted;
        deleted = 0;
        scanned_total += scanned;
        chunks++;
    }
    if (s->ret_age_done && s->ret_size_done) s->ret_in_pass = false;
    if (deleted_total > 0) {
        /* Give freed pages back to the file system (auto_vacuum=INCREMENTAL). */
        int src = step_once(s->wst[WSTMT_VACUUM]);
        if (src != SQLITE_DONE) rc = db_error(s->wdb, src, "incremental vacuum");
    }
fail:
    if (rc) s->ret_in_pass = false; /* start over next time */
    return rc;
}

/* full: run passes until the limits hold (store_retain); else one yielding pass. */
static er_rc run_retention(store *s, bool full)
{
    bool more = false;
    er_rc rc;
    do
        rc = retention_pass(s, !full, &more);
    while (!rc && full && (more || s->ret_in_pass));
    s->ret_more = more;
    s->ret_last_ms = util_mono_ms();
    s->ret_puts = 0;
    return rc;
}

/* clear_cache: every inference without a pending outbox row goes, one chunk per transaction
 * (queued puts wait at most one chunk each time), then the freed pages go back to the file
 * system. Dead letters go too: clearing the cache is what the operator asked for. */
static er_rc run_clear(store *s, int64_t *deleted)
{
    int64_t cursor = 0, seqs[RET_CHUNK];
    int n, got, src;
    er_rc rc = ER_OK;
    *deleted = 0;
    do {
        sqlite3_stmt *st = s->wst[WSTMT_CLEAR_SCAN];
        int64_t chunk_deleted = 0;
        n = got = 0;
        src = step_once(s->wst[WSTMT_BEGIN]);
        if (src != SQLITE_DONE) {
            rc = db_error(s->wdb, src, "clear begin");
            goto fail;
        }
        sqlite3_bind_int64(st, 1, cursor);
        sqlite3_bind_int(st, 2, RET_CHUNK);
        while ((src = sqlite3_step(st)) == SQLITE_ROW) {
            got++;
            cursor = sqlite3_column_int64(st, 0);
            if (!sqlite3_column_int(st, 1)) seqs[n++] = cursor;
        }
        stmt_done(st);
        if (src != SQLITE_DONE) rc = db_error(s->wdb, src, "clear scan");
        for (int i = 0; !rc && i < n; i++)
            rc = ret_delete(s, seqs[i], &chunk_deleted);
        if (!rc) {
            src = step_once(s->wst[WSTMT_COMMIT]);
            if (src != SQLITE_DONE) rc = db_error(s->wdb, src, "clear commit");
        }
        if (rc) {
            if (!sqlite3_get_autocommit(s->wdb)) step_once(s->wst[WSTMT_ROLLBACK]);
            goto fail;
        }
        *deleted += chunk_deleted;
    } while (got == RET_CHUNK);
    s->ret_in_pass = false; /* retention cursors may point into what just went */
    src = step_once(s->wst[WSTMT_VACUUM_ALL]);
    if (src != SQLITE_DONE) rc = db_error(s->wdb, src, "incremental vacuum");
fail:
    return rc;
}

/* When retention should run next: -1 not scheduled, 0 now, else in that many ms. Age limits
 * need a tick even without traffic; size limits only after puts or an unfinished pass. */
static int64_t ret_wait_ms(const store *s)
{
    if (s->max_rows <= 0 && s->max_bytes <= 0 && s->max_age_ms <= 0) return -1;
    if (s->ret_more || s->ret_puts >= RET_EVERY_PUTS) return 0;
    if (s->max_age_ms <= 0 && s->ret_puts == 0 && !s->ret_in_pass) return -1;
    int64_t wait = s->ret_last_ms + RET_INTERVAL_MS - util_mono_ms();
    return wait > 0 ? wait : 0;
}

/* ---- the writer: batches ---- */

static void free_job(job *j)
{
    inference_destroy(j->inf);
    free(j->guid);
    free(j->text);
    free(j->data);
    free(j->seqs);
    free(j);
}

static void run_batch(store *s, job *list)
{
    sqlite3 *db = s->wdb;
    int64_t now = util_now_ms();
    size_t n_data = 0, n_put_ok = 0;
    er_rc batch_rc = ER_OK;
    bool fatal = false;
    job *j;

    for (j = list; j; j = j->next)
        if (is_data_job(j)) n_data++;
    /* The first pass runs the jobs without savepoints (a savepoint per job costs a copy of
     * every page the job touches); if a job fails in a way that may have left writes behind,
     * the transaction is rolled back and the batch runs again with one savepoint per job, so
     * that job fails alone. */
    bool per_job_sp = false;
again:
    if (n_data > 0) {
        bool redo = false;
        int src = step_once(s->wst[WSTMT_BEGIN]);
        if (src != SQLITE_DONE) {
            batch_rc = db_error(db, src, "begin");
            fatal = true;
        }
        for (j = list; j && !fatal && !redo; j = j->next) {
            if (!is_data_job(j)) continue;
            memset(&j->res, 0, sizeof j->res);
            j->dropped = j->rejected = 0;
            if (per_job_sp) {
                j->res.rc = exec_in_savepoint(s, j, now, &fatal);
            } else {
                j->res.rc = exec_data_job(s, j, now);
                if (j->res.rc == ER_FULL || sqlite3_get_autocommit(db))
                    fatal = true;
                else if (j->res.rc && !failed_clean(j, j->res.rc))
                    redo = true;
            }
            if (fatal) batch_rc = j->res.rc ? j->res.rc : ER_DB;
        }
        if (redo) {
            step_once(s->wst[WSTMT_ROLLBACK]);
            if (!sqlite3_get_autocommit(db)) {
                batch_rc = ER_DB;
                fatal = true;
            } else {
                per_job_sp = true;
                goto again;
            }
        }
        if (!fatal) {
            src = step_once(s->wst[WSTMT_COMMIT]);
            if (src != SQLITE_DONE) {
                batch_rc = db_error(db, src, "commit");
                fatal = true;
            }
        }
        if (fatal) {
            if (!sqlite3_get_autocommit(db)) step_once(s->wst[WSTMT_ROLLBACK]);
            log_error("store", "transaction of %zu jobs rolled back: %s", n_data,
                      er_rc_name(batch_rc));
        } else {
            atomic_fetch_add(&s->commits, 1);
        }
    }

    /* Settle every data job's result, then tell its caller, then the subscribers. */
    inference **committed = calloc(n_data ? n_data : 1, sizeof *committed);
    size_t n_committed = 0;
    for (j = list; j; j = j->next) {
        if (!is_data_job(j)) continue;
        if (fatal) {
            j->res.rc = batch_rc;
            j->res.duplicate = false;
            j->res.seq = 0;
        }
        if (j->kind != JOB_PUT) continue;
        if (j->res.rc) {
            atomic_fetch_add(&s->put_errors, 1);
        } else if (j->res.duplicate) {
            atomic_fetch_add(&s->duplicates, 1);
        } else {
            n_put_ok++;
            atomic_fetch_add(&s->ob_dropped, j->dropped);
            atomic_fetch_add(&s->ob_rejected, j->rejected);
            j->inf->seq = j->res.seq;
            if (committed) committed[n_committed++] = j->inf;
        }
    }
    atomic_fetch_add(&s->puts, (long long)n_put_ok);
    s->ret_puts += (int64_t)n_put_ok;
    for (j = list; j; j = j->next)
        if (is_data_job(j) && j->done) j->done(j->arg, &j->res);
    if (n_committed > 0) {
        pthread_mutex_lock(&s->mu);
        size_t n_subs = s->n_subs;
        subscriber subs[MAX_SUBSCRIBERS];
        memcpy(subs, s->subs, n_subs * sizeof subs[0]);
        pthread_mutex_unlock(&s->mu);
        for (size_t i = 0; i < n_subs; i++)
            subs[i].fn(subs[i].arg, committed, n_committed);
    }
    free(committed);

    /* Control jobs run after the commit, outside any transaction. */
    for (j = list; j; j = j->next) {
        if (j->kind == JOB_RETAIN)
            j->res.rc = run_retention(s, true);
        else if (j->kind == JOB_MAX_PAGES)
            j->res.rc = exec_max_pages(s, j->value);
        else if (j->kind == JOB_CLEAR)
            j->res.rc = run_clear(s, &j->res.seq);
        else
            continue;
        if (j->done) j->done(j->arg, &j->res);
    }
    while (list) {
        j = list->next;
        free_job(list);
        list = j;
    }
}

static void deadline_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *writer_main(void *arg)
{
    store *s = arg;
    util_thread_name("eir-writer", NULL);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->q_head && !s->stopping) {
            int64_t wait = ret_wait_ms(s);
            if (wait < 0) {
                pthread_cond_wait(&s->has_work, &s->mu);
                continue;
            }
            if (wait == 0) break;
            struct timespec dl;
            deadline_after(&dl, wait);
            pthread_cond_timedwait(&s->has_work, &s->mu, &dl);
        }
        job *list = s->q_head, *last = NULL;
        size_t n = 0;
        for (job *j = s->q_head; j && n < (size_t)s->batch_max; j = j->next) {
            last = j;
            n++;
            s->q_bytes -= j->cost;
        }
        if (last) {
            s->q_head = last->next;
            if (!s->q_head) s->q_tail = NULL;
            last->next = NULL;
            s->q_len -= n;
            pthread_cond_broadcast(&s->has_room);
        } else {
            list = NULL;
        }
        bool stop = s->stopping && !s->q_head;
        pthread_mutex_unlock(&s->mu);

        if (list) run_batch(s, list);
        if (!stop && ret_wait_ms(s) == 0) run_retention(s, false);
        if (stop) break;
    }
    return NULL;
}

/* Appends a job; waits while the queue is full (except on the writer thread itself, where
 * waiting would deadlock). Frees the job and returns ER_CLOSED when the store is stopping. */
/* Queues j, waiting for room when the queue is full, or, with nowait, failing with ER_BUSY
 * (the HTTP path: a full queue must not stall the server's threads). Takes ownership of j. */
static er_rc enqueue(store *s, job *j, bool nowait)
{
    er_rc rc = ER_OK;
    bool on_writer = s->writer_started && pthread_equal(pthread_self(), s->writer);
    pthread_mutex_lock(&s->mu);
    while (!s->stopping && !on_writer && s->q_len > 0 &&
           (s->q_len >= s->q_max_len || s->q_bytes + j->cost > QUEUE_MAX_BYTES)) {
        if (nowait) {
            rc = ER_BUSY;
            goto fail;
        }
        pthread_cond_wait(&s->has_room, &s->mu);
    }
    if (s->stopping) {
        rc = ER_CLOSED;
        goto fail;
    }
    j->next = NULL;
    if (s->q_tail)
        s->q_tail->next = j;
    else
        s->q_head = j;
    s->q_tail = j;
    s->q_len++;
    s->q_bytes += j->cost;
    pthread_cond_signal(&s->has_work);
fail:
    pthread_mutex_unlock(&s->mu);
    if (rc == ER_BUSY && j->keep_on_busy) j->inf = NULL;
    if (rc) free_job(j);
    return rc;
}

/* ---- waiting for a job ---- */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    store_put_result res;
} waiter;

static void waiter_init(waiter *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

static void waiter_done(void *arg, const store_put_result *res)
{
    waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->res = *res;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void waiter_wait(waiter *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

/* Queues a job and waits for its result (copied to *res if not NULL). Takes ownership of j. */
static er_rc run_sync_res(store *s, job *j, store_put_result *res)
{
    waiter w;
    waiter_init(&w);
    j->done = waiter_done;
    j->arg = &w;
    er_rc rc = enqueue(s, j, false);
    if (rc) {
        w.done = true;
        w.res.rc = rc;
    }
    waiter_wait(&w);
    if (res) *res = w.res;
    return w.res.rc;
}

static er_rc run_sync(store *s, job *j)
{
    return run_sync_res(s, j, NULL);
}

/* ---- public: lifecycle ---- */

er_rc store_create(const store_opts *opts, store **out, er_err *err)
{
    store *s = NULL;
    er_rc rc = ER_OK;
    pthread_condattr_t ca;
    *out = NULL;
    if (!opts || !opts->path || !opts->path[0]) {
        rc = er_fail(err, ER_CONFIG, "store: no database path");
        goto fail;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        rc = er_fail(err, ER_NOMEM, "out of memory");
        goto fail;
    }
    /* Synchronisation objects first, so store_destroy can clean up from any later failure. */
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->has_work, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&s->has_room, NULL);
    pthread_mutex_init(&s->pool_mu, NULL);
    pthread_cond_init(&s->pool_cv, NULL);
    s->path = strdup(opts->path);
    if (!s->path) {
        rc = er_fail(err, ER_NOMEM, "out of memory");
        goto fail;
    }
    s->sync_full = opts->sync_full;
    s->outbox = opts->outbox;
    s->max_rows = opts->max_rows;
    s->max_bytes = opts->max_bytes;
    s->max_age_ms = opts->max_age_ms;
    s->ob_max_rows = opts->outbox_max_rows;
    s->ob_max_bytes = opts->outbox_max_bytes;
    s->ob_reject_new = opts->outbox_reject_new;
    s->max_attempts = opts->max_attempts > 0 ? opts->max_attempts : DEFAULT_MAX_ATTEMPTS;
    s->batch_max = opts->batch_max > 0 ? opts->batch_max : DEFAULT_BATCH;
    s->q_max_len = (size_t)s->batch_max * QUEUE_JOBS_PER_BATCH;
    s->n_readers = opts->readers > 0 ? opts->readers : DEFAULT_READERS;
    s->ret_more = true; /* one pass at start: limits may have been lowered since last run */
    s->ret_last_ms = util_mono_ms();

    rc = mkdir_p(s->path, err);
    if (rc) goto fail;
    rc = conn_open(s, true, &s->wdb, err);
    if (rc) goto fail;
    rc = migrate(s, err);
    if (rc) goto fail;
    rc = prepare_all(s->wdb, writer_sql, s->wst, WSTMT__N, err);
    if (rc) goto fail;

    s->readers = calloc((size_t)s->n_readers, sizeof *s->readers);
    s->free_idx = calloc((size_t)s->n_readers, sizeof *s->free_idx);
    if (!s->readers || !s->free_idx) {
        rc = er_fail(err, ER_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < s->n_readers; i++) {
        reader *r = &s->readers[i];
        rc = conn_open(s, false, &r->db, err);
        if (rc) goto fail;
        rc = set_wal(r->db, s->path, err);
        if (rc) goto fail;
        rc = prepare_all(r->db, reader_sql, r->st, RSTMT__N, err);
        if (rc) goto fail;
        s->free_idx[s->n_free++] = i;
    }
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        rc = er_fail(err, ER_INTERNAL, "cannot start the store writer thread");
        goto fail;
    }
    s->writer_started = true;
    *out = s;
    s = NULL;
fail:
    if (s) store_destroy(s);
    return rc;
}

void store_destroy(store *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->has_work);
    pthread_cond_broadcast(&s->has_room);
    pthread_mutex_unlock(&s->mu);
    if (s->writer_started) pthread_join(s->writer, NULL);
    for (int i = 0; s->readers && i < s->n_readers; i++)
        close_conn(s->readers[i].db, s->readers[i].st, RSTMT__N);
    close_conn(s->wdb, s->wst, WSTMT__N);
    free(s->readers);
    free(s->free_idx);
    pthread_cond_destroy(&s->has_work);
    pthread_cond_destroy(&s->has_room);
    pthread_cond_destroy(&s->pool_cv);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->pool_mu);
    free(s->path);
    free(s);
}

/* ---- public: writes ---- */

static er_rc put_async(store *s, inference *inf, store_done_fn done, void *arg, bool nowait,
                       bool keep)
{
    job *j = calloc(1, sizeof *j);
    if (!j) {
        inference_destroy(inf);
        return ER_NOMEM;
    }
    j->kind = JOB_PUT;
    j->inf = inf;
    j->keep_on_busy = keep;
    j->cost = inference_footprint(inf); /* JSON held in memory counts as much as images */
    j->done = done;
    j->arg = arg;
    return enqueue(s, j, nowait);
}

er_rc store_put_async(store *s, inference *inf, store_done_fn done, void *arg)
{
    return put_async(s, inf, done, arg, false, false);
}

er_rc store_try_put_async(store *s, inference *inf, store_done_fn done, void *arg)
{
    return put_async(s, inf, done, arg, true, false);
}

er_rc store_offer_async(store *s, inference *inf, store_done_fn done, void *arg)
{
    return put_async(s, inf, done, arg, true, true);
}

er_rc store_put(store *s, inference *inf, store_put_result *res)
{
    waiter w;
    waiter_init(&w);
    er_rc rc = store_put_async(s, inf, waiter_done, &w);
    if (rc) {
        w.done = true;
        w.res.rc = rc;
    }
    waiter_wait(&w);
    if (res) *res = w.res;
    return w.res.rc;
}

er_rc store_subscribe(store *s, store_commit_fn fn, void *arg)
{
    er_rc rc = ER_OK;
    pthread_mutex_lock(&s->mu);
    if (s->n_subs == MAX_SUBSCRIBERS) {
        rc = ER_TOOBIG;
        goto fail;
    }
    s->subs[s->n_subs++] = (subscriber){fn, arg};
fail:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static er_rc guid_job(store *s, job_kind kind, const char *guid, const uint8_t *data, size_t len)
{
    job *j = calloc(1, sizeof *j);
    if (!j) return ER_NOMEM;
    j->kind = kind;
    j->guid = strdup(guid);
    if (data) {
        j->data = malloc(len ? len : 1);
        if (j->data) memcpy(j->data, data, len);
        j->len = len;
        j->cost = len;
    }
    if (!j->guid || (data && !j->data)) {
        free_job(j);
        return ER_NOMEM;
    }
    return run_sync(s, j);
}

er_rc store_set_thumbnail(store *s, const char *guid, const uint8_t *data, size_t len)
{
    if (!guid || !data) return ER_INVALID;
    return guid_job(s, JOB_THUMB, guid, data, len);
}

er_rc store_delete(store *s, const char *guid)
{
    if (!guid) return ER_INVALID;
    return guid_job(s, JOB_DELETE, guid, NULL, 0);
}

er_rc store_retain(store *s)
{
    job *j = calloc(1, sizeof *j);
    if (!j) return ER_NOMEM;
    j->kind = JOB_RETAIN;
    return run_sync(s, j);
}

er_rc store_debug_max_pages(store *s, int64_t pages)
{
    job *j = calloc(1, sizeof *j);
    if (!j) return ER_NOMEM;
    j->kind = JOB_MAX_PAGES;
    j->value = pages;
    return run_sync(s, j);
}

/* ---- public: reads ---- */

enum { PAGE_DATA = 1, PAGE_LABELS = 2 }; /* what read_page adds to each row */
static er_rc read_page(store *s, int which, int64_t cursor, int limit, unsigned what,
                       store_page *out);

/* Rebuilds an inference from the INF_COLS columns of st (image bytes not included). */
static er_rc row_to_inference(sqlite3_stmt *st, inference **out)
{
    er_rc rc = ER_NOMEM;
    inference *inf = inference_create();
    if (!inf) goto fail;
    inf->seq = sqlite3_column_int64(st, 0);
    snprintf(inf->guid, sizeof inf->guid, "%s", (const char *)sqlite3_column_text(st, 1));
    inf->ts = sqlite3_column_int64(st, 2);
    inf->device = col_strdup(st, 3);
    inf->source = col_strdup(st, 4);
    const char *kind = (const char *)sqlite3_column_text(st, 5);
    int k = kind ? inference_kind_parse(kind) : -1;
    inf->kind = k < 0 ? INFERENCE_EMPTY : (inference_kind)k;
    inf->result_json = col_strdup(st, 6);
    if (!inf->device || !inf->source || !inf->result_json) goto fail;
    if (sqlite3_column_type(st, 7) != SQLITE_NULL && !(inf->timing_json = col_strdup(st, 7)))
        goto fail;
    if (sqlite3_column_type(st, 8) != SQLITE_NULL && !(inf->info_json = col_strdup(st, 8)))
        goto fail;
    if (sqlite3_column_type(st, 9) != SQLITE_NULL && !(inf->top_label = col_strdup(st, 9)))
        goto fail;
    inf->top_score = sqlite3_column_double(st, 10);
    inf->has_anomaly = sqlite3_column_type(st, 11) != SQLITE_NULL;
    inf->anomaly = inf->has_anomaly ? sqlite3_column_double(st, 11) : 0;
    inf->model_width = sqlite3_column_int(st, 12);
    inf->model_height = sqlite3_column_int(st, 13);
    if (sqlite3_column_type(st, 15) != SQLITE_NULL) {
        const char *mime = (const char *)sqlite3_column_text(st, 15);
        snprintf(inf->image.mime, sizeof inf->image.mime, "%s", mime ? mime : "");
        inf->image.width = sqlite3_column_int(st, 16);
        inf->image.height = sqlite3_column_int(st, 17);
        inf->image.len = (size_t)sqlite3_column_int64(st, 18);
    }
    inf->publish = (inference_publish)sqlite3_column_int(st, 19);
    *out = inf;
    inf = NULL;
    rc = ER_OK;
fail:
    inference_destroy(inf);
    return rc;
}

er_rc store_list(store *s, const store_filter *f, store_page *out)
{
    memset(out, 0, sizeof *out);
    if (!f || f->limit < 1 || f->limit > 1000 || f->before_seq < 0) return ER_INVALID;
    reader *r = reader_get(s);
    sqlite3_stmt *st = r->st[f->label ? RSTMT_LIST_LABEL : RSTMT_LIST];
    er_rc rc = ER_OK;
    int src;
    out->items = calloc((size_t)f->limit, sizeof *out->items);
    if (!out->items) {
        rc = ER_NOMEM;
        goto fail;
    }
    sqlite3_bind_int64(st, 1, f->before_seq > 0 ? f->before_seq : INT64_MAX);
    bind_text(st, 2, f->source);
    if (f->has_min_score) sqlite3_bind_double(st, 3, f->min_score);
    if (f->has_since) sqlite3_bind_int64(st, 4, f->since_ms);
    if (f->has_until) sqlite3_bind_int64(st, 5, f->until_ms);
    sqlite3_bind_int(st, 6, f->limit + 1); /* one extra row tells whether a next page exists */
    if (f->label) sqlite3_bind_text(st, 7, f->label, -1, SQLITE_STATIC);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n == (size_t)f->limit) {
            out->next_seq = out->items[out->n - 1]->seq;
            src = SQLITE_DONE;
            break;
        }
        rc = row_to_inference(st, &out->items[out->n]);
        if (rc) goto fail;
        out->n++;
    }
    if (src != SQLITE_DONE) rc = db_error(r->db, src, "listing inferences");
fail:
    stmt_done(st);
    reader_put(s, r);
    if (rc) store_page_free(out);
    return rc;
}

void store_page_free(store_page *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++)
        inference_destroy(p->items[i]);
    free(p->items);
    memset(p, 0, sizeof *p);
}

static er_rc read_labels(reader *r, inference *inf)
{
    sqlite3_stmt *st = r->st[RSTMT_GET_LABELS];
    er_rc rc = ER_OK;
    int src;
    sqlite3_bind_int64(st, 1, inf->seq);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        inference_label *grown = realloc(inf->labels, (inf->n_labels + 1) * sizeof *grown);
        if (!grown) {
            rc = ER_NOMEM;
            goto fail;
        }
        inf->labels = grown;
        grown[inf->n_labels].label = col_strdup(st, 0);
        grown[inf->n_labels].score = sqlite3_column_double(st, 1);
        if (!grown[inf->n_labels].label) {
            rc = ER_NOMEM;
            goto fail;
        }
        inf->n_labels++;
    }
    if (src != SQLITE_DONE) rc = db_error(r->db, src, "reading labels");
fail:
    stmt_done(st);
    return rc;
}

er_rc store_get(store *s, const char *guid, inference **out)
{
    *out = NULL;
    if (!guid) return ER_INVALID;
    reader *r = reader_get(s);
    sqlite3_stmt *st = r->st[RSTMT_GET];
    inference *inf = NULL;
    er_rc rc = ER_OK;
    sqlite3_bind_text(st, 1, guid, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        rc = row_to_inference(st, &inf);
    else if (src == SQLITE_DONE)
        rc = ER_NOTFOUND;
    else
        rc = db_error(r->db, src, "reading inference");
    stmt_done(st);
    if (rc) goto fail;
    rc = read_labels(r, inf);
    if (rc) goto fail;
    *out = inf;
    inf = NULL;
fail:
    reader_put(s, r);
    inference_destroy(inf);
    return rc;
}

er_rc store_list_after(store *s, int64_t after_seq, int limit, store_page *out)
{
    memset(out, 0, sizeof *out);
    if (limit < 1 || limit > 1000 || after_seq < 0) return ER_INVALID;
    return read_page(s, RSTMT_AFTER, after_seq, limit, PAGE_LABELS, out);
}

er_rc store_get_image(store *s, const char *guid, inference_image *out)
{
    memset(out, 0, sizeof *out);
    if (!guid) return ER_INVALID;
    reader *r = reader_get(s);
    sqlite3_stmt *st = r->st[RSTMT_IMAGE];
    er_rc rc = ER_OK;
    sqlite3_bind_text(st, 1, guid, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = src == SQLITE_DONE ? ER_NOTFOUND : db_error(r->db, src, "reading image");
        goto fail;
    }
    const char *mime = (const char *)sqlite3_column_text(st, 0);
    snprintf(out->mime, sizeof out->mime, "%s", mime ? mime : "");
    out->width = sqlite3_column_int(st, 1);
    out->height = sqlite3_column_int(st, 2);
    const void *data = sqlite3_column_blob(st, 3);
    out->len = (size_t)sqlite3_column_bytes(st, 3);
    out->data = malloc(out->len ? out->len : 1);
    if (!out->data) {
        rc = ER_NOMEM;
        goto fail;
    }
    if (out->len) memcpy(out->data, data, out->len);
fail:
    stmt_done(st);
    reader_put(s, r);
    return rc;
}

er_rc store_get_thumbnail(store *s, const char *guid, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (!guid) return ER_INVALID;
    reader *r = reader_get(s);
    sqlite3_stmt *st = r->st[RSTMT_THUMB];
    er_rc rc = ER_OK;
    sqlite3_bind_text(st, 1, guid, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = src == SQLITE_DONE ? ER_NOTFOUND : db_error(r->db, src, "reading thumbnail");
        goto fail;
    }
    const void *blob = sqlite3_column_blob(st, 0);
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    *data = malloc(n ? n : 1);
    if (!*data) {
        rc = ER_NOMEM;
        goto fail;
    }
    if (n) memcpy(*data, blob, n);
    *len = n;
fail:
    stmt_done(st);
    reader_put(s, r);
    return rc;
}

er_rc store_stats(store *s, int64_t since_ms, int64_t until_ms, int64_t bucket_ms,
                  store_stats_row **rows, size_t *n)
{
    *rows = NULL;
    *n = 0;
    if (bucket_ms <= 0 || until_ms < since_ms) return ER_INVALID;
    reader *r = reader_get(s);
    sqlite3_stmt *st = r->st[RSTMT_STATS];
    store_stats_row *v = NULL;
    size_t len = 0, cap = 0;
    er_rc rc = ER_OK;
    int src;
    sqlite3_bind_int64(st, 1, since_ms);
    sqlite3_bind_int64(st, 2, until_ms);
    sqlite3_bind_int64(st, 3, bucket_ms);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            store_stats_row *grown = realloc(v, ncap * sizeof *grown);
            if (!grown) {
                rc = ER_NOMEM;
                goto fail;
            }
            v = grown;
            cap = ncap;
        }
        v[len].label = col_strdup(st, 0);
        if (!v[len].label) {
            rc = ER_NOMEM;
            goto fail;
        }
        v[len].bucket_ms = sqlite3_column_int64(st, 1);
        v[len].count = sqlite3_column_int64(st, 2);
        v[len].mean_score = sqlite3_column_double(st, 3);
        len++;
    }
    if (src != SQLITE_DONE) rc = db_error(r->db, src, "computing stats");
fail:
    stmt_done(st);
    reader_put(s, r);
    if (rc) {
        store_stats_free(v, len);
    } else {
        *rows = v;
        *n = len;
    }
    return rc;
}

void store_stats_free(store_stats_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        free(rows[i].label);
    free(rows);
}

static er_rc read_row(reader *r, int which, int64_t *vals, int n)
{
    sqlite3_stmt *st = r->st[which];
    er_rc rc = ER_OK;
    int src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = db_error(r->db, src, "reading store info");
        goto fail;
    }
    for (int i = 0; i < n; i++)
        vals[i] = sqlite3_column_int64(st, i);
fail:
    stmt_done(st);
    return rc;
}

er_rc store_get_info(store *s, store_info *out)
{
    memset(out, 0, sizeof *out);
    int64_t c[4] = {0}, e[3] = {0}, pages[1] = {0};
    reader *r = reader_get(s);
    er_rc rc = read_row(r, RSTMT_COUNTERS, c, 4);
    if (rc) goto fail;
    rc = read_row(r, RSTMT_EDGES, e, 3);
    if (rc) goto fail;
    rc = read_row(r, RSTMT_PAGES, pages, 1);
    if (rc) goto fail;
    out->rows = c[0];
    out->bytes = c[1];
    out->images = c[2];
    out->outbox = c[3];
    out->oldest_ts = e[0];
    out->newest_ts = e[1];
    out->newest_seq = e[2];
    out->db_file_bytes = pages[0];
    size_t plen = strlen(s->path);
    char *wal = malloc(plen + 5);
    struct stat sb;
    if (wal) {
        memcpy(wal, s->path, plen);
        memcpy(wal + plen, "-wal", 5);
        if (stat(wal, &sb) == 0) out->db_file_bytes += (int64_t)sb.st_size;
        free(wal);
    }
    out->commits = atomic_load(&s->commits);
    out->puts = atomic_load(&s->puts);
    out->duplicates = atomic_load(&s->duplicates);
    out->put_errors = atomic_load(&s->put_errors);
    out->retention_deleted = atomic_load(&s->retention_deleted);
    pthread_mutex_lock(&s->mu);
    out->queue_depth = (int64_t)s->q_len;
    pthread_mutex_unlock(&s->mu);
fail:
    reader_put(s, r);
    return rc;
}

/* Copies the image bytes of column COL_DATA (if not NULL) into inf. */
static er_rc copy_image_data(sqlite3_stmt *st, inference *inf)
{
    if (sqlite3_column_type(st, COL_DATA) == SQLITE_NULL) return ER_OK;
    size_t len = (size_t)sqlite3_column_bytes(st, COL_DATA);
    const void *blob = sqlite3_column_blob(st, COL_DATA);
    inf->image.data = malloc(len ? len : 1);
    if (!inf->image.data) return ER_NOMEM;
    if (len) memcpy(inf->image.data, blob, len);
    inf->image.len = len;
    return ER_OK;
}

/* Reads up to FOREACH_PAGE inferences with seq > after, image bytes included. */
static er_rc foreach_page(store *s, int64_t after, inference **page, size_t *n)
{
    reader *r = reader_get(s);
    sqlite3_stmt *st = r->st[RSTMT_FOREACH];
    er_rc rc = ER_OK;
    int src;
    *n = 0;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int(st, 2, FOREACH_PAGE);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        inference *inf = NULL;
        rc = row_to_inference(st, &inf);
        if (rc) goto fail;
        page[(*n)++] = inf;
        rc = copy_image_data(st, inf);
        if (rc) goto fail;
        rc = read_labels(r, inf);
        if (rc) goto fail;
    }
    if (src != SQLITE_DONE) rc = db_error(r->db, src, "reading inferences");
fail:
    stmt_done(st);
    reader_put(s, r);
    return rc;
}

er_rc store_foreach(store *s, store_each_fn fn, void *arg)
{
    inference *page[FOREACH_PAGE];
    size_t n = 0;
    int64_t after = 0;
    er_rc rc;
    /* The reader goes back to the pool between pages, so fn may use the store freely and no
     * read transaction stays open across a long export. */
    do {
        rc = foreach_page(s, after, page, &n);
        for (size_t i = 0; !rc && i < n; i++) {
            rc = fn(arg, page[i]);
            after = page[i]->seq;
        }
        for (size_t i = 0; i < n; i++)
            inference_destroy(page[i]);
    } while (!rc && n == FOREACH_PAGE);
    return rc;
}

er_rc store_explain_list(store *s, bool with_label, char **plan)
{
    *plan = NULL;
    reader *r = reader_get(s);
    sqlite3_stmt *st = r->st[with_label ? RSTMT_EXPLAIN_LABEL : RSTMT_EXPLAIN_LIST];
    util_buf b = {0};
    er_rc rc = ER_OK;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *detail = sqlite3_column_text(st, 3);
        rc = util_buf_printf(&b, "%s\n", detail ? (const char *)detail : "");
        if (rc) goto fail;
    }
    if (src != SQLITE_DONE) {
        rc = db_error(r->db, src, "explain");
        goto fail;
    }
    rc = util_buf_append(&b, "", 0);
    if (rc) goto fail;
    *plan = b.data;
    b.data = NULL;
fail:
    stmt_done(st);
    reader_put(s, r);
    util_buf_free(&b);
    return rc;
}

/* ---- public: publish policy and outbox ---- */

void store_set_policy(store *s, store_policy_fn fn, void *arg)
{
    pthread_mutex_lock(&s->mu);
    s->policy_fn = fn;
    s->policy_arg = arg;
    pthread_mutex_unlock(&s->mu);
}

/* Runs a reader statement bound to (?1 = cursor, ?2 = limit) into a page of at most limit
 * items; with_data copies image bytes. One extra row is asked for to know whether a next page
 * exists (next_seq, for the dead-letter list). */
/* One page of INF_COLS rows from statement which (?1 cursor, ?2 limit + 1: the extra row sets
 * next_seq), with image bytes (PAGE_DATA) and labels (PAGE_LABELS) as asked. */
static er_rc read_page(store *s, int which, int64_t cursor, int limit, unsigned what,
                       store_page *out)
{
    reader *r = reader_get(s);
    sqlite3_stmt *st = r->st[which];
    er_rc rc = ER_OK;
    int src;
    out->items = calloc((size_t)limit, sizeof *out->items);
    if (!out->items) {
        rc = ER_NOMEM;
        goto fail;
    }
    sqlite3_bind_int64(st, 1, cursor);
    sqlite3_bind_int(st, 2, limit + 1);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n == (size_t)limit) {
            out->next_seq = out->items[out->n - 1]->seq;
            src = SQLITE_DONE;
            break;
        }
        rc = row_to_inference(st, &out->items[out->n]);
        if (rc) goto fail;
        out->n++;
        if ((what & PAGE_DATA) && (rc = copy_image_data(st, out->items[out->n - 1]))) goto fail;
    }
    if (src != SQLITE_DONE) rc = db_error(r->db, src, "reading inferences");
    stmt_done(st);
    /* Labels after the rows, each its own read: a row deleted by retention in between just
     * comes without labels. */
    for (size_t i = 0; rc == ER_OK && (what & PAGE_LABELS) && i < out->n; i++)
        rc = read_labels(r, out->items[i]);
fail:
    stmt_done(st);
    reader_put(s, r);
    if (rc) store_page_free(out);
    return rc;
}

er_rc store_outbox_fetch(store *s, int64_t after_seq, int limit, store_page *out)
{
    memset(out, 0, sizeof *out);
    if (limit < 1 || limit > 1000 || after_seq < 0) return ER_INVALID;
    return read_page(s, RSTMT_OB_FETCH, after_seq, limit, PAGE_DATA, out);
}

er_rc store_outbox_dead(store *s, int64_t before_seq, int limit, store_page *out)
{
    memset(out, 0, sizeof *out);
    if (limit < 1 || limit > 1000 || before_seq < 0) return ER_INVALID;
    return read_page(s, RSTMT_OB_DEAD, before_seq > 0 ? before_seq : INT64_MAX, limit, 0, out);
}

static er_rc outbox_ack(store *s, const int64_t *seqs, size_t n, bool wait)
{
    if (n == 0) return ER_OK;
    if (!seqs) return ER_INVALID;
    job *j = calloc(1, sizeof *j);
    if (!j) return ER_NOMEM;
    j->kind = JOB_ACK;
    j->seqs = malloc(n * sizeof *j->seqs);
    if (!j->seqs) {
        free_job(j);
        return ER_NOMEM;
    }
    memcpy(j->seqs, seqs, n * sizeof *seqs);
    j->n_seqs = n;
    j->cost = n * sizeof *seqs;
    return wait ? run_sync(s, j) : enqueue(s, j, false);
}

er_rc store_outbox_ack(store *s, const int64_t *seqs, size_t n)
{
    return outbox_ack(s, seqs, n, true);
}

er_rc store_outbox_ack_async(store *s, const int64_t *seqs, size_t n)
{
    return outbox_ack(s, seqs, n, false);
}

er_rc store_outbox_fail(store *s, int64_t seq, bool permanent, const char *reason, bool *dead)
{
    if (dead) *dead = false;
    job *j = calloc(1, sizeof *j);
    if (!j) return ER_NOMEM;
    j->kind = JOB_FAIL;
    j->value = seq;
    j->permanent = permanent;
    if (reason && !(j->text = strdup(reason))) {
        free_job(j);
        return ER_NOMEM;
    }
    store_put_result res;
    er_rc rc = run_sync_res(s, j, &res);
    if (dead && rc == ER_OK) *dead = res.seq == 1;
    return rc;
}

er_rc store_outbox_stats_get(store *s, store_outbox_stats *out)
{
    memset(out, 0, sizeof *out);
    int64_t c[3] = {0};
    reader *r = reader_get(s);
    sqlite3_stmt *st = r->st[RSTMT_OB_OLDEST];
    er_rc rc = read_row(r, RSTMT_OB_COUNTERS, c, 3);
    if (rc) goto fail;
    out->pending = c[0];
    out->pending_bytes = c[1];
    out->dead = c[2];
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        out->oldest_pending_ts = sqlite3_column_int64(st, 0);
    else if (src != SQLITE_DONE)
        rc = db_error(r->db, src, "reading the oldest pending row");
    stmt_done(st);
    out->dropped = atomic_load(&s->ob_dropped);
    out->rejected = atomic_load(&s->ob_rejected);
fail:
    reader_put(s, r);
    return rc;
}

er_rc store_clear(store *s, int64_t *deleted)
{
    if (deleted) *deleted = 0;
    job *j = calloc(1, sizeof *j);
    if (!j) return ER_NOMEM;
    j->kind = JOB_CLEAR;
    store_put_result res;
    er_rc rc = run_sync_res(s, j, &res);
    if (deleted && rc == ER_OK) *deleted = res.seq;
    return rc;
}

er_rc store_meta_get(store *s, const char *key, char **value)
{
    *value = NULL;
    if (!key) return ER_INVALID;
    reader *r = reader_get(s);
    sqlite3_stmt *st = r->st[RSTMT_META_GET];
    er_rc rc = ER_OK;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *value = col_strdup(st, 0);
        if (!*value) rc = ER_NOMEM;
    } else {
        rc = src == SQLITE_DONE ? ER_NOTFOUND : db_error(r->db, src, "reading meta");
    }
    stmt_done(st);
    reader_put(s, r);
    return rc;
}

er_rc store_meta_set(store *s, const char *key, const char *value)
{
    if (!key || !value) return ER_INVALID;
    job *j = calloc(1, sizeof *j);
    if (!j) return ER_NOMEM;
    j->kind = JOB_META;
    j->guid = strdup(key);
    j->text = strdup(value);
    if (!j->guid || !j->text) {
        free_job(j);
        return ER_NOMEM;
    }
    return run_sync(s, j);
}
