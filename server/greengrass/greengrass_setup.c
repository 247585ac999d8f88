/* greengrass_setup.c - the greengrass-setup command (greengrass.h): picks the nucleus, scans its
 * configuration files (greengrass_yaml.c), resolves and checks each value, copies the key (and
 * what the run-as user cannot read) and writes greengrass.json (greengrass_files.c). Every
 * string it builds lives in one gg_run on the stack of greengrass_setup. */
#include "greengrass/greengrass_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JAVA_ROOT "/greengrass/v2"
#define JAVA_CONFIG "config/effectiveConfig.yaml"
#define LITE_CONFIG "/etc/greengrass/config.yaml"
#define LITE_ROOT "/var/lib/greengrass" /* lite's default system.rootPath */
#define YAML_FILE_MAX (1024 * 1024)
#define CLIENT_ID_SUFFIX "-ei-relay"
#define CLIENT_ID_MAX 128 /* IoT Core */
#define THING_MAX 128

/* What greengrass.json holds, in its order; mqtt_port only when the nucleus sets one. */
enum { OUT_ENDPOINT, OUT_PORT, OUT_CERT, OUT_KEY, OUT_CA, OUT_CLIENT_ID, OUT_COUNT };
static const char *const out_names[OUT_COUNT] = {"mqtt_endpoint", "mqtt_port", "mqtt_cert",
                                                 "mqtt_key",      "mqtt_ca",   "mqtt_client_id"};

/* The files a copy goes to in the work directory. */
typedef struct copy_spec {
    int out;
    greengrass_key key;
    const char *file;
    bool always; /* the key: nobody but root reads the nucleus's */
} copy_spec;
static const copy_spec copies[] = {
    {OUT_KEY, GREENGRASS_KEY, "greengrass-key.pem", true},
    {OUT_CERT, GREENGRASS_CERT, "greengrass-cert.pem", false},
    {OUT_CA, GREENGRASS_CA, "greengrass-ca.pem", false},
};

typedef struct gg_run {
    const greengrass_opts *o;
    bool java;
    char java_file[PATH_MAX], lite_file[PATH_MAX], lite_dir[PATH_MAX];
    char files[1024]; /* the files read, for messages */
    greengrass_found found;
    char root[PATH_MAX]; /* what relative paths are relative to */
    char work[PATH_MAX]; /* the work directory, absolute, no trailing '/' */
    char value[OUT_COUNT][PATH_MAX];
    char from[OUT_COUNT][PATH_MAX + 200];
    gg_user user;
} gg_run;

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- reading the nucleus configuration ----------------------------------------------------- */

static er_rc scan_file(gg_run *r, const char *path, er_err *err)
{
    util_buf text = {0};
    er_rc rc = util_read_file(path, YAML_FILE_MAX, "nucleus configuration", &text, err);
    if (rc == ER_OK) rc = greengrass_scan(&r->found, text.data, text.len, path, err);
    if (rc == ER_OK) {
        size_t n = strlen(r->files);
        snprintf(r->files + n, sizeof r->files - n, "%s%s", n ? ", " : "", path);
    }
    util_buf_free(&text);
    return rc == ER_NOTFOUND || rc == ER_INVALID || rc == ER_TOOBIG ? ER_CONFIG : rc;
}

static int yaml_name(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && ((n > 5 && strcmp(d->d_name + n - 5, ".yaml") == 0) ||
                                   (n > 4 && strcmp(d->d_name + n - 4, ".yml") == 0));
}

