/* test_store_recover.c - the database at open and while running (store_check.c): a file that
 * is not a database is moved aside byte for byte with its companions and a fresh database made
 * (opts.recover), or refused untouched (the tools); another application's database is refused
 * untouched; store_health_get reports the recovery; corruption met by a reader while running is
 * recorded for health. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* Overwrites the second half of the main file after a checkpoint: the image pages. */
static void test_corrupt_while_running(void)
{
    char path[512];
    db_path(path, sizeof path);
    store *s = open_store(path, NULL);
    if (!s) return;
    char guids[40][UTIL_UUID_LEN + 1];
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
        memcpy(guids[i], inf->guid, sizeof guids[i]);
        put_ok(s, inf);
    }
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

    store_health h;
    store_health_get(s, &h);
    CHECK(h.corrupt_ms == 0);
    int failed = 0;
    for (int i = 0; i < 40; i++) {
        inference_image im = {0};
        er_rc rc = store_get_image(s, guids[i], &im);
        failed += rc == ER_DB;
        free(im.data);
    }
    CHECK(failed > 0);
    store_health_get(s, &h);
    CHECK(h.corrupt_ms > 0);
    CHECK(strstr(h.corrupt_reason, "reading image") != NULL);
    store_destroy(s);
}

int main(void)
{
    if (!store_fixture_begin("/tmp/ei-store-recover-XXXXXX")) return 1;
    test_not_a_database();
    test_foreign_database();
    test_corrupt_while_running();
    return store_fixture_end();
}
