/* config_value.c - the value syntax of every setting type: text is parsed as the row's type,
 * checked against its bounds or choices and stored in its field (cfg_set_text, the one path
 * every source of values goes through), and the two JSON-typed settings: tokens are validated,
 * sources only checked to be an array (its entries are the sources module's, see config.h).
 * Owned by the config module.
 *
 * Value syntax, whatever the source (JSON string or number alike, env text, flag text):
 *   int       decimal integer ("5" and 5 are the same)
 *   bool      true|false, yes|no, on|off, 1|0 (any case)
 *   double    decimal number; default_threshold above 1 is a percentage (50 -> 0.50)
 *   enum      one of the listed names (any case)
 *   size      bytes, or a number with K, M, G or T (K = KB = KiB = 1024; any case)
 *   duration  a number with ms, s, m, h or d; a plain number counts milliseconds for the *_ms
 *             settings and seconds for cache_max_age
 *   JSON      tokens, sources: a JSON array (in env/flags, and in the file as a string, the
 *             array's JSON text)
 * "__none__" (and JSON null) resets a setting: a string without default becomes NULL, anything
 * else takes its default. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_internal.h"

#define TOKENS_MAX 256 /* keeps the duplicate check (quadratic) cheap on hostile input */

/* ---- parsers and formatters ---------------------------------------------------------------- */

int cfg_choice_index(const char *choices, const char *s)
{
    size_t n = strlen(s);
    int i = 0;
    for (const char *p = choices;; i++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncasecmp(p, s, n) == 0) return i;
        if (!bar) return -1;
        p = bar + 1;
    }
}

void cfg_choice_name(const char *choices, int idx, char *out, size_t cap)
{
    const char *p = choices;
    for (int i = 0; i < idx && p; i++) {
        p = strchr(p, '|');
        if (p) p++;
    }
    if (!p || idx < 0) {
        snprintf(out, cap, "?");
        return;
    }
    const char *bar = strchr(p, '|');
    int len = bar ? (int)(bar - p) : (int)strlen(p);
    snprintf(out, cap, "%.*s", len, p);
}

/* Strict decimal integer at the start of s (optional '-', digits, no overflow). */
static bool parse_int_prefix(const char *s, int64_t *out, const char **end)
{
    const char *p = s;
    bool neg = *p == '-';
    if (neg) p++;
    if (!isdigit((unsigned char)*p)) return false;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (; isdigit((unsigned char)*p); p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (limit - d) / 10) return false;
        v = v * 10 + d;
    }
    if (!neg)
        *out = (int64_t)v;
    else
        *out = v == limit ? INT64_MIN : -(int64_t)v;
    *end = p;
    return true;
}

/* Bytes with an optional binary suffix; false if malformed, *overflow if too big. */
static bool parse_size(const char *s, int64_t *out, bool *overflow)
{
    static const struct {
        const char *suffix;
        int shift;
    } units[] = {{"", 0},     {"b", 0},   {"k", 10},   {"kb", 10}, {"kib", 10},
                 {"m", 20},   {"mb", 20}, {"mib", 20}, {"g", 30},  {"gb", 30},
                 {"gib", 30}, {"t", 40},  {"tb", 40},  {"tib", 40}};
    int64_t v;
    const char *end;
    *overflow = false;
    if (*s == '-' || !parse_int_prefix(s, &v, &end)) return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(end, units[i].suffix) != 0) continue;
        if (v > (INT64_MAX >> units[i].shift)) {
            *overflow = true;
            return false;
        }
        *out = v << units[i].shift;
        return true;
    }
    return false;
}

/* Milliseconds from a number with ms|s|m|h|d, or a plain number of unit_ms. */
static bool parse_duration(const char *s, int64_t unit_ms, int64_t *out, bool *overflow)
{
    static const struct {
        const char *suffix;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    int64_t v;
    const char *end;
    *overflow = false;
    if (*s == '-' || !parse_int_prefix(s, &v, &end)) return false;
    int64_t mult = 0;
    if (*end == '\0') mult = unit_ms;
    for (size_t i = 0; !mult && i < sizeof units / sizeof units[0]; i++)
        if (strcasecmp(end, units[i].suffix) == 0) mult = units[i].ms;
    if (!mult) return false;
    if (v > INT64_MAX / mult) {
        *overflow = true;
        return false;
    }
    *out = v * mult;
    return true;
}

void cfg_format_duration(int64_t ms, char *out, size_t cap)
{
    static const struct {
        const char *suffix;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    if (ms == 0) {
        snprintf(out, cap, "0");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ms % units[i].ms == 0) {
            snprintf(out, cap, "%lld%s", (long long)(ms / units[i].ms), units[i].suffix);
            return;
        }
    }
    snprintf(out, cap, "%lldms", (long long)ms);
}

/* ---- the JSON-typed settings -------------------------------------------------------------- */

void cfg_free_tokens(config_token *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(t[i].token);
    free(t);
}

static bool token_text_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < CONFIG_TOKEN_MIN || n > CONFIG_TOKEN_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) return false;
    return true;
}

