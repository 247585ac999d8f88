/* sources_internal.h - what the sources module's files share, not for other modules: a source
 * kind (one row of the kinds table), the slot a running source reports its state and counters
 * into, and the set of running sources.
 *   sources.c        the kinds table, the slots, create and destroy;
 *   sources_check.c  the one validation of the `sources` setting;
 *   sources_report.c the status object and the series of every source (the report part);
 *   sources_commit.c every inference a source makes goes to the store through it (held and
 *                    retried in order while the store fails);
 *   serial_source.c, runner_ws.c, eim_source.c  one kind each, exporting its row
 *                    (sources_kind_<kind>).
 * Adding a kind is one new file exporting its row, and that row in sources.c's table.
 * Functions one file offers another are sources__*. */
#ifndef EI_SOURCES_SOURCES_INTERNAL_H
#define EI_SOURCES_SOURCES_INTERNAL_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sources/sources.h"

#define SOURCES_ERROR_MAX 256
#define SOURCES_COUNTERS_MAX 8 /* most counters of a kind's own */

/* One counter a kind keeps besides the ones every source keeps (inferences, reconnects): its
 * key in GET /api/v1/sources and its family ei_relay_source_<name>_total in /metrics. */
typedef struct sources_counter {
    const char *name;
    const char *help;
} sources_counter;

typedef struct sources_kind sources_kind;

/* One source's state and counters as the API shows them (a copy, or the slot's own). */
typedef struct sources_status {
    char name[SOURCES_NAME_MAX];
    const sources_kind *kind;
    const char *state;                       /* starting|running|backoff|stopped (static) */
    char last_error[SOURCES_ERROR_MAX];      /* "" when none */
    uint64_t inferences, reconnects;         /* every kind keeps these */
    uint64_t store_retries, store_refused;   /* and these (sources_commit.c) */
    uint64_t held;                           /* inferences made, not yet committed */
    uint64_t counters[SOURCES_COUNTERS_MAX]; /* the kind's own, in its counters' order */
    int64_t backoff_ms;                      /* current reopen delay (0 when running) */
} sources_status;

/* The shared, mutex-guarded record a source reports into (sources.c owns it; it outlives the
 * source). */
typedef struct sources_slot {
    pthread_mutex_t mu;
    sources_status st;
    char *model_info; /* malloc'ed JSON object text from a runner's hello; NULL before one */
} sources_slot;

/* What every source may use, borrowed for the sources' whole life. */
typedef struct sources_env {
    store *st;
    const char *device;
    int stop_fd;  /* readable once every source must stop (threads poll it) */
    wsloop *loop; /* setup time until wsloop_start: vhosts and timers go on it */
} sources_env;

/* A kind of source: one row of the kinds table (sources.c). */
struct sources_kind {
    const char *name; /* the "kind" value */
    /* Checks the kind's own settings in conf (the source's JSON object, borrowed), naming the
     * source and key in err ("sources \"<name>\".<key>: ..."), ER_CONFIG when bad. Opens and
     * starts nothing. */
    er_rc (*validate)(const cJSON *conf, const char *name, er_err *err);
    /* Starts one source on settings validate accepted; it reports into slot. */
    er_rc (*create)(const cJSON *conf, const sources_env *env, sources_slot *slot, void **out,
                    er_err *err);
    /* Setup time only, when start-up fails after create: takes what create scheduled off the
     * loop, which lives on. NULL when there is nothing to undo. */
    void (*cancel)(void *source);
    /* Stops and frees (the stop pipe is readable and the loop destroyed by then); NULL is
     * fine. */
    void (*destroy)(void *source);
    const sources_counter *counters; /* its own counters, n_counters <= SOURCES_COUNTERS_MAX */
    size_t n_counters;
    bool model; /* its status shows "model": the runner's hello, null until one */
};

/* ER_CONFIG naming the first key of conf (a source's object) that is neither "name", "kind" nor
 * one of the n known settings of kind: "sources \"<name>\": unknown setting \"<key>\" for kind
 * <kind> (<known, ...>)". */
