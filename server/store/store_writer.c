/* store_writer.c - the writer thread and its bounded job queue: producers queue jobs (and
 * wait for room, or fail with ER_BUSY), the writer takes up to batch_max of them and commits
 * their data jobs in one transaction (group commit: one fsync for many requests), announces the
 * deleted ids, hands the committed inferences to the subscribers, answers each job, then runs
 * the control jobs and, when due, retention. Also: waiting for one job's result.
 *
 * The queue, the subscribers and `stopping` are guarded by s->mu; the writer connection and
 * everything below run_batch belong to the writer thread. */
#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

void store__free_job(job *j)
{
    inference_destroy(j->inf);
    free(j->guid);
    free(j->text);
    free(j->data);
    free(j->seqs);
    free(j);
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
static er_rc exec_in_savepoint(store *s, job *j, int64_t now, int64_t age, bool *fatal)
{
    er_rc rc;
    int src = step_once(s->wst[WSTMT_SAVEPOINT]);
    if (src != SQLITE_DONE) {
        *fatal = true;
        rc = store__db_error(s, s->wdb, src, "savepoint");
        goto fail;
    }
    rc = store__exec_data_job(s, j, now, age);
    if (rc == ER_FULL || sqlite3_get_autocommit(s->wdb)) {
        *fatal = true;
        goto fail;
    }
    if (rc) step_once(s->wst[WSTMT_ROLLBACK_TO]);
    src = step_once(s->wst[WSTMT_RELEASE]);
    if (src != SQLITE_DONE) {
        *fatal = true;
        rc = store__db_error(s, s->wdb, src, "release savepoint");
    }
fail:
    return rc;
}

/* A copy of the subscribers (they are called without holding mu); returns how many. */
static size_t subscribers(store *s, subscriber subs[MAX_SUBSCRIBERS])
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n_subs;
    memcpy(subs, s->subs, n * sizeof subs[0]);
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Tells the delete subscribers which ids the batch's delete jobs removed. Runs before the jobs'
 * callbacks, so a caller told "deleted" knows the live stream was told first. */
static void announce_deletes(store *s, job *list)
{
    size_t n = 0;
    for (job *j = list; j; j = j->next)
        n += j->kind == JOB_DELETE && j->res.rc == ER_OK;
    if (n == 0) return;
    const char **guids = calloc(n, sizeof *guids);
    if (!guids) {
        log_warn("store", "out of memory announcing %zu deletes", n);
        return;
    }
    n = 0;
    for (job *j = list; j; j = j->next)
        if (j->kind == JOB_DELETE && j->res.rc == ER_OK) guids[n++] = j->guid;
    subscriber subs[MAX_SUBSCRIBERS];
    size_t n_subs = subscribers(s, subs);
    for (size_t i = 0; i < n_subs; i++)
        if (subs[i].deleted) subs[i].deleted(subs[i].arg, guids, n);
    free(guids);
}

/* clear_cache, then (even when it stopped half-way: some chunks are gone) the cleared
 * subscribers, before the caller hears the answer. */
static er_rc run_clear(store *s, int64_t *deleted)
{
    er_rc rc = store__run_clear(s, deleted);
    if (*deleted == 0) return rc;
    subscriber subs[MAX_SUBSCRIBERS];
    size_t n_subs = subscribers(s, subs);
    for (size_t i = 0; i < n_subs; i++)
        if (subs[i].cleared) subs[i].cleared(subs[i].arg);
    return rc;
}

/* Why a transaction was lost, by SQLite's primary code: health's "writes failing: ..." */
static const struct {
    int code;
    const char *name, *what;
} write_errors[] = {
    {SQLITE_FULL, "SQLITE_FULL", "disk full"},
    {SQLITE_IOERR, "SQLITE_IOERR", "I/O error"},
    {SQLITE_BUSY, "SQLITE_BUSY", "database locked by another process"},
    {SQLITE_LOCKED, "SQLITE_LOCKED", "database table locked"},
    {SQLITE_CORRUPT, "SQLITE_CORRUPT", "database corrupt"},
    {SQLITE_NOTADB, "SQLITE_NOTADB", "database corrupt"},
    {SQLITE_READONLY, "SQLITE_READONLY", "database read-only"},
    {SQLITE_CANTOPEN, "SQLITE_CANTOPEN", "database cannot be opened"},
    {SQLITE_NOMEM, "SQLITE_NOMEM", "out of memory"},
};

/* A transaction was lost as a whole (rc: the batch's): writes are failing from now (the first
 * time: logged) until a put commits. */
static void writes_failed(store *s, er_rc rc)
{
    char why[sizeof s->wfail_reason];
    const char *name = NULL, *what = "database error";
    int primary = s->wlast_src & 0xff;
    for (size_t i = 0; i < sizeof write_errors / sizeof write_errors[0]; i++)
        if (write_errors[i].code == primary)
            name = write_errors[i].name, what = write_errors[i].what;
    if (rc == ER_FULL) what = "disk full"; /* also an I/O error whose cause was ENOSPC */
    if (name)
        snprintf(why, sizeof why, "%s (%s)", what, name);
    else
        snprintf(why, sizeof why, "%s (%s)", what, er_rc_name(rc));
    atomic_fetch_add(&s->write_failures, 1);
    pthread_mutex_lock(&s->health_mu);
    bool first = s->wfail_ms == 0;
    if (first) s->wfail_ms = util_now_ms();
    snprintf(s->wfail_reason, sizeof s->wfail_reason, "%s", why);
    pthread_mutex_unlock(&s->health_mu);
    if (first)
        log_error("store",
                  "writes failing: %s; puts are refused (HTTP 507/503) and sources hold "
                  "their inferences and retry",
                  why);
}

/* A put committed: writes work (again). */
static void writes_work(store *s)
{
    pthread_mutex_lock(&s->health_mu);
    int64_t since = s->wfail_ms;
    s->wfail_ms = 0;
    s->wfail_reason[0] = '\0';
    pthread_mutex_unlock(&s->health_mu);
    if (since)
        log_info("store", "writes work again after %lld ms of failures",
                 (long long)(util_now_ms() - since));
}

/* An outbox ack nobody waits for (the forwarder's drain loop) that was lost with its
 * transaction: kept and queued again later, so the row neither stays pending for good (nothing
 * could evict it) nor goes to the broker again. */
static bool j_retry_ack(const job *j)
{
    return j->kind == JOB_ACK && !j->done && j->res.rc && j->res.retry;
}

#define ACK_RETRY_MIN_MS 100
#define ACK_RETRY_MAX_MS 5000

static void keep_ack(store *s, job *j)
{
    j->next = s->ack_retry;
    s->ack_retry = j;
    s->ack_backoff_ms = s->ack_backoff_ms ? s->ack_backoff_ms * 2 : ACK_RETRY_MIN_MS;
    if (s->ack_backoff_ms > ACK_RETRY_MAX_MS) s->ack_backoff_ms = ACK_RETRY_MAX_MS;
    s->ack_retry_at = util_mono_ms() + s->ack_backoff_ms;
}

/* Due kept acks go back to the front of the queue (caller holds mu). */
static void requeue_acks(store *s, int64_t now)
{
    if (!s->ack_retry || now < s->ack_retry_at) return;
    job *last = s->ack_retry;
    size_t n = 1;
    for (; last->next; last = last->next)
        n++;
    last->next = s->q_head;
    s->q_head = s->ack_retry;
    if (!s->q_tail) s->q_tail = last;
    s->q_len += n;
    for (job *j = s->ack_retry; j != last->next; j = j->next) {
        s->q_bytes += j->cost;
        memset(&j->res, 0, sizeof j->res);
    }
    s->ack_retry = NULL;
}

/* How long the writer may sleep: until retention or a kept ack is due (-1: no deadline). */
static int64_t writer_wait_ms(store *s)
{
    int64_t wait = store__retention_wait_ms(s);
    if (s->ack_retry) {
        int64_t a = s->ack_retry_at - util_mono_ms();
        if (a < 0) a = 0;
        if (wait < 0 || a < wait) wait = a;
    }
    return wait;
}

static void run_batch(store *s, job *list)
{
    sqlite3 *db = s->wdb;
    int64_t now = util_now_ms(), age = store__age_now(s);
    size_t n_data = 0, n_put_ok = 0;
    er_rc batch_rc = ER_OK;
    bool fatal = false;
    job *j;

    for (j = list; j; j = j->next)
        if (is_data_job(j)) n_data++;
    /* The first pass runs the jobs without savepoints (a savepoint per job costs a copy of
     * every page the job touches); if a job fails in a way that may have left writes behind,
     * the transaction is rolled back and the batch runs again with one savepoint per job, so
     * that job fails alone. A statement of the first pass that ended the transaction itself
     * (OR ROLLBACK, a constraint) runs the batch again job by job too. The label postings the
     * puts gathered are written just before the COMMIT (store_labels.c) and forgotten whenever
     * the transaction starts again. */
    bool per_job_sp = false;
    s->wlast_src = 0;
again:
    if (n_data > 0) {
        bool redo = false;
        memset(&s->cnt_add, 0, sizeof s->cnt_add); /* what this attempt's puts insert */
        store__posts_reset(s);
        int src = step_once(s->wst[WSTMT_BEGIN]);
        if (src != SQLITE_DONE) {
            batch_rc = store__db_error(s, db, src, "begin");
            fatal = true;
        } else if (store__age_due(s, age) && (batch_rc = store__age_save(s, age)) != ER_OK) {
            fatal = true; /* the same disk as the rows: they would fail too */
        }
        for (j = list; j && !fatal && !redo; j = j->next) {
            if (!is_data_job(j)) continue;
            memset(&j->res, 0, sizeof j->res);
            j->dropped = j->rejected = 0;
            if (per_job_sp) {
                j->res.rc = exec_in_savepoint(s, j, now, age, &fatal);
            } else {
                s->wlast_src = 0; /* set by the job's SQLite error, if any */
                j->res.rc = store__exec_data_job(s, j, now, age);
                if (j->res.rc && j->res.rc != ER_FULL && sqlite3_get_autocommit(db) &&
                    (s->wlast_src & 0xff) == SQLITE_CONSTRAINT)
                    redo = true; /* an OR ROLLBACK statement ended the transaction */
                else if (j->res.rc == ER_FULL || sqlite3_get_autocommit(db))
                    fatal = true;
                else if (j->res.rc && !failed_clean(j, j->res.rc))
                    redo = true;
            }
            if (fatal) batch_rc = j->res.rc ? j->res.rc : ER_DB;
        }
        if (redo) {
            if (!sqlite3_get_autocommit(db)) step_once(s->wst[WSTMT_ROLLBACK]);
            if (!sqlite3_get_autocommit(db)) {
                batch_rc = ER_DB;
                fatal = true;
            } else {
                per_job_sp = true;
                goto again;
            }
        }
        if (!fatal && (batch_rc = store__posts_flush(s)) != ER_OK) fatal = true;
        if (!fatal && (batch_rc = store__counters_flush(s)) != ER_OK) fatal = true;
        if (!fatal) {
            src = step_once(s->wst[WSTMT_COMMIT]);
            if (src != SQLITE_DONE) {
                batch_rc = store__db_error(s, db, src, "commit");
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

    /* Settle every data job's result, then tell the subscribers, then each caller. */
    inference **committed = calloc(n_data ? n_data : 1, sizeof *committed);
    size_t n_committed = 0;
    for (j = list; j; j = j->next) {
        if (!is_data_job(j)) continue;
        if (fatal) {
            j->res.rc = batch_rc;
            j->res.duplicate = false;
            j->res.seq = 0;
            j->res.retry = true;
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
    if (fatal)
        writes_failed(s, batch_rc);
    else if (n_put_ok > 0)
        writes_work(s);
    s->ret_puts += (int64_t)n_put_ok;
    /* Subscribers first, callers second: once a caller hears "committed" (or "deleted"), the
     * live stream and the forwarder already know of it (a live client connecting after a POST
     * answered gets a hello whose last_seq covers it). */
    announce_deletes(s, list);
    if (n_committed > 0) {
        subscriber subs[MAX_SUBSCRIBERS];
        size_t n_subs = subscribers(s, subs);
        for (size_t i = 0; i < n_subs; i++)
            if (subs[i].fn) subs[i].fn(subs[i].arg, committed, n_committed);
    }
    free(committed);
    for (j = list; j; j = j->next) {
        if (!is_data_job(j) || !j->done) continue;
        if (j->kind == JOB_PUT && j->offered && j->res.retry) {
            j->res.held = j->inf; /* handed back: the caller holds it and offers it again */
            j->inf = NULL;
        }
        j->done(j->arg, &j->res);
    }

    /* Control jobs run after the commit, outside any transaction. */
    for (j = list; j; j = j->next) {
        if (j->kind == JOB_RETAIN)
            j->res.rc = store__run_retention(s, true);
        else if (j->kind == JOB_MAX_PAGES)
            j->res.rc = store__exec_max_pages(s, j->value);
        else if (j->kind == JOB_CLEAR)
            j->res.rc = run_clear(s, &j->res.seq);
        else
            continue;
        if (j->done) j->done(j->arg, &j->res);
    }
    while (list) {
        j = list->next;
        if (j_retry_ack(list))
            keep_ack(s, list);
        else
            store__free_job(list);
        list = j;
    }
    if (fatal && batch_rc == ER_FULL) store__space_full(s);
    if (!fatal && n_data > 0) { /* writes work: kept acks go now */
        s->ack_backoff_ms = 0;
        s->ack_retry_at = 0;
        store__space_tick(s);
    }
}

static void *writer_main(void *arg)
{
    store *s = arg;
    util_thread_name("eir-writer", NULL);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        requeue_acks(s, util_mono_ms());
        while (!s->q_head && !s->stopping) {
            int64_t wait = writer_wait_ms(s);
            if (wait < 0) {
                pthread_cond_wait(&s->has_work, &s->mu);
                continue;
            }
            if (wait == 0) {
                requeue_acks(s, util_mono_ms());
                break;
            }
            struct timespec dl;
            util_deadline(&dl, CLOCK_MONOTONIC, wait);
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
        if (!stop && store__retention_wait_ms(s) == 0) store__run_retention(s, false);
        if (stop) break;
    }
    return NULL;
}

er_rc store__writer_start(store *s, er_err *err)
{
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0)
        return er_fail(err, ER_INTERNAL, "cannot start the store writer thread");
    s->writer_started = true;
    return ER_OK;
}

void store__writer_stop(store *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->has_work);
    pthread_cond_broadcast(&s->has_room);
    pthread_mutex_unlock(&s->mu);
    if (s->writer_started) pthread_join(s->writer, NULL);
    while (s->ack_retry) { /* their rows stay pending: sent again after the next start */
        job *j = s->ack_retry->next;
        store__free_job(s->ack_retry);
        s->ack_retry = j;
    }
}

/* Appends j; while the queue is full it waits for room (except on the writer thread itself,
 * where waiting would deadlock) or, with nowait, fails with ER_BUSY (the HTTP path: a full queue
 * must not stall the server's threads). Takes ownership of j: on any error j is freed (an
 * offered put's inference goes back to the caller on ER_BUSY); ER_CLOSED once stopping. */
er_rc store__enqueue(store *s, job *j, bool nowait)
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
    if (rc == ER_BUSY && j->offered) j->inf = NULL;
    if (rc) store__free_job(j);
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
er_rc store__run_sync_res(store *s, job *j, store_put_result *res)
{
    waiter w;
    waiter_init(&w);
    j->done = waiter_done;
    j->arg = &w;
    er_rc rc = store__enqueue(s, j, false);
    if (rc) {
        w.done = true;
        w.res.rc = rc;
    }
    waiter_wait(&w);
    if (res) *res = w.res;
    return w.res.rc;
}

er_rc store__run_sync(store *s, job *j)
{
    return store__run_sync_res(s, j, NULL);
}
