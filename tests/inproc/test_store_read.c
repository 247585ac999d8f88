/* test_store_read.c - the store's reads against real database files: list_after, keyset
 * pagination while rows arrive, the filters (label, min score, since/until, source), the query
 * plans of the list statements, stats per label and bucket, foreach with image bytes. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "raw_db.h"
#include "store_fixture.h"

/* ---- list ---- */

static void test_list(void)
{
    char path[512];
    db_path(path, sizeof path);
    store *s = open_store(path, NULL);
    int64_t seqs[40];
    /* 40 rows: even ones "cat" from "cam1", odd ones "dog" from "cam2"; ts = 1000 + i. */
    for (int i = 0; i < 40; i++)
        seqs[i] = put_ok(s, make_inf(1000 + i, i % 2 ? "cam2" : "cam1", i % 2 ? "dog" : "cat",
                                     (double)i / 40.0));

    /* Oldest first after a seq, with labels (the live stream's catch-up). */
    store_page after;
    CHECK_EQ_INT(store_list_after(s, seqs[2], 3, 0, &after), ER_OK);
    CHECK_EQ_INT(after.n, 3);
    for (size_t i = 0; i < after.n; i++) {
        CHECK_EQ_INT(after.items[i]->seq, seqs[3 + i]);
        CHECK_EQ_INT(after.items[i]->n_labels, 1);
        if (after.items[i]->n_labels == 1)
            CHECK_EQ_STR(after.items[i]->labels[0].label, (3 + i) % 2 ? "dog" : "cat");
    }
    CHECK_EQ_INT(after.next_seq, seqs[5]); /* more follow */
    store_page_free(&after);
    CHECK_EQ_INT(store_list_after(s, seqs[37], 10, 0, &after), ER_OK);
    CHECK(after.n == 2 && after.next_seq == 0);
    store_page_free(&after);
    CHECK_EQ_INT(store_list_after(s, seqs[39], 10, 0, &after), ER_OK);
    CHECK_EQ_INT(after.n, 0);
    store_page_free(&after);
    CHECK_EQ_INT(store_list_after(s, 0, 0, 0, &after), ER_INVALID);
    CHECK_EQ_INT(store_list_after(s, -1, 5, 0, &after), ER_INVALID);

    /* Keyset pages stay exact while new rows arrive between pages. */
    store_filter f = {.limit = 7};
    int seen[40] = {0};
    int64_t last = INT64_MAX;
    size_t total = 0;
    int pages = 0;
    for (;;) {
        store_page p;
        CHECK_EQ_INT(store_list(s, &f, &p), ER_OK);
        for (size_t i = 0; i < p.n; i++) {
            CHECK(p.items[i]->seq < last);
            last = p.items[i]->seq;
            for (int k = 0; k < 40; k++)
                if (seqs[k] == p.items[i]->seq) seen[k]++;
        }
        total += p.n;
        int64_t next = p.next_seq;
        if (p.n == 7) CHECK(next == 0 || next == p.items[6]->seq);
        store_page_free(&p);
        put_ok(s, make_inf(5000 + pages, "cam3", "new", 0.5)); /* newer than every page */
        pages++;
        if (!next) break;
        f.before_seq = next;
    }
    CHECK_EQ_INT(total, 40);
    CHECK_EQ_INT(pages, 6);
    int all_once = 1;
    for (int k = 0; k < 40; k++)
        all_once &= seen[k] == 1;
    CHECK(all_once);

    /* Exactly limit rows left: no next page. */
    store_filter exact = {.limit = 40, .before_seq = seqs[39] + 1};
    store_page p;
    CHECK_EQ_INT(store_list(s, &exact, &p), ER_OK);
    CHECK_EQ_INT(p.n, 40);
    CHECK_EQ_INT(p.next_seq, 0);
    if (p.n == 40) {
        CHECK(p.items[0]->image.data == NULL);
        CHECK_EQ_STR(p.items[0]->top_label, "dog");
        CHECK_EQ_STR(p.items[0]->result_json, "{\"classification\":{\"dog\":0.975}}");
    }
    store_page_free(&p);

    /* Label filter with min score on that label. */
    store_filter fl = {.label = "dog", .has_min_score = true, .min_score = 0.5, .limit = 100};
    CHECK_EQ_INT(store_list(s, &fl, &p), ER_OK);
    CHECK_EQ_INT(p.n, 10); /* odd i in 21..39 */
    for (size_t i = 0; i < p.n; i++) {
        CHECK_EQ_STR(p.items[i]->top_label, "dog");
        CHECK(p.items[i]->top_score >= 0.5);
    }
    if (p.n == 10) CHECK_EQ_INT(p.items[0]->seq, seqs[39]);
    store_page_free(&p);

    /* Label filter pages by keyset too. */
    store_filter fl2 = {.label = "cat", .limit = 15};
    CHECK_EQ_INT(store_list(s, &fl2, &p), ER_OK);
    CHECK_EQ_INT(p.n, 15);
    CHECK_EQ_INT(p.next_seq, seqs[10]);
    store_page_free(&p);
    fl2.before_seq = seqs[10];
    CHECK_EQ_INT(store_list(s, &fl2, &p), ER_OK);
    CHECK_EQ_INT(p.n, 5);
    CHECK_EQ_INT(p.next_seq, 0);
    store_page_free(&p);

    /* min_score without label applies to top_score. */
    store_filter fm = {.has_min_score = true, .min_score = 0.9, .source = "cam1", .limit = 100};
    CHECK_EQ_INT(store_list(s, &fm, &p), ER_OK);
    CHECK_EQ_INT(p.n, 2); /* i = 36, 38 */
    store_page_free(&p);

    /* since/until: ts in [1010, 1020) -> i in 10..19; with label cat -> 5. */
    store_filter ft = {
        .has_since = true, .since_ms = 1010, .has_until = true, .until_ms = 1020, .limit = 100};
    CHECK_EQ_INT(store_list(s, &ft, &p), ER_OK);
    CHECK_EQ_INT(p.n, 10);
    for (size_t i = 0; i < p.n; i++)
        CHECK(p.items[i]->ts >= 1010 && p.items[i]->ts < 1020);
    store_page_free(&p);
    ft.label = "cat";
    CHECK_EQ_INT(store_list(s, &ft, &p), ER_OK);
    CHECK_EQ_INT(p.n, 5);
    store_page_free(&p);

    /* Source filter. */
    store_filter fs = {.source = "cam3", .limit = 100};
    CHECK_EQ_INT(store_list(s, &fs, &p), ER_OK);
    CHECK_EQ_INT(p.n, 6);
    store_page_free(&p);
    fs.source = "none";
    CHECK_EQ_INT(store_list(s, &fs, &p), ER_OK);
    CHECK_EQ_INT(p.n, 0);
    store_page_free(&p);

    store_filter bad = {.limit = 0};
    CHECK_EQ_INT(store_list(s, &bad, &p), ER_INVALID);
    bad.limit = 1001;
    CHECK_EQ_INT(store_list(s, &bad, &p), ER_INVALID);
    store_destroy(s);
}

