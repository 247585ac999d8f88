/* test_store_commit.c - the store's writer against real database files: group commit under
 * concurrent puts with a subscriber seeing every commit once and in order, a bad put failing
 * alone inside its batch (before and after it wrote rows), the queue drained on destroy, deletes
 * announced to the delete subscribers. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "raw_db.h"
#include "store_fixture.h"

/* ---- group commit, subscribers ---- */

#define THREADS 8
#define PER_THREAD 200

typedef struct sub_log {
    pthread_mutex_t mu;
    int64_t *seqs;
    size_t n, cap;
    int out_of_order;
} sub_log;

static void on_commit(void *arg, inference *const *committed, size_t n)
{
    sub_log *l = arg;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < n; i++) {
        if (l->n && committed[i]->seq <= l->seqs[l->n - 1]) l->out_of_order++;
        if (l->n < l->cap) l->seqs[l->n++] = committed[i]->seq;
    }
    pthread_mutex_unlock(&l->mu);
}

static void *put_thread(void *arg)
{
    store *s = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        store_put_result res;
        if (store_put(s, make_inf(i, "http", "l", 0.5), &res) != ER_OK) return (void *)1;
    }
    return NULL;
}

static void test_group_commit(void)
{
    char path[512];
    db_path(path, sizeof path);
    store *s = open_store(path, NULL);
    sub_log log = {.cap = THREADS * PER_THREAD + 10};
    pthread_mutex_init(&log.mu, NULL);
    log.seqs = calloc(log.cap, sizeof *log.seqs);
    CHECK_EQ_INT(store_subscribe(s, on_commit, &log), ER_OK);

    /* A duplicate is answered but not announced. */
    inference *first = make_inf(1, "http", "l", 0.5);
    inference *again = make_inf(1, "http", "l", 0.5);
    memcpy(again->guid, first->guid, sizeof first->guid);
    put_ok(s, first);
    store_put_result dup;
    CHECK_EQ_INT(store_put(s, again, &dup), ER_OK);
    CHECK(dup.duplicate);

    store_info before;
    CHECK_EQ_INT(store_get_info(s, &before), ER_OK);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, put_thread, s);
    int failed = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        failed += r != NULL;
    }
    CHECK_EQ_INT(failed, 0);
    store_info info;
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    int64_t commits = info.commits - before.commits, puts = info.puts - before.puts;
    printf("group commit: %lld puts in %lld commits\n", (long long)puts, (long long)commits);
    CHECK_EQ_INT(puts, THREADS * PER_THREAD);
    CHECK(commits < puts);
    CHECK_EQ_INT(info.rows, THREADS * PER_THREAD + 1);

    /* Every row present once, seq strictly decreasing newest first. */
    store_filter f = {.limit = 1000};
    size_t total = 0;
    int64_t last = INT64_MAX;
    int ordered = 1;
    for (;;) {
        store_page p;
        if (store_list(s, &f, &p) != ER_OK) break;
        for (size_t i = 0; i < p.n; i++) {
            ordered &= p.items[i]->seq < last;
            last = p.items[i]->seq;
        }
        total += p.n;
        f.before_seq = p.next_seq;
        store_page_free(&p);
        if (!f.before_seq) break;
    }
    CHECK_EQ_INT(total, THREADS * PER_THREAD + 1);
    CHECK(ordered);

    /* The subscriber saw each committed inference exactly once, in seq order. */
    store_destroy(s);
    CHECK_EQ_INT(log.n, THREADS * PER_THREAD + 1);
    CHECK_EQ_INT(log.out_of_order, 0);
    free(log.seqs);
    pthread_mutex_destroy(&log.mu);
}

/* A put that violates NOT NULL fails alone; the rest of its batch commits. To get them into one
 * batch, the first put's callback holds the writer until the others are queued. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
    int entered;
    int done;
    store_put_result res[16];
} gate;

static void gate_hold(void *arg, const store_put_result *res)
{
    gate *g = arg;
    pthread_mutex_lock(&g->mu);
    g->entered = 1;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    (void)res;
    pthread_mutex_unlock(&g->mu);
}

typedef struct slot {
    gate *g;
    int i;
} slot;

static void gate_done(void *arg, const store_put_result *res)
{
    slot *sl = arg;
    pthread_mutex_lock(&sl->g->mu);
    sl->g->res[sl->i] = *res;
    sl->g->done++;
    pthread_cond_broadcast(&sl->g->cv);
    pthread_mutex_unlock(&sl->g->mu);
}

/* Holds the writer with a first put, queues ten more (the one at index bad spoiled by spoil)
 * so they run as one batch, lets them go and waits for all ten answers (in g->res). Checks
 * what both bad-put tests expect: one transaction, only the spoiled put failed, ten rows and
 * outbox rows, one put error, nothing stored under the spoiled put's id. */
