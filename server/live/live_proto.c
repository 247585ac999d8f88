/* live_proto.c - see live_proto.h. */
#include "live/live_proto.h"

#include "core/json_alloc.h"
#include "core/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void live_filter_free(live_filter *f)
{
    if (!f) return;
    free_list(f->labels, f->n_labels);
    free_list(f->sources, f->n_sources);
    memset(f, 0, sizeof *f);
}

void live_filter_move(live_filter *dst, live_filter *src)
{
    live_filter_free(dst);
    *dst = *src;
    memset(src, 0, sizeof *src);
}

void live_msg_free(live_msg *m)
{
    if (!m) return;
    free(m->token);
    free(m->ping_id);
    live_filter_free(&m->filter);
    memset(m, 0, sizeof *m);
}

/* A list of names: absent or [] = no constraint. */
static er_rc read_list(const cJSON *v, const char *what, char ***out, size_t *n, er_err *err)
{
    if (!v || cJSON_IsNull(v)) return ER_OK;
    if (!cJSON_IsArray(v)) return er_fail(err, ER_SHAPE, "%s: expected an array of strings", what);
    int count = cJSON_GetArraySize(v);
    if (count > (int)LIVE_FILTER_MAX_ITEMS)
        return er_fail(err, ER_SHAPE, "%s: at most %u items", what, LIVE_FILTER_MAX_ITEMS);
    if (count == 0) return ER_OK;
    char **list = calloc((size_t)count, sizeof *list);
    if (!list) return er_fail(err, ER_NOMEM, "out of memory");
    size_t k = 0;
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, v)
    {
        size_t len = cJSON_IsString(it) ? strlen(it->valuestring) : 0;
        if (!cJSON_IsString(it) || len == 0 || len > LIVE_FILTER_ITEM_MAX) {
            free_list(list, k);
            return er_fail(err, ER_SHAPE, "%s: expected non-empty strings of at most %u bytes",
                           what, LIVE_FILTER_ITEM_MAX);
        }
        if (!(list[k] = strdup(it->valuestring))) {
            free_list(list, k);
            return er_fail(err, ER_NOMEM, "out of memory");
        }
        k++;
    }
    *out = list;
    *n = k;
    return ER_OK;
}

/* The filter members of obj (auth.filter or the subscribe message itself). */
static er_rc read_filter(const cJSON *obj, live_filter *f, er_err *err)
{
    er_rc rc = read_list(cJSON_GetObjectItemCaseSensitive(obj, "labels"), "labels", &f->labels,
                         &f->n_labels, err);
    if (rc == ER_OK)
        rc = read_list(cJSON_GetObjectItemCaseSensitive(obj, "sources"), "sources", &f->sources,
                       &f->n_sources, err);
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(obj, "min_score");
    if (rc == ER_OK && ms && !cJSON_IsNull(ms)) {
        if (!cJSON_IsNumber(ms) || !isfinite(ms->valuedouble) || ms->valuedouble < 0 ||
            ms->valuedouble > 1)
            rc = er_fail(err, ER_SHAPE, "min_score: expected a number from 0 to 1");
        else if (ms->valuedouble > 0) {
            f->has_min_score = true;
            f->min_score = ms->valuedouble;
        }
    }
    if (rc) live_filter_free(f);
    return rc;
}

