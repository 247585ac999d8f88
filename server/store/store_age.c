/* store_age.c - the store's age clock (core/ageclock.h): what cache_max_age measures against.
 * Each inference row records the clock's value at its commit (age_ms); retention deletes rows
 * whose age_ms is more than max_age before the clock's current value.
 *
 * The clock is persisted as the meta row 'age_clock' (a mark: its value at a boot-relative
 * moment). It is written inside a group commit when this run has written none yet or its last
 * is a minute old, and at a clean stop of a run that wrote one; never by a run that writes
 * nothing else (opening a database changes nothing in it). A run without a mark of its own
 * loses nothing it stamped: the next start resumes from the older mark, and the newest row's
 * age_ms keeps the clock from running behind the rows (see store__age_open). A missing or
 * unreadable mark starts the clock at the wall clock's value, and never below the newest row's
 * age_ms. */
#include "store/store_internal.h"

#include <stdio.h>

#include "core/log.h"

#define AGE_META_KEY "age_clock"
/* A commit rewrites the mark when the last one is this old: within a boot any mark is exact,
 * and across a reboot a staler one only undercounts the downtime (rows then live longer). */
#define AGE_SAVE_EVERY_MS 60000

/* The newest row's age_ms (0 for an empty cache or when it cannot be read) into *floor. */
static er_rc newest_age(store *s, int64_t *floor)
{
    sqlite3_stmt *st = s->wst[WSTMT_NEWEST_AGE];
    er_rc rc = ER_OK;
    int src = sqlite3_step(st);
    *floor = 0;
    if (src == SQLITE_ROW)
        *floor = sqlite3_column_int64(st, 0);
    else if (src != SQLITE_DONE)
        rc = store__db_error(s, s->wdb, src, "reading the newest age");
    stmt_done(st);
    return rc;
}

/* The persisted mark into *then; false when there is none or it does not parse. */
static bool saved_mark(store *s, ageclock_mark *then)
{
    sqlite3_stmt *st = s->wst[WSTMT_META_GET];
    bool ok = false;
    sqlite3_bind_text(st, 1, AGE_META_KEY, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        ok = ageclock_parse((const char *)sqlite3_column_text(st, 0), then) == ER_OK;
    stmt_done(st);
    return ok;
}

/* Never fails the open: a file the store can open but not read or write here (a corrupt page,
 * a full disk) gets its error logged and recorded for health by store__db_error, and the clock
 * still runs from what could be read (at worst a new clock: rows then live longer, never
 * shorter, than their age). */
void store__age_open(store *s)
{
    ageclock_mark then, now;
    int64_t floor = 0;
    newest_age(s, &floor);
    ageclock_now(&now);
    if (saved_mark(s, &then)) {
        ageclock_resume(&then, &now, floor);
        log_debug("store", "age clock: %lld ms since its last mark%s",
                  (long long)(now.age_ms - then.age_ms),
                  strcmp(then.boot_id, now.boot_id) == 0 ? "" : " (another boot)");
    } else {
        now.age_ms = now.wall_ms > floor ? now.wall_ms : floor; /* a new clock */
    }
    s->age_base = now; /* written with the first commit: a start that writes nothing else
                        * leaves the file as it was */
}

bool store__age_due(const store *s, int64_t age)
{
    return age - s->age_saved >= AGE_SAVE_EVERY_MS;
}

int64_t store__age_now(const store *s)
{
    return ageclock_at(&s->age_base, ageclock_boot_ms());
}

er_rc store__age_save(store *s, int64_t age)
{
    ageclock_mark m;
    char text[AGECLOCK_TEXT_MAX];
    ageclock_now(&m); /* the wall clock and its sync state as they are now */
    /* the boot and the boot time that age stands for (age was read from them, maybe a moment
     * ago): a later start continues from exactly this value */
    memcpy(m.boot_id, s->age_base.boot_id, sizeof m.boot_id);
    m.boot_ms = s->age_base.boot_ms + (age - s->age_base.age_ms);
    m.age_ms = age;
    ageclock_format(&m, text, sizeof text);
    sqlite3_stmt *st = s->wst[WSTMT_META_SET];
    sqlite3_bind_text(st, 1, AGE_META_KEY, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    int src = step_once(st);
    if (src != SQLITE_DONE) return store__db_error(s, s->wdb, src, "saving the age clock");
    s->age_saved = age; /* in a transaction that may yet roll back: then saved a minute late */
    return ER_OK;
}
