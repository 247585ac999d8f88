/* relay.c - see relay.h. Start order: store -> auth -> HTTP -> sources; stop in reverse so no
 * producer outlives the store it writes to. */
#include "app/relay.h"

#include <stdlib.h>
#include <string.h>

#include "core/device.h"
#include "core/log.h"
#include "core/util.h"
#include "http/auth.h"
#include "http/http.h"
#include "sources/demo.h"

struct relay {
    const config *cfg;
    char device[256];
    store *st;
    auth *au;
    http_server *http;
    demo_source *demo;
};

er_rc relay_open_store(const config *cfg, store **out, er_err *err)
{
    store_opts so = {
        .path = cfg->db_path,
        .sync_full = cfg->db_synchronous == CONFIG_SYNC_FULL,
        .outbox = cfg->mqtt_endpoint != NULL,
        .max_rows = cfg->cache_max_rows,
        .max_bytes = cfg->cache_max_bytes,
        .max_age_ms = cfg->cache_max_age_ms,
        .batch_max = cfg->commit_batch_max,
    };
    return store_create(&so, out, err);
}

er_rc relay_create(const config *cfg, relay **out, er_err *err)
{
    er_rc rc = ER_NOMEM;
    relay *r = calloc(1, sizeof *r);
    if (!r) goto fail;
    r->cfg = cfg;
    rc = device_name_resolve(cfg->device_name, cfg->device_mac_suffix, r->device, sizeof r->device);
    if (rc) {
        er_fail(err, rc, "device_name is too long");
        goto fail;
    }
    rc = relay_open_store(cfg, &r->st, err);
    if (rc) goto fail;
    rc = auth_create(cfg, &r->au, err);
    if (rc) goto fail;
    http_deps deps = {
        .cfg = cfg, .st = r->st, .au = r->au, .device = r->device, .started_ms = util_now_ms()};
    rc = http_server_create(&deps, &r->http, err);
    if (rc) goto fail;
    if (cfg->demo) {
        rc = demo_source_create(r->st, r->device, cfg->demo_interval_ms, &r->demo, err);
        if (rc) goto fail;
    }
    log_info("relay", "ei-relay %s ready: device %s, http %s:%u, db %s", EI_RELAY_VERSION,
             r->device, cfg->bind, (unsigned)http_server_port(r->http), cfg->db_path);
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

void relay_destroy(relay *r)
{
    if (!r) return;
    demo_source_destroy(r->demo);
    http_server_destroy(r->http); /* no new requests; in-flight puts finish in store_destroy */
    store_destroy(r->st);
    auth_destroy(r->au);
    free(r);
}