/* Validates a tokens array and replaces c->tokens with it. */
static er_rc set_tokens(config *c, const cJSON *arr, er_err *err)
{
    config_token *t = NULL;
    size_t n = 0;
    er_rc rc = ER_OK;
    if (!cJSON_IsArray(arr)) {
        rc = er_fail(err, ER_CONFIG, "tokens: expected a JSON array of {\"token\", \"role\"}");
        goto fail;
    }
    int count = cJSON_GetArraySize(arr);
    if (count > TOKENS_MAX) {
        rc = er_fail(err, ER_CONFIG, "tokens: at most %d entries", TOKENS_MAX);
        goto fail;
    }
    if (count > 0 && !(t = calloc((size_t)count, sizeof *t))) {
        rc = er_fail(err, ER_NOMEM, "tokens: out of memory");
        goto fail;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, arr)
    {
        if (!cJSON_IsObject(item)) {
            rc =
                er_fail(err, ER_CONFIG, "tokens[%zu]: expected an object {\"token\", \"role\"}", n);
            goto fail;
        }
        const cJSON *kv;
        cJSON_ArrayForEach(kv, item)
        {
            if (strcmp(kv->string, "token") != 0 && strcmp(kv->string, "role") != 0) {
                rc = er_fail(err, ER_CONFIG, "tokens[%zu]: unknown key \"%.40s\" (token|role)", n,
                             kv->string);
                goto fail;
            }
        }
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(item, "token");
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(item, "role");
        if (!cJSON_IsString(tok) || !token_text_ok(tok->valuestring)) {
            rc = er_fail(err, ER_CONFIG,
                         "tokens[%zu].token: expected a string of %d..%d printable characters "
                         "without spaces",
                         n, CONFIG_TOKEN_MIN, CONFIG_TOKEN_MAX);
            goto fail;
        }
        for (size_t j = 0; j < n; j++) {
            if (strcmp(t[j].token, tok->valuestring) == 0) {
                rc = er_fail(err, ER_CONFIG, "tokens[%zu].token: same as tokens[%zu]", n, j);
                goto fail;
            }
        }
        int r = cJSON_IsString(role) ? cfg_choice_index(CFG_ROLE_NAMES, role->valuestring) : -1;
        if (r < 0) {
            rc =
                er_fail(err, ER_CONFIG, "tokens[%zu].role: \"%.40s\" is not one of " CFG_ROLE_NAMES,
                        n, cJSON_IsString(role) ? role->valuestring : "(missing)");
            goto fail;
        }
        if (!(t[n].token = strdup(tok->valuestring))) {
            rc = er_fail(err, ER_NOMEM, "tokens: out of memory");
            goto fail;
        }
        t[n].role = (config_role)(CONFIG_ROLE_READ + r);
        n++;
    }
    cfg_free_tokens(c->tokens, c->n_tokens);
    c->tokens = t;
    c->n_tokens = n;
    return ER_OK;
fail:
    cfg_free_tokens(t, n);
    return rc;
}

/* Stores a sources array's JSON text after the loader's check of its entries (the sources
 * module's: config only knows it is an array). */
static er_rc set_sources(cfg_loader *ld, const cJSON *arr, er_err *err)
{
    char *text = NULL;
    er_rc rc = ER_OK;
    if (!cJSON_IsArray(arr)) {
        rc = er_fail(err, ER_CONFIG, "sources: expected a JSON array of {\"name\", \"kind\", ...}");
        goto fail;
    }
    if (!(text = cJSON_PrintUnformatted(arr))) {
        rc = er_fail(err, ER_NOMEM, "sources: out of memory");
        goto fail;
    }
    if (ld->check_sources && (rc = ld->check_sources(text, err))) goto fail;
    free(ld->c->sources_json);
    ld->c->sources_json = text;
    return ER_OK;
fail:
    free(text);
    return rc;
}

er_rc cfg_set_array(cfg_loader *ld, const cfg_opt *o, const cJSON *arr, er_err *err)
{
    ld->explicit_set[o - cfg_opts] = true;
    return o->type == CFG_OT_TOKENS ? set_tokens(ld->c, arr, err) : set_sources(ld, arr, err);
}

/* ---- the generic setter -------------------------------------------------------------------- */

er_rc cfg_set_default(cfg_loader *ld, const cfg_opt *o, er_err *err)
{
    if (o->type == CFG_OT_IGNORED) {
        ld->ignored_set[o - cfg_opts] = false;
        return ER_OK;
    }
    ld->explicit_set[o - cfg_opts] = false;
    if (o->def) {
        er_rc rc = cfg_set_text(ld, o, o->def, err);
        ld->explicit_set[o - cfg_opts] = false; /* a default is not a choice */
        return rc;
    }
    if (o->type == CFG_OT_STRING) {
        char **p = cfg_field(ld->c, o);
        free(*p);
        *p = NULL;
    } else if (o->type == CFG_OT_TOKENS) {
        cfg_free_tokens(ld->c->tokens, ld->c->n_tokens);
        ld->c->tokens = NULL;
        ld->c->n_tokens = 0;
    }
    return ER_OK;
}

