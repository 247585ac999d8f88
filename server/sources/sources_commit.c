/* sources_commit.c - the one way a source stores its inferences (sources_commits in
 * sources_internal.h): a FIFO of the inferences it made and the store has not committed yet,
 * offered to the store one at a time with a completion, so that no commit fails unseen.
 *
 * Why one at a time: a transaction lost to a full disk or a lock fails every put in it, but a
 * later transaction may succeed (retention made room, the lock was let go); with several puts
 * of a source in flight, a later inference could then be stored before an earlier one. With one
 * in flight the source's inferences are stored in the order it made them, each exactly once.
 *
 * On a failure that may pass (store_put_result.retry) the store hands the inference back and
 * it is offered again after a delay (0.1 s doubling to 5 s); meanwhile the source stops reading
 * its input (the caller's part: a thread waits in sources__commits_drain, the runner-ws source
 * turns off rx flow control), so the held FIFO stays as small as one read of input. Reading
 * goes on while one inference is in flight and none waits behind it, so a working store costs
 * the source no more than one commit's latency. A put the
 * store refuses for itself (a bad inference) is logged and dropped, counted as store_refused.
 *
 * The FIFO, the delay and the counters belong to the source's thread; the outcome of the put in
 * flight is handed over under mu by the store's done callback (on the writer thread), which then
 * writes to an eventfd the waits poll (the runner-ws source looks on a short timer). A source
 * destroyed with a put in flight leaves the object to that callback to free ("orphaned"). */
#include "sources/sources_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

#define COMMIT_RETRY_MIN_MS 100
#define COMMIT_RETRY_MAX_MS 5000
#define COMMIT_QUEUE_FULL_MS 5 /* the writer's queue was full: offer again soon */

struct sources_commits {
    store *st;
    sources_slot *slot;
    int efd; /* readable when an outcome arrived */
    /* the source's thread only */
    inference **q; /* ring of held inferences, oldest at head */
    size_t head, n, cap;
    int64_t retry_at; /* monotonic ms: offer the head no earlier */
    int64_t delay_ms; /* the next retry's delay */
    bool reported;    /* the slot's last_error says the store fails */
    /* under mu */
    pthread_mutex_t mu;
    bool in_flight, outcome_ready, orphaned;
    er_rc outcome_rc;
    bool outcome_retry;
    inference *back; /* handed back by the store */
};

static void settle(sources_commits *c, int64_t now);

static void commits_free(sources_commits *c)
{
    for (size_t i = 0; i < c->n; i++)
        inference_destroy(c->q[(c->head + i) % c->cap]);
    inference_destroy(c->back);
    if (c->efd >= 0) close(c->efd);
    pthread_mutex_destroy(&c->mu);
    free(c->q);
    free(c);
}

er_rc sources__commits_create(store *st, sources_slot *slot, sources_commits **out)
{
    sources_commits *c = calloc(1, sizeof *c);
    if (!c) return ER_NOMEM;
    pthread_mutex_init(&c->mu, NULL);
    c->st = st;
    c->slot = slot;
    c->delay_ms = COMMIT_RETRY_MIN_MS;
    c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->efd < 0) {
        commits_free(c);
        return ER_IO;
    }
    *out = c;
    return ER_OK;
}

void sources__commits_destroy(sources_commits *c)
{
    if (!c) return;
    settle(c, util_mono_ms());   /* an outcome that came: not counted as held */
    if (c->n + c->in_flight > 0) /* in_flight read unlocked: only this thread sets it */
        log_warn("sources",
                 "source \"%s\": stopping with %zu inferences not stored (the store was "
                 "failing); they were acknowledged to no one and are dropped",
                 c->slot->st.name, c->n + (c->in_flight ? 1 : 0));
    pthread_mutex_lock(&c->mu);
    bool later = c->in_flight && !c->outcome_ready;
    c->orphaned = later;
    pthread_mutex_unlock(&c->mu);
    if (!later) commits_free(c); /* else the done callback frees it */
}

/* The slot's held count and counters. */
static void slot_update(sources_commits *c, uint64_t retries, uint64_t refused)
{
    pthread_mutex_lock(&c->slot->mu);
    c->slot->st.held = c->n + (c->in_flight ? 1 : 0);
    c->slot->st.store_retries += retries;
    c->slot->st.store_refused += refused;
    pthread_mutex_unlock(&c->slot->mu);
}

static bool push(sources_commits *c, inference *inf, bool front)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        inference **q = malloc(cap * sizeof *q);
        if (!q) return false;
        for (size_t i = 0; i < c->n; i++)
            q[i] = c->q[(c->head + i) % c->cap];
        free(c->q);
        c->q = q;
        c->cap = cap;
        c->head = 0;
    }
    if (front) {
        c->head = (c->head + c->cap - 1) % c->cap;
        c->q[c->head] = inf;
    } else {
        c->q[(c->head + c->n) % c->cap] = inf;
    }
    c->n++;
    return true;
}

void sources__commits_add(sources_commits *c, inference *inf)
{
    if (!push(c, inf, false)) {
        log_warn("sources", "source \"%s\": out of memory holding an inference: dropped",
                 c->slot->st.name);
        inference_destroy(inf);
        slot_update(c, 0, 1);
        return;
    }
    slot_update(c, 0, 0);
}

