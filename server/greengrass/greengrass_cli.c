/* greengrass_cli.c - the greengrass-setup command line (greengrass.h): its options, as a table,
 * and its usage text. The options borrow argv and envp. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "greengrass/greengrass.h"

#define NUCLEI "java|lite|auto"
#define NUCLEUS_FIELD ((size_t)-1) /* --nucleus: parsed, not stored as text */

typedef struct option {
    const char *flag;
    size_t off; /* the const char * field of greengrass_opts it sets, or NUCLEUS_FIELD */
    const char *arg, *help;
} option;

static const option options[] = {
    {"--work-dir", offsetof(greengrass_opts, work_dir), "DIR",
     "the component's work directory ({work:path}): the copies and greengrass.json go there"},
    {"--nucleus", NUCLEUS_FIELD, NUCLEI,
     "which nucleus's configuration to read (default auto: Java when "
     "ROOT/config/effectiveConfig.yaml exists, else lite)"},
    {"--java-root", offsetof(greengrass_opts, java_root), "ROOT",
     "the Java nucleus's root ({kernel:rootPath}; default /greengrass/v2)"},
    {"--lite-config", offsetof(greengrass_opts, lite_config), "FILE",
     "nucleus lite's configuration (default /etc/greengrass/config.yaml)"},
    {"--lite-config-dir", offsetof(greengrass_opts, lite_config_dir), "DIR",
     "nucleus lite's drop-in directory, *.yaml in lexical order (default config.d beside "
     "FILE)"},
    {"--run-as", offsetof(greengrass_opts, run_as), "USER[:GROUP]",
     "who runs the relay and gets the files (default: the owner of DIR)"},
};
#define N_OPTIONS (sizeof options / sizeof options[0])

void greengrass_usage(FILE *out)
{
    fprintf(out, "usage: ei-relay greengrass-setup --work-dir DIR [--nucleus " NUCLEI "]\n"
                 "           [--java-root ROOT] [--lite-config FILE] [--lite-config-dir DIR]\n"
                 "           [--run-as USER[:GROUP]]\n\n"
                 "Run as root by a Greengrass component's install step: finds the IoT data\n"
                 "endpoint, thing name, CA, certificate and key in the nucleus configuration\n"
                 "(AWS_IOT_THING_NAME and GG_ROOT_CA_PATH win), copies the key (and what the\n"
                 "run-as user cannot read) into DIR with mode 0600 for that user, and writes\n"
                 "DIR/greengrass.json for the relay's greengrass_file setting. Idempotent.\n"
                 "Exit 0 on success, 2 when the configuration lacks something or an option is\n"
                 "wrong, 1 when a file cannot be read or written.\n\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "%s %s", options[i].flag, options[i].arg);
        fprintf(out, "  %-32s %s\n", flag, options[i].help);
    }
}

/* The value of an environment variable in envp, NULL if unset or empty. */
static const char *env_value(char **envp, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; envp && envp[i]; i++)
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            return envp[i][n + 1] ? envp[i] + n + 1 : NULL;
    return NULL;
}

er_rc greengrass_parse_args(int argc, char **argv, char **envp, greengrass_opts *o, er_err *err)
{
    memset(o, 0, sizeof *o);
    o->thing_env = env_value(envp, "AWS_IOT_THING_NAME");
    o->ca_env = env_value(envp, "GG_ROOT_CA_PATH");
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            o->help = true;
            return ER_OK;
        }
        /* --flag VALUE or --flag=VALUE */
        const char *eq = strchr(arg, '='), *value = eq ? eq + 1 : NULL;
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        const option *opt = NULL;
        for (size_t k = 0; k < N_OPTIONS && !opt; k++)
            if (strlen(options[k].flag) == len && strncmp(options[k].flag, arg, len) == 0)
                opt = &options[k];
        if (!opt) return er_fail(err, ER_CONFIG, "unknown option \"%.60s\"", arg);
        if (!value && i + 1 < argc) value = argv[++i];
        if (!value || !*value) return er_fail(err, ER_CONFIG, "%s needs a value", opt->flag);
        if (opt->off != NUCLEUS_FIELD) {
            *(const char **)((char *)o + opt->off) = value;
            continue;
        }
        int nucleus = strcmp(value, "java") == 0   ? GREENGRASS_NUCLEUS_JAVA
                      : strcmp(value, "lite") == 0 ? GREENGRASS_NUCLEUS_LITE
                      : strcmp(value, "auto") == 0 ? GREENGRASS_NUCLEUS_AUTO
                                                   : -1;
        if (nucleus < 0)
            return er_fail(err, ER_CONFIG, "--nucleus: \"%.40s\" is not one of " NUCLEI, value);
        o->nucleus = (greengrass_nucleus)nucleus;
    }
    if (!o->work_dir) return er_fail(err, ER_CONFIG, "--work-dir DIR is required");
    return ER_OK;
}
