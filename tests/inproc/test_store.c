/* test_store.c - the SQLite store against real database files in a temp directory: put/get
 * round trip (image, thumbnail, info, pragmas), idempotency, another process holding the lock,
 * a full queue, delete, migrations and reopen, disk full. Reads are in test_store_read.c, group
 * commit in test_store_commit.c, retention in test_store_retention.c, the outbox in
 * test_store_outbox.c; the shared helpers in support/store_fixture.h. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <sched.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "raw_db.h"
#include "store_fixture.h"

/* ---- put / get ---- */

static void test_roundtrip(void)
{
    char path[512];
    db_path(path, sizeof path);
    store *s = open_store(path, NULL);

    inference *inf = inference_create();
    util_uuid4(inf->guid);
    char guid[UTIL_UUID_LEN + 1];
    memcpy(guid, inf->guid, sizeof guid);
    inf->ts = 1764000000123;
    inference_set_str(&inf->device, "MyDevice_0242ac110002");
    inference_set_str(&inf->source, "runner");
    inf->kind = INFERENCE_OBJECT_DETECTION;
    inference_set_str(&inf->result_json, "{\"bounding_boxes\":[]}");
    inference_set_str(&inf->timing_json, "{\"dsp\":1,\"classification\":2,\"anomaly\":0}");
    inference_set_str(&inf->info_json, "{\"model\":\"x\"}");
    inference_add_label(inf, "cat", 0.25);
    inference_add_label(inf, "dog", 0.75);
    inf->has_anomaly = 1;
    inf->anomaly = -0.5;
    inf->model_width = 320;
    inf->model_height = 240;
    uint8_t img[3000];
    for (size_t i = 0; i < sizeof img; i++)
        img[i] = (uint8_t)(i * 7);
    inf->image.data = malloc(sizeof img);
    memcpy(inf->image.data, img, sizeof img);
    inf->image.len = sizeof img;
    snprintf(inf->image.mime, sizeof inf->image.mime, "image/jpeg");
    inf->image.width = 640;
    inf->image.height = 480;
    size_t footprint = inference_footprint(inf);

    store_put_result res;
    CHECK_EQ_INT(store_put(s, inf, &res), ER_OK);
    CHECK(res.seq > 0);
    CHECK_EQ_INT(res.ts, 1764000000123);
    CHECK_EQ_STR(res.guid, guid);

    inference *got = NULL;
    CHECK_EQ_INT(store_get(s, guid, &got), ER_OK);
    if (got) {
        CHECK_EQ_STR(got->guid, guid);
        CHECK_EQ_INT(got->seq, res.seq);
        CHECK_EQ_INT(got->ts, 1764000000123);
        CHECK_EQ_STR(got->device, "MyDevice_0242ac110002");
        CHECK_EQ_STR(got->source, "runner");
        CHECK_EQ_INT(got->kind, INFERENCE_OBJECT_DETECTION);
        CHECK_EQ_STR(got->result_json, "{\"bounding_boxes\":[]}");
        CHECK_EQ_STR(got->timing_json, "{\"dsp\":1,\"classification\":2,\"anomaly\":0}");
        CHECK_EQ_STR(got->info_json, "{\"model\":\"x\"}");
        CHECK_EQ_STR(got->top_label, "dog");
        CHECK(got->top_score == 0.75);
        CHECK_EQ_INT(got->has_anomaly, 1);
        CHECK(got->anomaly == -0.5);
        CHECK_EQ_INT(got->model_width, 320);
        CHECK_EQ_INT(got->model_height, 240);
        CHECK_EQ_INT(got->n_labels, 2);
        if (got->n_labels == 2) {
            CHECK_EQ_STR(got->labels[0].label, "cat");
            CHECK(got->labels[0].score == 0.25);
            CHECK_EQ_STR(got->labels[1].label, "dog");
            CHECK(got->labels[1].score == 0.75);
        }
        CHECK(got->image.data == NULL);
        CHECK_EQ_INT(got->image.len, sizeof img);
        CHECK_EQ_STR(got->image.mime, "image/jpeg");
        CHECK_EQ_INT(got->image.width, 640);
        CHECK_EQ_INT(got->image.height, 480);
    }
    inference_destroy(got);

    inference_image im;
    CHECK_EQ_INT(store_get_image(s, guid, &im), ER_OK);
    CHECK_EQ_INT(im.len, sizeof img);
    CHECK(im.data && memcmp(im.data, img, sizeof img) == 0);
    CHECK_EQ_STR(im.mime, "image/jpeg");
    CHECK_EQ_INT(im.width, 640);
    free(im.data);

    /* An inference without image or anomaly: those read back as absent. */
    inference *plain = make_inf(5, "http", "x", 0.5);
    char pguid[UTIL_UUID_LEN + 1];
    memcpy(pguid, plain->guid, sizeof pguid);
    put_ok(s, plain);
    CHECK_EQ_INT(store_get(s, pguid, &got), ER_OK);
    if (got) {
        CHECK_EQ_INT(got->has_anomaly, 0);
        CHECK(got->timing_json == NULL);
        CHECK(got->info_json == NULL);
        CHECK_EQ_INT(got->image.len, 0);
        CHECK_EQ_INT(got->kind, INFERENCE_CLASSIFICATION);
    }
    inference_destroy(got);
    CHECK_EQ_INT(store_get_image(s, pguid, &im), ER_NOTFOUND);
    CHECK_EQ_INT(store_get(s, "00000000-0000-4000-8000-000000000000", &got), ER_NOTFOUND);
    CHECK(got == NULL);

    /* Thumbnails: none until set; only for inferences with an image. */
    uint8_t *th = NULL;
    size_t thlen = 0;
    CHECK_EQ_INT(store_get_thumbnail(s, guid, &th, &thlen), ER_NOTFOUND);
    const uint8_t thumb[] = {0xff, 0xd8, 0x01, 0x02, 0xff, 0xd9};
    CHECK_EQ_INT(store_set_thumbnail(s, guid, thumb, sizeof thumb), ER_OK);
    CHECK_EQ_INT(store_get_thumbnail(s, guid, &th, &thlen), ER_OK);
    CHECK_EQ_INT(thlen, sizeof thumb);
    CHECK(th && memcmp(th, thumb, sizeof thumb) == 0);
    free(th);
    CHECK_EQ_INT(store_set_thumbnail(s, pguid, thumb, sizeof thumb), ER_NOTFOUND);

    store_info info;
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 2);
    CHECK_EQ_INT(info.images, 1);
    CHECK_EQ_INT(info.outbox, 0);
    CHECK(info.bytes >= (int64_t)footprint);
    CHECK_EQ_INT(info.oldest_ts, 5);
    CHECK_EQ_INT(info.newest_ts, 1764000000123);
    CHECK(info.db_file_bytes > (int64_t)sizeof img);
    CHECK_EQ_INT(info.puts, 2);
    store_destroy(s);

    /* Every connection's pragmas took: WAL, incremental auto-vacuum, schema version. */
    sqlite3 *db = raw_open(path);
    CHECK_EQ_INT(raw_int(db, "PRAGMA auto_vacuum"), 2);
    CHECK_EQ_INT(raw_int(db, "PRAGMA user_version"), 5); /* 001 .. 005 */
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    CHECK_EQ_STR((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    CHECK(sqlite3_close(db) == SQLITE_OK);
    struct stat sb;
    char dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    CHECK(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0750);
}

static void test_duplicate(void)
{
    char path[512];
    db_path(path, sizeof path);
    store *s = open_store(path, NULL);
    inference *a = make_inf(100, "http", "a", 0.9);
    inference *b = make_inf(200, "http", "b", 0.1);
    memcpy(b->guid, a->guid, sizeof a->guid);
    int64_t seq = put_ok(s, a);
    store_put_result res;
    CHECK_EQ_INT(store_put(s, b, &res), ER_OK);
    CHECK(res.duplicate);
    CHECK_EQ_INT(res.seq, seq);
    CHECK_EQ_INT(res.ts, 100);
    store_info info;
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 1);
    CHECK_EQ_INT(info.duplicates, 1);
    store_destroy(s);
}

