/* config.h - every setting of ei-relay, defined once in a table (config_table.c) that serves the
 * JSON file, the EI_RELAY_* environment, the command-line flags, --print-config and --help alike.
 *
 * Precedence: defaults < file (--config) < EI_RELAY_PARAMETERS < the other EI_RELAY_* variables
 * < flags; then greengrass_file fills the MQTT settings none of those gave. The file (and
 * EI_RELAY_PARAMETERS, a JSON object text) may hold the settings under a "Parameters" object,
 * the Edge Impulse Greengrass recipes' shape; its own top-level keys win over Parameters. Seed
 * keys of those recipes are accepted verbatim, as strings or numbers; "__none__" means unset;
 * keys ei-relay does not act on are accepted and reported once as ignored; an unknown key or a
 * bad value fails with a message naming the key and what it accepts. */
#ifndef EI_CONFIG_CONFIG_H
#define EI_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/rc.h"

typedef enum config_role {
    CONFIG_ROLE_READ = 1,
    CONFIG_ROLE_INGEST,
    CONFIG_ROLE_ADMIN
} config_role;

/* A token's length bounds, wherever it comes from (tokens, token_file): 16 characters is the
 * least that cannot be guessed over the LAN (the generated token has 64). */
#define CONFIG_TOKEN_MIN 16
#define CONFIG_TOKEN_MAX 256

/* The defaults of the inference document limits, shared with ingest/normalize (which applies
 * them when a caller passes 0). */
#define CONFIG_DEF_JSON_DEPTH 32
#define CONFIG_DEF_JSON_NODES 200000
#define CONFIG_DEF_RESULT_BYTES 1048576
#define CONFIG_DEF_INFO_BYTES 65536
#define CONFIG_STR_(x) #x
#define CONFIG_STR(x) CONFIG_STR_(x)

typedef struct config_token {
    char *token; /* owned */
    config_role role;
} config_token;

typedef enum config_sync { CONFIG_SYNC_FULL = 0, CONFIG_SYNC_NORMAL } config_sync;
typedef enum config_criteria {
    CONFIG_CRIT_GT = 0,
    CONFIG_CRIT_GE,
    CONFIG_CRIT_EQ,
    CONFIG_CRIT_LE,
    CONFIG_CRIT_LT
} config_criteria;
/* serial_impulse, in the order of its choices (sources_effective names them). */
typedef enum config_impulse {
    CONFIG_IMPULSE_NORMAL = 0,
    CONFIG_IMPULSE_CONTINUOUS,
    CONFIG_IMPULSE_DEBUG,
    CONFIG_IMPULSE_OFF
} config_impulse;
typedef enum config_outbox_full {
    CONFIG_OUTBOX_DROP_OLDEST = 0,
    CONFIG_OUTBOX_REJECT_NEW
} config_outbox_full;

/* The effective configuration. Strings are owned (NULL = unset); sizes in bytes, durations in
 * milliseconds. Read-only after config_load: threads share it without locks. */
