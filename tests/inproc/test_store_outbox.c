/* test_store_outbox.c - the store's forwarder side against real database files: publish
 * decisions recorded per inference, only PENDING queued, fetch order and paging, ack, fail and
 * dead letters, outbox bounds under both policies, migration 001 -> 002 on a database with
 * data, meta across reopen, clear_cache, retention of dead letters, start-up with a large
 * queued outbox built directly in SQL, acks in runs (out of order, repeated, with gaps), and an ack
 * lost with its transaction (a full disk) that the store keeps and commits once there is room. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "raw_db.h"
#include "store_fixture.h"

/* A database path directly in the temp directory (test_migration_001 creates the file before
 * the store opens it, so its directory must exist). */
static void flat_db_path(char *out, size_t n)
{
    snprintf(out, n, "%s/db%d.sqlite", g_dir, ++g_db_counter);
}

static inference *make_sized_inf(const char *label, double score, size_t image_len)
{
    inference *inf = inference_create();
    char json[128];
    util_uuid4(inf->guid);
    inf->ts = util_now_ms();
    inference_set_str(&inf->device, "dev_0242ac110002");
    inference_set_str(&inf->source, "http");
    inf->kind = INFERENCE_CLASSIFICATION;
    snprintf(json, sizeof json, "{\"classification\":{\"%s\":%.3f}}", label, score);
    inference_set_str(&inf->result_json, json);
    inference_add_label(inf, label, score);
    if (image_len) {
        inf->image.data = malloc(image_len);
        for (size_t i = 0; i < image_len; i++)
            inf->image.data[i] = (uint8_t)(i * 13 + 1);
        inf->image.len = image_len;
        snprintf(inf->image.mime, sizeof inf->image.mime, "image/jpeg");
        inf->image.width = 8;
        inf->image.height = 8;
    }
    return inf;
}

/* Puts and returns the seq; copies the guid out if asked. */
static int64_t put(store *s, const char *label, size_t image_len, char *guid)
{
    inference *inf = make_sized_inf(label, 0.5, image_len);
    store_put_result res;
    if (guid) memcpy(guid, inf->guid, UTIL_UUID_LEN + 1);
    CHECK_EQ_INT(store_put(s, inf, &res), ER_OK);
    CHECK(!res.duplicate);
    return res.seq;
}

static int publish_of(store *s, const char *guid)
{
    inference *inf = NULL;
    int p = -1;
    if (store_get(s, guid, &inf) == ER_OK) p = inf->publish;
    inference_destroy(inf);
    return p;
}

static store_outbox_stats stats(store *s)
{
    store_outbox_stats st;
    CHECK_EQ_INT(store_outbox_stats_get(s, &st), ER_OK);
    return st;
}

/* A policy by label: "skip" -> SKIPPED, "low" -> FILTERED, else PENDING; counts its calls. */
static inference_publish label_policy(void *arg, const inference *inf)
{
    (*(int *)arg)++;
    if (inf->top_label && strcmp(inf->top_label, "skip") == 0) return INFERENCE_PUBLISH_SKIPPED;
    if (inf->top_label && strcmp(inf->top_label, "low") == 0) return INFERENCE_PUBLISH_FILTERED;
    return INFERENCE_PUBLISH_PENDING;
}

