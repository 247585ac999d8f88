/* config.c - the settings of ei-relay as one static table, and the generic loader behind
 * config.h. Each row says {name, type, field offset, default, bounds or choices, flags, help};
 * the JSON file, the EI_RELAY_* environment, the --flags, --print-config and --help all walk
 * this table, with one code path per value type. Owned by the config module.
 *
 * Value syntax, whatever the source (JSON string or number alike, env text, flag text):
 *   int       decimal integer ("5" and 5 are the same)
 *   bool      true|false, yes|no, on|off, 1|0 (any case)
 *   double    decimal number; default_threshold above 1 is a percentage (50 -> 0.50)
 *   enum      one of the listed names (any case)
 *   size      bytes, or a number with K, M, G or T (K = KB = KiB = 1024; any case)
 *   duration  a number with ms, s, m, h or d; a plain number counts milliseconds for the *_ms
 *             settings and seconds for cache_max_age
 *   JSON      tokens, sources: a JSON array (in env/flags, and in the file as a string, the
 *             array's JSON text)
 * "__none__" (and JSON null) resets a setting: a string without default becomes NULL, anything
 * else takes its default. */
#include "config/config.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

#define CONFIG_FILE_MAX (1024 * 1024) /* a settings file is small; refuse anything bigger */
#define NONE_TEXT "__none__"
#define TOKEN_MIN 8
#define TOKEN_MAX 256
#define TOKENS_MAX 256 /* keeps the duplicate check (quadratic) cheap on hostile input */
#define SOURCES_MAX 64
#define NAME_MAX_LEN 64 /* longest setting name we try to match or suggest */
#define BOOL_WORDS "false|true|no|yes|off|on|0|1"
#define ROLE_NAMES "read|ingest|admin"
#define SOURCE_KINDS "runner-ws|serial"
#define COMMANDS "run|export|import"

typedef enum opt_type {
    OT_STRING,
    OT_INT,
    OT_BOOL,
    OT_DOUBLE,
    OT_ENUM,
    OT_SIZE,
    OT_DURATION,
    OT_TOKENS,
    OT_SOURCES,
    OT_IGNORED, /* seed key accepted for compatibility, no field */
} opt_type;

enum {
    OF_SECRET = 1u << 0,   /* values masked in --print-config */
    OF_NONEMPTY = 1u << 1, /* strings: "" is refused */
    OF_PERCENT = 1u << 2,  /* doubles: a value above 1 is a percentage */
};

typedef struct opt {
    const char *name;
    opt_type type;
    size_t off, width;   /* the field in struct config */
    const char *def;     /* default as text, parsed like any other value; NULL = unset */
    int64_t min, max;    /* ints, sizes (bytes), durations (ms), doubles */
    const char *choices; /* enums: "a|b|c", stored as base + index */
    int base;
    int64_t unit_ms; /* durations: what a plain number counts */
    unsigned flags;
    const char *help;
} opt;

#define FIELD(f) .off = offsetof(config, f), .width = sizeof(((config *)0)->f)
#define IGNORED(n)                                                                                 \
    {                                                                                              \
        .name = n, .type = OT_IGNORED                                                              \
    }

/* Enum fields are stored through an int. */
_Static_assert(sizeof(config_sync) == sizeof(int), "enum fields must be int-sized");
_Static_assert(sizeof(config_criteria) == sizeof(int), "enum fields must be int-sized");
_Static_assert(sizeof(config_outbox_full) == sizeof(int), "enum fields must be int-sized");

