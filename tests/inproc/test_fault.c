/* test_fault.c - fault injection in SQLite's own discipline (support/fault.h): for each kind of
 * fault (an allocation, a SQLite file call, a write to the disk; and a disk that stays full from
 * its N-th write on) and N = 1, 2, ... one run fails the N-th event of that kind, until a run
 * completes without reaching N.
 *
 * A run, on a fresh database with forwarding on, under the fault: ingest (ingest_parse of a JSON
 * body, one with a base64 JPEG, then store_put) x3, forward (store_outbox_fetch, payload_inference
 * of each row, store_outbox_ack), one more put, a failed publish (store_outbox_fail), a delete,
 * retention (cache_max_rows 2: it deletes the published rows), then, with the fault paused, one
 * put that must succeed (a transient fault, or a full disk once there is room again, leaves the
 * store working), then store_destroy (under the fault again: the checkpoint at close and the
 * clean-stop mark).
 *
 * Every call must end in success or a clean error (ER_NOMEM, ER_DB, ER_FULL, ER_IO, ER_BUSY;
 * ER_NOTFOUND where the row is legitimately gone), without a crash; the sanitizer build's LSan
 * proves no leak at exit. After each run the file is checked without faults: integrity_check and
 * foreign_key_check clean, the counters row equal to the tables, every inference whole (its two
 * labels, its image when it has one, its outbox row exactly when its state says pending or
 * dead), every put answered ER_OK present (unless acked and then free for retention, or
 * deleted), and the product opens it again without recovering anything.
 *
 * N goes as far as the run needs (a run without fault counts its events and the loop stops at
 * the first N past them); EI_FAULT_MAX caps it (default 20000, never reached). EI_FAULT_ONLY=alloc
 * (io, write, full) runs one kind, EI_FAULT_SHARD=i/k only the N with N % k == i: CTest runs each
 * kind as its own test (inproc.test_fault.<kind>; alloc, two thirds of the runs, as two shards),
 * so they spread over the cores; EI_FAULT_VERBOSE=1 keeps the product's log lines. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "raw_db.h"
#include "store_fixture.h"

#include "core/log.h"
#include "fault.h"
#include "forward/payload.h"
#include "ingest/ingest.h"
#include "media/image.h"
#include "media/synth.h"

#define PUTS 4     /* inferences ingested under the fault; index PUTS is the one after it */
#define IMAGE_AT 1 /* the body with an image */
#define DELETED_AT 2
/* every body has this result (two labels) and timing, as stored */
#define RESULT "{\"classification\":{\"cat\":0.75,\"dog\":0.25}}"
#define TIMING "{\"dsp\":1,\"classification\":2}"

static char *g_body[PUTS + 1];
static char g_guid[PUTS + 1][UTIL_UUID_LEN + 1];

typedef struct run {
    fault_kind kind;
    long n;
    char path[512];
    er_rc put_rc[PUTS + 1];
    int64_t seq[PUTS + 1];
    bool may_go[PUTS + 1]; /* acked (then retention may delete it) or deleted */
    bool hit;
    long events;
} run;

/* One call's result: success or a clean error; also_ok is one more code the caller allows. */
static void note(const run *r, const char *what, er_rc rc, er_rc also_ok)
{
    static const er_rc clean[] = {ER_OK, ER_NOMEM, ER_DB, ER_FULL, ER_IO, ER_BUSY};
    for (size_t i = 0; i < sizeof clean / sizeof clean[0]; i++)
        if (rc == clean[i]) return;
    if (rc == also_ok && rc != ER_OK) return;
    check_failed++;
    fprintf(stderr, "%s N=%ld: %s answered %s\n", fault_kind_name(r->kind), r->n, what,
            er_rc_name(rc));
}

static void put_one(run *r, store *s, int i)
{
    normalize_opts no = {.device = "dev_0242ac110002",
                         .source = "http",
                         .max_image_bytes = 1 << 20,
                         .now_ms = 1736016142920};
    inference *inf = NULL;
    er_err err = {{0}};
    store_put_result res = {0};
    er_rc rc = ingest_parse("application/json", (const uint8_t *)g_body[i], strlen(g_body[i]), &no,
                            &inf, &err);
    if (rc == ER_OK) rc = store_put(s, inf, &res);
    r->put_rc[i] = rc;
    if (rc == ER_OK) {
        r->seq[i] = res.seq;
        CHECK(!res.duplicate);
    }
    note(r, "put", rc, ER_OK);
}