static void test_decisions(void)
{
    char path[512], g_pend[40], g_skip[40], g_low[40], g_dup[40];
    int calls = 0;
    flat_db_path(path, sizeof path);
    store_opts o = {.outbox = true};
    store *s = open_store(path, &o);
    store_set_policy(s, label_policy, &calls);
    put(s, "cat", 0, g_pend);
    put(s, "skip", 0, g_skip);
    put(s, "low", 0, g_low);
    CHECK_EQ_INT(calls, 3);
    CHECK_EQ_INT(publish_of(s, g_pend), INFERENCE_PUBLISH_PENDING);
    CHECK_EQ_INT(publish_of(s, g_skip), INFERENCE_PUBLISH_SKIPPED);
    CHECK_EQ_INT(publish_of(s, g_low), INFERENCE_PUBLISH_FILTERED);
    CHECK_EQ_STR(inference_publish_name(INFERENCE_PUBLISH_FILTERED), "filtered");
    CHECK_EQ_STR(inference_publish_name(INFERENCE_PUBLISH_NONE), "disabled");

    /* A duplicate put asks no decision and queues nothing. */
    inference *dup = make_sized_inf("cat", 0.5, 0);
    memcpy(g_dup, g_pend, sizeof g_dup);
    memcpy(dup->guid, g_dup, sizeof dup->guid);
    store_put_result res;
    CHECK_EQ_INT(store_put(s, dup, &res), ER_OK);
    CHECK(res.duplicate);
    CHECK_EQ_INT(calls, 3);

    /* Only the pending one is in the outbox. */
    store_outbox_stats st = stats(s);
    CHECK_EQ_INT(st.pending, 1);
    CHECK(st.pending_bytes > 0);
    CHECK(st.oldest_pending_ts > 0);
    store_page page;
    CHECK_EQ_INT(store_outbox_fetch(s, 0, 10, &page), ER_OK);
    CHECK_EQ_INT(page.n, 1);
    if (page.n == 1) {
        CHECK_EQ_STR(page.items[0]->guid, g_pend);
        CHECK_EQ_INT(page.items[0]->publish, INFERENCE_PUBLISH_PENDING);
    }
    store_page_free(&page);

    /* The decision is visible in list reads too. */
    store_filter f = {.limit = 10};
    CHECK_EQ_INT(store_list(s, &f, &page), ER_OK);
    CHECK_EQ_INT(page.n, 3);
    if (page.n == 3) CHECK_EQ_INT(page.items[1]->publish, INFERENCE_PUBLISH_SKIPPED);
    store_page_free(&page);
    store_destroy(s);

    /* Forwarding off: no decision, no outbox row, the policy is not consulted. */
    store_opts off = {.outbox = false};
    s = open_store(path, &off);
    store_set_policy(s, label_policy, &calls);
    char g_off[40];
    put(s, "cat", 0, g_off);
    CHECK_EQ_INT(calls, 3);
    CHECK_EQ_INT(publish_of(s, g_off), INFERENCE_PUBLISH_NONE);
    CHECK_EQ_INT(stats(s).pending, 1); /* still the earlier one */
    store_destroy(s);
}

