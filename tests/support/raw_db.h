/* raw_db.h - what the in-process tests use to look at a database file behind the store's back
 * (plain sqlite3 connections): build one by hand from the schema files, check its counters row
 * against its tables; and to remove their temp directory. Include after check.h; the including
 * file must define _XOPEN_SOURCE 700 before any system header (for nftw). */
#ifndef EI_TEST_RAW_DB_H
#define EI_TEST_RAW_DB_H

#include <ftw.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static inline sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

/* Posting rows (label_post) none of whose inferences is left: retention and clear_cache must
 * leave none behind. */
#define RAW_SQL_STRANDED_POSTINGS                                                                  \
    "SELECT count(*) FROM label_post p WHERE NOT EXISTS (SELECT 1 FROM inference i"                \
    " WHERE i.seq BETWEEN p.seq0 AND p.seq1)"

/* The first column of the first row, or -1. */
static inline int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static inline void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = raw_open(path);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_close(db) == SQLITE_OK);
}

/* Runs schema/<name> of the source tree (EI_TEST_SOURCE_DIR, else "..") on db, as an older
 * ei-relay did: migrations files run as they are. */
static inline void raw_run_schema(sqlite3 *db, const char *name)
{
    char path[512];
    const char *src = getenv("EI_TEST_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/schema/%s", src ? src : "..", name);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f) return;
    char *sql = calloc(1, 1 << 16);
    size_t n = sql ? fread(sql, 1, (1 << 16) - 1, f) : 0;
    fclose(f);
    CHECK(n > 100);
    char *err = NULL;
    CHECK(n > 100 && sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK);
    if (err) fprintf(stderr, "%s: %s\n", name, err);
    sqlite3_free(err);
    free(sql);
}

/* The counters row of the database at path equals a count of its tables, and nothing is left
 * without its inference (the cascade is schema 004's trigger: the writer runs without foreign
 * key enforcement). Open it when no store has it. */
static inline void raw_check_counters(const char *path)
{
    static const struct {
        const char *counter, *count;
    } rows[] = {
        {"rows", "count(*) FROM inference"},
        {"bytes", "coalesce(sum(bytes), 0) FROM inference"},
        {"images", "count(*) FROM image"},
        {"outbox", "count(*) FROM outbox WHERE state = 0"},
        {"outbox_bytes", "coalesce(sum(bytes), 0) FROM outbox WHERE state = 0"},
        {"outbox_dead", "count(*) FROM outbox WHERE state = 1"},
    };
    sqlite3 *db = raw_open(path);
    char sql[160];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        snprintf(sql, sizeof sql, "SELECT %s = (SELECT %s) FROM counters", rows[i].counter,
                 rows[i].count);
        if (raw_int(db, sql) != 1)
            fprintf(stderr, "%s: counters.%s is not %s\n", path, rows[i].counter, rows[i].count);
        CHECK_EQ_INT(raw_int(db, sql), 1);
    }
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM label_score"
                             " WHERE seq NOT IN (SELECT seq FROM inference)"),
                 0);
    CHECK_EQ_INT(
        raw_int(db, "SELECT count(*) FROM image WHERE seq NOT IN (SELECT seq FROM inference)"), 0);
    CHECK_EQ_INT(
        raw_int(db, "SELECT count(*) FROM outbox WHERE seq NOT IN (SELECT seq FROM inference)"), 0);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    CHECK(sqlite3_close(db) == SQLITE_OK);
}

static inline int raw_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* rm -rf dir */
static inline void raw_rm_tree(const char *dir)
{
    nftw(dir, raw_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
