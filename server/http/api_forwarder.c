/* api_forwarder.c - see api_forwarder.h. */
#include "http/api_forwarder.h"

#include <cjson/cJSON.h>
#include <string.h>

#include "forward/forwarder.h"

enum MHD_Result http_api_forwarder(http_req *r)
{
    static const char *const allowed[] = {NULL};
    enum MHD_Result ret;
    if (!http_query_check(r, allowed, &ret)) return ret;
    forwarder_status s;
    const config *cfg = r->srv->deps.cfg;
    if (r->srv->deps.fwd) {
        forwarder_get_status(r->srv->deps.fwd, &s);
    } else {
        /* forwarding off: what the store still knows (dead letters of an earlier run) */
        memset(&s, 0, sizeof s);
        s.state = "disabled";
        store_outbox_stats os;
        if (store_outbox_stats_get(r->srv->deps.st, &os) == ER_OK) {
            s.queue_depth = os.pending;
            s.dead = os.dead;
        }
    }
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "state", s.state);
    ok = ok && (s.endpoint[0] ? cJSON_AddStringToObject(o, "endpoint", s.endpoint) != NULL
                              : cJSON_AddNullToObject(o, "endpoint") != NULL);
    ok = ok && (s.client_id[0] ? cJSON_AddStringToObject(o, "client_id", s.client_id) != NULL
                               : cJSON_AddNullToObject(o, "client_id") != NULL);
    ok = ok && (s.last_error[0] ? cJSON_AddStringToObject(o, "last_error", s.last_error) != NULL
                                : cJSON_AddNullToObject(o, "last_error") != NULL);
    ok = ok && (s.connected_since ? cJSON_AddNumberToObject(o, "connected_since",
                                                            (double)s.connected_since) != NULL
                                  : cJSON_AddNullToObject(o, "connected_since") != NULL);
    const struct {
        const char *name;
        int64_t v;
    } nums[] = {{"queue_depth", s.queue_depth},
                {"oldest_pending_age_ms", s.oldest_pending_age_ms},
                {"in_flight", s.in_flight},
                {"sent", s.sent},
                {"acked", s.acked},
                {"dropped", s.dropped},
                {"rejected", s.rejected},
                {"dead", s.dead},
                {"reconnects", s.reconnects},
                {"images_shrunk", s.shrunk},
                {"images_omitted", s.omitted},
                {"commands", s.commands}};
    for (size_t i = 0; ok && i < sizeof nums / sizeof nums[0]; i++)
        ok = cJSON_AddNumberToObject(o, nums[i].name, (double)nums[i].v) != NULL;
    ok = ok && cJSON_AddNumberToObject(o, "qos", cfg->iotcore_qos) != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return http_reply_error(r, 500, "internal", "out of memory rendering the forwarder");
    }
    return http_reply_cjson(r, 200, o);
}

void http_forwarder_metrics(http_req *r, util_buf *b)
{
    forwarder_status s;
    if (!r->srv->deps.fwd) return;
    forwarder_get_status(r->srv->deps.fwd, &s);
    const struct {
        const char *name, *type, *help;
        int64_t v;
    } m[] = {
        {"ei_relay_forwarder_connected", "gauge", "1 while connected to the MQTT broker.",
         strcmp(s.state, "connected") == 0},
        {"ei_relay_forwarder_queue_depth", "gauge", "Outbox messages waiting for the broker.",
         s.queue_depth},
        {"ei_relay_forwarder_oldest_pending_age_ms", "gauge",
         "Age of the oldest waiting message in milliseconds.", s.oldest_pending_age_ms},
        {"ei_relay_forwarder_in_flight", "gauge", "Messages published, not yet acknowledged.",
         s.in_flight},
        {"ei_relay_forwarder_sent_total", "counter", "Inference messages published.", s.sent},
        {"ei_relay_forwarder_acked_total", "counter", "Messages acknowledged by the broker.",
         s.acked},
        {"ei_relay_forwarder_dropped_total", "counter",
         "Oldest outbox messages dropped because the outbox was full.", s.dropped},
        {"ei_relay_forwarder_rejected_total", "counter",
         "Inferences not queued because the outbox was full.", s.rejected},
        {"ei_relay_forwarder_dead", "gauge", "Dead-lettered messages.", s.dead},
        {"ei_relay_forwarder_reconnects_total", "counter", "Reconnection attempts.", s.reconnects},
        {"ei_relay_forwarder_images_shrunk_total", "counter",
         "Images re-encoded smaller to fit the payload limit.", s.shrunk},
        {"ei_relay_forwarder_images_omitted_total", "counter",
         "Images left out because they could not fit.", s.omitted},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        http_metric(b, m[i].name, m[i].type, m[i].help, m[i].v);
}