static const opt opts[] = {
    /* service */
    {.name = "http_port",
     .type = OT_INT,
     FIELD(http_port),
     .def = "4920",
     .min = 0,
     .max = 65535,
     .help = "TCP port of the REST API and dashboard; 0 picks a free port"},
    {.name = "ws_port",
     .type = OT_INT,
     FIELD(ws_port),
     .def = "4921",
     .min = 0,
     .max = 65535,
     .help = "TCP port of the WebSocket stream; 0 picks a free port"},
    {.name = "bind",
     .type = OT_STRING,
     FIELD(bind),
     .def = "0.0.0.0",
     .flags = OF_NONEMPTY,
     .help = "address both listeners bind to"},
    {.name = "db_path",
     .type = OT_STRING,
     FIELD(db_path),
     .def = "./var/ei-relay.db",
     .flags = OF_NONEMPTY,
     .help = "SQLite database file"},
    {.name = "db_synchronous",
     .type = OT_ENUM,
     FIELD(db_synchronous),
     .def = "full",
     .choices = "full|normal",
     .base = CONFIG_SYNC_FULL,
     .help = "full survives power cuts; normal only process crashes (less flash wear)"},
    {.name = "web_root",
     .type = OT_STRING,
     FIELD(web_root),
     .def = "./web",
     .flags = OF_NONEMPTY,
     .help = "directory of the dashboard's static files"},
    {.name = "log_level",
     .type = OT_ENUM,
     FIELD(log_level),
     .def = "info",
     .choices = "debug|info|warn|error",
     .base = LOG_DEBUG,
     .help = "least severe level logged"},
    {.name = "http_threads",
     .type = OT_INT,
     FIELD(http_threads),
     .def = "2",
     .min = 1,
     .max = 64,
     .help = "HTTP worker threads"},
    {.name = "max_body_bytes",
     .type = OT_SIZE,
     FIELD(max_body_bytes),
     .def = "16MiB",
     .min = 1024,
     .max = 1024 * 1024 * 1024,
     .help = "largest accepted request body"},
    {.name = "demo",
     .type = OT_BOOL,
     FIELD(demo),
     .def = "false",
     .help = "generate demo inferences"},
    {.name = "demo_interval_ms",
     .type = OT_DURATION,
     FIELD(demo_interval_ms),
     .def = "1000",
     .min = 10,
     .max = 3600000,
     .unit_ms = 1,
     .help = "interval between demo inferences"},
    /* access */
    {.name = "tokens",
     .type = OT_TOKENS,
     .flags = OF_SECRET,
     .help = "JSON array of {\"token\": \"...\", \"role\": \"read|ingest|admin\"}"},
    {.name = "token_file",
     .type = OT_STRING,
     FIELD(token_file),
     .flags = OF_NONEMPTY,
     .help = "file of \"TOKEN ROLE\" lines"},
    /* cache */
    {.name = "cache_max_rows",
     .type = OT_INT,
     FIELD(cache_max_rows),
     .def = "1000000",
     .min = 0,
     .max = INT64_MAX,
     .help = "most inferences kept; 0 = unlimited"},
    {.name = "cache_max_bytes",
     .type = OT_SIZE,
     FIELD(cache_max_bytes),
     .def = "1GiB",
     .min = 0,
     .max = INT64_MAX,
     .help = "most bytes kept; 0 = unlimited"},
    {.name = "cache_max_age",
     .type = OT_DURATION,
     FIELD(cache_max_age_ms),
     .def = "30d",
     .min = 0,
     .max = INT64_MAX,
     .unit_ms = 1000,
     .help = "oldest inference kept (30d, 12h, 15m, 90s, 500ms; plain number = seconds); "
             "0 = unlimited"},
    {.name = "commit_batch_max",
     .type = OT_INT,
     FIELD(commit_batch_max),
     .def = "256",
     .min = 1,
     .max = 10000,
     .help = "most inferences per group commit"},
    {.name = "thumbnail_px",
     .type = OT_INT,
     FIELD(thumbnail_px),
     .def = "160",
     .min = 16,
     .max = 1024,
     .help = "longest side of thumbnails"},
    /* forwarder */
    {.name = "mqtt_endpoint",
     .type = OT_STRING,
     FIELD(mqtt_endpoint),
     .flags = OF_NONEMPTY,
     .help = "IoT Core endpoint host; forwarding is off while unset"},
    {.name = "mqtt_port",
     .type = OT_INT,
     FIELD(mqtt_port),
     .def = "8883",
     .min = 1,
     .max = 65535,
     .help = "MQTT TLS port"},
    {.name = "mqtt_ca",
     .type = OT_STRING,
     FIELD(mqtt_ca),
     .flags = OF_NONEMPTY,
     .help = "CA certificate file (PEM); unset = the system CAs (Greengrass: "
             "/greengrass/v2/rootCA.pem)"},
    {.name = "mqtt_cert",
     .type = OT_STRING,
     FIELD(mqtt_cert),
     .flags = OF_NONEMPTY,
     .help = "client certificate file (PEM) (Greengrass: /greengrass/v2/thingCert.crt)"},
    {.name = "mqtt_key",
     .type = OT_STRING,
     FIELD(mqtt_key),
     .flags = OF_NONEMPTY,
     .help = "client private key file (PEM) (Greengrass: /greengrass/v2/privKey.key)"},
    {.name = "mqtt_client_id",
     .type = OT_STRING,
     FIELD(mqtt_client_id),
     .flags = OF_NONEMPTY,
     .help = "MQTT client id; unset = <device name>-ei-relay (under Greengrass set "
             "<thing>-ei-relay: the nucleus's own id would take over its session)"},
    {.name = "mqtt_keepalive_s",
     .type = OT_INT,
     FIELD(mqtt_keepalive_s),
     .def = "60",
     .min = 30,
     .max = 1200,
     .help = "MQTT keep-alive in seconds (IoT Core accepts 30..1200)"},
    {.name = "mqtt_inflight",
     .type = OT_INT,
     FIELD(mqtt_inflight),
     .def = "10",
     .min = 1,
     .max = 100,
     .help = "most unacknowledged QoS 1 publishes at once"},
    {.name = "publish_rate_max",
     .type = OT_INT,
     FIELD(publish_rate_max),
     .def = "100",
     .min = 0,
     .max = 100,
     .help = "most publishes per second (IoT Core: 100); 0 = unpaced (local brokers, tests)"},
    {.name = "publish_bytes_max",
     .type = OT_SIZE,
     FIELD(publish_bytes_max),
     .def = "512KiB",
     .min = 0,
     .max = 524288,
     .help = "most payload bytes per second (IoT Core: 512KiB); 0 = unpaced"},
    {.name = "reconnect_min_ms",
     .type = OT_DURATION,
     FIELD(reconnect_min_ms),
     .def = "1000",
     .min = 100,
     .max = 3600000,
     .unit_ms = 1,
     .help = "shortest wait before reconnecting to the broker (CONNECTs stay >= 1 s apart)"},
    {.name = "reconnect_max_ms",
     .type = OT_DURATION,
     FIELD(reconnect_max_ms),
     .def = "60000",
     .min = 1000,
     .max = 3600000,
     .unit_ms = 1,
     .help = "longest wait before reconnecting (exponential backoff with full jitter)"},
    {.name = "max_attempts",
     .type = OT_INT,
     FIELD(max_attempts),
     .def = "10",
     .min = 1,
     .max = 1000,
     .help = "publish attempts before a message is dead-lettered"},
    {.name = "outbox_max_rows",
     .type = OT_INT,
     FIELD(outbox_max_rows),
     .def = "1000000",
     .min = 0,
     .max = INT64_MAX,
     .help = "most messages waiting for the broker; 0 = unlimited"},
    {.name = "outbox_max_bytes",
     .type = OT_SIZE,
     FIELD(outbox_max_bytes),
     .def = "1GiB",
     .min = 0,
     .max = INT64_MAX,
     .help = "most bytes waiting for the broker; 0 = unlimited"},
    {.name = "outbox_on_full",
     .type = OT_ENUM,
     FIELD(outbox_on_full),
     .def = "drop_oldest",
     .choices = "drop_oldest|reject_new",
     .base = CONFIG_OUTBOX_DROP_OLDEST,
     .help = "when the outbox is full: drop its oldest message or do not queue the new one "
             "(the inference is cached either way)"},
    {.name = "batch_on_backlog",
     .type = OT_INT,
     FIELD(batch_on_backlog),
     .def = "0",
     .min = 0,
     .max = INT64_MAX,
     .help = "with more than N messages waiting, send JSON arrays of inference messages "
             "(<= 128 KB) on .../inference/batch to catch up; 0 = off"},
    /* sources */
    {.name = "sources",
     .type = OT_SOURCES,
     .def = "[]",
     .help = "JSON array of {\"name\", \"kind\": \"runner-ws|serial\", ...}"},
    /* Edge Impulse seed keys that ei-relay acts on */
    {.name = "device_name",
     .type = OT_STRING,
     FIELD(device_name),
     .def = "MyEdgeImpulseDevice",
     .flags = OF_NONEMPTY,
     .help = "device name in the MQTT topics"},
    {.name = "device_mac_suffix",
     .type = OT_BOOL,
     FIELD(device_mac_suffix),
     .def = "true",
     .help = "append _<MAC of the default-route interface> to device_name"},
    {.name = "iotcore_backoff",
     .type = OT_INT,
     FIELD(iotcore_backoff),
     .def = "-1",
     .min = INT_MIN,
     .max = INT_MAX,
     .help = "publish every N-th inference; N <= 0 publishes all"},
    {.name = "iotcore_qos",
     .type = OT_INT,
     FIELD(iotcore_qos),
     .def = "1",
     .min = 0,
     .max = 1,
     .help = "MQTT QoS of inference messages"},
    {.name = "publish_inference_base64_image",
     .type = OT_BOOL,
     FIELD(publish_inference_base64_image),
     .def = "false",
     .help = "include the base64 JPEG in inference messages"},
    {.name = "enable_threshold_limit",
     .type = OT_BOOL,
     FIELD(enable_threshold_limit),
     .def = "false",
     .help = "publish only inferences that pass the threshold filter"},
    {.name = "default_threshold",
     .type = OT_DOUBLE,
     FIELD(default_threshold),
     .def = "0.5",
     .min = 0,
     .max = 100,
     .flags = OF_PERCENT,
     .help = "threshold on the mean confidence; above 1 it is a percentage (50 = 0.50)"},
    {.name = "threshold_criteria",
     .type = OT_ENUM,
     FIELD(threshold_criteria),
     .def = "ge",
     .choices = "gt|ge|eq|le|lt",
     .base = CONFIG_CRIT_GT,
     .help = "comparison of the mean confidence with the threshold"},
    {.name = "metrics_sleeptime_ms",
     .type = OT_DURATION,
     FIELD(metrics_sleeptime_ms),
     .def = "30000",
     .min = 1000,
     .max = 86400000,
     .unit_ms = 1,
     .help = "interval of model metrics messages"},
    {.name = "s3_bucket",
     .type = OT_STRING,
     FIELD(s3_bucket),
     .help = "copied into inference messages as s3_bucket"},
    /* seed keys accepted and ignored */
    IGNORED("enable_cache_to_file"),
    IGNORED("cache_file_directory"),
    IGNORED("ei_poll_sleeptime_ms"),
    IGNORED("sleep_time_sec"),
    IGNORED("lock_filename"),
    IGNORED("gst_args"),
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
    IGNORED("ei_local_model_file"),
    IGNORED("ei_shutdown_behavior"),
};

