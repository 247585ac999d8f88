/* store_fill.c - fills a database with N inferences through the store API (store_put_async
 * with large group commits), so the scaling benchmark (scale.sh) can start the relay on a cache
 * of 100,000 or 1,000,000 rows without schema-specific SQL: whatever the store's schema is, the
 * rows are the ones the relay itself would write for the benchmark's 290 B document.
 *
 * The documents vary the way a model's output does: the top label of the 5 rotates (so a label
 * filter matches a fifth of the rows with a high score), scores differ per row, and the
 * timestamps are one per millisecond, oldest first, ending now; the ids are the relay's own
 * (EI_FILL_IDS=v7: time-ordered ones instead, about 15 % less CPU than random uuid v4 ids).
 * With IMAGE the file's bytes are stored with every row (mime from its first bytes, width and
 * height as given). With OUTBOX every row is queued for forwarding (as with mqtt_endpoint set).
 * synchronous=NORMAL (no fsync per commit: the fill need not be durable), batches of 4096.
 *
 * Build (after a Release build of the eirelay_core target in BUILD):
 *   cc -O2 -I server tests/bench/store_fill.c BUILD/libeirelay_core.a \
 *      $(pkg-config --cflags --libs libmicrohttpd sqlite3 libcjson vips) -lpthread -lm
 * Usage: store_fill DB ROWS [outbox=0|1] [IMAGE_FILE WIDTH HEIGHT]
 * Prints "store_fill: ROWS rows in MS ms (R rows/s), C commits, F failed, N rows in the cache";
 * exit status 1 when a put failed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "ingest/normalize.h"
#include "store/store.h"

#define FILL_BATCH 4096

static const char *const g_labels[5] = {"idle", "wave", "snake", "updown", "other"};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static long long g_done, g_failed;

static void on_done(void *arg, const store_put_result *res)
{
    (void)arg;
    pthread_mutex_lock(&g_mu);
    g_done++;
    if (res->rc != ER_OK) g_failed++;
    pthread_cond_signal(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

/* The benchmark's document (tests/bench/result.json's shape) with row i's scores. */
static int make_doc(long long i, char *buf, size_t cap)
{
    int top = (int)(i % 5);
    double hi = 0.55 + (double)(i % 40) / 100.0; /* 0.55 .. 0.94 */
    double rest = (1.0 - hi) / 4.0;
    double s[5];
    for (int k = 0; k < 5; k++)
        s[k] = k == top ? hi : rest;
    return snprintf(buf, cap,
                    "{\"result\":{\"classification\":{\"%s\":%.4f,\"%s\":%.4f,\"%s\":%.4f,"
                    "\"%s\":%.4f,\"%s\":%.4f}},\"timing\":{\"dsp\":2,\"classification\":9,"
                    "\"anomaly\":0},\"info\":\"bench\",\"model\":{\"width\":96,\"height\":96}}",
                    g_labels[0], s[0], g_labels[1], s[1], g_labels[2], s[2], g_labels[3], s[3],
                    g_labels[4], s[4]);
}

/* A UUIDv7-layout id (48-bit ms timestamp, then pseudo-random bits): time-ordered like the
 * ids of a client that sends them, so the id index is appended to. Unique because ts is (one
 * ms per row). Only with EI_FILL_IDS=v7: by default the ids are the relay's own (whatever
 * normalize makes when a client sends none), so the cache is the one the relay would have. */
static void time_ordered_id(int64_t ts, uint64_t *rng, char *out)
{
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    uint64_t r = *rng;
    snprintf(out, UTIL_UUID_LEN + 1, "%08llx-%04llx-7%03llx-%04llx-%012llx",
             (unsigned long long)((uint64_t)ts >> 16) & 0xffffffffULL,
             (unsigned long long)ts & 0xffffULL, (unsigned long long)(r & 0xfff),
             (unsigned long long)(0x8000 | ((r >> 12) & 0x3fff)),
             (unsigned long long)((r >> 26) & 0xffffffffffffULL));
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n > 0 && fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)n)) &&
            fread(data, 1, (size_t)n, f) == (size_t)n)
            *len = (size_t)n;
        else {
            free(data);
            data = NULL;
        }
    }
    fclose(f);
    return data;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc == 5 || argc == 6 || argc > 7) {
        fprintf(stderr, "usage: %s DB ROWS [outbox=0|1] [IMAGE_FILE WIDTH HEIGHT]\n", argv[0]);
        return 2;
    }
    long long rows = atoll(argv[2]);
    if (rows < 0 || rows > 100000000) return 2;
    uint8_t *img = NULL;
    size_t img_len = 0;
    int img_w = 0, img_h = 0;
    if (argc == 7) {
        img = read_all(argv[4], &img_len);
        img_w = atoi(argv[5]);
        img_h = atoi(argv[6]);
        if (!img) {
            fprintf(stderr, "store_fill: cannot read %s\n", argv[4]);
            return 1;
        }
    }
    const char *mime = img && img_len > 3 && img[0] == 0x89 ? "image/png" : "image/jpeg";
    store_opts o = {.path = argv[1],
                    .sync_full = false,
                    .outbox = argc > 3 && atoi(argv[3]),
                    .batch_max = FILL_BATCH};
    er_err err;
    store *st = NULL;
    if (store_create(&o, &st, &err)) {
        fprintf(stderr, "store_fill: %s\n", err.msg);
        free(img);
        return 1;
    }
    /* one millisecond per row, oldest first, the newest at the start of the fill */
    int64_t t_start = util_now_ms() - rows;
    int64_t t0 = util_mono_ms();
    char doc[512];
    bool v7 = getenv("EI_FILL_IDS") && strcmp(getenv("EI_FILL_IDS"), "v7") == 0;
    uint64_t rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)t_start;
    for (long long i = 0; i < rows; i++) {
        normalize_opts no = {.device = "bench", .source = "bench", .now_ms = t_start + i};
        inference *inf = NULL;
        int n = make_doc(i, doc, sizeof doc);
        if (normalize_json(doc, (size_t)n, &no, &inf, &err)) {
            fprintf(stderr, "store_fill: %s\n", err.msg);
            return 1;
        }
        if (v7) time_ordered_id(inf->ts, &rng, inf->guid);
        if (img) {
            inf->image.data = malloc(img_len);
            if (!inf->image.data) return 1;
            memcpy(inf->image.data, img, img_len);
            inf->image.len = img_len;
            snprintf(inf->image.mime, sizeof inf->image.mime, "%s", mime);
            inf->image.width = img_w;
            inf->image.height = img_h;
        }
        /* waits for room when the queue is full: that is the pacing */
        if (store_put_async(st, inf, on_done, NULL)) {
            fprintf(stderr, "store_fill: put refused\n");
            return 1;
        }
    }
    pthread_mutex_lock(&g_mu);
    while (g_done < rows)
        pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
    int64_t ms = util_mono_ms() - t0;
    store_info info;
    store_get_info(st, &info);
    store_destroy(st); /* checkpoints: the bytes below are the database after it */
    free(img);
    printf("store_fill: %lld rows in %lld ms (%.0f rows/s), %lld commits, %lld failed, "
           "%lld rows in the cache\n",
           rows, (long long)ms, ms ? (double)rows * 1000.0 / (double)ms : 0.0,
           (long long)info.commits, g_failed, (long long)info.rows);
    return g_failed ? 1 : 0;
}
