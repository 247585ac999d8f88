/* test_forward_commands_store.c - command handling against a real store and policy: every
 * reply shape, threshold settings persisted and loaded over the config after a reopen,
 * clear_cache / clear_cache_file, get_model_info from store meta, callbacks for get_status,
 * reset_metrics and restart, error replies that change nothing, and the list of handled
 * commands persisted across a reopen. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <cjson/cJSON.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "raw_db.h"
#include "core/util.h"
#include "forward/commands.h"
#include "forward/policy.h"
#include "store/store.h"

static int n_status, n_reset, n_restart;
static void on_status(void *arg, void *obj)
{
    n_status++;
    cJSON_AddStringToObject(obj, "connection", "connected");
}
static void on_reset(void *arg)
{
    n_reset++;
}
static void on_restart(void *arg)
{
    n_restart++;
}

/* Runs one command and returns the parsed "result" object (the root is kept in *root). */
static cJSON *cmd(const commands_ctx *c, const char *json, cJSON **root)
{
    util_buf b = {0};
    CHECK_EQ_INT(commands_handle(c, json, strlen(json), &b), ER_OK);
    *root = cJSON_Parse(b.data);
    util_buf_free(&b);
    CHECK(*root != NULL);
    cJSON *r = cJSON_GetObjectItemCaseSensitive(*root, "result");
    CHECK(cJSON_IsObject(r));
    return r;
}

static const char *str_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static inference *make_inf(void)
{
    inference *inf = inference_create();
    util_uuid4(inf->guid);
    inf->ts = util_now_ms();
    inference_set_str(&inf->device, "dev");
    inference_set_str(&inf->source, "http");
    inf->kind = INFERENCE_CLASSIFICATION;
    inference_set_str(&inf->result_json, "{\"classification\":{\"a\":0.9}}");
    inference_add_label(inf, "a", 0.9);
    return inf;
}