#define N_OPTS (sizeof opts / sizeof opts[0])

/* State of one load: the config being filled, and which ignored keys are currently set. */
typedef struct loader {
    config *c;
    bool ignored_set[N_OPTS];
} loader;

/* ---- small helpers ---------------------------------------------------------------------- */

static void *field_of(config *c, const opt *o)
{
    return (char *)c + o->off;
}

static const void *cfield_of(const config *c, const opt *o)
{
    return (const char *)c + o->off;
}

/* Stores an integer into an int or int64_t field, whichever the row points at. */
static void store_int(config *c, const opt *o, int64_t v)
{
    if (o->width == sizeof(int)) {
        int i = (int)v;
        memcpy(field_of(c, o), &i, sizeof i);
    } else {
        memcpy(field_of(c, o), &v, sizeof v);
    }
}

static int64_t load_int(const config *c, const opt *o)
{
    if (o->width == sizeof(int)) {
        int i;
        memcpy(&i, cfield_of(c, o), sizeof i);
        return i;
    }
    int64_t v;
    memcpy(&v, cfield_of(c, o), sizeof v);
    return v;
}

/* Index of s among "a|b|c" (case-insensitive), or -1. */
static int choice_index(const char *choices, const char *s)
{
    size_t n = strlen(s);
    int i = 0;
    for (const char *p = choices;; i++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncasecmp(p, s, n) == 0) return i;
        if (!bar) return -1;
        p = bar + 1;
    }
}

/* Copies the idx-th name of "a|b|c" into out ("?" if out of range). */
static void choice_name(const char *choices, int idx, char *out, size_t cap)
{
    const char *p = choices;
    for (int i = 0; i < idx && p; i++) {
        p = strchr(p, '|');
        if (p) p++;
    }
    if (!p || idx < 0) {
        snprintf(out, cap, "?");
        return;
    }
    const char *bar = strchr(p, '|');
    int len = bar ? (int)(bar - p) : (int)strlen(p);
    snprintf(out, cap, "%.*s", len, p);
}

/* Strict decimal integer at the start of s (optional '-', digits, no overflow). */
static bool parse_int_prefix(const char *s, int64_t *out, const char **end)
{
    const char *p = s;
    bool neg = *p == '-';
    if (neg) p++;
    if (!isdigit((unsigned char)*p)) return false;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (; isdigit((unsigned char)*p); p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (limit - d) / 10) return false;
        v = v * 10 + d;
    }
    if (!neg)
        *out = (int64_t)v;
    else
        *out = v == limit ? INT64_MIN : -(int64_t)v;
    *end = p;
    return true;
}

/* Bytes with an optional binary suffix; false if malformed, *overflow if too big. */
static bool parse_size(const char *s, int64_t *out, bool *overflow)
{
    static const struct {
        const char *suffix;
        int shift;
    } units[] = {{"", 0},     {"b", 0},   {"k", 10},   {"kb", 10}, {"kib", 10},
                 {"m", 20},   {"mb", 20}, {"mib", 20}, {"g", 30},  {"gb", 30},
                 {"gib", 30}, {"t", 40},  {"tb", 40},  {"tib", 40}};
    int64_t v;
    const char *end;
    *overflow = false;
    if (*s == '-' || !parse_int_prefix(s, &v, &end)) return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(end, units[i].suffix) != 0) continue;
        if (v > (INT64_MAX >> units[i].shift)) {
            *overflow = true;
            return false;
        }
        *out = v << units[i].shift;
        return true;
    }
    return false;
}

/* Milliseconds from a number with ms|s|m|h|d, or a plain number of unit_ms. */
static bool parse_duration(const char *s, int64_t unit_ms, int64_t *out, bool *overflow)
{
    static const struct {
        const char *suffix;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    int64_t v;
    const char *end;
    *overflow = false;
    if (*s == '-' || !parse_int_prefix(s, &v, &end)) return false;
    int64_t mult = 0;
    if (*end == '\0') mult = unit_ms;
    for (size_t i = 0; !mult && i < sizeof units / sizeof units[0]; i++)
        if (strcasecmp(end, units[i].suffix) == 0) mult = units[i].ms;
    if (!mult) return false;
    if (v > INT64_MAX / mult) {
        *overflow = true;
        return false;
    }
    *out = v * mult;
    return true;
}

/* The shortest exact text of a duration: "30d", "90s", "500ms"; "0" for zero. */
static void format_duration(int64_t ms, char *out, size_t cap)
{
    static const struct {
        const char *suffix;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    if (ms == 0) {
        snprintf(out, cap, "0");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ms % units[i].ms == 0) {
            snprintf(out, cap, "%lld%s", (long long)(ms / units[i].ms), units[i].suffix);
            return;
        }
    }
    snprintf(out, cap, "%lldms", (long long)ms);
}

static const opt *find_opt(const char *name)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (strcmp(opts[i].name, name) == 0) return &opts[i];
    return NULL;
}

