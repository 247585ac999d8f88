/* commands.c - see commands.h. Replies follow the Edge Impulse components: threshold settings
 * as {"threshold_filter_config":{"enabled":"yes|no","confidence_threshold":x,
 * "threshold_criteria":"ge"}}, {"criteria":..}, {"confidence_threshold":..}, {"model_info":..},
 * {"metrics_reset":"OK"}, {"clear_cache":{"local":"OK"}}, {"clear_cache_file":{...,"uuid"}},
 * {"restart":"OK"}; ei-relay's {"status":{...}}; errors {"error":"..."}. */
#include "forward/commands.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

static const char *const verb_names[COMMANDS_VERB_COUNT] = {
    [COMMANDS_RESTART] = "restart",
    [COMMANDS_ENABLE_THRESHOLD] = "enable_threshold_filter",
    [COMMANDS_DISABLE_THRESHOLD] = "disable_threshold_filter",
    [COMMANDS_GET_THRESHOLD_CONFIG] = "get_threshold_filter_config",
    [COMMANDS_SET_CRITERIA] = "set_threshold_filter_criteria",
    [COMMANDS_GET_CRITERIA] = "get_threshold_filter_criteria",
    [COMMANDS_SET_CONFIDENCE] = "set_threshold_filter_confidence",
    [COMMANDS_GET_CONFIDENCE] = "get_threshold_filter_confidence",
    [COMMANDS_GET_MODEL_INFO] = "get_model_info",
    [COMMANDS_RESET_METRICS] = "reset_metrics",
    [COMMANDS_CLEAR_CACHE] = "clear_cache",
    [COMMANDS_CLEAR_CACHE_FILE] = "clear_cache_file",
    [COMMANDS_GET_STATUS] = "get_status",
};

const char *commands_verb_name(commands_verb v)
{
    return (unsigned)v < COMMANDS_VERB_COUNT ? verb_names[v] : NULL;
}

er_rc commands_parse(const char *payload, size_t len, commands_cmd *out, er_err *err)
{
    er_rc rc = ER_INVALID;
    cJSON *root = NULL;
    memset(out, 0, sizeof *out);
    if (len > COMMANDS_MAX_BYTES) {
        er_fail(err, rc, "the command has %zu bytes; the limit is %d", len, COMMANDS_MAX_BYTES);
        goto fail;
    }
    if (!(root = cJSON_ParseWithLength(payload, len))) {
        er_fail(err, rc, "the command is not valid JSON");
        goto fail;
    }
    rc = ER_SHAPE;
    if (!cJSON_IsObject(root)) {
        er_fail(err, rc, "the command must be a JSON object");
        goto fail;
    }
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(root, "cmd");
    if (!cJSON_IsString(cmd)) {
        er_fail(err, rc, "the command needs a string \"cmd\"");
        goto fail;
    }
    int verb = -1;
    for (int i = 0; i < COMMANDS_VERB_COUNT; i++)
        if (strcmp(cmd->valuestring, verb_names[i]) == 0) verb = i;
    if (verb < 0) {
        er_fail(err, rc, "unknown command '%.64s'", cmd->valuestring);
        goto fail;
    }
    out->verb = (commands_verb)verb;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "value");
    /* 1e999 is valid JSON that overflows to infinity: not a number any verb can use */
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
        out->has_number = true;
        out->number = v->valuedouble;
    } else if (cJSON_IsString(v)) {
        size_t n = strlen(v->valuestring);
        if (n >= sizeof out->text) {
            er_fail(err, rc, "\"value\" is too long (%zu bytes)", n);
            goto fail;
        }
        memcpy(out->text, v->valuestring, n + 1);
        out->has_text = true;
        /* the components' senders often quote numbers: "0.75" */
        out->has_number = n > 0 && util_parse_double(out->text, &out->number) == ER_OK;
    }
    switch (out->verb) {
    case COMMANDS_SET_CRITERIA:
        if (!out->has_text) {
            er_fail(err, rc, "set_threshold_filter_criteria needs a \"value\": gt|ge|eq|le|lt");
            goto fail;
        }
        break;
    case COMMANDS_SET_CONFIDENCE:
        if (!out->has_number || !isfinite(out->number)) {
            er_fail(err, rc, "set_threshold_filter_confidence needs a number \"value\" in 0..100");
            goto fail;
        }
        break;
    case COMMANDS_CLEAR_CACHE_FILE:
        if (!out->has_text || !util_is_uuid(out->text)) {
            er_fail(err, rc, "clear_cache_file needs a uuid \"value\"");
            goto fail;
        }
        break;
    default:
        break;
    }
    rc = ER_OK;
fail:
    cJSON_Delete(root);
    return rc;
}

