/* test_store_recover.c - the database at open and while running (store_check.c): a file that
 * is not a database is moved aside byte for byte with its companions and a fresh database made
 * (opts.recover), or refused untouched (the tools); another application's database is refused
 * untouched; store_health_get reports the recovery; corruption met by a reader while running is
 * recorded for health. The clean-stop mark: a clean stop leaves <db>.clean and the next open
 * skips quick_check (and removes it); a stop beside another open store leaves none; a killed
 * run (fork + SIGKILL) leaves none, so quick_check runs and finds corruption planted meanwhile;
 * mid-file corruption after a clean stop is met by the first read and checked at the next start. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include "check.h"
#include "raw_db.h"
#include "store_fixture.h"

/* Writes the n bytes of data to path. */
static void write_file(const char *path, const uint8_t *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(data, 1, n, f) == n);
    fclose(f);
}

/* Reads path into buf (up to cap), returns the length or -1. */
static long read_file(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    long n = (long)fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* A fresh path whose directory exists (made by opening and destroying a store there). */
static void fresh_path(char *path, size_t n)
{
    db_path(path, n);
    store_destroy(open_store(path, NULL));
    CHECK(remove(path) == 0);
    char side[600];
    snprintf(side, sizeof side, "%s-wal", path);
    remove(side);
    snprintf(side, sizeof side, "%s-shm", path);
    remove(side);
}

static void test_not_a_database(void)
{
    char path[512];
    uint8_t junk[8192], back[8192 + 1];
    fresh_path(path, sizeof path);
    CHECK(util_random(junk, sizeof junk) == ER_OK);
    junk[0] = 'x'; /* never the SQLite header by chance */
    write_file(path, junk, sizeof junk);
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", path);
    write_file(wal, junk, 100);

    /* the tools: refused, nothing touched */
    store_opts o = {.path = path};
    store *s = NULL;
    er_err err = {{0}};
    CHECK_EQ_INT(store_create(&o, &s, &err), ER_DB);
    CHECK(s == NULL);
    CHECK(strstr(err.msg, "not a database") != NULL);
    CHECK(read_file(path, back, sizeof back) == (long)sizeof junk);
    CHECK(memcmp(back, junk, sizeof junk) == 0);
    CHECK(read_file(wal, back, sizeof back) == 100);

    /* the service: moved aside with its WAL, a fresh database in its place */
    o = (store_opts){.recover = true};
    s = open_store(path, &o);
    if (!s) return;
    store_health h;
    store_health_get(s, &h);
    CHECK(h.recovered_ms > 0);
    CHECK(h.corrupt_ms == 0);
    CHECK(strstr(h.recovered_reason, "not a database") != NULL);
    CHECK(h.moved_to && strncmp(h.moved_to, path, strlen(path)) == 0 &&
          strstr(h.moved_to, ".corrupt-") != NULL);
    CHECK(read_file(h.moved_to, back, sizeof back) == (long)sizeof junk);
    CHECK(memcmp(back, junk, sizeof junk) == 0);
    char moved_wal[700];
    snprintf(moved_wal, sizeof moved_wal, "%s-wal", h.moved_to);
    CHECK(read_file(moved_wal, back, sizeof back) == 100);
    put_ok(s, make_inf(1, "http", "a", 0.5));
    store_destroy(s);

    /* a good database: opened as it is, no recovery */
    s = open_store(path, &o);
    if (!s) return;
    store_health_get(s, &h);
    CHECK(h.recovered_ms == 0 && h.moved_to == NULL);
    store_info info;
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 1);
    store_destroy(s);
}

static void test_foreign_database(void)
{
    char path[512];
    fresh_path(path, sizeof path);
    raw_exec(path, "CREATE TABLE theirs (x); INSERT INTO theirs VALUES (1)");
    store_opts o = {.path = path, .recover = true};
    store *s = NULL;
    er_err err = {{0}};
    CHECK_EQ_INT(store_create(&o, &s, &err), ER_CONFIG);
    CHECK(s == NULL);
    CHECK(strstr(err.msg, "another application") != NULL);
    sqlite3 *db = raw_open(path);
    CHECK_EQ_INT(raw_int(db, "SELECT x FROM theirs"), 1);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM sqlite_master"), 1);
    CHECK(sqlite3_close(db) == SQLITE_OK);
}

