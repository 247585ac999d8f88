/* relay.c - see relay.h. Start order: the TLS certificate and key (when set, checked before
 * anything opens) -> store -> policy -> forwarder -> auth -> wsloop -> sources (the runner-ws ones
 * set up on the wsloop) -> live stream -> wsloop thread -> HTTP (which reads the sources' state)
 * -> demo; stop in reverse so no producer outlives the store it writes to. The forwarder is
 * stopped before the store but freed after it, because the store calls its commit hook until the
 * end. */
#include "app/relay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/device.h"
#include "core/log.h"
#include "core/ratelimit.h"
#include "core/report.h"
#include "core/util.h"
#include "forward/forwarder.h"
#include "forward/policy.h"
#include "http/http.h"
#include "live/live.h"
#include "sources/demo.h"
#include "sources/sources.h"
#include "tls/tls.h"
#include "ws/wsloop.h"

struct relay {
    const config *cfg;
    char device[256];
    store *st;
    policy *pol;
    forwarder *fwd; /* NULL when forwarding is off */
    auth *au;
    ratelimit *auth_fails; /* failed authentications per address: HTTP and the live stream */
    tls_material *tls;     /* NULL without TLS; the listeners borrow it */
    http_server *http;
    wsloop *ws;   /* the libwebsockets thread: runner-ws sources and the live stream */
    live *lv;     /* the live stream */
    sources *src; /* the configured inference sources */
    demo_source *demo;
    /* The report parts the readers above the modules get (http, the live stream); they live as
     * long as the relay. fwd_off is what the forwarder's part reads when forwarding is off. */
    forwarder_disabled fwd_off;
    report_part fwd_part, live_part, sources_part;
    const report_part *parts[3]; /* http's, in /metrics order: live, forwarder, sources */
};

static er_rc open_store(const config *cfg, bool recover, store **out, er_err *err)
{
    store_opts so = {
        .path = cfg->db_path,
        .sync_full = cfg->db_synchronous == CONFIG_SYNC_FULL,
        .busy_timeout_ms = cfg->db_busy_timeout_ms,
        .outbox = cfg->mqtt_endpoint != NULL,
        .max_rows = cfg->cache_max_rows,
        .max_bytes = cfg->cache_max_bytes,
        .max_bytes_default = cfg->cache_max_bytes_default,
        .max_age_ms = cfg->cache_max_age_ms,
        .batch_max = cfg->commit_batch_max,
        .outbox_max_rows = cfg->outbox_max_rows,
        .outbox_max_bytes = cfg->outbox_max_bytes,
        .outbox_reject_new = cfg->outbox_on_full == CONFIG_OUTBOX_REJECT_NEW,
        .max_attempts = cfg->max_attempts,
        .page_max_bytes = cfg->page_max_bytes,
        .recover = recover,
    };
    return store_create(&so, out, err);
}

er_rc relay_open_store(const config *cfg, store **out, er_err *err)
{
    return open_store(cfg, false, out, err);
}

/* A token generated at this start goes to its file (auth) and, when a person started the
 * service on a terminal, to that terminal, once; never to the log (logs are kept and shipped:
 * journald, the Greengrass component log, CloudWatch), which only says where the file is. A
 * pipe or a file behind stderr is a log, so only a terminal gets it. */
static void show_generated_token(const auth *au)
{
    const char *path = auth_generated_path(au);
    const char *token = auth_admin_token(au);
    if (!path || !token || !isatty(STDERR_FILENO)) return;
    fprintf(stderr, "\n    the generated admin token (kept in %s):\n\n    %s\n\n", path, token);
}

/* The line a person looks for after starting the service: where to open the dashboard. With
 * a wildcard bind that is the default-route interface's address (what a LAN browser reaches). */
static void log_dashboard(const config *cfg, unsigned port, bool tls)
{
    char host[64];
    const char *h = cfg->bind;
    if (strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0)
        h = device_lan_address(host, sizeof host) == ER_OK ? host : "localhost";
    bool v6 = strchr(h, ':') != NULL;
    log_info("relay",
             "dashboard: %s://%s%s%s:%u/ (sign in with a read or admin token; "
             "'ei-relay token' prints the admin token)",
             tls ? "https" : "http", v6 ? "[" : "", h, v6 ? "]" : "", port);
}

