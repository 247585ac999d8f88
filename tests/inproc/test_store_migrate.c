/* test_store_migrate.c - a database written by schema version 3 (the files 001..003 run as they
 * are, rows inserted by hand so their triggers count them) opened by this store: migration 004
 * keeps every row, label and outbox entry, the counters agree with the tables, the insert
 * triggers are gone, the cascade trigger is there (a deleted inference takes its labels, image
 * and outbox row), and the counters the writer now keeps itself follow puts, an image, a
 * delete and a put refused by the outbox bound, in memory and after a reopen. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "raw_db.h"
#include "store_fixture.h"

#define V3_GUID(k) "00000000-0000-4000-8000-00000000000" #k

/* A version 3 database: three inferences (seq 1..3; labels a/b; an image on 2), seq 2 and 3
 * queued (3 dead), as version 3 of ei-relay left them. */
static void make_v3(const char *path)
{
    sqlite3 *db = raw_open(path);
    CHECK(sqlite3_exec(db, "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL", NULL, NULL,
                       NULL) == SQLITE_OK);
    raw_run_schema(db, "001_init.sql");
    raw_run_schema(db, "002_publish.sql");
    raw_run_schema(db, "003_age.sql");
    CHECK(
        sqlite3_exec(
            db,
            "PRAGMA user_version=3;"
            "INSERT INTO inference (guid, ts, received_ms, device, source, kind, result,"
            " top_label, top_score, bytes, publish, age_ms) VALUES"
            " ('" V3_GUID(
                1) "', 1000, 1000, 'd', 'http', 'classification',"
                   "  '{\"classification\":{\"a\":0.9,\"b\":0.1}}', 'a', 0.9, 300, 0, 1000),"
                   " ('" V3_GUID(
                       2) "', 2000, 2000, 'd', 'http', 'classification',"
                          "  '{\"classification\":{\"a\":0.2,\"b\":0.8}}', 'b', 0.8, 400, 1, 2000),"
                          " ('" V3_GUID(
                              3) "', 3000, 3000, 'd', 'cam', 'classification',"
                                 "  '{\"classification\":{\"a\":0.7,\"b\":0.3}}', 'a', 0.7, 500, "
                                 "6, 3000);"
                                 "INSERT INTO label_score (seq, label, ts, score) VALUES (1, 'a', "
                                 "1000, 0.9),"
                                 " (1, 'b', 1000, 0.1), (2, 'a', 2000, 0.2), (2, 'b', 2000, 0.8),"
                                 " (3, 'a', 3000, 0.7), (3, 'b', 3000, 0.3);"
                                 "INSERT INTO image (seq, mime, width, height, data) VALUES"
                                 " (2, 'image/jpeg', 8, 8, x'ffd8ffd9');"
                                 "UPDATE inference SET has_image = 1 WHERE seq = 2;"
                                 "INSERT INTO outbox (seq, created_ms, bytes) VALUES (2, 2000, "
                                 "400);"
                                 "INSERT INTO outbox (seq, state, created_ms, bytes, dead_ms) "
                                 "VALUES"
                                 " (3, 1, 3000, 500, 3500);",
            NULL, NULL, NULL) == SQLITE_OK);
    CHECK_EQ_INT(raw_int(db, "SELECT rows * 1000 + images * 100 + outbox * 10 + outbox_dead"
                             " FROM counters"),
                 3111);
    CHECK(sqlite3_close(db) == SQLITE_OK);
}

static inference_publish all_pending(void *arg, const inference *inf)
{
    (void)arg;
    (void)inf;
    return INFERENCE_PUBLISH_PENDING;
}

/* The newest inferences with label a and score >= 0.5: n of them, the oldest two seq 3, 1. */
static void check_label_query(store *s, size_t n)
{
    store_filter f = {.label = "a", .has_min_score = true, .min_score = 0.5, .limit = 10};
    store_page page = {0};
    CHECK_EQ_INT(store_list(s, &f, &page), ER_OK);
    CHECK_EQ_INT(page.n, n);
    if (page.n == n) {
        CHECK_EQ_INT(page.items[n - 2]->seq, 3);
        CHECK_EQ_INT(page.items[n - 1]->seq, 1);
        CHECK_EQ_STR(page.items[n - 1]->guid, V3_GUID(1));
    }
    store_page_free(&page);
}

static void test_migrate_v3(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/v3.db", g_dir);
    make_v3(path);

    store_opts o = {.outbox = true};
    store *s = open_store(path, &o);
    if (!s) return;
    CHECK_INFO(s, 3, 1200, 1, 1);
    check_label_query(s, 2);
    inference *got = NULL;
    CHECK_EQ_INT(store_get(s, V3_GUID(2), &got), ER_OK);
    CHECK(got && got->image.width == 8 && got->n_labels == 2 && got->publish == 1);
    inference_destroy(got);
    store_destroy(s);

    sqlite3 *db = raw_open(path);
    CHECK_EQ_INT(raw_int(db, "PRAGMA user_version"), 4);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
                             " AND name LIKE '%_ins'"),
                 0);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM label_score"), 6);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
                             " AND name = 'inference_cascade'"),
                 1);
    CHECK(sqlite3_close(db) == SQLITE_OK);
    raw_check_counters(path);

    /* the writer's own counting: puts (one with an image), a delete, reopen */
    o.outbox_max_rows = 3; /* pending: seq 2 + two puts fit, the third drops the oldest */
    s = open_store(path, &o);
    if (!s) return;
    store_set_policy(s, all_pending, NULL);
    char guid[UTIL_UUID_LEN + 1];
    for (int i = 0; i < 4; i++) {
        inference *inf = make_inf(4000 + i, "http", i % 2 ? "b" : "a", 0.6);
        if (i == 1) {
            inf->image.data = malloc(16);
            memset(inf->image.data, 7, 16);
            inf->image.len = 16;
            snprintf(inf->image.mime, sizeof inf->image.mime, "image/jpeg");
            inf->image.width = inf->image.height = 4;
        }
        if (i == 1) memcpy(guid, inf->guid, sizeof guid); /* the one with an image */
        put_ok(s, inf);
    }
    CHECK_EQ_INT(store_delete(s, guid), ER_OK);
    /* the deleted put's image went with it; 3 queued by the bound, one of them deleted */
    CHECK_INFO(s, 6, INFO_ANY, 1, 2);
    check_label_query(s, 4); /* puts 0 and 2 have label a */
    store_destroy(s);
    raw_check_counters(path);
    db = raw_open(path);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM label_score"), 9); /* 3 x 2 + 3 x 1 */
    CHECK(sqlite3_close(db) == SQLITE_OK);
    s = open_store(path, &o);
    if (!s) return;
    CHECK_INFO(s, 6, INFO_ANY, 1, 2);
    store_destroy(s);
    raw_check_counters(path);
}

int main(void)
{
    if (!store_fixture_begin("/tmp/ei-store-migrate-XXXXXX")) return 1;
    test_migrate_v3();
    return store_fixture_end();
}