/* 40 inferences with a 4000-byte random image each (guids[i] answers their ids). */
static void fill_images(store *s, char guids[40][UTIL_UUID_LEN + 1])
{
    for (int i = 0; i < 40; i++) {
        inference *inf = make_inf(i + 1, "http", "a", 0.5);
        uint8_t img[4000];
        CHECK(util_random(img, sizeof img) == ER_OK);
        inf->image.data = malloc(sizeof img);
        memcpy(inf->image.data, img, sizeof img);
        inf->image.len = sizeof img;
        snprintf(inf->image.mime, sizeof inf->image.mime, "image/jpeg");
        inf->image.width = 64;
        inf->image.height = 48;
        memcpy(guids[i], inf->guid, UTIL_UUID_LEN + 1);
        put_ok(s, inf);
    }
}

/* Everything into the main file (a checkpoint), then its second half, the image pages,
 * overwritten: the first pages (schema, counters) stay readable. */
static void corrupt_second_half(const char *path)
{
    sqlite3 *db = raw_open(path);
    CHECK(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_close(db) == SQLITE_OK);
    struct stat sb;
    CHECK(stat(path, &sb) == 0);
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, sb.st_size / 2, SEEK_SET);
    for (off_t i = sb.st_size / 2; i < sb.st_size; i++)
        fputc(0xa5, f);
    fclose(f);
}

/* How many of the 40 images fail to read with ER_DB. */
static int failed_images(store *s, char guids[40][UTIL_UUID_LEN + 1])
{
    int failed = 0;
    for (int i = 0; i < 40; i++) {
        inference_image im = {0};
        er_rc rc = store_get_image(s, guids[i], &im);
        failed += rc == ER_DB;
        free(im.data);
    }
    return failed;
}

/* The store has not met corruption yet; reading the images meets it and records it. */
static void check_met_while_running(store *s, char guids[40][UTIL_UUID_LEN + 1])
{
    store_health h;
    store_health_get(s, &h);
    CHECK(h.corrupt_ms == 0);
    CHECK(failed_images(s, guids) > 0);
    store_health_get(s, &h);
    CHECK(h.corrupt_ms > 0);
    CHECK(strstr(h.corrupt_reason, "reading image") != NULL);
}

static void test_corrupt_while_running(void)
{
    char path[512];
    char guids[40][UTIL_UUID_LEN + 1];
    db_path(path, sizeof path);
    store *s = open_store(path, NULL);
    if (!s) return;
    fill_images(s, guids);
    corrupt_second_half(path);
    check_met_while_running(s, guids);
    store_destroy(s);
}

/* Whether <path>.clean, the mark of a clean stop, exists. */
static bool has_mark(const char *path)
{
    char mark[600];
    struct stat sb;
    snprintf(mark, sizeof mark, "%s.clean", path);
    return stat(mark, &sb) == 0;
}

/* What the store's open checked. */
static store_check start_check(store *s)
{
    store_health h;
    store_health_get(s, &h);
    return h.start_check;
}

/* A clean stop leaves the mark, the next open skips quick_check and takes the mark away until
 * its own clean stop; a stop while another process (connection) has the file open leaves none. */
static void test_clean_stop_skips_check(void)
{
    char path[512];
    db_path(path, sizeof path);
    store_opts o = {.recover = true};
    store *s = open_store(path, &o);
    if (!s) return;
    CHECK_EQ_INT(start_check(s), STORE_CHECK_NEW);
    CHECK(!has_mark(path));
    put_ok(s, make_inf(1, "http", "a", 0.5));
    store_destroy(s);
    CHECK(has_mark(path));

    s = open_store(path, &o);
    if (!s) return;
    CHECK_EQ_INT(start_check(s), STORE_CHECK_SKIPPED);
    CHECK(!has_mark(path)); /* removed before anything was written */
    put_ok(s, make_inf(2, "http", "a", 0.5));

    /* a second store on the same file (as `ei-relay export` beside the service) */
    store_opts tool = {0};
    store *t = open_store(path, &tool);
    if (t) {
        CHECK_EQ_INT(start_check(t), STORE_CHECK_QUICK); /* the service took the mark */
        store_destroy(t);
    }
    CHECK(!has_mark(path)); /* the service still has it open: not a clean stop of the file */
    store_destroy(s);
    CHECK(has_mark(path));

    /* an open refused before any write (a newer schema) leaves the mark where it is */
    raw_exec(path, "PRAGMA user_version=999999");
    store *n = NULL;
    er_err err = {{0}};
    o.path = path;
    CHECK_EQ_INT(store_create(&o, &n, &err), ER_CONFIG);
    CHECK(has_mark(path));
}

