/* test_config.c - unit tests of the settings table (server/config): defaults, value syntax of
 * every type, error messages, precedence file < environment < flags, the recipes' "Parameters"
 * object (in the file and EI_RELAY_PARAMETERS), greengrass_file, --print-config masking, ignored
 * seed keys, token validation, the shape of the sources value (its entries:
 * test_sources_check.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "config/config.h"
#include "core/log.h"

/* Loads a JSON text; returns the rc and leaves the message in err. */
static er_rc load(config *c, const char *json, er_err *err)
{
    memset(err, 0, sizeof *err);
    return config_load_json(c, json, strlen(json), err);
}

/* Loads json expecting failure; true if the error message equals want exactly. */
static bool fails_with(const char *json, const char *want)
{
    config c;
    er_err err;
    er_rc rc = load(&c, json, &err);
    bool ok = rc == ER_CONFIG && strcmp(err.msg, want) == 0;
    if (!ok) fprintf(stderr, "  %s -> rc %d \"%s\", wanted \"%s\"\n", json, rc, err.msg, want);
    config_free(&c);
    return ok;
}

/* Loads json expecting failure; true if the message contains want. */
static bool fails_mentioning(const char *json, const char *want)
{
    config c;
    er_err err;
    er_rc rc = load(&c, json, &err);
    bool ok = rc == ER_CONFIG && strstr(err.msg, want) != NULL;
    if (!ok) fprintf(stderr, "  %s -> rc %d \"%s\", wanted \"%s\"\n", json, rc, err.msg, want);
    config_free(&c);
    return ok;
}

static void test_defaults(void)
{
    config c;
    er_err err;
    CHECK_EQ_INT(load(&c, "{}", &err), ER_OK);
    CHECK_EQ_INT(c.http_port, 4920);
    CHECK_EQ_INT(c.ws_port, 4921);
    CHECK_EQ_STR(c.bind, "0.0.0.0");
    CHECK_EQ_STR(c.db_path, "./var/ei-relay.db");
    CHECK_EQ_INT(c.db_synchronous, CONFIG_SYNC_FULL);
    CHECK_EQ_INT(c.db_busy_timeout_ms, 5000);
    CHECK_EQ_STR(c.web_root, "./web");
    CHECK_EQ_INT(c.log_level, LOG_INFO);
    CHECK_EQ_INT(c.http_threads, 2);
    CHECK_EQ_INT(c.max_body_bytes, 16 * 1024 * 1024);
    CHECK_EQ_INT(c.max_bodies_bytes, 64 * 1024 * 1024);
    CHECK_EQ_INT(c.max_json_depth, 32);
    CHECK_EQ_INT(c.max_json_nodes, 200000);
    CHECK_EQ_INT(c.max_result_bytes, 1024 * 1024);
    CHECK_EQ_INT(c.max_info_bytes, 64 * 1024);
    CHECK_EQ_INT(c.live_ring_bytes, 8 * 1024 * 1024);
    CHECK_EQ_INT(c.page_max_bytes, 4 * 1024 * 1024);
    CHECK(!c.demo);
    CHECK_EQ_INT(c.demo_interval_ms, 1000);
    CHECK(c.tokens == NULL);
    CHECK_EQ_INT(c.n_tokens, 0);
    CHECK(c.token_file == NULL);
    CHECK_EQ_INT(c.cache_max_rows, 1000000);
    CHECK_EQ_INT(c.cache_max_bytes, 1024LL * 1024 * 1024);
    CHECK_EQ_INT(c.cache_max_age_ms, 30LL * 24 * 3600 * 1000);
    CHECK_EQ_INT(c.commit_batch_max, 256);
    CHECK_EQ_INT(c.thumbnail_px, 160);
    CHECK(c.mqtt_endpoint == NULL);
    CHECK_EQ_INT(c.mqtt_port, 8883);
    CHECK(c.mqtt_ca == NULL && c.mqtt_cert == NULL && c.mqtt_key == NULL);
    CHECK(c.mqtt_client_id == NULL);
    CHECK_EQ_STR(c.sources_json, "[]");
    CHECK_EQ_STR(c.device_name, "MyEdgeImpulseDevice");
    CHECK(c.device_mac_suffix);
    CHECK_EQ_INT(c.iotcore_backoff, -1);
    CHECK_EQ_INT(c.iotcore_qos, 1);
    CHECK(!c.publish_inference_base64_image);
    CHECK(!c.enable_threshold_limit);
    CHECK(fabs(c.default_threshold - 0.5) < 1e-12);
    CHECK_EQ_INT(c.threshold_criteria, CONFIG_CRIT_GE);
    CHECK_EQ_INT(c.metrics_sleeptime_ms, 30000);
    CHECK(c.s3_bucket == NULL);
    CHECK(c.ignored_keys == NULL);
    config_free(&c);
    CHECK(c.bind == NULL && c.sources_json == NULL && c.http_port == 0);
}

