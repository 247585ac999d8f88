/* serial_parse.c - throughput of the serial firmware-output parser (server/sources/serial_parse)
 * with no I/O: each fixture, and all of them concatenated, is repeated into one buffer of about
 * the requested size, then fed to a fresh parser whole (one call) and in random chunks of
 * 1..64 bytes (as a slow tty delivers them). Prints one table row per input and feeding mode
 * with MB/s and inferences/s (best and median of the runs), and checks that both modes give
 * the expected number of inferences. Built and run by tests/bench/serial.sh.
 *
 * Usage: serial_parse [-m MB] [-r RUNS] [-s SEED] FIXTURE...
 * Exit status: 0 when every run gave the expected inferences, 1 otherwise, 2 on bad usage. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sources/serial_parse.h"

#define BENCH_RUNS_MAX 50
#define BENCH_CHUNK_MAX 64

typedef struct bench_input {
    const char *name;
    uint8_t *data; /* one copy of the text */
    size_t len;
} bench_input;

/* The parser calls this per inference; the benchmark only counts and frees. */
static void count_emit(void *arg, inference *inf)
{
    (*(uint64_t *)arg)++;
    inference_destroy(inf);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* xorshift64*: the chunk sizes only need to be cheap and repeatable, not good. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    errno = 0; /* so the message below tells a read error from an empty file */
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f) goto fail;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) goto fail;
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (ferror(f) || n == 0) goto fail;
    fclose(f);
    *out = buf;
    *len = n;
    return 0;
fail:
    fprintf(stderr, "serial_parse: cannot read %s%s%s\n", path, errno ? ": " : " (empty)",
            errno ? strerror(errno) : "");
    if (f) fclose(f);
    free(buf);
    return -1;
}

/* Feeds buf to a fresh parser, whole (seed 0) or in random 1..BENCH_CHUNK_MAX chunks, ends
 * the stream, and returns the inferences emitted (or -1). *secs gets the wall time of the
 * feeding, parser creation and finish included. */
