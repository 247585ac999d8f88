/* greengrass.h - `ei-relay greengrass-setup`: what an AWS IoT Greengrass device already knows
 * about its identity, handed to the relay so nobody types it in. Run as root by the component's
 * install step, it reads the nucleus configuration (Java: <root>/config/effectiveConfig.yaml;
 * nucleus lite: /etc/greengrass/config.yaml, then the *.yaml files of config.d in lexical
 * order, later values winning) with libyaml, finds the IoT data endpoint, the thing name, the CA,
 * the certificate and the private key, copies the key (and the certificate and CA when the run-as
 * user cannot read them) into the component's work directory with mode 0600 for the run-as user,
 * and writes <work>/greengrass.json, which the relay reads through its greengrass_file setting:
 *   {"mqtt_endpoint": {"value": "...", "from": "<file>: <key path>"}, "mqtt_cert": {...},
 *    "mqtt_key": {...}, "mqtt_ca": {...}, "mqtt_client_id": {...}[, "mqtt_port": {...}]}
 * The environment the nucleus gives a component wins: AWS_IOT_THING_NAME for the thing name,
 * GG_ROOT_CA_PATH for the CA. A key held by a PKCS#11 token or a TPM (a "pkcs11:" or "handle:"
 * URI) is refused: it cannot be copied. Idempotent: a second run rewrites the same files.
 *
 * Two parts: a pure one (greengrass_scan: YAML text -> the values it holds, for unit tests and
 * the fuzz harness) and the I/O one (greengrass_setup). Owned by the greengrass module (the
 * tools row of the layering); main.c calls it for the greengrass-setup command. */
#ifndef EI_GREENGRASS_GREENGRASS_H
#define EI_GREENGRASS_GREENGRASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/rc.h"

/* ---- the pure part: the values of a nucleus configuration ---- */

/* What ei-relay looks for, each at one key path of the nucleus configuration. */
typedef enum greengrass_key {
    GREENGRASS_ENDPOINT,      /* services.aws.greengrass.Nucleus.configuration.iotDataEndpoint */
    GREENGRASS_ENDPOINT_LITE, /* services.aws.greengrass.NucleusLite.configuration.iotDataEndpoint
                               */
    GREENGRASS_MQTT_PORT,     /* services.aws.greengrass.Nucleus.configuration.mqtt.port (Java) */
    GREENGRASS_THING,         /* system.thingName */
    GREENGRASS_CA,            /* system.rootCaPath */
    GREENGRASS_CERT,          /* system.certificateFilePath */
    GREENGRASS_KEY,           /* system.privateKeyPath */
    GREENGRASS_ROOT,          /* system.rootpath (Java) */
    GREENGRASS_ROOT_LITE,     /* system.rootPath (lite) */
    GREENGRASS_KEY_COUNT
} greengrass_key;

/* The values found so far; scanning more texts overrides them key by key. */
typedef struct greengrass_found {
    char *value[GREENGRASS_KEY_COUNT];  /* owned, NUL-terminated; NULL: not found */
    char *origin[GREENGRASS_KEY_COUNT]; /* owned: the origin of the text it came from */
} greengrass_found;

/* The key path of k, dotted ("system.thingName"); a static string. */
const char *greengrass_key_name(greengrass_key k);

/* Reads one YAML text (len bytes, every document in it) and stores in f each key path it holds
 * as a non-empty scalar (a null, an empty value or a mapping leaves the key as it was), with
 * origin (copied; it names the text). ER_INVALID when the text is not YAML (err says where),
 * ER_TOOBIG over 1 MiB or a value over 4096 bytes, ER_NOMEM. */
er_rc greengrass_scan(greengrass_found *f, const char *yaml, size_t len, const char *origin,
                      er_err *err);
void greengrass_found_free(greengrass_found *f);

/* ---- the command ---- */

typedef enum greengrass_nucleus {
    GREENGRASS_NUCLEUS_AUTO = 0, /* Java when <java root>/config/effectiveConfig.yaml exists */
    GREENGRASS_NUCLEUS_JAVA,
    GREENGRASS_NUCLEUS_LITE
} greengrass_nucleus;

/* The command's options; strings borrow argv and envp. */
typedef struct greengrass_opts {
    const char *work_dir; /* --work-dir DIR (required): where the files go */
    greengrass_nucleus nucleus;
    const char *java_root;       /* --java-root ROOT; NULL: /greengrass/v2 */
    const char *lite_config;     /* --lite-config FILE; NULL: /etc/greengrass/config.yaml */
    const char *lite_config_dir; /* --lite-config-dir DIR; NULL: config.d beside lite_config */
    const char *run_as;          /* --run-as USER[:GROUP]; NULL: the owner of work_dir */
    const char *thing_env;       /* AWS_IOT_THING_NAME, NULL if unset or empty */
    const char *ca_env;          /* GG_ROOT_CA_PATH, NULL if unset or empty */
    bool help;
} greengrass_opts;

/* Reads the command's arguments (argv[0] is "greengrass-setup") and the two variables from envp.
 * ER_CONFIG with a message naming the option on a bad or missing one. */
er_rc greengrass_parse_args(int argc, char **argv, char **envp, greengrass_opts *o, er_err *err);
void greengrass_usage(FILE *out);

/* Does the job; writes what it found, one line per value with its origin, to out. ER_CONFIG
 * when the nucleus configuration lacks something or holds what cannot be used (a PKCS#11 key),
 * ER_IO when a file cannot be read or written; err is one line saying which and why. */
er_rc greengrass_setup(const greengrass_opts *o, FILE *out, er_err *err);

#endif
