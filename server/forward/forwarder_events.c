/* forwarder_events.c - the forwarder's hand-offs from other threads: paho's callbacks and the
 * store's commit hook queue an event (or add to the model metrics) under f->mu and signal f->cv;
 * paho's PUBACK callback may instead record the ack and publish the next prepared message
 * itself (forwarder_window.c). The forwarder thread (forwarder.c) takes the queue and sleeps
 * here between its deadlines. Nothing here touches the thread-only fields of struct forwarder. */
#include "forward/forward_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "forward/commands.h"

#define FREE_EVENTS_MAX 256 /* events kept for reuse; more are freed */

/* Appends e (caller holds f->mu). */
static void append(forwarder *f, fwd_event *e)
{
    e->next = NULL;
    if (f->ev_tail)
        f->ev_tail->next = e;
    else
        f->ev_head = e;
    f->ev_tail = e;
}

static void push(forwarder *f, fwd_event *e)
{
    pthread_mutex_lock(&f->mu);
    append(f, e);
    f->ev_urgent = true;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void cb_connected(void *arg, uint64_t gen)
{
    fwd_event *e = calloc(1, sizeof *e);
    if (!e) return; /* out of memory: the keep-alive will notice a dead session */
    e->type = FWD_EV_CONNECTED;
    e->gen = gen;
    push(arg, e);
}

static void cb_down(void *arg, uint64_t gen, bool was_connected, const char *reason)
{
    fwd_event *e = calloc(1, sizeof *e);
    if (!e) return;
    e->type = FWD_EV_DOWN;
    e->gen = gen;
    e->was_connected = was_connected;
    snprintf(e->reason, sizeof e->reason, "%s", reason);
    push(arg, e);
}

/* paho's receive thread, once per PUBACK. While the thread lets it (cb_window), a PUBACK of a
 * row's publish is recorded in f->done and the next prepared message is published from here
 * (forwarder_window.c). Anything else (a failure, a non-row publish, the probe, a stop) becomes a
 * kept event for the thread, which is woken only when enough PUBACKs wait (see wake_dones), or at
 * once while the callback refills (then dones are rare and one must not wait). */
static void cb_done(void *arg, uint64_t gen, int token, bool ok)
{
    forwarder *f = arg;
    bool wake = false;
    pthread_mutex_lock(&f->mu);
    if (ok && f->cb_window > 0 && gen == f->cb_gen && forward__acked_locked(f, token)) {
        wake = forward__refill_locked(f);
        goto out;
    }
    if (f->cb_window > 0) f->ev_urgent = true;
    fwd_event *e = f->ev_free;
    if (e) {
        f->ev_free = e->next;
        f->n_free--;
    } else if (!(e = calloc(1, sizeof *e))) {
        goto out;
    }
    e->type = FWD_EV_DONE;
    e->gen = gen;
    e->token = token;
    e->ok = ok;
    append(f, e);
    wake = ++f->n_dones >= f->wake_dones || f->ev_urgent;
out:
    pthread_mutex_unlock(&f->mu);
    /* after unlocking (see kick in forwarder_window.c); f outlives every callback: the thread
     * and forwarder_destroy end with mqtt_destroy, after which paho calls none */
    if (wake) pthread_cond_signal(&f->cv);
}

static void cb_message(void *arg, uint64_t gen, const char *topic, const void *payload, size_t len,
                       bool retained)
{
    if (len > COMMANDS_MAX_BYTES) len = COMMANDS_MAX_BYTES + 1; /* parse refuses it */
    fwd_event *e = calloc(1, sizeof *e);
    if (!e) return;
    e->type = FWD_EV_MESSAGE;
    e->gen = gen;
    e->retained = retained;
    e->topic = strdup(topic);
    e->payload = malloc(len + 1);
    if (!e->topic || !e->payload) {
        free(e->topic);
        free(e->payload);
        free(e);
        return;
    }
    memcpy(e->payload, payload, len);
    e->payload[len] = '\0';
    e->len = len;
    push(arg, e);
}

/* Store writer thread: collect confidences for the model metrics and wake the drain. Never blocks
 * beyond a short mutex. */
void forward__on_commit(void *arg, inference *const *committed, size_t n)
{
    forwarder *f = arg;
    pthread_mutex_lock(&f->mu);
    /* the model's confidence in what it saw: the best score of each inference with labels (the
     * true mean of a classification is always 1/labels, which says nothing) */
    for (size_t i = 0; i < n; i++)
        if (committed[i]->top_label) model_metrics_add(&f->model_metrics, committed[i]->top_score);
    f->wake = true;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

void forward__free_events(fwd_event *e)
{
    while (e) {
        fwd_event *n = e->next;
        free(e->topic);
        free(e->payload);
        free(e);
        e = n;
    }
}

fwd_event *forward__take_events(forwarder *f, fwd_event *done, bool *stop, bool *woken,
                                int *n_taken)
{
    pthread_mutex_lock(&f->mu);
    while (done) { /* kept blank: a message's strings go, the fixed fields are set anew */
        fwd_event *n = done->next;
        free(done->topic);
        free(done->payload);
        done->topic = done->payload = NULL;
        if (f->n_free < FREE_EVENTS_MAX) {
            done->next = f->ev_free;
            f->ev_free = done;
            f->n_free++;
        } else {
            free(done);
        }
        done = n;
    }
    fwd_event *evs = f->ev_head;
    f->ev_head = f->ev_tail = NULL;
    f->n_dones = 0;
    f->ev_urgent = false;
    *stop = f->stop;
    *woken = f->wake;
    f->wake = false;
    *n_taken = forward__take_done_locked(f);
    f->refill_asked = false;
    pthread_mutex_unlock(&f->mu);
    return evs;
}

int forward__take_done_locked(forwarder *f)
{
    int n = f->n_done;
    memcpy(f->taken, f->done, sizeof f->done[0] * (size_t)n);
    f->n_done = 0;
    return n;
}

void forward__wait_until(forwarder *f, int64_t mono_ms, bool stopping, int wake_dones)
{
    struct timespec ts;
    int64_t delta = mono_ms - util_mono_ms();
    util_deadline(&ts, CLOCK_MONOTONIC, delta > 0 ? delta : 0);
    pthread_mutex_lock(&f->mu);
    f->wake_dones = wake_dones > 1 ? wake_dones : 1;
    while ((stopping || !f->stop) && !f->wake && !f->ev_urgent && f->n_dones < f->wake_dones) {
        if (pthread_cond_timedwait(&f->cv, &f->mu, &ts) == ETIMEDOUT) break;
    }
    f->wake_dones = 1;
    pthread_mutex_unlock(&f->mu);
}

void forward__mqtt_callbacks(forwarder *f, mqtt_callbacks *out)
{
    *out = (mqtt_callbacks){.arg = f,
                            .connected = cb_connected,
                            .down = cb_down,
                            .done = cb_done,
                            .message = cb_message};
}