/* The label query walks the covering (label, seq, ...) index and reaches each inference by
 * its primary key: no scan, no sort. */
static int plan_ok(const char *plan)
{
    return plan && strstr(plan, "USING COVERING INDEX label_score_label") &&
           strstr(plan, "USING INTEGER PRIMARY KEY") && !strstr(plan, "SCAN") &&
           !strstr(plan, "TEMP B-TREE");
}

static void test_query_plan(void)
{
    char path[512];
    db_path(path, sizeof path);
    store *s = open_store(path, NULL);
    for (int i = 0; i < 50; i++)
        put_ok(s, make_inf(i, "http", i % 3 ? "a" : "b", 0.5));
    char *plan = NULL;
    CHECK_EQ_INT(store_explain_list(s, true, &plan), ER_OK);
    CHECK(plan_ok(plan));
    if (!plan_ok(plan)) fprintf(stderr, "label plan:\n%s", plan ? plan : "(null)");
    free(plan);
    CHECK_EQ_INT(store_explain_list(s, false, &plan), ER_OK);
    CHECK(plan && !strstr(plan, "TEMP B-TREE"));
    free(plan);
    store_destroy(s);
}

/* ---- stats, foreach ---- */

static void test_stats(void)
{
    char path[512];
    db_path(path, sizeof path);
    store *s = open_store(path, NULL);
    /* bucket 1000 ms: [0,1000) cat 0.2, 0.4 and dog 0.9; [1000,2000) cat 0.6; 2500 outside. */
    put_ok(s, make_inf(100, "http", "cat", 0.2));
    put_ok(s, make_inf(999, "http", "cat", 0.4));
    put_ok(s, make_inf(500, "http", "dog", 0.9));
    put_ok(s, make_inf(1000, "http", "cat", 0.6));
    put_ok(s, make_inf(2500, "http", "cat", 0.6));
    store_stats_row *rows = NULL;
    size_t n = 0;
    store_stats_sum sum;
    store_stats_query q = {.since_ms = 0, .until_ms = 2000, .bucket_ms = 1000};
    CHECK_EQ_INT(store_stats(s, &q, &rows, &n, &sum), ER_OK);
    CHECK_EQ_INT(sum.inferences, 4);
    CHECK_EQ_INT(sum.no_top, 0);
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK_EQ_STR(rows[0].label, "cat");
        CHECK_EQ_INT(rows[0].bucket_ms, 0);
        CHECK_EQ_INT(rows[0].count, 2);
        CHECK(rows[0].mean_score > 0.2999 && rows[0].mean_score < 0.3001);
        CHECK_EQ_INT(rows[0].top, 2); /* single-label rows: each label is its row's top class */
        CHECK(rows[0].top_mean > 0.2999 && rows[0].top_mean < 0.3001);
        /* ordered by label, then bucket: one label's points together */
        CHECK_EQ_STR(rows[1].label, "cat");
        CHECK_EQ_INT(rows[1].bucket_ms, 1000);
        CHECK_EQ_INT(rows[1].count, 1);
        CHECK_EQ_STR(rows[2].label, "dog");
        CHECK_EQ_INT(rows[2].bucket_ms, 0);
        CHECK_EQ_INT(rows[2].count, 1);
    }
    store_stats_free(rows, n);
    q.bucket_ms = 0;
    CHECK_EQ_INT(store_stats(s, &q, &rows, &n, &sum), ER_INVALID);
    store_destroy(s);
}