static void test_fetch_ack(void)
{
    char path[512], guids[10][40];
    int64_t seqs[10];
    flat_db_path(path, sizeof path);
    store_opts o = {.outbox = true};
    store *s = open_store(path, &o);
    for (int i = 0; i < 10; i++)
        seqs[i] = put(s, "cat", i % 2 ? 100 + (size_t)i : 0, guids[i]);
    store_outbox_stats before = stats(s);
    CHECK_EQ_INT(before.pending, 10);

    /* Pages in seq order, resumed by after_seq, with image bytes. */
    store_page page;
    CHECK_EQ_INT(store_outbox_fetch(s, 0, 4, &page), ER_OK);
    CHECK_EQ_INT(page.n, 4);
    for (size_t i = 0; i < page.n; i++)
        CHECK_EQ_INT(page.items[i]->seq, seqs[i]);
    if (page.n == 4) {
        CHECK(page.items[0]->image.data == NULL);
        CHECK_EQ_INT(page.items[1]->image.len, 101);
        CHECK(page.items[1]->image.data && page.items[1]->image.data[1] == 14);
    }
    int64_t after = page.n ? page.items[page.n - 1]->seq : 0;
    store_page_free(&page);
    /* The same rows without image bytes: what the image is, not its data. */
    CHECK_EQ_INT(store_outbox_fetch_meta(s, 0, 4, &page), ER_OK);
    CHECK_EQ_INT(page.n, 4);
    for (size_t i = 0; i < page.n; i++) {
        CHECK_EQ_INT(page.items[i]->seq, seqs[i]);
        CHECK(page.items[i]->image.data == NULL);
    }
    if (page.n == 4) {
        CHECK_EQ_INT(page.items[1]->image.len, 101);
        CHECK_EQ_STR(page.items[1]->image.mime, "image/jpeg");
    }
    store_page_free(&page);
    CHECK_EQ_INT(store_outbox_fetch_meta(s, 0, 0, &page), ER_INVALID);
    CHECK_EQ_INT(store_outbox_fetch(s, after, 100, &page), ER_OK);
    CHECK_EQ_INT(page.n, 6);
    if (page.n) CHECK_EQ_INT(page.items[0]->seq, seqs[4]);
    store_page_free(&page);
    CHECK_EQ_INT(store_outbox_fetch(s, 0, 0, &page), ER_INVALID);

    /* Ack deletes the rows and records PUBLISHED; the counters follow. */
    int64_t acked[2] = {seqs[0], seqs[1]};
    CHECK_EQ_INT(store_outbox_ack(s, acked, 2), ER_OK);
    CHECK_EQ_INT(publish_of(s, guids[0]), INFERENCE_PUBLISH_PUBLISHED);
    CHECK_EQ_INT(publish_of(s, guids[1]), INFERENCE_PUBLISH_PUBLISHED);
    CHECK_EQ_INT(publish_of(s, guids[2]), INFERENCE_PUBLISH_PENDING);
    store_outbox_stats after_ack = stats(s);
    CHECK_EQ_INT(after_ack.pending, 8);
    CHECK(after_ack.pending_bytes < before.pending_bytes);
    CHECK_EQ_INT(store_outbox_fetch(s, 0, 1, &page), ER_OK);
    CHECK(page.n == 1 && page.items[0]->seq == seqs[2]);
    store_page_free(&page);
    /* Acking again is harmless. */
    CHECK_EQ_INT(store_outbox_ack(s, acked, 2), ER_OK);
    CHECK_EQ_INT(stats(s).pending, 8);
    CHECK_INFO(s, 10, INFO_ANY, INFO_ANY, 8);

    /* An ack that does not wait is committed in queue order: once a later job that waits
     * (a meta write) returns, it has taken effect. */
    int64_t later[1] = {seqs[2]};
    CHECK_EQ_INT(store_outbox_ack_async(s, later, 1), ER_OK);
    CHECK_EQ_INT(store_meta_set(s, "test.fence", "1"), ER_OK);
    CHECK_EQ_INT(publish_of(s, guids[2]), INFERENCE_PUBLISH_PUBLISHED);
    CHECK_EQ_INT(stats(s).pending, 7);

    /* Deleting an inference takes its outbox row and the counters along. */
    CHECK_EQ_INT(store_delete(s, guids[9]), ER_OK);
    CHECK_EQ_INT(stats(s).pending, 6);
    store_destroy(s);

    /* The counters match the tables after all that. */
    sqlite3 *db = raw_open(path);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM outbox WHERE state = 0"), 6);
    CHECK(sqlite3_close(db) == SQLITE_OK);
    raw_check_counters(path);
}

static void test_fail_dead(void)
{
    char path[512], guids[4][40];
    int64_t seqs[4];
    bool dead = true;
    flat_db_path(path, sizeof path);
    store_opts o = {.outbox = true, .max_attempts = 3};
    store *s = open_store(path, &o);
    for (int i = 0; i < 4; i++)
        seqs[i] = put(s, "cat", 0, guids[i]);

    CHECK_EQ_INT(store_outbox_fail(s, seqs[0], false, "timeout", &dead), ER_OK);
    CHECK(!dead);
    CHECK_EQ_INT(store_outbox_fail(s, seqs[0], false, "timeout", &dead), ER_OK);
    CHECK(!dead);
    CHECK_EQ_INT(publish_of(s, guids[0]), INFERENCE_PUBLISH_PENDING);
    CHECK_EQ_INT(store_outbox_fail(s, seqs[0], false, "timeout again", &dead), ER_OK);
    CHECK(dead);
    CHECK_EQ_INT(publish_of(s, guids[0]), INFERENCE_PUBLISH_DEAD);
    /* A permanent failure is dead at once. */
    CHECK_EQ_INT(store_outbox_fail(s, seqs[2], true, "not authorized", &dead), ER_OK);
    CHECK(dead);
    /* Unknown or already dead rows. */
    CHECK_EQ_INT(store_outbox_fail(s, seqs[2], false, "x", &dead), ER_NOTFOUND);
    CHECK_EQ_INT(store_outbox_fail(s, 999999, false, "x", &dead), ER_NOTFOUND);

    store_outbox_stats st = stats(s);
    CHECK_EQ_INT(st.pending, 2);
    CHECK_EQ_INT(st.dead, 2);
    /* Dead rows do not block the queue. */
    store_page page;
    CHECK_EQ_INT(store_outbox_fetch(s, 0, 10, &page), ER_OK);
    CHECK_EQ_INT(page.n, 2);
    if (page.n == 2) {
        CHECK_EQ_INT(page.items[0]->seq, seqs[1]);
        CHECK_EQ_INT(page.items[1]->seq, seqs[3]);
    }
    store_page_free(&page);
    /* Dead letters, newest first, paginated. */
    CHECK_EQ_INT(store_outbox_dead(s, 0, 1, &page), ER_OK);
    CHECK(page.n == 1 && page.items[0]->seq == seqs[2]);
    CHECK_EQ_INT(page.next_seq, seqs[2]);
    if (page.n == 1) CHECK_EQ_INT(page.items[0]->publish, INFERENCE_PUBLISH_DEAD);
    int64_t next = page.next_seq;
    store_page_free(&page);
    CHECK_EQ_INT(store_outbox_dead(s, next, 10, &page), ER_OK);
    CHECK(page.n == 1 && page.items[0]->seq == seqs[0]);
    CHECK_EQ_INT(page.next_seq, 0);
    store_page_free(&page);
    store_destroy(s);

    sqlite3 *db = raw_open(path);
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT attempts = 3 AND last_error = 'timeout again' AND dead_ms > 0 FROM outbox"
             " WHERE seq = %lld",
             (long long)seqs[0]);
    CHECK_EQ_INT(raw_int(db, sql), 1);
    sqlite3_close(db);
}

