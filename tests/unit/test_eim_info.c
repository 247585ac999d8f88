/* test_eim_info.c - the model's hello read into eim_model_info (server/eim/eim_info.c): every
 * field, the runner's additions (model_type and frames defaults, sensorType, its block 42 for
 * camera classification models only, the minimum score from the first classification block),
 * the offered shared memory, hellos refused or of the wrong shape; and the runner's rules on
 * results: timeMs and scores below the minimum zeroed. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "eim/eim.h"

/* A hello as the stand-in (and a real model) sends it: sorted keys, compact. */
static const char hello_camera[] =
    "{\"features_shm\":{\"elements\":9216,\"name\":\"/shm-0804fa96d7b9\",\"size_bytes\":36864,"
    "\"type\":\"float32\"},\"id\":1,\"inferencing_engine\":{\"engine_type\":2,\"properties\":[]},"
    "\"model_parameters\":{\"axis_count\":1,\"frequency\":0,\"has_anomaly\":0,"
    "\"has_object_tracking\":false,\"image_channel_count\":3,\"image_input_frames\":1,"
    "\"image_input_height\":96,\"image_input_width\":96,\"image_resize_mode\":\"fit-shortest\","
    "\"inferencing_engine\":2,\"input_features_count\":9216,\"interval_ms\":1,\"label_count\":2,"
    "\"labels\":[\"dark\",\"bright\"],\"model_type\":\"classification\",\"sensor\":3,"
    "\"slice_size\":2304,\"thresholds\":[],\"use_continuous_mode\":false},\"project\":{"
    "\"deploy_version\":7,\"id\":213904,\"impulse_id\":1,\"impulse_name\":\"Impulse #1\","
    "\"name\":\"parcels\",\"owner\":\"ei-relay tests\"},\"success\":true}";

static er_rc parse(const char *text, eim_model_info *in, er_err *err)
{
    size_t n = strlen(text);
    char *copy = malloc(n ? n : 1); /* no terminator: a read past the end shows under ASan */
    memcpy(copy, text, n);
    memset(err, 0, sizeof *err);
    er_rc rc = eim_info_parse(copy, n, in, err);
    free(copy);
    return rc;
}

/* The runner view's modelParameters.thresholds, as text. */
static char *view_thresholds(const eim_model_info *in)
{
    cJSON *v = cJSON_Parse(in->runner_hello);
    cJSON *t = cJSON_GetObjectItem(cJSON_GetObjectItem(v, "modelParameters"), "thresholds");
    char *s = t ? cJSON_PrintUnformatted(t) : strdup("(none)");
    cJSON_Delete(v);
    return s;
}

static void test_camera_classification(void)
{
    eim_model_info in;
    er_err err;
    CHECK_EQ_INT(parse(hello_camera, &in, &err), ER_OK);
    CHECK_EQ_INT(in.project_id, 213904);
    CHECK_EQ_INT(in.deploy_version, 7);
    CHECK_EQ_STR(in.project_owner, "ei-relay tests");
    CHECK_EQ_STR(in.project_name, "parcels");
    CHECK_EQ_INT(in.width, 96);
    CHECK_EQ_INT(in.height, 96);
    CHECK_EQ_INT(in.channels, 3);
    CHECK_EQ_INT(in.frames, 1);
    CHECK_EQ_STR(in.resize_mode, "fit-shortest");
    CHECK_EQ_INT(in.sensor, 3);
    CHECK_EQ_STR(in.sensor_type, "camera");
    CHECK_EQ_STR(in.model_type, "classification");
    CHECK_EQ_INT(in.n_labels, 2);
    if (in.n_labels == 2) {
        CHECK_EQ_STR(in.labels[0], "dark");
        CHECK_EQ_STR(in.labels[1], "bright");
    }
    CHECK_EQ_INT(in.has_anomaly, 0);
    CHECK(!in.has_object_tracking);
    CHECK_EQ_INT(in.input_features_count, 9216);
    CHECK_EQ_INT(in.inferencing_engine, 2);
    /* the runner's block 42 for a camera classification model, and its minimum score */
    CHECK_EQ_STR(in.thresholds, "[{\"id\":42,\"type\":\"classification\",\"min_score\":0.001}]");
    CHECK(in.min_score == 0.001);
    CHECK_EQ_STR(in.shm_name, "/shm-0804fa96d7b9");
    CHECK_EQ_INT(in.shm_size_bytes, 36864);
    CHECK_EQ_INT(in.shm_elements, 9216);
    CHECK(in.shm_error == NULL);
    CHECK_EQ_STR(in.hello, hello_camera);
    /* the runner's view: the model's parameters in their order, sensorType last */
    CHECK_EQ_STR(
        in.runner_hello,
        "{\"type\":\"hello\",\"project\":{\"deploy_version\":7,\"id\":213904,\"impulse_id\":1,"
        "\"impulse_name\":\"Impulse #1\",\"name\":\"parcels\",\"owner\":\"ei-relay tests\"},"
        "\"modelParameters\":{\"axis_count\":1,\"frequency\":0,\"has_anomaly\":0,"
        "\"has_object_tracking\":false,\"image_channel_count\":3,\"image_input_frames\":1,"
        "\"image_input_height\":96,\"image_input_width\":96,\"image_resize_mode\":\"fit-shortest\","
        "\"inferencing_engine\":2,\"input_features_count\":9216,\"interval_ms\":1,\"label_count\":"
        "2,"
        "\"labels\":[\"dark\",\"bright\"],\"model_type\":\"classification\",\"sensor\":3,"
        "\"slice_size\":2304,\"thresholds\":[{\"id\":42,\"type\":\"classification\","
        "\"min_score\":0.001}],\"use_continuous_mode\":false,\"sensorType\":\"camera\"},"
        "\"inferencingEngine\":{\"engine_type\":2,\"properties\":[]}}");
    eim_info_free(&in);
    eim_info_free(&in); /* twice is fine: freed fields are cleared */
}