/* Lite: config.yaml, then each regular *.yaml file of config.d in lexical order. */
static er_rc scan_lite(gg_run *r, er_err *err)
{
    struct dirent **names = NULL;
    er_rc rc = ER_OK;
    if (exists(r->lite_file) && (rc = scan_file(r, r->lite_file, err))) return rc;
    int n = scandir(r->lite_dir, &names, yaml_name, alphasort);
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        struct stat st;
        if (!rc &&
            snprintf(path, sizeof path, "%s/%s", r->lite_dir, names[i]->d_name) <
                (int)sizeof path &&
            stat(path, &st) == 0 && S_ISREG(st.st_mode))
            rc = scan_file(r, path, err);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Picks the nucleus (greengrass.h: GREENGRASS_NUCLEUS_AUTO) and reads its configuration. */
static er_rc read_nucleus(gg_run *r, er_err *err)
{
    const greengrass_opts *o = r->o;
    const char *jroot = o->java_root ? o->java_root : JAVA_ROOT;
    const char *lite = o->lite_config ? o->lite_config : LITE_CONFIG;
    snprintf(r->java_file, sizeof r->java_file, "%s/%s", jroot, JAVA_CONFIG);
    snprintf(r->lite_file, sizeof r->lite_file, "%s", lite);
    if (o->lite_config_dir) {
        snprintf(r->lite_dir, sizeof r->lite_dir, "%s", o->lite_config_dir);
    } else {
        const char *slash = strrchr(lite, '/');
        int dir_len = slash ? (int)(slash - lite) : 1;
        snprintf(r->lite_dir, sizeof r->lite_dir, "%.*s/config.d", dir_len, slash ? lite : ".");
    }
    bool java_there = exists(r->java_file);
    bool lite_there = exists(r->lite_file) || exists(r->lite_dir);
    r->java = o->nucleus == GREENGRASS_NUCLEUS_JAVA ||
              (o->nucleus == GREENGRASS_NUCLEUS_AUTO && java_there);
    if (o->nucleus == GREENGRASS_NUCLEUS_AUTO && !java_there && !lite_there)
        return er_fail(err, ER_CONFIG,
                       "no Greengrass nucleus configuration: neither %s nor %s (or %s) exists "
                       "(see --java-root, --lite-config)",
                       r->java_file, r->lite_file, r->lite_dir);
    if (r->java && !java_there)
        return er_fail(err, ER_CONFIG, "%s does not exist (see --java-root)", r->java_file);
    if (!r->java && !lite_there)
        return er_fail(err, ER_CONFIG, "neither %s nor %s exists (see --lite-config)", r->lite_file,
                       r->lite_dir);
    er_rc rc = r->java ? scan_file(r, r->java_file, err) : scan_lite(r, err);
    if (rc) return rc;
    const char *root = r->found.value[r->java ? GREENGRASS_ROOT : GREENGRASS_ROOT_LITE];
    snprintf(r->root, sizeof r->root, "%s", root ? root : r->java ? jroot : LITE_ROOT);
    return ER_OK;
}

/* ---- the values ---------------------------------------------------------------------------- */

static bool chars_ok(const char *s, const char *extra, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(extra, c)))
            return false;
    }
    return true;
}

/* Sets output i from key k of the nucleus configuration. */
static void from_key(gg_run *r, int i, greengrass_key k, const char *value)
{
    snprintf(r->value[i], sizeof r->value[i], "%s", value);
    snprintf(r->from[i], sizeof r->from[i], "%s: %s", r->found.origin[k], greengrass_key_name(k));
}

static er_rc missing(gg_run *r, greengrass_key k, er_err *err)
{
    return er_fail(err, ER_CONFIG, "%s is not set in %s", greengrass_key_name(k),
                   r->files[0] ? r->files : "the nucleus configuration");
}

/* A file setting: refused when a hardware token holds it, made absolute against the root. */
static er_rc file_path(gg_run *r, greengrass_key k, const char *v, char *out, size_t cap,
                       er_err *err)
{
    size_t scheme = strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
    if (scheme > 0 && v[scheme] == ':') /* the URI may hold a PIN: never shown */
        return er_fail(err, ER_CONFIG,
                       "%s is a %.*s: URI, a key or certificate held by %s, which cannot be "
                       "copied: ei-relay needs PEM files (give the component a certificate and "
                       "key of its own with mqtt_cert and mqtt_key)",
                       greengrass_key_name(k), (int)(scheme < 16 ? scheme : 16), v,
                       strncmp(v, "pkcs11:", 7) == 0 ? "a PKCS#11 token" : "a TPM or engine");
    if (strncmp(v, "~root/", 6) == 0) v += 6; /* the Java nucleus's shorthand for its root */
    int n = v[0] == '/' ? snprintf(out, cap, "%s", v) : snprintf(out, cap, "%s/%s", r->root, v);
    if (n < 0 || (size_t)n >= cap)
        return er_fail(err, ER_CONFIG, "%s: the path is too long", greengrass_key_name(k));
    return ER_OK;
}

