/* test_eim_model.c - server/eim with the stand-in model (tests/eim/fake_eim.py) started through
 * eim_model_start: the hello read into the info, classify over shared memory and over JSON (the
 * features the stand-in recorded are exactly the ones sent, the requests exactly as the runner
 * writes them, ids increasing), results computed from them, set_threshold (the model's block and
 * the runner's block 42), and the model's error answers leaving it usable. Process faults are in
 * test_eim_process.c. */
#include <math.h>
#include <signal.h>

#include "eim_fixture.h"

static cJSON *classify_ok(eim_model *m, const uint32_t *px, size_t n)
{
    cJSON *r = NULL;
    er_err err = {{0}};
    er_rc rc = eim_model_classify(m, px, n, 5000, &r, &err);
    if (rc) fprintf(stderr, "classify: %s: %s\n", er_rc_name(rc), err.msg);
    CHECK_EQ_INT(rc, ER_OK);
    return r;
}

static double score(const cJSON *reply, const char *label)
{
    const cJSON *c = cJSON_GetObjectItem(cJSON_GetObjectItem(reply, "result"), "classification");
    const cJSON *v = cJSON_GetObjectItem(c, label);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static void test_hello(void)
{
    eim_fx fx;
    fx_init(&fx, 96, 96);
    int fds = fx_open_fds();
    snprintf(fx.model, sizeof fx.model, "%s", fx.fake); /* the stand-in itself, by its #! line */
    eim_model *m = fx_start(&fx);
    if (!m) return;
    const eim_model_info *in = eim_model_get_info(m);
    CHECK_EQ_INT(in->width, 96);
    CHECK_EQ_INT(in->height, 96);
    CHECK_EQ_INT(in->channels, 3);
    CHECK_EQ_INT(in->input_features_count, 96 * 96);
    CHECK_EQ_STR(in->model_type, "classification");
    CHECK_EQ_STR(in->resize_mode, "fit-shortest");
    CHECK_EQ_STR(in->sensor_type, "camera");
    CHECK_EQ_STR(in->project_name, "fake-eim");
    CHECK_EQ_INT(in->n_labels, 2);
    CHECK_EQ_STR(in->thresholds, "[{\"id\":42,\"type\":\"classification\",\"min_score\":0.001}]");
    CHECK(strncmp(in->hello, "{\"features_shm\":{", 17) == 0);
    CHECK(strstr(in->runner_hello, "\"sensorType\":\"camera\"") != NULL);
    CHECK(eim_model_uses_shm(m));
    CHECK(in->shm_name && fx_shm_exists(in->shm_name));
    CHECK(eim_model_pid(m) > 0);
    /* the socket is in a fresh directory under tmp_dir */
    const char *sock = eim_model_socket_path(m);
    CHECK(strncmp(sock, fx.socks, strlen(fx.socks)) == 0);
    CHECK(strstr(sock, "/ei-relay-eim-") != NULL && strlen(sock) < 108);
    CHECK_EQ_INT(fx_entries(fx.socks), 1);
    char shm[64];
    snprintf(shm, sizeof shm, "%s", in->shm_name);
    int status = eim_model_stop(m);
    /* SIGINT honoured: the stand-in's handler exits with 128 + 2 */
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGINT);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 128 + SIGINT) /* once seen under load */
        fprintf(stderr, "  the stand-in's status: %s %d\n",
                WIFEXITED(status)     ? "exited"
                : WIFSIGNALED(status) ? "signal"
                                      : "other",
                WIFEXITED(status)     ? WEXITSTATUS(status)
                : WIFSIGNALED(status) ? WTERMSIG(status)
                                      : status);
    CHECK(!fx_shm_exists(shm));
    CHECK_EQ_INT(fx_open_fds(), fds);
    char *log = fx_read(fx.requests, NULL);
    CHECK_EQ_STR(log, "{\"hello\":1,\"id\":1}\n");
    free(log);
    fx_done(&fx);
}

/* Pixels with every byte different, and the float32 each becomes. */
static void pattern(uint32_t *px, size_t n)
{
    for (size_t i = 0; i < n; i++)
        px[i] = (uint32_t)((i * 0x010203u + 0x0a0b0cu) & 0xffffffu);
}

static void check_recorded(const eim_fx *fx, size_t rec, const uint32_t *px, size_t n)
{
    size_t got = 0;
    float *f = fx_features(fx, rec, &got);
    CHECK_EQ_INT(got, n);
    size_t same = 0;
    for (size_t i = 0; f && i < got && i < n; i++)
        same += f[i] == (float)px[i];
    CHECK_EQ_INT(same, n);
    free(f);
}