static void test_bounds(void)
{
    char path[512], g[6][40];
    flat_db_path(path, sizeof path);
    /* drop_oldest by rows */
    store_opts o = {.outbox = true, .outbox_max_rows = 3};
    store *s = open_store(path, &o);
    for (int i = 0; i < 5; i++)
        put(s, "cat", 0, g[i]);
    store_outbox_stats st = stats(s);
    CHECK_EQ_INT(st.pending, 3);
    CHECK_EQ_INT(st.dropped, 2);
    CHECK_EQ_INT(st.rejected, 0);
    CHECK_EQ_INT(publish_of(s, g[0]), INFERENCE_PUBLISH_DROPPED);
    CHECK_EQ_INT(publish_of(s, g[1]), INFERENCE_PUBLISH_DROPPED);
    CHECK_EQ_INT(publish_of(s, g[2]), INFERENCE_PUBLISH_PENDING);
    CHECK_EQ_INT(publish_of(s, g[4]), INFERENCE_PUBLISH_PENDING);
    CHECK_INFO(s, 5, INFO_ANY, 0, 3); /* the cache keeps every inference */
    store_destroy(s);
    raw_check_counters(path);

    /* reject_new by rows */
    flat_db_path(path, sizeof path);
    store_opts r = {.outbox = true, .outbox_max_rows = 3, .outbox_reject_new = true};
    s = open_store(path, &r);
    for (int i = 0; i < 5; i++)
        put(s, "cat", 0, g[i]);
    st = stats(s);
    CHECK_EQ_INT(st.pending, 3);
    CHECK_EQ_INT(st.dropped, 0);
    CHECK_EQ_INT(st.rejected, 2);
    CHECK_EQ_INT(publish_of(s, g[0]), INFERENCE_PUBLISH_PENDING);
    CHECK_EQ_INT(publish_of(s, g[3]), INFERENCE_PUBLISH_DROPPED);
    CHECK_EQ_INT(publish_of(s, g[4]), INFERENCE_PUBLISH_DROPPED);
    store_destroy(s);

    /* drop_oldest by bytes: room for two 1000-byte images, a third pushes the first out;
     * an image larger than the whole bound is refused, the queue left alone. */
    inference *probe = make_sized_inf("cat", 0.5, 1000);
    int64_t one = (int64_t)inference_footprint(probe);
    inference_destroy(probe);
    flat_db_path(path, sizeof path);
    store_opts b = {.outbox = true, .outbox_max_bytes = one * 2 + one / 2};
    s = open_store(path, &b);
    put(s, "cat", 1000, g[0]);
    put(s, "cat", 1000, g[1]);
    CHECK_EQ_INT(stats(s).pending, 2);
    put(s, "cat", 1000, g[2]);
    st = stats(s);
    CHECK_EQ_INT(st.pending, 2);
    CHECK_EQ_INT(st.pending_bytes, one * 2);
    CHECK_EQ_INT(st.dropped, 1);
    CHECK_EQ_INT(publish_of(s, g[0]), INFERENCE_PUBLISH_DROPPED);
    put(s, "cat", 10000, g[3]);
    st = stats(s);
    CHECK_EQ_INT(st.pending, 2);
    CHECK_EQ_INT(st.rejected, 1);
    CHECK_EQ_INT(publish_of(s, g[3]), INFERENCE_PUBLISH_DROPPED);
    CHECK_EQ_INT(publish_of(s, g[1]), INFERENCE_PUBLISH_PENDING);
    store_destroy(s);

    /* The lifetime totals persist in the counters row. */
    sqlite3 *db = raw_open(path);
    CHECK_EQ_INT(raw_int(db, "SELECT outbox_dropped * 10 + outbox_rejected FROM counters"), 11);
    CHECK(sqlite3_close(db) == SQLITE_OK);
    raw_check_counters(path);
}

