/* greengrass_yaml.c - the pure part of greengrass-setup (greengrass.h): a nucleus configuration
 * as YAML text -> the values ei-relay looks for. libyaml loads each document into a node tree
 * (aliases become references to the same node, so nothing is expanded), and each wanted key
 * path is followed from the root mapping by exact key names; a name may hold dots
 * ("aws.greengrass.Nucleus"), so paths are lists of names, not dotted strings. No file access:
 * the caller reads the files. Owns nothing past a call but the values it stores in the
 * greengrass_found it is given. */
#include "greengrass/greengrass.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YAML_MAX (1024 * 1024) /* a nucleus configuration is a few KiB */
#define VALUE_MAX 4096         /* paths, host names, a thing name */
#define PATH_DEPTH 6

typedef struct key_path {
    const char *dotted; /* what logs and greengrass.json show */
    const char *names[PATH_DEPTH + 1];
} key_path;

static const key_path paths[GREENGRASS_KEY_COUNT] = {
    [GREENGRASS_ENDPOINT] = {"services.aws.greengrass.Nucleus.configuration.iotDataEndpoint",
                             {"services", "aws.greengrass.Nucleus", "configuration",
                              "iotDataEndpoint"}},
    [GREENGRASS_ENDPOINT_LITE] = {"services.aws.greengrass.NucleusLite.configuration."
                                  "iotDataEndpoint",
                                  {"services", "aws.greengrass.NucleusLite", "configuration",
                                   "iotDataEndpoint"}},
    [GREENGRASS_MQTT_PORT] = {"services.aws.greengrass.Nucleus.configuration.mqtt.port",
                              {"services", "aws.greengrass.Nucleus", "configuration", "mqtt",
                               "port"}},
    [GREENGRASS_THING] = {"system.thingName", {"system", "thingName"}},
    [GREENGRASS_CA] = {"system.rootCaPath", {"system", "rootCaPath"}},
    [GREENGRASS_CERT] = {"system.certificateFilePath", {"system", "certificateFilePath"}},
    [GREENGRASS_KEY] = {"system.privateKeyPath", {"system", "privateKeyPath"}},
    [GREENGRASS_ROOT] = {"system.rootpath", {"system", "rootpath"}},
    [GREENGRASS_ROOT_LITE] = {"system.rootPath", {"system", "rootPath"}},
};

const char *greengrass_key_name(greengrass_key k)
{
    return k >= 0 && k < GREENGRASS_KEY_COUNT ? paths[k].dotted : "?";
}

/* The value of name in mapping m, or NULL; with a repeated key the last one counts. */
static yaml_node_t *member(yaml_document_t *d, yaml_node_t *m, const char *name)
{
    yaml_node_t *found = NULL;
    if (!m || m->type != YAML_MAPPING_NODE) return NULL;
    size_t n = strlen(name);
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == n &&
            memcmp(k->data.scalar.value, name, n) == 0)
            found = yaml_document_get_node(d, p->value);
    }
    return found;
}

/* A plain ~, null or empty scalar is YAML's null: no value. */
static bool is_null(const yaml_node_t *s)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    if (s->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return s->data.scalar.length == 0;
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        if (s->data.scalar.length == strlen(nulls[i]) &&
            memcmp(s->data.scalar.value, nulls[i], s->data.scalar.length) == 0)
            return true;
    return false;
}

/* Stores every wanted key the document holds. */
static er_rc take(greengrass_found *f, yaml_document_t *d, const char *origin, er_err *err)
{
    yaml_node_t *root = yaml_document_get_root_node(d);
    for (int k = 0; k < GREENGRASS_KEY_COUNT; k++) {
        yaml_node_t *n = root;
        for (int i = 0; n && paths[k].names[i]; i++)
            n = member(d, n, paths[k].names[i]);
        if (!n || n->type != YAML_SCALAR_NODE || is_null(n)) continue;
        if (n->data.scalar.length > VALUE_MAX)
            return er_fail(err, ER_TOOBIG, "%s: %s is longer than %d bytes", origin,
                           paths[k].dotted, VALUE_MAX);
        char *v = strndup((const char *)n->data.scalar.value, n->data.scalar.length);
        char *o = strdup(origin);
        if (!v || !o) {
            free(v);
            free(o);
            return er_fail(err, ER_NOMEM, "out of memory");
        }
        free(f->value[k]);
        free(f->origin[k]);
        f->value[k] = v;
        f->origin[k] = o;
    }
    return ER_OK;
}

er_rc greengrass_scan(greengrass_found *f, const char *yaml, size_t len, const char *origin,
                      er_err *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    bool have_doc = false;
    er_rc rc = ER_OK;
    if (len > YAML_MAX) return er_fail(err, ER_TOOBIG, "%s is larger than 1 MiB", origin);
    if (!yaml_parser_initialize(&parser)) return er_fail(err, ER_NOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    for (;;) {
        if (!yaml_parser_load(&parser, &doc)) {
            if (parser.error == YAML_MEMORY_ERROR) {
                rc = er_fail(err, ER_NOMEM, "out of memory");
                goto fail;
            }
            rc = er_fail(err, ER_INVALID, "%s is not YAML: %s at line %zu, column %zu", origin,
                         parser.problem ? parser.problem : "error", parser.problem_mark.line + 1,
                         parser.problem_mark.column + 1);
            goto fail;
        }
        have_doc = true;
        if (!yaml_document_get_root_node(&doc)) break; /* the end of the stream */
        if ((rc = take(f, &doc, origin, err))) goto fail;
        yaml_document_delete(&doc);
        have_doc = false;
    }
fail:
    if (have_doc) yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

void greengrass_found_free(greengrass_found *f)
{
    if (!f) return;
    for (int k = 0; k < GREENGRASS_KEY_COUNT; k++) {
        free(f->value[k]);
        free(f->origin[k]);
    }
    memset(f, 0, sizeof *f);
}