static void test_strings_and_numbers_alike(void)
{
    config a, b;
    er_err err;
    CHECK_EQ_INT(load(&a,
                      "{\"http_port\": \"5\", \"iotcore_backoff\": \"3\", \"mqtt_port\": "
                      "\"1883\", \"default_threshold\": \"0.25\", \"device_name\": 42}",
                      &err),
                 ER_OK);
    CHECK_EQ_INT(load(&b,
                      "{\"http_port\": 5, \"iotcore_backoff\": 3, \"mqtt_port\": 1883, "
                      "\"default_threshold\": 0.25, \"device_name\": \"42\"}",
                      &err),
                 ER_OK);
    CHECK_EQ_INT(a.http_port, 5);
    CHECK_EQ_INT(b.http_port, 5);
    CHECK_EQ_INT(a.iotcore_backoff, 3);
    CHECK_EQ_INT(b.iotcore_backoff, 3);
    CHECK_EQ_INT(a.mqtt_port, b.mqtt_port);
    CHECK(a.default_threshold == b.default_threshold && fabs(a.default_threshold - 0.25) < 1e-12);
    CHECK_EQ_STR(a.device_name, "42");
    CHECK_EQ_STR(b.device_name, "42");
    config_free(&a);
    config_free(&b);
    /* 5.0 is an integer, 5.5 is not */
    CHECK_EQ_INT(load(&a, "{\"http_threads\": 5.0}", &err), ER_OK);
    CHECK_EQ_INT(a.http_threads, 5);
    config_free(&a);
    CHECK(fails_mentioning("{\"http_threads\": 5.5}", "http_threads: \"5.5\" is not an integer"));
    CHECK(fails_mentioning("{\"http_port\": \"abc\"}", "http_port: \"abc\" is not an integer"));
    CHECK(fails_mentioning("{\"http_port\": \" 5\"}", "http_port:"));
}

static void test_bools(void)
{
    static const struct {
        const char *text;
        bool want;
    } cases[] = {{"\"yes\"", true},  {"\"no\"", false},    {"true", true},    {"false", false},
                 {"\"true\"", true}, {"\"false\"", false}, {"\"on\"", true},  {"\"off\"", false},
                 {"1", true},        {"0", false},         {"\"YES\"", true}, {"\"1\"", true}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[128];
        config c;
        er_err err;
        snprintf(json, sizeof json, "{\"publish_inference_base64_image\": %s, \"demo\": %s}",
                 cases[i].text, cases[i].text);
        CHECK_EQ_INT(load(&c, json, &err), ER_OK);
        CHECK(c.publish_inference_base64_image == cases[i].want);
        CHECK(c.demo == cases[i].want);
        config_free(&c);
    }
    CHECK(fails_with("{\"demo\": \"maybe\"}",
                     "demo: \"maybe\" is not one of false|true|no|yes|off|on|0|1"));
    CHECK(fails_mentioning("{\"demo\": 2}", "demo: \"2\" is not one of"));
}

static void test_none(void)
{
    config c;
    er_err err;
    CHECK_EQ_INT(load(&c,
                      "{\"s3_bucket\": \"__none__\", \"http_port\": \"__none__\", "
                      "\"device_name\": \"__none__\", \"mqtt_endpoint\": null, "
                      "\"cache_max_age\": \"__none__\", \"tokens\": \"__none__\", "
                      "\"sources\": \"__none__\", \"threshold_criteria\": \"__none__\"}",
                      &err),
                 ER_OK);
    CHECK(c.s3_bucket == NULL);
    CHECK(c.mqtt_endpoint == NULL);
    CHECK_EQ_INT(c.http_port, 4920);
    CHECK_EQ_STR(c.device_name, "MyEdgeImpulseDevice");
    CHECK_EQ_INT(c.cache_max_age_ms, 30LL * 86400000);
    CHECK_EQ_INT(c.n_tokens, 0);
    CHECK_EQ_STR(c.sources_json, "[]");
    CHECK_EQ_INT(c.threshold_criteria, CONFIG_CRIT_GE);
    config_free(&c);
    CHECK_EQ_INT(load(&c, "{\"s3_bucket\": \"my-bucket\"}", &err), ER_OK);
    CHECK_EQ_STR(c.s3_bucket, "my-bucket");
    config_free(&c);
}

static void test_threshold(void)
{
    static const struct {
        const char *text;
        double want;
    } cases[] = {{"50.0", 0.50},   {"\"75\"", 0.75}, {"0.3", 0.3},    {"1", 1.0},
                 {"\"100\"", 1.0}, {"0", 0.0},       {"\"0.8\"", 0.8}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[96];
        config c;
        er_err err;
        snprintf(json, sizeof json, "{\"default_threshold\": %s}", cases[i].text);
        CHECK_EQ_INT(load(&c, json, &err), ER_OK);
        CHECK(fabs(c.default_threshold - cases[i].want) < 1e-12);
        config_free(&c);
    }
    CHECK(fails_with("{\"default_threshold\": 150}",
                     "default_threshold: 150 is out of range 0..100"));
    CHECK(fails_with("{\"default_threshold\": -0.5}",
                     "default_threshold: -0.5 is out of range 0..100"));
    CHECK(fails_with("{\"default_threshold\": \"half\"}",
                     "default_threshold: \"half\" is not a number"));
    CHECK(fails_mentioning("{\"default_threshold\": \"nan\"}", "default_threshold:"));
}