/* Counts by top class next to occurrences; an inference without labels has no top class; the
 * live stream's filter (source, label among the row's, min top score). */
static void test_stats_top(void)
{
    char path[512];
    db_path(path, sizeof path);
    store *s = open_store(path, NULL);
    inference *a = make_inf(100, "imu", "wave", 0.9); /* wave top, idle occurs */
    inference_add_label(a, "idle", 0.05);
    put_ok(s, a);
    inference *b = make_inf(200, "imu", "snake", 0.7);
    inference_add_label(b, "idle", 0.1);
    put_ok(s, b);
    inference *c = inference_create(); /* anomaly-only: no labels, no top class */
    util_uuid4(c->guid);
    c->ts = 300;
    inference_set_str(&c->device, "dev_0242ac110002");
    inference_set_str(&c->source, "cam");
    c->kind = INFERENCE_ANOMALY;
    c->has_anomaly = 1;
    c->anomaly = 3.21;
    inference_set_str(&c->result_json, "{\"anomaly\":3.21}");
    put_ok(s, c);
    store_stats_row *rows = NULL;
    size_t n = 0;
    store_stats_sum sum;
    store_stats_query q = {.since_ms = 0, .until_ms = 1000, .bucket_ms = 1000};
    CHECK_EQ_INT(store_stats(s, &q, &rows, &n, &sum), ER_OK);
    CHECK_EQ_INT(sum.inferences, 3);
    CHECK_EQ_INT(sum.no_top, 1);
    CHECK_EQ_INT(n, 3); /* idle, snake, wave */
    if (n == 3) {
        CHECK_EQ_STR(rows[0].label, "idle");
        CHECK_EQ_INT(rows[0].count, 2);
        CHECK_EQ_INT(rows[0].top, 0);
        CHECK_EQ_STR(rows[2].label, "wave");
        CHECK_EQ_INT(rows[2].top, 1);
        CHECK(rows[2].top_mean > 0.8999 && rows[2].top_mean < 0.9001);
    }
    store_stats_free(rows, n);
    q.source = "cam";
    CHECK_EQ_INT(store_stats(s, &q, &rows, &n, &sum), ER_OK);
    CHECK(n == 0 && sum.inferences == 1 && sum.no_top == 1);
    store_stats_free(rows, n);
    q.source = NULL;
    q.label = "snake";
    CHECK_EQ_INT(store_stats(s, &q, &rows, &n, &sum), ER_OK);
    CHECK(n == 2 && sum.inferences == 1 && sum.no_top == 0); /* idle and snake of b */
    store_stats_free(rows, n);
    q.label = NULL;
    q.min_score = 0.8;
    CHECK_EQ_INT(store_stats(s, &q, &rows, &n, &sum), ER_OK);
    CHECK(sum.inferences == 1 && n == 2); /* a only: idle and wave */
    store_stats_free(rows, n);
    store_destroy(s);
}

