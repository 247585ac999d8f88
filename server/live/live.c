/* live.c - see live.h and docs/live.md: creating and tearing down the live stream (its vhost on
 * the wsloop, its store subscription, its timers), the public API, and the one lws callback that
 * hands each event to the hub (live_hub.c) or to a client session (live_client.c). Shared state
 * and the other files: live_internal.h. */
#include "live/live.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/prom.h"
#include "live/live_internal.h"

#define LIVE_PATH "/api/v1/live"

/* ---- lws glue ---- */

typedef struct pss {
    lv_client *c;
} pss;

static int on_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_vhost *vh = lws_get_vhost(wsi);
    live *l = vh ? lws_vhost_user(vh) : NULL;
    pss *p = user;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (l && !wsloop_stopping(l->loop)) lv_hub_pull(l);
        break;
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION: /* on the listener; in: the accepted fd */
        return l && lv_conns_accept(l, (int)(intptr_t)in) ? 0 : -1;
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        if (l) lv_conns_bind(l, wsi);
        break;
    case LWS_CALLBACK_WSI_DESTROY: /* every wsi instantiated, upgraded or not, exactly once */
        if (l) lv_conns_release(l, wsi);
        break;
    case LWS_CALLBACK_HTTP: /* plain HTTP on the WebSocket port */
        if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL)) return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char uri[64];
        int n = lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
        if (n <= 0 || strcmp(uri, LIVE_PATH) != 0) {
            lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
            return -1;
        }
        break;
    }
    case LWS_CALLBACK_ESTABLISHED:
        if (l) lv_conns_upgraded(l, wsi);
        if (!l || !p || !(p->c = lv_client_open(l, wsi))) return -1;
        break;
    case LWS_CALLBACK_TIMER:
        if (l && p && p->c) lv_client_timer(l, p->c);
        break;
    case LWS_CALLBACK_RECEIVE:
        if (l && p && p->c) lv_client_receive(l, p->c, wsi, in, len);
        break;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (l && p && p->c) return lv_client_writable(l, p->c, wsi);
        break;
    case LWS_CALLBACK_CLOSED:
        if (l && p && p->c) {
            lv_client_free(l, p->c);
            p->c = NULL;
        }
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {.name = "ei-live",
     .callback = on_event,
     .per_session_data_size = sizeof(pss),
     .rx_buffer_size = 4096},
    {.name = NULL},
};

static const uint32_t no_retry[] = {0};
/* Ping a quiet client after 20 s; close it when 40 s pass without a pong or data. */
static const lws_retry_bo_t idle_policy = {
    .retry_ms_table = no_retry,
    .retry_ms_table_count = 1,
    .secs_since_valid_ping = 20,
    .secs_since_valid_hangup = 40,
};

/* ---- lifecycle ---- */

