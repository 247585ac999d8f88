/* test_message.c - the IoT Core inference message: field names and order byte for byte. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/inference.h"
#include "model/message.h"

static inference *sample(const char *result_json)
{
    inference *inf = inference_create();
    strcpy(inf->guid, "2f7c8a34-5d4e-4b5a-9d7e-0c1f2a3b4c5d");
    inf->ts = 1764000000000LL;
    inf->seq = 7;
    inference_set_str(&inf->device, "Dev_0242ac110002");
    inference_set_str(&inf->result_json, result_json);
    inference_set_str(&inf->timing_json, "{\"dsp\":2,\"classification\":9,\"anomaly\":1}");
    return inf;
}

static void test_classification(void)
{
    inference *inf = sample("{\"classification\":{\"idle\":0.25,\"wave\":0.75}}");
    inference_set_str(&inf->info_json, "\"model v3\"");
    util_buf out = {0};
    message_opts o = {0};
    CHECK_EQ_INT(message_inference_json(inf, &o, &out), ER_OK);
    CHECK_EQ_STR(out.data, "{\"time_ms\":12,\"info\":\"model v3\",\"inference_count\":2,"
                           "\"total_inferences\":7,\"id\":\"2f7c8a34-5d4e-4b5a-9d7e-0c1f2a3b4c5d\","
                           "\"ts\":1764000000000,\"c\":{\"idle\":0.25,\"wave\":0.75},"
                           "\"s3_bucket\":\"unset\",\"s3_prefix\":\"unset\",\"seq\":7,"
                           "\"device\":\"Dev_0242ac110002\"}");
    util_buf_free(&out);
    inference_destroy(inf);
}

static void test_boxes_with_image(void)
{
    inference *inf = sample("{\"bounding_boxes\":[{\"label\":\"person\",\"value\":0.5,\"x\":1,"
                            "\"y\":2,\"width\":3,\"height\":4}],\"anomaly\":0.5}");
    inf->has_anomaly = 1;
    inf->anomaly = 0.5;
    inf->image.data = malloc(3);
    memcpy(inf->image.data, "\xff\xd8\xff", 3);
    inf->image.len = 3;
    util_buf out = {0};
    message_opts o = {.include_image = true, .s3_bucket = "my-bucket"};
    CHECK_EQ_INT(message_inference_json(inf, &o, &out), ER_OK);
    CHECK_EQ_STR(out.data,
                 "{\"time_ms\":12,\"inference_count\":1,\"total_inferences\":7,"
                 "\"id\":\"2f7c8a34-5d4e-4b5a-9d7e-0c1f2a3b4c5d\",\"ts\":1764000000000,"
                 "\"image\":\"/9j/\",\"box\":[{\"label\":\"person\",\"value\":0.5,\"x\":1,\"y\":2,"
                 "\"width\":3,\"height\":4}],\"s3_bucket\":\"my-bucket\",\"s3_prefix\":\"unset\","
                 "\"seq\":7,\"device\":\"Dev_0242ac110002\",\"anomaly\":0.5}");
    util_buf_free(&out);
    inference_destroy(inf);
}

static void test_grid_and_freeform(void)
{
    inference *inf = sample("{\"visual_anomaly_grid\":[],\"visual_anomaly_max\":3}");
    util_buf out = {0};
    message_opts o = {0};
    CHECK_EQ_INT(message_inference_json(inf, &o, &out), ER_OK);
    CHECK(strstr(out.data, "\"grid\":[]") != NULL);
    CHECK(strstr(out.data, "\"c\"") == NULL);
    util_buf_free(&out);
    inference_destroy(inf);

    inf = sample("{\"freeform\":[[1,2],[3]]}");
    CHECK_EQ_INT(message_inference_json(inf, &o, &out), ER_OK);
    CHECK(strstr(out.data, "\"freeform\":[[1,2],[3]],\"s3_bucket\"") != NULL);
    util_buf_free(&out);
    inference_destroy(inf);
}

static void test_labels(void)
{
    inference *inf = inference_create();
    CHECK_EQ_INT(inference_add_label(inf, "cat", 0.2), ER_OK);
    CHECK_EQ_INT(inference_add_label(inf, "dog", 0.7), ER_OK);
    CHECK_EQ_INT(inference_add_label(inf, "cat", 0.9), ER_OK);
    CHECK_EQ_INT(inference_add_label(inf, "dog", 0.1), ER_OK);
    CHECK_EQ_INT(inf->n_labels, 2);
    CHECK_EQ_STR(inf->top_label, "cat");
    CHECK(inf->top_score == 0.9);
    CHECK(inf->labels[1].score == 0.7); /* best score per label is kept */
    CHECK_EQ_STR(inference_kind_name(INFERENCE_OBJECT_DETECTION), "object-detection");
    CHECK_EQ_INT(inference_kind_parse("visual-anomaly"), INFERENCE_VISUAL_ANOMALY);
    CHECK_EQ_INT(inference_kind_parse("nope"), -1);
    inference_destroy(inf);
}

int main(void)
{
    test_classification();
    test_boxes_with_image();
    test_grid_and_freeform();
    test_labels();
    return check_summary();
}
