/* test_greengrass.c - unit tests of greengrass-setup's pure part (server/greengrass,
 * greengrass_scan): the values a nucleus configuration holds, on the fake nucleus layouts of
 * tests/fixtures/greengrass (Java's effectiveConfig.yaml as provisioned and as written by hand,
 * with a PKCS#11 key; lite's config.yaml merged with config.d in lexical order), and YAML's
 * corners: aliases, nulls, several documents, repeated keys, flow style, errors and limits.
 * The file work (copies, modes, owners, greengrass.json) is tested black-box:
 * tests/blackbox/test_greengrass.py. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "greengrass/greengrass.h"

/* Scans a fixture file into f; the origin is its name. */
static er_rc scan_fixture(greengrass_found *f, const char *subdir, const char *name)
{
    size_t len = 0;
    er_err err = {{0}};
    char *text = fixture_read(subdir, name, &len);
    if (!text) return ER_IO;
    er_rc rc = greengrass_scan(f, text, len, name, &err);
    if (rc) fprintf(stderr, "  %s/%s: %s\n", subdir, name, err.msg);
    free(text);
    return rc;
}

static er_rc scan_text(greengrass_found *f, const char *yaml, er_err *err)
{
    memset(err, 0, sizeof *err);
    return greengrass_scan(f, yaml, strlen(yaml), "inline.yaml", err);
}

static void test_java_provisioned(void)
{
    greengrass_found f;
    memset(&f, 0, sizeof f);
    CHECK_EQ_INT(scan_fixture(&f, "greengrass/java/config", "effectiveConfig.yaml"), ER_OK);
    CHECK_EQ_STR(f.value[GREENGRASS_ENDPOINT], "@ENDPOINT@");
    CHECK_EQ_STR(f.origin[GREENGRASS_ENDPOINT], "effectiveConfig.yaml");
    CHECK(f.value[GREENGRASS_ENDPOINT_LITE] == NULL);
    CHECK(f.value[GREENGRASS_MQTT_PORT] == NULL); /* mqtt: {spooler: {}} */
    CHECK_EQ_STR(f.value[GREENGRASS_THING], "EiJavaGateway");
    CHECK_EQ_STR(f.value[GREENGRASS_CERT], "@ROOT@/thingCert.crt");
    CHECK_EQ_STR(f.value[GREENGRASS_KEY], "@ROOT@/privKey.key");
    CHECK_EQ_STR(f.value[GREENGRASS_CA], "@ROOT@/rootCA.pem");
    CHECK_EQ_STR(f.value[GREENGRASS_ROOT], "@ROOT@");
    CHECK(f.value[GREENGRASS_ROOT_LITE] == NULL); /* lite spells it rootPath */
    greengrass_found_free(&f);
    CHECK(f.value[GREENGRASS_THING] == NULL);
}

static void test_java_manual_and_pkcs11(void)
{
    greengrass_found f;
    memset(&f, 0, sizeof f);
    CHECK_EQ_INT(scan_fixture(&f, "greengrass/java-manual/config", "effectiveConfig.yaml"), ER_OK);
    CHECK_EQ_STR(f.value[GREENGRASS_MQTT_PORT], "443");             /* a YAML number, as its text */
    CHECK_EQ_STR(f.value[GREENGRASS_CERT], "certs/device.pem.crt"); /* resolved by the I/O part */
    CHECK_EQ_STR(f.value[GREENGRASS_KEY], "~root/certs/private.pem.key");
    CHECK_EQ_STR(f.value[GREENGRASS_THING], "EiManualGateway");
    greengrass_found_free(&f);
    CHECK_EQ_INT(scan_fixture(&f, "greengrass/java-pkcs11/config", "effectiveConfig.yaml"), ER_OK);
    CHECK_EQ_STR(f.value[GREENGRASS_KEY], "pkcs11:object=iotkey;type=private");
    CHECK_EQ_STR(f.value[GREENGRASS_ENDPOINT], "a3f2e1d0c9b8a7-ats.iot.eu-central-1.amazonaws.com");
    greengrass_found_free(&f);
}

