/* forward_internal.h - what the forwarder's files share and no other module includes: the
 * forwarder's state (struct forwarder: the thread in forwarder.c owns it, the hand-offs from
 * paho's and the store's threads in forwarder_events.c touch only the fields under its mutex),
 * its state snapshot (forwarder.c) and the one status writer (forwarder_report.c) that
 * forwarder.c uses for the get_status command's reply.
 * Functions one file offers another are forward__*. */
#ifndef EI_FORWARD_FORWARD_INTERNAL_H
#define EI_FORWARD_FORWARD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/util.h"
#include "forward/commands.h"
#include "forward/forwarder.h"
#include "forward/model_metrics.h"
#include "forward/mqtt.h"
#include "forward/pace.h"
#include "forward/topics.h"

struct cJSON;

/* ---- the forwarder's state, shared by forwarder.c (the thread) and forwarder_events.c (the
 * hand-offs from other threads) ---- */

#define FWD_FETCH_ROWS 256
#define FWD_INFLIGHT_CAP 100
#define FWD_REASON_MAX 320
/* Messages rendered ahead of the window (fetched from the outbox and built by the thread, sent
 * by paho's PUBACK callback or the thread): FWD_PREP_WINDOWS windows but at most FWD_PREP_CAP
 * messages and FWD_PREP_BYTES of payload (always at least one message). The callback wakes the
 * thread when half of them are gone, so at window 10 the thread tops the ring up once per ~80
 * PUBACKs (4 windows: once per ~20, and the ring ran dry while the thread was slow to run) and
 * the half left covers ~6 ms of drain at 13k msgs/s. */
#define FWD_PREP_WINDOWS 16
#define FWD_PREP_CAP 400
#define FWD_PREP_BYTES (1u << 20)
/* Publishes acknowledged in the callback, waiting for the thread to record their acks. */
#define FWD_DONE_CAP (FWD_PREP_CAP + FWD_INFLIGHT_CAP)
/* Acks nothing waits on are gathered for up to FWD_ACK_DELAY_MS or FWD_ACK_BATCH rows before
 * they go to the store as one job (one durable commit for many rows instead of one every few
 * PUBACKs); at once whenever nothing is left in flight. A drain at ~13k msgs/s then makes ~10
 * commits a second (at 20 ms / 256 rows it made ~50: 350-400 fdatasyncs per 100k rows, and the
 * writer's CPU per message was a third higher); an acked row not yet deleted is only sent again
 * after a crash, never lost. */
#define FWD_ACK_BATCH 2048
#define FWD_ACK_DELAY_MS 100

typedef enum fwd_ev_type { FWD_EV_CONNECTED, FWD_EV_DOWN, FWD_EV_DONE, FWD_EV_MESSAGE } fwd_ev_type;

typedef struct fwd_event {
    struct fwd_event *next;
    fwd_ev_type type;
    uint64_t gen;
    int token;
    bool ok, was_connected, retained;
    char *topic, *payload; /* FWD_EV_MESSAGE, owned */
    size_t len;
    char reason[FWD_REASON_MAX];
} fwd_event;

/* One message ready to publish: rows as in fwd_inflight (token unused; batch owned), msg its
 * payload (kept allocated in its ring slot and reused). */
typedef struct fwd_prepared {
    int64_t seq;    /* the row (the first row of a batch) */
    int64_t *batch; /* owned: every row of a batch message (n > 1); NULL for one row */
    int n;
    util_buf msg;
} fwd_prepared;

typedef enum fwd_state { FWD_ST_CONNECTING = 0, FWD_ST_CONNECTED, FWD_ST_BACKOFF } fwd_state;

typedef struct fwd_inflight {
    int token;
    int64_t seq;    /* the row (the first row of a batch) */
    int64_t *batch; /* owned: every row of a batch message (n > 1); NULL for one row */
    int n;
} fwd_inflight;

struct forwarder {
    const config *cfg;
    store *st;
    policy *pol;
    topics tp;
    char client_id[256];
    pthread_t thread;
    bool started;

