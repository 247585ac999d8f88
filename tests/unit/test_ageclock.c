/* test_ageclock.c - the age clock's pure rules (core/ageclock.h): the elapsed time between two
 * marks in one boot and across boots, resuming from a mark, the clock at a boot time, and the
 * persisted text (round trip, and everything else refused). */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/ageclock.h"

#define BOOT_A "1b6d0b4c-5f0e-4c3a-9a55-0f2c1d7e8a90"
#define BOOT_B "7e0c2f6a-3d41-4b8e-8c2d-5a9b0e1f4c37"
#define YEAR (365LL * 86400000)

static ageclock_mark mark(const char *boot, int64_t boot_ms, int64_t wall_ms, bool synced,
                          int64_t age)
{
    ageclock_mark m;
    memset(&m, 0, sizeof m);
    snprintf(m.boot_id, sizeof m.boot_id, "%s", boot);
    m.boot_ms = boot_ms;
    m.wall_ms = wall_ms;
    m.synced = synced;
    m.age_ms = age;
    return m;
}

static void test_elapsed(void)
{
    /* One boot: the boot time decides, whatever the wall clock did (a year forward, back). */
    ageclock_mark a = mark(BOOT_A, 1000, 5000, false, 0);
    ageclock_mark b = mark(BOOT_A, 61000, 5000 + YEAR, true, 0);
    CHECK_EQ_INT(ageclock_elapsed(&a, &b), 60000);
    b.wall_ms = 5000 - YEAR;
    CHECK_EQ_INT(ageclock_elapsed(&a, &b), 60000);
    /* Another boot: two synchronised readings give the downtime; anything less gives 0. */
    ageclock_mark c = mark(BOOT_B, 10, 5000 + 3600000, true, 0);
    a.synced = true;
    CHECK_EQ_INT(ageclock_elapsed(&a, &c), 3600000);
    a.synced = false;
    CHECK_EQ_INT(ageclock_elapsed(&a, &c), 0);
    a.synced = true;
    c.synced = false;
    CHECK_EQ_INT(ageclock_elapsed(&a, &c), 0);
    c.synced = true;
    c.wall_ms = a.wall_ms - 1; /* synchronised, yet behind: nothing known */
    CHECK_EQ_INT(ageclock_elapsed(&a, &c), 0);
    /* An unknown boot id is never "the same boot"; a boot time that went back is another boot. */
    ageclock_mark u = mark("", 1000, 5000, false, 0), v = mark("", 9000, 5000, false, 0);
    CHECK_EQ_INT(ageclock_elapsed(&u, &v), 0);
    ageclock_mark w = mark(BOOT_A, 500, 5000, false, 0);
    ageclock_mark x = mark(BOOT_A, 1000, 5000, false, 0);
    CHECK_EQ_INT(ageclock_elapsed(&x, &w), 0);
}

static void test_resume_and_at(void)
{
    ageclock_mark then = mark(BOOT_A, 1000, 0, false, 7000000);
    ageclock_mark now = mark(BOOT_A, 4000, 0, false, 0);
    ageclock_resume(&then, &now, 0);
    CHECK_EQ_INT(now.age_ms, 7003000);
    ageclock_resume(&then, &now, 9000000); /* never behind the newest row */
    CHECK_EQ_INT(now.age_ms, 9000000);
    now.age_ms = 7003000;
    CHECK_EQ_INT(ageclock_at(&now, 4000), 7003000);
    CHECK_EQ_INT(ageclock_at(&now, 5500), 7004500);
    CHECK_EQ_INT(ageclock_at(&now, 3000), 7003000); /* never before its base */
}

static void test_text(void)
{
    char text[AGECLOCK_TEXT_MAX];
    ageclock_mark m = mark(BOOT_A, 123456, 1764000000000, true, 1763000000000), back;
    ageclock_format(&m, text, sizeof text);
    CHECK_EQ_STR(text, "1 1763000000000 " BOOT_A " 123456 1764000000000 1");
    CHECK_EQ_INT(ageclock_parse(text, &back), ER_OK);
    CHECK(memcmp(&m, &back, sizeof m) == 0);
    m.boot_id[0] = '\0';
    m.synced = false;
    ageclock_format(&m, text, sizeof text);
    CHECK_EQ_STR(text, "1 1763000000000 - 123456 1764000000000 0");
    CHECK_EQ_INT(ageclock_parse(text, &back), ER_OK);
    CHECK_EQ_STR(back.boot_id, "");
    CHECK(!back.synced);
    static const char *const bad[] = {
        "",
        "garbage",
        "2 1 - 1 1 0",                                        /* another version */
        "1 1 - 1 1 2",                                        /* synced is 0 or 1 */
        "1 1 - -5 1 0",                                       /* a boot time is never negative */
        "1 1 - 1 1 0 extra",                                  /* nothing after it */
        "1 x - 1 1 0",                                        /* numbers */
        "1 1 0123456789012345678901234567890123456789 1 1 0", /* boot id too long */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(ageclock_parse(bad[i], &back), ER_INVALID);
        CHECK_EQ_INT(back.age_ms, 0);
    }
    CHECK_EQ_INT(ageclock_parse(NULL, &back), ER_INVALID);
}

/* The system's reading: a boot id (on Linux), a boot time that does not go back. */
static void test_now(void)
{
    ageclock_mark a, b;
    ageclock_now(&a);
    ageclock_now(&b);
    CHECK_EQ_INT(strlen(a.boot_id), 36);
    CHECK_EQ_STR(a.boot_id, b.boot_id);
    CHECK(b.boot_ms >= a.boot_ms);
    CHECK(a.boot_ms > 0 && a.wall_ms > 0);
    CHECK_EQ_INT(a.age_ms, 0);
}

int main(void)
{
    test_elapsed();
    test_resume_and_at();
    test_text();
    test_now();
    return check_summary();
}
