/* eim_fixture.h - the in-process tests of server/eim with the stand-in model,
 * tests/eim/fake_eim.py (see tests/eim/README.md): its path, a private temporary directory for
 * the socket directories (eim_opts.tmp_dir) and for the files the stand-in writes (features it
 * received, requests it framed), the FAKE_EIM_* settings (the model inherits this process's
 * environment), and the checks that nothing is left behind (descriptors, children, directories,
 * shared memory). */
#ifndef EI_TEST_EIM_FIXTURE_H
#define EI_TEST_EIM_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "eim/eim.h"

#ifndef EI_FIXTURES_DIR
#error "EI_FIXTURES_DIR must name the tests/fixtures directory (tests/CMakeLists.txt sets it)"
#endif

typedef struct eim_fx {
    char base[64];     /* the test's own directory */
    char socks[96];    /* eim_opts.tmp_dir: where the socket directories go */
    char features[96]; /* FAKE_EIM_FEATURES_FILE */
    char requests[96]; /* FAKE_EIM_REQUEST_LOG */
    char fake[1024];   /* tests/eim/fake_eim.py */
    char wrapper[96];  /* model.sh: fake_eim.py run by the interpreter itself (fx_wrapper) */
    char model[1024];  /* the model file the tests start: the wrapper, or fake_eim.py */
} eim_fx;

static const char *const fx_vars[] = {
    "MODEL_TYPE",     "WIDTH",       "HEIGHT",        "CHANNELS",        "FEATURES",
    "RESIZE_MODE",    "LABELS",      "ANOMALY",       "OBJECT_TRACKING", "SENSOR",
    "ENGINE",         "THRESHOLDS",  "SHM",           "LATENCY_MS",      "INFO",
    "FEATURES_FILE",  "REQUEST_LOG", "DIE_AFTER",     "HANG_AFTER",      "EXIT_AT_START",
    "START_DELAY_MS", "CHATTY",      "IGNORE_SIGNALS"};

static inline void fx_set(const char *name, const char *value)
{
    char var[64];
    snprintf(var, sizeof var, "FAKE_EIM_%s", name);
    setenv(var, value, 1);
}

/* The Python interpreter python3 on PATH runs, found once: on a machine where python3 is a
 * version manager's shim, each start of the stand-in through its "#!/usr/bin/env python3" line
 * would cost the shim's second, and the tests start it dozens of times. */
static inline const char *fx_python(void)
{
    static char exe[512];
    if (!exe[0]) {
        FILE *p = popen("python3 -c 'import sys; print(sys.executable)'", "r");
        if (!p || !fgets(exe, sizeof exe, p)) snprintf(exe, sizeof exe, "python3");
        if (p) pclose(p);
        exe[strcspn(exe, "\n")] = '\0';
    }
    return exe;
}

/* model.sh in the test's directory: `exec <python> fake_eim.py "$@"`, a model file that starts
 * the stand-in with the interpreter itself (test_hello also starts fake_eim.py directly). */
static inline void fx_wrapper(eim_fx *fx)
{
    snprintf(fx->wrapper, sizeof fx->wrapper, "%s/model.sh", fx->base);
    snprintf(fx->model, sizeof fx->model, "%s", fx->wrapper);
    FILE *f = fopen(fx->wrapper, "w");
    CHECK(f != NULL);
    if (!f) return;
    fprintf(f, "#!/bin/sh\nexec '%s' -S '%s' \"$@\"\n", fx_python(), fx->fake);
    fclose(f);
    CHECK(chmod(fx->wrapper, 0755) == 0);
}

/* A fresh directory and default settings for a w x h model; the stand-in records what it
 * receives. */
