/* test_live_proto.c - the live stream's client messages (docs/live.md) and the filter an
 * inference is matched against. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "live/live_proto.h"

static er_rc parse(const char *text, live_msg *m, er_err *err)
{
    memset(err, 0, sizeof *err);
    return live_msg_parse(text, strlen(text), m, err);
}

static void refused(const char *text, er_rc want, const char *why)
{
    live_msg m;
    er_err err;
    CHECK_EQ_INT(parse(text, &m, &err), want);
    CHECK(strstr(err.msg, why) != NULL);
    CHECK(m.token == NULL && m.filter.labels == NULL && m.type == 0);
}

static void test_parse(void)
{
    live_msg m;
    er_err err;
    CHECK_EQ_INT(parse("{\"type\":\"auth\",\"token\":\"secret12\",\"since_seq\":41,\"filter\":"
                       "{\"labels\":[\"person\",\"car\"],\"min_score\":0.5,\"sources\":[\"cam\"]}}",
                       &m, &err),
                 ER_OK);
    CHECK_EQ_INT(m.type, LIVE_MSG_AUTH);
    CHECK_EQ_STR(m.token, "secret12");
    CHECK(m.has_since && m.since_seq == 41);
    CHECK(m.has_filter && m.filter.n_labels == 2 && m.filter.n_sources == 1);
    CHECK_EQ_STR(m.filter.labels[1], "car");
    CHECK(m.filter.has_min_score && m.filter.min_score == 0.5);
    live_msg_free(&m);

    CHECK_EQ_INT(parse(" {\"type\":\"auth\",\"token\":\"t\",\"since_seq\":null}\n", &m, &err),
                 ER_OK);
    CHECK(!m.has_since && !m.has_filter);
    live_msg_free(&m);

    /* empty lists and a zero score are "no constraint" */
    CHECK_EQ_INT(parse("{\"type\":\"subscribe\",\"labels\":[],\"min_score\":0}", &m, &err), ER_OK);
    CHECK(m.type == LIVE_MSG_SUBSCRIBE && m.filter.n_labels == 0 && !m.filter.has_min_score);
    live_msg_free(&m);

    CHECK_EQ_INT(parse("{\"type\":\"ping\",\"id\":[1,\"x\"]}", &m, &err), ER_OK);
    CHECK_EQ_STR(m.ping_id, "[1,\"x\"]");
    live_msg_free(&m);
    CHECK_EQ_INT(parse("{\"type\":\"ping\"}", &m, &err), ER_OK);
    CHECK(m.ping_id == NULL);
    live_msg_free(&m);

    refused("", ER_INVALID, "malformed");
    refused("{\"type\":\"auth\"", ER_INVALID, "malformed");
    refused("{\"type\":\"auth\",\"token\":\"t\"} x", ER_INVALID, "malformed");
    refused("[1]", ER_SHAPE, "object");
    refused("{\"type\":\"ping\",\"id\":\"\xff\xfe\"}", ER_INVALID, "UTF-8");
    refused("{\"type\":7}", ER_SHAPE, "type");
    refused("{\"type\":\"hello\"}", ER_SHAPE, "unknown message type");
    refused("{\"type\":\"auth\"}", ER_SHAPE, "token");
    refused("{\"type\":\"auth\",\"token\":5}", ER_SHAPE, "token");
    refused("{\"type\":\"auth\",\"token\":\"t\",\"since_seq\":-1}", ER_SHAPE, "since_seq");
    refused("{\"type\":\"auth\",\"token\":\"t\",\"since_seq\":1.5}", ER_SHAPE, "since_seq");
    refused("{\"type\":\"auth\",\"token\":\"t\",\"since_seq\":\"3\"}", ER_SHAPE, "since_seq");
    refused("{\"type\":\"auth\",\"token\":\"t\",\"filter\":[]}", ER_SHAPE, "filter");
    refused("{\"type\":\"subscribe\",\"labels\":\"person\"}", ER_SHAPE, "labels");
    refused("{\"type\":\"subscribe\",\"labels\":[\"\"]}", ER_SHAPE, "labels");
    refused("{\"type\":\"subscribe\",\"sources\":[1]}", ER_SHAPE, "sources");
    refused("{\"type\":\"subscribe\",\"min_score\":1.01}", ER_SHAPE, "min_score");
    refused("{\"type\":\"subscribe\",\"min_score\":\"0.5\"}", ER_SHAPE, "min_score");

    /* bounds: item count, item length, message size */
    char big[8192];
    strcpy(big, "{\"type\":\"subscribe\",\"labels\":[");
    for (int i = 0; i < (int)LIVE_FILTER_MAX_ITEMS + 1; i++)
        strcat(big, i ? ",\"a\"" : "\"a\"");
    strcat(big, "]}");
    refused(big, ER_SHAPE, "at most");
    char longlabel[LIVE_FILTER_ITEM_MAX + 64];
    memset(longlabel, 'x', sizeof longlabel);
    memcpy(longlabel, "{\"type\":\"subscribe\",\"labels\":[\"", 31);
    strcpy(longlabel + 31 + LIVE_FILTER_ITEM_MAX + 1, "\"]}");
    refused(longlabel, ER_SHAPE, "at most");
    size_t n = LIVE_MSG_MAX_BYTES + 1;
    char *huge = malloc(n);
    memset(huge, ' ', n);
    CHECK_EQ_INT(live_msg_parse(huge, n, &m, &err), ER_TOOBIG);
    free(huge);
    CHECK_EQ_INT(live_msg_parse("{\"type\":\"ping\"}\0", 16, &m, &err), ER_INVALID);
}