/* Levenshtein distance of two short strings (both < NAME_MAX_LEN). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t prev[NAME_MAX_LEN + 1], cur[NAME_MAX_LEN + 1];
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

/* The setting whose name is within two edits of name, for "did you mean" hints. */
static const opt *nearest_opt(const char *name)
{
    if (strlen(name) >= NAME_MAX_LEN) return NULL;
    const opt *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < N_OPTS; i++) {
        if (strlen(opts[i].name) >= NAME_MAX_LEN) continue;
        size_t d = edit_distance(name, opts[i].name);
        if (d < best_d) {
            best_d = d;
            best = &opts[i];
        }
    }
    return best;
}

/* "http_port" -> "http-port" (flag) or "HTTP_PORT" (environment). */
static void kebab_name(const char *name, char *out, size_t cap)
{
    size_t i = 0;
    for (; name[i] && i + 1 < cap; i++)
        out[i] = name[i] == '_' ? '-' : name[i];
    out[i] = '\0';
}

static void upper_name(const char *name, char *out, size_t cap)
{
    size_t i = 0;
    for (; name[i] && i + 1 < cap; i++)
        out[i] = (char)toupper((unsigned char)name[i]);
    out[i] = '\0';
}

/* Appends " (what where)" to an error message, saying where the bad value came from. */
static void err_origin(er_err *err, const char *what, const char *where)
{
    if (!err || !where) return;
    size_t n = strlen(err->msg);
    if (n + 1 < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - n, " (%s%s)", what, where);
}

static er_rc unknown_setting(er_err *err, const char *key)
{
    const opt *near = nearest_opt(key);
    if (near)
        return er_fail(err, ER_CONFIG, "unknown setting \"%.60s\" (did you mean \"%s\"?)", key,
                       near->name);
    return er_fail(err, ER_CONFIG, "unknown setting \"%.60s\"", key);
}

/* ---- the JSON-typed settings -------------------------------------------------------------- */

static void free_tokens(config_token *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(t[i].token);
    free(t);
}

static bool token_text_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < TOKEN_MIN || n > TOKEN_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) return false;
    return true;
}

/* Validates a tokens array and replaces c->tokens with it. */
static er_rc set_tokens(config *c, const cJSON *arr, er_err *err)
{
    config_token *t = NULL;
    size_t n = 0;
    er_rc rc = ER_OK;
    if (!cJSON_IsArray(arr)) {
        rc = er_fail(err, ER_CONFIG, "tokens: expected a JSON array of {\"token\", \"role\"}");
        goto fail;
    }
    int count = cJSON_GetArraySize(arr);
    if (count > TOKENS_MAX) {
        rc = er_fail(err, ER_CONFIG, "tokens: at most %d entries", TOKENS_MAX);
        goto fail;
    }
    if (count > 0 && !(t = calloc((size_t)count, sizeof *t))) {
        rc = er_fail(err, ER_NOMEM, "tokens: out of memory");
        goto fail;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, arr)
    {
        if (!cJSON_IsObject(item)) {
            rc =
                er_fail(err, ER_CONFIG, "tokens[%zu]: expected an object {\"token\", \"role\"}", n);
            goto fail;
        }
        const cJSON *kv;
        cJSON_ArrayForEach(kv, item)
        {
            if (strcmp(kv->string, "token") != 0 && strcmp(kv->string, "role") != 0) {
                rc = er_fail(err, ER_CONFIG, "tokens[%zu]: unknown key \"%.40s\" (token|role)", n,
                             kv->string);
                goto fail;
            }
        }
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(item, "token");
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(item, "role");
        if (!cJSON_IsString(tok) || !token_text_ok(tok->valuestring)) {
            rc = er_fail(err, ER_CONFIG,
                         "tokens[%zu].token: expected a string of %d..%d printable characters "
                         "without spaces",
                         n, TOKEN_MIN, TOKEN_MAX);
            goto fail;
        }
        for (size_t j = 0; j < n; j++) {
            if (strcmp(t[j].token, tok->valuestring) == 0) {
                rc = er_fail(err, ER_CONFIG, "tokens[%zu].token: same as tokens[%zu]", n, j);
                goto fail;
            }
        }
        int r = cJSON_IsString(role) ? choice_index(ROLE_NAMES, role->valuestring) : -1;
        if (r < 0) {
            rc = er_fail(err, ER_CONFIG, "tokens[%zu].role: \"%.40s\" is not one of " ROLE_NAMES, n,
                         cJSON_IsString(role) ? role->valuestring : "(missing)");
            goto fail;
        }
        if (!(t[n].token = strdup(tok->valuestring))) {
            rc = er_fail(err, ER_NOMEM, "tokens: out of memory");
            goto fail;
        }
        t[n].role = (config_role)(CONFIG_ROLE_READ + r);
        n++;
    }
    free_tokens(c->tokens, c->n_tokens);
    c->tokens = t;
    c->n_tokens = n;
    return ER_OK;
fail:
    free_tokens(t, n);
    return rc;
}

