/* config_table.c - the settings of ei-relay as one static table, one row per setting: {name,
 * type, field offset, default, bounds or choices, flags, help}. The JSON file, the EI_RELAY_*
 * environment, the --flags, --print-config and --help all walk this table (config_load.c,
 * config_print.c), with one code path per value type (config_value.c). Also here: finding a row
 * by name and reaching the field it describes. Owned by the config module.
 *
 * Rows are in the order --print-config and --help show them; the Edge Impulse seed keys come
 * last, those ei-relay acts on and then those it only accepts (see config_seed.c). */
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "config/config_internal.h"
#include "core/log.h"

#define FIELD(f) .off = offsetof(config, f), .width = sizeof(((config *)0)->f)
#define IGNORED(n)                                                                                 \
    {                                                                                              \
        .name = n, .type = CFG_OT_IGNORED                                                          \
    }

/* Enum fields are stored through an int. */
_Static_assert(sizeof(config_sync) == sizeof(int), "enum fields must be int-sized");
_Static_assert(sizeof(config_criteria) == sizeof(int), "enum fields must be int-sized");
_Static_assert(sizeof(config_outbox_full) == sizeof(int), "enum fields must be int-sized");

const cfg_opt cfg_opts[] = {
    /* service */
    {.name = "http_port",
     .type = CFG_OT_INT,
     FIELD(http_port),
     .def = "4920",
     .min = 0,
     .max = 65535,
     .help = "TCP port of the REST API and dashboard; 0 picks a free port"},
    {.name = "ws_port",
     .type = CFG_OT_INT,
     FIELD(ws_port),
     .def = "4921",
     .min = 0,
     .max = 65535,
     .help = "TCP port of the WebSocket stream; 0 picks a free port"},
    {.name = "bind",
     .type = CFG_OT_STRING,
     FIELD(bind),
     .def = "0.0.0.0",
     .flags = CFG_OF_NONEMPTY,
     .help = "address both listeners bind to"},
    {.name = "tls_cert_file",
     .type = CFG_OT_STRING,
     FIELD(tls_cert_file),
     .flags = CFG_OF_NONEMPTY,
     .help = "certificate (PEM, the chain after it) for HTTPS and WSS on both ports; unset = "
             "plain HTTP and WS (set with tls_key_file)"},
    {.name = "tls_key_file",
     .type = CFG_OT_STRING,
     FIELD(tls_key_file),
     .flags = CFG_OF_NONEMPTY,
     .help = "the certificate's private key (PEM, no passphrase; not readable by other users)"},
    {.name = "db_path",
     .type = CFG_OT_STRING,
     FIELD(db_path),
     .def = "./var/ei-relay.db",
     .flags = CFG_OF_NONEMPTY,
     .help = "SQLite database file"},
    {.name = "db_synchronous",
     .type = CFG_OT_ENUM,
     FIELD(db_synchronous),
     .def = "full",
     .choices = "full|normal",
     .base = CONFIG_SYNC_FULL,
     .help = "full survives power cuts; normal only process crashes (less flash wear)"},
    {.name = "db_busy_timeout_ms",
     .type = CFG_OT_INT,
     FIELD(db_busy_timeout_ms),
     .def = "5000",
     .min = 1,
     .max = 600000,
     .help = "how long a commit waits for another process's lock on the database (an "
             "`ei-relay import`) before it fails and is retried"},
    {.name = "web_root",
     .type = CFG_OT_STRING,
     FIELD(web_root),
     .def = EI_DEFAULT_WEB_ROOT, /* CMake: ./web, or the package's /usr/share/ei-relay/web */
     .flags = CFG_OF_NONEMPTY,
     .help = "directory of the dashboard's static files"},
    {.name = "log_level",
     .type = CFG_OT_ENUM,
     FIELD(log_level),
     .def = "info",
     .choices = "debug|info|warn|error",
     .base = LOG_DEBUG,
     .help = "least severe level logged"},
    {.name = "http_threads",
     .type = CFG_OT_INT,
     FIELD(http_threads),
     .def = "2",
     .min = 1,
     .max = 64,
     .help = "HTTP worker threads"},
    {.name = "max_body_bytes",
     .type = CFG_OT_SIZE,
     FIELD(max_body_bytes),
     .def = "16MiB",
     .min = 1024,
     .max = 1024 * 1024 * 1024,
     .help = "largest accepted request body"},
    /* memory: each bound is checked before the work it bounds (README, Memory bounds) */
    {.name = "max_bodies_bytes",
     .type = CFG_OT_SIZE,
     FIELD(max_bodies_bytes),
     .def = "64MiB",
     .min = 1024,
     .max = INT64_MAX,
     .help = "most request body bytes held at once over all connections (at least "
             "max_body_bytes); a body that does not fit now gets 503 with Retry-After"},
    {.name = "max_json_depth",
     .type = CFG_OT_INT,
     FIELD(max_json_depth),
     .def = CONFIG_STR(CONFIG_DEF_JSON_DEPTH),
     .min = 2,
     .max = 1000,
     .help = "deepest nesting of arrays and objects in an inference document (422 beyond)"},
    {.name = "max_json_nodes",
     .type = CFG_OT_INT,
     FIELD(max_json_nodes),
     .def = CONFIG_STR(CONFIG_DEF_JSON_NODES),
     .min = 100,
     .max = 10000000,
     .help = "most JSON values (numbers, strings, arrays, objects) in an inference document, "
             "counted before it is parsed (413 beyond)"},
    {.name = "max_result_bytes",
     .type = CFG_OT_SIZE,
     FIELD(max_result_bytes),
     .def = CONFIG_STR(CONFIG_DEF_RESULT_BYTES),
     .min = 1024,
     .max = 256 * 1024 * 1024,
     .help = "largest result of one inference (classification, boxes, grid, freeform) as "
             "stored (413 beyond)"},
    {.name = "max_info_bytes",
     .type = CFG_OT_SIZE,
     FIELD(max_info_bytes),
     .def = CONFIG_STR(CONFIG_DEF_INFO_BYTES),
     .min = 16,
     .max = 256 * 1024 * 1024,
     .help = "largest info of one inference as stored (413 beyond)"},
    {.name = "live_ring_bytes",
     .type = CFG_OT_SIZE,
     FIELD(live_ring_bytes),
     .def = "8MiB",
     .min = 65536,
     .max = 1024 * 1024 * 1024,
     .help = "memory the live stream keeps of recent inferences for its clients (oldest "
             "dropped first; older ones are read from the cache)"},
    {.name = "page_max_bytes",
     .type = CFG_OT_SIZE,
     FIELD(page_max_bytes),
     .def = "4MiB",
     .min = 65536,
     .max = 1024 * 1024 * 1024,
     .help = "most row bytes one read of the cache holds (an API page ends early, with its "
             "cursor, past it)"},
    {.name = "allow_root",
     .type = CFG_OT_BOOL,
     FIELD(allow_root),
     .def = "false",
     .help = "run the service even as root (refused otherwise: use an unprivileged user)"},
    {.name = "http_header_timeout_ms",
     .type = CFG_OT_DURATION,
     FIELD(http_header_timeout_ms),
     .def = "10000",
     .min = 100,
     .max = 3600000,
     .unit_ms = 1,
     .help = "a request's head must be complete this long after the connection opened (or the "
             "previous answer went out); a deadline, not an idle timer"},
    {.name = "http_body_timeout_ms",
     .type = CFG_OT_DURATION,
     FIELD(http_body_timeout_ms),
     .def = "60000",
     .min = 100,
     .max = 3600000,
     .unit_ms = 1,
     .help = "a request's body must be complete this long after its head; a deadline"},
    {.name = "http_max_connections",
     .type = CFG_OT_INT,
     FIELD(http_max_connections),
     .def = "256",
     .min = 1,
     .max = 65536,
     .help = "most HTTP connections at once (lowered to fit the open-file limit)"},
    {.name = "http_max_connections_per_ip",
     .type = CFG_OT_INT,
     FIELD(http_max_connections_per_ip),
     .def = "32",
     .min = 1,
     .max = 65536,
     .help = "most HTTP connections at once from one client address"},
    {.name = "ws_max_connections",
     .type = CFG_OT_INT,
     FIELD(ws_max_connections),
     .def = "64",
     .min = 1,
     .max = 65536,
     .help = "most live stream (WebSocket) connections at once (lowered to fit the open-file "
             "limit)"},
    {.name = "ws_max_connections_per_ip",
     .type = CFG_OT_INT,
     FIELD(ws_max_connections_per_ip),
     .def = "16",
     .min = 1,
     .max = 65536,
     .help = "most live stream connections at once from one client address"},
    {.name = "ws_handshake_timeout_ms",
     .type = CFG_OT_DURATION,
     FIELD(ws_handshake_timeout_ms),
     .def = "10000",
     .min = 100,
     .max = 3600000,
     .unit_ms = 1,
     .help = "a live stream connection's WebSocket upgrade must be complete this long after it "
             "opened; a deadline, not an idle timer"},
    {.name = "rate_limit_per_s",
     .type = CFG_OT_INT,
     FIELD(rate_limit_per_s),
     .def = "200",
     .min = 0,
     .max = 1000000,
     .help = "HTTP requests per second of one token (of one client address without a token); "
             "more are answered 429 with Retry-After; 0 = no limit"},
    {.name = "rate_limit_burst",
     .type = CFG_OT_INT,
     FIELD(rate_limit_burst),
     .def = "400",
     .min = 1,
     .max = 1000000,
     .help = "requests a token (or address) may send at once above rate_limit_per_s"},
    {.name = "ws_connect_per_s",
     .type = CFG_OT_INT,
     FIELD(ws_connect_per_s),
     .def = "5",
     .min = 0,
     .max = 1000000,
     .help = "live stream connections per second from one client address (burst "
             "ws_connect_burst); more are closed at once; 0 = no limit"},
    {.name = "ws_connect_burst",
     .type = CFG_OT_INT,
     FIELD(ws_connect_burst),
     .def = "20",
     .min = 1,
     .max = 1000000,
     .help = "live stream connections one address may open at once above ws_connect_per_s"},
    {.name = "auth_fail_free",
     .type = CFG_OT_INT,
     FIELD(auth_fail_free),
     .def = "5",
     .min = 1,
     .max = 1000,
     .help = "failed authentications from one address (HTTP and live stream together) before "
             "it is refused (429) for 1 s, doubling with each further failure"},
    {.name = "auth_fail_max_delay_ms",
     .type = CFG_OT_DURATION,
     FIELD(auth_fail_max_delay_ms),
     .def = "60000",
     .min = 1000,
     .max = 3600000,
     .unit_ms = 1,
     .help = "the longest an address is refused after failed authentications"},
    {.name = "auth_fail_forget_ms",
     .type = CFG_OT_DURATION,
     FIELD(auth_fail_forget_ms),
     .def = "900000",
     .min = 1000,
     .max = 86400000,
     .unit_ms = 1,
     .help = "an address's failed authentications are forgotten after this long without one "
             "(or at its next success)"},
    {.name = "rate_limit_loopback",
     .type = CFG_OT_BOOL,
     FIELD(rate_limit_loopback),
     .def = "false",
     .help = "apply the request and connection rate limits and the failed-authentication "
             "slow-down to loopback clients (127.0.0.0/8, ::1) too; off: the gateway's own "
             "processes are never throttled"},
    {.name = "demo",
     .type = CFG_OT_BOOL,
     FIELD(demo),
     .def = "false",
     .help = "generate demo inferences"},
    {.name = "demo_interval_ms",
     .type = CFG_OT_DURATION,
     FIELD(demo_interval_ms),
     .def = "1000",
     .min = 10,
     .max = 3600000,
     .unit_ms = 1,
     .help = "interval between demo inferences"},
    /* access */
    {.name = "tokens",
     .type = CFG_OT_TOKENS,
     .flags = CFG_OF_SECRET,
     .help = "JSON array of {\"token\": \"...\", \"role\": \"read|ingest|admin\"} (tokens of "
             "16..256 characters)"},
    {.name = "token_file",
     .type = CFG_OT_STRING,
     FIELD(token_file),
     .flags = CFG_OF_NONEMPTY,
     .help = "file of \"TOKEN ROLE\" lines (tokens of 16 or more characters)"},
    /* cache */
    {.name = "cache_max_rows",
     .type = CFG_OT_INT,
     FIELD(cache_max_rows),
     .def = "1000000",
     .min = 0,
     .max = INT64_MAX,
     .help = "most inferences kept; 0 = unlimited"},
    {.name = "cache_max_bytes",
     .type = CFG_OT_SIZE,
     FIELD(cache_max_bytes),
     .def = "1GiB",
     .min = 0,
     .max = INT64_MAX,
     .help = "most bytes kept; 0 = unlimited; not set: 1GiB or half of what the database's file "
             "system holds, whichever is less"},
    {.name = "cache_max_age",
     .type = CFG_OT_DURATION,
     FIELD(cache_max_age_ms),
     .def = "30d",
     .min = 0,
     .max = INT64_MAX,
     .unit_ms = 1000,
     .help = "oldest inference kept (30d, 12h, 15m, 90s, 500ms; plain number = seconds); "
             "0 = unlimited"},
    {.name = "commit_batch_max",
     .type = CFG_OT_INT,
     FIELD(commit_batch_max),
     .def = "256",
     .min = 1,
     .max = 10000,
     .help = "most inferences per group commit"},
    {.name = "thumbnail_px",
     .type = CFG_OT_INT,
     FIELD(thumbnail_px),
     .def = "160",
     .min = 16,
     .max = 1024,
     .help = "longest side of thumbnails"},
    /* forwarder */
    {.name = "mqtt_endpoint",
     .type = CFG_OT_STRING,
     FIELD(mqtt_endpoint),
     .flags = CFG_OF_NONEMPTY,
     .help = "IoT Core endpoint host; forwarding is off while unset"},
    {.name = "mqtt_port",
     .type = CFG_OT_INT,
     FIELD(mqtt_port),
     .def = "8883",
     .min = 1,
     .max = 65535,
     .help = "MQTT TLS port"},
    {.name = "mqtt_ca",
     .type = CFG_OT_STRING,
     FIELD(mqtt_ca),
     .flags = CFG_OF_NONEMPTY,
     .help = "CA certificate file (PEM); unset = the system CAs (Greengrass: "
             "/greengrass/v2/rootCA.pem)"},
    {.name = "mqtt_cert",
     .type = CFG_OT_STRING,
     FIELD(mqtt_cert),
     .flags = CFG_OF_NONEMPTY,
     .help = "client certificate file (PEM) (Greengrass: /greengrass/v2/thingCert.crt)"},
    {.name = "mqtt_key",
     .type = CFG_OT_STRING,
     FIELD(mqtt_key),
     .flags = CFG_OF_NONEMPTY,
     .help = "client private key file (PEM) (Greengrass: /greengrass/v2/privKey.key)"},
    {.name = "mqtt_client_id",
     .type = CFG_OT_STRING,
     FIELD(mqtt_client_id),
     .flags = CFG_OF_NONEMPTY,
     .help = "MQTT client id; unset = <device name>-ei-relay (under Greengrass set "
             "<thing>-ei-relay: the nucleus's own id would take over its session)"},
    {.name = "mqtt_keepalive_s",
     .type = CFG_OT_INT,
     FIELD(mqtt_keepalive_s),
     .def = "60",
     .min = 30,
     .max = 1200,
     .help = "MQTT keep-alive in seconds (IoT Core accepts 30..1200)"},
    {.name = "mqtt_inflight",
     .type = CFG_OT_INT,
     FIELD(mqtt_inflight),
     .def = "10",
     .min = 1,
     .max = 100,
     .help = "most unacknowledged QoS 1 publishes at once"},
    {.name = "publish_rate_max",
     .type = CFG_OT_INT,
     FIELD(publish_rate_max),
     .def = "100",
     .min = 0,
     .max = 100,
     .help = "most publishes per second (IoT Core: 100); 0 = unpaced (local brokers, tests)"},
    {.name = "publish_bytes_max",
     .type = CFG_OT_SIZE,
     FIELD(publish_bytes_max),
     .def = "512KiB",
     .min = 0,
     .max = 524288,
     .help = "most payload bytes per second (IoT Core: 512KiB); 0 = unpaced"},
    {.name = "reconnect_min_ms",
     .type = CFG_OT_DURATION,
     FIELD(reconnect_min_ms),
     .def = "1000",
     .min = 100,
     .max = 3600000,
     .unit_ms = 1,
     .help = "shortest wait before reconnecting to the broker (CONNECTs stay >= 1 s apart)"},
    {.name = "reconnect_max_ms",
     .type = CFG_OT_DURATION,
     FIELD(reconnect_max_ms),
     .def = "60000",
     .min = 1000,
     .max = 3600000,
     .unit_ms = 1,
     .help = "longest wait before reconnecting (exponential backoff with full jitter)"},
    {.name = "max_attempts",
     .type = CFG_OT_INT,
     FIELD(max_attempts),
     .def = "10",
     .min = 1,
     .max = 1000,
     .help = "publish attempts before a message is dead-lettered"},
    {.name = "outbox_max_rows",
     .type = CFG_OT_INT,
     FIELD(outbox_max_rows),
     .def = "1000000",
     .min = 0,
     .max = INT64_MAX,
     .help = "most messages waiting for the broker; 0 = unlimited"},
    {.name = "outbox_max_bytes",
     .type = CFG_OT_SIZE,
     FIELD(outbox_max_bytes),
     .def = "1GiB",
     .min = 0,
     .max = INT64_MAX,
     .help = "most bytes waiting for the broker; 0 = unlimited"},
    {.name = "outbox_on_full",
     .type = CFG_OT_ENUM,
     FIELD(outbox_on_full),
     .def = "drop_oldest",
     .choices = "drop_oldest|reject_new",
     .base = CONFIG_OUTBOX_DROP_OLDEST,
     .help = "when the outbox is full: drop its oldest message or do not queue the new one "
             "(the inference is cached either way)"},
    {.name = "batch_on_backlog",
     .type = CFG_OT_INT,
     FIELD(batch_on_backlog),
     .def = "0",
     .min = 0,
     .max = INT64_MAX,
     .help = "with more than N messages waiting, send JSON arrays of inference messages "
             "(<= 128 KB) on .../inference/batch to catch up; 0 = off"},
    {.name = "greengrass_file",
     .type = CFG_OT_STRING,
     FIELD(greengrass_file),
     .flags = CFG_OF_NONEMPTY,
     .help = "the greengrass.json 'ei-relay greengrass-setup' wrote: fills the mqtt_* settings "
             "not set otherwise; missing: forwarding stays off"},
    /* sources */
    {.name = "sources",
     .type = CFG_OT_SOURCES,
     .def = "[]",
     .help = "JSON array of {\"name\", \"kind\", ...}: the inference sources (the kinds and "
             "their settings: README, Receiving from the Edge Impulse runners)"},
    /* Edge Impulse seed keys that ei-relay acts on */
    {.name = "device_name",
     .type = CFG_OT_STRING,
     FIELD(device_name),
     .def = "MyEdgeImpulseDevice",
     .flags = CFG_OF_NONEMPTY,
     .help = "device name in the MQTT topics"},
    {.name = "device_mac_suffix",
     .type = CFG_OT_BOOL,
     FIELD(device_mac_suffix),
     .def = "true",
     .help = "append _<MAC of the default-route interface> to device_name"},
    {.name = "iotcore_backoff",
     .type = CFG_OT_INT,
     FIELD(iotcore_backoff),
     .def = "-1",
     .min = INT_MIN,
     .max = INT_MAX,
     .help = "publish every N-th inference; N <= 0 publishes all"},
    {.name = "iotcore_qos",
     .type = CFG_OT_INT,
     FIELD(iotcore_qos),
     .def = "1",
     .min = 0,
     .max = 1,
     .help = "MQTT QoS of inference messages"},
    {.name = "publish_inference_base64_image",
     .type = CFG_OT_BOOL,
     FIELD(publish_inference_base64_image),
     .def = "false",
     .help = "include the base64 JPEG in inference messages"},
    {.name = "enable_threshold_limit",
     .type = CFG_OT_BOOL,
     FIELD(enable_threshold_limit),
     .def = "false",
     .help = "publish only inferences that pass the threshold filter"},
    {.name = "default_threshold",
     .type = CFG_OT_DOUBLE,
     FIELD(default_threshold),
     .def = "0.5",
     .min = 0,
     .max = 100,
     .flags = CFG_OF_PERCENT,
     .help = "threshold on the mean confidence; above 1 it is a percentage (50 = 0.50)"},
    {.name = "threshold_criteria",
     .type = CFG_OT_ENUM,
     FIELD(threshold_criteria),
     .def = "ge",
     .choices = "gt|ge|eq|le|lt",
     .base = CONFIG_CRIT_GT,
     .help = "comparison of the mean confidence with the threshold"},
    {.name = "metrics_sleeptime_ms",
     .type = CFG_OT_DURATION,
     FIELD(metrics_sleeptime_ms),
     .def = "30000",
     .min = 1000,
     .max = 86400000,
     .unit_ms = 1,
     .help = "interval of model metrics messages"},
    {.name = "s3_bucket",
     .type = CFG_OT_STRING,
     FIELD(s3_bucket),
     .help = "copied into inference messages as s3_bucket"},
    {.name = "ei_local_model_file",
     .type = CFG_OT_STRING,
     FIELD(ei_local_model_file),
     .help = "an Edge Impulse Linux model (.eim): run it on the camera as the eim source "
             "\"runner\" (README, Running a model)"},
    {.name = "serial_device",
     .type = CFG_OT_STRING,
     FIELD(serial_device),
     .help = "a tty with an Edge Impulse firmware: read it as the serial source \"serial\" "
             "(the serial component's keys; README, Receiving from the Edge Impulse runners)"},
    {.name = "serial_baud",
     .type = CFG_OT_INT,
     FIELD(serial_baud),
     .def = "115200",
     .min = 1200,
     .max = 4000000,
     .help = "with serial_device: its baud rate"},
    {.name = "serial_impulse",
     .type = CFG_OT_ENUM,
     FIELD(serial_impulse),
     .def = "normal",
     .choices = "normal|continuous|debug|off",
     .base = CONFIG_IMPULSE_NORMAL,
     .help = "with serial_device: how the firmware's impulse is started (AT+RUNIMPULSE, "
             "AT+RUNIMPULSECONT, AT+RUNIMPULSEDEBUG with images) or off: only listen"},
    {.name = "gst_args",
     .type = CFG_OT_STRING,
     FIELD(gst_args),
     .help = "with ei_local_model_file: the GStreamer pipeline giving JPEG frames, ':' for each "
             "space (the Greengrass recipes' form); unset: the first camera found"},
    /* seed keys accepted and ignored */
    IGNORED("enable_cache_to_file"),
    IGNORED("cache_file_directory"),
    IGNORED("ei_poll_sleeptime_ms"),
    IGNORED("sleep_time_sec"),
    IGNORED("lock_filename"),
    IGNORED("eiparams"),
    IGNORED("ei_bindir"),
    IGNORED("ei_sm_secret_id"),
    IGNORED("ei_sm_secret_name"),
    IGNORED("ei_ggc_user_groups"),
    IGNORED("install_kvssink"),
    IGNORED("node_version"),
    IGNORED("vips_version"),
    IGNORED("launch"),
    IGNORED("enable_cache_to_s3"),
    IGNORED("ei_shutdown_behavior"),
};

