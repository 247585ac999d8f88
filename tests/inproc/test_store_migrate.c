/* test_store_migrate.c - a database written by schema version 3 (the files 001..003 run as they
 * are, rows inserted by hand so their triggers count them) opened by this store: migration 004
 * keeps every row, label and outbox entry, the counters agree with the tables, the insert
 * triggers are gone, the cascade trigger is there (a deleted inference takes its labels, image
 * and outbox row), and the counters the writer now keeps itself follow puts, an image, a
 * delete and a put refused by the outbox bound, in memory and after a reopen.
 * And a version 4 database with rows (labels in label_score) migrated by 005 without rewriting
 * them: every list (label, score, source, time filters; pages of 7 that cross the watermark),
 * stats and get answer as a model of the rows says, right after the migration, after new rows
 * (labels packed, postings) and deletes on both sides of the watermark, and after a reopen. */
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

/* A new database file with the schema files 001..version run as they are (user_version is the
 * caller's to set). */
static sqlite3 *open_at_version(const char *path, int version)
{
    static const char *const files[] = {"001_init.sql", "002_publish.sql", "003_age.sql",
                                        "004_ingest.sql"};
    sqlite3 *db = raw_open(path);
    CHECK(sqlite3_exec(db, "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL", NULL, NULL,
                       NULL) == SQLITE_OK);
    for (int i = 0; i < version && i < 4; i++)
        raw_run_schema(db, files[i]);
    return db;
}

#define V3_GUID(k) "00000000-0000-4000-8000-00000000000" #k

/* A version 3 database: three inferences (seq 1..3; labels a/b; an image on 2), seq 2 and 3
 * queued (3 dead), as version 3 of ei-relay left them. */
static void make_v3(const char *path)
{
    sqlite3 *db = open_at_version(path, 3);
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
    CHECK_EQ_INT(raw_int(db, "PRAGMA user_version"), 5);
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
    /* the old rows' labels stay in label_score, the new ones' are packed (005) */
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM label_score"), 6);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM inference WHERE labels IS NOT NULL"), 3);
    CHECK(sqlite3_close(db) == SQLITE_OK);
    s = open_store(path, &o);
    if (!s) return;
    CHECK_INFO(s, 6, INFO_ANY, 1, 2);
    store_destroy(s);
    raw_check_counters(path);
}

/* ---- version 4 with rows, migrated to 005: reads before and after, mixed pages ---- */

#define N_OLD 120
#define N_ALL 300
static const char *const k_labels[] = {"a", "b", "c", "zz"};

/* The model the reads are checked against: what each seq holds (0: never written / deleted). */
static struct {
    bool live;
    int64_t ts;
    const char *source;
    double score[3]; /* of a, b, c; < 0: the label is absent */
    char guid[UTIL_UUID_LEN + 1];
} g_m[N_ALL + 1];

static void model_row(int64_t seq)
{
    g_m[seq].live = true;
    g_m[seq].ts = 1000 * seq + (seq % 7) * 100; /* grows with seq */
    g_m[seq].source = seq % 3 ? "http" : "cam";
    g_m[seq].score[0] = (double)((seq * 37) % 100) / 100.0;
    g_m[seq].score[1] = seq % 2 ? (double)((seq * 53) % 100) / 100.0 + 0.001 : -1;
    g_m[seq].score[2] = seq % 5 == 0 ? 0.125 * (double)(seq % 8) : -1;
}

