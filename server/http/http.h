/* http.h - the LAN HTTP server (libmicrohttpd): REST API under /api/v1/, /metrics, and the
 * dashboard's static files at /. Ingest requests are suspended while their inference waits for
 * the store's group commit and resumed from the commit callback, so no HTTP thread blocks. */
#ifndef EI_HTTP_HTTP_H
#define EI_HTTP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "config/config.h"
#include "core/ratelimit.h"
#include "core/rc.h"
#include "core/report.h"
#include "store/store.h"
#include "tls/tls.h"

typedef struct http_server http_server;

/* Borrowed by the server for its whole life: they must outlive http_server_destroy. */
typedef struct http_deps {
    const config *cfg;
    store *st;
    const auth *au;
    const char *device; /* effective device name (with MAC suffix) */
    int64_t started_ms; /* wall clock at start, for uptime */
    int ws_port;        /* the live stream's port, for health (the dashboard finds it there) */
    /* HTTPS with this certificate and key (tls/tls.h), or NULL for plain HTTP. Borrowed:
     * outlives the server. */
    const tls_material *tls;
    /* Connections at once: cfg->http_max_connections lowered to fit the descriptor limit
     * (the relay decides); 0 = as configured. */
    int max_connections;
    /* Failed authentications per address, shared with the live stream (the relay makes it
     * from the auth_fail_* settings); NULL: failed authentications are not slowed. */
    ratelimit *auth_fails;
    /* The other modules' report parts (core/report.h), in /metrics order: each one's prom()
     * follows the store's series; a part's status() answers GET /api/v1/<its name> where the
     * route table has that path (forwarder, sources). */
    const report_part *const *parts;
    size_t n_parts;
} http_deps;

er_rc http_server_create(const http_deps *deps, http_server **out, er_err *err);
/* The port actually bound (useful with http_port 0). */
uint16_t http_server_port(const http_server *h);
void http_server_destroy(http_server *h);

#endif