/* Descriptors kept out of the listeners' reach: the database and its WAL/SHM on every reader
 * connection, sources (ttys, model processes and their sockets, camera devices), the MQTT
 * connection, libmicrohttpd's and libwebsockets' own, logs. */
#define RELAY_FD_RESERVE 128
/* The HTTP and WebSocket connection limits that fit the open-file limit: the soft limit is
 * raised to the hard one, RELAY_FD_RESERVE descriptors are kept back, and the configured
 * http_max_connections and ws_max_connections are lowered in proportion when the rest cannot
 * hold both. Logged once. */
static void net_limits(const config *cfg, int *http_max, int *ws_max)
{
    struct rlimit rl;
    long long fds = -1;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            struct rlimit up = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
            if (setrlimit(RLIMIT_NOFILE, &up) == 0)
                rl.rlim_cur = rl.rlim_max;
            else
                log_warn("relay", "cannot raise the open-file limit to %llu: %s",
                         (unsigned long long)rl.rlim_max, strerror(errno));
        }
        fds = rl.rlim_cur == RLIM_INFINITY ? -1 : (long long)rl.rlim_cur;
    }
    long long h = cfg->http_max_connections, w = cfg->ws_max_connections;
    long long room = fds < 0 ? h + w : fds - RELAY_FD_RESERVE;
    if (room < 2) room = 2; /* a tiny limit: one each, the reserve is what it is */
    if (h + w > room) {
        long long h2 = room * h / (h + w);
        h2 = h2 < 1 ? 1 : h2 > room - 1 ? room - 1 : h2;
        log_warn("relay",
                 "open-file limit %lld: connections lowered to http %lld, ws %lld "
                 "(%d descriptors kept for the store, sources and MQTT)",
                 fds, h2, room - h2, RELAY_FD_RESERVE);
        h = h2;
        w = room - h2;
    }
    *http_max = (int)h;
    *ws_max = (int)w;
    log_info("relay",
             "connections: http at most %lld (%d per address; head within %lld ms, body within "
             "%lld ms), ws at most %lld (%d per address; upgrade within %lld ms); open-file "
             "limit %lld",
             h, cfg->http_max_connections_per_ip, (long long)cfg->http_header_timeout_ms,
             (long long)cfg->http_body_timeout_ms, w, cfg->ws_max_connections_per_ip,
             (long long)cfg->ws_handshake_timeout_ms, fds);
}

