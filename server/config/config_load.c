/* config_load.c - config_load and config_load_json: the sources of values in their order of
 * precedence (defaults < the JSON file of --config < EI_RELAY_PARAMETERS < the other EI_RELAY_*
 * variables < flags, a JSON object's "Parameters" below its own keys), each fed through the one
 * setter (config_value.c), then greengrass_file (config_greengrass.c) and the cross-setting
 * checks; and config_free. Owned by the config module; the command line's words are borrowed
 * for config_cli. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "core/log.h"

#define CONFIG_FILE_MAX (1024 * 1024) /* a settings file is small; refuse anything bigger */
#define COMMANDS "run|token|export|import"

void cfg_err_origin(er_err *err, const char *what, const char *where)
{
    if (!err || !where) return;
    size_t n = strlen(err->msg);
    if (n + 1 < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - n, " (%s%s)", what, where);
}

static er_rc unknown_setting(er_err *err, const char *key)
{
    const cfg_opt *near = cfg_nearest_opt(key);
    if (near)
        return er_fail(err, ER_CONFIG, "unknown setting \"%.60s\" (did you mean \"%s\"?)", key,
                       near->name);
    return er_fail(err, ER_CONFIG, "unknown setting \"%.60s\"", key);
}

/* ---- sources of values --------------------------------------------------------------------- */

static er_rc apply_defaults(cfg_loader *ld, er_err *err)
{
    for (size_t i = 0; i < cfg_n_opts; i++) {
        er_rc rc = cfg_set_default(ld, &cfg_opts[i], err);
        if (rc) return rc;
    }
    return ER_OK;
}

/* Applies the members of a JSON object, each a setting; in_params: obj is a "Parameters"
 * object (which holds no other). A top-level "Parameters" is the caller's. */
static er_rc apply_members(cfg_loader *ld, const cJSON *obj, bool in_params, er_err *err)
{
    bool seen[CFG_OPTS_MAX] = {false};
    const cJSON *kv;
    cJSON_ArrayForEach(kv, obj)
    {
        if (!in_params && strcmp(kv->string, CFG_PARAMETERS) == 0) continue;
        const cfg_opt *o = cfg_find_opt(kv->string);
        if (!o) return unknown_setting(err, kv->string);
        if (seen[o - cfg_opts]) return er_fail(err, ER_CONFIG, "%s: set twice", o->name);
        seen[o - cfg_opts] = true;
        er_rc rc = cfg_set_json(ld, o, kv, err);
        if (rc) return rc;
    }
    return ER_OK;
}

/* Applies a JSON object text (not necessarily NUL-terminated): its "Parameters" object first,
 * then its own keys, which win. what and origin ("in ", the file) name it in errors. */
static er_rc apply_json_text(cfg_loader *ld, const char *json, size_t len, const char *what,
                             const char *origin, er_err *err)
{
    char *buf = NULL;
    cJSON *root = NULL;
    er_rc rc = ER_OK;
    const char *part = NULL; /* "Parameters" while applying it */
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
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, CFG_PARAMETERS);
    if (params) {
        if (!cJSON_IsObject(params)) {
            rc = er_fail(err, ER_CONFIG, "Parameters: expected a JSON object of settings");
            goto fail;
        }
        part = CFG_PARAMETERS;
        if ((rc = apply_members(ld, params, true, err))) goto fail;
        part = NULL;
    }
    rc = apply_members(ld, root, false, err);
fail:
    if (rc && (origin || part)) {
        char where[200];
        snprintf(where, sizeof where, "%.150s%s%s", origin ? origin : "",
                 origin && part ? ", " : "", part ? "under Parameters" : "");
        cfg_err_origin(err, origin ? what : "", where);
    }
    cJSON_Delete(root);
    free(buf);
    return rc;
}

static er_rc apply_file(cfg_loader *ld, const char *path, er_err *err)
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
    rc = apply_json_text(ld, buf, len, "in ", path, err);
