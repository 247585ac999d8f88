/* config_print.c - the configuration as people read it: --print-config (the effective values as
 * a JSON object, secrets masked) and --help (usage and one line per setting of the table, then
 * the ignored seed keys). Writes to the FILE * it is given; owns nothing past a call. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

/* One setting's effective value as JSON (NULL if out of memory). */
static cJSON *value_json(const config *c, const cfg_opt *o)
{
    char text[64];
    switch (o->type) {
    case CFG_OT_STRING: {
        const char *s = *(char *const *)cfg_cfield(c, o);
        if (!s) return cJSON_CreateNull();
        return cJSON_CreateString((o->flags & CFG_OF_SECRET) ? "***" : s);
    }
    case CFG_OT_INT:
    case CFG_OT_SIZE:
        return cJSON_CreateNumber((double)cfg_load_int(c, o));
    case CFG_OT_DURATION:
        if (o->unit_ms == 1) return cJSON_CreateNumber((double)cfg_load_int(c, o));
        /* keep the text re-loadable: a plain number would be read back in seconds */
        cfg_format_duration(cfg_load_int(c, o), text, sizeof text);
        return cJSON_CreateString(text);
    case CFG_OT_BOOL: {
        bool b;
        memcpy(&b, cfg_cfield(c, o), sizeof b);
        return cJSON_CreateBool(b);
    }
    case CFG_OT_DOUBLE: {
        double d;
        memcpy(&d, cfg_cfield(c, o), sizeof d);
        return cJSON_CreateNumber(d);
    }
    case CFG_OT_ENUM:
        cfg_choice_name(o->choices, (int)(cfg_load_int(c, o) - o->base), text, sizeof text);
        return cJSON_CreateString(text);
    case CFG_OT_TOKENS: {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; arr && i < c->n_tokens; i++) {
            cJSON *t = cJSON_CreateObject();
            cfg_choice_name(CFG_ROLE_NAMES, (int)c->tokens[i].role - CONFIG_ROLE_READ, text,
                            sizeof text);
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
    case CFG_OT_SOURCES:
        return cJSON_Parse(c->sources_json ? c->sources_json : "[]");
    case CFG_OT_IGNORED:
        break;
    }
    return NULL;
}

void config_print(const config *c, FILE *out)
{
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    for (size_t i = 0; root && i < cfg_n_opts; i++) {
        if (cfg_opts[i].type == CFG_OT_IGNORED) continue;
        cJSON *v = value_json(c, &cfg_opts[i]);
        if (!v || !cJSON_AddItemToObject(root, cfg_opts[i].name, v)) {
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

static const char *metavar(const cfg_opt *o)
{
    switch (o->type) {
    case CFG_OT_STRING:
        return "TEXT";
    case CFG_OT_INT:
        return "N";
    case CFG_OT_BOOL:
        return "[BOOL]";
    case CFG_OT_DOUBLE:
        return "NUM";
    case CFG_OT_ENUM:
        return o->choices;
    case CFG_OT_SIZE:
        return "BYTES";
    case CFG_OT_DURATION:
        return o->unit_ms == 1 ? "MS" : "DURATION";
    case CFG_OT_TOKENS:
    case CFG_OT_SOURCES:
        return "JSON";
    case CFG_OT_IGNORED:
        break;
    }
    return "";
}

/* "http_port" -> "HTTP_PORT", the environment's spelling. */
static void upper_name(const char *name, char *out, size_t cap)
{
    size_t i = 0;
    for (; name[i] && i + 1 < cap; i++)
        out[i] = (char)toupper((unsigned char)name[i]);
    out[i] = '\0';
}

void config_usage(FILE *out)
{
    fprintf(out,
            "usage: ei-relay [run|token|export|import] [--config FILE] [--dir DIR]\n"
            "                [--print-config] [--help] [--version] [--SETTING VALUE]...\n"
            "       ei-relay greengrass-setup --work-dir DIR [...] (see its --help)\n"
            "\n"
            "Commands: run (default) serves; token prints the admin token (the one the service\n"
            "uses with these settings; generated next to the database if none is configured);\n"
            "export / import --dir DIR write / read <guid>.json + <guid>.img pairs;\n"
            "greengrass-setup, run as root by a Greengrass component's install step, writes the\n"
            "greengrass_file the relay reads its IoT Core identity from.\n"
            "\n"
            "Settings come from defaults < the JSON file of --config < EI_RELAY_PARAMETERS <\n"
            "environment EI_RELAY_* < flags (--name VALUE or --name=VALUE); then greengrass_file\n"
            "fills the mqtt_* settings none of them set. The file and EI_RELAY_PARAMETERS are\n"
            "JSON objects of settings, which may also sit under \"Parameters\" (the Edge Impulse\n"
            "recipes' shape; the object's own keys win). Booleans: true|false, yes|no, on|off,\n"
            "1|0. Numbers may be strings (\"5\", \"10.0\").\n"
            "Sizes: bytes, or a number with K, M, G, T (K = KB = KiB = 1024). Durations: a\n"
            "number with ms, s, m, h or d; a plain number is milliseconds for *_ms settings.\n"
            "\"__none__\" resets a setting to its default (unset).\n"
            "Exit codes: 0 stopped, 2 bad configuration (one line names the setting), 75 a\n"
            "restart command, 1 any other failure.\n\n");
    for (size_t i = 0; i < cfg_n_opts; i++) {
        const cfg_opt *o = &cfg_opts[i];
        if (o->type == CFG_OT_IGNORED) continue;
        char kebab[CFG_NAME_MAX], upper[CFG_NAME_MAX], flag[2 * CFG_NAME_MAX],
            env[CFG_NAME_MAX + 16];
        char range[96] = "";
        cfg_kebab_name(o->name, kebab, sizeof kebab);
        upper_name(o->name, upper, sizeof upper);
        snprintf(flag, sizeof flag, "--%s %s", kebab, metavar(o));
        snprintf(env, sizeof env, "EI_RELAY_%s", upper);
        const char *unit = o->type == CFG_OT_SIZE       ? " bytes"
                           : o->type == CFG_OT_DURATION ? " ms"
                                                        : "";
        bool ranged = o->type == CFG_OT_INT || o->type == CFG_OT_SIZE ||
                      o->type == CFG_OT_DURATION || o->type == CFG_OT_DOUBLE;
        if (ranged && o->max == INT64_MAX)
            snprintf(range, sizeof range, " [>= %lld%s]", (long long)o->min, unit);
        else if (ranged)
            snprintf(range, sizeof range, " [%lld..%lld%s]", (long long)o->min, (long long)o->max,
                     unit);
        fprintf(out, "  %-38s %-40s (default %s)  %s%s\n", flag, env, o->def ? o->def : "unset",
                o->help, range);
    }
    fprintf(out, "\nAccepted for compatibility with the Edge Impulse recipes and ignored:\n ");
    for (size_t i = 0; i < cfg_n_opts; i++)
        if (cfg_opts[i].type == CFG_OT_IGNORED) fprintf(out, " %s", cfg_opts[i].name);
    fprintf(out, "\n");
}
