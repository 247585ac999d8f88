/* test_forward_commands.c - command parsing: every verb, values as numbers or quoted, and the
 * malformed cases that must get an error reply instead of a crash. */
#include <string.h>

#include "check.h"
#include "forward/commands.h"

static er_rc parse(const char *s, commands_cmd *c, er_err *err)
{
    return commands_parse(s, strlen(s), c, err);
}

int main(void)
{
    commands_cmd c;
    er_err err = {{0}};
    for (int v = 0; v < COMMANDS_VERB_COUNT; v++) {
        char json[160];
        const char *name = commands_verb_name((commands_verb)v);
        CHECK(name != NULL);
        const char *value = v == COMMANDS_SET_CRITERIA     ? ",\"value\":\"gt\""
                            : v == COMMANDS_SET_CONFIDENCE ? ",\"value\":0.75"
                            : v == COMMANDS_CLEAR_CACHE_FILE
                                ? ",\"value\":\"e4faa78b-2a09-40d1-adfd-8e5fc32feb11\""
                                : "";
        snprintf(json, sizeof json, "{\"cmd\":\"%s\"%s}", name, value);
        CHECK_EQ_INT(parse(json, &c, &err), ER_OK);
        CHECK_EQ_INT(c.verb, v);
    }
    CHECK(commands_verb_name(COMMANDS_VERB_COUNT) == NULL);
    CHECK_EQ_INT(parse("{\"cmd\":\"set_threshold_filter_confidence\",\"value\":\"75\"}", &c, &err),
                 ER_OK);
    CHECK(c.has_number && c.number == 75);
    CHECK_EQ_INT(parse("{\"cmd\":\"set_threshold_filter_criteria\",\"value\":\"le\"}", &c, &err),
                 ER_OK);
    CHECK_EQ_STR(c.text, "le");

    /* malformed: each is refused with a sentence */
    static const char *const bad[] = {
        "",
        "not json",
        "[1,2]",
        "{\"cmd\":1}",
        "{\"value\":1}",
        "{\"cmd\":\"format_disk\"}",
        "{\"cmd\":\"set_threshold_filter_confidence\"}",
        "{\"cmd\":\"set_threshold_filter_confidence\",\"value\":\"high\"}",
        "{\"cmd\":\"set_threshold_filter_confidence\",\"value\":[1]}",
        "{\"cmd\":\"set_threshold_filter_criteria\",\"value\":3}",
        "{\"cmd\":\"clear_cache_file\",\"value\":\"../../etc/passwd\"}",
        "{\"cmd\":\"clear_cache_file\"}",
        "{\"cmd\":\"restart\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        er_rc rc = parse(bad[i], &c, &err);
        CHECK(rc == ER_INVALID || rc == ER_SHAPE);
        CHECK(err.msg[0] != '\0');
    }
    CHECK_EQ_INT(parse("{\"cmd\":\"format_disk\"}", &c, &err), ER_SHAPE);
    CHECK(strstr(err.msg, "format_disk") != NULL);
    /* a long value is refused, not truncated into something else */
    char big[400];
    memset(big, 'a', sizeof big);
    memcpy(big, "{\"cmd\":\"set_threshold_filter_criteria\",\"value\":\"", 48);
    memcpy(big + sizeof big - 3, "\"}", 3);
    CHECK_EQ_INT(parse(big, &c, &err), ER_SHAPE);
    /* over the size limit */
    static char huge[COMMANDS_MAX_BYTES + 10];
    memset(huge, ' ', sizeof huge);
    CHECK_EQ_INT(commands_parse(huge, sizeof huge, &c, &err), ER_INVALID);
    /* a value that overflows a double is no number, whatever the verb (found by fuzz_commands) */
    CHECK_EQ_INT(parse("{\"cmd\":\"get_threshold_filter_confidence\",\"value\":1e999}", &c, &err),
                 ER_OK);
    CHECK(!c.has_number && !c.has_text);
    CHECK(parse("{\"cmd\":\"set_threshold_filter_confidence\",\"value\":-1e999}", &c, &err) !=
          ER_OK);
    /* not NUL-terminated: only len bytes are read */
    const char *prefix = "{\"cmd\":\"reset_metrics\"}garbage";
    CHECK_EQ_INT(commands_parse(prefix, 23, &c, &err), ER_OK);
    CHECK_EQ_INT(c.verb, COMMANDS_RESET_METRICS);
    return check_summary();
}