typedef struct config {
    /* service */
    int http_port;
    int ws_port;
    char *bind;
    /* HTTPS and WSS on both ports with this certificate and key (PEM files): both or neither */
    char *tls_cert_file;
    char *tls_key_file;
    char *db_path;
    config_sync db_synchronous;
    int db_busy_timeout_ms; /* SQLite's busy timeout on every connection */
    char *web_root;         /* directory of the dashboard's static files */
    int log_level;          /* log_level from core/log.h */
    int http_threads;
    int64_t max_body_bytes;
    int64_t max_bodies_bytes; /* request bodies held at once, all connections together */
    int max_json_depth;       /* inference documents: nesting, values, stored sizes */
    int max_json_nodes;
    int64_t max_result_bytes;
    int64_t max_info_bytes;
    int64_t live_ring_bytes;        /* the live stream's ring of rendered inferences */
    int64_t page_max_bytes;         /* row bytes in one read page of the cache */
    bool allow_root;                /* the service refuses to run as root unless this is set */
    int64_t http_header_timeout_ms; /* absolute deadlines, not idle timers */
    int64_t http_body_timeout_ms;
    int http_max_connections; /* as configured; the relay may lower them (descriptor limit) */
    int http_max_connections_per_ip;
    int ws_max_connections; /* the live stream's port; as configured, like http_max_connections */
    int ws_max_connections_per_ip;
    int64_t ws_handshake_timeout_ms; /* a deadline for the WebSocket upgrade */
    /* rate limits (core/ratelimit.h): per token or address, per address on the ws port */
    int rate_limit_per_s; /* 0 = none */
    int rate_limit_burst;
    int ws_connect_per_s; /* 0 = none */
    int ws_connect_burst;
    int auth_fail_free; /* failed authentications from one address before it is slowed */
    int64_t auth_fail_max_delay_ms;
    int64_t auth_fail_forget_ms;
    bool rate_limit_loopback; /* false: loopback clients are exempt */
    bool demo;
    int64_t demo_interval_ms;
    /* access */
    config_token *tokens; /* owned array */
    size_t n_tokens;
    char *token_file;
    /* cache */
    int64_t cache_max_rows;
    int64_t cache_max_bytes;
    /* cache_max_bytes is its default (no file, variable or flag gave it): the store may lower
     * it to half of what the database's file system can hold */
    bool cache_max_bytes_default;
    int64_t cache_max_age_ms;
    int commit_batch_max;
    int thumbnail_px;
    /* forwarder (MQTT) */
    char *mqtt_endpoint;
    int mqtt_port;
    char *mqtt_ca;
    char *mqtt_cert;
    char *mqtt_key;
    char *mqtt_client_id;
    int mqtt_keepalive_s;      /* IoT Core accepts 30..1200 */
    int mqtt_inflight;         /* unacknowledged QoS 1 publishes at once (IoT Core: <= 100) */
    int publish_rate_max;      /* publishes per second; 0 = unpaced */
    int64_t publish_bytes_max; /* payload bytes per second; 0 = unpaced */
    int64_t reconnect_min_ms;  /* reconnect backoff bounds (exponential, full jitter) */
    int64_t reconnect_max_ms;
    int max_attempts;         /* publish attempts before a row is dead-lettered */
    int64_t outbox_max_rows;  /* 0 = no limit */
    int64_t outbox_max_bytes; /* 0 = no limit */
    config_outbox_full outbox_on_full;
    int64_t batch_on_backlog; /* > 0: with more rows waiting, pack them into batch messages */
    /* what `ei-relay greengrass-setup` found (the file it wrote): fills the mqtt_* settings
     * that no file, variable or flag set */
    char *greengrass_file;
    /* sources: JSON text of the "sources" array (owned), "[]" when none; its entries are the
     * sources module's to check (config_load's check_sources) */
    char *sources_json;
    /* Edge Impulse seed keys that ei-relay acts on */
    char *device_name;
    bool device_mac_suffix;
    int iotcore_backoff;
    int iotcore_qos;
    bool publish_inference_base64_image;
    bool enable_threshold_limit;
    double default_threshold; /* normalized to 0..1 (50.0 means 0.50) */
    config_criteria threshold_criteria;
    int64_t metrics_sleeptime_ms;
    char *s3_bucket;
    /* the runner component's model and camera: an eim source "runner" (sources_effective) */
    char *ei_local_model_file;
    char *gst_args; /* ':' stands for a space, as the recipes write it */
    /* the serial component's tty: a serial source "serial" (sources_effective) */
    char *serial_device;
    int serial_baud;
    config_impulse serial_impulse;
    /* Seed keys accepted for compatibility but not acted on; names of those that were set,
     * comma-separated, for the one-time report (owned, NULL if none). */
    char *ignored_keys;
    /* What config_report logs once about greengrass_file: one line per value (where it came
     * from, or that an explicit setting won), '\n'-separated (owned, NULL if none); and a
     * warning when the file is missing (owned, NULL if none). */
    char *greengrass_notes;
    char *greengrass_warning;
} config;

/* What the command line asked for besides settings. Pointers borrow argv. */
typedef struct config_cli {
    const char *command;     /* "run" (default), "token", "export", "import" */
    const char *config_file; /* --config FILE or NULL */
    const char *dir;         /* --dir DIR for export/import */
    bool print_config;
    bool help;
    bool version;
} config_cli;

/* The check of a `sources` value (JSON array text) that config cannot make itself, the sources
 * module being above it: main hands in sources_check_entries. It runs on every value set, so an
 * error names where the value came from. */
typedef er_rc (*config_sources_check)(const char *json, er_err *err);

/* Fills c from defaults, the file named by --config, envp (NULL-terminated "K=V" list) and
 * argv. check_sources (NULL: none) checks each `sources` value beyond being a JSON array. On
 * failure err names the key and the accepted values; c is left freed. */
er_rc config_load(config *c, int argc, char **argv, char **envp, config_sources_check check_sources,
                  config_cli *cli, er_err *err);

/* Same pipeline from a JSON text only (tests, fuzzing): defaults < json; `sources` is only
 * checked to be a JSON array. */
er_rc config_load_json(config *c, const char *json, size_t len, er_err *err);

void config_free(config *c);

/* Writes the effective configuration as a JSON object, secrets masked ("***"). */
void config_print(const config *c, FILE *out);

/* Writes usage and one line per setting (flag, environment name, default, help). */
void config_usage(FILE *out);

/* Logs, once, what a person should know about where the settings came from: the seed keys that
 * were set but that ei-relay does not act on, and what greengrass_file gave. */
void config_report(const config *c);

#endif