/* A child process that opens path, runs fill_images when fill is set, and is killed (kill -9)
 * before any store_destroy. */
static void killed_run(const char *path, bool fill)
{
    pid_t pid = fork();
    if (pid == 0) {
        store_opts o = {.recover = true};
        store *s = open_store(path, &o);
        char guids[40][UTIL_UUID_LEN + 1];
        if (!s) _exit(1);
        if (fill) fill_images(s, guids);
        raise(SIGKILL);
        _exit(2);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* A killed run leaves no mark: the next open runs quick_check, keeps a sound file and finds the
 * corruption planted while nothing ran (moved aside). */
static void test_kill_runs_check(void)
{
    char path[512];
    db_path(path, sizeof path);
    store_opts o = {.recover = true};
    store_destroy(open_store(path, &o));
    CHECK(has_mark(path));
    killed_run(path, true);
    CHECK(!has_mark(path));

    store *s = open_store(path, &o);
    if (!s) return;
    CHECK_EQ_INT(start_check(s), STORE_CHECK_QUICK);
    store_health h;
    store_health_get(s, &h);
    CHECK(h.recovered_ms == 0);
    store_info info;
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 40);
    store_destroy(s);
    CHECK(has_mark(path));

    killed_run(path, false);
    CHECK(!has_mark(path));
    corrupt_second_half(path);
    s = open_store(path, &o);
    if (!s) return;
    store_health_get(s, &h);
    CHECK(h.recovered_ms > 0 && h.moved_to != NULL); /* the cheap checks alone pass it (below) */
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 0);
    store_destroy(s);
}

/* Corruption in the middle of a cleanly stopped file passes the cheap checks at start (no
 * quick_check); the first read of its pages (here the age clock's read of the newest row at
 * open) records it (health degraded) without failing the open, the stop leaves no mark, and
 * the next start's quick_check moves the file aside. */
static void test_clean_stop_corruption_met_later(void)
{
    char path[512];
    char guids[40][UTIL_UUID_LEN + 1];
    db_path(path, sizeof path);
    store_opts o = {.recover = true};
    store *s = open_store(path, &o);
    if (!s) return;
    fill_images(s, guids);
    store_destroy(s);
    CHECK(has_mark(path));
    corrupt_second_half(path);

    s = open_store(path, &o);
    if (!s) return;
    CHECK_EQ_INT(start_check(s), STORE_CHECK_SKIPPED);
    store_health h;
    store_health_get(s, &h);
    CHECK(h.recovered_ms == 0);
    /* the first read is the age clock's look at the newest row, at open (store_age.c) */
    CHECK(h.corrupt_ms > 0);
    CHECK(strstr(h.corrupt_reason, "newest age") != NULL);
    CHECK(failed_images(s, guids) > 0);
    store_destroy(s);
    CHECK(!has_mark(path));

    s = open_store(path, &o);
    if (!s) return;
    store_health_get(s, &h);
    CHECK(h.recovered_ms > 0 && h.moved_to != NULL);
    store_destroy(s);
    CHECK(has_mark(path));
}

int main(void)
{
    if (!store_fixture_begin("/tmp/ei-store-recover-XXXXXX")) return 1;
    test_not_a_database();
    test_foreign_database();
    test_corrupt_while_running();
    test_clean_stop_skips_check();
    test_kill_runs_check();
    test_clean_stop_corruption_met_later();
    return store_fixture_end();
}