static void classify_cases(bool shm)
{
    eim_fx fx;
    fx_init(&fx, 8, 4);
    if (!shm) fx_set("SHM", "0");
    eim_model *m = fx_start(&fx);
    if (!m) return;
    CHECK(eim_model_uses_shm(m) == shm);
    uint32_t px[32];
    for (size_t i = 0; i < 32; i++)
        px[i] = 0;
    cJSON *r = classify_ok(m, px, 32); /* black: all "dark" */
    CHECK(score(r, "dark") == 1 && score(r, "bright") == 0);
    CHECK(eim_time_ms(r) == 1);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r, "success")));
    CHECK_EQ_INT(cJSON_GetObjectItem(r, "id")->valueint, 2);
    cJSON_Delete(r);
    for (size_t i = 0; i < 32; i++)
        px[i] = 0xffffff;
    r = classify_ok(m, px, 32); /* white: all "bright" */
    CHECK(score(r, "dark") == 0 && score(r, "bright") == 1);
    cJSON_Delete(r);
    pattern(px, 32);
    r = classify_ok(m, px, 32);
    CHECK(score(r, "dark") > 0 && score(r, "bright") > 0);
    cJSON_Delete(r);
    check_recorded(&fx, 2, px, 32);
    /* the requests, exactly */
    char *log = fx_read(fx.requests, NULL);
    char want[2048] = "{\"hello\":1,\"id\":1}\n";
    if (shm) {
        strcat(want, "{\"classify_shm\":{\"elements\":32},\"id\":2}\n"
                     "{\"classify_shm\":{\"elements\":32},\"id\":3}\n"
                     "{\"classify_shm\":{\"elements\":32},\"id\":4}\n");
    } else {
        strcat(want, "{\"classify\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
                     "0,0],\"id\":2}\n{\"classify\":[");
        for (size_t i = 0; i < 32; i++)
            strcat(want, i ? ",16777215" : "16777215");
        strcat(want, "],\"id\":3}\n{\"classify\":[");
        for (size_t i = 0; i < 32; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%u", i ? "," : "", px[i]);
        strcat(want, "],\"id\":4}\n");
    }
    CHECK_EQ_STR(log, want);
    free(log);
    eim_model_stop(m);
    fx_done(&fx);
}

static void test_classify_shm(void)
{
    classify_cases(true);
}

static void test_classify_json(void)
{
    classify_cases(false);
}

/* Offered shared memory declined (no_shm) or broken (features_shm_error): JSON; and float
 * features over JSON reach the model as the same float32 values. */
static void test_json_fallbacks(void)
{
    static const float f[4] = {0.1f, -3.5f, 1e-7f, 16777215.0f};
    eim_fx fx;
    fx_init(&fx, 2, 2);
    eim_opts o = fx_opts(&fx);
    o.no_shm = true;
    eim_model *m = NULL;
    er_err err;
    CHECK_EQ_INT(eim_model_start(&o, &m, &err), ER_OK);
    if (!m) return;
    CHECK(!eim_model_uses_shm(m));
    CHECK(eim_model_get_info(m)->shm_name != NULL);
    cJSON *r = NULL;
    CHECK_EQ_INT(eim_model_classify_float(m, f, 4, 5000, &r, &err), ER_OK);
    cJSON_Delete(r);
    size_t n = 0;
    float *got = fx_features(&fx, 0, &n);
    CHECK_EQ_INT(n, 4);
    for (size_t i = 0; got && i < 4; i++)
        CHECK(got[i] == f[i]);
    free(got);
    char shm[64];
    snprintf(shm, sizeof shm, "%s", eim_model_get_info(m)->shm_name);
    eim_model_stop(m);
    CHECK(!fx_shm_exists(shm));
    fx_done(&fx);

    fx_init(&fx, 2, 2);
    fx_set("SHM", "error");
    m = fx_start(&fx);
    if (!m) return;
    CHECK(!eim_model_uses_shm(m));
    CHECK(eim_model_get_info(m)->shm_error != NULL);
    uint32_t px[4] = {1, 2, 3, 0xffffff};
    cJSON_Delete(classify_ok(m, px, 4));
    check_recorded(&fx, 0, px, 4);
    eim_model_stop(m);
    fx_done(&fx);
}

/* A TensorRT model: start warms it up with a classify of zeros first, as the runner does. */
static void test_gpu_warmup(void)
{
    eim_fx fx;
    fx_init(&fx, 2, 2);
    fx_set("ENGINE", "6");
    eim_model *m = fx_start(&fx);
    if (!m) return;
    CHECK(eim_model_get_info(m)->gpu_warmup);
    uint32_t zeros[4] = {0};
    check_recorded(&fx, 0, zeros, 4);
    char *log = fx_read(fx.requests, NULL);
    CHECK_EQ_STR(log, "{\"hello\":1,\"id\":1}\n{\"classify_shm\":{\"elements\":4},\"id\":2}\n");
    free(log);
    eim_model_stop(m);
    fx_done(&fx);
}

