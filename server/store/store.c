/* store.c - the store's life cycle and its write entry points (see store.h): create (options,
 * connections, the writer thread) and destroy (drain, join, close), the puts in their four
 * flavours, subscribers, and the delete / thumbnail / max-pages jobs. The other files of the
 * module are listed in store_internal.h. */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_BATCH 256
#define DEFAULT_PAGE_MAX_BYTES (4u << 20)
#define DEFAULT_READERS 4
#define DEFAULT_MAX_ATTEMPTS 10

/* ---- lifecycle ---- */

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
    pthread_mutex_init(&s->health_mu, NULL);
    s->path = strdup(opts->path);
    if (!s->path) {
        rc = er_fail(err, ER_NOMEM, "out of memory");
        goto fail;
    }
    s->sync_full = opts->sync_full;
    s->busy_timeout_ms = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : STORE_BUSY_TIMEOUT_MS;
    s->recover = opts->recover;
    s->outbox = opts->outbox;
    s->max_rows = opts->max_rows;
    s->max_bytes = opts->max_bytes;
    s->max_bytes_default = opts->max_bytes_default;
    s->max_age_ms = opts->max_age_ms;
    s->ob_max_rows = opts->outbox_max_rows;
    s->ob_max_bytes = opts->outbox_max_bytes;
    s->ob_reject_new = opts->outbox_reject_new;
    s->max_attempts = opts->max_attempts > 0 ? opts->max_attempts : DEFAULT_MAX_ATTEMPTS;
    s->batch_max = opts->batch_max > 0 ? opts->batch_max : DEFAULT_BATCH;
    s->page_max_bytes =
        opts->page_max_bytes > 0 ? (size_t)opts->page_max_bytes : DEFAULT_PAGE_MAX_BYTES;
    s->q_max_len = (size_t)s->batch_max * QUEUE_JOBS_PER_BATCH;
    s->n_readers = opts->readers > 0 ? opts->readers : DEFAULT_READERS;
    s->ret_more = true; /* one pass at start: limits may have been lowered since last run */
    s->ret_last_ms = util_mono_ms();

    if (store__posts_create(s)) {
        rc = er_fail(err, ER_NOMEM, "out of memory");
        goto fail;
    }
    rc = store__db_open(s, err);
    if (rc) goto fail;
    rc = store__space_init(s, err);
    if (rc) goto fail;
    rc = store__writer_start(s, err);
    if (rc) goto fail;
    s->opened = true;
    *out = s;
    s = NULL;
fail:
    if (s) store_destroy(s);
    return rc;
}

void store_destroy(store *s)
{
    if (!s) return;
    store__writer_stop(s);
    store__db_close(s);
    store__space_close(s);
    store__posts_destroy(s);
    pthread_cond_destroy(&s->has_work);
    pthread_cond_destroy(&s->has_room);
    pthread_cond_destroy(&s->pool_cv);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->pool_mu);
    pthread_mutex_destroy(&s->health_mu);
    free(s->moved_to);
    free(s->path);
    free(s);
}

/* ---- writes ---- */

/* A put job for inf (owned by the job from here on); NULL when out of memory, inf destroyed. */
static job *put_job(inference *inf, store_done_fn done, void *arg, bool keep)
{
    job *j = calloc(1, sizeof *j);
    if (!j) {
        inference_destroy(inf);
        return NULL;
    }
    j->kind = JOB_PUT;
    j->inf = inf;
    j->offered = keep;
    j->cost = inference_footprint(inf); /* JSON held in memory counts as much as images */
    j->done = done;
    j->arg = arg;
    return j;
}

static er_rc put_async(store *s, inference *inf, store_done_fn done, void *arg, bool nowait,
                       bool keep)
{
    job *j = put_job(inf, done, arg, keep);
    return j ? store__enqueue(s, j, nowait) : ER_NOMEM;
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
    job *j = put_job(inf, NULL, NULL, false);
    if (!j) {
        if (res) *res = (store_put_result){.rc = ER_NOMEM};
        return ER_NOMEM;
    }
    return store__run_sync_res(s, j, res);
}

static er_rc subscribe(store *s, subscriber sub)
{
    er_rc rc = ER_OK;
    pthread_mutex_lock(&s->mu);
    if (s->n_subs == MAX_SUBSCRIBERS) {
        rc = ER_TOOBIG;
        goto fail;
    }
    s->subs[s->n_subs++] = sub;
fail:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

er_rc store_subscribe(store *s, store_commit_fn fn, void *arg)
{
    return subscribe(s, (subscriber){.fn = fn, .arg = arg});
}

er_rc store_subscribe_deleted(store *s, store_deleted_fn fn, void *arg)
{
    return subscribe(s, (subscriber){.deleted = fn, .arg = arg});
}

er_rc store_subscribe_cleared(store *s, store_cleared_fn fn, void *arg)
{
    return subscribe(s, (subscriber){.cleared = fn, .arg = arg});
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
        store__free_job(j);
        return ER_NOMEM;
    }
    return store__run_sync(s, j);
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

er_rc store_debug_max_pages(store *s, int64_t pages)
{
    job *j = calloc(1, sizeof *j);
    if (!j) return ER_NOMEM;
    j->kind = JOB_MAX_PAGES;
    j->value = pages;
    return store__run_sync(s, j);
}
