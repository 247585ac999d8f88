/* test_forward_topics.c - topic names byte for byte and the IoT Core topic limits. */
#include <string.h>

#include "check.h"
#include "forward/topics.h"

int main(void)
{
    topics t;
    er_err err = {{0}};
    CHECK_EQ_INT(topics_build("MyEdgeImpulseDevice_0242ac110002", &t, &err), ER_OK);
    CHECK_EQ_STR(t.t[TOPICS_INFERENCE],
                 "/edgeimpulse/device/MyEdgeImpulseDevice_0242ac110002/inference/output");
    CHECK_EQ_STR(t.t[TOPICS_MODEL_METRICS],
                 "/edgeimpulse/device/MyEdgeImpulseDevice_0242ac110002/model/metrics");
    CHECK_EQ_STR(t.t[TOPICS_CMD_IN],
                 "/edgeimpulse/device/MyEdgeImpulseDevice_0242ac110002/command/input");
    CHECK_EQ_STR(t.t[TOPICS_CMD_OUT],
                 "/edgeimpulse/device/MyEdgeImpulseDevice_0242ac110002/command/output");
    CHECK_EQ_STR(t.t[TOPICS_BATCH],
                 "/edgeimpulse/device/MyEdgeImpulseDevice_0242ac110002/inference/batch");

    /* names that would change the topic structure or use wildcards are refused */
    CHECK_EQ_INT(topics_build("a/b", &t, &err), ER_INVALID);
    CHECK(strstr(err.msg, "a/b") != NULL);
    CHECK_EQ_INT(topics_build("a+b", &t, &err), ER_INVALID);
    CHECK_EQ_INT(topics_build("a#", &t, &err), ER_INVALID);
    CHECK_EQ_INT(topics_build("", &t, &err), ER_INVALID);
    CHECK_EQ_INT(topics_build(NULL, &t, &err), ER_INVALID);

    /* 256 bytes is the limit: "/edgeimpulse/device/" (20) + name + "/inference/output" (17,
     * the longest suffix) */
    char name[300];
    memset(name, 'x', sizeof name);
    name[256 - 20 - 17] = '\0';
    CHECK_EQ_INT(topics_build(name, &t, &err), ER_OK);
    CHECK_EQ_INT(strlen(t.t[TOPICS_INFERENCE]), 256);
    name[256 - 20 - 17] = 'x';
    name[256 - 20 - 16] = '\0';
    CHECK_EQ_INT(topics_build(name, &t, &err), ER_INVALID);
    CHECK(strstr(err.msg, "256 bytes") != NULL);

    CHECK(topics_valid("/a/b/c/d/e/f/g"));    /* 7 slashes */
    CHECK(!topics_valid("/a/b/c/d/e/f/g/h")); /* 8 */
    CHECK(!topics_valid(""));
    CHECK(!topics_valid("/a/+/b"));
    CHECK(!topics_valid("/a/#"));
    return check_summary();
}