/* The forwarder's part: fetch the outbox, render each row's message, ack the rendered ones. */
static void forward(run *r, store *s)
{
    store_page page = {0};
    util_buf buf = {0};
    int64_t seqs[PUTS];
    size_t n = 0;
    payload_opts po = {.include_image = true};
    er_rc rc = store_outbox_fetch(s, 0, 10, &page);
    note(r, "outbox fetch", rc, ER_OK);
    for (size_t i = 0; rc == ER_OK && i < page.n && n < PUTS; i++) {
        er_rc prc = payload_inference(page.items[i], &po, &buf, NULL);
        note(r, "payload", prc, ER_OK);
        if (prc == ER_OK) seqs[n++] = page.items[i]->seq;
    }
    util_buf_free(&buf);
    store_page_free(&page);
    if (n == 0) return;
    rc = store_outbox_ack(s, seqs, n);
    note(r, "outbox ack", rc, ER_OK);
    for (size_t k = 0; rc == ER_OK && k < n; k++)
        for (int i = 0; i < PUTS; i++)
            if (r->put_rc[i] == ER_OK && r->seq[i] == seqs[k]) r->may_go[i] = true;
}

/* The database after the run, without faults. */
static void verify(run *r)
{
    /* an inference without all its labels (cat and dog, packed: length, name, score) or
     * their postings, without its image, or whose publish state and
     * outbox row disagree (1 pending <-> state 0, 6 dead <-> state 1, else no row) */
    static const char half_sql[] =
        "SELECT count(*) FROM inference i LEFT JOIN outbox o ON o.seq = i.seq"
        " WHERE length(i.labels) IS NOT 2 * (1 + 3 + 8)"
        " OR (SELECT count(*) FROM label_post p WHERE i.seq BETWEEN p.seq0 AND p.seq1) < 2"
        " OR i.result IS NOT '" RESULT "' OR i.timing IS NOT '" TIMING "'"
        " OR i.info IS NOT '\"fault run\"'"
        " OR i.has_image != EXISTS (SELECT 1 FROM image m WHERE m.seq = i.seq)"
        " OR (i.publish = 1) != (o.state IS 0) OR (i.publish = 6) != (o.state IS 1)";
    int failed = check_failed;
    raw_check_counters(r->path); /* the counters row agrees with the tables it counts */
    sqlite3 *db = raw_open(r->path);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM pragma_integrity_check"
                             " WHERE integrity_check != 'ok'"),
                 0);
    CHECK_EQ_INT(raw_int(db, half_sql), 0);
    for (int i = 0; i <= PUTS; i++) {
        if (r->put_rc[i] != ER_OK || r->may_go[i]) continue;
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM inference WHERE guid = '%s'", g_guid[i]);
        CHECK_EQ_INT(raw_int(db, sql), 1);
    }
    CHECK(sqlite3_close(db) == SQLITE_OK);
    /* the service opens it as it is: nothing to move aside */
    store_opts o = {.outbox = true, .readers = 1};
    store *s = open_store(r->path, &o);
    if (s) {
        store_health h;
        store_health_get(s, &h);
        CHECK_EQ_INT(h.recovered_ms, 0);
        store_destroy(s);
    }
    if (check_failed != failed)
        fprintf(stderr, "  in the run failing %s N=%ld (%ld events)\n", fault_kind_name(r->kind),
                r->n, r->events);
}

static char g_template[300],
    g_template_mark[310]; /* a migrated database, stopped cleanly: each run starts from it */
static int g_runs;

/* Copies the file from to to; false (a failed CHECK) if it cannot. */
static bool copy_file(const char *from, const char *to)
{
    util_buf b = {0};
    bool ok = util_read_file(from, 64 << 20, "template", &b, NULL) == ER_OK;
    FILE *f = ok ? fopen(to, "wb") : NULL;
    ok = f && fwrite(b.data, 1, b.len, f) == b.len;
    if (f && fclose(f) != 0) ok = false;
    util_buf_free(&b);
    CHECK(ok);
    return ok;
}

static void run_once(run *r)
{
    store_opts o = {.outbox = true, .max_rows = 2, .readers = 1, .batch_max = 8};
    char dir[300], mark[600];
    snprintf(dir, sizeof dir, "%s/run%d", g_dir, ++g_runs);
    snprintf(r->path, sizeof r->path, "%s/cache.db", dir);
    snprintf(mark, sizeof mark, "%s.clean", r->path);
    /* the template and its clean-stop mark: no migration, no quick_check at this open */
    CHECK(mkdir(dir, 0700) == 0);
    if (!copy_file(g_template, r->path) || !copy_file(g_template_mark, mark)) return;
    store *s = open_store(r->path, &o);
    if (!s) return;
    /* the pass every start runs, done before the fault is armed (it runs on its own schedule) */
    CHECK_EQ_INT(store_retain(s), ER_OK);

    fault_arm(r->kind, r->n);
    for (int i = 0; i < 3; i++)
        put_one(r, s, i);
    forward(r, s);
    put_one(r, s, 3);
    if (r->put_rc[3] == ER_OK) {
        bool dead = false;
        /* ER_NOTFOUND: none, the row is pending (not acked: the ack came before the put) */
        note(r, "outbox fail", store_outbox_fail(s, r->seq[3], false, "timeout", &dead), ER_OK);
    }
    er_rc rc = store_delete(s, g_guid[DELETED_AT]);
    r->may_go[DELETED_AT] = true;
    note(r, "delete", rc, r->put_rc[DELETED_AT] == ER_OK ? ER_OK : ER_NOTFOUND);
    note(r, "retention", store_retain(s), ER_OK);

    /* a transient fault leaves the store working */
    fault_pause(true);
    put_one(r, s, PUTS);
    CHECK_EQ_INT(r->put_rc[PUTS], ER_OK);
    fault_pause(false);

    store_destroy(s);
    r->events = fault_disarm();
    r->hit = fault_hit();
    verify(r);
    raw_rm_tree(dir);
}