/* Validates a sources array (names unique, kinds known) and stores its JSON text. */
static er_rc set_sources(config *c, const cJSON *arr, er_err *err)
{
    char *text = NULL;
    er_rc rc = ER_OK;
    if (!cJSON_IsArray(arr)) {
        rc = er_fail(err, ER_CONFIG, "sources: expected a JSON array of {\"name\", \"kind\", ...}");
        goto fail;
    }
    if (cJSON_GetArraySize(arr) > SOURCES_MAX) {
        rc = er_fail(err, ER_CONFIG, "sources: at most %d entries", SOURCES_MAX);
        goto fail;
    }
    size_t i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, arr)
    {
        if (!cJSON_IsObject(item)) {
            rc =
                er_fail(err, ER_CONFIG, "sources[%zu]: expected an object {\"name\", \"kind\"}", i);
            goto fail;
        }
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");
        if (!cJSON_IsString(name) || !name->valuestring[0]) {
            rc = er_fail(err, ER_CONFIG, "sources[%zu].name: expected a non-empty string", i);
            goto fail;
        }
        size_t j = 0;
        const cJSON *other;
        cJSON_ArrayForEach(other, arr)
        {
            if (j == i) break;
            const cJSON *oname = cJSON_GetObjectItemCaseSensitive(other, "name");
            if (strcmp(oname->valuestring, name->valuestring) == 0) {
                rc = er_fail(err, ER_CONFIG,
                             "sources[%zu].name: \"%.40s\" is already used by "
                             "sources[%zu]",
                             i, name->valuestring, j);
                goto fail;
            }
            j++;
        }
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(item, "kind");
        if (!cJSON_IsString(kind) || choice_index(SOURCE_KINDS, kind->valuestring) < 0) {
            rc = er_fail(err, ER_CONFIG, "sources[%zu].kind: \"%.40s\" is not one of " SOURCE_KINDS,
                         i, cJSON_IsString(kind) ? kind->valuestring : "(missing)");
            goto fail;
        }
        i++;
    }
    if (!(text = cJSON_PrintUnformatted(arr))) {
        rc = er_fail(err, ER_NOMEM, "sources: out of memory");
        goto fail;
    }
    free(c->sources_json);
    c->sources_json = text;
    return ER_OK;
fail:
    return rc;
}

static er_rc set_array(loader *ld, const opt *o, const cJSON *arr, er_err *err)
{
    return o->type == OT_TOKENS ? set_tokens(ld->c, arr, err) : set_sources(ld->c, arr, err);
}

/* ---- the generic setter -------------------------------------------------------------------- */

static er_rc set_text(loader *ld, const opt *o, const char *text, er_err *err);

/* "__none__": strings without default become NULL, everything else takes its default. */
static er_rc set_default(loader *ld, const opt *o, er_err *err)
{
    if (o->type == OT_IGNORED) {
        ld->ignored_set[o - opts] = false;
        return ER_OK;
    }
    if (o->def) return set_text(ld, o, o->def, err);
    if (o->type == OT_STRING) {
        char **p = field_of(ld->c, o);
        free(*p);
        *p = NULL;
    } else if (o->type == OT_TOKENS) {
        free_tokens(ld->c->tokens, ld->c->n_tokens);
        ld->c->tokens = NULL;
        ld->c->n_tokens = 0;
    }
    return ER_OK;
}

static er_rc out_of_range(er_err *err, const opt *o, int64_t v, const char *unit)
{
    if (o->max == INT64_MAX) /* "no upper bound" reads better than 9223372036854775807 */
        return er_fail(err, ER_CONFIG, "%s: %lld%s is out of range, must be >= %lld%s", o->name,
                       (long long)v, unit, (long long)o->min, unit);
    return er_fail(err, ER_CONFIG, "%s: %lld%s is out of range %lld..%lld%s", o->name, (long long)v,
                   unit, (long long)o->min, (long long)o->max, unit);
}

/* Parses text as o's type, checks it and stores it: the one path every source goes through. */
static er_rc set_text(loader *ld, const opt *o, const char *text, er_err *err)
{
    config *c = ld->c;
    int64_t v = 0;
    const char *end;
    bool overflow = false;
    if (strcmp(text, NONE_TEXT) == 0) return set_default(ld, o, err);
    switch (o->type) {
    case OT_STRING: {
        if ((o->flags & OF_NONEMPTY) && !*text)
            return er_fail(err, ER_CONFIG, "%s: must not be empty", o->name);
        char *dup = strdup(text);
        if (!dup) return er_fail(err, ER_NOMEM, "%s: out of memory", o->name);
        char **p = field_of(c, o);
        free(*p);
        *p = dup;
        return ER_OK;
    }
    case OT_INT:
        if (!parse_int_prefix(text, &v, &end) || *end)
            return er_fail(err, ER_CONFIG, "%s: \"%.40s\" is not an integer (%lld..%lld)", o->name,
                           text, (long long)o->min, (long long)o->max);
        if (v < o->min || v > o->max) return out_of_range(err, o, v, "");
        store_int(c, o, v);
        return ER_OK;
    case OT_SIZE:
        if (!parse_size(text, &v, &overflow)) {
            if (overflow)
                return er_fail(err, ER_CONFIG, "%s: \"%.40s\" is out of range %lld..%lld bytes",
                               o->name, text, (long long)o->min, (long long)o->max);
            return er_fail(err, ER_CONFIG,
                           "%s: \"%.40s\" is not a size (bytes, or a number with K, M, G, T)",
                           o->name, text);
        }
        if (v < o->min || v > o->max) return out_of_range(err, o, v, " bytes");
        store_int(c, o, v);
        return ER_OK;
    case OT_DURATION:
        if (!parse_duration(text, o->unit_ms, &v, &overflow)) {
            if (overflow)
                return er_fail(err, ER_CONFIG, "%s: \"%.40s\" is out of range %lld..%lld ms",
                               o->name, text, (long long)o->min, (long long)o->max);
            return er_fail(err, ER_CONFIG,
                           "%s: \"%.40s\" is not a duration (a number of %s, or with "
                           "ms|s|m|h|d)",
                           o->name, text, o->unit_ms == 1 ? "milliseconds" : "seconds");
        }
        if (v < o->min || v > o->max) return out_of_range(err, o, v, " ms");
        store_int(c, o, v);
        return ER_OK;
    case OT_BOOL: {
        int i = choice_index(BOOL_WORDS, text);
        if (i < 0)
            return er_fail(err, ER_CONFIG, "%s: \"%.40s\" is not one of " BOOL_WORDS, o->name,
                           text);
        bool b = i % 2 == 1;
        memcpy(field_of(c, o), &b, sizeof b);
        return ER_OK;
    }
    case OT_DOUBLE: {
        char *dend;
        errno = 0;
        double d = strtod(text, &dend);
        if (!*text || isspace((unsigned char)*text) || *dend || errno || !isfinite(d))
            return er_fail(err, ER_CONFIG, "%s: \"%.40s\" is not a number", o->name, text);
        if (d < (double)o->min || d > (double)o->max)
            return er_fail(err, ER_CONFIG, "%s: %g is out of range %lld..%lld", o->name, d,
                           (long long)o->min, (long long)o->max);
        if ((o->flags & OF_PERCENT) && d > 1.0) d /= 100.0;
        memcpy(field_of(c, o), &d, sizeof d);
        return ER_OK;
    }
    case OT_ENUM: {
        int i = choice_index(o->choices, text);
        if (i < 0)
            return er_fail(err, ER_CONFIG, "%s: \"%.40s\" is not one of %s", o->name, text,
                           o->choices);
        store_int(c, o, o->base + i);
        return ER_OK;
    }
    case OT_TOKENS:
    case OT_SOURCES: {
        const char *jend = NULL;
        cJSON *j = cJSON_ParseWithOpts(text, &jend, true);
        if (!j) return er_fail(err, ER_CONFIG, "%s: not valid JSON", o->name);
        er_rc rc = set_array(ld, o, j, err);
        cJSON_Delete(j);
        return rc;
    }
    case OT_IGNORED:
        ld->ignored_set[o - opts] = true;
        return ER_OK;
    }
    return er_fail(err, ER_INTERNAL, "%s: bad table row", o->name);
}

