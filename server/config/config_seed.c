/* config_seed.c - compatibility with the Edge Impulse Greengrass recipes' seed keys: the file's
 * values are taken as strings or numbers alike (null = unset, as "__none__"), and the seed keys
 * ei-relay does not act on are accepted, listed and reported once in the log as ignored
 * (config_report, which also logs what greengrass_file gave). Owned by the config module.
 *
 * The seed keys themselves are rows of the table (config_table.c): those ei-relay acts on
 * (device_name ... s3_bucket) as ordinary settings, the others as CFG_OT_IGNORED rows, which
 * cfg_set_text marks in the loader's ignored_set (config_value.c) and this file lists. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "core/log.h"

/* The recipes give every value as a string ("5", "yes", "__none__"); a file written by hand uses
 * numbers, booleans and null. Every scalar becomes text, so both reach cfg_set_text alike. */
er_rc cfg_set_json(cfg_loader *ld, const cfg_opt *o, const cJSON *v, er_err *err)
{
    char num[64];
    if (cJSON_IsNull(v)) return cfg_set_text(ld, o, CFG_NONE_TEXT, err);
    if (cJSON_IsString(v)) return cfg_set_text(ld, o, v->valuestring, err);
    if (cJSON_IsBool(v)) return cfg_set_text(ld, o, cJSON_IsTrue(v) ? "true" : "false", err);
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        /* integral values print as integers so "5" and 5 parse alike */
        if (d == floor(d) && fabs(d) < 9.0e18)
            snprintf(num, sizeof num, "%lld", (long long)d);
        else
            snprintf(num, sizeof num, "%.17g", d);
        return cfg_set_text(ld, o, num, err);
    }
    if (o->type == CFG_OT_IGNORED) return cfg_set_text(ld, o, "", err);
    if (cJSON_IsArray(v) && (o->type == CFG_OT_TOKENS || o->type == CFG_OT_SOURCES))
        return cfg_set_array(ld, o, v, err);
    return er_fail(err, ER_CONFIG, "%s: expected a %s", o->name,
                   o->type == CFG_OT_TOKENS || o->type == CFG_OT_SOURCES ? "JSON array"
                                                                         : "string or number");
}

/* Run once every source is applied: the names are in table order, comma-separated. */
er_rc cfg_list_ignored(cfg_loader *ld, er_err *err)
{
    config *c = ld->c;
    size_t len = 0;
    for (size_t i = 0; i < cfg_n_opts; i++)
        if (ld->ignored_set[i]) len += strlen(cfg_opts[i].name) + 1;
    free(c->ignored_keys);
    c->ignored_keys = NULL;
    if (len == 0) return ER_OK;
    if (!(c->ignored_keys = malloc(len)))
        return er_fail(err, ER_NOMEM, "configuration: out of memory");
    char *p = c->ignored_keys;
    for (size_t i = 0; i < cfg_n_opts; i++) {
        if (!ld->ignored_set[i]) continue;
        if (p != c->ignored_keys) *p++ = ',';
        size_t n = strlen(cfg_opts[i].name);
        memcpy(p, cfg_opts[i].name, n);
        p += n;
    }
    *p = '\0';
    return ER_OK;
}

void config_report(const config *c)
{
    if (!c) return;
    if (c->ignored_keys)
        log_warn("config", "ignoring settings ei-relay does not act on: %s", c->ignored_keys);
    if (c->greengrass_warning) log_warn("config", "%s", c->greengrass_warning);
    /* one line per value greengrass_file gave */
    for (const char *p = c->greengrass_notes; p && *p;) {
        const char *nl = strchr(p, '\n');
        int n = nl ? (int)(nl - p) : (int)strlen(p);
        log_info("config", "%.*s", n, p);
        p += n + (nl ? 1 : 0);
    }
}
