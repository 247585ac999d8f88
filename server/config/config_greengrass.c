/* config_greengrass.c - greengrass_file: the JSON file `ei-relay greengrass-setup` writes under
 * AWS IoT Greengrass, read once every other source of values is applied:
 *   {"mqtt_endpoint": {"value": "...", "from": "<nucleus file>: <key path>"}, "mqtt_cert": ...}
 * (mqtt_endpoint, mqtt_port, mqtt_cert, mqtt_key, mqtt_ca, mqtt_client_id; mqtt_port only when
 * the nucleus sets its own)
 * Each value fills its setting only when no file, variable or flag gave one (an explicit setting
 * always wins), and the loader keeps one note per value, where it came from or that the explicit
 * setting won, for config_report to log once. A missing file is not an error: the service
 * starts without those values (without an endpoint, without forwarding) and says why.
 * Owned by the config module; the notes are the config's (freed by config_free). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "core/util.h"

#define GG_FILE_MAX (64 * 1024) /* five short values; anything bigger is not ours */
/* The settings greengrass_file may fill, in the order its notes are logged. */
static const char *const gg_settings[] = {"mqtt_endpoint", "mqtt_port", "mqtt_cert",
                                          "mqtt_key",      "mqtt_ca",   "mqtt_client_id"};
#define GG_N (sizeof gg_settings / sizeof gg_settings[0])

/* The value and origin of one entry: {"value": "...", "from": "..."} (borrowed from e). */
static er_rc entry_of(const cJSON *e, const char **value, const char **from, er_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "value");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(e, "from");
    if (!cJSON_IsObject(e) || !cJSON_IsString(v) || (f && !cJSON_IsString(f)))
        return er_fail(err, ER_CONFIG, "%s: expected {\"value\": \"...\", \"from\": \"...\"}",
                       e->string);
    *value = v->valuestring;
    *from = f ? f->valuestring : "";
    return ER_OK;
}

/* Fills the settings of root (a parsed greengrass_file) and writes the notes into b. */
static er_rc fill(cfg_loader *ld, const cJSON *root, util_buf *b, er_err *err)
{
    const char *path = ld->c->greengrass_file;
    const cJSON *e = NULL;
    if (!cJSON_IsObject(root)) return er_fail(err, ER_CONFIG, "expected a JSON object");
    cJSON_ArrayForEach(e, root)
    {
        size_t i = 0;
        while (i < GG_N && strcmp(gg_settings[i], e->string) != 0)
            i++;
        if (i == GG_N)
            return er_fail(err, ER_CONFIG,
                           "unknown key \"%.60s\" (mqtt_endpoint, mqtt_port, mqtt_cert, mqtt_key, "
                           "mqtt_ca, mqtt_client_id)",
                           e->string);
    }
    for (size_t i = 0; i < GG_N; i++) {
        const char *value = NULL, *from = NULL;
        const cfg_opt *o = cfg_find_opt(gg_settings[i]);
        if (!(e = cJSON_GetObjectItemCaseSensitive(root, gg_settings[i]))) continue;
        er_rc rc = entry_of(e, &value, &from, err);
        if (rc) return rc;
        if (ld->explicit_set[o - cfg_opts]) {
            rc = util_buf_printf(b, "%s: the explicit setting wins over greengrass_file's %s%s%s\n",
                                 o->name, value, *from ? " from " : "", from);
        } else {
            if ((rc = cfg_set_text(ld, o, value, err))) return rc;
            rc = util_buf_printf(b, "%s = %s (greengrass_file %s%s%s)\n", o->name, value, path,
                                 *from ? ": from " : "", from);
        }
        if (rc) return er_fail(err, rc, "out of memory");
    }
    return ER_OK;
}

er_rc cfg_apply_greengrass(cfg_loader *ld, er_err *err)
{
    config *c = ld->c;
    util_buf text = {0}, notes = {0};
    cJSON *root = NULL;
    if (!c->greengrass_file) return ER_OK;
    er_rc rc = util_read_file(c->greengrass_file, GG_FILE_MAX, "greengrass_file", &text, err);
    if (rc == ER_NOTFOUND) {
        /* under Greengrass the install step writes it; until then, or outside Greengrass,
         * start with what the other sources give */
        rc = util_buf_printf(&notes,
                             "greengrass_file %s does not exist (the component's install step "
                             "writes it with 'ei-relay greengrass-setup'): %s",
                             c->greengrass_file,
                             c->mqtt_endpoint ? "only the explicit mqtt_* settings apply"
                                              : "forwarding is off");
        if (rc) er_fail(err, rc, "out of memory");
        c->greengrass_warning = notes.data;
        notes.data = NULL;
        goto done;
    }
    if (rc) goto done; /* err names the file and why it cannot be read */
    if (!(root = cJSON_ParseWithLength(text.data, text.len)))
        rc = er_fail(err, ER_CONFIG, "not valid JSON");
    if (!rc) rc = fill(ld, root, &notes, err);
    if (rc) {
        cfg_err_origin(err, "in greengrass_file ", c->greengrass_file);
        goto done;
    }
    if (notes.len) notes.data[notes.len - 1] = '\0'; /* the last '\n' */
    c->greengrass_notes = notes.data;
    notes.data = NULL;
done:
    cJSON_Delete(root);
    util_buf_free(&text);
    util_buf_free(&notes);
    /* a file that exists but cannot be used is a configuration error, whatever the cause */
    return rc && rc != ER_NOMEM ? ER_CONFIG : rc;
}