/* A JSON value from the file: strings, numbers and booleans become text for set_text. */
static er_rc set_json(loader *ld, const opt *o, const cJSON *v, er_err *err)
{
    char num[64];
    if (cJSON_IsNull(v)) return set_text(ld, o, NONE_TEXT, err);
    if (cJSON_IsString(v)) return set_text(ld, o, v->valuestring, err);
    if (cJSON_IsBool(v)) return set_text(ld, o, cJSON_IsTrue(v) ? "true" : "false", err);
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        /* integral values print as integers so "5" and 5 parse alike */
        if (d == floor(d) && fabs(d) < 9.0e18)
            snprintf(num, sizeof num, "%lld", (long long)d);
        else
            snprintf(num, sizeof num, "%.17g", d);
        return set_text(ld, o, num, err);
    }
    if (o->type == OT_IGNORED) return set_text(ld, o, "", err);
    if (cJSON_IsArray(v) && (o->type == OT_TOKENS || o->type == OT_SOURCES))
        return set_array(ld, o, v, err);
    return er_fail(err, ER_CONFIG, "%s: expected a %s", o->name,
                   o->type == OT_TOKENS || o->type == OT_SOURCES ? "JSON array"
                                                                 : "string or number");
}

/* ---- sources of values --------------------------------------------------------------------- */

static er_rc apply_defaults(loader *ld, er_err *err)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        er_rc rc = set_default(ld, &opts[i], err);
        if (rc) return rc;
    }
    return ER_OK;
}

/* Applies a JSON object text (not necessarily NUL-terminated); origin names it in errors. */
static er_rc apply_json_text(loader *ld, const char *json, size_t len, const char *origin,
                             er_err *err)
{
    char *buf = NULL;
    cJSON *root = NULL;
    bool seen[N_OPTS] = {false};
    er_rc rc = ER_OK;
    if (len > CONFIG_FILE_MAX) {
        rc = er_fail(err, ER_CONFIG, "configuration is larger than 1 MiB");
        goto fail;
    }
    if (!(buf = malloc(len + 1))) {
        rc = er_fail(err, ER_NOMEM, "configuration: out of memory");
        goto fail;
    }
    memcpy(buf, json, len);
    buf[len] = '\0';
    /* the length includes the NUL so cJSON can check nothing follows the value; an embedded NUL
     * would end parsing early, hence the check that the parse ended at len */
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(buf, len + 1, &end, true);
    if (!root || end != buf + len) {
        const char *at = root ? end : cJSON_GetErrorPtr();
        size_t off = at && at >= buf && at <= buf + len ? (size_t)(at - buf) : len;
        rc = er_fail(err, ER_CONFIG, "configuration is not valid JSON (near byte %zu)", off);
        goto fail;
    }
    if (!cJSON_IsObject(root)) {
        rc = er_fail(err, ER_CONFIG, "configuration must be a JSON object");
        goto fail;
    }
    const cJSON *kv;
    cJSON_ArrayForEach(kv, root)
    {
        const opt *o = find_opt(kv->string);
        if (!o) {
            rc = unknown_setting(err, kv->string);
            goto fail;
        }
        if (seen[o - opts]) {
            rc = er_fail(err, ER_CONFIG, "%s: set twice", o->name);
            goto fail;
        }
        seen[o - opts] = true;
        if ((rc = set_json(ld, o, kv, err))) goto fail;
    }
    cJSON_Delete(root);
    free(buf);
    return ER_OK;
fail:
    err_origin(err, "in ", origin);
    cJSON_Delete(root);
    free(buf);
    return rc;
}

static er_rc apply_file(loader *ld, const char *path, er_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    er_rc rc = ER_OK;
    FILE *f = fopen(path, "rb");
    if (!f) {
        rc = er_fail(err, ER_CONFIG, "config file %.150s: %s", path, strerror(errno));
        goto fail;
    }
    if (!(buf = malloc(CONFIG_FILE_MAX + 1))) {
        rc = er_fail(err, ER_NOMEM, "config file: out of memory");
        goto fail;
    }
    len = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
    if (ferror(f)) {
        rc = er_fail(err, ER_CONFIG, "config file %.150s: read error", path);
        goto fail;
    }
    if (len > CONFIG_FILE_MAX) {
        rc = er_fail(err, ER_CONFIG, "config file %.150s: larger than 1 MiB", path);
        goto fail;
    }
    rc = apply_json_text(ld, buf, len, path, err);
fail:
    if (f) fclose(f);
    free(buf);
    return rc;
}

/* EI_RELAY_<UPPER_NAME>=value. Other EI_RELAY_* variables (e.g. a test harness's
 * EI_RELAY_BIN) share the prefix, so unknown ones are logged, not fatal. */
static er_rc apply_env(loader *ld, char **envp, er_err *err)
{
    static const char prefix[] = "EI_RELAY_";
    for (size_t i = 0; envp && envp[i]; i++) {
        const char *e = envp[i];
        if (strncmp(e, prefix, sizeof prefix - 1) != 0) continue;
        const char *key = e + sizeof prefix - 1, *eq = strchr(key, '=');
        if (!eq) continue;
        char name[NAME_MAX_LEN];
        size_t n = (size_t)(eq - key);
        const opt *o = NULL;
        if (n < sizeof name) {
            for (size_t k = 0; k < n; k++)
                name[k] = (char)tolower((unsigned char)key[k]);
            name[n] = '\0';
            o = find_opt(name);
        }
        if (!o) {
            log_warn("config", "ignoring unknown environment variable %.*s", (int)(eq - e), e);
            continue;
        }
        er_rc rc = set_text(ld, o, eq + 1, err);
        if (rc) {
            char var[NAME_MAX_LEN + sizeof prefix];
            snprintf(var, sizeof var, "%.*s", (int)(eq - e), e);
            err_origin(err, "from ", var);
            return rc;
        }
    }
    return ER_OK;
}