/* ---- replies ---------------------------------------------------------------------------- */

static bool add_config(cJSON *result, policy *pol)
{
    policy_settings ps;
    policy_get(pol, &ps);
    cJSON *c = cJSON_AddObjectToObject(result, "threshold_filter_config");
    return c && cJSON_AddStringToObject(c, "enabled", ps.threshold_enabled ? "yes" : "no") &&
           cJSON_AddNumberToObject(c, "confidence_threshold", ps.threshold) &&
           cJSON_AddStringToObject(c, "threshold_criteria", policy_criteria_name(ps.criteria));
}

/* Persists the current threshold settings; a failure is logged, the command still applies. */
static void persist(store *st, policy *pol)
{
    policy_settings ps;
    char num[32];
    policy_get(pol, &ps);
    snprintf(num, sizeof num, "%.17g", ps.threshold);
    if (store_meta_set(st, COMMANDS_META_ENABLED, ps.threshold_enabled ? "true" : "false") ||
        store_meta_set(st, COMMANDS_META_VALUE, num) ||
        store_meta_set(st, COMMANDS_META_CRITERIA, policy_criteria_name(ps.criteria)))
        log_warn("forward", "the threshold filter settings could not be saved; they apply "
                            "until restart");
}

/* Fills result for a parsed command; false with *why set when it cannot be carried out. */
static bool run(const commands_ctx *c, const commands_cmd *cmd, cJSON *result, char *why,
                size_t why_cap)
{
    switch (cmd->verb) {
    case COMMANDS_RESTART:
        return cJSON_AddStringToObject(result, "restart", "OK") != NULL;
    case COMMANDS_ENABLE_THRESHOLD:
    case COMMANDS_DISABLE_THRESHOLD:
        policy_set_threshold_enabled(c->pol, cmd->verb == COMMANDS_ENABLE_THRESHOLD);
        persist(c->st, c->pol);
        return add_config(result, c->pol);
    case COMMANDS_GET_THRESHOLD_CONFIG:
        return add_config(result, c->pol);
    case COMMANDS_SET_CRITERIA: {
        config_criteria crit;
        if (policy_criteria_parse(cmd->text, &crit) || policy_set_criteria(c->pol, crit)) {
            snprintf(why, why_cap, "unknown criteria '%s' (gt|ge|eq|le|lt)", cmd->text);
            return false;
        }
        persist(c->st, c->pol);
    }
        /* fall through */
    case COMMANDS_GET_CRITERIA: { /* set answers with the criteria now in force */
        policy_settings ps;
        policy_get(c->pol, &ps);
        return cJSON_AddStringToObject(result, "criteria", policy_criteria_name(ps.criteria));
    }
    case COMMANDS_SET_CONFIDENCE:
        if (policy_set_threshold(c->pol, cmd->number)) {
            snprintf(why, why_cap, "confidence %g is outside 0..100", cmd->number);
            return false;
        }
        persist(c->st, c->pol);
        /* fall through */
    case COMMANDS_GET_CONFIDENCE: {
        policy_settings ps;
        policy_get(c->pol, &ps);
        return cJSON_AddNumberToObject(result, "confidence_threshold", ps.threshold) != NULL;
    }
    case COMMANDS_GET_MODEL_INFO: {
        char *text = NULL;
        cJSON *info = NULL;
        if (store_meta_get(c->st, COMMANDS_META_MODEL_INFO, &text) == ER_OK)
            info = cJSON_Parse(text);
        free(text);
        if (!cJSON_IsObject(info)) {
            cJSON_Delete(info);
            info = cJSON_CreateObject();
        }
        if (!info) return false;
        cJSON_AddItemToObject(result, "model_info", info);
        return true;
    }
    case COMMANDS_RESET_METRICS:
        if (c->reset_model_metrics) c->reset_model_metrics(c->arg);
        return cJSON_AddStringToObject(result, "metrics_reset", "OK") != NULL;
    case COMMANDS_CLEAR_CACHE: {
        int64_t deleted = 0;
        er_rc rc = store_clear(c->st, &deleted);
        cJSON *o = cJSON_AddObjectToObject(result, "clear_cache");
        return o && cJSON_AddStringToObject(o, "local", rc ? er_rc_name(rc) : "OK") &&
               cJSON_AddNumberToObject(o, "deleted", (double)deleted);
    }
    case COMMANDS_CLEAR_CACHE_FILE: {
        er_rc rc = store_delete(c->st, cmd->text);
        cJSON *o = cJSON_AddObjectToObject(result, "clear_cache_file");
        return o && cJSON_AddStringToObject(o, "local", rc ? er_rc_name(rc) : "OK") &&
               cJSON_AddStringToObject(o, "uuid", cmd->text);
    }
    case COMMANDS_GET_STATUS: {
        cJSON *o = cJSON_AddObjectToObject(result, "status");
        if (!o) return false;
        if (c->status) c->status(c->arg, o);
        return true;
    }
    default:
        snprintf(why, why_cap, "unsupported command");
        return false;
    }
}