    pthread_mutex_t mu; /* guards the fields up to "thread-only" */
    pthread_cond_t cv;
    bool stop, wake; /* stop: forwarder_stop asked; wake: a commit */
    fwd_event *ev_head, *ev_tail;
    /* Events the thread is done with, kept for the next callbacks (no malloc per PUBACK). */
    fwd_event *ev_free;
    int n_free;
    /* PUBACKs queued since the thread took the queue, and how many of them wake it while it
     * sleeps (set before each sleep: a quarter of the window, so it refills in batches
     * instead of being woken per message; never more than it has in flight) */
    int n_dones, wake_dones;
    bool ev_urgent; /* an event other than a PUBACK is queued, or the callback asks: wake at once */

    /* The window and the messages prepared for it, shared by the thread and paho's PUBACK
     * callback (forwarder_window.c), all under mu. Lock order: paho holds its own client mutex
     * around some callbacks (PUBACK, failures, and MQTTAsync_destroy's), then the callback takes
     * mu, then MQTTAsync_send takes paho's command mutex. So the thread never calls paho while
     * holding mu (MQTTAsync_send from a non-paho thread takes paho's client mutex: inverted), and
     * the callback publishes only while cb_window > 0, which the thread clears before anything
     * that tears the connection down (rewind, stop, mqtt_destroy). */
    fwd_inflight fl[FWD_INFLIGHT_CAP]; /* published, not yet acknowledged */
    int n_fl;
    /* Ring of prepared messages: slots [prep_head, prep_head + prep_n) are ready and belong to
     * whoever publishes them; the others belong to the thread, which renders into them outside
     * the lock and then adds them to prep_n (the tail does not move when the head is taken). */
    fwd_prepared prep[FWD_PREP_CAP];
    int prep_head, prep_n;
    size_t prep_bytes;
    int prep_low;                    /* the callback wakes the thread when prep_n falls to this */
    bool refill_asked;               /* ... once per thread turn */
    fwd_inflight done[FWD_DONE_CAP]; /* acknowledged in the callback; the thread records them */
    int n_done;
    /* > 0: the callback publishes from prep up to this many in flight (the thread sets it when
     * connected and not probing, failing or stopping); 0: every PUBACK goes to the thread */
    int cb_window;
    uint64_t cb_gen; /* the connection cb_window is for */
    mqtt *cb_mq;
    bool thread_sending; /* the thread publishes prep's head outside mu: the callback waits */
    pace_bucket rate, bytes;
    int64_t pace_until_ms;
    model_metrics_state model_metrics;
    fwd_state state;
    char last_error[FWD_REASON_MAX];
    int64_t connected_since;

    atomic_int_fast64_t sent, acked, reconnects, in_flight, shrunk, omitted, commands;
    atomic_int_fast64_t commands_replayed; /* retained commands not run again */
    atomic_bool restart;

    /* ---- thread-only ---- */
    mqtt *mq;  /* one paho client for the forwarder's life: see mqtt.h for why */
    bool live; /* a connection attempt or a connection of gen is under way on mq */
    uint64_t gen;
    /* After a quick death with rows in flight, one at a time until the newest of them
     * (probe_until) is acked: the killer row is found alone, and no burst waits in paho's
     * queue to reach the next connection ahead of it (mqtt.h). */
    bool probe;
    int64_t probe_until;
    store_page page;
    size_t page_i;
    bool page_empty;      /* the last fetch found nothing: wait for a commit */
    int64_t prepared_seq; /* the last row prepared (or dead-lettered): the fetch cursor */
    int64_t acks[FWD_ACK_BATCH + FWD_FETCH_ROWS]; /* acked, not yet handed to the store */
    size_t n_acks;
    int64_t ack_due_ms; /* when the oldest of them goes to the store at the latest */
    int64_t built_seqs[FWD_FETCH_ROWS]; /* rows of the message being prepared */
    int64_t prep_until_ms;              /* the outbox read or a render failed: prepare again then */
    fwd_inflight taken[FWD_DONE_CAP];   /* done[] taken over by the thread */
    int64_t backlog, backlog_checked_ms; /* pending rows, refreshed at most every second */
    pace_backoff bo;
    int64_t next_connect_ms, last_connect_ms, connected_at_ms, next_model_metrics_ms;
    bool start_sent;
    bool up;                  /* CONNACK received on the current connection */
    bool flapping;            /* the last loss repeated the one before: log reconnects quietly */
    int64_t send_failed_ms;   /* a publish failed without a connection loss (yet); 0 if not */
    int64_t stop_by_ms;       /* stopping: the last moment to wait for acks in flight */
    commands_handled handled; /* commands run since command/input was last seen cleared */
    int64_t clear_sent_ms;    /* mono time of a clear not yet echoed back; 0 if none */
    bool clear_refused;       /* the broker dropped us for a clear: stop clearing */
};

