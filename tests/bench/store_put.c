/* store_put.c - the store alone, without HTTP: N threads each normalize and store_put the
 * benchmark's 290 B classification document, so the writer thread's own ceiling can be told
 * apart from the HTTP path's. Build and run (after a Release build in build-bench):
 *   cc -O2 -I server tests/bench/store_put.c build-bench/libeirelay_core.a \
 *      $(pkg-config --cflags --libs libmicrohttpd sqlite3 libcjson vips) -lpthread -lm -o
 * /tmp/store_put /tmp/store_put /tmp/sp/ei.db THREADS PUTS_PER_THREAD [sync_full=1|0]
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "ingest/normalize.h"
#include "store/store.h"

static store *g_store;
static int g_per_thread;
static const char g_doc[] =
    "{\"result\":{\"classification\":{\"idle\":0.02,\"wave\":0.9,\"snake\":0.03,\"updown\":0.03,"
    "\"other\":0.02}},\"timing\":{\"dsp\":2,\"classification\":9,\"anomaly\":0},\"info\":"
    "\"bench\",\"model\":{\"width\":96,\"height\":96}}";

/* CPU seconds (utime + stime) of this process's thread named name, summed; -1 if none. */
static double thread_cpu_s(const char *name)
{
    double total = -1;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[300], comm[64] = "", stat[1024];
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (!fgets(comm, sizeof comm, f)) comm[0] = '\0';
        fclose(f);
        comm[strcspn(comm, "\n")] = '\0';
        if (strcmp(comm, name) != 0) continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(stat, 1, sizeof stat - 1, f);
        fclose(f);
        stat[n] = '\0';
        const char *p = strrchr(stat, ')');
        unsigned long long ut = 0, st = 0;
        /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt ut st */
        if (p &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
            total = (total < 0 ? 0 : total) + (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    }
    if (d) closedir(d);
    return total;
}

/* Bytes this process wrote through write syscalls (wchar of /proc/self/io): the WAL frames and
 * the checkpoints' copies into the database file. */
static long long written_bytes(void)
{
    char line[128];
    long long v = -1;
    FILE *f = fopen("/proc/self/io", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "wchar: %lld", &v) == 1) break;
    if (f) fclose(f);
    return v;
}

static void *client(void *arg)
{
    for (int i = 0; i < g_per_thread; i++) {
        normalize_opts no = {.device = "bench", .source = "bench", .now_ms = util_now_ms()};
        inference *inf = NULL;
        er_err err;
        store_put_result res;
        if (normalize_json(g_doc, sizeof g_doc - 1, &no, &inf, &err) ||
            store_put(g_store, inf, &res) || res.rc) {
            fprintf(stderr, "put failed\n");
            exit(1);
        }
    }
    return arg;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s DB THREADS PUTS_PER_THREAD [sync_full]\n", argv[0]);
        return 2;
    }
    int threads = atoi(argv[2]);
    g_per_thread = atoi(argv[3]);
    if (threads < 1 || threads > 1024 || g_per_thread < 1) return 2;
    store_opts o = {.path = argv[1], .sync_full = argc > 4 ? atoi(argv[4]) != 0 : true};
    er_err err;
    if (store_create(&o, &g_store, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    double cpu0 = thread_cpu_s("eir-writer");
    long long w0 = written_bytes();
    int64_t t0 = util_mono_ms();
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, client, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    int64_t ms = util_mono_ms() - t0;
    double cpu = thread_cpu_s("eir-writer") - cpu0;
    long long wrote = written_bytes() - w0;
    store_info info;
    store_get_info(g_store, &info);
    long long n = (long long)threads * g_per_thread;
    printf("store_put: writer CPU %.1f us/put, %.0f bytes written/put (%.2f 4 KiB pages)\n",
           cpu * 1e6 / (double)n, (double)wrote / (double)n, (double)wrote / (double)n / 4096.0);
    printf(
        "store_put: %lld puts, %d threads, %lld ms, %.0f puts/s, %lld commits (avg batch %.1f)\n",
        n, threads, (long long)ms, ms ? n * 1000.0 / (double)ms : 0.0, (long long)info.commits,
        info.commits ? (double)n / (double)info.commits : 0.0);
    store_destroy(g_store);
    free(t);
    return 0;
}