er_rc live_create(const live_deps *d, wsloop *loop, live **out, er_err *err)
{
    er_rc rc = ER_NOMEM;
    live *l = calloc(1, sizeof *l);
    if (!l) goto fail;
    pthread_mutex_init(&l->mu, NULL);
    l->st = d->st;
    l->au = d->au;
    l->fwd = d->fwd;
    l->device = d->device;
    l->loop = loop;
    l->auth_fails = d->auth_fails;
    l->ring_max_bytes = (size_t)d->cfg->live_ring_bytes;
    rc = lv_conns_init(l, d->cfg,
                       d->max_connections > 0 ? d->max_connections : d->cfg->ws_max_connections);
    if (rc) goto fail;
    store_info si;
    rc = store_get_info(d->st, &si);
    if (rc) {
        er_fail(err, rc, "live: cannot read the store");
        goto fail;
    }
    l->fetched_seq = l->ring_base_seq = l->committed_seq = l->marks_floor = si.newest_seq;
    struct lws_context_creation_info vi;
    memset(&vi, 0, sizeof vi);
    vi.port = d->cfg->ws_port;
    if (d->cfg->bind && strcmp(d->cfg->bind, "0.0.0.0") != 0) {
        snprintf(l->iface, sizeof l->iface, "%s", d->cfg->bind);
        vi.iface = l->iface;
        /* lws opens an IPv6 socket whenever it can, and an IPv4 address given as iface does
         * not fit its sockaddr_in6: it then binds to [::], every interface. An IPv4 bind is
         * therefore listened on with an IPv4 socket. */
        struct in_addr a4;
        if (inet_pton(AF_INET, l->iface, &a4) == 1) vi.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    }
    if (d->tls) {
        /* WSS: lws loads the files itself (with the chain after the certificate); tls/ checked
         * them already. Without ALLOW_NON_SSL_ON_SSL_PORT a plain client is refused. */
        vi.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        vi.ssl_cert_filepath = tls_cert_path(d->tls);
        vi.ssl_private_key_filepath = tls_key_path(d->tls);
    }
    vi.protocols = protocols;
    vi.vhost_name = "live";
    vi.user = l;
    vi.retry_and_idle_policy = &idle_policy;
    vi.gid = -1;
    vi.uid = -1;
    l->vhost = wsloop_add_vhost(loop, &vi, err);
    if (!l->vhost) { /* err says where it could not listen */
        rc = ER_IO;
        goto fail;
    }
    rc = store_subscribe(d->st, lv_hub_on_commit, l);
    if (rc == ER_OK) rc = store_subscribe_deleted(d->st, lv_hub_on_deleted, l);
    if (rc == ER_OK) rc = store_subscribe_cleared(d->st, lv_hub_on_cleared, l);
    if (rc) {
        er_fail(err, rc, "live: cannot subscribe to commits");
        goto fail;
    }
    lv_ticks_start(l);
    log_info("live", "live stream on %s://%s:%d%s", d->tls ? "wss" : "ws",
             d->cfg->bind ? d->cfg->bind : "0.0.0.0", live_port(l), LIVE_PATH);
    *out = l;
    return ER_OK;
fail:
    /* Before the vhost exists nothing refers to l. After it, only a failed subscribe gets
     * here (the store's fixed subscriber slots all taken: a wiring error, caught by every
     * test); the vhost's user then dangles until the context goes, which start-up failing
     * makes happen at once, without serving. */
    live_destroy(l);
    return rc;
}

int live_port(const live *l)
{
    return l && l->vhost ? lws_get_vhost_listen_port(l->vhost) : 0;
}

/* ---- report part ---- */

/* The counters, each an atomic of struct live, in /metrics order. */
static const struct {
    prom_metric m;
    size_t off;
} series[] = {
    {{"ei_relay_live_clients", "gauge", "Live stream connections now."},
     offsetof(live, n_clients_now)},
    {{"ei_relay_live_sent_total", "counter", "Inference messages written to live stream clients."},
     offsetof(live, n_sent)},
    {{"ei_relay_live_missed_total", "counter",
      "Inferences live clients lost (too slow, or past the resume bound)."},
     offsetof(live, n_missed)},
    {{"ei_relay_live_refused_total", "counter",
      "Live connections refused at auth (bad token or timeout)."},
     offsetof(live, n_refused)},
    {{"ei_relay_live_resumes_total", "counter", "Live connections that resumed."},
     offsetof(live, n_resumes)},
    {{"ei_relay_live_conn_refused_total", "counter",
      "WebSocket connections refused at accept (ws_max_connections, ws_max_connections_per_ip)."},
     offsetof(live, n_conn_refused)},
    {{"ei_relay_live_ring_inferences", "gauge",
      "Inferences the live ring holds now (bounded by live_ring_bytes)."},
     offsetof(live, ring_n_now)},
    {{"ei_relay_live_ring_bytes", "gauge", "Bytes the live ring holds now."},
     offsetof(live, ring_bytes_now)},
};

static er_rc live_prom(void *ctx, util_buf *b)
{
    er_rc rc = ER_OK;
    for (size_t i = 0; rc == ER_OK && i < sizeof series / sizeof series[0]; i++) {
        atomic_llong *counter = (atomic_llong *)((char *)ctx + series[i].off);
        rc = prom_value(b, &series[i].m, atomic_load(counter));
    }
    return rc;
}

void live_report(live *l, report_part *out)
{
    *out = (report_part){.name = "live", .status = NULL, .prom = live_prom, .ctx = l};
}

void live_stop(live *l)
{
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->stopped = true;
    pthread_mutex_unlock(&l->mu);
}

void live_destroy(live *l)
{
    if (!l) return;
    while (l->clients) /* normally closed by the loop's destruction already */
        lv_client_free(l, l->clients);
    lv_hub_free(l);
    lv_ticks_free(l);
    lv_conns_free(l);
    free(l->deleted);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