/* Builds a database as migration 001 left it, with data, then opens it with the store. */
static void test_migration_001(void)
{
    char path[512];
    flat_db_path(path, sizeof path);
    sqlite3 *db = raw_open(path);
    CHECK(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) == SQLITE_OK);
    raw_run_schema(db, "001_init.sql");
    CHECK(sqlite3_exec(db,
                       "PRAGMA user_version=1;"
                       "INSERT INTO inference (guid, ts, received_ms, device, source, kind, result,"
                       " top_label, top_score, bytes) VALUES"
                       " ('g1', 1, 1, 'd', 'http', 'classification', '{\"classification\":{}}',"
                       "  'a', 0.5, 300),"
                       " ('g2', 2, 2, 'd', 'http', 'classification', '{\"classification\":{}}',"
                       "  'a', 0.5, 400),"
                       " ('g3', 3, 3, 'd', 'http', 'classification', '{\"classification\":{}}',"
                       "  'a', 0.5, 500);"
                       "INSERT INTO outbox (seq, created_ms) VALUES (2, 2), (3, 3);",
                       NULL, NULL, NULL) == SQLITE_OK);
    CHECK_EQ_INT(raw_int(db, "SELECT outbox FROM counters"), 2);
    CHECK(sqlite3_close(db) == SQLITE_OK);

    store_opts o = {.outbox = true};
    store *s = open_store(path, &o);
    if (!s) return;
    CHECK_EQ_INT(publish_of(s, "g1"), INFERENCE_PUBLISH_NONE);
    CHECK_EQ_INT(publish_of(s, "g2"), INFERENCE_PUBLISH_PENDING);
    CHECK_EQ_INT(publish_of(s, "g3"), INFERENCE_PUBLISH_PENDING);
    store_outbox_stats st = stats(s);
    CHECK_EQ_INT(st.pending, 2);
    CHECK_EQ_INT(st.pending_bytes, 900);
    CHECK_EQ_INT(st.dead, 0);
    CHECK_EQ_INT(st.oldest_pending_ts, 2);
    store_page page;
    CHECK_EQ_INT(store_outbox_fetch(s, 0, 10, &page), ER_OK);
    CHECK(page.n == 2 && page.items[0]->seq == 2 && page.items[1]->seq == 3);
    store_page_free(&page);
    /* New puts go on after the migrated rows. */
    int64_t seq = put(s, "cat", 0, NULL);
    CHECK(seq > 3);
    CHECK_EQ_INT(stats(s).pending, 3);
    store_destroy(s);
    db = raw_open(path);
    CHECK_EQ_INT(raw_int(db, "PRAGMA user_version"), 5);
    /* 003: a migrated row's age on the age clock is its wall clock receive time */
    CHECK_EQ_INT(raw_int(db, "SELECT age_ms FROM inference WHERE seq = 2"), 2);
    CHECK(sqlite3_close(db) == SQLITE_OK);
    raw_check_counters(path);
}