static er_rc resolve(gg_run *r, er_err *err)
{
    const greengrass_found *f = &r->found;
    greengrass_key ek = !r->java && f->value[GREENGRASS_ENDPOINT_LITE] ? GREENGRASS_ENDPOINT_LITE
                                                                       : GREENGRASS_ENDPOINT;
    if (!f->value[ek]) return missing(r, r->java ? ek : GREENGRASS_ENDPOINT_LITE, err);
    if (!chars_ok(f->value[ek], ".-", 253))
        return er_fail(err, ER_CONFIG, "%s \"%.60s\" is not a host name", greengrass_key_name(ek),
                       f->value[ek]);
    from_key(r, OUT_ENDPOINT, ek, f->value[ek]);
    if (r->java && f->value[GREENGRASS_MQTT_PORT]) {
        char *end;
        long port = strtol(f->value[GREENGRASS_MQTT_PORT], &end, 10);
        if (*end || port < 1 || port > 65535)
            return er_fail(err, ER_CONFIG, "%s \"%.20s\" is not a port",
                           greengrass_key_name(GREENGRASS_MQTT_PORT),
                           f->value[GREENGRASS_MQTT_PORT]);
        from_key(r, OUT_PORT, GREENGRASS_MQTT_PORT, f->value[GREENGRASS_MQTT_PORT]);
    }
    /* the thing: the nucleus's environment wins over its configuration */
    const char *thing = r->o->thing_env ? r->o->thing_env : f->value[GREENGRASS_THING];
    if (!thing) return missing(r, GREENGRASS_THING, err);
    if (!chars_ok(thing, ":_-", THING_MAX) ||
        strlen(thing) + strlen(CLIENT_ID_SUFFIX) > CLIENT_ID_MAX)
        return er_fail(err, ER_CONFIG,
                       "thing name \"%.60s\" is not a thing name of at most %d characters "
                       "(a-z, A-Z, 0-9, ':', '_', '-')",
                       thing, CLIENT_ID_MAX - (int)strlen(CLIENT_ID_SUFFIX));
    snprintf(r->value[OUT_CLIENT_ID], sizeof r->value[OUT_CLIENT_ID], "%s" CLIENT_ID_SUFFIX, thing);
    if (r->o->thing_env)
        snprintf(r->from[OUT_CLIENT_ID], sizeof r->from[OUT_CLIENT_ID],
                 "environment AWS_IOT_THING_NAME + \"" CLIENT_ID_SUFFIX "\"");
    else
        snprintf(r->from[OUT_CLIENT_ID], sizeof r->from[OUT_CLIENT_ID], "%s: %s + \"%s\"",
                 f->origin[GREENGRASS_THING], greengrass_key_name(GREENGRASS_THING),
                 CLIENT_ID_SUFFIX);
    /* the files: the CA from the environment wins too */
    for (size_t i = 0; i < sizeof copies / sizeof copies[0]; i++) {
        const copy_spec *c = &copies[i];
        const char *v = f->value[c->key];
        if (c->key == GREENGRASS_CA && r->o->ca_env) {
            er_rc rc = file_path(r, c->key, r->o->ca_env, r->value[c->out], PATH_MAX, err);
            if (rc) return rc;
            snprintf(r->from[c->out], sizeof r->from[c->out], "environment GG_ROOT_CA_PATH");
            continue;
        }
        if (!v && c->key == GREENGRASS_CA) continue; /* the relay then trusts the system's CAs */
        if (!v) return missing(r, c->key, err);
        er_rc rc = file_path(r, c->key, v, r->value[c->out], PATH_MAX, err);
        if (rc) return rc;
        snprintf(r->from[c->out], sizeof r->from[c->out], "%s: %s", f->origin[c->key],
                 greengrass_key_name(c->key));
    }
    return ER_OK;
}