static int64_t parse_once(const uint8_t *buf, size_t len, uint64_t seed, double *secs)
{
    /* the relay's own clock (NULL): reading it per block is part of the real cost */
    static const serial_parser_opts opts = {.device = "bench", .source = "bench"};
    serial_parser *p = NULL;
    er_err err;
    uint64_t count = 0;
    int64_t rc = -1;
    double t0 = now_s();
    if (serial_parser_create(&opts, &p, &err) != ER_OK) goto fail;
    if (seed == 0) {
        if (serial_parser_feed(p, buf, len, count_emit, &count) != ER_OK) goto fail;
    } else {
        uint64_t s = seed;
        for (size_t off = 0; off < len;) {
            size_t k = 1 + (size_t)(rng_next(&s) % BENCH_CHUNK_MAX);
            if (k > len - off) k = len - off;
            if (serial_parser_feed(p, buf + off, k, count_emit, &count) != ER_OK) goto fail;
            off += k;
        }
    }
    if (serial_parser_finish(p, count_emit, &count) != ER_OK) goto fail;
    *secs = now_s() - t0;
    rc = (int64_t)count;
fail:
    if (rc < 0) fprintf(stderr, "serial_parse: the parser failed\n");
    serial_parser_destroy(p);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Measures one input in both modes; prints two rows. Returns 0 when the counts were right. */
static int bench_input_run(const bench_input *in, size_t target, int runs, uint64_t seed)
{
    int status = 0;
    double secs;
    /* What one copy gives on its own: the expected count per copy. Copies are joined with a
     * newline so the last line of one copy never runs into the first of the next. */
    uint8_t *one = malloc(in->len + 1);
    uint8_t *buf = NULL;
    if (!one) goto fail;
    memcpy(one, in->data, in->len);
    one[in->len] = '\n';
    int64_t per_copy = parse_once(one, in->len + 1, 0, &secs);
    if (per_copy <= 0) {
        fprintf(stderr, "serial_parse: %s gives no inference\n", in->name);
        goto fail;
    }
    size_t copies = target / (in->len + 1);
    if (copies == 0) copies = 1;
    size_t len = copies * (in->len + 1);
    buf = malloc(len);
    if (!buf) goto fail;
    for (size_t i = 0; i < copies; i++)
        memcpy(buf + i * (in->len + 1), one, in->len + 1);
    int64_t want = per_copy * (int64_t)copies;

    for (int mode = 0; mode < 2; mode++) {
        double t[BENCH_RUNS_MAX];
        int64_t got = 0;
        for (int r = 0; r < runs; r++) {
            got = parse_once(buf, len, mode == 0 ? 0 : seed + (uint64_t)r, &t[r]);
            if (got != want) {
                fprintf(stderr, "serial_parse: %s %s run %d: %lld inferences, expected %lld\n",
                        in->name, mode == 0 ? "whole" : "chunked", r, (long long)got,
                        (long long)want);
                status = 1;
            }
        }
        qsort(t, (size_t)runs, sizeof t[0], cmp_double);
        double best = t[0], median = t[runs / 2], mb = (double)len / 1e6;
        printf("| %s | %s | %.1f MB, %lld inferences | %.1f MB/s (median %.1f) | %.0f/s | "
               "%.0f ns |\n",
               in->name, mode == 0 ? "whole" : "random 1..64 B chunks", mb, (long long)want,
               mb / best, mb / median, (double)want / best, best * 1e9 / (double)want);
    }
    free(buf);
    free(one);
    return status;
fail:
    free(buf);
    free(one);
    return 1;
}

int main(int argc, char **argv)
{
    long mb = 64, runs = 3;
    unsigned long long seed = 1;
    int opt, status = 0;
    while ((opt = getopt(argc, argv, "m:r:s:")) != -1) {
        char *end = NULL;
        if (opt == 'm')
            mb = strtol(optarg, &end, 10);
        else if (opt == 'r')
            runs = strtol(optarg, &end, 10);
        else if (opt == 's')
            seed = strtoull(optarg, &end, 10);
        if (opt == '?' || !end || *end || mb < 1 || mb > 4096 || runs < 1 ||
            runs > BENCH_RUNS_MAX || seed == 0) {
            fprintf(stderr,
                    "usage: serial_parse [-m MB 1..4096] [-r RUNS 1..%d] [-s SEED > 0] "
                    "FIXTURE...\n",
                    BENCH_RUNS_MAX);
            return 2;
        }
    }
    int n = argc - optind;
    if (n < 1) {
        fprintf(stderr, "serial_parse: give at least one fixture file\n");
        return 2;
    }
    /* the inputs: each file, then (with more than one) all of them in one stream */
    bench_input *in = calloc((size_t)n + 1, sizeof *in);
    int n_in = 0;
    if (!in) goto fail;
    size_t all_len = 0;
    for (int i = 0; i < n; i++) {
        const char *path = argv[optind + i], *slash = strrchr(path, '/');
        in[i].name = slash ? slash + 1 : path;
        if (read_file(path, &in[i].data, &in[i].len) != 0) goto fail;
        n_in++;
        all_len += in[i].len + 1;
    }
    if (n > 1) {
        bench_input *all = &in[n];
        all->name = "all of them, concatenated";
        all->data = malloc(all_len);
        if (!all->data) goto fail;
        n_in++;
        for (int i = 0; i < n; i++) {
            memcpy(all->data + all->len, in[i].data, in[i].len);
            all->len += in[i].len;
            all->data[all->len++] = '\n';
        }
    }
    printf("serial parser, %ld MB per input, best of %ld runs, chunk seed %llu\n\n", mb, runs,
           seed);
    printf("| input | fed | size | throughput | inferences/s | per inference |\n");
    printf("|---|---|---|---|---|---|\n");
    fflush(stdout);
    for (int i = 0; i < n_in; i++) {
        status |= bench_input_run(&in[i], (size_t)mb * 1000 * 1000, (int)runs, seed);
        fflush(stdout);
    }
    for (int i = 0; i < n_in; i++)
        free(in[i].data);
    free(in);
    return status;
fail:
    for (int i = 0; in && i < n_in; i++)
        free(in[i].data);
    free(in);
    return 1;
}