static void test_error_answers(bool shm)
{
    eim_fx fx;
    fx_init(&fx, 4, 2);
    if (!shm) fx_set("SHM", "0");
    eim_model *m = fx_start(&fx);
    if (!m) return;
    uint32_t px[9] = {0};
    cJSON *r = NULL;
    er_err err;
    /* the wrong number of features: the model's own text; it stays usable */
    CHECK_EQ_INT(fx_classify(m, px, 3, 5000, &err), ER_INVALID);
    CHECK(strstr(err.msg, shm ? "Invalid value for 'classify_data_shm.elements', expected 8, but "
                                "got 3"
                              : "Invalid number of features in 'classify', expected 8 but got 3") !=
          NULL);
    if (shm) /* more than the shared memory holds: refused before sending */
        CHECK_EQ_INT(fx_classify(m, px, 9, 5000, &err), ER_SHAPE);
    cJSON_Delete(classify_ok(m, px, 8));
    /* a float the model cannot take over JSON is sent as null, as JavaScript would */
    if (!shm) {
        float f[8] = {0, 0, 0, 0, 0, 0, 0, NAN};
        CHECK_EQ_INT(eim_model_classify_float(m, f, 8, 5000, &r, &err), ER_INVALID);
        CHECK(strstr(err.msg, "should contain all numbers") != NULL);
        cJSON_Delete(classify_ok(m, px, 8));
    }
    eim_model_stop(m);
    fx_done(&fx);
}

static void test_errors_shm(void)
{
    test_error_answers(true);
}

static void test_errors_json(void)
{
    test_error_answers(false);
}

static size_t boxes(const cJSON *reply)
{
    const cJSON *b = cJSON_GetObjectItem(cJSON_GetObjectItem(reply, "result"), "bounding_boxes");
    return cJSON_IsArray(b) ? (size_t)cJSON_GetArraySize(b) : 99;
}

static void test_set_threshold(void)
{
    eim_fx fx;
    fx_init(&fx, 4, 4);
    fx_set("MODEL_TYPE", "object_detection");
    eim_model *m = fx_start(&fx);
    if (!m) return;
    const eim_model_info *in = eim_model_get_info(m);
    CHECK_EQ_STR(in->thresholds, "[{\"id\":3,\"min_score\":0.5,\"type\":\"object_detection\"}]");
    uint32_t px[16];
    for (size_t i = 0; i < 16; i++)
        px[i] = 0x999999; /* brightness 0.6 */
    cJSON *r = classify_ok(m, px, 16);
    CHECK_EQ_INT(boxes(r), 1);
    cJSON_Delete(r);
    er_err err = {{0}};
    CHECK_EQ_INT(eim_model_set_threshold(m, 3, "min_score", 0.75, &err), ER_OK);
    CHECK_EQ_STR(in->thresholds, "[{\"id\":3,\"min_score\":0.75,\"type\":\"object_detection\"}]");
    CHECK(strstr(in->runner_hello, "\"min_score\":0.75") != NULL);
    r = classify_ok(m, px, 16);
    CHECK_EQ_INT(boxes(r), 0);
    cJSON_Delete(r);
    /* no such block: refused without asking the model; a bad key too */
    CHECK_EQ_INT(eim_model_set_threshold(m, 9, "min_score", 0.5, &err), ER_NOTFOUND);
    CHECK_EQ_INT(eim_model_set_threshold(m, 3, "min\"score", 0.5, &err), ER_INVALID);
    CHECK_EQ_INT(eim_model_set_threshold(m, 42, "min_score", 0.5, &err), ER_NOTFOUND);
    char *log = fx_read(fx.requests, NULL);
    CHECK(log && strstr(log, "{\"set_threshold\":{\"id\":3,\"min_score\":0.75},\"id\":3}\n"));
    CHECK(log && strstr(log, "\"id\":9") == NULL);
    free(log);
    eim_model_stop(m);
    fx_done(&fx);

    /* a camera classification model: block 42 is the runner's, changed without the model */
    fx_init(&fx, 2, 2);
    fx_set("LABELS", "a,b,c");
    m = fx_start(&fx);
    if (!m) return;
    in = eim_model_get_info(m);
    CHECK(in->min_score == 0.001);
    CHECK_EQ_INT(eim_model_set_threshold(m, 42, "min_score", 0.6, &err), ER_OK);
    CHECK(in->min_score == 0.6);
    CHECK_EQ_STR(in->thresholds, "[{\"id\":42,\"type\":\"classification\",\"min_score\":0.6}]");
    uint32_t grey[4] = {0x404040, 0x404040, 0x404040, 0x404040}; /* b = 0.25: a 0.5, b 0.5 */
    r = classify_ok(m, grey, 4);
    eim_apply_runner_threshold(r, in->min_score);
    CHECK(score(r, "a") == 0 && score(r, "b") == 0 && score(r, "c") == 0);
    cJSON_Delete(r);
    log = fx_read(fx.requests, NULL);
    CHECK(log && strstr(log, "set_threshold") == NULL);
    free(log);
    eim_model_stop(m);
    fx_done(&fx);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the relay runs */
    int fds = fx_open_fds();
    test_hello();
    test_classify_shm();
    test_classify_json();
    test_json_fallbacks();
    test_gpu_warmup();
    test_errors_shm();
    test_errors_json();
    test_set_threshold();
    CHECK_EQ_INT(fx_open_fds(), fds);
    return check_summary();
}
