/* store_check.c - the database's health: what is checked when it is opened (not another
 * application's database; `PRAGMA quick_check` when the last run did not stop cleanly), the
 * clean-stop mark, moving a corrupt or foreign file aside with its -wal/-shm/-journal so that
 * the service can start on a fresh one (never deleting it), and the corruption SQLite reports
 * while running, which GET /api/v1/health shows (store_health_get).
 *
 * Why move rather than stop: under a supervisor a database that cannot be opened is a restart
 * loop in which every inference is lost; the moved file keeps whatever can still be recovered
 * from it (sqlite3's .recover) and the relay goes on caching. A database from a newer ei-relay
 * or one that belongs to another application is never moved: that is a configuration error.
 *
 * Why quick_check only after an unclean stop: it reads the whole file (seconds for hundreds of
 * MB, far more on an SD card), and a file that was checkpointed, fsynced and closed by a clean
 * stop and not written since cannot have been torn by a power cut. The mark of a clean stop is
 * the file <db>.clean:
 *   - written by store_destroy (store__clean_mark) only after the writer drained, under an
 *     EXCLUSIVE lock on the database (proof that no other process, an `ei-relay import` or
 *     `export`, has it open, and none can open it until the close), after a full checkpoint
 *     (which fsyncs the database), and itself fsynced with its directory; never when corruption
 *     was met while running (the next start must check);
 *   - removed, with the removal made durable, at open (store__clean_take) after the read-only
 *     checks and before the first write; a process that opens the file while it exists holds a
 *     SHARED lock by then, so a concurrent clean stop cannot write it after that removal.
 * So a crash at any point leaves either no mark, or a mark for a file not written since. A
 * process killed while another one keeps running cannot tear the file (SQLite's transactions
 * survive process death), so only a stop of the last one matters. The cheap checks still run on
 * every start: SQLite's own at the first read (not a database, a truncated file: SQLITE_NOTADB /
 * SQLITE_CORRUPT), the schema version, the schema itself (parsed once); corruption in the
 * middle of a cleanly stopped file is met by the first read of its pages (health degraded, no
 * mark at the stop), so the next start checks and moves it aside. */
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

#define CLEAN_SUFFIX ".clean"

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

/* The marker's path: <path>.clean (malloc'ed; NULL when out of memory). */
static char *clean_path(const store *s)
{
    size_t n = strlen(s->path) + sizeof CLEAN_SUFFIX;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s" CLEAN_SUFFIX, s->path);
    return p;
}

er_rc store__check_file(store *s, int64_t user_version, er_err *err)
{
    char first[200];
    er_rc rc = ER_OK;
    struct stat sb;
    char *mark = clean_path(s);
    if (!mark) {
        rc = er_fail(err, ER_NOMEM, "out of memory");
        goto fail;
    }
    /* SELECT ... FROM sqlite_master parses the schema: a mangled one fails here, cheaply.
     * user_version 0 is a file this binary has not migrated yet: empty, or someone else's. */
    int src = first_row(s->wdb, "SELECT count(*) FROM sqlite_master", first, sizeof first);
    if (src == SQLITE_OK && user_version == 0 && strcmp(first, "0") != 0) {
        rc = er_fail(err, ER_CONFIG,
                     "db_path %s is an SQLite database of another application (%s tables, no "
                     "ei-relay schema version); refusing to use or move it",
                     s->path, first);
        goto fail;
    }
    /* stat after the first read: this connection holds its SHARED lock by now (see top) */
    if (src == SQLITE_OK && user_version == 0) {
        s->start_check = STORE_CHECK_NEW;
        log_info("store", "database %s is new: no check needed", s->path);
        goto fail;
    }
    if (src == SQLITE_OK && stat(mark, &sb) == 0) {
        s->start_check = STORE_CHECK_SKIPPED;
        log_info("store", "database %s: the last run stopped cleanly (%s): quick_check skipped",
                 s->path, mark);
        goto fail;
    }
    if (src == SQLITE_OK) {
        int64_t t0 = util_mono_ms();
        src = first_row(s->wdb, "PRAGMA quick_check", first, sizeof first);
        s->start_check = STORE_CHECK_QUICK;
        s->start_check_ms = util_mono_ms() - t0;
        log_info("store",
                 "database %s: the last run did not stop cleanly (no %s): quick_check ran in "
                 "%" PRId64 " ms: %s",
                 s->path, mark, s->start_check_ms,
                 src == SQLITE_OK ? first : sqlite3_errmsg(s->wdb));
    }
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
    free(mark);
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

er_rc store__clean_take(store *s, er_err *err)
{
    er_rc rc = ER_OK;
    char *mark = clean_path(s);
    if (!mark) {
        rc = er_fail(err, ER_NOMEM, "out of memory");
        goto fail;
    }
    if (unlink(mark) == 0) {
        sync_dir(mark);
    } else if (errno != ENOENT) {
        /* a mark that stays would let the next start skip the check after a crash */
        rc = er_fail(err, ER_IO, "cannot remove %s: %s", mark, strerror(errno));
    }
fail:
    free(mark);
    return rc;
}

/* Writes the mark: created, fsynced, then its directory entry fsynced. */
static bool write_mark(const char *mark)
{
    static const char text[] = "ei-relay stopped cleanly; removed when the database is opened\n";
    int fd = open(mark, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok =
        fd >= 0 && write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1) && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0) ok = false;
    if (ok) sync_dir(mark);
    return ok;
}