static void test_meta(void)
{
    char path[512];
    char *v = NULL;
    flat_db_path(path, sizeof path);
    store_opts o = {0};
    store *s = open_store(path, &o);
    CHECK_EQ_INT(store_meta_get(s, "threshold", &v), ER_NOTFOUND);
    CHECK(v == NULL);
    CHECK_EQ_INT(store_meta_set(s, "threshold", "0.5"), ER_OK);
    CHECK_EQ_INT(store_meta_set(s, "threshold", "0.75"), ER_OK);
    CHECK_EQ_INT(store_meta_set(s, "criteria", "ge"), ER_OK);
    CHECK_EQ_INT(store_meta_set(s, NULL, "x"), ER_INVALID);
    store_destroy(s);
    s = open_store(path, &o);
    CHECK_EQ_INT(store_meta_get(s, "threshold", &v), ER_OK);
    CHECK_EQ_STR(v, "0.75");
    free(v);
    CHECK_EQ_INT(store_meta_get(s, "criteria", &v), ER_OK);
    CHECK_EQ_STR(v, "ge");
    free(v);
    store_destroy(s);
}

static void test_clear(void)
{
    char path[512], g[6][40];
    int64_t seqs[6];
    int calls = 0;
    int64_t deleted = -1;
    flat_db_path(path, sizeof path);
    store_opts o = {.outbox = true};
    store *s = open_store(path, &o);
    store_set_policy(s, label_policy, &calls);
    const char *labels[6] = {"cat", "skip", "cat", "cat", "low", "cat"};
    for (int i = 0; i < 6; i++)
        seqs[i] = put(s, labels[i], 50, g[i]);
    CHECK_EQ_INT(store_outbox_ack(s, &seqs[0], 1), ER_OK);                     /* published */
    CHECK_EQ_INT(store_outbox_fail(s, seqs[2], true, "refused", NULL), ER_OK); /* dead */
    /* pending: 3 and 5 */
    CHECK_EQ_INT(store_clear(s, &deleted), ER_OK);
    CHECK_EQ_INT(deleted, 4);
    CHECK_INFO(s, 2, INFO_ANY, 2, 2);
    CHECK_EQ_INT(publish_of(s, g[3]), INFERENCE_PUBLISH_PENDING);
    CHECK_EQ_INT(publish_of(s, g[5]), INFERENCE_PUBLISH_PENDING);
    CHECK_EQ_INT(publish_of(s, g[0]), -1);
    store_outbox_stats st = stats(s);
    CHECK_EQ_INT(st.pending, 2);
    CHECK_EQ_INT(st.dead, 0);
    /* the label postings of what went went with it; "cat" lists the two kept rows */
    store_filter f = {.label = "cat", .limit = 10};
    store_page p = {0};
    CHECK_EQ_INT(store_list(s, &f, &p), ER_OK);
    CHECK_EQ_INT(p.n, 2);
    if (p.n == 2) CHECK(p.items[0]->seq == seqs[5] && p.items[1]->seq == seqs[3]);
    store_page_free(&p);
    CHECK_EQ_INT(store_clear(s, &deleted), ER_OK);
    CHECK_EQ_INT(deleted, 0);
    store_destroy(s);
    raw_check_counters(path);
    sqlite3 *db = raw_open(path);
    CHECK_EQ_INT(raw_int(db, RAW_SQL_STRANDED_POSTINGS), 0);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM label_post"), 2);
    CHECK(sqlite3_close(db) == SQLITE_OK);
}

/* Dead letters do not pin the cache: size retention removes them like any old row, while
 * pending rows stay. */
