/* test_forward_commands.c - command parsing: every verb, values as numbers or quoted, and the
 * malformed cases that must get an error reply instead of a crash; the ids and the list of
 * handled commands that keep a retained command from running twice. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "forward/commands.h"

static er_rc parse(const char *s, commands_cmd *c, er_err *err)
{
    return commands_parse(s, strlen(s), c, err);
}

/* The ids of the commands run while command/input may still hold one retained: a stable
 * digest of the payload bytes; the list newest first, each id once, the oldest dropped. */
static void test_handled(void)
{
    char a[COMMANDS_ID_LEN + 1], b[COMMANDS_ID_LEN + 1], id[COMMANDS_ID_LEN + 1];
    commands_id("", 0, a);
    CHECK_EQ_STR(a, "cbf29ce484222325"); /* FNV-1a 64's offset basis */
    commands_id("{\"cmd\":\"restart\"}", 17, a);
    commands_id("{\"cmd\":\"restart\"} ", 18, b);
    CHECK(strcmp(a, b) != 0);
    CHECK_EQ_INT(strlen(a), COMMANDS_ID_LEN);
    commands_handled h = {0};
    CHECK(!commands_handled_has(&h, a));
    commands_handled_add(&h, a);
    commands_handled_add(&h, b);
    commands_handled_add(&h, a); /* again: moves to the front, once */
    CHECK_EQ_INT(h.n, 2);
    CHECK_EQ_STR(h.ids[0], a);
    CHECK_EQ_STR(h.ids[1], b);
    for (int i = 0; i < COMMANDS_HANDLED_MAX + 3; i++) {
        snprintf(id, sizeof id, "%016x", i);
        commands_handled_add(&h, id);
    }
    CHECK_EQ_INT(h.n, COMMANDS_HANDLED_MAX);
    CHECK(!commands_handled_has(&h, a) && !commands_handled_has(&h, b)); /* the oldest went */
    snprintf(id, sizeof id, "%016x", COMMANDS_HANDLED_MAX + 2);
    CHECK_EQ_STR(h.ids[0], id);
    snprintf(id, sizeof id, "%016x", 3);
    CHECK_EQ_STR(h.ids[COMMANDS_HANDLED_MAX - 1], id);
    snprintf(id, sizeof id, "%016x", 2);
    CHECK(!commands_handled_has(&h, id));
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
    test_handled();
    return check_summary();
}