/* config.yaml, then config.d in lexical order: each later file wins key by key. */
static void test_lite_merge(void)
{
    greengrass_found f;
    memset(&f, 0, sizeof f);
    CHECK_EQ_INT(scan_fixture(&f, "greengrass/lite", "config.yaml"), ER_OK);
    CHECK_EQ_STR(f.value[GREENGRASS_ENDPOINT_LITE], "<CONFIGURE_THIS>");
    CHECK_EQ_INT(scan_fixture(&f, "greengrass/lite/config.d", "10-site.yaml"), ER_OK);
    CHECK_EQ_STR(f.value[GREENGRASS_THING], "replaced-by-20-device");
    CHECK_EQ_STR(f.value[GREENGRASS_ENDPOINT_LITE], "<CONFIGURE_THIS>"); /* not in 10-site */
    CHECK_EQ_INT(scan_fixture(&f, "greengrass/lite/config.d", "20-device.yaml"), ER_OK);
    CHECK_EQ_STR(f.value[GREENGRASS_THING], "EiLiteGateway");
    CHECK_EQ_STR(f.origin[GREENGRASS_THING], "20-device.yaml");
    CHECK_EQ_STR(f.value[GREENGRASS_ENDPOINT_LITE], "@ENDPOINT@");
    CHECK_EQ_STR(f.value[GREENGRASS_KEY], "@ROOT@/device.key");
    CHECK_EQ_STR(f.origin[GREENGRASS_KEY], "config.yaml");
    CHECK_EQ_STR(f.value[GREENGRASS_ROOT_LITE], "@ROOT@");
    CHECK(f.value[GREENGRASS_ENDPOINT] == NULL && f.value[GREENGRASS_ROOT] == NULL);
    greengrass_found_free(&f);
}

/* What the first text of test_yaml_corners gives, which the second must leave. */
static void check_first_text(const greengrass_found *f)
{
    CHECK_EQ_STR(f->value[GREENGRASS_THING], "Aliased");
    CHECK_EQ_STR(f->value[GREENGRASS_CA], "/ca.pem");
    CHECK_EQ_STR(f->value[GREENGRASS_ENDPOINT], "flow.example.com");
}

static void test_yaml_corners(void)
{
    greengrass_found f;
    memset(&f, 0, sizeof f);
    er_err err;
    /* aliases are followed; flow style; keys with dots are one name */
    CHECK_EQ_INT(scan_text(&f,
                           "ids: &ids {thingName: Aliased, rootCaPath: /ca.pem}\n"
                           "system: *ids\n"
                           "services: {aws.greengrass.Nucleus: {configuration: "
                           "{iotDataEndpoint: flow.example.com}}}\n"
                           "services.aws.greengrass.Nucleus: {configuration: "
                           "{iotDataEndpoint: not-this}}\n",
                           &err),
                 ER_OK);
    check_first_text(&f);
    /* null, empty and non-scalar values leave what an earlier text gave */
    CHECK_EQ_INT(scan_text(&f,
                           "system:\n  thingName: ~\n  rootCaPath: \"\"\n"
                           "services:\n  aws.greengrass.Nucleus:\n    configuration:\n"
                           "      iotDataEndpoint: [a, b]\n",
                           &err),
                 ER_OK);
    check_first_text(&f);
    /* a quoted "null" is a string; several documents: the later wins; a repeated key: the last */
    CHECK_EQ_INT(scan_text(&f,
                           "system: {thingName: \"null\"}\n---\nsystem:\n  thingName: Second\n"
                           "  thingName: Third\n...\n",
                           &err),
                 ER_OK);
    CHECK_EQ_STR(f.value[GREENGRASS_THING], "Third");
    /* a scalar where a mapping is expected, an empty text, comments only: nothing */
    CHECK_EQ_INT(scan_text(&f, "system: just-text\n", &err), ER_OK);
    CHECK_EQ_INT(scan_text(&f, "", &err), ER_OK);
    CHECK_EQ_INT(scan_text(&f, "# nothing\n", &err), ER_OK);
    CHECK_EQ_STR(f.value[GREENGRASS_THING], "Third");
    /* not YAML: says where */
    CHECK_EQ_INT(scan_text(&f, "system:\n  thingName: [unclosed\n", &err), ER_INVALID);
    CHECK(strstr(err.msg, "inline.yaml is not YAML") && strstr(err.msg, "line "));
    CHECK_EQ_INT(scan_text(&f, "system: *undefined\n", &err), ER_INVALID);
    /* limits */
    size_t n = 5000;
    char *big = malloc(n + 64);
    CHECK(big != NULL);
    if (big) {
        int k = snprintf(big, 64, "system:\n  thingName: ");
        memset(big + k, 'x', n);
        big[k + n] = '\0';
        CHECK_EQ_INT(scan_text(&f, big, &err), ER_TOOBIG);
        CHECK(strstr(err.msg, "system.thingName") != NULL);
        free(big);
    }
    CHECK_EQ_INT(greengrass_scan(&f, "", 1024 * 1024 + 1, "huge.yaml", &err), ER_TOOBIG);
    greengrass_found_free(&f);
    CHECK_EQ_STR(greengrass_key_name(GREENGRASS_ENDPOINT_LITE),
                 "services.aws.greengrass.NucleusLite.configuration.iotDataEndpoint");
    CHECK_EQ_STR(greengrass_key_name(GREENGRASS_KEY_COUNT), "?");
}

