/* test_sources_check.c - the one validation of the `sources` setting (server/sources): its
 * entries (array, objects, names, kinds) as a configuration load checks them through the check
 * main hands config_load, with the same messages and origins, and each kind's own settings as
 * start-up checks them (sources_validate). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config/config.h"
#include "core/log.h"
#include "sources/sources.h"

/* The entries check on json; true if it fails with exactly want. */
static bool entries_fail(const char *json, const char *want)
{
    er_err err = {{0}};
    er_rc rc = sources_check_entries(json, &err);
    bool ok = rc == ER_CONFIG && strcmp(err.msg, want) == 0;
    if (!ok) fprintf(stderr, "  %s -> rc %d \"%s\", wanted \"%s\"\n", json, rc, err.msg, want);
    return ok;
}

/* The full validation on json; true if it fails with a message containing want. */
static bool settings_fail(const char *json, const char *want)
{
    er_err err = {{0}};
    er_rc rc = sources_validate(json, &err);
    bool ok = rc == ER_CONFIG && strstr(err.msg, want) != NULL;
    if (!ok) fprintf(stderr, "  %s -> rc %d \"%s\", wanted \"%s\"\n", json, rc, err.msg, want);
    return ok;
}

/* Loads `sources` from the environment as main does (config_load with the entries check);
 * returns the rc and leaves the message in err. */
static er_rc load_env(const char *value, er_err *err)
{
    char var[512];
    snprintf(var, sizeof var, "EI_RELAY_SOURCES=%s", value);
    char *envp[] = {var, NULL};
    char *argv[] = {"ei-relay", NULL};
    config c;
    config_cli cli;
    memset(err, 0, sizeof *err);
    er_rc rc = config_load(&c, 1, argv, envp, sources_check_entries, &cli, err);
    if (rc == ER_OK) config_free(&c);
    return rc;
}

static void test_entries(void)
{
    er_err err = {{0}};
    CHECK_EQ_INT(sources_check_entries(NULL, &err), ER_OK);
    CHECK_EQ_INT(sources_check_entries("[]", &err), ER_OK);
    CHECK_EQ_INT(sources_check_entries("[{\"name\":\"cam\",\"kind\":\"runner-ws\",\"url\":"
                                       "\"ws://127.0.0.1:4912/\"},{\"name\":\"mcu\",\"kind\":"
                                       "\"serial\",\"device\":\"/dev/ttyACM0\",\"baud\":115200}]",
                                       &err),
                 ER_OK);
    /* the messages a configuration load gave before the check moved here */
    CHECK(entries_fail("[{\"name\": \"a\", \"kind\": \"serial\"}, {\"name\": \"b\", \"kind\": "
                       "\"usb\"}]",
                       "sources[1].kind: \"usb\" is not one of eim|runner-ws|serial"));
    CHECK(entries_fail("[{\"name\": \"a\", \"kind\": \"serial\"}, {\"name\": \"a\", \"kind\": "
                       "\"serial\"}]",
                       "sources[1].name: \"a\" is already used by sources[0]"));
    CHECK(entries_fail("[{\"name\": \"\", \"kind\": \"serial\"}]",
                       "sources[0].name: expected a non-empty string"));
    CHECK(entries_fail("[{\"kind\": \"serial\"}, 1]",
                       "sources[0].name: expected a non-empty string"));
    CHECK(entries_fail("[{\"name\": \"a\", \"kind\": \"serial\"}, 1]",
                       "sources[1]: expected an object {\"name\", \"kind\"}"));
    CHECK(entries_fail("3", "sources: expected a JSON array of {\"name\", \"kind\", ...}"));
    CHECK(entries_fail("[oops", "sources: expected a JSON array of {\"name\", \"kind\", ...}"));
    CHECK(entries_fail("[{\"name\": \"a\"}]", "sources[0].kind: \"(missing)\" is not one of "
                                              "eim|runner-ws|serial"));
    /* kinds are names, compared exactly */
    CHECK(entries_fail("[{\"name\": \"a\", \"kind\": \"Serial\"}]",
                       "sources[0].kind: \"Serial\" is not one of eim|runner-ws|serial"));
    /* a name must fit the status record */
    char json[512];
    snprintf(json, sizeof json, "[{\"name\": \"%0*d\", \"kind\": \"serial\"}]", SOURCES_NAME_MAX,
             0);
    CHECK(entries_fail(json, "sources[0].name: 1 to 63 characters"));
    snprintf(json, sizeof json, "[{\"name\": \"%0*d\", \"kind\": \"serial\"}]",
             SOURCES_NAME_MAX - 1, 0);
    CHECK_EQ_INT(sources_check_entries(json, &err), ER_OK);
    /* at most SOURCES_MAX entries */
    char many[SOURCES_MAX * 40 + 64];
    size_t n = (size_t)snprintf(many, sizeof many, "[");
    for (int i = 0; i <= SOURCES_MAX; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "%s{\"name\":\"s%d\",\"kind\":\"serial\"}",
                              i ? "," : "", i);
    snprintf(many + n, sizeof many - n, "]");
    CHECK(entries_fail(many, "sources: at most 64 entries"));
}

