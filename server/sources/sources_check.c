/* sources_check.c - the one validation of the `sources` setting (sources.h): the entries (a
 * JSON array of objects with a unique name and a known kind), then each kind's own settings
 * through its row's validate. Messages name the entry by index ("sources[1].kind") or, for a
 * kind's settings, by name ("sources \"cam\".url"). Pure: opens and starts nothing. */
#include "sources/sources_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "a|b|c": the kinds' names sorted, so the message does not depend on the table's order. */
static void kind_names(char *out, size_t cap)
{
    const char *prev = "";
    size_t len = 0;
    out[0] = '\0';
    for (size_t n = 0; n < sources__n_kinds; n++) {
        const char *next = NULL; /* the smallest name after prev */
        for (size_t i = 0; i < sources__n_kinds; i++) {
            const char *k = sources__kinds[i]->name;
            if (strcmp(k, prev) > 0 && (!next || strcmp(k, next) < 0)) next = k;
        }
        int w = snprintf(out + len, cap - len, "%s%s", n ? "|" : "", next);
        if (w < 0 || (size_t)w >= cap - len) return;
        len += (size_t)w;
        prev = next;
    }
}

/* Entry i of arr: an object with a good name not used by an earlier entry, and a known kind. */
static er_rc check_entry(const cJSON *arr, const cJSON *item, size_t i, er_err *err)
{
    if (!cJSON_IsObject(item))
        return er_fail(err, ER_CONFIG, "sources[%zu]: expected an object {\"name\", \"kind\"}", i);
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "name"));
    if (!name || !name[0])
        return er_fail(err, ER_CONFIG, "sources[%zu].name: expected a non-empty string", i);
    if (strlen(name) >= SOURCES_NAME_MAX)
        return er_fail(err, ER_CONFIG, "sources[%zu].name: 1 to %d characters", i,
                       SOURCES_NAME_MAX - 1);
    size_t j = 0;
    const cJSON *other;
    cJSON_ArrayForEach(other, arr)
    {
        if (j == i) break;
        const char *used = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(other, "name"));
        if (strcmp(used, name) == 0)
            return er_fail(err, ER_CONFIG,
                           "sources[%zu].name: \"%.40s\" is already used by "
                           "sources[%zu]",
                           i, name, j);
        j++;
    }
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "kind"));
    if (!sources__kind(kind)) {
        char kinds[128];
        kind_names(kinds, sizeof kinds);
        return er_fail(err, ER_CONFIG, "sources[%zu].kind: \"%.40s\" is not one of %s", i,
                       kind ? kind : "(missing)", kinds);
    }
    return ER_OK;
}

/* Parses json and checks every entry; with settings, then each kind's own settings. */
static er_rc check(const char *json, bool settings, er_err *err)
{
    er_rc rc = ER_OK;
    cJSON *arr = cJSON_Parse(json ? json : "[]");
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
        if ((rc = check_entry(arr, item, i++, err))) goto fail;
    }
    cJSON_ArrayForEach(item, arr)
    {
        if (!settings) break;
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "name"));
        const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "kind"));
        if ((rc = sources__kind(kind)->validate(item, name, err))) goto fail;
    }
fail:
    cJSON_Delete(arr);
    return rc;
}

er_rc sources__known_settings(const cJSON *conf, const char *name, const char *kind,
                              const char *const *known, size_t n, er_err *err)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, conf)
    {
        bool ok = strcmp(it->string, "name") == 0 || strcmp(it->string, "kind") == 0;
        for (size_t i = 0; i < n && !ok; i++)
            ok = strcmp(it->string, known[i]) == 0;
        if (ok) continue;
        char list[256];
        size_t len = 0;
        list[0] = '\0';
        for (size_t i = 0; i < n; i++) {
            int w = snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", known[i]);
            if (w < 0 || (size_t)w >= sizeof list - len) break;
            len += (size_t)w;
        }
        return er_fail(err, ER_CONFIG,
                       "sources \"%.40s\": unknown setting \"%.40s\" for kind %s (%s)", name,
                       it->string, kind, list);
    }
    return ER_OK;
}

