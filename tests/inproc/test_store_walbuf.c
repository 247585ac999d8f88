/* test_store_walbuf.c - the writer's WAL writes gathered per commit (store_walbuf.c), against
 * real files: every commit's frames are in the WAL file when its put returns (a byte copy of the
 * database and its WAL, taken right then and opened by plain SQLite, has the row; also for a
 * commit larger than the buffer's cap); a commit whose gathered write fails (the file size limit
 * reached) fails its put, the store goes on, and the row is not in the file after reopening. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "raw_db.h"
#include "store_fixture.h"

/* Copies file from to to byte for byte (a missing from leaves to absent). */
static void copy_file(const char *from, const char *to)
{
    unlink(to);
    int in = open(from, O_RDONLY);
    if (in < 0) return;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(out >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        CHECK(write(out, buf, (size_t)n) == n);
    close(in);
    close(out);
}

/* The database as the files hold it now: a copy of it and its WAL (not the -shm: SQLite
 * rebuilds the index from the WAL alone) opened by a plain connection; the row count of sql. */
static int64_t count_in_copy(const char *path, const char *sql)
{
    char from[600], to[700], copy[600];
    snprintf(copy, sizeof copy, "%.500s.copy", path);
    copy_file(path, copy);
    snprintf(from, sizeof from, "%.500s-wal", path);
    snprintf(to, sizeof to, "%s-wal", copy);
    copy_file(from, to);
    snprintf(to, sizeof to, "%s-shm", copy);
    unlink(to);
    sqlite3 *db = raw_open(copy);
    int64_t n = raw_int(db, sql);
    CHECK(sqlite3_close(db) == SQLITE_OK);
    return n;
}

static inference *with_image(inference *inf, size_t len)
{
    inf->image.data = malloc(len);
    CHECK(inf->image.data != NULL);
    for (size_t i = 0; i < len; i++)
        inf->image.data[i] = (uint8_t)(i * 131 + (i >> 12));
    inf->image.len = len;
    snprintf(inf->image.mime, sizeof inf->image.mime, "image/jpeg");
    inf->image.width = 640;
    inf->image.height = 480;
    return inf;
}

static void test_frames_in_file_at_return(void)
{
    char path[512];
    db_path(path, sizeof path);
    store *s = open_store(path, NULL);
    for (int i = 1; i <= 5; i++) {
        put_ok(s, make_inf(1000 + i, "http", "l", 0.5));
        CHECK_EQ_INT(count_in_copy(path, "SELECT count(*) FROM inference"), i);
    }
    /* 3 MB of image: more than the buffer holds, written out in pieces */
    put_ok(s, with_image(make_inf(2000, "http", "l", 0.5), 3 * 1024 * 1024));
    CHECK_EQ_INT(count_in_copy(path, "SELECT count(*) FROM inference"), 6);
    CHECK_EQ_INT(count_in_copy(path, "SELECT sum(length(data)) FROM image"), 3 * 1024 * 1024);
    put_ok(s, make_inf(3000, "http", "l", 0.5));
    CHECK_EQ_INT(count_in_copy(path, "SELECT count(*) FROM inference"), 7);
    store_destroy(s);
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static void test_failed_write_fails_put(void)
{
    char path[512], wal[600];
    db_path(path, sizeof path);
    snprintf(wal, sizeof wal, "%s-wal", path);
    store *s = open_store(path, NULL);
    put_ok(s, make_inf(1, "http", "l", 0.5));
    int64_t wal_size = file_size(wal);
    CHECK(wal_size > 0);

    /* the files may not grow more than 64 KiB past the WAL's end: the next commit (a 256 KiB
     * image) fails in the write that the sync makes (EFBIG, SIGXFSZ ignored) */
    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)(wal_size + 65536);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    inference *big = with_image(make_inf(2, "http", "l", 0.5), 256 * 1024);
    char guid[sizeof big->guid];
    memcpy(guid, big->guid, sizeof guid);
    store_put_result res;
    er_rc rc = store_put(s, big, &res);
    CHECK(rc != ER_OK);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);

    /* the store goes on: the next put commits */
    put_ok(s, make_inf(3, "http", "l", 0.5));
    store_destroy(s);

    sqlite3 *db = raw_open(path);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM inference"), 2);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM inference WHERE guid = '%s'", guid);
    CHECK_EQ_INT(raw_int(db, sql), 0);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM image"), 0);
    CHECK(sqlite3_close(db) == SQLITE_OK);
}

int main(void)
{
    if (!store_fixture_begin("/tmp/ei-store-walbuf-XXXXXX")) return 1;
    test_frames_in_file_at_return();
    test_failed_write_fails_put();
    return store_fixture_end();
}
