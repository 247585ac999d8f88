/* forwarder_report.c - the forwarder's report part (forwarder.h): the ONE writer of its status
 * object, under the key names of GET /api/v1/forwarder (also what the live stream copies) or of
 * the get_status command's reply, and its ei_relay_forwarder_* series for /metrics. Each view is
 * a table of keys over one forwarder_status snapshot, walked by one loop; forwarding off has the
 * same object with state "disabled" and what the store still knows. */
#include "forward/forward_internal.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <string.h>

#include "core/prom.h"

/* How a key's value is read from the snapshot at its offset. */
typedef enum shape {
    S_NUM,       /* int64_t */
    S_TEXT,      /* const char *, always set */
    S_NAME,      /* char array; "" is null */
    S_SINCE,     /* int64_t epoch ms; 0 is null */
    S_CONNECTED, /* 1 while the state is "connected" (the offset is unused) */
} shape;

typedef struct key {
    const char *name;
    shape how;
    size_t off;
} key;

#define AT(field) offsetof(forwarder_status, field)

/* GET /api/v1/forwarder, in this order (docs/api.md). */
static const key api_keys[] = {
    {"state", S_TEXT, AT(state)},
    {"endpoint", S_NAME, AT(endpoint)},
    {"client_id", S_NAME, AT(client_id)},
    {"last_error", S_NAME, AT(last_error)},
    {"connected_since", S_SINCE, AT(connected_since)},
    {"queue_depth", S_NUM, AT(queue_depth)},
    {"oldest_pending_age_ms", S_NUM, AT(oldest_pending_age_ms)},
    {"in_flight", S_NUM, AT(in_flight)},
    {"sent", S_NUM, AT(sent)},
    {"acked", S_NUM, AT(acked)},
    {"dropped", S_NUM, AT(dropped)},
    {"rejected", S_NUM, AT(rejected)},
    {"dead", S_NUM, AT(dead)},
    {"reconnects", S_NUM, AT(reconnects)},
    {"images_shrunk", S_NUM, AT(shrunk)},
    {"images_omitted", S_NUM, AT(omitted)},
    {"commands", S_NUM, AT(commands)},
    {"commands_replayed", S_NUM, AT(commands_replayed)},
    {"qos", S_NUM, AT(qos)},
};

/* The get_status command's {"status":{...}}: its own names, kept for MQTT consumers. */
static const key command_keys[] = {
    {"connection", S_TEXT, AT(state)},
    {"queue_depth", S_NUM, AT(queue_depth)},
    {"oldest_pending_age_ms", S_NUM, AT(oldest_pending_age_ms)},
    {"in_flight", S_NUM, AT(in_flight)},
    {"dead_letters", S_NUM, AT(dead)},
    {"dropped", S_NUM, AT(dropped)},
    {"rejected", S_NUM, AT(rejected)},
    {"sent", S_NUM, AT(sent)},
    {"acked", S_NUM, AT(acked)},
};

/* /metrics, in this order; each family one unlabelled sample. */
static const struct {
    prom_metric m;
    key k;
} series[] = {
    {{"ei_relay_forwarder_connected", "gauge", "1 while connected to the MQTT broker."},
     {NULL, S_CONNECTED, 0}},
    {{"ei_relay_forwarder_queue_depth", "gauge", "Outbox messages waiting for the broker."},
     {NULL, S_NUM, AT(queue_depth)}},
    {{"ei_relay_forwarder_oldest_pending_age_ms", "gauge",
      "Age of the oldest waiting message in milliseconds."},
     {NULL, S_NUM, AT(oldest_pending_age_ms)}},
    {{"ei_relay_forwarder_in_flight", "gauge", "Messages published, not yet acknowledged."},
     {NULL, S_NUM, AT(in_flight)}},
    {{"ei_relay_forwarder_sent_total", "counter", "Inference messages published."},
     {NULL, S_NUM, AT(sent)}},
    {{"ei_relay_forwarder_acked_total", "counter", "Messages acknowledged by the broker."},
     {NULL, S_NUM, AT(acked)}},
    {{"ei_relay_forwarder_dropped_total", "counter",
      "Oldest outbox messages dropped because the outbox was full."},
     {NULL, S_NUM, AT(dropped)}},
    {{"ei_relay_forwarder_rejected_total", "counter",
      "Inferences not queued because the outbox was full."},
     {NULL, S_NUM, AT(rejected)}},
    {{"ei_relay_forwarder_dead", "gauge", "Dead-lettered messages."}, {NULL, S_NUM, AT(dead)}},
    {{"ei_relay_forwarder_reconnects_total", "counter", "Reconnection attempts."},
     {NULL, S_NUM, AT(reconnects)}},
    {{"ei_relay_forwarder_images_shrunk_total", "counter",
      "Images re-encoded smaller to fit the payload limit."},
     {NULL, S_NUM, AT(shrunk)}},
    {{"ei_relay_forwarder_images_omitted_total", "counter",
      "Images left out because they could not fit."},
     {NULL, S_NUM, AT(omitted)}},
};