er_rc live_msg_parse(const char *text, size_t len, live_msg *out, er_err *err)
{
    er_rc rc = ER_OK;
    cJSON *root = NULL;
    memset(out, 0, sizeof *out);
    if (len > LIVE_MSG_MAX_BYTES)
        return er_fail(err, ER_TOOBIG, "message of %zu bytes over the %u-byte limit", len,
                       LIVE_MSG_MAX_BYTES);
    if (!text || len == 0 || memchr(text, '\0', len))
        return er_fail(err, ER_INVALID, "malformed JSON: empty or contains a NUL byte");
    if (!util_utf8_valid(text, len)) /* never echo such bytes back in a text frame */
        return er_fail(err, ER_INVALID, "malformed JSON: the text is not valid UTF-8");
    const char *end = NULL;
    json_alloc_reset();
    root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root && json_alloc_failed()) { /* not the client's fault: the caller closes */
        rc = er_fail(err, ER_NOMEM, "out of memory");
        goto fail;
    }
    while (root && end < text + len && strchr(" \t\r\n", *end))
        end++;
    if (!root || end != text + len) {
        rc = er_fail(err, ER_INVALID, "malformed JSON");
        goto fail;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!cJSON_IsObject(root) || !cJSON_IsString(type)) {
        rc = er_fail(err, ER_SHAPE, "expected an object with a string \"type\"");
        goto fail;
    }
    if (strcmp(type->valuestring, "auth") == 0) {
        out->type = LIVE_MSG_AUTH;
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(root, "token");
        const cJSON *since = cJSON_GetObjectItemCaseSensitive(root, "since_seq");
        const cJSON *filter = cJSON_GetObjectItemCaseSensitive(root, "filter");
        if (!cJSON_IsString(tok)) {
            rc = er_fail(err, ER_SHAPE, "auth: expected a string \"token\"");
            goto fail;
        }
        if (since && !cJSON_IsNull(since)) {
            double d = cJSON_IsNumber(since) ? since->valuedouble : -1;
            if (d < 0 || d > 9007199254740991.0 || d != floor(d)) {
                rc = er_fail(err, ER_SHAPE, "auth: since_seq must be a whole number >= 0");
                goto fail;
            }
            out->has_since = true;
            out->since_seq = (int64_t)d;
        }
        if (filter && !cJSON_IsNull(filter)) {
            if (!cJSON_IsObject(filter)) {
                rc = er_fail(err, ER_SHAPE, "auth: filter must be an object");
                goto fail;
            }
            if ((rc = read_filter(filter, &out->filter, err))) goto fail;
            out->has_filter = true;
        }
        if (!(out->token = strdup(tok->valuestring))) {
            rc = er_fail(err, ER_NOMEM, "out of memory");
            goto fail;
        }
    } else if (strcmp(type->valuestring, "subscribe") == 0) {
        out->type = LIVE_MSG_SUBSCRIBE;
        if ((rc = read_filter(root, &out->filter, err))) goto fail;
        out->has_filter = true;
    } else if (strcmp(type->valuestring, "ping") == 0) {
        out->type = LIVE_MSG_PING;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
        if (id && !(out->ping_id = cJSON_PrintUnformatted(id))) {
            rc = er_fail(err, ER_NOMEM, "out of memory");
            goto fail;
        }
    } else {
        rc = er_fail(err, ER_SHAPE, "unknown message type \"%.40s\" (auth, subscribe, ping)",
                     type->valuestring);
        goto fail;
    }
fail:
    if (rc) live_msg_free(out);
    cJSON_Delete(root);
    return rc;
}

static bool in_list(char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(list[i], s) == 0) return true;
    return false;
}

bool live_filter_match(const live_filter *f, const inference *inf)
{
    if (f->n_sources && !in_list(f->sources, f->n_sources, inf->source)) return false;
    if (f->has_min_score && (!inf->top_label || inf->top_score < f->min_score)) return false;
    if (f->n_labels) {
        for (size_t i = 0; i < inf->n_labels; i++)
            if (in_list(f->labels, f->n_labels, inf->labels[i].label)) return true;
        return false;
    }
    return true;
}

static bool add_list(cJSON *o, const char *name, char *const *list, size_t n)
{
    cJSON *a = cJSON_AddArrayToObject(o, name);
    for (size_t i = 0; a && i < n; i++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateString(list[i]))) return false;
    return a != NULL;
}

cJSON *live_filter_to_json(const live_filter *f)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !add_list(o, "labels", f->labels, f->n_labels) ||
        !cJSON_AddNumberToObject(o, "min_score", f->has_min_score ? f->min_score : 0) ||
        !add_list(o, "sources", f->sources, f->n_sources)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