/* ---- the hand-offs (forwarder_events.c) ---- */

/* The paho callbacks, which queue their event for the thread. */
void forward__mqtt_callbacks(forwarder *f, mqtt_callbacks *out);
/* The store's commit hook: counts the model metrics and wakes the thread. */
void forward__on_commit(void *arg, inference *const *committed, size_t n);
void forward__free_events(fwd_event *e);
/* The thread's turn: gives back the events it is done with (done, may be NULL), takes the
 * queued ones (returned, oldest first), the stop and wake flags (wake is cleared) and the
 * publishes acknowledged in the callback (into f->taken, *n_taken of them). */
fwd_event *forward__take_events(forwarder *f, fwd_event *done, bool *stop, bool *woken,
                                int *n_taken);
/* Moves the publishes acknowledged in the callback (f->done) to f->taken; returns how many.
 * The caller holds f->mu. */
int forward__take_done_locked(forwarder *f);

/* ---- the window and the prepared messages (forwarder_window.c; callers hold f->mu) ---- */

/* PUBACK callback: moves the publish of token to f->done; false if it is not in the window
 * (or f->done is full: then the thread handles it as an event). */
bool forward__acked_locked(forwarder *f, int token);
/* PUBACK callback: publishes prepared messages while the window, the pacing and cb_window
 * allow. Returns true when the thread must be woken (the caller signals f->cv after unlocking
 * f->mu): the prepared queue ran low, the window emptied (acks go at once), pacing says wait
 * or a publish failed (the thread then tries it itself). */
bool forward__refill_locked(forwarder *f);
/* Takes the pacing tokens for the prepared head at now: 0, or ms to wait (f->pace_until_ms set). */
int64_t forward__pace_head_locked(forwarder *f, int64_t now);
/* Takes the prepared head out of the ring (its rows and batch into out). */
void forward__pop_head_locked(forwarder *f, fwd_inflight *out);
/* The prepared head was published as token: it moves into the window. */
void forward__sent_head_locked(forwarder *f, int token);
/* The topic of prepared message p. */
const char *forward__topic(const forwarder *f, const fwd_prepared *p);
/* Sleeps until mono_ms, an event other than a PUBACK, wake_dones PUBACKs, or a commit; and,
 * unless stopping (the thread is finishing the publishes in flight), until forwarder_stop. */
void forward__wait_until(forwarder *f, int64_t mono_ms, bool stopping, int wake_dones);

/* One snapshot of the forwarder's state and counters, for its one status writer. */
typedef struct forwarder_status {
    const char *state; /* "connecting", "connected", "backoff" (static string) */
    char endpoint[300];
    char client_id[256];
    char last_error[320];    /* "" if none */
    int64_t connected_since; /* epoch ms of the current connection's CONNACK; 0 if down */
    int64_t queue_depth;     /* outbox rows waiting (store) */
    int64_t oldest_pending_age_ms;
    int64_t in_flight;         /* published, not yet acknowledged */
    int64_t sent;              /* inference publishes handed to the client since start */
    int64_t acked;             /* rows acknowledged (deleted from the outbox) since start */
    int64_t dropped;           /* outbox full, oldest dropped (store, since start) */
    int64_t rejected;          /* outbox full, new not queued (store, since start) */
    int64_t dead;              /* dead-lettered rows (store) */
    int64_t reconnects;        /* connection attempts after the first */
    int64_t shrunk;            /* images re-encoded smaller to fit */
    int64_t omitted;           /* images left out ("image_omitted") */
    int64_t commands;          /* commands handled */
    int64_t commands_replayed; /* retained commands delivered again and not run again */
    bool restart_requested;    /* a restart command was received */
    int64_t qos;               /* iotcore_qos, the QoS of every publish */
} forwarder_status;

void forwarder_get_status(forwarder *f, forwarder_status *out);

/* Adds s to o under the get_status command's key names ("connection", "dead_letters", ...);
 * false when out of memory. */
bool forward__status_command(const forwarder_status *s, struct cJSON *o);

#endif