static void test_errors_name_the_key(void)
{
    CHECK(fails_with("{\"http_port\": 70000}", "http_port: 70000 is out of range 0..65535"));
    CHECK(fails_with("{\"ws_port\": -1}", "ws_port: -1 is out of range 0..65535"));
    CHECK(fails_with("{\"threshold_criteria\": \"foo\"}",
                     "threshold_criteria: \"foo\" is not one of gt|ge|eq|le|lt"));
    CHECK(fails_with("{\"log_level\": \"trace\"}",
                     "log_level: \"trace\" is not one of debug|info|warn|error"));
    CHECK(fails_with("{\"db_synchronous\": \"off\"}",
                     "db_synchronous: \"off\" is not one of full|normal"));
    CHECK(fails_with("{\"http_threads\": 0}", "http_threads: 0 is out of range 1..64"));
    CHECK(fails_with("{\"iotcore_qos\": 2}", "iotcore_qos: 2 is out of range 0..1"));
    CHECK(fails_with("{\"db_busy_timeout_ms\": 0}",
                     "db_busy_timeout_ms: 0 is out of range 1..600000"));
    CHECK(fails_with("{\"commit_batch_max\": 10001}",
                     "commit_batch_max: 10001 is out of range 1..10000"));
    CHECK(fails_with("{\"thumbnail_px\": 8}", "thumbnail_px: 8 is out of range 16..1024"));
    CHECK(fails_with("{\"metrics_sleeptime_ms\": 999}",
                     "metrics_sleeptime_ms: 999 ms is out of range 1000..86400000 ms"));
    CHECK(fails_with("{\"bind\": \"\"}", "bind: must not be empty"));
    CHECK(
        fails_with("{\"cache_max_rows\": -1}", "cache_max_rows: -1 is out of range, must be >= 0"));
    CHECK(fails_with("{\"http_port\": [1]}", "http_port: expected a string or number"));
    CHECK(fails_mentioning("{\"http_port\": 99999999999999999999999}",
                           "\" is not an integer (0..65535)"));
    CHECK(fails_mentioning("{\"http_port\": 4921}", "ws_port: 4921 is the same as http_port"));
    /* TLS needs both files; the error names the one missing */
    CHECK(fails_with("{\"tls_cert_file\": \"c.pem\"}",
                     "tls_cert_file is set but tls_key_file is not: TLS needs both"));
    CHECK(fails_with("{\"tls_key_file\": \"k.pem\"}",
                     "tls_key_file is set but tls_cert_file is not: TLS needs both"));
    CHECK(fails_with("{\"tls_cert_file\": \"\"}", "tls_cert_file: must not be empty"));
    /* the enum word is case-insensitive; stored as the log_level of core/log.h */
    config c;
    er_err err;
    CHECK_EQ_INT(load(&c,
                      "{\"log_level\": \"DEBUG\", \"threshold_criteria\": \"lt\", "
                      "\"db_synchronous\": \"normal\"}",
                      &err),
                 ER_OK);
    CHECK_EQ_INT(c.log_level, LOG_DEBUG);
    CHECK_EQ_INT(c.threshold_criteria, CONFIG_CRIT_LT);
    CHECK_EQ_INT(c.db_synchronous, CONFIG_SYNC_NORMAL);
    config_free(&c);
}

static void test_unknown_and_malformed(void)
{
    CHECK(fails_with("{\"htp_port\": 1}",
                     "unknown setting \"htp_port\" (did you mean \"http_port\"?)"));
    CHECK(fails_with("{\"zzzzzzzzzzzz\": 1}", "unknown setting \"zzzzzzzzzzzz\""));
    CHECK(fails_with("{\"http_port\": 1, \"http_port\": 2}", "http_port: set twice"));
    CHECK(fails_with("[]", "configuration must be a JSON object"));
    CHECK(fails_mentioning("{\"http_port\": 1", "not valid JSON"));
    CHECK(fails_mentioning("{} x", "not valid JSON"));
    CHECK(fails_mentioning("", "not valid JSON"));
    /* an embedded NUL must not hide what follows it */
    config c;
    er_err err;
    const char nul[] = "{}\0{\"htp\": 1}";
    CHECK_EQ_INT(config_load_json(&c, nul, sizeof nul - 1, &err), ER_CONFIG);
    CHECK(strstr(err.msg, "not valid JSON") != NULL);
    CHECK(c.bind == NULL && c.sources_json == NULL); /* failure leaves c freed */
    /* not NUL-terminated input is read only up to len */
    const char cut[] = "{\"http_port\": 77}garbage";
    CHECK_EQ_INT(config_load_json(&c, cut, strlen("{\"http_port\": 77}"), &err), ER_OK);
    CHECK_EQ_INT(c.http_port, 77);
    config_free(&c);
}