/* Replaces the first occurrence of from by to in hello_camera. */
static char *variant(const char *from, const char *to)
{
    const char *p = strstr(hello_camera, from);
    CHECK(p != NULL);
    if (!p) return strdup(hello_camera);
    size_t a = (size_t)(p - hello_camera), n = strlen(hello_camera);
    char *out = malloc(n - strlen(from) + strlen(to) + 1);
    memcpy(out, hello_camera, a);
    strcpy(out + a, to);
    strcat(out, p + strlen(from));
    return out;
}

static void check_variant(const char *from, const char *to, er_rc want, const char *want_thresholds,
                          double want_min, const char *want_view_thresholds)
{
    char *h = variant(from, to);
    eim_model_info in;
    er_err err;
    er_rc rc = parse(h, &in, &err);
    CHECK_EQ_INT(rc, want);
    if (rc != ER_OK) {
        if (!err.msg[0]) fprintf(stderr, "no error text for %s\n", to);
        CHECK(err.msg[0] != '\0');
    }
    if (rc == ER_OK && want_thresholds) {
        CHECK_EQ_STR(in.thresholds, want_thresholds);
        CHECK(in.min_score == want_min);
        char *vt = view_thresholds(&in);
        CHECK_EQ_STR(vt, want_view_thresholds);
        free(vt);
    }
    eim_info_free(&in);
    free(h);
}

static void test_thresholds(void)
{
    /* the model's own classification block comes first: its min_score rules */
    check_variant("\"thresholds\":[]",
                  "\"thresholds\":[{\"id\":17,\"type\":\"classification\",\"min_score\":0.6}]",
                  ER_OK,
                  "[{\"id\":17,\"type\":\"classification\",\"min_score\":0.6},{\"id\":42,\"type\":"
                  "\"classification\",\"min_score\":0.001}]",
                  0.6,
                  "[{\"id\":17,\"type\":\"classification\",\"min_score\":0.6},{\"id\":42,\"type\":"
                  "\"classification\",\"min_score\":0.001}]");
    /* a classification block without min_score: the default */
    check_variant("\"thresholds\":[]", "\"thresholds\":[{\"id\":1,\"type\":\"classification\"}]",
                  ER_OK,
                  "[{\"id\":1,\"type\":\"classification\"},{\"id\":42,\"type\":\"classification\","
                  "\"min_score\":0.001}]",
                  0.001,
                  "[{\"id\":1,\"type\":\"classification\"},{\"id\":42,\"type\":\"classification\","
                  "\"min_score\":0.001}]");
    /* object detection: no block 42 */
    check_variant("\"model_type\":\"classification\"", "\"model_type\":\"object_detection\"", ER_OK,
                  "[]", 0.001, "[]");
    /* not a camera: no block 42 */
    check_variant("\"sensor\":3", "\"sensor\":1", ER_OK, "[]", 0.001, "[]");
    /* no model_type: classification, and a camera model still gets block 42 */
    check_variant("\"model_type\":\"classification\",", "", ER_OK,
                  "[{\"id\":42,\"type\":\"classification\",\"min_score\":0.001}]", 0.001,
                  "[{\"id\":42,\"type\":\"classification\",\"min_score\":0.001}]");
    /* no thresholds at all: the runner has nothing to push its block onto */
    check_variant("\"thresholds\":[],", "", ER_OK, "[]", 0.001, "(none)");
}