/* Another process holding the write lock past the busy timeout (an import on the live
 * database): the put fails as ER_BUSY (503, retry), nothing is stored, and the store works
 * again once the lock is gone. */
static void test_busy_elsewhere(void)
{
    char path[512];
    db_path(path, sizeof path);
    store *s = open_store(path, NULL);
    put_ok(s, make_inf(1, "http", "a", 0.5));
    sqlite3 *other = raw_open(path);
    CHECK_EQ_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    store_put_result res;
    CHECK_EQ_INT(store_put(s, make_inf(2, "http", "a", 0.5), &res), ER_BUSY);
    CHECK_EQ_INT(res.rc, ER_BUSY);
    CHECK_EQ_INT(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    CHECK(sqlite3_close(other) == SQLITE_OK);
    put_ok(s, make_inf(3, "http", "a", 0.5));
    store_info info;
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 2);
    store_destroy(s);
}

static atomic_int g_try_done;
static void count_try_done(void *arg, const store_put_result *res)
{
    (void)arg;
    if (res->rc == ER_OK) atomic_fetch_add(&g_try_done, 1);
}

/* A full queue: store_try_put_async fails at once with ER_BUSY instead of blocking the caller
 * (an HTTP thread), and everything it did accept is committed once the writer can go on. */
static void test_try_put_when_full(void)
{
    char path[512];
    db_path(path, sizeof path);
    store_opts o = {.batch_max = 1}; /* queue of 4 jobs */
    store *s = open_store(path, &o);
    put_ok(s, make_inf(1, "http", "a", 0.5));
    sqlite3 *other = raw_open(path);
    CHECK_EQ_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    /* Fill the queue (4) and the writer's hands (1, then blocked by the lock for the busy
     * timeout). The writer may take its job late on a loaded machine, so keep offering until
     * it has: from then on nothing moves, and every further put is refused. */
    int accepted = 0, tries = 0;
    er_rc rc = ER_OK;
    int64_t until = util_now_ms() + 3000;
    while (accepted < 5 && util_now_ms() < until) {
        rc = store_try_put_async(s, make_inf(10 + tries++, "http", "a", 0.5), count_try_done, NULL);
        if (rc == ER_OK)
            accepted++;
        else if (rc != ER_BUSY)
            break;
        else
            sched_yield();
    }
    CHECK_EQ_INT(accepted, 5); /* the queue, plus the one the writer holds */
    CHECK_EQ_INT(store_try_put_async(s, make_inf(9, "http", "a", 0.5), count_try_done, NULL),
                 ER_BUSY);
    /* store_offer_async: on ER_BUSY the inference is still the caller's (ASan would see a
     * use after free or a leak otherwise); offered again once there is room, it is taken. */
    inference *held = make_inf(99, "http", "offered", 0.5);
    CHECK_EQ_INT(store_offer_async(s, held, count_try_done, NULL), ER_BUSY);
    CHECK_EQ_STR(held->top_label, "offered");
    CHECK_EQ_INT(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    rc = store_offer_async(s, held, count_try_done, NULL);
    if (rc == ER_BUSY) rc = store_put_async(s, held, count_try_done, NULL); /* waits for room */
    CHECK_EQ_INT(rc, ER_OK);
    accepted++;
    CHECK(sqlite3_close(other) == SQLITE_OK);
    store_destroy(s); /* drains the queue: every accepted put runs its callback */
    s = open_store(path, &o);
    store_info info;
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    /* the put the writer held while the lock was taken may have failed with ER_BUSY */
    CHECK_EQ_INT(info.rows, 1 + atomic_load(&g_try_done));
    CHECK(atomic_load(&g_try_done) >= accepted - 1);
    store_destroy(s);
}

/* ---- delete ---- */

static void test_delete(void)
{
    char path[512];
    db_path(path, sizeof path);
    store_opts o = {.outbox = true};
    store *s = open_store(path, &o);
    inference *inf = make_inf(1, "http", "a", 0.5);
    inference_add_label(inf, "b", 0.2);
    inf->image.data = malloc(10);
    memset(inf->image.data, 1, 10);
    inf->image.len = 10;
    snprintf(inf->image.mime, sizeof inf->image.mime, "image/png");
    char guid[UTIL_UUID_LEN + 1];
    memcpy(guid, inf->guid, sizeof guid);
    put_ok(s, inf);
    put_ok(s, make_inf(2, "http", "a", 0.5));
    CHECK_EQ_INT(store_delete(s, guid), ER_OK);
    CHECK_EQ_INT(store_delete(s, guid), ER_NOTFOUND);
    inference *got = NULL;
    CHECK_EQ_INT(store_get(s, guid, &got), ER_NOTFOUND);
    store_info info;
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 1);
    CHECK_EQ_INT(info.images, 0);
    CHECK_EQ_INT(info.outbox, 1);
    store_destroy(s);
    sqlite3 *db = raw_open(path);
    /* labels packed in the row since 005; the deleted row's posting entry stays, pointing at
     * a seq that is never used again */
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM label_score"), 0);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM inference WHERE length(labels) > 0"), 1);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM image"), 0);
    CHECK(sqlite3_close(db) == SQLITE_OK);
}

