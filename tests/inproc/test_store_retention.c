/* test_store_retention.c - retention against real database files: row limits (never a row
 * still pending in the outbox), the writer's own background passes, byte limits with the pages
 * given back to the file system, and age by the store's age clock (core/ageclock.h): the
 * relay's receive time on a clock that steps with neither the sender's ts nor the wall clock,
 * and that a later start resumes from its persisted mark. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/ageclock.h"
#include "raw_db.h"
#include "store_fixture.h"

/* ---- retention ---- */

static void test_retention_rows_and_outbox(void)
{
    char path[512];
    db_path(path, sizeof path);
    store_opts o = {.max_rows = 20};
    store *s = open_store(path, &o);
    int64_t seqs[50];
    for (int i = 0; i < 50; i++)
        seqs[i] = put_ok(s, make_inf(i, "http", "a", 0.5));
    CHECK_EQ_INT(store_retain(s), ER_OK);
    store_info info;
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 20);
    store_filter f = {.limit = 100};
    store_page p;
    CHECK_EQ_INT(store_list(s, &f, &p), ER_OK);
    CHECK_EQ_INT(p.n, 20);
    if (p.n == 20) {
        CHECK_EQ_INT(p.items[0]->seq, seqs[49]);
        CHECK_EQ_INT(p.items[19]->seq, seqs[30]); /* the newest twenty remain */
    }
    store_page_free(&p);
    f.label = "a"; /* the label's postings of deleted rows are skipped or trimmed */
    CHECK_EQ_INT(store_list(s, &f, &p), ER_OK);
    CHECK_EQ_INT(p.n, 20);
    if (p.n == 20) CHECK_EQ_INT(p.items[19]->seq, seqs[30]);
    store_page_free(&p);
    store_destroy(s);

    /* With the outbox on, rows waiting to be forwarded are never deleted. */
    db_path(path, sizeof path);
    store_opts ob = {.max_rows = 10, .outbox = true};
    s = open_store(path, &ob);
    for (int i = 0; i < 30; i++)
        seqs[i] = put_ok(s, make_inf(i, "http", "a", 0.5));
    CHECK_EQ_INT(store_retain(s), ER_OK);
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 30);
    CHECK_EQ_INT(info.retention_deleted, 0);
    /* The forwarder acknowledges the oldest 5 and rows 20..24: only those may go. */
    char sql[160];
    snprintf(sql, sizeof sql, "DELETE FROM outbox WHERE seq <= %lld OR seq BETWEEN %lld AND %lld",
             (long long)seqs[4], (long long)seqs[20], (long long)seqs[24]);
    raw_exec(path, sql);
    CHECK_EQ_INT(store_retain(s), ER_OK);
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 20);
    CHECK_EQ_INT(info.outbox, 20);
    CHECK_EQ_INT(info.retention_deleted, 10);
    store_destroy(s);
    sqlite3 *db = raw_open(path);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM inference i WHERE NOT EXISTS"
                             " (SELECT 1 FROM outbox o WHERE o.seq = i.seq)"),
                 0);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM inference WHERE length(labels) > 0"), 20);
    /* the postings of what went are trimmed with it, also between rows kept for the forwarder:
     * every posting row left covers a row still there */
    CHECK_EQ_INT(raw_int(db, RAW_SQL_STRANDED_POSTINGS), 0);
    CHECK(raw_int(db, "SELECT count(*) FROM label_post") >= 20);
    CHECK(sqlite3_close(db) == SQLITE_OK);
}

/* Without store_retain: the writer runs retention by itself after 1000 committed puts. */
static void test_retention_background(void)
{
    char path[512];
    db_path(path, sizeof path);
    store_opts o = {.max_rows = 100, .batch_max = 16};
    store *s = open_store(path, &o);
    for (int i = 0; i < 1100; i++)
        put_ok(s, make_inf(i, "http", "a", 0.5));
    store_info info;
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    /* It ran on its own (how far it got depends on how often puts made it yield)... */
    CHECK(info.retention_deleted > 0);
    CHECK_EQ_INT(info.rows + info.retention_deleted, 1100);
    /* ...and a full pass brings the cache exactly to the limit. */
    CHECK_EQ_INT(store_retain(s), ER_OK);
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 100);
    CHECK_EQ_INT(info.retention_deleted, 1000);
    store_destroy(s);
}

