/* raw_db.h - what the in-process tests use to look at a database file behind the store's back
 * (plain sqlite3 connections), and to remove their temp directory. Include after check.h; the
 * including file must define _XOPEN_SOURCE 700 before any system header (for nftw). */
#ifndef EI_TEST_RAW_DB_H
#define EI_TEST_RAW_DB_H

#include <ftw.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

static inline sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

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
