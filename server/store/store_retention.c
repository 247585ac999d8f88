/* store_retention.c - retention (cache_max_rows / cache_max_bytes / cache_max_age) and
 * clear_cache, both on the writer thread: they delete the oldest rows a chunk per transaction
 * (queued puts wait at most one chunk) and give the freed pages back to the file system
 * (incremental vacuum).
 *
 * Retention and dead letters: only a PENDING outbox row protects its inference. A dead letter
 * keeps its inference (visible in the API and in store_outbox_dead) like any cached row, until
 * retention removes it by age or size, oldest first; so a poison message never pins the cache.
 *
 * The schedule and the cursor of an unfinished pass (s->ret_*) belong to the writer thread. */
#include "store/store_internal.h"

#include <stdlib.h>

/* Retention runs at most once a second, or after this many committed puts. */
#define RET_INTERVAL_MS 1000
#define RET_EVERY_PUTS 1000
#define RET_CHUNK 256          /* rows examined per retention transaction */
#define RET_DELETE_BUDGET 4096 /* rows deleted per pass before the writer serves puts again */
#define RET_SCAN_BUDGET 16384  /* rows examined per pass (bounded cost when outbox protects) */

static er_rc ret_counters(store *s, int64_t *rows, int64_t *bytes)
{
    sqlite3_stmt *st = s->wst[WSTMT_COUNTERS];
    er_rc rc = ER_OK;
    int src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = store__db_error(s, s->wdb, src, "reading counters");
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
    if (src != SQLITE_DONE) return store__db_error(s, s->wdb, src, "retention delete");
    *deleted += sqlite3_changes(s->wdb);
    return ER_OK;
}

/* The end of a retention scan: a scan error fails the chunk, else the picked rows go. */
static er_rc ret_delete_picked(store *s, int src, const int64_t *seqs, int n, int64_t *deleted)
{
    er_rc rc = ER_OK;
    if (src != SQLITE_DONE && src != SQLITE_ROW)
        return store__db_error(s, s->wdb, src, "retention scan");
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
        bool over = (s->max_rows > 0 && rows > s->max_rows) ||
                    (s->max_bytes > 0 && bytes > s->max_bytes) ||
                    (s->room_bytes > 0 && bytes > s->room_cap);
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
        s->ret_size_done = s->max_rows <= 0 && s->max_bytes <= 0 && s->room_bytes <= 0;
        s->ret_cutoff = store__age_now(s) - s->max_age_ms; /* not the wall clock: it steps */
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
            rc = store__db_error(s, s->wdb, src, "retention begin");
            goto fail;
        }
        int64_t upto; /* the chunk examined every row up to this seq */
        if (!s->ret_age_done) {
            bool reached = false;
            rc = ret_age_chunk(s, s->ret_cutoff, &s->ret_cur_seq, &scanned, &deleted, &reached);
            upto = s->ret_cur_seq;
            if (!rc && reached) {
                s->ret_age_done = true;
                s->ret_cur_seq = 0; /* the size phase starts at the oldest seq */
            }
        } else {
            rc = ret_size_chunk(s, &s->ret_cur_seq, &scanned, &deleted, &satisfied);
            upto = s->ret_cur_seq;
            if (!rc && (satisfied || scanned < RET_CHUNK)) s->ret_size_done = true;
        }
        if (!rc && deleted > 0) rc = store__posts_trim(s, upto); /* postings of what went */
        if (!rc) {
            src = step_once(s->wst[WSTMT_COMMIT]);
            if (src != SQLITE_DONE) rc = store__db_error(s, s->wdb, src, "retention commit");
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
    if (s->ret_age_done && s->ret_size_done) {
        s->ret_in_pass = false;
        atomic_fetch_add(&s->retention_passes, 1);
    }
    if (deleted_total > 0 && s->room_bytes <= 0) { /* a full disk: store__space_full does it */
        /* Give freed pages back to the file system (auto_vacuum=INCREMENTAL). */
        int src = step_once(s->wst[WSTMT_VACUUM]);
        if (src != SQLITE_DONE) rc = store__db_error(s, s->wdb, src, "incremental vacuum");
    }
fail:
    if (rc) s->ret_in_pass = false; /* start over next time */
    return rc;
}

/* full: run passes until the limits hold (store_retain); else one yielding pass. With
 * s->room_bytes set (a full disk, store_space.c) a new full pass also evicts that many bytes. */
er_rc store__run_retention(store *s, bool full)
{
    bool more = false;
    er_rc rc = ER_OK;
    if (s->room_bytes > 0) {
        int64_t rows = 0, bytes = 0;
        s->ret_in_pass = false;
        if ((rc = ret_counters(s, &rows, &bytes))) return rc;
        s->room_cap = bytes > s->room_bytes ? bytes - s->room_bytes : 0;
    }
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
er_rc store__run_clear(store *s, int64_t *deleted)
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
            rc = store__db_error(s, s->wdb, src, "clear begin");
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
        if (src != SQLITE_DONE) rc = store__db_error(s, s->wdb, src, "clear scan");
        for (int i = 0; !rc && i < n; i++)
            rc = ret_delete(s, seqs[i], &chunk_deleted);
        if (!rc && chunk_deleted > 0) rc = store__posts_trim(s, cursor);
        if (!rc) {
            src = step_once(s->wst[WSTMT_COMMIT]);
            if (src != SQLITE_DONE) rc = store__db_error(s, s->wdb, src, "clear commit");
        }
        if (rc) {
            if (!sqlite3_get_autocommit(s->wdb)) step_once(s->wst[WSTMT_ROLLBACK]);
            goto fail;
        }
        *deleted += chunk_deleted;
    } while (got == RET_CHUNK);
    s->ret_in_pass = false; /* retention cursors may point into what just went */
    src = step_once(s->wst[WSTMT_VACUUM_ALL]);
    if (src != SQLITE_DONE) rc = store__db_error(s, s->wdb, src, "incremental vacuum");
fail:
    return rc;
}

/* When retention should run next: -1 not scheduled, 0 now, else in that many ms. Age limits
 * need a tick even without traffic; size limits only after puts or an unfinished pass. */
int64_t store__retention_wait_ms(const store *s)
{
    if (s->max_rows <= 0 && s->max_bytes <= 0 && s->max_age_ms <= 0) return -1;
    if (s->ret_more || s->ret_puts >= RET_EVERY_PUTS) return 0;
    if (s->max_age_ms <= 0 && s->ret_puts == 0 && !s->ret_in_pass) return -1;
    int64_t wait = s->ret_last_ms + RET_INTERVAL_MS - util_mono_ms();
    return wait > 0 ? wait : 0;
}

er_rc store_retain(store *s)
{
    job *j = calloc(1, sizeof *j);
    if (!j) return ER_NOMEM;
    j->kind = JOB_RETAIN;
    return store__run_sync(s, j);
}

er_rc store_clear(store *s, int64_t *deleted)
{
    if (deleted) *deleted = 0;
    job *j = calloc(1, sizeof *j);
    if (!j) return ER_NOMEM;
    j->kind = JOB_CLEAR;
    store_put_result res;
    er_rc rc = store__run_sync_res(s, j, &res);
    if (deleted && rc == ER_OK) *deleted = res.seq;
    return rc;
}