static void test_retention_bytes(void)
{
    char path[512];
    db_path(path, sizeof path);
    store_opts o = {.max_bytes = 100000};
    store *s = open_store(path, &o);
    for (int i = 0; i < 40; i++) {
        inference *inf = make_inf(i, "http", "a", 0.5);
        inf->image.data = calloc(1, 10000);
        inf->image.len = 10000;
        snprintf(inf->image.mime, sizeof inf->image.mime, "image/jpeg");
        put_ok(s, inf);
    }
    CHECK_EQ_INT(store_retain(s), ER_OK);
    store_info info;
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK(info.bytes <= 100000);
    CHECK(info.bytes > 100000 - 11000); /* only as many as needed went */
    CHECK_EQ_INT(info.images, info.rows);
    CHECK_EQ_INT(info.rows + info.retention_deleted, 40);
    store_destroy(s);
    /* The freed pages went back to the file system (incremental vacuum), and the file holds
     * about what is left, not the high-water mark of 40 images. */
    sqlite3 *db = raw_open(path);
    CHECK_EQ_INT(raw_int(db, "PRAGMA freelist_count"), 0);
    CHECK(raw_int(db, "PRAGMA page_count") * raw_int(db, "PRAGMA page_size") < 250000);
    CHECK(sqlite3_close(db) == SQLITE_OK);
}

/* Age is the relay's receive time on its age clock: a sender's ts from an unset clock
 * (boot-relative, years old) must not get an acknowledged inference deleted a moment later,
 * nor a wall clock receive time that a clock step put a year away. */
static void test_retention_age(void)
{
    char path[512];
    db_path(path, sizeof path);
    store_opts o = {.max_age_ms = 600000};
    store *s = open_store(path, &o);
    int64_t now = util_now_ms();
    int64_t seqs[20];
    for (int i = 0; i < 20; i++)
        seqs[i] = put_ok(s, make_inf(i % 2 ? 123456 : now, "http", "a", 0.5));
    CHECK_EQ_INT(store_retain(s), ER_OK);
    store_info info;
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 20); /* old ts, just received: kept */

    /* A wall clock a year off when they were received (received_ms) changes nothing. */
    char sql[200];
    snprintf(sql, sizeof sql, "UPDATE inference SET received_ms = received_ms - %lld",
             365LL * 86400000);
    raw_exec(path, sql);
    CHECK_EQ_INT(store_retain(s), ER_OK);
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 20);

    /* The first 8 were received an hour ago on the age clock (as if the relay had run then). */
    snprintf(sql, sizeof sql, "UPDATE inference SET age_ms = age_ms - 3600000 WHERE seq <= %lld",
             (long long)seqs[7]);
    raw_exec(path, sql);
    CHECK_EQ_INT(store_retain(s), ER_OK);
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 12);
    CHECK_EQ_INT(info.retention_deleted, 8);
    store_filter f = {.limit = 100};
    store_page p = {0};
    CHECK_EQ_INT(store_list(s, &f, &p), ER_OK);
    CHECK_EQ_INT(p.n, 12);
    for (size_t i = 0; i < p.n; i++)
        CHECK(p.items[i]->seq > seqs[7]);
    store_page_free(&p);
    store_destroy(s);
}

/* The persisted mark (meta 'age_clock') rewritten behind the store's back, with the rows'
 * age_ms stamped relative to it; then a new store on the file. */
static void set_mark(const char *path, const ageclock_mark *m)
{
    char text[AGECLOCK_TEXT_MAX], sql[256];
    ageclock_format(m, text, sizeof text);
    snprintf(sql, sizeof sql, "UPDATE meta SET value = '%s' WHERE key = 'age_clock'", text);
    raw_exec(path, sql);
}