size_t sources__commits_held(const sources_commits *c)
{
    return c->n + (c->in_flight ? 1 : 0);
}

/* The store's answer, on the writer thread. */
static void on_done(void *arg, const store_put_result *res)
{
    sources_commits *c = arg;
    pthread_mutex_lock(&c->mu);
    bool orphaned = c->orphaned;
    c->outcome_ready = true;
    c->outcome_rc = res->rc;
    c->outcome_retry = res->retry;
    c->back = res->held; /* ours now (freed with c when orphaned) */
    pthread_mutex_unlock(&c->mu);
    if (orphaned) {
        c->in_flight = false;
        commits_free(c);
        return;
    }
    uint64_t one = 1;
    ssize_t w = write(c->efd, &one, sizeof one); /* a full counter is still readable */
    (void)w;
}

/* Settles the outcome that arrived, if one did. */
static void settle(sources_commits *c, int64_t now)
{
    pthread_mutex_lock(&c->mu);
    bool ready = c->outcome_ready;
    er_rc rc = c->outcome_rc;
    bool retry = c->outcome_retry;
    inference *back = c->back;
    c->back = NULL;
    if (ready) c->outcome_ready = c->in_flight = false;
    pthread_mutex_unlock(&c->mu);
    if (!ready) return;
    const char *name = c->slot->st.name;
    if (rc == ER_OK) {
        c->delay_ms = COMMIT_RETRY_MIN_MS;
        if (c->reported) /* last_error stays: the last problem seen (docs/api.md) */
            log_info("sources", "source \"%s\": the store takes inferences again", name);
        c->reported = false;
        slot_update(c, 0, 0);
        return;
    }
    if (!retry || !back || !push(c, back, true)) { /* refused for itself: cannot succeed */
        inference_destroy(back);
        log_warn("sources", "source \"%s\": the store refused an inference: %s (dropped)", name,
                 er_rc_name(rc));
        slot_update(c, 0, 1);
        return;
    }
    c->retry_at = now + c->delay_ms;
    if (!c->reported)
        log_warn("sources",
                 "source \"%s\": storing failed (%s): holding the inference, reading paused, "
                 "retrying",
                 name, er_rc_name(rc));
    c->reported = true;
    pthread_mutex_lock(&c->slot->mu);
    snprintf(c->slot->st.last_error, sizeof c->slot->st.last_error,
             "store: %s; holding %zu inferences, input paused, retrying in %lld ms", er_rc_name(rc),
             c->n, (long long)c->delay_ms);
    pthread_mutex_unlock(&c->slot->mu);
    c->delay_ms = c->delay_ms * 2 > COMMIT_RETRY_MAX_MS ? COMMIT_RETRY_MAX_MS : c->delay_ms * 2;
    slot_update(c, 1, 0);
}

int sources__commits_step(sources_commits *c)
{
    int64_t now = util_mono_ms();
    settle(c, now);
    if (c->in_flight) return -1; /* the outcome wakes the caller */
    if (c->n == 0) return -1;
    if (now < c->retry_at) return (int)(c->retry_at - now);
    inference *inf = c->q[c->head];
    c->in_flight = true; /* before the offer: the outcome may come before it returns */
    er_rc rc = store_offer_async(c->st, inf, on_done, c);
    if (rc == ER_BUSY) { /* the writer's queue is full: still ours */
        c->in_flight = false;
        c->retry_at = now + COMMIT_QUEUE_FULL_MS;
        return COMMIT_QUEUE_FULL_MS;
    }
    c->head = (c->head + 1) % c->cap;
    c->n--;
    if (rc) { /* taken and freed: the store is closing or out of memory */
        c->in_flight = false;
        log_warn("sources", "source \"%s\": cannot store an inference: %s", c->slot->st.name,
                 er_rc_name(rc));
        slot_update(c, 0, 1);
        return c->n ? 0 : -1;
    }
    return -1;
}

size_t sources__commits_queued(const sources_commits *c)
{
    return c->n;
}

/* Steps and waits until nothing is queued (all: nor in flight), stop_fd (-1: none) is readable
 * (true) or max_ms (-1: no limit) passed (true). */
static bool wait_until(sources_commits *c, int stop_fd, int max_ms, bool all)
{
    int64_t until = max_ms < 0 ? INT64_MAX : util_mono_ms() + max_ms;
    for (;;) {
        int ms = sources__commits_step(c);
        if (c->n == 0 && (!all || !c->in_flight)) return false;
        int64_t left = until - util_mono_ms();
        if (left <= 0) return true;
        if (ms < 0 || ms > left) ms = left > 60000 ? 60000 : (int)left;
        struct pollfd p[2] = {{.fd = c->efd, .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
        int n = poll(p, stop_fd >= 0 ? 2 : 1, ms);
        if (n < 0 && errno != EINTR) return true;
        if (n > 0 && stop_fd >= 0 && p[1].revents) return true;
        if (n > 0 && p[0].revents) {
            uint64_t v;
            ssize_t r = read(c->efd, &v, sizeof v);
            (void)r;
        }
    }
}

bool sources__commits_drain(sources_commits *c, int stop_fd)
{
    return wait_until(c, stop_fd, -1, false);
}

bool sources__commits_finish(sources_commits *c, int stop_fd, int max_ms)
{
    return wait_until(c, stop_fd, max_ms, true);
}