/* The bodies: the Edge Impulse result shape with a fixed id each, one with a JPEG. */
static bool make_bodies(void)
{
    uint8_t *jpeg = NULL;
    size_t jlen = 0;
    synth_rect rect = {4, 4, 12, 12, 200, 30, 30};
    if (synth_jpeg(32, 32, &rect, 1, 7, 80, &jpeg, &jlen) != ER_OK) return false;
    char *b64 = malloc(util_b64_encoded_len(jlen) + 1);
    if (!b64) return false;
    util_b64_encode(jpeg, jlen, b64);
    free(jpeg);
    for (int i = 0; i <= PUTS; i++) {
        util_buf b = {0};
        snprintf(g_guid[i], sizeof g_guid[i], "6f1c2d3e-4b5a-4c6d-8e7f-%012d", i + 1);
        util_buf_printf(&b,
                        "{\"id\":\"%s\",\"ts\":%d,\"result\":" RESULT ",\"timing\":" TIMING
                        ",\"info\":\"fault run\"",
                        g_guid[i], 1736016142 + i);
        if (i == IMAGE_AT) util_buf_printf(&b, ",\"image\":\"%s\"", b64);
        if (util_buf_printf(&b, "}") != ER_OK) {
            free(b64);
            return false;
        }
        g_body[i] = b.data;
    }
    free(b64);
    return true;
}

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : def;
}

int main(int argc, char **argv)
{
    /* before anything touches SQLite or cJSON */
    if (!fault_install()) return 1;
    if (!env_long("EI_FAULT_VERBOSE", 0)) log_set_level((log_level)(LOG_ERROR + 1)); /* none */
    long max_n = env_long("EI_FAULT_MAX", 20000);
    /* EI_FAULT_SHARD=i/k: only the N with N % k == i (CTest splits the longest kind so) */
    long shard = 0, shards = 1;
    const char *sh = getenv("EI_FAULT_SHARD");
    if (sh && *sh &&
        (sscanf(sh, "%ld/%ld", &shard, &shards) != 2 || shards < 1 || shard < 0 ||
         shard >= shards)) {
        fprintf(stderr, "EI_FAULT_SHARD=%s is not i/k with 0 <= i < k\n", sh);
        return 1;
    }
    CHECK_EQ_INT(media_init(argc > 0 ? argv[0] : "test"), ER_OK);
    CHECK(make_bodies());
    /* thousands of fresh databases with synchronous=FULL: on tmpfs where there is one (an fsync
     * there costs nothing), else in /tmp */
    struct stat st;
    bool shm = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0;
    if (!store_fixture_begin(shm ? "/dev/shm/ei-fault-XXXXXX" : "/tmp/ei-fault-XXXXXX")) return 1;

    /* the template: the schema, as the service leaves it after a clean stop */
    snprintf(g_template, sizeof g_template, "%s/template.db", g_dir);
    snprintf(g_template_mark, sizeof g_template_mark, "%s.clean", g_template);
    store *t = open_store(g_template, NULL);
    store_destroy(t);

    const char *only = getenv("EI_FAULT_ONLY");
    int kinds = 0;
    for (int k = 0; k < FAULT__N; k++) {
        if (only && *only && strcmp(only, fault_kind_name((fault_kind)k)) != 0) continue;
        kinds++;
        run base = {.kind = (fault_kind)k, .n = 0};
        run_once(&base);
        for (int i = 0; i <= PUTS; i++)
            CHECK_EQ_INT(base.put_rc[i], ER_OK);
        long n;
        bool done = false;
        for (n = 1; n <= max_n && !done; n++) {
            if (n % shards != shard) continue;
            run r = {.kind = (fault_kind)k, .n = n};
            run_once(&r);
            done = !r.hit;
        }
        printf("%s: %ld events in a run without fault; runs failing N = 1..%ld (N %% %ld == %ld), "
               "%s\n",
               fault_kind_name((fault_kind)k), base.events, n - 1, shards, shard,
               done ? "the last one reached no fault" : "stopped at EI_FAULT_MAX");
        fflush(stdout); /* before LeakSanitizer's report at exit */
        CHECK(done || max_n < base.events);
    }
    /* EI_FAULT_ONLY naming no kind would make this a test that cannot fail */
    if (kinds == 0) fprintf(stderr, "EI_FAULT_ONLY=%s names no fault kind\n", only);
    CHECK(kinds > 0);
    for (int i = 0; i <= PUTS; i++)
        free(g_body[i]);
    media_shutdown();
    return store_fixture_end();
}