/* A version 4 database with N_OLD inferences (labels in label_score), as ei-relay 4 wrote them. */
static void make_v4(const char *path)
{
    sqlite3 *db = open_at_version(path, 4);
    CHECK(sqlite3_exec(db, "PRAGMA user_version=4; BEGIN", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_stmt *ins = NULL, *lab = NULL;
    CHECK(sqlite3_prepare_v2(db,
                             "INSERT INTO inference (seq, guid, ts, received_ms, device, source,"
                             " kind, result, top_label, top_score, bytes, age_ms) VALUES"
                             " (?1, ?2, ?3, ?3, 'd', ?4, 'classification', '{}', 'a', ?5, 100, ?3)",
                             -1, &ins, NULL) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(db,
                             "INSERT INTO label_score (seq, label, ts, score) VALUES (?, ?, ?, ?)",
                             -1, &lab, NULL) == SQLITE_OK);
    for (int64_t seq = 1; seq <= N_OLD; seq++) {
        model_row(seq);
        snprintf(g_m[seq].guid, sizeof g_m[seq].guid, "00000000-0000-4000-8000-%012lld",
                 (long long)seq);
        sqlite3_bind_int64(ins, 1, seq);
        sqlite3_bind_text(ins, 2, g_m[seq].guid, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 3, g_m[seq].ts);
        sqlite3_bind_text(ins, 4, g_m[seq].source, -1, SQLITE_STATIC);
        sqlite3_bind_double(ins, 5, g_m[seq].score[0]);
        CHECK(sqlite3_step(ins) == SQLITE_DONE);
        sqlite3_reset(ins);
        for (int l = 0; l < 3; l++) {
            if (g_m[seq].score[l] < 0) continue;
            sqlite3_bind_int64(lab, 1, seq);
            sqlite3_bind_text(lab, 2, k_labels[l], -1, SQLITE_STATIC);
            sqlite3_bind_int64(lab, 3, g_m[seq].ts);
            sqlite3_bind_double(lab, 4, g_m[seq].score[l]);
            CHECK(sqlite3_step(lab) == SQLITE_DONE);
            sqlite3_reset(lab);
        }
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(lab);
    CHECK(sqlite3_exec(db,
                       "UPDATE counters SET rows = (SELECT count(*) FROM inference), bytes ="
                       " (SELECT sum(bytes) FROM inference); COMMIT",
                       NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_close(db) == SQLITE_OK);
}

/* Whether seq passes f (the model's answer). */
static bool model_match(int64_t seq, const store_filter *f)
{
    int l = -1;
    for (int i = 0; i < 3; i++)
        if (f->label && strcmp(f->label, k_labels[i]) == 0) l = i;
    if (!g_m[seq].live || (f->label && (l < 0 || g_m[seq].score[l] < 0))) return false;
    if (f->source && strcmp(f->source, g_m[seq].source) != 0) return false;
    if (f->has_min_score && g_m[seq].score[l] < f->min_score) return false;
    if (f->has_since && g_m[seq].ts < f->since_ms) return false;
    return !(f->has_until && g_m[seq].ts >= f->until_ms);
}

/* Every page of f (limit 7: pages cross the watermark) equals the model's list, newest first. */
static void check_list(store *s, store_filter f)
{
    int64_t want = N_ALL + 1, pages = 0;
    f.limit = 7;
    f.before_seq = 0;
    for (;;) {
        store_page p = {0};
        CHECK_EQ_INT(store_list(s, &f, &p), ER_OK);
        for (size_t i = 0; i < p.n; i++) {
            while (--want > 0 && !model_match(want, &f)) {
            }
            CHECK_EQ_INT(p.items[i]->seq, want);
        }
        int64_t next = p.next_seq;
        size_t n = p.n;
        store_page_free(&p);
        pages++;
        if (!next) {
            CHECK(n < 7 || n == 7);
            break;
        }
        f.before_seq = next;
    }
    while (--want > 0)
        CHECK(!model_match(want, &f)); /* nothing left out at the end */
}

static void check_lists(store *s)
{
    for (int l = 0; l < 5; l++) {
        store_filter f = {.label = l < 4 ? k_labels[l] : NULL};
        check_list(s, f);
        f.has_min_score = f.label != NULL; /* without a label it is top_score's (not modelled) */
        f.min_score = 0.5;
        check_list(s, f);
        f.source = "cam";
        check_list(s, f);
        f.has_min_score = false;
        f.has_since = f.has_until = true;
        f.since_ms = 90000;
        f.until_ms = 210000;
        check_list(s, f);
    }
}

/* Stats over everything in 50 s buckets equal the model's (means summed in ts order). */
static void check_stats(store *s)
{
    store_stats_row *rows = NULL;
    size_t n = 0, k = 0;
    store_stats_sum tot;
    store_stats_query q = {.since_ms = 0, .until_ms = 1000000, .bucket_ms = 50000};
    CHECK_EQ_INT(store_stats(s, &q, &rows, &n, &tot), ER_OK);
    for (int l = 0; l < 3; l++)
        for (int64_t b = 0; b < 1000000; b += 50000) {
            int64_t count = 0;
            double sum = 0;
            for (int64_t seq = 1; seq <= N_ALL; seq++)
                if (g_m[seq].live && g_m[seq].score[l] >= 0 && g_m[seq].ts / 50000 * 50000 == b) {
                    count++;
                    sum += g_m[seq].score[l];
                }
            if (!count) continue;
            CHECK(k < n);
            if (k >= n) break;
            CHECK_EQ_STR(rows[k].label, k_labels[l]);
            CHECK_EQ_INT(rows[k].bucket_ms, b);
            CHECK_EQ_INT(rows[k].count, count);
            CHECK(rows[k].mean_score == sum / (double)count);
            k++;
        }
    CHECK_EQ_INT(k, n);
    store_stats_free(rows, n);
}

/* store_get: each live row's labels, in label order, with their scores. */
static void check_gets(store *s)
{
    for (int64_t seq = 1; seq <= N_ALL; seq += 7) {
        inference *got = NULL;
        if (!g_m[seq].guid[0]) continue;
        CHECK_EQ_INT(store_get(s, g_m[seq].guid, &got), g_m[seq].live ? ER_OK : ER_NOTFOUND);
        if (!got) continue;
        size_t k = 0;
        for (int l = 0; l < 3; l++) {
            if (g_m[seq].score[l] < 0) continue;
            CHECK(k < got->n_labels);
            if (k >= got->n_labels) break;
            CHECK_EQ_STR(got->labels[k].label, k_labels[l]);
            CHECK(got->labels[k].score == g_m[seq].score[l]);
            k++;
        }
        CHECK_EQ_INT(got->n_labels, k);
        inference_destroy(got);
    }
}

static void put_model_rows(store *s, int64_t from, int64_t to)
{
    for (int64_t seq = from; seq <= to; seq++) {
        model_row(seq);
        inference *inf = make_inf(g_m[seq].ts, g_m[seq].source, "a", g_m[seq].score[0]);
        for (int l = 1; l < 3; l++)
            if (g_m[seq].score[l] >= 0) inference_add_label(inf, k_labels[l], g_m[seq].score[l]);
        memcpy(g_m[seq].guid, inf->guid, sizeof g_m[seq].guid);
        /* most go in groups (one posting row per label holds several), each tenth alone */
        if (seq % 10 == 0 || seq == to) {
            CHECK_EQ_INT(put_ok(s, inf), seq);
        } else {
            CHECK_EQ_INT(store_put_async(s, inf, NULL, NULL), ER_OK);
        }
    }
}

static void test_migrate_v4_mixed(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/v4.db", g_dir);
    memset(g_m, 0, sizeof g_m);
    make_v4(path);
    store *s = open_store(path, NULL);
    if (!s) return;
    /* the reads of version 4's rows, right after the migration */
    check_lists(s);
    check_stats(s);
    check_gets(s);
    char *plan = NULL;
    CHECK_EQ_INT(store_explain_list(s, true, &plan), ER_OK);
    CHECK(plan && strstr(plan, "label_post USING PRIMARY KEY") &&
          strstr(plan, "COVERING INDEX label_score_label") && !strstr(plan, "TEMP B-TREE"));
    free(plan);
    /* new rows after the watermark, then deletes on both sides of it: a deleted inference's
     * posting entry stays and is skipped */
    put_model_rows(s, N_OLD + 1, N_ALL);
    const int64_t gone[] = {3, 60, N_OLD, N_OLD + 1, N_OLD + 2, 200, 201, 255, N_ALL};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
        CHECK_EQ_INT(store_delete(s, g_m[gone[i]].guid), ER_OK);
        g_m[gone[i]].live = false;
    }
    check_lists(s);
    check_stats(s);
    check_gets(s);
    store_destroy(s);

    sqlite3 *db = raw_open(path);
    CHECK_EQ_INT(raw_int(db, "PRAGMA user_version"), 5);
    CHECK_EQ_INT(raw_int(db, "SELECT value FROM meta WHERE key = 'labels_packed_from'"), N_OLD + 1);
    /* nothing rewritten: old rows keep NULL and their label_score rows (minus the deleted) */
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM inference WHERE labels IS NULL"), N_OLD - 3);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM label_score WHERE seq > "
                             "120"),
                 0);
    CHECK(raw_int(db, "SELECT count(*) FROM label_post") > 0);
    CHECK(raw_int(db, "SELECT count(*) FROM label_post WHERE seq1 > seq0") > 0);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    CHECK(sqlite3_close(db) == SQLITE_OK);

    /* reopened: the same answers */
    s = open_store(path, NULL);
    if (!s) return;
    check_lists(s);
    check_stats(s);
    store_destroy(s);
}

int main(void)
{
    if (!store_fixture_begin("/tmp/ei-store-migrate-XXXXXX")) return 1;
    test_migrate_v3();
    test_migrate_v4_mixed();
    return store_fixture_end();
}