/* Walks argv. Pass 1 (apply false) fills cli and checks every flag exists; pass 2 applies
 * setting flags, after the file and the environment, so flags win. */
static er_rc parse_argv(loader *ld, int argc, char **argv, config_cli *cli, bool apply, er_err *err)
{
    bool options_done = false, have_command = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options_done || arg[0] != '-' || !arg[1]) {
            if (have_command) return er_fail(err, ER_CONFIG, "unexpected argument \"%.60s\"", arg);
            if (choice_index(COMMANDS, arg) < 0)
                return er_fail(err, ER_CONFIG, "unknown command \"%.60s\" (" COMMANDS ")", arg);
            cli->command = arg;
            have_command = true;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (strcmp(arg, "-h") == 0) {
            cli->help = true;
            continue;
        }
        if (arg[1] != '-') return er_fail(err, ER_CONFIG, "unknown flag \"%.60s\"", arg);
        /* --name, --name=value or --name value */
        const char *flag = arg + 2, *eq = strchr(flag, '='), *value = eq ? eq + 1 : NULL;
        size_t flen = eq ? (size_t)(eq - flag) : strlen(flag);
        char name[NAME_MAX_LEN];
        if (flen >= sizeof name) return er_fail(err, ER_CONFIG, "unknown flag \"--%.60s\"", flag);
        for (size_t k = 0; k < flen; k++)
            name[k] = flag[k] == '-' ? '_' : flag[k];
        name[flen] = '\0';
        const opt *o = find_opt(name);
        bool takes_value =
            strcmp(name, "config") == 0 || strcmp(name, "dir") == 0 || (o && o->type != OT_BOOL);
        bool bare = strcmp(name, "print_config") == 0 || strcmp(name, "help") == 0 ||
                    strcmp(name, "version") == 0;
        if (!o && !takes_value && !bare) {
            const opt *near = nearest_opt(name);
            char kebab[NAME_MAX_LEN];
            if (!near) return er_fail(err, ER_CONFIG, "unknown flag \"--%.*s\"", (int)flen, flag);
            kebab_name(near->name, kebab, sizeof kebab);
            return er_fail(err, ER_CONFIG, "unknown flag \"--%.*s\" (did you mean --%s?)",
                           (int)flen, flag, kebab);
        }
        if (bare && value) return er_fail(err, ER_CONFIG, "--%.*s takes no value", (int)flen, flag);
        if (takes_value && !value) {
            if (i + 1 >= argc)
                return er_fail(err, ER_CONFIG, "--%.*s needs a value", (int)flen, flag);
            value = argv[++i];
        }
        /* a bare bool flag means true; it takes the next argument only if that is a bool word */
        if (o && o->type == OT_BOOL && !value) {
            if (i + 1 < argc && choice_index(BOOL_WORDS, argv[i + 1]) >= 0)
                value = argv[++i];
            else
                value = "true";
        }
        if (strcmp(name, "config") == 0) {
            cli->config_file = value;
        } else if (strcmp(name, "dir") == 0) {
            cli->dir = value;
        } else if (strcmp(name, "print_config") == 0) {
            cli->print_config = true;
        } else if (strcmp(name, "help") == 0) {
            cli->help = true;
        } else if (strcmp(name, "version") == 0) {
            cli->version = true;
        } else if (apply) {
            er_rc rc = set_text(ld, o, value, err);
            if (rc) {
                char where[NAME_MAX_LEN + 2];
                snprintf(where, sizeof where, "--%.*s", (int)flen, flag);
                err_origin(err, "from ", where);
                return rc;
            }
        }
    }
    return ER_OK;
}

/* Cross-setting checks and the list of ignored keys, once every source is applied. */
static er_rc finish(loader *ld, er_err *err)
{
    config *c = ld->c;
    if (c->http_port != 0 && c->http_port == c->ws_port)
        return er_fail(err, ER_CONFIG, "ws_port: %d is the same as http_port", c->ws_port);
    if (c->reconnect_min_ms > c->reconnect_max_ms)
        return er_fail(err, ER_CONFIG, "reconnect_max_ms: %lld is below reconnect_min_ms (%lld)",
                       (long long)c->reconnect_max_ms, (long long)c->reconnect_min_ms);
    size_t len = 0;
    for (size_t i = 0; i < N_OPTS; i++)
        if (ld->ignored_set[i]) len += strlen(opts[i].name) + 1;
    free(c->ignored_keys);
    c->ignored_keys = NULL;
    if (len == 0) return ER_OK;
    if (!(c->ignored_keys = malloc(len)))
        return er_fail(err, ER_NOMEM, "configuration: out of memory");
    char *p = c->ignored_keys;
    for (size_t i = 0; i < N_OPTS; i++) {
        if (!ld->ignored_set[i]) continue;
        if (p != c->ignored_keys) *p++ = ',';
        size_t n = strlen(opts[i].name);
        memcpy(p, opts[i].name, n);
        p += n;
    }
    *p = '\0';
    return ER_OK;
}

/* ---- public API ---------------------------------------------------------------------------- */

er_rc config_load_json(config *c, const char *json, size_t len, er_err *err)
{
    loader ld = {.c = c};
    er_rc rc;
    memset(c, 0, sizeof *c);
    if ((rc = apply_defaults(&ld, err))) goto fail;
    if ((rc = apply_json_text(&ld, json, len, NULL, err))) goto fail;
    if ((rc = finish(&ld, err))) goto fail;
    return ER_OK;
fail:
    config_free(c);
    return rc;
}

er_rc config_load(config *c, int argc, char **argv, char **envp, config_cli *cli, er_err *err)
{
    loader ld = {.c = c};
    config_cli local;
    er_rc rc;
    if (!cli) cli = &local;
    memset(cli, 0, sizeof *cli);
    cli->command = "run";
    memset(c, 0, sizeof *c);
    if ((rc = parse_argv(&ld, argc, argv, cli, false, err))) goto fail;
    if ((rc = apply_defaults(&ld, err))) goto fail;
    /* --help and --version need no configuration, so a broken file does not hide them */
    if (!cli->help && !cli->version) {
        if (cli->config_file && (rc = apply_file(&ld, cli->config_file, err))) goto fail;
        if ((rc = apply_env(&ld, envp, err))) goto fail;
        if ((rc = parse_argv(&ld, argc, argv, cli, true, err))) goto fail;
    }
    if ((rc = finish(&ld, err))) goto fail;
    return ER_OK;
fail:
    config_free(c);
    return rc;
}