fail:
    if (f) fclose(f);
    free(buf);
    return rc;
}

#define ENV_PREFIX "EI_RELAY_"
#define ENV_PARAMETERS ENV_PREFIX "PARAMETERS="

/* EI_RELAY_PARAMETERS: a JSON object of settings (a Greengrass recipe's
 * "{configuration:/Parameters}"), below the other variables; empty or "__none__" is none. */
static er_rc apply_env_parameters(cfg_loader *ld, char **envp, er_err *err)
{
    for (size_t i = 0; envp && envp[i]; i++) {
        if (strncmp(envp[i], ENV_PARAMETERS, sizeof ENV_PARAMETERS - 1) != 0) continue;
        const char *v = envp[i] + sizeof ENV_PARAMETERS - 1;
        if (!*v || strcmp(v, CFG_NONE_TEXT) == 0) continue;
        er_rc rc = apply_json_text(ld, v, strlen(v), "from ", "EI_RELAY_PARAMETERS", err);
        if (rc) return rc;
    }
    return ER_OK;
}

/* EI_RELAY_<UPPER_NAME>=value. Other EI_RELAY_* variables (e.g. a test harness's
 * EI_RELAY_BIN) share the prefix, so unknown ones are logged, not fatal. */
static er_rc apply_env(cfg_loader *ld, char **envp, er_err *err)
{
    static const char prefix[] = ENV_PREFIX;
    er_rc rc = apply_env_parameters(ld, envp, err);
    if (rc) return rc;
    for (size_t i = 0; envp && envp[i]; i++) {
        const char *e = envp[i];
        if (strncmp(e, prefix, sizeof prefix - 1) != 0) continue;
        if (strncmp(e, ENV_PARAMETERS, sizeof ENV_PARAMETERS - 1) == 0) continue;
        const char *key = e + sizeof prefix - 1, *eq = strchr(key, '=');
        if (!eq) continue;
        char name[CFG_NAME_MAX];
        size_t n = (size_t)(eq - key);
        const cfg_opt *o = NULL;
        if (n < sizeof name) {
            for (size_t k = 0; k < n; k++)
                name[k] = (char)tolower((unsigned char)key[k]);
            name[n] = '\0';
            o = cfg_find_opt(name);
        }
        if (!o) {
            log_warn("config", "ignoring unknown environment variable %.*s", (int)(eq - e), e);
            continue;
        }
        rc = cfg_set_text(ld, o, eq + 1, err);
        if (rc) {
            char var[CFG_NAME_MAX + sizeof prefix];
            snprintf(var, sizeof var, "%.*s", (int)(eq - e), e);
            cfg_err_origin(err, "from ", var);
            return rc;
        }
    }
    return ER_OK;
}

/* Walks argv. Pass 1 (apply false) fills cli and checks every flag exists; pass 2 applies
 * setting flags, after the file and the environment, so flags win. */