typedef struct walk {
    int64_t last_seq;
    int n, ordered, images_ok, stop_at;
} walk;

static er_rc walk_one(void *arg, const inference *inf)
{
    walk *w = arg;
    w->ordered &= inf->seq > w->last_seq;
    w->last_seq = inf->seq;
    if (inf->ts % 3 == 0)
        w->images_ok &= inf->image.data && inf->image.len == 100 && inf->image.data[99] == 0xab;
    else
        w->images_ok &= inf->image.data == NULL;
    w->n++;
    return w->stop_at && w->n == w->stop_at ? ER_CLOSED : ER_OK;
}

static void test_foreach(void)
{
    char path[512];
    db_path(path, sizeof path);
    store *s = open_store(path, NULL);
    for (int i = 0; i < 100; i++) {
        inference *inf = make_inf(i, "http", "a", 0.5);
        if (i % 3 == 0) {
            inf->image.data = malloc(100);
            memset(inf->image.data, 0xab, 100);
            inf->image.len = 100;
            snprintf(inf->image.mime, sizeof inf->image.mime, "image/jpeg");
        }
        put_ok(s, inf);
    }
    walk w = {.ordered = 1, .images_ok = 1};
    CHECK_EQ_INT(store_foreach(s, walk_one, &w), ER_OK);
    CHECK_EQ_INT(w.n, 100);
    CHECK(w.ordered);
    CHECK(w.images_ok);
    walk w2 = {.ordered = 1, .images_ok = 1, .stop_at = 40};
    CHECK_EQ_INT(store_foreach(s, walk_one, &w2), ER_CLOSED);
    CHECK_EQ_INT(w2.n, 40);
    store_destroy(s);
}

/* ---- pages bounded by bytes ---- */

/* Walks every row with store_list (newest first) or store_list_after (oldest first), pages of
 * up to 100 rows; counts the rows and the pages, and the most rows one page held. */
static void walk_pages(store *s, bool after, size_t *rows, int *pages, size_t *most)
{
    int64_t cursor = 0;
    *rows = 0;
    *pages = 0;
    *most = 0;
    for (int guard = 0; guard < 100; guard++) {
        store_page p;
        store_filter f = {.limit = 100, .before_seq = cursor};
        CHECK_EQ_INT(after ? store_list_after(s, cursor, 100, 0, &p) : store_list(s, &f, &p),
                     ER_OK);
        *rows += p.n;
        (*pages)++;
        if (p.n > *most) *most = p.n;
        int64_t next = p.next_seq;
        store_page_free(&p);
        if (!next) break;
        cursor = next;
    }
}