void config_free(config *c)
{
    if (!c) return;
    for (size_t i = 0; i < N_OPTS; i++)
        if (opts[i].type == OT_STRING) free(*(char **)field_of(c, &opts[i]));
    free_tokens(c->tokens, c->n_tokens);
    free(c->sources_json);
    free(c->ignored_keys);
    memset(c, 0, sizeof *c);
}

/* One setting's effective value as JSON (NULL if out of memory). */
static cJSON *value_json(const config *c, const opt *o)
{
    char text[64];
    switch (o->type) {
    case OT_STRING: {
        const char *s = *(char *const *)cfield_of(c, o);
        if (!s) return cJSON_CreateNull();
        return cJSON_CreateString((o->flags & OF_SECRET) ? "***" : s);
    }
    case OT_INT:
    case OT_SIZE:
        return cJSON_CreateNumber((double)load_int(c, o));
    case OT_DURATION:
        if (o->unit_ms == 1) return cJSON_CreateNumber((double)load_int(c, o));
        /* keep the text re-loadable: a plain number would be read back in seconds */
        format_duration(load_int(c, o), text, sizeof text);
        return cJSON_CreateString(text);
    case OT_BOOL: {
        bool b;
        memcpy(&b, cfield_of(c, o), sizeof b);
        return cJSON_CreateBool(b);
    }
    case OT_DOUBLE: {
        double d;
        memcpy(&d, cfield_of(c, o), sizeof d);
        return cJSON_CreateNumber(d);
    }
    case OT_ENUM:
        choice_name(o->choices, (int)(load_int(c, o) - o->base), text, sizeof text);
        return cJSON_CreateString(text);
    case OT_TOKENS: {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; arr && i < c->n_tokens; i++) {
            cJSON *t = cJSON_CreateObject();
            choice_name(ROLE_NAMES, (int)c->tokens[i].role - CONFIG_ROLE_READ, text, sizeof text);
            if (t && !cJSON_AddItemToArray(arr, t)) {
                cJSON_Delete(t);
                t = NULL;
            }
            if (!t || !cJSON_AddStringToObject(t, "token", "***") ||
                !cJSON_AddStringToObject(t, "role", text)) {
                cJSON_Delete(arr);
                return NULL;
            }
        }
        return arr;
    }
    case OT_SOURCES:
        return cJSON_Parse(c->sources_json ? c->sources_json : "[]");
    case OT_IGNORED:
        break;
    }
    return NULL;
}

void config_print(const config *c, FILE *out)
{
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    for (size_t i = 0; root && i < N_OPTS; i++) {
        if (opts[i].type == OT_IGNORED) continue;
        cJSON *v = value_json(c, &opts[i]);
        if (!v || !cJSON_AddItemToObject(root, opts[i].name, v)) {
            cJSON_Delete(v);
            goto fail;
        }
    }
    if (!(text = cJSON_Print(root))) goto fail;
    fprintf(out, "%s\n", text);
fail:
    if (!text) fprintf(out, "{\"error\": \"out of memory\"}\n");
    free(text);
    cJSON_Delete(root);
}

static const char *metavar(const opt *o)
{
    switch (o->type) {
    case OT_STRING:
        return "TEXT";
    case OT_INT:
        return "N";
    case OT_BOOL:
        return "[BOOL]";
    case OT_DOUBLE:
        return "NUM";
    case OT_ENUM:
        return o->choices;
    case OT_SIZE:
        return "BYTES";
    case OT_DURATION:
        return o->unit_ms == 1 ? "MS" : "DURATION";
    case OT_TOKENS:
    case OT_SOURCES:
        return "JSON";
    case OT_IGNORED:
        break;
    }
    return "";
}

void config_usage(FILE *out)
{
    fprintf(out,
            "usage: ei-relay [run|export|import] [--config FILE] [--dir DIR] [--print-config]\n"
            "                [--help] [--version] [--SETTING VALUE]...\n"
            "\n"
            "Settings come from defaults < the JSON file of --config < environment EI_RELAY_* <\n"
            "flags (--name VALUE or --name=VALUE). Booleans: true|false, yes|no, on|off, 1|0.\n"
            "Sizes: bytes, or a number with K, M, G, T (K = KB = KiB = 1024). Durations: a\n"
            "number with ms, s, m, h or d; a plain number is milliseconds for *_ms settings.\n"
            "\"__none__\" resets a setting to its default (unset).\n\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        const opt *o = &opts[i];
        if (o->type == OT_IGNORED) continue;
        char kebab[NAME_MAX_LEN], upper[NAME_MAX_LEN], flag[2 * NAME_MAX_LEN],
            env[NAME_MAX_LEN + 16];
        char range[96] = "";
        kebab_name(o->name, kebab, sizeof kebab);
        upper_name(o->name, upper, sizeof upper);
        snprintf(flag, sizeof flag, "--%s %s", kebab, metavar(o));
        snprintf(env, sizeof env, "EI_RELAY_%s", upper);
        const char *unit = o->type == OT_SIZE ? " bytes" : o->type == OT_DURATION ? " ms" : "";
        bool ranged = o->type == OT_INT || o->type == OT_SIZE || o->type == OT_DURATION ||
                      o->type == OT_DOUBLE;
        if (ranged && o->max == INT64_MAX)
            snprintf(range, sizeof range, " [>= %lld%s]", (long long)o->min, unit);
        else if (ranged)
            snprintf(range, sizeof range, " [%lld..%lld%s]", (long long)o->min, (long long)o->max,
                     unit);
        fprintf(out, "  %-38s %-40s (default %s)  %s%s\n", flag, env, o->def ? o->def : "unset",
                o->help, range);
    }
    fprintf(out, "\nAccepted for compatibility with the Edge Impulse recipes and ignored:\n ");
    for (size_t i = 0; i < N_OPTS; i++)
        if (opts[i].type == OT_IGNORED) fprintf(out, " %s", opts[i].name);
    fprintf(out, "\n");
}

void config_report_ignored(const config *c)
{
    if (c && c->ignored_keys)
        log_warn("config", "ignoring settings ei-relay does not act on: %s", c->ignored_keys);
}