const size_t cfg_n_opts = sizeof cfg_opts / sizeof cfg_opts[0];
_Static_assert(sizeof cfg_opts / sizeof cfg_opts[0] <= CFG_OPTS_MAX,
               "more settings than CFG_OPTS_MAX (config_internal.h): raise it");

/* ---- fields and names ---------------------------------------------------------------------- */

void *cfg_field(config *c, const cfg_opt *o)
{
    return (char *)c + o->off;
}

const void *cfg_cfield(const config *c, const cfg_opt *o)
{
    return (const char *)c + o->off;
}

void cfg_store_int(config *c, const cfg_opt *o, int64_t v)
{
    if (o->width == sizeof(int)) {
        int i = (int)v;
        memcpy(cfg_field(c, o), &i, sizeof i);
    } else {
        memcpy(cfg_field(c, o), &v, sizeof v);
    }
}

int64_t cfg_load_int(const config *c, const cfg_opt *o)
{
    if (o->width == sizeof(int)) {
        int i;
        memcpy(&i, cfg_cfield(c, o), sizeof i);
        return i;
    }
    int64_t v;
    memcpy(&v, cfg_cfield(c, o), sizeof v);
    return v;
}

const cfg_opt *cfg_find_opt(const char *name)
{
    for (size_t i = 0; i < cfg_n_opts; i++)
        if (strcmp(cfg_opts[i].name, name) == 0) return &cfg_opts[i];
    return NULL;
}

/* Levenshtein distance of two short strings (both < CFG_NAME_MAX). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t prev[CFG_NAME_MAX + 1], cur[CFG_NAME_MAX + 1];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t best = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < best) best = prev[j] + 1;
            if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
            cur[j] = best;
        }
        memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
    }
    return prev[lb];
}

const cfg_opt *cfg_nearest_opt(const char *name)
{
    if (strlen(name) >= CFG_NAME_MAX) return NULL;
    const cfg_opt *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < cfg_n_opts; i++) {
        if (strlen(cfg_opts[i].name) >= CFG_NAME_MAX) continue;
        size_t d = edit_distance(name, cfg_opts[i].name);
        if (d < best_d) {
            best_d = d;
            best = &cfg_opts[i];
        }
    }
    return best;
}

void cfg_kebab_name(const char *name, char *out, size_t cap)
{
    size_t i = 0;
    for (; name[i] && i + 1 < cap; i++)
        out[i] = name[i] == '_' ? '-' : name[i];
    out[i] = '\0';
}