/* Rows of ~20 KB (a big info) under page_max_bytes 64 KiB: every read holds at most 4 of them,
 * ends early with its cursor, and the pages together give every row once. Images are read (and
 * counted) only where their bytes are: store_foreach's pages. */
static void test_page_bytes(void)
{
    char path[512];
    db_path(path, sizeof path);
    store_opts o = {.page_max_bytes = 64 * 1024};
    store *s = open_store(path, &o);
    char *info = malloc(20002);
    info[0] = '"';
    memset(info + 1, 'x', 19999);
    info[20000] = '"';
    info[20001] = 0;
    for (int i = 0; i < 10; i++) {
        inference *inf = make_inf(1000 + i, "http", "a", 0.5);
        inf->info_json = strdup(info);
        put_ok(s, inf);
    }
    free(info);
    size_t rows, most;
    int pages;
    walk_pages(s, false, &rows, &pages, &most);
    CHECK_EQ_INT(rows, 10);
    CHECK_EQ_INT(most, 4);
    CHECK_EQ_INT(pages, 3);
    walk_pages(s, true, &rows, &pages, &most);
    CHECK_EQ_INT(rows, 10);
    CHECK_EQ_INT(most, 4);
    walk w = {.ordered = 1, .images_ok = 1};
    CHECK_EQ_INT(store_foreach(s, walk_one, &w), ER_OK);
    CHECK_EQ_INT(w.n, 10);
    CHECK(w.ordered);
    /* stats past the bound: ER_TOOBIG, not a growing array (10 rows x 10 labels per bucket) */
    store_stats_row *st = NULL;
    size_t n = 0;
    store_stats_sum sum;
    store_stats_query q = {.since_ms = 0, .until_ms = 2000, .bucket_ms = 1000};
    CHECK_EQ_INT(store_stats(s, &q, &st, &n, &sum), ER_OK);
    store_stats_free(st, n);
    for (int i = 0; i < 300; i++) {
        char label[16];
        snprintf(label, sizeof label, "l%d", i);
        put_ok(s, make_inf(i, "http", label, 0.5));
    }
    q = (store_stats_query){.since_ms = 0, .until_ms = 300, .bucket_ms = 1};
    CHECK_EQ_INT(store_stats(s, &q, &st, &n, &sum), ER_TOOBIG);
    CHECK(st == NULL && n == 0);
    store_destroy(s);
}

/* 10,000 labels read back: the array grows by doubling (its capacity at most twice the
 * labels), not one realloc (and, under a sanitizer, one copy) per label. */
static void test_many_labels(void)
{
    char path[512];
    db_path(path, sizeof path);
    store *s = open_store(path, NULL);
    inference *inf = make_inf(1, "http", "l0", 0.5);
    char guid[UTIL_UUID_LEN + 1];
    snprintf(guid, sizeof guid, "%s", inf->guid);
    for (int i = 1; i < 10000; i++) {
        char label[16];
        snprintf(label, sizeof label, "l%d", i);
        CHECK_EQ_INT(inference_add_label(inf, label, 0.25), ER_OK);
    }
    put_ok(s, inf);
    inference *got = NULL;
    CHECK_EQ_INT(store_get(s, guid, &got), ER_OK);
    if (got) {
        CHECK_EQ_INT(got->n_labels, 10000);
        CHECK(got->labels_cap >= 10000 && got->labels_cap <= 20000);
        /* and adding to what was read still finds each label once */
        CHECK_EQ_INT(inference_add_label(got, "l9999", 0.75), ER_OK);
        CHECK_EQ_INT(got->n_labels, 10000);
    }
    inference_destroy(got);
    store_destroy(s);
}

int main(void)
{
    if (!store_fixture_begin("/tmp/ei-store-read-XXXXXX")) return 1;
    test_list();
    test_query_plan();
    test_stats();
    test_stats_top();
    test_foreach();
    test_page_bytes();
    test_many_labels();
    return store_fixture_end();
}