er_rc relay_create(const config *cfg, relay **out, er_err *err)
{
    er_rc rc = ER_NOMEM;
    relay *r = calloc(1, sizeof *r);
    if (!r) goto fail;
    r->cfg = cfg;
    /* every source's settings, before anything is opened (sources_create checks them again) */
    rc = sources_check_config(cfg, err);
    if (rc) goto fail;
    rc = device_name_resolve(cfg->device_name, cfg->device_mac_suffix, r->device, sizeof r->device);
    if (rc) {
        rc = er_fail(err, ER_CONFIG, "device_name is too long");
        goto fail;
    }
    /* the certificate and key before anything is opened: a bad pair is a configuration error
     * that changes nothing */
    if (cfg->tls_cert_file) {
        rc = tls_material_load(cfg->tls_cert_file, cfg->tls_key_file, &r->tls, err);
        if (rc) goto fail;
    }
    int http_max, ws_max;
    net_limits(cfg, &http_max, &ws_max);
    /* the service moves a corrupt database aside rather than stop: see store_opts.recover */
    rc = open_store(cfg, true, &r->st, err);
    if (rc) goto fail;
    if (cfg->mqtt_endpoint) {
        policy_settings ps = {.skip_empty = true,
                              .threshold_enabled = cfg->enable_threshold_limit,
                              .threshold = cfg->default_threshold,
                              .criteria = cfg->threshold_criteria,
                              .backoff = cfg->iotcore_backoff};
        rc = policy_create(&ps, &r->pol);
        if (rc) {
            er_fail(err, rc, "the publish policy settings are not valid");
            goto fail;
        }
        store_set_policy(r->st, policy_store_fn, r->pol);
        rc = forwarder_create(cfg, r->st, r->pol, r->device, &r->fwd, err);
        if (rc) goto fail;
        forwarder_report(r->fwd, &r->fwd_part);
    } else {
        r->fwd_off = (forwarder_disabled){.st = r->st, .cfg = cfg};
        forwarder_report_disabled(&r->fwd_off, &r->fwd_part);
    }
    rc = auth_create(cfg, &r->au, err);
    if (rc) goto fail;
    show_generated_token(r->au);
    ratelimit_opts fails = {.slots = RATELIMIT_SLOTS,
                            .fail_free = cfg->auth_fail_free,
                            .fail_base_ms = 1000,
                            .fail_max_ms = cfg->auth_fail_max_delay_ms,
                            .fail_forget_ms = cfg->auth_fail_forget_ms};
    rc = ratelimit_create(&fails, &r->auth_fails);
    if (rc) goto fail;
    rc = wsloop_create(&r->ws, err);
    if (rc) goto fail;
    rc = sources_create(cfg, r->st, r->device, r->ws, &r->src, err);
    if (rc) goto fail;
    live_deps ld = {.cfg = cfg,
                    .st = r->st,
                    .au = r->au,
                    .auth_fails = r->auth_fails,
                    .fwd = r->fwd ? &r->fwd_part : NULL,
                    .device = r->device,
                    .tls = r->tls,
                    .max_connections = ws_max};
    rc = live_create(&ld, r->ws, &r->lv, err);
    if (rc) goto fail;
    rc = wsloop_start(r->ws, err); /* setup of everything on it is done */
    if (rc) goto fail;
    live_report(r->lv, &r->live_part);
    sources_report(r->src, &r->sources_part);
    r->parts[0] = &r->live_part;
    r->parts[1] = &r->fwd_part;
    r->parts[2] = &r->sources_part;
    http_deps deps = {.cfg = cfg,
                      .st = r->st,
                      .au = r->au,
                      .auth_fails = r->auth_fails,
                      .device = r->device,
                      .started_ms = util_now_ms(),
                      .ws_port = live_port(r->lv),
                      .tls = r->tls,
                      .max_connections = http_max,
                      .parts = r->parts,
                      .n_parts = sizeof r->parts / sizeof r->parts[0]};
    rc = http_server_create(&deps, &r->http, err);
    if (rc) goto fail;
    if (cfg->demo) {
        rc = demo_source_create(r->st, r->device, cfg->demo_interval_ms, &r->demo, err);
        if (rc) goto fail;
    }
    log_info("relay", "ei-relay %s ready: device %s, http %s:%u, ws %s:%d, db %s", EI_RELAY_VERSION,
             r->device, cfg->bind, (unsigned)http_server_port(r->http), cfg->bind, live_port(r->lv),
             cfg->db_path);
    log_dashboard(cfg, http_server_port(r->http), r->tls != NULL);
    *out = r;
    return ER_OK;
fail:
    relay_destroy(r);
    return rc;
}

uint16_t relay_http_port(const relay *r)
{
    return http_server_port(r->http);
}

store *relay_store(relay *r)
{
    return r->st;
}

const char *relay_device(const relay *r)
{
    return r->device;
}

bool relay_restart_requested(const relay *r)
{
    return forwarder_restart_requested(r->fwd);
}

void relay_destroy(relay *r)
{
    if (!r) return;
    demo_source_destroy(r->demo);
    http_server_destroy(r->http); /* no new requests; in-flight puts finish in store_destroy */
    live_stop(r->lv);             /* the commit hook stops waking the loop */
    wsloop_destroy(r->ws);        /* its close callbacks still use the sources and clients */
    sources_destroy(r->src);      /* after HTTP, which reads their state; before the store */
    forwarder_stop(r->fwd);
    store_destroy(r->st);
    forwarder_destroy(r->fwd); /* after the store: it held the forwarder's commit hook */
    live_destroy(r->lv);       /* likewise */
    policy_destroy(r->pol);    /* the store's policy hook went with the store */
    auth_destroy(r->au);
    ratelimit_destroy(r->auth_fails); /* after HTTP and the live stream, its users */
    tls_material_destroy(r->tls);     /* after both listeners */
    free(r);
}