static void test_sizes_and_durations(void)
{
    static const struct {
        const char *json;
        long long bytes, age_ms;
    } cases[] = {
        {"{\"max_body_bytes\": 1048576, \"cache_max_age\": 3600}", 1048576, 3600000},
        {"{\"max_body_bytes\": \"512KB\", \"cache_max_age\": \"12h\"}", 512 * 1024, 12 * 3600000LL},
        {"{\"max_body_bytes\": \"64MiB\", \"cache_max_age\": \"15m\"}", 64LL << 20, 15 * 60000},
        {"{\"max_body_bytes\": \"1G\", \"cache_max_age\": \"90s\"}", 1LL << 30, 90000},
        {"{\"max_body_bytes\": \"2k\", \"cache_max_age\": \"500ms\"}", 2048, 500},
        {"{\"max_body_bytes\": \"4096b\", \"cache_max_age\": \"30d\"}", 4096, 30LL * 86400000},
        {"{\"max_body_bytes\": \"1kib\", \"cache_max_age\": 0}", 1024, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config c;
        er_err err;
        CHECK_EQ_INT(load(&c, cases[i].json, &err), ER_OK);
        CHECK_EQ_INT(c.max_body_bytes, cases[i].bytes);
        CHECK_EQ_INT(c.cache_max_age_ms, cases[i].age_ms);
        config_free(&c);
    }
    config c;
    er_err err;
    CHECK_EQ_INT(load(&c,
                      "{\"cache_max_bytes\": \"2T\", \"demo_interval_ms\": \"2s\", "
                      "\"metrics_sleeptime_ms\": 60000, \"cache_max_bytes\": 0}",
                      &err),
                 ER_CONFIG); /* set twice */
    CHECK_EQ_INT(load(&c,
                      "{\"cache_max_bytes\": \"2T\", \"demo_interval_ms\": \"2s\", "
                      "\"metrics_sleeptime_ms\": 60000}",
                      &err),
                 ER_OK);
    CHECK_EQ_INT(c.cache_max_bytes, 2LL << 40);
    CHECK_EQ_INT(c.demo_interval_ms, 2000);
    CHECK_EQ_INT(c.metrics_sleeptime_ms, 60000);
    config_free(&c);
    CHECK(fails_with("{\"max_body_bytes\": \"2GiB\"}",
                     "max_body_bytes: 2147483648 bytes is out of range 1024..1073741824 bytes"));
    CHECK(fails_with("{\"max_body_bytes\": 512}",
                     "max_body_bytes: 512 bytes is out of range 1024..1073741824 bytes"));
    CHECK(fails_mentioning("{\"max_body_bytes\": \"12XB\"}",
                           "max_body_bytes: \"12XB\" is not a size"));
    CHECK(
        fails_mentioning("{\"max_body_bytes\": \"-1K\"}", "max_body_bytes: \"-1K\" is not a size"));
    CHECK(fails_mentioning("{\"cache_max_bytes\": \"99999999999T\"}", "cache_max_bytes:"));
    CHECK(
        fails_mentioning("{\"cache_max_age\": \"5x\"}", "cache_max_age: \"5x\" is not a duration"));
    CHECK(fails_mentioning("{\"cache_max_age\": \"1.5h\"}", "cache_max_age:"));
    CHECK(fails_mentioning("{\"cache_max_age\": \"99999999999999999d\"}", "cache_max_age:"));
}

static void test_ignored_keys(void)
{
    config c;
    er_err err;
    CHECK_EQ_INT(load(&c,
                      "{\"launch\": \"__none__\", \"node_version\": 18, \"lock_filename\": \"\", "
                      "\"enable_cache_to_file\": \"yes\", \"eiparams\": [\"--x\"], "
                      "\"sleep_time_sec\": true, \"ei_bindir\": null}",
                      &err),
                 ER_OK);
    /* table order, only those set to something other than __none__/null */
    CHECK_EQ_STR(c.ignored_keys, "enable_cache_to_file,sleep_time_sec,lock_filename,eiparams,"
                                 "node_version");
    config_report(&c);
    config_free(&c);
    CHECK(c.ignored_keys == NULL);
}

static void test_tokens(void)
{
    config c;
    er_err err;
    CHECK_EQ_INT(load(&c,
                      "{\"tokens\": [{\"token\": \"abcdefgh12345671\", \"role\": \"read\"}, "
                      "{\"token\": \"ingest-token-xyz\", \"role\": \"ingest\"}, "
                      "{\"role\": \"admin\", \"token\": \"Admin!Token#42-xyz\"}]}",
                      &err),
                 ER_OK);
    CHECK_EQ_INT(c.n_tokens, 3);
    if (c.n_tokens == 3) {
        CHECK_EQ_STR(c.tokens[0].token, "abcdefgh12345671");
        CHECK_EQ_INT(c.tokens[0].role, CONFIG_ROLE_READ);
        CHECK_EQ_INT(c.tokens[1].role, CONFIG_ROLE_INGEST);
        CHECK_EQ_STR(c.tokens[2].token, "Admin!Token#42-xyz");
        CHECK_EQ_INT(c.tokens[2].role, CONFIG_ROLE_ADMIN);
    }
    config_free(&c);
    /* tokens given as JSON text inside a string, as recipes pass structured values */
    CHECK_EQ_INT(load(&c,
                      "{\"tokens\": \"[{\\\"token\\\": \\\"abcdefgh12345671\\\", \\\"role\\\": "
                      "\\\"admin\\\"}]\"}",
                      &err),
                 ER_OK);
    CHECK_EQ_INT(c.n_tokens, 1);
    config_free(&c);
    CHECK(fails_with("{\"tokens\": [{\"token\": \"abcdefgh12345671\", \"role\": \"read\"}, "
                     "{\"token\": \"abcdefgh12345672\", \"role\": \"root\"}]}",
                     "tokens[1].role: \"root\" is not one of read|ingest|admin"));
    CHECK(fails_mentioning("{\"tokens\": [{\"token\": \"short\", \"role\": \"read\"}]}",
                           "tokens[0].token:"));
    /* 15 characters: one short of the minimum, named with the bounds */
    CHECK(fails_mentioning("{\"tokens\": [{\"token\": \"fifteen-chars-x\", \"role\": \"read\"}]}",
                           "tokens[0].token: expected a string of 16..256"));
    CHECK(fails_mentioning("{\"tokens\": [{\"token\": \"has space in it\", \"role\": \"read\"}]}",
                           "tokens[0].token:"));
    CHECK(fails_mentioning("{\"tokens\": [{\"role\": \"read\"}]}", "tokens[0].token:"));
    CHECK(fails_mentioning("{\"tokens\": [{\"token\": \"abcdefgh12345671\"}]}",
                           "tokens[0].role: \"(missing)\""));
    CHECK(fails_with("{\"tokens\": [{\"token\": \"abcdefgh12345671\", \"role\": \"read\"}, "
                     "{\"token\": \"abcdefgh12345671\", \"role\": \"admin\"}]}",
                     "tokens[1].token: same as tokens[0]"));
    CHECK(
        fails_mentioning("{\"tokens\": [\"abcdefgh12345671\"]}", "tokens[0]: expected an object"));
    CHECK(fails_mentioning("{\"tokens\": {}}", "tokens: expected a JSON array"));
    CHECK(fails_mentioning("{\"tokens\": \"[oops\"}", "tokens: not valid JSON"));
    CHECK(fails_mentioning("{\"tokens\": [{\"token\": \"abcdefgh12345671\", \"role\": \"read\", "
                           "\"x\": 1}]}",
                           "tokens[0]: unknown key \"x\""));
    CHECK(fails_mentioning("{\"token_file\": \"\"}", "token_file: must not be empty"));
}

static void test_sources(void)
{
    config c;
    er_err err;
    CHECK_EQ_INT(load(&c,
                      "{\"sources\": [{\"name\": \"cam\", \"kind\": \"runner-ws\", \"url\": "
                      "\"ws://127.0.0.1:4912/\"}, {\"name\": \"mcu\", \"kind\": \"serial\", "
                      "\"device\": \"/dev/ttyACM0\", \"baud\": 115200}]}",
                      &err),
                 ER_OK);
    cJSON *arr = cJSON_Parse(c.sources_json);
    CHECK(cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == 2);
    cJSON *second = cJSON_GetArrayItem(arr, 1);
    CHECK(second && cJSON_GetObjectItem(second, "baud") &&
          cJSON_GetObjectItem(second, "baud")->valuedouble == 115200);
    cJSON_Delete(arr);
    config_free(&c);
    /* config only knows the value is an array; its entries are the sources module's to check
     * (test_sources_check.c), through the check config_load is given */
    CHECK_EQ_INT(load(&c, "{\"sources\": [{\"name\": \"a\", \"kind\": \"usb\"}, 1]}", &err), ER_OK);
    config_free(&c);
    CHECK(fails_mentioning("{\"sources\": 3}", "sources: expected a JSON array"));
    CHECK(fails_mentioning("{\"sources\": {\"name\": \"a\"}}", "sources: expected a JSON array"));
}

/* Writes text to a fresh temp file; the caller unlinks path. */
static bool write_temp(char *path, const char *text, size_t len)
{
    strcpy(path, "/tmp/test_config_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return false;
    bool ok = write(fd, text, len) == (ssize_t)len;
    close(fd);
    return ok;
}

static void test_precedence(void)
{
    char path[64];
    const char *file = "{\"http_port\": 1000, \"ws_port\": 1001, \"bind\": \"10.0.0.1\", "
                       "\"device_name\": \"from-file\", \"launch\": \"x\"}";
    CHECK(write_temp(path, file, strlen(file)));
    char *envp[] = {"PATH=/bin",
                    "EI_RELAY_WS_PORT=2001",
                    "EI_RELAY_BIND=10.0.0.2",
                    "EI_RELAY_BIN=/ignored/unknown/var",
                    "EI_RELAY_DEMO=yes",
                    "EI_RELAY_TOKENS=[{\"token\":\"envtoken12345678\",\"role\":\"ingest\"}]",
                    NULL};
    char *argv[] = {
        "ei-relay",    "export", "--config", path, "--bind=10.0.0.3",     "--dir", "/tmp/out",
        "--log-level", "warn",   "--demo",   "no", "--max-body-bytes=1M", NULL};
    config c;
    config_cli cli;
    er_err err = {{0}};
    CHECK_EQ_INT(config_load(&c, 12, argv, envp, NULL, &cli, &err), ER_OK);
    CHECK_EQ_INT(c.http_port, 1000);          /* file */
    CHECK_EQ_INT(c.ws_port, 2001);            /* env over file */
    CHECK_EQ_STR(c.bind, "10.0.0.3");         /* flag over env over file */
    CHECK_EQ_STR(c.device_name, "from-file"); /* file over default */
    CHECK(!c.demo);                           /* flag "no" over env "yes" */
    CHECK_EQ_INT(c.log_level, LOG_WARN);
    CHECK_EQ_INT(c.max_body_bytes, 1 << 20);
    CHECK_EQ_INT(c.n_tokens, 1);
    CHECK_EQ_STR(c.ignored_keys, "launch");
    CHECK_EQ_STR(cli.command, "export");
    CHECK_EQ_STR(cli.config_file, path);
    CHECK_EQ_STR(cli.dir, "/tmp/out");
    CHECK(!cli.print_config && !cli.help && !cli.version);
    config_free(&c);

    /* a bare bool flag is true; the default command is run */
    char *argv2[] = {"ei-relay", "--demo", "--print-config", "--http-port", "0", NULL};
    CHECK_EQ_INT(config_load(&c, 5, argv2, NULL, NULL, &cli, &err), ER_OK);
    CHECK(c.demo);
    CHECK_EQ_INT(c.http_port, 0);
    CHECK(cli.print_config);
    CHECK_EQ_STR(cli.command, "run");
    config_free(&c);

    /* errors say where the value came from; failure leaves c freed */
    char *envp_bad[] = {"EI_RELAY_HTTP_PORT=70000", NULL};
    char *argv3[] = {"ei-relay", NULL};
    CHECK_EQ_INT(config_load(&c, 1, argv3, envp_bad, NULL, &cli, &err), ER_CONFIG);
    CHECK_EQ_STR(err.msg, "http_port: 70000 is out of range 0..65535 (from EI_RELAY_HTTP_PORT)");
    CHECK(c.bind == NULL && c.http_port == 0);
    char *argv4[] = {"ei-relay", "--htp-port", "5", NULL};
    CHECK_EQ_INT(config_load(&c, 3, argv4, NULL, NULL, &cli, &err), ER_CONFIG);
    CHECK_EQ_STR(err.msg, "unknown flag \"--htp-port\" (did you mean --http-port?)");
    char *argv5[] = {"ei-relay", "--http-port", NULL};
    CHECK_EQ_INT(config_load(&c, 2, argv5, NULL, NULL, &cli, &err), ER_CONFIG);
    CHECK_EQ_STR(err.msg, "--http-port needs a value");
    char *argv6[] = {"ei-relay", "serve", NULL};
    CHECK_EQ_INT(config_load(&c, 2, argv6, NULL, NULL, &cli, &err), ER_CONFIG);
    CHECK_EQ_STR(err.msg, "unknown command \"serve\" (run|token|export|import)");
    char *argv7[] = {"ei-relay", "--thumbnail-px=9", NULL};
    CHECK_EQ_INT(config_load(&c, 2, argv7, NULL, NULL, &cli, &err), ER_CONFIG);
    CHECK_EQ_STR(err.msg, "thumbnail_px: 9 is out of range 16..1024 (from --thumbnail-px)");
    char *argv8[] = {"ei-relay", "--config", path, "-x", NULL};
    CHECK_EQ_INT(config_load(&c, 4, argv8, NULL, NULL, &cli, &err), ER_CONFIG);
    CHECK_EQ_STR(err.msg, "unknown flag \"-x\"");
    unlink(path);

    /* a bad file names itself; --help still works with it */
    const char *bad = "{\"http_port\": \"x\"}";
    CHECK(write_temp(path, bad, strlen(bad)));
    char *argv9[] = {"ei-relay", "--config", path, NULL};
    CHECK_EQ_INT(config_load(&c, 3, argv9, NULL, NULL, &cli, &err), ER_CONFIG);
    CHECK(strncmp(err.msg, "http_port: \"x\" is not an integer", 32) == 0);
    CHECK(strstr(err.msg, path) != NULL);
    char *argv10[] = {"ei-relay", "--config", path, "-h", NULL};
    CHECK_EQ_INT(config_load(&c, 4, argv10, NULL, NULL, &cli, &err), ER_OK);
    CHECK(cli.help);
    config_free(&c);
    unlink(path);

    /* missing and oversized files */
    char *argv11[] = {"ei-relay", "--config=/nonexistent/ei-relay.json", NULL};
    CHECK_EQ_INT(config_load(&c, 2, argv11, NULL, NULL, &cli, &err), ER_CONFIG);
    CHECK(strstr(err.msg, "/nonexistent/ei-relay.json") != NULL);
    size_t big_len = 1024 * 1024 + 10;
    char *big = malloc(big_len);
    CHECK(big != NULL);
    if (big) {
        memset(big, ' ', big_len);
        big[0] = '{';
        big[big_len - 1] = '}';
        CHECK(write_temp(path, big, big_len));
        char *argv12[] = {"ei-relay", "--config", path, NULL};
        CHECK_EQ_INT(config_load(&c, 3, argv12, NULL, NULL, &cli, &err), ER_CONFIG);
        CHECK(strstr(err.msg, "larger than 1 MiB") != NULL);
        unlink(path);
        free(big);
    }
}

/* The Edge Impulse recipes' shape: every key under "Parameters", numbers as strings or numbers;
 * the object's own keys win over its Parameters. */
static void test_parameters(void)
{
    config c;
    er_err err;
    CHECK_EQ_INT(load(&c,
                      "{\"Parameters\": {\"device_name\": \"MyEdgeImpulseDevice\", "
                      "\"sleep_time_sec\": 10, \"iotcore_backoff\": \"5\", \"iotcore_qos\": 1, "
                      "\"default_threshold\": 50.0, \"metrics_sleeptime_ms\": \"30000\", "
                      "\"s3_bucket\": \"__none__\", \"http_port\": 1234, \"thumbnail_px\": 96}, "
                      "\"thumbnail_px\": 64}",
                      &err),
                 ER_OK);
    CHECK_EQ_STR(c.device_name, "MyEdgeImpulseDevice");
    CHECK_EQ_INT(c.iotcore_backoff, 5);
    CHECK_EQ_INT(c.iotcore_qos, 1);
    CHECK(fabs(c.default_threshold - 0.5) < 1e-9);
    CHECK_EQ_INT(c.metrics_sleeptime_ms, 30000);
    CHECK(c.s3_bucket == NULL);
    CHECK_EQ_INT(c.http_port, 1234);  /* any setting, not only seed keys */
    CHECK_EQ_INT(c.thumbnail_px, 64); /* top level wins */
    CHECK_EQ_STR(c.ignored_keys, "sleep_time_sec");
    config_free(&c);
    CHECK(fails_with("{\"Parameters\": \"x\"}", "Parameters: expected a JSON object of settings"));
    CHECK(fails_with("{\"Parameters\": {\"http_prot\": 1}}",
                     "unknown setting \"http_prot\" (did you mean \"http_port\"?) "
                     "(under Parameters)"));
    CHECK(fails_with("{\"Parameters\": {\"http_port\": 1, \"http_port\": 2}}",
                     "http_port: set twice (under Parameters)"));
    CHECK(fails_with("{\"Parameters\": {\"Parameters\": {}}}",
                     "unknown setting \"Parameters\" (under Parameters)"));
    CHECK(fails_mentioning("{\"Parameters\": {\"iotcore_qos\": \"2\"}}", "iotcore_qos"));
}

/* EI_RELAY_PARAMETERS: a JSON object text between the file and the other variables. */
static void test_env_parameters(void)
{
    char path[64];
    const char *file = "{\"http_port\": 1000, \"ws_port\": 1001, \"thumbnail_px\": 100, "
                       "\"Parameters\": {\"device_name\": \"file-params\"}}";
    CHECK(write_temp(path, file, strlen(file)));
    char *envp[] = {"EI_RELAY_PARAMETERS={\"ws_port\": \"2001\", \"thumbnail_px\": 200, "
                    "\"Parameters\": {\"device_name\": \"env-params\", \"iotcore_qos\": 0}}",
                    "EI_RELAY_THUMBNAIL_PX=300", NULL};
    char *argv[] = {"ei-relay", "--config", path, "--iotcore-qos", "1", NULL};
    config c;
    config_cli cli;
    er_err err = {{0}};
    CHECK_EQ_INT(config_load(&c, 5, argv, envp, NULL, &cli, &err), ER_OK);
    CHECK_EQ_INT(c.http_port, 1000);           /* file */
    CHECK_EQ_INT(c.ws_port, 2001);             /* EI_RELAY_PARAMETERS over the file */
    CHECK_EQ_INT(c.thumbnail_px, 300);         /* a variable over EI_RELAY_PARAMETERS */
    CHECK_EQ_STR(c.device_name, "env-params"); /* its Parameters over the file's */
    CHECK_EQ_INT(c.iotcore_qos, 1);            /* flags over everything */
    config_free(&c);
    char *none[] = {"EI_RELAY_PARAMETERS=__none__", "EI_RELAY_WS_PORT=2002", NULL};
    CHECK_EQ_INT(config_load(&c, 3, argv, none, NULL, &cli, &err), ER_OK);
    CHECK_EQ_INT(c.ws_port, 2002);
    config_free(&c);
    char *bad[] = {"EI_RELAY_PARAMETERS={\"thumbnail_px\": 9}", NULL};
    CHECK_EQ_INT(config_load(&c, 3, argv, bad, NULL, &cli, &err), ER_CONFIG);
    CHECK_EQ_STR(err.msg, "thumbnail_px: 9 is out of range 16..1024 (from EI_RELAY_PARAMETERS)");
    char *notjson[] = {"EI_RELAY_PARAMETERS={\"thumbnail_px\": ", NULL};
    CHECK_EQ_INT(config_load(&c, 3, argv, notjson, NULL, &cli, &err), ER_CONFIG);
    CHECK(strstr(err.msg, "not valid JSON") && strstr(err.msg, "EI_RELAY_PARAMETERS"));
    unlink(path);
}

/* greengrass_file fills the mqtt_* settings that nothing explicit set; "__none__" is not
 * explicit; a missing file is a warning, a broken one an error naming it. */
static void test_greengrass_file(void)
{
    char gg[64], file[64], gg_arg[96];
    const char *ggtext =
        "{\"mqtt_endpoint\": {\"value\": \"abc-ats.iot.eu-west-1.amazonaws.com\", \"from\": "
        "\"/greengrass/v2/config/effectiveConfig.yaml: "
        "services.aws.greengrass.Nucleus.configuration.iotDataEndpoint\"}, "
        "\"mqtt_cert\": {\"value\": \"/w/cert.pem\", \"from\": \"x: system.certificateFilePath\"}, "
        "\"mqtt_key\": {\"value\": \"/w/key.pem\", \"from\": \"x: system.privateKeyPath\"}, "
        "\"mqtt_client_id\": {\"value\": \"Thing-ei-relay\"}}";
    CHECK(write_temp(gg, ggtext, strlen(ggtext)));
    const char *cfg = "{\"mqtt_cert\": \"/explicit/cert.pem\", \"mqtt_key\": \"/file/key.pem\"}";
    CHECK(write_temp(file, cfg, strlen(cfg)));
    snprintf(gg_arg, sizeof gg_arg, "--greengrass-file=%s", gg);
    char *envp[] = {"EI_RELAY_MQTT_KEY=__none__", "EI_RELAY_MQTT_CA=/env/ca.pem", NULL};
    char *argv[] = {"ei-relay", "--config", file, gg_arg, NULL};
    config c;
    config_cli cli;
    er_err err = {{0}};
    CHECK_EQ_INT(config_load(&c, 4, argv, envp, NULL, &cli, &err), ER_OK);
    CHECK_EQ_STR(c.mqtt_endpoint, "abc-ats.iot.eu-west-1.amazonaws.com");
    CHECK_EQ_STR(c.mqtt_cert, "/explicit/cert.pem"); /* explicit wins */
    CHECK_EQ_STR(c.mqtt_key, "/w/key.pem");          /* __none__ from env is not explicit */
    CHECK_EQ_STR(c.mqtt_ca, "/env/ca.pem");          /* not in the file */
    CHECK_EQ_STR(c.mqtt_client_id, "Thing-ei-relay");
    CHECK(c.greengrass_warning == NULL);
    CHECK(c.greengrass_notes &&
          strstr(c.greengrass_notes, "mqtt_endpoint = abc-ats.iot.eu-west-1.amazonaws.com "
                                     "(greengrass_file ") &&
          strstr(c.greengrass_notes, "iotDataEndpoint)\nmqtt_cert: the explicit setting wins"));
    config_report(&c);
    config_free(&c);

    const char *bad[] = {"{\"mqtt_endpoint\": \"x\"}", "{\"mqtt_keepalive_s\": {\"value\": \"1\"}}",
                         "[1]", "{\"mqtt_endpoint\": {\"value\": \"\"}}", "{"};
    const char *want[] = {"mqtt_endpoint: expected {", "unknown key \"mqtt_keepalive_s\"",
                          "expected a JSON object", "mqtt_endpoint: must not be empty",
                          "not valid JSON"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fopen(gg, "w");
        CHECK(f && fputs(bad[i], f) >= 0 && fclose(f) == 0);
        CHECK_EQ_INT(config_load(&c, 4, argv, envp, NULL, &cli, &err), ER_CONFIG);
        CHECK(strstr(err.msg, want[i]) && strstr(err.msg, "(in greengrass_file /tmp/"));
    }
    unlink(gg);
    CHECK_EQ_INT(config_load(&c, 4, argv, envp, NULL, &cli, &err), ER_OK);
    CHECK(c.mqtt_endpoint == NULL && c.greengrass_notes == NULL);
    CHECK(c.greengrass_warning && strstr(c.greengrass_warning, "does not exist") &&
          strstr(c.greengrass_warning, "forwarding is off"));
    config_report(&c);
    config_free(&c);
    char *dir_arg[] = {"ei-relay", "--greengrass-file", "/tmp", NULL};
    CHECK_EQ_INT(config_load(&c, 3, dir_arg, NULL, NULL, &cli, &err), ER_CONFIG);
    CHECK(strncmp(err.msg, "greengrass_file /tmp: ", 22) == 0);
    unlink(file);
}

static void test_print_config(void)
{
    config c, again;
    er_err err;
    CHECK_EQ_INT(load(&c,
                      "{\"tokens\": [{\"token\": \"SuperSecret123-xyz\", \"role\": \"admin\"}], "
                      "\"mqtt_key\": \"/certs/key.pem\", \"cache_max_age\": \"12h\", "
                      "\"default_threshold\": 60, \"threshold_criteria\": \"gt\", "
                      "\"sources\": [{\"name\": \"cam\", \"kind\": \"runner-ws\"}], "
                      "\"eiparams\": \"x\", \"gst_args\": \"videotestsrc:!:jpegenc\"}",
                      &err),
                 ER_OK);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    CHECK(out != NULL);
    if (!out) return;
    config_print(&c, out);
    fclose(out);
    CHECK(strstr(text, "SuperSecret123-xyz") == NULL);
    CHECK(strstr(text, "\"***\"") != NULL);
    cJSON *root = cJSON_Parse(text);
    CHECK(cJSON_IsObject(root));
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(root, "threshold_criteria")), "gt");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(root, "cache_max_age")), "12h");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(root, "mqtt_key")), "/certs/key.pem");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(root, "s3_bucket")));
    CHECK(cJSON_GetObjectItem(root, "eiparams") == NULL); /* ignored keys are not printed */
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(root, "gst_args")),
                 "videotestsrc:!:jpegenc");
    CHECK(cJSON_GetObjectItem(root, "http_port") &&
          cJSON_GetObjectItem(root, "http_port")->valuedouble == 4920);
    /* without the masked tokens, the printed settings load back to the same values */
    cJSON_DeleteItemFromObject(root, "tokens");
    char *back = cJSON_PrintUnformatted(root);
    CHECK_EQ_INT(load(&again, back, &err), ER_OK);
    CHECK_EQ_INT(again.cache_max_age_ms, c.cache_max_age_ms);
    CHECK(again.default_threshold == c.default_threshold);
    CHECK_EQ_INT(again.max_body_bytes, c.max_body_bytes);
    CHECK_EQ_STR(again.sources_json, c.sources_json);
    CHECK_EQ_STR(again.mqtt_key, c.mqtt_key);
    CHECK_EQ_INT(again.threshold_criteria, CONFIG_CRIT_GT);
    config_free(&again);
    free(back);
    cJSON_Delete(root);
    free(text);
    config_free(&c);
}

static void test_usage(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    CHECK(out != NULL);
    if (!out) return;
    config_usage(out);
    fclose(out);
    const char *line = strstr(text, "--http-port N");
    CHECK(line != NULL);
    if (line) {
        const char *eol = strchr(line, '\n');
        const char *env = strstr(line, "EI_RELAY_HTTP_PORT");
        const char *def = strstr(line, "(default 4920)");
        CHECK(env && env < eol && def && def < eol && env < def);
    }
    CHECK(strstr(text, "--threshold-criteria gt|ge|eq|le|lt") != NULL);
    CHECK(strstr(text, "(default 30d)") != NULL);
    CHECK(strstr(text, "ei_shutdown_behavior") != NULL);
    free(text);
}

int main(void)
{
    test_defaults();
    test_strings_and_numbers_alike();
    test_bools();
    test_none();
    test_threshold();
    test_errors_name_the_key();
    test_unknown_and_malformed();
    test_sizes_and_durations();
    test_ignored_keys();
    test_tokens();
    test_sources();
    test_precedence();
    test_parameters();
    test_env_parameters();
    test_greengrass_file();
    test_print_config();
    test_usage();
    return check_summary();
}