er_rc sources_check_entries(const char *json, er_err *err)
{
    return check(json, false, err);
}

er_rc sources_validate(const char *json, er_err *err)
{
    return check(json, true, err);
}

/* The recipes' gst_args: every ':' stands for a space (Greengrass configuration values cannot
 * carry the spaces of a pipeline through the run script's command line). */
static char *gst_args_pipeline(const char *gst_args)
{
    char *p = strdup(gst_args);
    for (char *c = p; c && *c; c++)
        if (*c == ':') *c = ' ';
    return p;
}

/* Appends {"name": name, "kind": kind} to arr for the setting key (named in err when `sources`
 * already has a source called name); *entry is the new object, owned by arr. */
static er_rc add_entry(cJSON *arr, const char *key, const char *name, const char *kind,
                       cJSON **entry, er_err *err)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "name"));
        if (n && strcmp(n, name) == 0)
            return er_fail(err, ER_CONFIG,
                           "%s: runs the %s source \"%s\", but `sources` already has a source "
                           "of that name",
                           key, kind, name);
    }
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddItemToArray(arr, e)) {
        cJSON_Delete(e);
        return ER_NOMEM;
    }
    *entry = e;
    if (!cJSON_AddStringToObject(e, "name", name) || !cJSON_AddStringToObject(e, "kind", kind))
        return ER_NOMEM;
    return ER_OK;
}

/* serial_impulse's values, in the order of config_impulse (its choices in config_table.c). */
static const char *const impulse_names[] = {
    [CONFIG_IMPULSE_NORMAL] = "normal",
    [CONFIG_IMPULSE_CONTINUOUS] = "continuous",
    [CONFIG_IMPULSE_DEBUG] = "debug",
    [CONFIG_IMPULSE_OFF] = "off",
};

er_rc sources_effective(const config *cfg, char **out, er_err *err)
{
    er_rc rc = ER_NOMEM;
    char *pipeline = NULL;
    cJSON *arr = cJSON_Parse(cfg->sources_json ? cfg->sources_json : "[]"), *e = NULL;
    *out = NULL;
    if (!cJSON_IsArray(arr)) {
        rc = er_fail(err, ER_CONFIG, "sources: expected a JSON array of {\"name\", \"kind\", ...}");
        goto fail;
    }
    const char *model = cfg->ei_local_model_file;
    if (model && model[0]) {
        if ((rc = add_entry(arr, "ei_local_model_file", SOURCES_MODEL_SOURCE, "eim", &e, err)))
            goto fail;
        rc = ER_NOMEM;
        if (!cJSON_AddStringToObject(e, "model_file", model)) goto fail;
        if (cfg->gst_args && cfg->gst_args[0]) {
            if (!(pipeline = gst_args_pipeline(cfg->gst_args)) ||
                !cJSON_AddStringToObject(e, "gst_launch_args", pipeline))
                goto fail;
        }
    }
    const char *tty = cfg->serial_device;
    if (tty && tty[0]) {
        if ((rc = add_entry(arr, "serial_device", SOURCES_SERIAL_SOURCE, "serial", &e, err)))
            goto fail;
        rc = ER_NOMEM;
        size_t im = (size_t)cfg->serial_impulse;
        if (!cJSON_AddStringToObject(e, "device", tty) ||
            !cJSON_AddNumberToObject(e, "baud", cfg->serial_baud) ||
            !cJSON_AddStringToObject(
                e, "impulse",
                im < sizeof impulse_names / sizeof impulse_names[0] ? impulse_names[im] : "normal"))
            goto fail;
    }
    rc = ER_NOMEM;
    if (!(*out = cJSON_PrintUnformatted(arr))) goto fail;
    rc = ER_OK;
fail:
    free(pipeline);
    cJSON_Delete(arr);
    return rc;
}

er_rc sources_check_config(const config *cfg, er_err *err)
{
    char *json = NULL;
    er_rc rc = sources_effective(cfg, &json, err);
    if (!rc) rc = sources_validate(json, err);
    free(json);
    return rc;
}