er_rc commands_handle(const commands_ctx *c, const char *payload, size_t len, util_buf *reply)
{
    er_rc rc = ER_NOMEM;
    commands_cmd cmd;
    er_err err = {{0}};
    char why[sizeof err.msg + 16] = "";
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *result = root ? cJSON_AddObjectToObject(root, "result") : NULL;
    if (!result) goto fail;
    bool ok = false;
    if (commands_parse(payload, len, &cmd, &err)) {
        snprintf(why, sizeof why, "%s", err.msg);
    } else {
        ok = run(c, &cmd, result, why, sizeof why);
        if (!ok && !why[0]) goto fail; /* out of memory while building the reply */
    }
    if (!ok) {
        /* an error reply replaces whatever was half built */
        cJSON_DeleteItemFromObject(root, "result");
        if (!(result = cJSON_AddObjectToObject(root, "result")) ||
            !cJSON_AddStringToObject(result, "error", why))
            goto fail;
        log_info("forward", "command refused: %s", why);
    }
    if (!(text = cJSON_PrintUnformatted(root))) goto fail;
    if ((rc = util_buf_append(reply, text, strlen(text)))) goto fail;
    if (ok && cmd.verb == COMMANDS_RESTART && c->restart) c->restart(c->arg);
fail:
    free(text);
    cJSON_Delete(root);
    return rc;
}

er_rc commands_load_persisted(store *st, policy *pol)
{
    char *v = NULL;
    double d;
    config_criteria crit;
    if (store_meta_get(st, COMMANDS_META_ENABLED, &v) == ER_OK)
        policy_set_threshold_enabled(pol, strcmp(v, "true") == 0);
    free(v);
    v = NULL;
    if (store_meta_get(st, COMMANDS_META_VALUE, &v) == ER_OK && util_parse_double(v, &d) == ER_OK)
        policy_set_threshold(pol, d);
    free(v);
    v = NULL;
    if (store_meta_get(st, COMMANDS_META_CRITERIA, &v) == ER_OK &&
        policy_criteria_parse(v, &crit) == ER_OK)
        policy_set_criteria(pol, crit);
    free(v);
    return ER_OK;
}

/* ---- retained commands that could not be cleared --------------------------------------- */

void commands_id(const char *payload, size_t len, char out[COMMANDS_ID_LEN + 1])
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a 64 */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)payload[i];
        h *= 1099511628211ULL;
    }
    snprintf(out, COMMANDS_ID_LEN + 1, "%016llx", (unsigned long long)h);
}

bool commands_handled_has(const commands_handled *h, const char *id)
{
    for (int i = 0; i < h->n; i++)
        if (strcmp(h->ids[i], id) == 0) return true;
    return false;
}

void commands_handled_add(commands_handled *h, const char *id)
{
    int at = h->n < COMMANDS_HANDLED_MAX ? h->n : COMMANDS_HANDLED_MAX - 1; /* the slot freed */
    for (int i = 0; i < h->n; i++)
        if (strcmp(h->ids[i], id) == 0) at = i;
    if (at == h->n) h->n++;
    memmove(h->ids[1], h->ids[0], (size_t)at * sizeof h->ids[0]);
    snprintf(h->ids[0], sizeof h->ids[0], "%s", id);
}

static bool is_id(const char *s, size_t n)
{
    if (n != COMMANDS_ID_LEN) return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdef", s[i]) || !s[i]) return false;
    return true;
}

void commands_handled_load(store *st, commands_handled *h)
{
    char *v = NULL;
    memset(h, 0, sizeof *h);
    if (store_meta_get(st, COMMANDS_META_HANDLED, &v) != ER_OK) return;
    for (const char *p = v; *p && h->n < COMMANDS_HANDLED_MAX;) {
        size_t n = strcspn(p, " ");
        if (is_id(p, n)) {
            memcpy(h->ids[h->n], p, n);
            h->ids[h->n++][n] = '\0';
        }
        p += n;
        p += strspn(p, " ");
    }
    free(v);
}

er_rc commands_handled_save(store *st, const commands_handled *h)
{
    char text[COMMANDS_HANDLED_MAX * (COMMANDS_ID_LEN + 1) + 1];
    size_t o = 0;
    text[0] = '\0';
    for (int i = 0; i < h->n; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "%s%s", i ? " " : "", h->ids[i]);
    return store_meta_set(st, COMMANDS_META_HANDLED, text);
}