static inline void fx_init(eim_fx *fx, int w, int h)
{
    const char *src = getenv("EI_TEST_SOURCE_DIR");
    if (src && *src)
        snprintf(fx->fake, sizeof fx->fake, "%s/tests/eim/fake_eim.py", src);
    else
        snprintf(fx->fake, sizeof fx->fake, "%s/../eim/fake_eim.py", EI_FIXTURES_DIR);
    snprintf(fx->base, sizeof fx->base, "/tmp/ei-eim-test-XXXXXX");
    CHECK(mkdtemp(fx->base) != NULL);
    snprintf(fx->socks, sizeof fx->socks, "%s/s", fx->base);
    CHECK(mkdir(fx->socks, 0700) == 0);
    snprintf(fx->features, sizeof fx->features, "%s/features.bin", fx->base);
    snprintf(fx->requests, sizeof fx->requests, "%s/requests.log", fx->base);
    for (size_t i = 0; i < sizeof fx_vars / sizeof fx_vars[0]; i++) {
        char var[64];
        snprintf(var, sizeof var, "FAKE_EIM_%s", fx_vars[i]);
        unsetenv(var);
    }
    char side[16];
    snprintf(side, sizeof side, "%d", w);
    fx_set("WIDTH", side);
    snprintf(side, sizeof side, "%d", h);
    fx_set("HEIGHT", side);
    fx_set("FEATURES_FILE", fx->features);
    fx_set("REQUEST_LOG", fx->requests);
    fx_wrapper(fx);
}

static inline eim_opts fx_opts(const eim_fx *fx)
{
    eim_opts o = {
        .model_file = fx->model, .name = "test", .tmp_dir = fx->socks, .start_timeout_ms = 20000};
    return o;
}

static inline eim_model *fx_start(const eim_fx *fx)
{
    eim_opts o = fx_opts(fx);
    eim_model *m = NULL;
    er_err err = {{0}};
    er_rc rc = eim_model_start(&o, &m, &err);
    if (rc != ER_OK) fprintf(stderr, "eim_model_start: %s: %s\n", er_rc_name(rc), err.msg);
    CHECK_EQ_INT(rc, ER_OK);
    return m;
}

/* A classify whose reply is not needed: its code. */
static inline er_rc fx_classify(eim_model *m, const uint32_t *px, size_t n, int timeout_ms,
                                er_err *err)
{
    cJSON *r = NULL;
    memset(err, 0, sizeof *err);
    er_rc rc = eim_model_classify(m, px, n, timeout_ms, &r, err);
    CHECK(rc == ER_OK ? r != NULL : r == NULL);
    cJSON_Delete(r);
    return rc;
}

static inline size_t fx_entries(const char *dir)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    if (d) closedir(d);
    return n;
}

/* A whole file, NUL-terminated (NULL when missing); *len its length. */
static inline char *fx_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        if (len) *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    if (f) fclose(f);
    return buf;
}

/* Record `rec` (0-based) of the features file: its count and float32 values (malloc'ed). */
static inline float *fx_features(const eim_fx *fx, size_t rec, size_t *n)
{
    size_t len = 0, off = 0;
    char *all = fx_read(fx->features, &len);
    float *out = NULL;
    *n = 0;
    for (size_t i = 0; all && off + 4 <= len; i++) {
        uint32_t count;
        memcpy(&count, all + off, 4); /* little-endian, as this machine */
        off += 4;
        if (off + (size_t)count * 4 > len) break;
        if (i == rec) {
            out = malloc(count ? (size_t)count * 4 : 1);
            memcpy(out, all + off, (size_t)count * 4);
            *n = count;
            break;
        }
        off += (size_t)count * 4;
    }
    free(all);
    return out;
}

static inline int fx_open_fds(void)
{
    return (int)fx_entries("/proc/self/fd");
}

/* After a test: the socket directories are gone and no child is left; removes the directory. */
static inline void fx_done(eim_fx *fx)
{
    CHECK_EQ_INT(fx_entries(fx->socks), 0);
    errno = 0;
    CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);
    unlink(fx->features);
    unlink(fx->requests);
    unlink(fx->wrapper);
    rmdir(fx->socks);
    CHECK(rmdir(fx->base) == 0);
}

/* Whether /dev/shm still holds the shared memory named name ("/shm-..."). */
static inline int fx_shm_exists(const char *name)
{
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "/dev/shm%s", name);
    return stat(path, &st) == 0;
}

#endif