/* ---- migrations, reopen ---- */

static void test_reopen(void)
{
    char path[512];
    db_path(path, sizeof path);
    store *s = open_store(path, NULL);
    inference *inf = make_inf(42, "http", "a", 0.5);
    char guid[UTIL_UUID_LEN + 1];
    memcpy(guid, inf->guid, sizeof guid);
    int64_t seq = put_ok(s, inf);
    store_destroy(s);

    /* Reopening an up-to-date database changes nothing and keeps the data. */
    sqlite3 *db = raw_open(path);
    int64_t schema_before = raw_int(db, "PRAGMA schema_version");
    CHECK(sqlite3_close(db) == SQLITE_OK);
    s = open_store(path, NULL);
    inference *got = NULL;
    CHECK_EQ_INT(store_get(s, guid, &got), ER_OK);
    CHECK(got && got->seq == seq && got->ts == 42);
    inference_destroy(got);
    int64_t seq2 = put_ok(s, make_inf(43, "http", "a", 0.5));
    CHECK(seq2 > seq);
    store_destroy(s);
    db = raw_open(path);
    CHECK_EQ_INT(raw_int(db, "PRAGMA schema_version"), schema_before);
    CHECK_EQ_INT(raw_int(db, "PRAGMA user_version"), 5); /* 001 .. 005 */
    CHECK(sqlite3_close(db) == SQLITE_OK);

    /* A database from a newer binary is refused with a clear error (a configuration matter),
     * even by a store that moves corrupt files aside. */
    raw_exec(path, "PRAGMA user_version = 9999");
    store_opts o = {.path = path, .recover = true};
    er_err err = {{0}};
    s = NULL;
    CHECK_EQ_INT(store_create(&o, &s, &err), ER_CONFIG);
    CHECK(s == NULL);
    CHECK(strstr(err.msg, "9999") != NULL);
}

