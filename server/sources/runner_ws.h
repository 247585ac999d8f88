/* runner_ws.h - the "runner-ws" source: a libwebsockets client of edge-impulse-linux-runner's
 * preview WebSocket ("url", default ws://127.0.0.1:4912/). Messages go through runner_msg
 * (pairing camera-preview frames with classifications when "images" is true, the default);
 * inferences are stored with store_put_async; the hello's model info is kept for the API and
 * saved in the store's meta (get_model_info). Reconnects with backoff, 0.5 s doubling to 30 s,
 * and pings an idle runner so a hung one is noticed.
 * Everything but create/destroy runs on the wsloop thread. Owned by the sources module. */
#ifndef EI_SOURCES_RUNNER_WS_H
#define EI_SOURCES_RUNNER_WS_H

#include <cjson/cJSON.h>

#include "core/rc.h"
#include "sources/sources.h"
#include "store/store.h"
#include "ws/wsloop.h"

typedef struct runner_ws runner_ws; /* opaque */

/* conf: the source's JSON object (borrowed for the call); slot outlives the source. Setup
 * time only (before wsloop_start): adds a vhost and schedules the first connect. ER_CONFIG with
 * err filled for bad settings. */
er_rc runner_ws_create(const cJSON *conf, store *st, const char *device, wsloop *loop,
                       sources_slot *slot, runner_ws **out, er_err *err);
/* Setup time only, for a start-up that fails after this source was created: takes its
 * timer off the loop, which lives on. NULL is fine. */
void runner_ws_cancel(runner_ws *r);
/* Frees; the loop must have been destroyed first (its close callbacks use the source). Does
 * not touch lws. */
void runner_ws_destroy(runner_ws *r);

/* Parses "ws://host[:port][/path]" (port 80 when absent, path "/" when absent) into the given
 * buffers; pure. ER_CONFIG with err naming the problem. */
er_rc runner_ws_parse_url(const char *url, char *host, size_t host_cap, int *port, char *path,
                          size_t path_cap, er_err *err);

#endif
