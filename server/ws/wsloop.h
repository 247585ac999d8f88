/* wsloop.h - the relay's one libwebsockets service thread. It owns the lws_context; the
 * runner-ws client sources and the live WebSocket server put their vhosts on it.
 *
 * libwebsockets is not thread-safe: everything on the context happens on the loop thread,
 * except lws_cancel_service. So setup (wsloop_create, wsloop_add_vhost, scheduling the first
 * timers) runs on one thread before wsloop_start; after it, other threads only call
 * wsloop_wake, which delivers LWS_CALLBACK_EVENT_WAIT_CANCELLED to every protocol of every
 * vhost on the loop thread, where each user drains its own hand-off queue. */
#ifndef EI_WS_WSLOOP_H
#define EI_WS_WSLOOP_H

#include <libwebsockets.h>
#include <stdbool.h>

#include "core/rc.h"

typedef struct wsloop wsloop; /* opaque */

/* Context without listeners (vhosts come from wsloop_add_vhost); lws logs go to log.h. */
er_rc wsloop_create(wsloop **out, er_err *err);
/* The context, for lws calls made on the loop thread or during setup. Lives until destroy. */
struct lws_context *wsloop_context(wsloop *l);
/* Setup only (before start). info is read during the call; its protocols array and the
 * strings it points to must outlive the loop (lws keeps pointers). NULL with err filled on
 * failure (e.g. the port is taken). */
struct lws_vhost *wsloop_add_vhost(wsloop *l, const struct lws_context_creation_info *info,
                                   er_err *err);
/* Starts the service thread. */
er_rc wsloop_start(wsloop *l, er_err *err);
/* Any thread: wakes the loop (EVENT_WAIT_CANCELLED on the loop thread). */
void wsloop_wake(wsloop *l);
/* True once wsloop_stop began: callbacks use it not to reconnect or reschedule while the
 * context is going away. Any thread. */
bool wsloop_stopping(const wsloop *l);
/* Ends the thread, then destroys the context: close callbacks of every connection run on the
 * calling thread during this call, so users must still be alive. NULL is fine. */
void wsloop_destroy(wsloop *l);

#endif
