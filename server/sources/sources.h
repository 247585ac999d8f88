/* sources.h - the source framework: starts the inference sources configured in `sources`
 * (cfg->sources_json), one thread each, supervises them (reopen with backoff) and keeps each
 * one's state and counters for GET /api/v1/sources. A failing source never fails the relay.
 * Kinds: "serial" (serial_source.h, a thread each) and "runner-ws" (runner_ws.h, on the wsloop).
 * Owned by the sources module. */
#ifndef EI_SOURCES_SOURCES_H
#define EI_SOURCES_SOURCES_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/rc.h"
#include "core/report.h"
#include "store/store.h"
#include "ws/wsloop.h"

#define SOURCES_NAME_MAX 64
#define SOURCES_ERROR_MAX 256

typedef struct sources sources; /* opaque */

/* One source's state and counters as the API shows them (a copy). */
typedef struct sources_status {
    char name[SOURCES_NAME_MAX];
    char kind[16];
    const char *state;                  /* starting|running|backoff|stopped|unsupported (static) */
    char last_error[SOURCES_ERROR_MAX]; /* "" when none */
    uint64_t bytes, lines, inferences, reconnects;
    uint64_t long_lines, noise_lines, empty_blocks, dropped;     /* serial parser counters */
    uint64_t messages, frames, frames_paired, unknown, rejected; /* runner-ws counters */
    int64_t backoff_ms; /* current reopen delay (0 when running) */
} sources_status;

/* The shared, mutex-guarded record a source thread reports into (sources.c owns it). */
typedef struct sources_slot {
    pthread_mutex_t mu;
    sources_status st;
    char *model_info; /* malloc'ed JSON object text from a runner's hello; NULL before one */
} sources_slot;

/* Every source reopens after 0.5 s, doubling to 30 s; back to the start after an input that
 * delivered something. */
#define SOURCES_BACKOFF_MIN_MS 500
#define SOURCES_BACKOFF_MAX_MS 30000

/* The delay after `ms`: doubled, capped at SOURCES_BACKOFF_MAX_MS. */
static inline int64_t sources_backoff_next(int64_t ms)
{
    return ms * 2 > SOURCES_BACKOFF_MAX_MS ? SOURCES_BACKOFF_MAX_MS : ms * 2;
}

/* The delay before the next attempt, shown while waiting (under the slot's mutex). */
void sources_slot_backoff(sources_slot *sl, int64_t ms);
/* An attempt after the first begins: counts a reconnect, the wait is over. */
void sources_slot_attempt(sources_slot *sl);
/* Updates under the slot's mutex. fmt NULL leaves last_error as it is. */
void sources_slot_state(sources_slot *sl, const char *state, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses cfg->sources_json and starts every source. runner-ws sources live on loop (setup
 * time: call before wsloop_start). ER_CONFIG (err filled) when a source's settings are not
 * valid; a source that merely cannot open its input starts in backoff. */
er_rc sources_create(const config *cfg, store *st, const char *device, wsloop *loop, sources **out,
                     er_err *err);
/* Stops every source promptly (blocked reads are woken) and frees. The wsloop must have been
 * destroyed before (its close callbacks use the runner-ws sources). NULL is fine. */
void sources_destroy(sources *s);

/* NULL-safe: 0 sources for NULL. */
size_t sources_count(const sources *s);
/* Copies source i's status; ER_NOTFOUND when i is out of range. */
er_rc sources_status_get(sources *s, size_t i, sources_status *out);
/* Source i's model info (JSON object text, malloc'ed copy) into *out, NULL when it has none;
 * ER_NOTFOUND when i is out of range. */
er_rc sources_model_info_get(sources *s, size_t i, char **out);

/* The sources' report part (core/report.h), named "sources": status() is THE status object of
 * GET /api/v1/sources ({"sources":[...]}, each source's state, last error, counters and, for
 * runner-ws, model), prom() the ei_relay_source_* series (one per source, labelled
 * {source,kind}; a kind's counters only for sources of that kind). Any thread; s (NULL: none)
 * must outlive every reader of the part. */
void sources_report(sources *s, report_part *out);

#endif