static void run_batch_with_bad_put(store *s, int bad, void (*spoil)(inference *inf), er_rc want)
{
    gate g = {0};
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    slot slots[10];

    CHECK_EQ_INT(store_put_async(s, make_inf(1, "http", "a", 0.5), gate_hold, &g), ER_OK);
    pthread_mutex_lock(&g.mu);
    while (!g.entered)
        pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);
    store_info before;
    CHECK_EQ_INT(store_get_info(s, &before), ER_OK);

    char bad_guid[UTIL_UUID_LEN + 1];
    for (int i = 0; i < 10; i++) {
        inference *inf = make_inf(10 + i, "http", "a", 0.5);
        if (i == bad) {
            spoil(inf);
            memcpy(bad_guid, inf->guid, sizeof bad_guid);
        }
        slots[i] = (slot){&g, i};
        CHECK_EQ_INT(store_put_async(s, inf, gate_done, &slots[i]), ER_OK);
    }
    pthread_mutex_lock(&g.mu);
    g.open = 1;
    pthread_cond_broadcast(&g.cv);
    while (g.done < 10)
        pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);

    store_info info;
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.commits - before.commits, 1); /* the ten shared one transaction */
    for (int i = 0; i < 10; i++) {
        if (i == bad) {
            CHECK_EQ_INT(g.res[i].rc, want);
            CHECK_EQ_INT(g.res[i].seq, 0);
        } else {
            CHECK_EQ_INT(g.res[i].rc, ER_OK);
            CHECK(g.res[i].seq > 0);
            CHECK(!g.res[i].duplicate);
        }
    }
    CHECK_EQ_INT(info.rows, 10);
    CHECK_EQ_INT(info.outbox, 10);
    CHECK_EQ_INT(info.put_errors, 1);
    inference *got = NULL;
    CHECK_EQ_INT(store_get(s, bad_guid, &got), ER_NOTFOUND);
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
}

static void null_result(inference *inf)
{
    inference_set_str(&inf->result_json, NULL); /* violates NOT NULL */
}

static void test_bad_put_alone(void)
{
    char path[512];
    db_path(path, sizeof path);
    store_opts o = {.outbox = true};
    store *s = open_store(path, &o);
    run_batch_with_bad_put(s, 4, null_result, ER_DB);
    store_destroy(s);
}

/* A put whose second label repeats the first fails alone (ER_INVALID: packing its labels refuses
 * it, schema/005_labels.sql) after the batch's first pass wrote its neighbours: the batch runs
 * again job by job, its neighbours commit, the counters match, and the publish policy (which may
 * count calls) is asked once per put even though the batch runs twice. (A put failing after its
 * own rows went in, e.g. out of memory gathering its postings, takes the same path: test_fault.) */
static inference_publish count_policy(void *arg, const inference *inf)
{
    (void)inf;
    atomic_int *n = arg;
    atomic_fetch_add(n, 1);
    return INFERENCE_PUBLISH_PENDING;
}

static void label_twice(inference *inf)
{
    inference_add_label(inf, "b", 0.25);
    inf->labels[1].label[0] = 'a'; /* now "a" twice */
}

static void test_bad_put_after_writes_alone(void)
{
    char path[512];
    db_path(path, sizeof path);
    store_opts o = {.outbox = true};
    store *s = open_store(path, &o);
    atomic_int asked = 0;
    store_set_policy(s, count_policy, &asked);
    run_batch_with_bad_put(s, 6, label_twice, ER_INVALID);
    CHECK_EQ_INT(atomic_load(&asked), 11);
    store_page pg = {0};
    store_filter f = {.limit = 100};
    CHECK_EQ_INT(store_list(s, &f, &pg), ER_OK);
    CHECK_EQ_INT((long long)pg.n, 10);
    store_page_free(&pg);
    store_destroy(s);
}

/* store_destroy drains the queue: every queued put commits and its callback runs. A small
 * batch_max also makes producers wait on the bounded queue. */
typedef struct counter {
    pthread_mutex_t mu;
    int ok, failed;
} counter;

static void count_done(void *arg, const store_put_result *res)
{
    counter *c = arg;
    pthread_mutex_lock(&c->mu);
    if (res->rc == ER_OK && res->seq > 0)
        c->ok++;
    else
        c->failed++;
    pthread_mutex_unlock(&c->mu);
}

