/* store_outbox.c - the forwarder's side of the store: the publish policy asked at each put,
 * the outbox bounds (drop the oldest or refuse the new row), publish states, and the outbox
 * jobs (ack, fail, dead letters) with their public entry points, the pending and dead-letter
 * reads and the outbox stats. The jobs run on the writer thread, the reads on a borrowed reader
 * connection; the policy is set under s->mu before traffic. */
#include "store/store_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static er_rc set_publish(store *s, int64_t seq, inference_publish p)
{
    sqlite3_stmt *st = s->wst[WSTMT_SET_PUBLISH];
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int(st, 2, (int)p);
    int src = step_once(st);
    return src == SQLITE_DONE ? ER_OK : store__db_error(s, s->wdb, src, "recording publish state");
}

static er_rc outbox_delete(store *s, int64_t seq)
{
    sqlite3_stmt *st = s->wst[WSTMT_OB_DELETE];
    sqlite3_bind_int64(st, 1, seq);
    int src = step_once(st);
    return src == SQLITE_DONE ? ER_OK : store__db_error(s, s->wdb, src, "deleting outbox row");
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
er_rc store__outbox_make_room(store *s, job *j, int64_t add, inference_publish *decision)
{
    sqlite3_stmt *st = s->wst[WSTMT_OB_COUNTERS];
    int64_t rows = 0, bytes = 0;
    er_rc rc = ER_OK;
    int src;
    if (s->ob_max_rows <= 0 && s->ob_max_bytes <= 0) goto fail;
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) { /* plus the rows this transaction queued so far (not yet added) */
        rows = sqlite3_column_int64(st, 0) + s->cnt_add.outbox;
        bytes = sqlite3_column_int64(st, 1) + s->cnt_add.outbox_bytes;
    }
    stmt_done(st);
    if (src != SQLITE_ROW) {
        rc = store__db_error(s, s->wdb, src, "reading outbox counters");
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
            rc = store__db_error(s, s->wdb, src, "finding the oldest outbox rows");
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

/* Deletes the outbox rows lo..hi and marks their inferences PUBLISHED: two statements for a
 * run of consecutive seqs, every one of which was acknowledged. */
static er_rc ack_run(store *s, int64_t lo, int64_t hi)
{
    if (lo == hi) {
        er_rc rc = outbox_delete(s, lo);
        return rc ? rc : set_publish(s, lo, INFERENCE_PUBLISH_PUBLISHED);
    }
    sqlite3_stmt *st = s->wst[WSTMT_OB_DELETE_RANGE];
    sqlite3_bind_int64(st, 1, lo);
    sqlite3_bind_int64(st, 2, hi);
    int src = step_once(st);
    if (src != SQLITE_DONE) return store__db_error(s, s->wdb, src, "deleting outbox rows");
    st = s->wst[WSTMT_SET_PUBLISH_RANGE];
    sqlite3_bind_int64(st, 1, lo);
    sqlite3_bind_int64(st, 2, hi);
    sqlite3_bind_int(st, 3, (int)INFERENCE_PUBLISH_PUBLISHED);
    src = step_once(st);
    return src == SQLITE_DONE ? ER_OK : store__db_error(s, s->wdb, src, "recording publish state");
}

static int cmp_seq(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Broker acknowledged: the outbox rows go, the inferences say PUBLISHED (also for a row the
 * outbox dropped meanwhile: the broker has it, so that is the truth). The seqs are sorted (a
 * drain acks them nearly in order) and each run of consecutive ones is two range statements. */
er_rc store__exec_ack(store *s, job *j)
{
    er_rc rc = ER_OK;
    int64_t *q = j->seqs;
    size_t n = j->n_seqs;
    for (size_t i = 1; i < n; i++)
        if (q[i] < q[i - 1]) {
            qsort(q, n, sizeof *q, cmp_seq);
            break;
        }
    for (size_t i = 0; i < n;) {
        size_t k = i + 1;
        while (k < n && (q[k] == q[k - 1] || q[k] == q[k - 1] + 1)) /* duplicates are harmless */
            k++;
        if ((rc = ack_run(s, q[i], q[k - 1]))) goto fail;
        i = k;
    }
fail:
    return rc;
}

er_rc store__exec_fail(store *s, job *j, int64_t now)
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
        rc = store__db_error(s, s->wdb, src, "recording a failed publish");
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
            rc = store__db_error(s, s->wdb, src, "dead-lettering");
            goto fail;
        }
        if ((rc = set_publish(s, j->value, INFERENCE_PUBLISH_DEAD))) goto fail;
        j->res.seq = 1;
    }
fail:
    return rc;
}