static const void *field(const forwarder_status *s, const key *k)
{
    return (const char *)s + k->off;
}

static int64_t number(const forwarder_status *s, const key *k)
{
    if (k->how == S_CONNECTED) return strcmp(s->state, "connected") == 0;
    int64_t v;
    memcpy(&v, field(s, k), sizeof v);
    return v;
}

/* Adds key k of s to o; false when out of memory. */
static bool add_key(cJSON *o, const forwarder_status *s, const key *k)
{
    switch (k->how) {
    case S_TEXT: {
        const char *text;
        memcpy(&text, field(s, k), sizeof text);
        return cJSON_AddStringToObject(o, k->name, text) != NULL;
    }
    case S_NAME: {
        const char *name = field(s, k);
        return (name[0] ? cJSON_AddStringToObject(o, k->name, name)
                        : cJSON_AddNullToObject(o, k->name)) != NULL;
    }
    case S_SINCE:
        if (!number(s, k)) return cJSON_AddNullToObject(o, k->name) != NULL;
        /* fall through */
    default:
        return cJSON_AddNumberToObject(o, k->name, (double)number(s, k)) != NULL;
    }
}

static bool add_keys(cJSON *o, const forwarder_status *s, const key *keys, size_t n)
{
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++)
        ok = add_key(o, s, &keys[i]);
    return ok;
}

bool forward__status_command(const forwarder_status *s, cJSON *o)
{
    return add_keys(o, s, command_keys, sizeof command_keys / sizeof command_keys[0]);
}

static cJSON *status_json(const forwarder_status *s)
{
    cJSON *o = cJSON_CreateObject();
    if (o && add_keys(o, s, api_keys, sizeof api_keys / sizeof api_keys[0])) return o;
    cJSON_Delete(o);
    return NULL;
}

static cJSON *status_running(void *ctx)
{
    forwarder_status s;
    forwarder_get_status(ctx, &s);
    return status_json(&s);
}

static er_rc prom_running(void *ctx, util_buf *b)
{
    forwarder_status s;
    forwarder_get_status(ctx, &s);
    er_rc rc = ER_OK;
    for (size_t i = 0; rc == ER_OK && i < sizeof series / sizeof series[0]; i++)
        rc = prom_value(b, &series[i].m, number(&s, &series[i].k));
    return rc;
}

void forwarder_report(forwarder *f, report_part *out)
{
    *out = (report_part){
        .name = "forwarder", .status = status_running, .prom = prom_running, .ctx = f};
}

/* Forwarding off: the outbox of an earlier run (rows still waiting, dead letters) and the
 * configured QoS; every other number is zero. */
static cJSON *status_disabled(void *ctx)
{
    const forwarder_disabled *off = ctx;
    forwarder_status s;
    memset(&s, 0, sizeof s);
    s.state = "disabled";
    s.qos = off->cfg->iotcore_qos;
    store_outbox_stats os;
    if (store_outbox_stats_get(off->st, &os) == ER_OK) {
        s.queue_depth = os.pending;
        s.dead = os.dead;
    }
    return status_json(&s);
}

void forwarder_report_disabled(forwarder_disabled *off, report_part *out)
{
    *out = (report_part){.name = "forwarder", .status = status_disabled, .prom = NULL, .ctx = off};
}