/* ---- the work directory ------------------------------------------------------------------- */

/* Reads each file the relay needs and copies those the run-as user could not read. */
static er_rc hand_over(gg_run *r, int dirfd, er_err *err)
{
    util_buf pem = {0};
    er_rc rc = ER_OK;
    for (size_t i = 0; !rc && i < sizeof copies / sizeof copies[0]; i++) {
        const copy_spec *c = &copies[i];
        char *v = r->value[c->out], *from = r->from[c->out];
        if (!v[0]) continue;
        if ((rc = gg__read_pem(v, greengrass_key_name(c->key), &pem, err))) break;
        if (!c->always && gg__user_can_read(&r->user, v)) continue;
        char src[PATH_MAX];
        memcpy(src, v, sizeof src);
        int n = snprintf(v, PATH_MAX, "%s/%s", r->work, c->file);
        if (n < 0 || n >= PATH_MAX) {
            rc = er_fail(err, ER_CONFIG, "--work-dir %s: the path is too long", r->work);
            break;
        }
        rc = gg__write_file(dirfd, r->work, c->file, pem.data, pem.len, 0600, &r->user, err);
        size_t len = strlen(from);
        snprintf(from + len, sizeof r->from[c->out] - len, " (copy of %s)", src);
    }
    util_buf_free(&pem);
    return rc;
}

static er_rc write_json(gg_run *r, int dirfd, er_err *err)
{
    er_rc rc = ER_NOMEM;
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    for (int i = 0; root && i < OUT_COUNT; i++) {
        if (!r->value[i][0]) continue;
        cJSON *e = cJSON_AddObjectToObject(root, out_names[i]);
        if (!e || !cJSON_AddStringToObject(e, "value", r->value[i]) ||
            !cJSON_AddStringToObject(e, "from", r->from[i]))
            goto fail;
    }
    if (!root || !(text = cJSON_Print(root))) goto fail;
    rc = gg__write_file(dirfd, r->work, "greengrass.json", text, strlen(text), 0640, &r->user, err);
fail:
    if (rc == ER_NOMEM) er_fail(err, rc, "out of memory");
    cJSON_free(text);
    cJSON_Delete(root);
    return rc;
}

er_rc greengrass_setup(const greengrass_opts *o, FILE *out, er_err *err)
{
    gg_run *r = calloc(1, sizeof *r);
    int dirfd = -1;
    er_rc rc = ER_NOMEM;
    if (!r) {
        er_fail(err, rc, "out of memory");
        goto fail;
    }
    r->o = o;
    if (!realpath(o->work_dir, r->work)) {
        rc = er_fail(err, ER_IO, "--work-dir %s: %s", o->work_dir, strerror(errno));
        goto fail;
    }
    if ((rc = read_nucleus(r, err)) || (rc = resolve(r, err))) goto fail;
    if ((rc = gg__user_resolve(o->run_as, r->work, &r->user, err))) goto fail;
    dirfd = open(r->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        rc = er_fail(err, ER_IO, "--work-dir %s: %s", r->work, strerror(errno));
        goto fail;
    }
    if ((rc = hand_over(r, dirfd, err)) || (rc = write_json(r, dirfd, err))) goto fail;
    fprintf(out, "greengrass-setup: %s nucleus (%s); for user %s (uid %lu, gid %lu):\n",
            r->java ? "Java" : "lite", r->files, r->user.name, (unsigned long)r->user.uid,
            (unsigned long)r->user.gid);
    for (int i = 0; i < OUT_COUNT; i++)
        if (r->value[i][0])
            fprintf(out, "  %s = %s (from %s)\n", out_names[i], r->value[i], r->from[i]);
    fprintf(out, "greengrass-setup: wrote %s/greengrass.json (set greengrass_file to it)\n",
            r->work);
fail:
    if (dirfd >= 0) close(dirfd);
    if (r) greengrass_found_free(&r->found);
    free(r);
    return rc;
}