static void test_defaults_and_shm(void)
{
    eim_model_info in;
    er_err err;
    char *h = variant("\"image_input_frames\":1,\"image_input_height\":96,",
                      "\"image_input_height\":96,");
    CHECK_EQ_INT(parse(h, &in, &err), ER_OK);
    CHECK_EQ_INT(in.frames, 1);
    CHECK(strstr(in.runner_hello, "\"image_input_frames\":1") != NULL);
    CHECK(!in.gpu_warmup);
    eim_info_free(&in);
    free(h);
    /* the runner's GPU warm-up: TensorRT, or GPU delegates */
    h = variant("\"inferencing_engine\":2,\"input", "\"inferencing_engine\":6,\"input");
    CHECK_EQ_INT(parse(h, &in, &err), ER_OK);
    CHECK(in.gpu_warmup);
    eim_info_free(&in);
    free(h);
    h = variant("\"properties\":[]", "\"properties\":[\"x\",\"gpu_delegates\"]");
    CHECK_EQ_INT(parse(h, &in, &err), ER_OK);
    CHECK(in.gpu_warmup);
    eim_info_free(&in);
    free(h);
    /* the model_type default is in the runner's view too */
    h = variant("\"model_type\":\"classification\",", "\"model_type\":\"\",");
    CHECK_EQ_INT(parse(h, &in, &err), ER_OK);
    CHECK_EQ_STR(in.model_type, "classification");
    CHECK(strstr(in.runner_hello, "\"model_type\":\"classification\"") != NULL);
    eim_info_free(&in);
    free(h);
    /* no shared memory, but an error about it */
    h = variant("\"features_shm\":{\"elements\":9216,\"name\":\"/shm-0804fa96d7b9\","
                "\"size_bytes\":36864,\"type\":\"float32\"}",
                "\"features_shm_error\":\"shm_open for '/shm-x' failed (13)\"");
    CHECK_EQ_INT(parse(h, &in, &err), ER_OK);
    CHECK(in.shm_name == NULL);
    CHECK_EQ_STR(in.shm_error, "shm_open for '/shm-x' failed (13)");
    eim_info_free(&in);
    free(h);
    /* shared memory the relay cannot use: recorded, not used */
    static const char *const bad_shm[][2] = {
        {"\"type\":\"float32\"", "\"type\":\"int8\""},
        {"\"size_bytes\":36864", "\"size_bytes\":36863"},
        {"\"name\":\"/shm-0804fa96d7b9\"", "\"name\":\"shm-0804fa96d7b9\""},
        {"\"name\":\"/shm-0804fa96d7b9\"", "\"name\":\"/a/b\""},
        {"\"elements\":9216", "\"elements\":0"},
        {"\"elements\":9216", "\"elements\":1.5"},
    };
    for (size_t i = 0; i < sizeof bad_shm / sizeof bad_shm[0]; i++) {
        h = variant(bad_shm[i][0], bad_shm[i][1]);
        CHECK_EQ_INT(parse(h, &in, &err), ER_OK);
        CHECK(in.shm_name == NULL);
        CHECK(in.shm_error != NULL);
        eim_info_free(&in);
        free(h);
    }
}