/* ---- disk full ---- */

static void test_disk_full(void)
{
    char path[512];
    db_path(path, sizeof path);
    store *s = open_store(path, NULL);
    put_ok(s, make_inf(1, "http", "a", 0.5));
    /* No room to grow: a put with a 200 KB image needs new pages. */
    CHECK_EQ_INT(store_debug_max_pages(s, 1), ER_OK);
    inference *big = make_inf(2, "http", "a", 0.5);
    big->image.data = calloc(1, 200000);
    big->image.len = 200000;
    snprintf(big->image.mime, sizeof big->image.mime, "image/jpeg");
    char guid[UTIL_UUID_LEN + 1];
    memcpy(guid, big->guid, sizeof guid);
    store_put_result res;
    CHECK_EQ_INT(store_put(s, big, &res), ER_FULL);
    inference *got = NULL;
    CHECK_EQ_INT(store_get(s, guid, &got), ER_NOTFOUND);
    /* Space returns: the writer is still alive and the next put commits. */
    CHECK_EQ_INT(store_debug_max_pages(s, 1073741823), ER_OK);
    big = make_inf(3, "http", "a", 0.5);
    big->image.data = calloc(1, 200000);
    big->image.len = 200000;
    put_ok(s, big);
    store_info info;
    CHECK_EQ_INT(store_get_info(s, &info), ER_OK);
    CHECK_EQ_INT(info.rows, 2);
    CHECK_EQ_INT(info.put_errors, 1);
    store_destroy(s);
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    CHECK_EQ_STR((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    CHECK(sqlite3_close(db) == SQLITE_OK);
}

int main(void)
{
    if (!store_fixture_begin("/tmp/ei-store-XXXXXX")) return 1;
    test_roundtrip();
    test_busy_elsewhere();
    test_try_put_when_full();
    test_duplicate();
    test_delete();
    test_reopen();
    test_disk_full();
    return store_fixture_end();
}