/* Through config_load, as main runs it: refused where the value is set, naming its origin. */
static void test_config_load(void)
{
    er_err err;
    CHECK_EQ_INT(load_env("[{\"name\":\"a\",\"kind\":\"usb\"}]", &err), ER_CONFIG);
    CHECK_EQ_STR(err.msg, "sources[0].kind: \"usb\" is not one of eim|runner-ws|serial "
                          "(from EI_RELAY_SOURCES)");
    CHECK_EQ_INT(load_env("[{\"name\":\"a\",\"kind\":\"serial\"},{\"name\":\"a\",\"kind\":"
                          "\"serial\"}]",
                          &err),
                 ER_CONFIG);
    CHECK_EQ_STR(err.msg, "sources[1].name: \"a\" is already used by sources[0] "
                          "(from EI_RELAY_SOURCES)");
    CHECK_EQ_INT(load_env("{}", &err), ER_CONFIG);
    CHECK(strstr(err.msg, "sources: expected a JSON array") != NULL);
    /* a kind's own settings are start-up's to check: the load passes */
    CHECK_EQ_INT(load_env("[{\"name\":\"a\",\"kind\":\"serial\",\"baud\":5}]", &err), ER_OK);
}

/* Each kind's own settings, through its row's validate, after every entry is fine. */
static void test_settings(void)
{
    er_err err = {{0}};
    CHECK_EQ_INT(sources_validate("[{\"name\":\"s\",\"kind\":\"serial\",\"device\":\"/dev/null\","
                                  "\"baud\":9600},{\"name\":\"c\",\"kind\":\"serial\",\"command\":"
                                  "\"true\",\"restart\":false},{\"name\":\"r\",\"kind\":"
                                  "\"runner-ws\",\"url\":\"ws://[::1]:4912/x\",\"images\":false}]",
                                  &err),
                 ER_OK);
    CHECK(settings_fail("[{\"name\":\"s\",\"kind\":\"serial\",\"device\":\"/dev/null\","
                        "\"baud\":12345}]",
                        "sources \"s\".baud: not a supported rate"));
    CHECK(settings_fail("[{\"name\":\"s\",\"kind\":\"serial\"}]",
                        "sources \"s\": give exactly one of \"device\", \"command\" or "
                        "\"stdin\": true"));
    CHECK(settings_fail("[{\"name\":\"s\",\"kind\":\"serial\",\"stdin\":\"yes\"}]",
                        "sources \"s\".stdin: expected true"));
    /* impulse: one of four words; only a device is written to */
    CHECK_EQ_INT(sources_validate("[{\"name\":\"a\",\"kind\":\"serial\",\"device\":\"/dev/null\","
                                  "\"impulse\":\"debug\"},{\"name\":\"b\",\"kind\":\"serial\","
                                  "\"device\":\"/dev/null\",\"impulse\":\"off\"},{\"name\":\"c\","
                                  "\"kind\":\"serial\",\"command\":\"true\",\"impulse\":\"off\"}]",
                                  &err),
                 ER_OK);
    CHECK(settings_fail("[{\"name\":\"s\",\"kind\":\"serial\",\"device\":\"/dev/null\","
                        "\"impulse\":\"Normal\"}]",
                        "sources \"s\".impulse: expected \"normal\", \"continuous\", \"debug\" or "
                        "\"off\""));
    CHECK(settings_fail("[{\"name\":\"s\",\"kind\":\"serial\",\"device\":\"/dev/null\","
                        "\"impulse\":true}]",
                        "sources \"s\".impulse: expected"));
    CHECK(settings_fail("[{\"name\":\"c\",\"kind\":\"serial\",\"command\":\"true\","
                        "\"impulse\":\"normal\"}]",
                        "sources \"c\".impulse: only a \"device\" is asked to run the impulse"));
    CHECK(settings_fail("[{\"name\":\"r\",\"kind\":\"runner-ws\",\"url\":\"http://x/\"}]",
                        "sources \"r\".url: expected a ws:// URL"));
    CHECK(settings_fail("[{\"name\":\"r\",\"kind\":\"runner-ws\",\"colour\":1}]",
                        "sources \"r\": unknown setting \"colour\" for kind runner-ws"));
    CHECK(settings_fail("[{\"name\":\"r\",\"kind\":\"runner-ws\",\"max_frame_bytes\":10}]",
                        "sources \"r\".max_frame_bytes: expected a whole number"));
    /* every entry is checked before any kind's settings: the bad kind of the second entry is
     * named, not the bad baud of the first */
    CHECK(settings_fail("[{\"name\":\"s\",\"kind\":\"serial\",\"baud\":5},{\"name\":\"t\","
                        "\"kind\":\"usb\"}]",
                        "sources[1].kind: \"usb\""));
}