static ageclock_mark get_mark(const char *path)
{
    ageclock_mark m;
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'age_clock'", -1, &st, NULL) ==
          SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    CHECK_EQ_INT(ageclock_parse((const char *)sqlite3_column_text(st, 0), &m), ER_OK);
    sqlite3_finalize(st);
    CHECK(sqlite3_close(db) == SQLITE_OK);
    return m;
}

/* The age clock survives restarts: in the same boot a start continues from the persisted mark
 * by the boot time that passed (here: a mark an hour back in this boot ages the rows by an
 * hour, whatever the wall clock says); after another boot with an unsynchronised clock the
 * downtime is unknown and not counted (the rows stay); the clock never runs behind a row. */
static void test_retention_age_clock_persisted(void)
{
    char path[512];
    db_path(path, sizeof path);
    store_opts keep = {0}, o = {.max_age_ms = 600000};
    store *s = open_store(path, &keep);
    for (int i = 0; i < 10; i++)
        put_ok(s, make_inf(i, "http", "a", 0.5));
    store_destroy(s);
    ageclock_mark m = get_mark(path), now;
    ageclock_now(&now);
    CHECK_EQ_STR(m.boot_id, now.boot_id);
    CHECK(m.boot_ms <= now.boot_ms);
    sqlite3 *db = raw_open(path);
    CHECK(raw_int(db, "SELECT max(age_ms) FROM inference") <= m.age_ms); /* clean stop: newest */
    CHECK(sqlite3_close(db) == SQLITE_OK);

    /* Another boot, clock not synchronised then: no downtime counted, the rows stay, even
     * with the wall clock of the mark a year back. */
    ageclock_mark other = m;
    snprintf(other.boot_id, sizeof other.boot_id, "%s", "00000000-0000-4000-8000-000000000000");
    other.boot_ms = now.boot_ms + 86400000; /* the old boot ran longer than this one */
    other.wall_ms = m.wall_ms - 365LL * 86400000;
    other.synced = false;
    set_mark(path, &other);
    s = open_store(path, &o);
    CHECK_EQ_INT(store_retain(s), ER_OK);
    store_info info;
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 10);
    store_destroy(s);

    /* A start that writes nothing leaves the database as it was: the mark too. */
    CHECK_EQ_STR(get_mark(path).boot_id, other.boot_id);

    /* The same boot, the mark an hour back: the rows are an hour old and go. */
    m.boot_ms = now.boot_ms - 3600000;
    set_mark(path, &m);
    s = open_store(path, &o);
    CHECK_EQ_INT(store_retain(s), ER_OK);
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 0);
    CHECK_EQ_INT(info.retention_deleted, 10);
    store_destroy(s);

    /* A mark that does not parse starts a new clock, never behind the newest row. */
    s = open_store(path, &keep);
    put_ok(s, make_inf(1, "http", "a", 0.5));
    store_destroy(s);
    raw_exec(path, "UPDATE inference SET age_ms = age_ms + 86400000;"
                   "UPDATE meta SET value = 'garbage' WHERE key = 'age_clock'");
    s = open_store(path, &o);
    int64_t newer = put_ok(s, make_inf(2, "http", "a", 0.5)); /* its commit writes a mark */
    CHECK_EQ_INT(store_retain(s), ER_OK);
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 2);
    store_destroy(s);
    db = raw_open(path);
    char q[120];
    snprintf(q, sizeof q, "SELECT age_ms FROM inference WHERE seq = %lld", (long long)newer);
    int64_t newest = raw_int(db, q);
    snprintf(q, sizeof q, "SELECT age_ms FROM inference WHERE seq <> %lld", (long long)newer);
    CHECK(newest >= raw_int(db, q)); /* not behind the row stamped a day ahead */
    CHECK(newest <= get_mark(path).age_ms);
    CHECK(sqlite3_close(db) == SQLITE_OK);
}

int main(void)
{
    if (!store_fixture_begin("/tmp/ei-store-retention-XXXXXX")) return 1;
    test_retention_rows_and_outbox();
    test_retention_background();
    test_retention_bytes();
    test_retention_age();
    test_retention_age_clock_persisted();
    return store_fixture_end();
}