void store_set_policy(store *s, store_policy_fn fn, void *arg)
{
    pthread_mutex_lock(&s->mu);
    s->policy_fn = fn;
    s->policy_arg = arg;
    pthread_mutex_unlock(&s->mu);
}

er_rc store_outbox_fetch(store *s, int64_t after_seq, int limit, store_page *out)
{
    memset(out, 0, sizeof *out);
    if (limit < 1 || limit > 1000 || after_seq < 0) return ER_INVALID;
    return store__read_page(s, RSTMT_OB_FETCH, after_seq, limit, PAGE_DATA, 0, out);
}

er_rc store_outbox_fetch_meta(store *s, int64_t after_seq, int limit, store_page *out)
{
    memset(out, 0, sizeof *out);
    if (limit < 1 || limit > 1000 || after_seq < 0) return ER_INVALID;
    return store__read_page(s, RSTMT_OB_FETCH_META, after_seq, limit, 0, 0, out);
}

er_rc store_outbox_dead(store *s, int64_t before_seq, int limit, store_page *out)
{
    memset(out, 0, sizeof *out);
    if (limit < 1 || limit > 1000 || before_seq < 0) return ER_INVALID;
    return store__read_page(s, RSTMT_OB_DEAD, before_seq > 0 ? before_seq : INT64_MAX, limit, 0, 0,
                            out);
}

/* An ack job's seqs array holds ack_cap(n_seqs) entries: powers of two, so appending to a
 * queued job is amortised O(1). */
static size_t ack_cap(size_t n)
{
    size_t c = 64;
    while (c < n)
        c *= 2;
    return c;
}

/* Appends the seqs to the ack job at the tail of the queue, if there is one nobody waits for:
 * while the writer commits, the acks of that time become one job (one statement per run of
 * seqs), and the writer, already signalled, is not woken again. false: queue a new job. */
static bool ack_append(store *s, const int64_t *seqs, size_t n)
{
    bool ok = false;
    pthread_mutex_lock(&s->mu);
    job *t = s->q_tail;
    if (s->stopping || !t || t->kind != JOB_ACK || t->done) goto fail;
    size_t need = t->n_seqs + n;
    if (need > ack_cap(t->n_seqs)) {
        int64_t *p = realloc(t->seqs, ack_cap(need) * sizeof *p);
        if (!p) goto fail;
        t->seqs = p;
    }
    memcpy(t->seqs + t->n_seqs, seqs, n * sizeof *seqs);
    t->n_seqs = need;
    t->cost += n * sizeof *seqs;
    s->q_bytes += n * sizeof *seqs;
    ok = true;
fail:
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static er_rc outbox_ack(store *s, const int64_t *seqs, size_t n, bool wait)
{
    if (n == 0) return ER_OK;
    if (!seqs) return ER_INVALID;
    if (!wait && ack_append(s, seqs, n)) return ER_OK;
    job *j = calloc(1, sizeof *j);
    if (!j) return ER_NOMEM;
    j->kind = JOB_ACK;
    j->seqs = malloc(ack_cap(n) * sizeof *j->seqs);
    if (!j->seqs) {
        store__free_job(j);
        return ER_NOMEM;
    }
    memcpy(j->seqs, seqs, n * sizeof *seqs);
    j->n_seqs = n;
    j->cost = n * sizeof *seqs;
    return wait ? store__run_sync(s, j) : store__enqueue(s, j, false);
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
        store__free_job(j);
        return ER_NOMEM;
    }
    store_put_result res;
    er_rc rc = store__run_sync_res(s, j, &res);
    if (dead && rc == ER_OK) *dead = res.seq == 1;
    return rc;
}

er_rc store_outbox_stats_get(store *s, store_outbox_stats *out)
{
    memset(out, 0, sizeof *out);
    int64_t c[3] = {0};
    reader *r = store__reader_get(s);
    sqlite3_stmt *st = r->st[RSTMT_OB_OLDEST];
    er_rc rc = store__read_row(r, RSTMT_OB_COUNTERS, c, 3);
    if (rc) goto fail;
    out->pending = c[0];
    out->pending_bytes = c[1];
    out->dead = c[2];
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        out->oldest_pending_ts = sqlite3_column_int64(st, 0);
    else if (src != SQLITE_DONE)
        rc = store__db_error(s, r->db, src, "reading the oldest pending row");
    stmt_done(st);
    out->dropped = atomic_load(&s->ob_dropped);
    out->rejected = atomic_load(&s->ob_rejected);
fail:
    store__reader_put(s, r);
    return rc;
}