static void test_parse_args(void)
{
    greengrass_opts o;
    er_err err = {{0}};
    char *envp[] = {"AWS_IOT_THING_NAME=EnvThing", "GG_ROOT_CA_PATH=", "PATH=/bin", NULL};
    char *argv[] = {"greengrass-setup", "--work-dir",   "/w/",
                    "--nucleus=lite",   "--run-as",     "gg_component:gg_component",
                    "--lite-config",    "/etc/gg.yaml", NULL};
    CHECK_EQ_INT(greengrass_parse_args(8, argv, envp, &o, &err), ER_OK);
    CHECK_EQ_STR(o.work_dir, "/w/");
    CHECK_EQ_INT(o.nucleus, GREENGRASS_NUCLEUS_LITE);
    CHECK_EQ_STR(o.run_as, "gg_component:gg_component");
    CHECK_EQ_STR(o.lite_config, "/etc/gg.yaml");
    CHECK(o.java_root == NULL && o.lite_config_dir == NULL && !o.help);
    CHECK_EQ_STR(o.thing_env, "EnvThing");
    CHECK(o.ca_env == NULL); /* empty is unset */
    char *missing[] = {"greengrass-setup", "--nucleus", "java", NULL};
    CHECK_EQ_INT(greengrass_parse_args(3, missing, NULL, &o, &err), ER_CONFIG);
    CHECK_EQ_STR(err.msg, "--work-dir DIR is required");
    char *bad[] = {"greengrass-setup", "--work-dir", "/w", "--nucleus", "docker", NULL};
    CHECK_EQ_INT(greengrass_parse_args(5, bad, NULL, &o, &err), ER_CONFIG);
    CHECK_EQ_STR(err.msg, "--nucleus: \"docker\" is not one of java|lite|auto");
    char *unknown[] = {"greengrass-setup", "--work", "/w", NULL};
    CHECK_EQ_INT(greengrass_parse_args(3, unknown, NULL, &o, &err), ER_CONFIG);
    CHECK_EQ_STR(err.msg, "unknown option \"--work\"");
    char *novalue[] = {"greengrass-setup", "--work-dir", NULL};
    CHECK_EQ_INT(greengrass_parse_args(2, novalue, NULL, &o, &err), ER_CONFIG);
    CHECK_EQ_STR(err.msg, "--work-dir needs a value");
    char *help[] = {"greengrass-setup", "--help", NULL};
    CHECK_EQ_INT(greengrass_parse_args(2, help, NULL, &o, &err), ER_OK);
    CHECK(o.help);
}

int main(void)
{
    test_java_provisioned();
    test_java_manual_and_pkcs11();
    test_lite_merge();
    test_yaml_corners();
    test_parse_args();
    return check_summary();
}
