/* store_check.c - the database's health: what is checked when it is opened (not another
 * application's database, `PRAGMA quick_check`), moving a corrupt or foreign file aside with its
 * -wal/-shm/-journal so that the service can start on a fresh one (never deleting it), and the
 * corruption SQLite reports while running, which GET /api/v1/health shows (store_health_get).
 *
 * Why move rather than stop: under a supervisor a database that cannot be opened is a restart
 * loop in which every inference is lost; the moved file keeps whatever can still be recovered
 * from it (sqlite3's .recover) and the relay goes on caching. A database from a newer ei-relay
 * or one that belongs to another application is never moved: that is a configuration error. */
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

/* The files SQLite keeps beside a database, moved with it under the same new name. */
static const char *const companions[] = {"", "-wal", "-shm", "-journal"};
#define N_COMPANIONS (sizeof companions / sizeof companions[0])

bool store__corrupt_code(int src)
{
    int primary = src & 0xff;
    return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

void store__note_bad(store *s, int src, const char *msg)
{
    if (s->bad[0] || !store__corrupt_code(src)) return;
    snprintf(s->bad, sizeof s->bad, "%s", msg && msg[0] ? msg : sqlite3_errstr(src));
}

void store__note_corrupt(store *s, sqlite3 *db, int src, const char *what)
{
    if (!store__corrupt_code(src)) return;
    pthread_mutex_lock(&s->health_mu);
    if (!s->corrupt_ms) {
        s->corrupt_ms = util_now_ms();
        snprintf(s->corrupt_reason, sizeof s->corrupt_reason, "%s: %s", what, sqlite3_errmsg(db));
        log_error("store",
                  "DATABASE CORRUPTION while %s on %s: %s; health reports degraded until a "
                  "restart checks the database and moves it aside",
                  what, s->path, sqlite3_errmsg(db));
    }
    pthread_mutex_unlock(&s->health_mu);
}

/* One-column rows of sql; the first that is not "ok" (quick_check) or the count (sqlite_master)
 * goes to *first. */
static int first_row(sqlite3 *db, const char *sql, char *first, size_t cap)
{
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (src == SQLITE_OK) {
        src = sqlite3_step(st);
        const unsigned char *t = src == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
        snprintf(first, cap, "%s", t ? (const char *)t : "");
        src = src == SQLITE_ROW ? SQLITE_OK : src;
    }
    /* finalize answers the step's error: the code the caller classifies */
    int fin = sqlite3_finalize(st);
    return src == SQLITE_OK ? fin : src;
}

er_rc store__check_file(store *s, int64_t user_version, er_err *err)
{
    char first[200];
    er_rc rc = ER_OK;
    /* user_version 0 is a file this binary has not migrated yet: empty, or someone else's */
    int src = user_version == 0
                  ? first_row(s->wdb, "SELECT count(*) FROM sqlite_master", first, sizeof first)
                  : SQLITE_OK;
    if (src == SQLITE_OK && user_version == 0 && strcmp(first, "0") != 0) {
        rc = er_fail(err, ER_CONFIG,
                     "db_path %s is an SQLite database of another application (%s tables, no "
                     "ei-relay schema version); refusing to use or move it",
                     s->path, first);
        goto fail;
    }
    if (src == SQLITE_OK) src = first_row(s->wdb, "PRAGMA quick_check", first, sizeof first);
    if (src != SQLITE_OK) {
        store__note_bad(s, src, sqlite3_errmsg(s->wdb));
        rc = er_fail(err, ER_DB, "cannot check database %s: %s", s->path, sqlite3_errmsg(s->wdb));
        goto fail;
    }
    if (strcmp(first, "ok") != 0) {
        snprintf(s->bad, sizeof s->bad, "quick_check: %s", first);
        rc = er_fail(err, ER_DB, "database %s is corrupt (quick_check: %s)", s->path, first);
    }
fail:
    return rc;
}

/* <path>.corrupt-<UTC time>[-N], a name no file has yet (for any companion). */
static er_rc aside_name(const char *path, char **out, er_err *err)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    size_t cap = strlen(path) + 64;
    char *name = malloc(cap);
    er_rc rc = ER_OK;
    if (!name) {
        rc = er_fail(err, ER_NOMEM, "out of memory");
        goto fail;
    }
    for (int n = 1; n < 1000; n++) {
        int len = n == 1 ? snprintf(name, cap, "%s.corrupt-%s", path, stamp)
                         : snprintf(name, cap, "%s.corrupt-%s-%d", path, stamp, n);
        bool taken = false;
        for (size_t i = 0; i < N_COMPANIONS && !taken; i++) {
            struct stat sb;
            snprintf(name + len, cap - (size_t)len, "%s", companions[i]);
            taken = lstat(name, &sb) == 0;
        }
        name[len] = '\0';
        if (!taken) {
            *out = name;
            name = NULL;
            goto fail;
        }
    }
    rc = er_fail(err, ER_IO, "no free name to move the corrupt database %s aside", path);
fail:
    free(name);
    return rc;
}

/* Makes the renames durable: a power cut must not bring the corrupt file back. */
static void sync_dir(const char *path)
{
    char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    int fd = -1;
    if (!dir) return;
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

er_rc store__move_aside(store *s, er_err *err)
{
    char *to = NULL;
    char *from = malloc(strlen(s->path) + 16), *dst = NULL;
    er_rc rc = from ? aside_name(s->path, &to, err) : er_fail(err, ER_NOMEM, "out of memory");
    if (rc) goto fail;
    dst = malloc(strlen(to) + 16);
    if (!dst) {
        rc = er_fail(err, ER_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < N_COMPANIONS; i++) {
        sprintf(from, "%s%s", s->path, companions[i]);
        sprintf(dst, "%s%s", to, companions[i]);
        if (rename(from, dst) != 0 && errno != ENOENT) {
            rc = er_fail(err, ER_IO, "cannot move corrupt database file %s aside to %s: %s", from,
                         dst, strerror(errno));
            goto fail;
        }
    }
    sync_dir(s->path);
    log_error("store",
              "DATABASE %s WAS CORRUPT OR NOT A DATABASE (%s): moved it (with its -wal/-shm) to "
              "%s, kept for inspection, and started a fresh, empty database",
              s->path, s->bad, to);
    s->recovered_ms = util_now_ms();
    snprintf(s->recovered_reason, sizeof s->recovered_reason, "%s", s->bad);
    s->moved_to = to;
    to = NULL;
    s->bad[0] = '\0';
fail:
    free(from);
    free(dst);
    free(to);
    return rc;
}

void store_health_get(store *s, store_health *out)
{
    *out = (store_health){.recovered_ms = s->recovered_ms, .moved_to = s->moved_to};
    snprintf(out->recovered_reason, sizeof out->recovered_reason, "%s", s->recovered_reason);
    pthread_mutex_lock(&s->health_mu);
    out->corrupt_ms = s->corrupt_ms;
    snprintf(out->corrupt_reason, sizeof out->corrupt_reason, "%s", s->corrupt_reason);
    pthread_mutex_unlock(&s->health_mu);
}