static er_rc out_of_range(er_err *err, const cfg_opt *o, int64_t v, const char *unit)
{
    if (o->max == INT64_MAX) /* "no upper bound" reads better than 9223372036854775807 */
        return er_fail(err, ER_CONFIG, "%s: %lld%s is out of range, must be >= %lld%s", o->name,
                       (long long)v, unit, (long long)o->min, unit);
    return er_fail(err, ER_CONFIG, "%s: %lld%s is out of range %lld..%lld%s", o->name, (long long)v,
                   unit, (long long)o->min, (long long)o->max, unit);
}

er_rc cfg_set_text(cfg_loader *ld, const cfg_opt *o, const char *text, er_err *err)
{
    config *c = ld->c;
    int64_t v = 0;
    const char *end;
    bool overflow = false;
    if (strcmp(text, CFG_NONE_TEXT) == 0) return cfg_set_default(ld, o, err);
    ld->explicit_set[o - cfg_opts] = true;
    switch (o->type) {
    case CFG_OT_STRING: {
        if ((o->flags & CFG_OF_NONEMPTY) && !*text)
            return er_fail(err, ER_CONFIG, "%s: must not be empty", o->name);
        char *dup = strdup(text);
        if (!dup) return er_fail(err, ER_NOMEM, "%s: out of memory", o->name);
        char **p = cfg_field(c, o);
        free(*p);
        *p = dup;
        return ER_OK;
    }
    case CFG_OT_INT:
        if (!parse_int_prefix(text, &v, &end) || *end)
            return er_fail(err, ER_CONFIG, "%s: \"%.40s\" is not an integer (%lld..%lld)", o->name,
                           text, (long long)o->min, (long long)o->max);
        if (v < o->min || v > o->max) return out_of_range(err, o, v, "");
        cfg_store_int(c, o, v);
        return ER_OK;
    case CFG_OT_SIZE:
        if (!parse_size(text, &v, &overflow)) {
            if (overflow)
                return er_fail(err, ER_CONFIG, "%s: \"%.40s\" is out of range %lld..%lld bytes",
                               o->name, text, (long long)o->min, (long long)o->max);
            return er_fail(err, ER_CONFIG,
                           "%s: \"%.40s\" is not a size (bytes, or a number with K, M, G, T)",
                           o->name, text);
        }
        if (v < o->min || v > o->max) return out_of_range(err, o, v, " bytes");
        cfg_store_int(c, o, v);
        return ER_OK;
    case CFG_OT_DURATION:
        if (!parse_duration(text, o->unit_ms, &v, &overflow)) {
            if (overflow)
                return er_fail(err, ER_CONFIG, "%s: \"%.40s\" is out of range %lld..%lld ms",
                               o->name, text, (long long)o->min, (long long)o->max);
            return er_fail(err, ER_CONFIG,
                           "%s: \"%.40s\" is not a duration (a number of %s, or with "
                           "ms|s|m|h|d)",
                           o->name, text, o->unit_ms == 1 ? "milliseconds" : "seconds");
        }
        if (v < o->min || v > o->max) return out_of_range(err, o, v, " ms");
        cfg_store_int(c, o, v);
        return ER_OK;
    case CFG_OT_BOOL: {
        int i = cfg_choice_index(CFG_BOOL_WORDS, text);
        if (i < 0)
            return er_fail(err, ER_CONFIG, "%s: \"%.40s\" is not one of " CFG_BOOL_WORDS, o->name,
                           text);
        bool b = i % 2 == 1;
        memcpy(cfg_field(c, o), &b, sizeof b);
        return ER_OK;
    }
    case CFG_OT_DOUBLE: {
        char *dend;
        errno = 0;
        double d = strtod(text, &dend);
        if (!*text || isspace((unsigned char)*text) || *dend || errno || !isfinite(d))
            return er_fail(err, ER_CONFIG, "%s: \"%.40s\" is not a number", o->name, text);
        if (d < (double)o->min || d > (double)o->max)
            return er_fail(err, ER_CONFIG, "%s: %g is out of range %lld..%lld", o->name, d,
                           (long long)o->min, (long long)o->max);
        if ((o->flags & CFG_OF_PERCENT) && d > 1.0) d /= 100.0;
        memcpy(cfg_field(c, o), &d, sizeof d);
        return ER_OK;
    }
    case CFG_OT_ENUM: {
        int i = cfg_choice_index(o->choices, text);
        if (i < 0)
            return er_fail(err, ER_CONFIG, "%s: \"%.40s\" is not one of %s", o->name, text,
                           o->choices);
        cfg_store_int(c, o, o->base + i);
        return ER_OK;
    }
    case CFG_OT_TOKENS:
    case CFG_OT_SOURCES: {
        const char *jend = NULL;
        cJSON *j = cJSON_ParseWithOpts(text, &jend, true);
        if (!j) return er_fail(err, ER_CONFIG, "%s: not valid JSON", o->name);
        er_rc rc = cfg_set_array(ld, o, j, err);
        cJSON_Delete(j);
        return rc;
    }
    case CFG_OT_IGNORED:
        ld->ignored_set[o - cfg_opts] = true;
        return ER_OK;
    }
    return er_fail(err, ER_INTERNAL, "%s: bad table row", o->name);
}