static void test_filter(void)
{
    inference_label labels[] = {{.label = "person", .score = 0.8}, {.label = "car", .score = 0.3}};
    inference inf;
    memset(&inf, 0, sizeof inf);
    inf.labels = labels;
    inf.n_labels = 2;
    inf.top_label = "person";
    inf.top_score = 0.8;
    inf.source = "camera";
    inference empty;
    memset(&empty, 0, sizeof empty);
    empty.source = "camera";

    live_msg m;
    er_err err;
    static const struct {
        const char *sub;
        bool inf, empty;
    } cases[] = {
        {"{\"type\":\"subscribe\"}", true, true},
        {"{\"type\":\"subscribe\",\"labels\":[\"car\"]}", true, false},
        {"{\"type\":\"subscribe\",\"labels\":[\"dog\",\"cat\"]}", false, false},
        {"{\"type\":\"subscribe\",\"min_score\":0.8}", true, false},
        {"{\"type\":\"subscribe\",\"min_score\":0.81}", false, false},
        {"{\"type\":\"subscribe\",\"sources\":[\"mcu\",\"camera\"]}", true, true},
        {"{\"type\":\"subscribe\",\"sources\":[\"mcu\"]}", false, false},
        {"{\"type\":\"subscribe\",\"labels\":[\"car\"],\"min_score\":0.5,\"sources\":[\"camera\"]}",
         true, false},
        {"{\"type\":\"subscribe\",\"labels\":[\"car\"],\"min_score\":0.9}", false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_EQ_INT(parse(cases[i].sub, &m, &err), ER_OK);
        CHECK_EQ_INT(live_filter_match(&m.filter, &inf), cases[i].inf);
        CHECK_EQ_INT(live_filter_match(&m.filter, &empty), cases[i].empty);
        live_msg_free(&m);
    }
    CHECK_EQ_INT(parse("{\"type\":\"subscribe\",\"labels\":[\"a\"],\"min_score\":0.25}", &m, &err),
                 ER_OK);
    cJSON *j = live_filter_to_json(&m.filter);
    char *text = cJSON_PrintUnformatted(j);
    CHECK_EQ_STR(text, "{\"labels\":[\"a\"],\"min_score\":0.25,\"sources\":[]}");
    free(text);
    cJSON_Delete(j);
    live_filter moved = {0};
    live_filter_move(&moved, &m.filter);
    CHECK(m.filter.labels == NULL && moved.n_labels == 1);
    live_filter_free(&moved);
    live_msg_free(&m);
}

/* A WebSocket message is not NUL-terminated, and libcjson is not built with the sanitizer, so
 * ASan cannot see it read past the end: each message (and each of its prefixes) is placed at
 * the very end of a page followed by an inaccessible one, where any read past its last byte is
 * a crash. */
static void test_unterminated(void)
{
    static const char *const msgs[] = {
        ("{\"type\":\"auth\",\"token\":\"0123456789abcdef\",\"since_seq\":12,"
         "\"filter\":{\"labels\":[\"person\"],\"min_score\":0.5}}"),
        "{\"type\":\"ping\",\"id\":[1,2.5e3,true,false,null,\"\\u00e9\\ud83d\\ude00\"]}",
        "{\"type\":\"subscribe\",\"sources\":[\"cam\\\"x\"]}  ",
        "\xef\xbb\xbf{\"type\":\"ping\"}",
    };
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *mem =
        mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(mem != MAP_FAILED);
    if (mem == MAP_FAILED) return;
    CHECK(mprotect(mem + page, (size_t)page, PROT_NONE) == 0);
    int parsed = 0;
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        size_t n = strlen(msgs[i]);
        for (size_t len = 1; len <= n; len++) {
            char *text = (char *)mem + page - len;
            memcpy(text, msgs[i], len);
            live_msg m;
            er_err err = {{0}};
            if (live_msg_parse(text, len, &m, &err) == ER_OK) parsed++;
            live_msg_free(&m);
        }
    }
    CHECK(parsed >= 3); /* the whole messages (and a prefix or two) parse */
    munmap(mem, (size_t)page * 2);
}

int main(void)
{
    test_parse();
    test_filter();
    test_unterminated();
    return check_summary();
}