/* ei_local_model_file and gst_args (the runner component's keys) add the eim source "runner". */
static void test_effective(void)
{
    config c = {0};
    er_err err = {{0}};
    char *json = NULL;
    c.sources_json = "[{\"name\":\"mcu\",\"kind\":\"serial\",\"stdin\":true}]";
    /* no model: the setting as it is */
    CHECK_EQ_INT(sources_effective(&c, &json, &err), ER_OK);
    CHECK_EQ_STR(json, "[{\"name\":\"mcu\",\"kind\":\"serial\",\"stdin\":true}]");
    free(json);
    c.ei_local_model_file = "";
    CHECK_EQ_INT(sources_effective(&c, &json, &err), ER_OK);
    CHECK_EQ_STR(json, "[{\"name\":\"mcu\",\"kind\":\"serial\",\"stdin\":true}]");
    free(json);
    /* a model, no pipeline: the first camera */
    c.ei_local_model_file = "/opt/m.eim";
    CHECK_EQ_INT(sources_effective(&c, &json, &err), ER_OK);
    CHECK_EQ_STR(json, "[{\"name\":\"mcu\",\"kind\":\"serial\",\"stdin\":true},"
                       "{\"name\":\"runner\",\"kind\":\"eim\",\"model_file\":\"/opt/m.eim\"}]");
    free(json);
    /* the recipes' ':' for every space */
    c.gst_args = "videotestsrc:is-live=true:!:jpegenc";
    c.sources_json = NULL;
    CHECK_EQ_INT(sources_effective(&c, &json, &err), ER_OK);
    CHECK_EQ_STR(json, "[{\"name\":\"runner\",\"kind\":\"eim\",\"model_file\":\"/opt/m.eim\","
                       "\"gst_launch_args\":\"videotestsrc is-live=true ! jpegenc\"}]");
    free(json);
    /* a source already called runner */
    c.sources_json = "[{\"name\":\"runner\",\"kind\":\"runner-ws\"}]";
    json = (char *)"untouched";
    CHECK_EQ_INT(sources_effective(&c, &json, &err), ER_CONFIG);
    CHECK(json == NULL);
    CHECK(strstr(err.msg, "ei_local_model_file") != NULL);
    CHECK_EQ_INT(sources_check_config(&c, &err), ER_CONFIG);
    /* not an array: the same message as the entries check */
    c.sources_json = "{}";
    CHECK_EQ_INT(sources_effective(&c, &json, &err), ER_CONFIG);
    CHECK(strstr(err.msg, "sources: expected a JSON array") != NULL);
}

/* serial_device, serial_baud and serial_impulse (the serial component's keys) add the serial
 * source "serial"; every serial_impulse value reaches the source as the kind spells it. */
static void test_effective_serial(void)
{
    static const char *const modes[] = {"normal", "continuous", "debug", "off"};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char doc[256], want[256];
        config c;
        er_err err = {{0}};
        char *json = NULL;
        snprintf(doc, sizeof doc,
                 "{\"serial_device\": \"/dev/ttyACM0\", \"serial_baud\": \"9600\", "
                 "\"serial_impulse\": \"%s\"}",
                 modes[i]);
        CHECK_EQ_INT(config_load_json(&c, doc, strlen(doc), &err), ER_OK);
        CHECK_EQ_INT(sources_effective(&c, &json, &err), ER_OK);
        snprintf(want, sizeof want,
                 "[{\"name\":\"serial\",\"kind\":\"serial\",\"device\":\"/dev/ttyACM0\","
                 "\"baud\":9600,\"impulse\":\"%s\"}]",
                 modes[i]);
        CHECK_EQ_STR(json, want);
        CHECK_EQ_INT(sources_check_config(&c, &err), ER_OK); /* the serial kind takes it */
        free(json);
        config_free(&c);
    }
    /* the defaults: 115200, normal; a source already called serial is the key's error */
    config c;
    er_err err = {{0}};
    char *json = NULL;
    const char *doc = "{\"serial_device\": \"/dev/ttyUSB0\"}";
    CHECK_EQ_INT(config_load_json(&c, doc, strlen(doc), &err), ER_OK);
    CHECK_EQ_INT(sources_effective(&c, &json, &err), ER_OK);
    CHECK_EQ_STR(json, "[{\"name\":\"serial\",\"kind\":\"serial\",\"device\":\"/dev/ttyUSB0\","
                       "\"baud\":115200,\"impulse\":\"normal\"}]");
    free(json);
    config_free(&c);
    doc = "{\"serial_device\": \"/dev/ttyUSB0\", \"sources\": [{\"name\": \"serial\", "
          "\"kind\": \"serial\", \"stdin\": true}]}";
    CHECK_EQ_INT(config_load_json(&c, doc, strlen(doc), &err), ER_OK);
    CHECK_EQ_INT(sources_effective(&c, &json, &err), ER_CONFIG);
    CHECK(strstr(err.msg, "serial_device: runs the serial source \"serial\"") != NULL);
    config_free(&c);
    doc = "{\"serial_impulse\": \"sometimes\"}";
    CHECK_EQ_INT(config_load_json(&c, doc, strlen(doc), &err), ER_CONFIG);
    CHECK(strstr(err.msg, "normal|continuous|debug|off") != NULL);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    test_entries();
    test_config_load();
    test_settings();
    test_effective();
    test_effective_serial();
    return check_summary();
}