int main(void)
{
    char dir[] = "/tmp/ei-fwdcmd-XXXXXX", path[300];
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/db.sqlite", dir);
    store_opts so = {.path = path, .sync_full = true};
    store *st = NULL;
    er_err err = {{0}};
    CHECK_EQ_INT(store_create(&so, &st, &err), ER_OK);
    policy_settings ps = {.skip_empty = true, .threshold = 0.5, .criteria = CONFIG_CRIT_GE};
    policy *pol = NULL;
    CHECK_EQ_INT(policy_create(&ps, &pol), ER_OK);
    commands_ctx c = {.st = st,
                      .pol = pol,
                      .status = on_status,
                      .reset_model_metrics = on_reset,
                      .restart = on_restart};
    cJSON *root, *r;

    r = cmd(&c, "{\"cmd\":\"get_threshold_filter_config\"}", &root);
    CHECK_EQ_STR(str_at(r, "threshold_filter_config", "enabled"), "no");
    CHECK(num_at(r, "threshold_filter_config", "confidence_threshold") == 0.5);
    CHECK_EQ_STR(str_at(r, "threshold_filter_config", "threshold_criteria"), "ge");
    cJSON_Delete(root);
    r = cmd(&c, "{\"cmd\":\"enable_threshold_filter\"}", &root);
    CHECK_EQ_STR(str_at(r, "threshold_filter_config", "enabled"), "yes");
    cJSON_Delete(root);
    r = cmd(&c, "{\"cmd\":\"set_threshold_filter_confidence\",\"value\":75}", &root);
    CHECK(num_at(r, "confidence_threshold", NULL) == 0.75); /* a percentage */
    cJSON_Delete(root);
    r = cmd(&c, "{\"cmd\":\"set_threshold_filter_criteria\",\"value\":\"lt\"}", &root);
    CHECK_EQ_STR(str_at(r, "criteria", NULL), "lt");
    cJSON_Delete(root);
    r = cmd(&c, "{\"cmd\":\"get_threshold_filter_criteria\"}", &root);
    CHECK_EQ_STR(str_at(r, "criteria", NULL), "lt");
    cJSON_Delete(root);
    r = cmd(&c, "{\"cmd\":\"get_threshold_filter_confidence\"}", &root);
    CHECK(num_at(r, "confidence_threshold", NULL) == 0.75);
    cJSON_Delete(root);

    /* refused values: an error reply, and nothing changes */
    r = cmd(&c, "{\"cmd\":\"set_threshold_filter_confidence\",\"value\":101}", &root);
    CHECK(str_at(r, "error", NULL) != NULL);
    CHECK(cJSON_GetObjectItemCaseSensitive(r, "confidence_threshold") == NULL);
    cJSON_Delete(root);
    r = cmd(&c, "{\"cmd\":\"set_threshold_filter_criteria\",\"value\":\"xx\"}", &root);
    CHECK(str_at(r, "error", NULL) != NULL);
    cJSON_Delete(root);
    r = cmd(&c, "{oops", &root);
    CHECK(str_at(r, "error", NULL) != NULL);
    cJSON_Delete(root);
    policy_get(pol, &ps);
    CHECK(ps.threshold_enabled && ps.threshold == 0.75 && ps.criteria == CONFIG_CRIT_LT);

    /* model info: {} until the meta key is set */
    r = cmd(&c, "{\"cmd\":\"get_model_info\"}", &root);
    CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(r, "model_info")));
    CHECK(cJSON_GetObjectItemCaseSensitive(r, "model_info")->child == NULL);
    cJSON_Delete(root);
    CHECK_EQ_INT(store_meta_set(st, COMMANDS_META_MODEL_INFO, "{\"model_name\":\"m\"}"), ER_OK);
    r = cmd(&c, "{\"cmd\":\"get_model_info\"}", &root);
    CHECK_EQ_STR(str_at(r, "model_info", "model_name"), "m");
    cJSON_Delete(root);

    /* callbacks */
    r = cmd(&c, "{\"cmd\":\"get_status\"}", &root);
    CHECK_EQ_STR(str_at(r, "status", "connection"), "connected");
    cJSON_Delete(root);
    r = cmd(&c, "{\"cmd\":\"reset_metrics\"}", &root);
    CHECK_EQ_STR(str_at(r, "metrics_reset", NULL), "OK");
    cJSON_Delete(root);
    r = cmd(&c, "{\"cmd\":\"restart\"}", &root);
    CHECK_EQ_STR(str_at(r, "restart", NULL), "OK");
    cJSON_Delete(root);
    CHECK(n_status == 1 && n_reset == 1 && n_restart == 1);

    /* clear_cache_file and clear_cache delete from the store */
    inference *a = make_inf(), *b = make_inf();
    char ga[UTIL_UUID_LEN + 1], gb[UTIL_UUID_LEN + 1], json[128];
    memcpy(ga, a->guid, sizeof ga);
    memcpy(gb, b->guid, sizeof gb);
    store_put_result pr;
    CHECK_EQ_INT(store_put(st, a, &pr), ER_OK);
    CHECK_EQ_INT(store_put(st, b, &pr), ER_OK);
    snprintf(json, sizeof json, "{\"cmd\":\"clear_cache_file\",\"value\":\"%s\"}", ga);
    r = cmd(&c, json, &root);
    CHECK_EQ_STR(str_at(r, "clear_cache_file", "local"), "OK");
    CHECK_EQ_STR(str_at(r, "clear_cache_file", "uuid"), ga);
    cJSON_Delete(root);
    inference *got = NULL;
    CHECK_EQ_INT(store_get(st, ga, &got), ER_NOTFOUND);
    CHECK_EQ_INT(store_get(st, gb, &got), ER_OK);
    inference_destroy(got);
    got = NULL;
    r = cmd(&c, "{\"cmd\":\"clear_cache\"}", &root);
    CHECK_EQ_STR(str_at(r, "clear_cache", "local"), "OK");
    CHECK(num_at(r, "clear_cache", "deleted") == 1);
    cJSON_Delete(root);
    CHECK_EQ_INT(store_get(st, gb, &got), ER_NOTFOUND);

    /* persisted: a fresh policy from the config gets the commanded settings back */
    store_destroy(st);
    policy_destroy(pol);
    st = NULL;
    CHECK_EQ_INT(store_create(&so, &st, &err), ER_OK);
    policy_settings fresh = {.skip_empty = true, .threshold = 0.5, .criteria = CONFIG_CRIT_GE};
    CHECK_EQ_INT(policy_create(&fresh, &pol), ER_OK);
    CHECK_EQ_INT(commands_load_persisted(st, pol), ER_OK);
    policy_get(pol, &ps);
    CHECK(ps.threshold_enabled);
    CHECK(ps.threshold == 0.75);
    CHECK_EQ_INT(ps.criteria, CONFIG_CRIT_LT);

    /* the handled commands survive a reopen, newest first; entries that are not ids are
     * skipped; an empty list saves as empty */
    commands_handled h = {0}, back;
    char id1[COMMANDS_ID_LEN + 1], id2[COMMANDS_ID_LEN + 1];
    commands_id("{\"cmd\":\"restart\"}", 17, id1);
    commands_id("{\"cmd\":\"get_status\"}", 20, id2);
    commands_handled_add(&h, id1);
    commands_handled_add(&h, id2);
    CHECK_EQ_INT(commands_handled_save(st, &h), ER_OK);
    store_destroy(st);
    CHECK_EQ_INT(store_create(&so, &st, &err), ER_OK);
    commands_handled_load(st, &back);
    CHECK_EQ_INT(back.n, 2);
    CHECK_EQ_STR(back.ids[0], id2);
    CHECK_EQ_STR(back.ids[1], id1);
    CHECK_EQ_INT(store_meta_set(st, COMMANDS_META_HANDLED, "zz  0123456789abcdef x"), ER_OK);
    commands_handled_load(st, &back);
    CHECK_EQ_INT(back.n, 1);
    CHECK_EQ_STR(back.ids[0], "0123456789abcdef");
    back.n = 0;
    CHECK_EQ_INT(commands_handled_save(st, &back), ER_OK);
    commands_handled_load(st, &back);
    CHECK_EQ_INT(back.n, 0);
    store_destroy(st);
    policy_destroy(pol);
    raw_rm_tree(dir);
    return check_summary();
}