void store__clean_mark(store *s)
{
    sqlite3 *db = s->wdb;
    sqlite3_stmt *st = NULL;
    char *mark = clean_path(s);
    const char *why = NULL;
    pthread_mutex_lock(&s->health_mu);
    bool corrupt = s->corrupt_ms != 0;
    pthread_mutex_unlock(&s->health_mu);
    if (!mark || !db || !s->opened || s->bad[0]) goto fail;
    if (corrupt) {
        why = "corruption was met while running";
        goto fail;
    }
    /* Not waiting: another process with the file open means this is not the last stop. */
    sqlite3_busy_timeout(db, 0);
    /* In WAL mode every open connection holds a SHARED lock on the file: an EXCLUSIVE one,
     * kept by locking_mode=EXCLUSIVE until the close, proves none is left and lets none in. */
    if (sqlite3_exec(db, "PRAGMA locking_mode=EXCLUSIVE; BEGIN IMMEDIATE; COMMIT", NULL, NULL,
                     NULL) != SQLITE_OK) {
        why = "another process has it open";
        goto fail;
    }
    /* everything into the database file, which the checkpoint fsyncs */
    if (sqlite3_prepare_v2(db, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) != 0 ||
        sqlite3_column_int(st, 1) != sqlite3_column_int(st, 2)) {
        why = "the final checkpoint did not complete";
        goto fail;
    }
    if (!write_mark(mark)) {
        why = strerror(errno);
        goto fail;
    }
    log_info("store", "database %s stopped cleanly: the next start skips quick_check", s->path);
fail:
    if (why && !sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    if (why)
        log_warn("store", "no clean-stop mark for %s (%s): the next start runs quick_check",
                 s->path, why);
    sqlite3_finalize(st);
    free(mark);
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
    *out = (store_health){.recovered_ms = s->recovered_ms,
                          .moved_to = s->moved_to,
                          .start_check = s->start_check,
                          .start_check_ms = s->start_check_ms};
    snprintf(out->recovered_reason, sizeof out->recovered_reason, "%s", s->recovered_reason);
    pthread_mutex_lock(&s->health_mu);
    out->corrupt_ms = s->corrupt_ms;
    snprintf(out->corrupt_reason, sizeof out->corrupt_reason, "%s", s->corrupt_reason);
    out->writes_failing_ms = s->wfail_ms;
    snprintf(out->writes_failing_reason, sizeof out->writes_failing_reason, "%s", s->wfail_reason);
    pthread_mutex_unlock(&s->health_mu);
}