static void test_retention_dead(void)
{
    char path[512];
    int64_t seqs[4];
    flat_db_path(path, sizeof path);
    store_opts o = {.outbox = true, .max_rows = 2};
    store *s = open_store(path, &o);
    for (int i = 0; i < 4; i++)
        seqs[i] = put(s, "cat", 0, NULL);
    CHECK_EQ_INT(store_retain(s), ER_OK);
    CHECK_INFO(s, 4, INFO_ANY, 0, 4); /* all pending: protected */
    CHECK_EQ_INT(store_outbox_fail(s, seqs[0], true, "refused", NULL), ER_OK);
    CHECK_EQ_INT(store_outbox_fail(s, seqs[1], true, "refused", NULL), ER_OK);
    CHECK_EQ_INT(stats(s).dead, 2);
    CHECK_EQ_INT(store_retain(s), ER_OK);
    CHECK_INFO(s, 2, INFO_ANY, 0, 2);
    store_outbox_stats st = stats(s);
    CHECK_EQ_INT(st.dead, 0);
    CHECK_EQ_INT(st.pending, 2);
    store_page page;
    CHECK_EQ_INT(store_outbox_fetch(s, 0, 10, &page), ER_OK);
    CHECK(page.n == 2 && page.items[0]->seq == seqs[2]);
    store_page_free(&page);
    store_destroy(s);
    raw_check_counters(path);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A large queued outbox, built in one SQL transaction (triggers keep the counters), then
 * opened: nothing at start-up may depend on the outbox's size. */
#define BIG_ROWS 200000
static void test_startup_big_outbox(void)
{
    char path[512];
    flat_db_path(path, sizeof path);
    store_opts o = {.outbox = true};
    store *s = open_store(path, &o); /* creates the schema */
    store_destroy(s);
    sqlite3 *db = raw_open(path);
    double t0 = mono_s();
    char sql[1024];
    snprintf(sql, sizeof sql,
             "BEGIN;"
             "WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < %d)"
             " INSERT INTO inference (guid, ts, received_ms, device, source, kind, result,"
             " top_label, top_score, bytes, publish)"
             " SELECT printf('00000000-0000-4000-8000-%%012d', k), 1000 + k, 1000 + k, 'd',"
             " 'http', 'classification', '{\"classification\":{\"a\":0.5}}', 'a', 0.5, 300, 1"
             " FROM n;"
             "INSERT INTO outbox (seq, created_ms, bytes) SELECT seq, ts, 300 FROM inference;"
             /* the store counts its own inserts (schema/004_ingest.sql): these are ours */
             "UPDATE counters SET rows = rows + %d, bytes = bytes + 300 * %d,"
             " outbox = outbox + %d, outbox_bytes = outbox_bytes + 300 * %d;"
             "COMMIT;",
             BIG_ROWS, BIG_ROWS, BIG_ROWS, BIG_ROWS, BIG_ROWS);
    char *errmsg = NULL;
    CHECK(sqlite3_exec(db, sql, NULL, NULL, &errmsg) == SQLITE_OK);
    if (errmsg) fprintf(stderr, "%s\n", errmsg);
    sqlite3_free(errmsg);
    sqlite3_close(db);
    double t1 = mono_s();

    s = open_store(path, &o);
    if (!s) return;
    store_outbox_stats st = stats(s);
    store_page page;
    CHECK_EQ_INT(store_outbox_fetch(s, 0, 100, &page), ER_OK);
    double t2 = mono_s();
    CHECK_EQ_INT(st.pending, BIG_ROWS);
    CHECK_EQ_INT(st.pending_bytes, (int64_t)BIG_ROWS * 300);
    CHECK_EQ_INT(st.oldest_pending_ts, 1001);
    CHECK_EQ_INT(page.n, 100);
    if (page.n == 100) {
        CHECK_EQ_INT(page.items[0]->seq, 1);
        CHECK_EQ_INT(page.items[99]->seq, 100);
    }
    store_page_free(&page);
    /* A page from deep in the queue is as direct as the first. */
    CHECK_EQ_INT(store_outbox_fetch(s, BIG_ROWS - 10, 100, &page), ER_OK);
    CHECK_EQ_INT(page.n, 10);
    store_page_free(&page);
    printf("startup with %d queued rows: build %.2f s, open + stats + first fetch %.1f ms\n",
           BIG_ROWS, t1 - t0, (t2 - t1) * 1000);
    store_destroy(s);
}

/* ---- an ack lost with its transaction (disk full) ---- */

typedef struct lost_ack {
    store *s;
    int64_t seq;
    er_rc ack_rc;
    int done; /* puts answered */
} lost_ack;

static void big_put_done(void *arg, const store_put_result *res)
{
    lost_ack *l = arg;
    (void)res;
    __atomic_add_fetch(&l->done, 1, __ATOMIC_SEQ_CST);
}

/* On the writer thread, inside a batch: the ack (nobody waits for it, as the forwarder's) and a
 * put that cannot fit are queued now, so they commit together in the next batch, or not. */
static void fence_done(void *arg, const store_put_result *res)
{
    lost_ack *l = arg;
    big_put_done(arg, res);
    l->ack_rc = store_outbox_ack_async(l->s, &l->seq, 1);
    store_put_async(l->s, make_sized_inf("big", 0.5, 200000), big_put_done, l);
}

/* Polls until the outbox is empty (a bounded wait for the retry; false after 10 s). */
static bool outbox_drains(store *s)
{
    for (int i = 0; i < 500; i++) {
        if (stats(s).pending == 0) return true;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* Acks that do not wait, out of order, repeated and with gaps, many at once (so they pile up
 * in one queued job while the writer commits): exactly the acknowledged rows go, in runs. */
static void test_ack_runs(void)
{
    enum { N = 300 };
    char path[512], guid_gap[40], guid_last[40];
    static int64_t seqs[N];
    flat_db_path(path, sizeof path);
    store_opts o = {.outbox = true};
    store *s = open_store(path, &o);
    for (int i = 0; i < N; i++) {
        inference *inf = make_sized_inf("cat", 0.5, 0);
        if (i == 150) memcpy(guid_gap, inf->guid, sizeof guid_gap);
        if (i == N - 1) memcpy(guid_last, inf->guid, sizeof guid_last);
        store_put_result res;
        CHECK_EQ_INT(store_put(s, inf, &res), ER_OK);
        seqs[i] = res.seq;
    }
    /* every row but 150 (a gap in the middle of a run) and 299 (the end), backwards in pairs,
     * each pair twice */
    for (int i = N - 2; i >= 0; i -= 2) {
        int64_t pair[2] = {seqs[i + 1], seqs[i]};
        if (i + 1 == N - 1) pair[0] = seqs[i];
        if (i == 150) pair[1] = seqs[i + 1];
        CHECK_EQ_INT(store_outbox_ack_async(s, pair, 2), ER_OK);
        CHECK_EQ_INT(store_outbox_ack_async(s, pair, 2), ER_OK);
    }
    CHECK_EQ_INT(store_meta_set(s, "test.fence", "1"), ER_OK); /* after every queued ack */
    CHECK_EQ_INT(stats(s).pending, 2);
    CHECK_EQ_INT(publish_of(s, guid_gap), INFERENCE_PUBLISH_PENDING);
    CHECK_EQ_INT(publish_of(s, guid_last), INFERENCE_PUBLISH_PENDING);
    store_page page;
    CHECK_EQ_INT(store_outbox_fetch(s, 0, 10, &page), ER_OK);
    CHECK(page.n == 2 && page.items[0]->seq == seqs[150] && page.items[1]->seq == seqs[N - 1]);
    store_page_free(&page);
    store_destroy(s);
    sqlite3 *db = raw_open(path);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM inference WHERE publish = 2"), N - 2);
    CHECK_EQ_INT(raw_int(db, "SELECT outbox FROM counters"), 2);
    CHECK(sqlite3_close(db) == SQLITE_OK);
    raw_check_counters(path);
}

static void test_ack_lost_full(void)
{
    char path[512], guid[40];
    flat_db_path(path, sizeof path);
    store_opts o = {.outbox = true};
    store *s = open_store(path, &o);
    lost_ack l = {.s = s};
    l.seq = put(s, "cat", 100, guid);
    CHECK_EQ_INT(store_debug_max_pages(s, 1), ER_OK); /* the file cannot grow: full */
    CHECK_EQ_INT(store_put_async(s, make_sized_inf("big", 0.5, 200000), fence_done, &l), ER_OK);
    for (int i = 0; i < 500 && __atomic_load_n(&l.done, __ATOMIC_SEQ_CST) < 2; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CHECK_EQ_INT(l.done, 2);
    CHECK_EQ_INT(l.ack_rc, ER_OK);
    CHECK_EQ_INT(publish_of(s, guid), INFERENCE_PUBLISH_PENDING); /* lost with the put */
    /* Space returns: the kept ack is committed by itself (no new ack, no republish). */
    CHECK_EQ_INT(store_debug_max_pages(s, 1073741823), ER_OK);
    CHECK(outbox_drains(s));
    CHECK_EQ_INT(publish_of(s, guid), INFERENCE_PUBLISH_PUBLISHED);
    store_destroy(s);
}

int main(void)
{
    if (!store_fixture_begin("/tmp/ei-outbox-XXXXXX")) return 1;
    test_decisions();
    test_fetch_ack();
    test_fail_dead();
    test_bounds();
    test_migration_001();
    test_meta();
    test_clear();
    test_retention_dead();
    test_startup_big_outbox();
    test_ack_runs();
    test_ack_lost_full();
    return store_fixture_end();
}
