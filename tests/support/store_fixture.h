/* store_fixture.h - what the in-process store tests share: a temp directory for their
 * databases (store_fixture_begin / store_fixture_end), fresh database paths in it, opening a
 * store with the tests' options, its counts checked (CHECK_INFO), and a small classification
 * inference to put. Include after check.h and raw_db.h (so the including file defines
 * _XOPEN_SOURCE 700 first). */
#ifndef EI_TEST_STORE_FIXTURE_H
#define EI_TEST_STORE_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/util.h"
#include "model/inference.h"
#include "store/store.h"

static char g_dir[256];
static int g_db_counter;

/* Makes the temp directory from template tmpl ("/tmp/name-XXXXXX"); false (said on stderr) if
 * it cannot. */
static inline int store_fixture_begin(const char *tmpl)
{
    snprintf(g_dir, sizeof g_dir, "%s", tmpl);
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 0;
    }
    return 1;
}

/* Removes the temp directory and gives the exit code (check_summary). */
static inline int store_fixture_end(void)
{
    raw_rm_tree(g_dir);
    return check_summary();
}

/* A fresh database path (in a subdirectory that does not exist yet, to test mkdir -p). */
static inline void db_path(char *out, size_t n)
{
    snprintf(out, n, "%s/sub%d/deeper/cache.db", g_dir, ++g_db_counter);
}

/* Opens path with the options o (NULL: defaults) and synchronous=FULL; the store or NULL (the
 * failure is a failed CHECK). */
static inline store *open_store(const char *path, store_opts *o)
{
    store_opts def = {0};
    if (!o) o = &def;
    o->path = path;
    o->sync_full = true;
    store *s = NULL;
    er_err err = {{0}};
    er_rc rc = store_create(o, &s, &err);
    if (rc) fprintf(stderr, "store_create: %s: %s\n", er_rc_name(rc), err.msg);
    CHECK(rc == ER_OK);
    return s;
}

/* CHECK_INFO(s, rows, bytes, images, outbox): store_get_info gives these counts (outbox: rows
 * waiting); INFO_ANY skips one. A failure names the caller's line and each count that differs. */
#define INFO_ANY (-1)
#define CHECK_INFO(s, rows, bytes, images, outbox)                                                 \
    check_info_at((s), (int64_t[]){(rows), (bytes), (images), (outbox)}, __FILE__, __LINE__)

static inline void check_info_at(store *s, const int64_t want[4], const char *file, int line)
{
    store_info info = {0};
    er_rc rc = s ? store_get_info(s, &info) : ER_INVALID;
    const struct {
        const char *name;
        int64_t got;
    } got[] = {{"rows", info.rows},
               {"bytes", info.bytes},
               {"images", info.images},
               {"outbox", info.outbox}};
    int ok = rc == ER_OK;
    if (!ok) fprintf(stderr, "%s:%d: store_get_info: %s\n", file, line, er_rc_name(rc));
    for (size_t i = 0; ok && i < sizeof got / sizeof got[0]; i++) {
        if (want[i] == INFO_ANY || got[i].got == want[i]) continue;
        fprintf(stderr, "%s:%d: store info %s is %lld, not %lld\n", file, line, got[i].name,
                (long long)got[i].got, (long long)want[i]);
        ok = 0;
    }
    CHECK(ok);
}

/* An inference with one or more labels (the first is the top one). */
static inline inference *make_inf(int64_t ts, const char *source, const char *label, double score)
{
    inference *inf = inference_create();
    util_uuid4(inf->guid);
    inf->ts = ts;
    inference_set_str(&inf->device, "dev_0242ac110002");
    inference_set_str(&inf->source, source);
    inf->kind = INFERENCE_CLASSIFICATION;
    char json[128];
    snprintf(json, sizeof json, "{\"classification\":{\"%s\":%.3f}}", label, score);
    inference_set_str(&inf->result_json, json);
    inference_add_label(inf, label, score);
    return inf;
}

/* Puts inf (taken), checks it committed as a new row, returns its seq. */
static inline int64_t put_ok(store *s, inference *inf)
{
    store_put_result res;
    er_rc rc = store_put(s, inf, &res);
    CHECK_EQ_INT(rc, ER_OK);
    CHECK(!res.duplicate);
    return res.seq;
}

#endif