er_rc sources__known_settings(const cJSON *conf, const char *name, const char *kind,
                              const char *const *known, size_t n, er_err *err);

/* The kinds, in the order their counters' families appear in /metrics. */
extern const sources_kind *const sources__kinds[];
extern const size_t sources__n_kinds;
/* The kind called name, or NULL. */
const sources_kind *sources__kind(const char *name);

/* One configured source: its slot and the running source of its kind. */
typedef struct sources_entry {
    sources_slot slot;
    const sources_kind *kind;
    void *source;
} sources_entry;

struct sources {
    int stop_pipe[2];
    size_t n;
    sources_entry *e;
};

/* Every source reopens after 0.5 s, doubling to 30 s; back to the start after an input that
 * delivered something. */
#define SOURCES_BACKOFF_MIN_MS 500
#define SOURCES_BACKOFF_MAX_MS 30000

/* The delay after `ms`: doubled, capped at SOURCES_BACKOFF_MAX_MS. */
static inline int64_t sources_backoff_next(int64_t ms)
{
    return ms * 2 > SOURCES_BACKOFF_MAX_MS ? SOURCES_BACKOFF_MAX_MS : ms * 2;
}

/* Waits up to ms (0: just looks, -1: no limit) for the stop pipe's read end stop_fd to become
 * readable; true once every source must stop. */
bool sources__wait_stop(int stop_fd, int ms);

/* The delay before the next attempt, shown while waiting (under the slot's mutex). */
void sources_slot_backoff(sources_slot *sl, int64_t ms);
/* An attempt after the first begins: counts a reconnect, the wait is over. */
void sources_slot_attempt(sources_slot *sl);
/* A source's model changed: keeps info (JSON object text, copied) as the slot's model_info for
 * the API and saves it as the store's "model_info" meta (get_model_info), waiting for that
 * commit; a failure to save is logged. */
void sources_slot_model(sources_slot *sl, store *st, const char *info);
/* Updates under the slot's mutex. fmt NULL leaves last_error as it is. */
void sources_slot_state(sources_slot *sl, const char *state, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- sources_commit.c: storing a source's inferences, none lost unseen ----
 * Each source has one; every inference it makes is added to it, and it offers them to the store
 * one at a time, in order, each with a completion; an inference whose transaction was lost (disk
 * full, locked, I/O) is held and offered again with a growing delay. While it holds anything the
 * source reads no more input. Used by the source's own thread only (the done callback's hand-off
 * is internal). */
typedef struct sources_commits sources_commits;
/* ER_NOMEM, ER_IO (no eventfd). */
er_rc sources__commits_create(store *st, sources_slot *slot, sources_commits **out);
/* What is still held is dropped (logged with its count: it was acknowledged to no one); with a
 * put in flight the store's callback frees the rest later. NULL is fine. */
void sources__commits_destroy(sources_commits *c);
/* Takes inf, to be stored after every inference added before it. */
void sources__commits_add(sources_commits *c, inference *inf);
/* Inferences added and not yet committed (or refused). */
size_t sources__commits_held(const sources_commits *c);
/* Makes progress without waiting: settles an outcome that arrived, offers the next inference
 * when its time came. Returns the ms after which to call again, or -1 when only an outcome of
 * the one in flight or a new inference can change anything. */
int sources__commits_step(sources_commits *c);
/* Of those, the ones waiting behind the one in flight: while any waits, the source reads no
 * more input. */
size_t sources__commits_queued(const sources_commits *c);
/* For a source's thread, before reading more input: steps and waits until none is queued (the
 * last may still be in flight; false) or stop_fd is readable (true: the source must stop). */
bool sources__commits_drain(sources_commits *c, int stop_fd);
/* At the end of a source's input or at stop: steps and waits until everything is committed
 * (false), stop_fd (-1: none) is readable or max_ms (-1: no limit) passed (true: what is left
 * stays held; destroy drops it). */
bool sources__commits_finish(sources_commits *c, int stop_fd, int max_ms);
/* How long a stopping source waits for its last inferences to commit. */
#define SOURCES_STOP_COMMIT_MS 1000

#endif
