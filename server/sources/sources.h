/* sources.h - the source framework: starts the inference sources configured in `sources`
 * (cfg->sources_json), supervises them (reopen with backoff) and shows each one's state and
 * counters through its report part (GET /api/v1/sources, /metrics). A failing source never
 * fails the relay. The kinds ("serial": a thread each; "runner-ws": on the wsloop) are rows of
 * one table (sources_internal.h); the `sources` setting is validated here and only here.
 * Owned by the sources module. */
#ifndef EI_SOURCES_SOURCES_H
#define EI_SOURCES_SOURCES_H

#include <stddef.h>

#include "config/config.h"
#include "core/rc.h"
#include "core/report.h"
#include "store/store.h"
#include "ws/wsloop.h"

#define SOURCES_NAME_MAX 64 /* a name has 1 to SOURCES_NAME_MAX - 1 bytes */
#define SOURCES_MAX 64      /* most entries in the setting */

typedef struct sources sources; /* opaque */

/* Checks the entries of a `sources` value (JSON text; NULL is "[]"): a JSON array of at most
 * SOURCES_MAX objects, each with a unique non-empty "name" shorter than SOURCES_NAME_MAX and a
 * known "kind". ER_CONFIG with err naming the entry ("sources[1].kind: ..."). This is the
 * check a configuration load makes (main hands it to config_load), so --print-config and every
 * command refuse such a value. */
er_rc sources_check_entries(const char *json, er_err *err);
/* The entries, then each kind's own settings ("sources \"cam\".url: ..."), as start-up does
 * before opening anything. */
er_rc sources_validate(const char *json, er_err *err);

/* The name of the eim source ei_local_model_file runs (the Edge Impulse runner component's). */
#define SOURCES_MODEL_SOURCE "runner"
/* The name of the serial source serial_device reads (the serial component's). */
#define SOURCES_SERIAL_SOURCE "serial"

/* The sources to run, as JSON array text in *out (malloc'ed): the `sources` setting plus, when
 * ei_local_model_file is set (non-empty), the eim source "runner" the Edge Impulse runner
 * component means: {"name":"runner","kind":"eim","model_file":<it>} with "gst_launch_args": the
 * gst_args with every ':' as a space (unset or empty: the first camera); and when serial_device
 * is set, the serial source "serial": {"name":"serial","kind":"serial","device":<it>,
 * "baud":serial_baud,"impulse":serial_impulse}. ER_CONFIG when `sources` already names a source
 * so (err names the key), ER_NOMEM. */
er_rc sources_effective(const config *cfg, char **out, er_err *err);
/* sources_effective, then sources_validate on the result: what start-up checks before opening
 * anything. */
er_rc sources_check_config(const config *cfg, er_err *err);

/* Validates the effective sources (sources_check_config) and then starts every source. runner-ws
 * sources live on loop (setup time: call before wsloop_start). ER_CONFIG (err filled) when the
 * setting is not valid, before any source starts; a source that merely cannot open its input
 * starts in backoff. */
er_rc sources_create(const config *cfg, store *st, const char *device, wsloop *loop, sources **out,
                     er_err *err);
/* Stops every source promptly (blocked reads are woken) and frees. The wsloop must have been
 * destroyed before (its close callbacks use the runner-ws sources). NULL is fine. */
void sources_destroy(sources *s);

/* The sources' report part (core/report.h), named "sources": status() is THE status object of
 * GET /api/v1/sources ({"sources":[...]}, each source's state, last error, counters and, for
 * runner-ws, model), prom() the ei_relay_source_* series (one per source, labelled
 * {source,kind}; a kind's counters only for sources of that kind). Any thread; s (NULL: none)
 * must outlive every reader of the part. */
void sources_report(sources *s, report_part *out);

#endif