static void test_refused_and_bad_shapes(void)
{
    eim_model_info in;
    er_err err;
    CHECK_EQ_INT(parse("{\"error\":\"Invalid message 'hello', already initialized\",\"id\":1,"
                       "\"success\":false}",
                       &in, &err),
                 ER_INVALID);
    CHECK(strstr(err.msg, "already initialized") != NULL);
    eim_info_free(&in);
    CHECK_EQ_INT(parse("not json", &in, &err), ER_INVALID);
    eim_info_free(&in);
    CHECK_EQ_INT(parse("[1]", &in, &err), ER_INVALID);
    eim_info_free(&in);
    CHECK_EQ_INT(parse("{\"success\":true,\"model_parameters\":{},\"x\":\"\xff\"}", &in, &err),
                 ER_INVALID); /* not UTF-8 */
    eim_info_free(&in);
    CHECK_EQ_INT(parse("{\"success\":true}", &in, &err), ER_SHAPE);
    eim_info_free(&in);
    static const char *const bad[][2] = {
        {"\"labels\":[\"dark\",\"bright\"]", "\"labels\":[\"dark\",2]"},
        {"\"labels\":[\"dark\",\"bright\"]", "\"labels\":\"dark\""},
        {"\"image_input_width\":96", "\"image_input_width\":-1"},
        {"\"image_input_width\":96", "\"image_input_width\":96.5"},
        {"\"image_input_width\":96", "\"image_input_width\":\"96\""},
        {"\"image_channel_count\":3", "\"image_channel_count\":7"},
        {"\"input_features_count\":9216", "\"input_features_count\":1e12"},
        {"\"model_type\":\"classification\"", "\"model_type\":3"},
        {"\"thresholds\":[]", "\"thresholds\":{}"},
        {"\"thresholds\":[]", "\"thresholds\":[1]"},
        {"\"project\":{", "\"project\":[],\"x\":{"},
        {"\"name\":\"parcels\"", "\"name\":5"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_variant(bad[i][0], bad[i][1], ER_SHAPE, NULL, 0, NULL);
}

static void test_time_ms(void)
{
    static const struct {
        const char *reply;
        double ms;
    } cases[] = {
        {"{\"timing\":{\"anomaly\":1,\"classification\":5,\"dsp\":2,\"json\":9,\"stdin\":9}}", 8},
        {"{\"timing\":{\"anomaly\":0,\"classification\":5,\"dsp\":2,\"postprocessing\":3}}", 10},
        {"{\"timing\":{\"anomaly\":0,\"classification\":0,\"dsp\":0,\"msg_handler\":4}}", 1},
        {"{\"timing\":{\"dsp\":1.5,\"classification\":\"x\"}}", 1.5},
        {"{\"result\":{}}", 1},
        {"[]", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *r = cJSON_Parse(cases[i].reply);
        CHECK(eim_time_ms(r) == cases[i].ms);
        cJSON_Delete(r);
    }
    CHECK(eim_time_ms(NULL) == 1);
}

static void test_runner_threshold(void)
{
    cJSON *r = cJSON_Parse("{\"result\":{\"classification\":{\"a\":0.0009,\"b\":0.001,\"c\":0.9,"
                           "\"d\":\"x\"},\"anomaly\":0.0001}}");
    eim_apply_runner_threshold(r, 0.001);
    char *s = cJSON_PrintUnformatted(r);
    CHECK_EQ_STR(s, "{\"result\":{\"classification\":{\"a\":0,\"b\":0.001,\"c\":0.9,\"d\":\"x\"},"
                    "\"anomaly\":0.0001}}");
    free(s);
    eim_apply_runner_threshold(r, 0.95);
    s = cJSON_PrintUnformatted(r);
    CHECK_EQ_STR(s, "{\"result\":{\"classification\":{\"a\":0,\"b\":0,\"c\":0,\"d\":\"x\"},"
                    "\"anomaly\":0.0001}}");
    free(s);
    cJSON_Delete(r);
    /* detection results and odd replies are left alone */
    r = cJSON_Parse("{\"result\":{\"bounding_boxes\":[{\"value\":0.0001}]}}");
    eim_apply_runner_threshold(r, 0.5);
    s = cJSON_PrintUnformatted(r);
    CHECK_EQ_STR(s, "{\"result\":{\"bounding_boxes\":[{\"value\":0.0001}]}}");
    free(s);
    cJSON_Delete(r);
    eim_apply_runner_threshold(NULL, 0.5);
}

int main(void)
{
    test_camera_classification();
    test_thresholds();
    test_defaults_and_shm();
    test_refused_and_bad_shapes();
    test_time_ms();
    test_runner_threshold();
    return check_summary();
}