static void test_drain_on_destroy(void)
{
    char path[512];
    db_path(path, sizeof path);
    store_opts o = {.batch_max = 2};
    store *s = open_store(path, &o);
    counter c = {.ok = 0};
    pthread_mutex_init(&c.mu, NULL);
    for (int i = 0; i < 100; i++)
        CHECK_EQ_INT(store_put_async(s, make_inf(i, "http", "a", 0.5), count_done, &c), ER_OK);
    store_destroy(s);
    CHECK_EQ_INT(c.ok, 100);
    CHECK_EQ_INT(c.failed, 0);
    s = open_store(path, NULL);
    store_info info;
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 100);
    store_destroy(s);
    pthread_mutex_destroy(&c.mu);
}

/* The done callback of a put runs on the writer thread; it looks whether the subscriber has
 * already been told of that seq. */
typedef struct order_probe {
    sub_log *log;
    int told_first, told_late;
} order_probe;

static void probe_done(void *arg, const store_put_result *res)
{
    order_probe *p = arg;
    pthread_mutex_lock(&p->log->mu);
    bool seen = p->log->n && p->log->seqs[p->log->n - 1] >= res->seq;
    pthread_mutex_unlock(&p->log->mu);
    if (res->rc == ER_OK && seen)
        p->told_first++;
    else
        p->told_late++;
}

/* Subscribers hear of a commit before its caller does, so whoever acts on an answered put (a
 * live client connecting after its POST) finds the subscribers up to date. */
static void test_subscribers_before_caller(void)
{
    char path[512];
    db_path(path, sizeof path);
    store *s = open_store(path, NULL);
    sub_log log = {.cap = 64};
    pthread_mutex_init(&log.mu, NULL);
    log.seqs = calloc(log.cap, sizeof *log.seqs);
    CHECK_EQ_INT(store_subscribe(s, on_commit, &log), ER_OK);
    order_probe probe = {.log = &log};
    for (int i = 0; i < 20; i++)
        CHECK_EQ_INT(store_put_async(s, make_inf(i, "http", "o", 0.5), probe_done, &probe), ER_OK);
    store_destroy(s); /* drains: every callback has run */
    CHECK_EQ_INT(probe.told_first, 20);
    CHECK_EQ_INT(probe.told_late, 0);
    free(log.seqs);
    pthread_mutex_destroy(&log.mu);
}

/* ---- delete subscribers ---- */

typedef struct del_log {
    char guids[4][UTIL_UUID_LEN + 1];
    size_t n, calls, commits;
} del_log;

static void on_deleted(void *arg, const char *const *guids, size_t n)
{
    del_log *l = arg; /* the writer thread; the test reads it after the store answered */
    l->calls++;
    for (size_t i = 0; i < n && l->n < 4; i++)
        snprintf(l->guids[l->n++], sizeof l->guids[0], "%s", guids[i]);
}

static void count_commit(void *arg, inference *const *committed, size_t n)
{
    ((del_log *)arg)->commits++;
}

/* store_delete announces the id to the delete subscribers before it returns; a delete of
 * nothing, a put and retention announce nothing, and commit subscribers hear no delete. */
static void test_delete_announced(void)
{
    char path[512];
    db_path(path, sizeof path);
    store_opts o = {.max_rows = 1};
    store *s = open_store(path, &o);
    del_log dl = {.n = 0}, cl = {.n = 0};
    CHECK_EQ_INT(store_subscribe_deleted(s, on_deleted, &dl), ER_OK);
    CHECK_EQ_INT(store_subscribe(s, count_commit, &cl), ER_OK);
    inference *a = make_inf(1, "http", "a", 0.5);
    char guid[UTIL_UUID_LEN + 1];
    memcpy(guid, a->guid, sizeof guid);
    put_ok(s, a);
    CHECK_EQ_INT(dl.calls, 0);
    CHECK_EQ_INT(store_delete(s, guid), ER_OK);
    CHECK_EQ_INT(dl.calls, 1); /* already: before store_delete returned */
    CHECK_EQ_INT(dl.n, 1);
    CHECK_EQ_STR(dl.guids[0], guid);
    CHECK_EQ_INT(store_delete(s, guid), ER_NOTFOUND);
    CHECK_EQ_INT(dl.calls, 1);
    put_ok(s, make_inf(2, "http", "a", 0.5));
    put_ok(s, make_inf(3, "http", "a", 0.5)); /* max_rows 1: retention removes the older */
    CHECK_EQ_INT(store_retain(s), ER_OK);
    store_info info;
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 1);
    CHECK_EQ_INT(dl.calls, 1);
    CHECK_EQ_INT(cl.commits, 3); /* the three puts */
    store_destroy(s);
}

int main(void)
{
    if (!store_fixture_begin("/tmp/ei-store-commit-XXXXXX")) return 1;
    test_group_commit();
    test_bad_put_alone();
    test_bad_put_after_writes_alone();
    test_drain_on_destroy();
    test_subscribers_before_caller();
    test_delete_announced();
    return store_fixture_end();
}
