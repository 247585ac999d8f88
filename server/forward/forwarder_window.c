/* forwarder_window.c - the forwarder's window and its prepared messages, shared by the forwarder
 * thread (forwarder.c) and paho's PUBACK callback (forwarder_events.c). In a drain the thread
 * only keeps the prepared ring topped up (outbox page, rendering) and records the acks; each
 * PUBACK publishes the next prepared message from paho's own callback, so refilling the window
 * does not hop through the forwarder thread. Every function here runs with f->mu held (see the
 * lock order in forward_internal.h); none calls into the store or blocks. */
#include "forward/forward_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "core/util.h"
#include "forward/mqtt.h"
#include "forward/pace.h"
#include "forward/topics.h"

/* Asks for the thread at once (it takes the flag with the events). The caller signals f->cv
 * after unlocking f->mu, so the woken thread does not at once block on the mutex this callback
 * still holds (under paho's own mutex). */
static bool kick(forwarder *f)
{
    f->ev_urgent = true;
    return true;
}

bool forward__acked_locked(forwarder *f, int token)
{
    if (f->n_done == FWD_DONE_CAP) return false;
    for (int i = 0; i < f->n_fl; i++) {
        if (f->fl[i].token != token) continue;
        f->done[f->n_done++] = f->fl[i];
        f->fl[i] = f->fl[--f->n_fl];
        atomic_store(&f->in_flight, f->n_fl);
        return true;
    }
    return false;
}

int64_t forward__pace_head_locked(forwarder *f, int64_t now)
{
    const fwd_prepared *p = &f->prep[f->prep_head];
    int64_t w = pace_bucket_take(&f->rate, 1, now);
    if (w == 0) {
        w = pace_bucket_take(&f->bytes, (double)p->msg.len, now);
        if (w) f->rate.tokens += 1; /* give the publish token back */
    }
    if (w) f->pace_until_ms = now + w;
    return w;
}

const char *forward__topic(const forwarder *f, const fwd_prepared *p)
{
    return f->tp.t[p->n > 1 ? TOPICS_BATCH : TOPICS_INFERENCE];
}

void forward__pop_head_locked(forwarder *f, fwd_inflight *out)
{
    fwd_prepared *p = &f->prep[f->prep_head];
    *out = (fwd_inflight){.seq = p->seq, .batch = p->batch, .n = p->n};
    p->batch = NULL; /* out owns it now; the slot keeps its buffer for the next message */
    f->prep_bytes -= p->msg.len;
    f->prep_head = (f->prep_head + 1) % FWD_PREP_CAP;
    f->prep_n--;
}

void forward__sent_head_locked(forwarder *f, int token)
{
    fwd_inflight *fl = &f->fl[f->n_fl++];
    forward__pop_head_locked(f, fl);
    fl->token = token;
    atomic_store(&f->in_flight, f->n_fl);
    atomic_fetch_add_explicit(&f->sent, fl->n, memory_order_relaxed);
}

bool forward__refill_locked(forwarder *f)
{
    bool wake = false;
    int64_t now = -1;
    while (f->cb_window > 0 && !f->thread_sending && f->n_fl < f->cb_window && f->prep_n > 0) {
        if (now < 0) now = util_mono_ms();
        if (now < f->pace_until_ms) break; /* the thread sleeps until then */
        if (forward__pace_head_locked(f, now)) {
            wake = kick(f); /* its sleep ends at the new pace_until_ms */
            break;
        }
        const fwd_prepared *p = &f->prep[f->prep_head];
        int token;
        er_err err = {{0}};
        if (mqtt_publish(f->cb_mq, forward__topic(f, p), p->msg.data, p->msg.len,
                         f->cfg->iotcore_qos, false, &token, &err)) {
            /* refused or disconnected: the thread publishes it itself and handles the error
             * (dead letter, or the connection loss that follows) */
            f->cb_window = 0;
            wake = kick(f);
            break;
        }
        forward__sent_head_locked(f, token);
    }
    if (f->prep_n <= f->prep_low && !f->refill_asked) {
        f->refill_asked = true;
        wake = kick(f);
    }
    if (f->n_fl == 0) wake = kick(f); /* nothing in flight: the acks go to the store at once */
    return wake;
}
