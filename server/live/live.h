/* live.h - the live stream: ws://<bind>:<ws_port>/api/v1/live (wss:// with TLS; docs/live.md). A
 * vhost on the relay's wsloop. The store's commit notification only records the newest committed
 * seq and wakes the loop; on the loop thread the hub reads what was committed (store_list_after),
 * renders each inference once into a shared ring, and every client sends from the ring at its
 * own pace: a client more than LIVE_CLIENT_QUEUE behind loses the oldest and is told
 * ("missed"). Resuming clients read the cache first. Nothing here ever makes the store wait. */
#ifndef EI_LIVE_LIVE_H
#define EI_LIVE_LIVE_H

#include "auth/auth.h"
#include "config/config.h"
#include "core/ratelimit.h"
#include "core/rc.h"
#include "core/report.h"
#include "store/store.h"
#include "tls/tls.h"
#include "ws/wsloop.h"

#define LIVE_CLIENT_QUEUE 256 /* inferences a client may be behind before it loses some */
#define LIVE_RESUME_MAX 1000  /* most messages replayed to a resuming client */

typedef struct live live; /* opaque */

typedef struct live_deps {
    const config *cfg; /* ws_port, bind, ws_max_connections*, ws_handshake_timeout_ms */
    /* Connections at once: cfg->ws_max_connections lowered to fit the descriptor limit
     * (app/relay.c); 0 = as configured. */
    int max_connections;
    store *st;
    const auth *au;
    /* Failed authentications per address, shared with HTTP (borrowed: outlives the live
     * stream); NULL: failed authentications are not slowed. */
    ratelimit *auth_fails;
    /* The forwarder's status part (its status() is the GET /api/v1/forwarder object), polled
     * on the loop thread; NULL when forwarding is off. Borrowed: outlives the live stream. */
    const report_part *fwd;
    const char *device; /* borrowed; outlives the live stream */
    /* WSS with this certificate and key (tls/tls.h), or NULL for plain WS. Borrowed: outlives
     * the live stream. */
    const tls_material *tls;
} live_deps;

/* Setup time (before wsloop_start): listens on cfg->ws_port and subscribes to the store's
 * commits and deletes (so call before traffic): a deleted inference is announced to the clients
 * ({"type":"deleted","id"}) and no longer served. ER_IO with err filled when the port is taken. */
er_rc live_create(const live_deps *d, wsloop *loop, live **out, er_err *err);
/* The port listened on (the one picked when ws_port is 0). */
int live_port(const live *l);

/* The live stream's report part (core/report.h), named "live": no status object; prom() writes
 * the ei_relay_live_* series (connections now, messages sent, inferences missed, connections
 * refused at auth, resumes). Any thread; l must outlive every reader of the part. */
void live_report(live *l, report_part *out);

/* Before wsloop_destroy: from now on the commit hook no longer wakes the loop. NULL is fine. */
void live_stop(live *l);
/* After wsloop_destroy (its close callbacks use the clients) and after store_destroy (the
 * store calls the commit hook until then), like the forwarder. NULL is fine. */
void live_destroy(live *l);

#endif
