/* wsloop.c - see wsloop.h. */
#include "ws/wsloop.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"

struct wsloop {
    struct lws_context *ctx;
    pthread_t thread;
    bool started;
    atomic_bool stop;
};

/* lws hands over whole lines ending in '\n'; our logger adds its own. A client can make lws
 * log at will (an accept storm at the descriptor limit logged millions of "accept: errno 24"
 * lines; an oversized request head logs "Ran out of header data space"), so its lines are
 * rate-limited, one budget per level: the text varies, and a kind per text would fill the
 * logger's table. */
static void lws_log_line(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    bool err = level == LLL_ERR;
    log_ratelimited(err ? LOG_ERROR : LOG_WARN, "lws", err ? "error" : "warn", "%.*s", (int)n,
                    line);
}

er_rc wsloop_create(wsloop **out, er_err *err)
{
    er_rc rc = ER_NOMEM;
    wsloop *l = calloc(1, sizeof *l);
    if (!l) goto fail;
    atomic_init(&l->stop, false);
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_line);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.gid = -1;
    info.uid = -1;
    l->ctx = lws_create_context(&info);
    if (!l->ctx) {
        rc = er_fail(err, ER_INTERNAL, "cannot create the libwebsockets context");
        goto fail;
    }
    *out = l;
    return ER_OK;
fail:
    wsloop_destroy(l);
    return rc;
}

struct lws_context *wsloop_context(wsloop *l)
{
    return l->ctx;
}

struct lws_vhost *wsloop_add_vhost(wsloop *l, const struct lws_context_creation_info *info,
                                   er_err *err)
{
    struct lws_vhost *vh = lws_create_vhost(l->ctx, (struct lws_context_creation_info *)info);
    if (!vh && info->port == CONTEXT_PORT_NO_LISTEN)
        er_fail(err, ER_IO, "cannot create WebSocket client \"%s\"",
                info->vhost_name ? info->vhost_name : "?");
    else if (!vh)
        er_fail(err, ER_IO, "%s: cannot listen on %s:%d (is the port free?)",
                info->vhost_name ? info->vhost_name : "?", info->iface ? info->iface : "0.0.0.0",
                info->port);
    return vh;
}

static void *loop_main(void *arg)
{
    wsloop *l = arg;
    util_thread_name("eir-ws", NULL);
    while (!atomic_load(&l->stop))
        if (lws_service(l->ctx, 0) < 0) break;
    return NULL;
}

er_rc wsloop_start(wsloop *l, er_err *err)
{
    if (pthread_create(&l->thread, NULL, loop_main, l) != 0)
        return er_fail(err, ER_INTERNAL, "cannot start the WebSocket thread");
    l->started = true;
    return ER_OK;
}

void wsloop_wake(wsloop *l)
{
    if (l && l->ctx) lws_cancel_service(l->ctx);
}

bool wsloop_stopping(const wsloop *l)
{
    return atomic_load(&l->stop);
}

void wsloop_destroy(wsloop *l)
{
    if (!l) return;
    atomic_store(&l->stop, true);
    if (l->started) {
        lws_cancel_service(l->ctx);
        pthread_join(l->thread, NULL);
    }
    if (l->ctx) lws_context_destroy(l->ctx);
    free(l);
}