static er_rc parse_argv(cfg_loader *ld, int argc, char **argv, config_cli *cli, bool apply,
                        er_err *err)
{
    bool options_done = false, have_command = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options_done || arg[0] != '-' || !arg[1]) {
            if (have_command) return er_fail(err, ER_CONFIG, "unexpected argument \"%.60s\"", arg);
            if (cfg_choice_index(COMMANDS, arg) < 0)
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
        char name[CFG_NAME_MAX];
        if (flen >= sizeof name) return er_fail(err, ER_CONFIG, "unknown flag \"--%.60s\"", flag);
        for (size_t k = 0; k < flen; k++)
            name[k] = flag[k] == '-' ? '_' : flag[k];
        name[flen] = '\0';
        const cfg_opt *o = cfg_find_opt(name);
        bool takes_value = strcmp(name, "config") == 0 || strcmp(name, "dir") == 0 ||
                           (o && o->type != CFG_OT_BOOL);
        bool bare = strcmp(name, "print_config") == 0 || strcmp(name, "help") == 0 ||
                    strcmp(name, "version") == 0;
        if (!o && !takes_value && !bare) {
            const cfg_opt *near = cfg_nearest_opt(name);
            char kebab[CFG_NAME_MAX];
            if (!near) return er_fail(err, ER_CONFIG, "unknown flag \"--%.*s\"", (int)flen, flag);
            cfg_kebab_name(near->name, kebab, sizeof kebab);
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
        if (o && o->type == CFG_OT_BOOL && !value) {
            if (i + 1 < argc && cfg_choice_index(CFG_BOOL_WORDS, argv[i + 1]) >= 0)
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
            er_rc rc = cfg_set_text(ld, o, value, err);
            if (rc) {
                char where[CFG_NAME_MAX + 2];
                snprintf(where, sizeof where, "--%.*s", (int)flen, flag);
                cfg_err_origin(err, "from ", where);
                return rc;
            }
        }
    }
    return ER_OK;
}

/* Cross-setting checks and the list of ignored keys, once every source is applied. */
static er_rc finish(cfg_loader *ld, er_err *err)
{
    config *c = ld->c;
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, c->bind, addr) != 1 && inet_pton(AF_INET6, c->bind, addr) != 1)
        return er_fail(err, ER_CONFIG, "bind: \"%.60s\" is not an IP address (IPv4 or IPv6)",
                       c->bind);
    if (!c->tls_cert_file != !c->tls_key_file) /* one without the other: name the missing one */
        return er_fail(err, ER_CONFIG, "%s is set but %s is not: TLS needs both",
                       c->tls_cert_file ? "tls_cert_file" : "tls_key_file",
                       c->tls_cert_file ? "tls_key_file" : "tls_cert_file");
    if (c->http_port != 0 && c->http_port == c->ws_port)
        return er_fail(err, ER_CONFIG, "ws_port: %d is the same as http_port", c->ws_port);
    if (c->reconnect_min_ms > c->reconnect_max_ms)
        return er_fail(err, ER_CONFIG, "reconnect_max_ms: %lld is below reconnect_min_ms (%lld)",
                       (long long)c->reconnect_max_ms, (long long)c->reconnect_min_ms);
    return cfg_list_ignored(ld, err);
}

/* ---- public API ---------------------------------------------------------------------------- */

er_rc config_load_json(config *c, const char *json, size_t len, er_err *err)
{
    cfg_loader ld = {.c = c};
    er_rc rc;
    memset(c, 0, sizeof *c);
    if ((rc = apply_defaults(&ld, err))) goto fail;
    if ((rc = apply_json_text(&ld, json, len, "in ", NULL, err))) goto fail;
    if ((rc = finish(&ld, err))) goto fail;
    return ER_OK;
fail:
    config_free(c);
    return rc;
}

er_rc config_load(config *c, int argc, char **argv, char **envp, config_sources_check check_sources,
                  config_cli *cli, er_err *err)
{
    cfg_loader ld = {.c = c, .check_sources = check_sources};
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
        if ((rc = cfg_apply_greengrass(&ld, err))) goto fail;
    }
    c->cache_max_bytes_default = !ld.explicit_set[cfg_find_opt("cache_max_bytes") - cfg_opts];
    if ((rc = finish(&ld, err))) goto fail;
    return ER_OK;
fail:
    config_free(c);
    return rc;
}

void config_free(config *c)
{
    if (!c) return;
    for (size_t i = 0; i < cfg_n_opts; i++)
        if (cfg_opts[i].type == CFG_OT_STRING) free(*(char **)cfg_field(c, &cfg_opts[i]));
    cfg_free_tokens(c->tokens, c->n_tokens);
    free(c->sources_json);
    free(c->ignored_keys);
    free(c->greengrass_notes);
    free(c->greengrass_warning);
    memset(c, 0, sizeof *c);
}
