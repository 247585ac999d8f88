/* store_space.c - the database's file system: free space (statvfs of the database directory),
 * a reserve file that makes a full disk recoverable, and making room when it is full.
 *
 * Why a reserve: in WAL mode every write, deletes and outbox acks included, first appends to
 * the WAL, and a checkpoint copies the WAL into the main file, which grows to its logical size.
 * On a full file system neither can happen, so nothing (not even freeing space) could be
 * written again. <db>-reserve holds `reserve` bytes (1/32 of the file system, 256 KiB..17 MiB)
 * and the WAL is checkpointed before it outgrows the reserve, and after every commit once the
 * file system is nearly full (wal_hook). When a transaction fails with a full disk, the writer
 * (store__space_full, at most once a second):
 *   1. empties the reserve: room for the checkpoint to grow the main file;
 *   2. checkpoints and truncates the WAL (gives its space back);
 *   3. until as much again as the reserve is free (a few rounds at most): evicts the oldest
 *      rows the forwarder is done with (no pending outbox row), EVICT_RESERVES reserves' worth
 *      of accounted bytes, and gives the pages back (incremental vacuum in steps, each
 *      checkpointed);
 *   4. takes the reserve back: puts must not use up its space, or the next full disk is a dead
 *      end (nothing could be freed).
 * Rows still waiting for the broker are never evicted: with the broker away a full disk stays
 * full (ingest 507) until the forwarder drains or space returns. store__space_tick takes a
 * released reserve back after a commit once there is room.
 *
 * The reserve fields belong to the writer thread (after store__space_init, which runs before
 * the writer starts); store_space_get reads only constants and statvfs. */
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/log.h"

#define RESERVE_MIN (256 * 1024)
#define RESERVE_MAX (17 * 1024 * 1024) /* 4000 WAL frames of 4 KiB (the usual checkpoint) */
#define CAP_DEFAULT_MIN (1LL << 20)    /* the default cap lowered no further than this */
#define WAL_CKPT_MAX 4000
#define WAL_FRAME_OVERHEAD 24
#define EVICT_RESERVES 2
#define ROOM_SPACING_MS 1000
#define ROOM_ROUNDS 16   /* eviction rounds per full disk at most */
#define VACUUM_STEP "32" /* pages moved per step: 132 KiB of WAL */
#define VACUUM_STEPS_MAX 4096

/* path + suffix, malloc'ed (NULL: out of memory). */
static char *path_with(const char *path, const char *suffix)
{
    size_t a = strlen(path), b = strlen(suffix);
    char *p = malloc(a + b + 1);
    if (!p) return NULL;
    memcpy(p, path, a);
    memcpy(p + a, suffix, b + 1);
    return p;
}

/* The database's directory (malloc'ed; NULL: out of memory). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return path_with(".", "");
    char *dir = path_with(path, "");
    if (dir) dir[slash == path ? 1 : slash - path] = '\0';
    return dir;
}

/* statvfs of the database's directory: bytes free to us and the file system's size. */
static er_rc fs_space(const char *dir, int64_t *avail, int64_t *total)
{
    struct statvfs v;
    if (!dir || statvfs(dir, &v) != 0) return ER_IO;
    *avail = (int64_t)v.f_bavail * (int64_t)v.f_frsize;
    *total = (int64_t)v.f_blocks * (int64_t)v.f_frsize;
    return ER_OK;
}

/* After each commit (SQLite's WAL hook, in place of wal_autocheckpoint): the usual passive
 * checkpoint every ckpt_pages frames, and, once the file system is nearly full, after every
 * commit. A checkpoint grows the main file by up to the WAL's pages, so the WAL must be copied
 * back while the space for that is still there: a transaction lost to a full disk leaves a WAL of
 * few valid frames, which the reserve can take (store__space_full). Nearly full, the checkpoint
 * truncates the WAL and so waits for the readers of the moment (the busy timeout at most):
 * measured, a passive one left frames behind readers' snapshots often enough for the WAL to outgrow
 * the reserve (a wedged disk). */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    store *s = arg;
    int64_t avail = 0, total = 0, wal = (int64_t)frames * (4096 + WAL_FRAME_OVERHEAD);
    int mode = frames >= s->ckpt_pages ? SQLITE_CHECKPOINT_PASSIVE : -1;
    if (fs_space(s->dir_path, &avail, &total) == ER_OK && avail < 2 * wal + s->reserve)
        mode = SQLITE_CHECKPOINT_TRUNCATE;
    if (mode >= 0) sqlite3_wal_checkpoint_v2(db, name, mode, NULL, NULL);
    return SQLITE_OK;
}

/* A pragma's integer answer, or def when it has none. */
static int64_t pragma_value(sqlite3 *db, const char *sql, int64_t def)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        def = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return def;
}

/* Fills the reserve file to s->reserve bytes; false when the space is not there. */
static bool reserve_fill(store *s)
{
    int fd = open(s->reserve_path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    int err = posix_fallocate(fd, 0, (off_t)s->reserve);
    if (err == 0 && fsync(fd) != 0) err = errno;
    if (err) (void)!ftruncate(fd, 0); /* a part-filled reserve would be counted as whole */
    close(fd);
    s->reserve_held = err == 0;
    return s->reserve_held;
}

static void reserve_release(store *s)
{
    if (truncate(s->reserve_path, 0) != 0 && errno != ENOENT)
        log_warn("store", "cannot empty %s: %s", s->reserve_path, strerror(errno));
    s->reserve_held = false;
}

er_rc store__space_init(store *s, er_err *err)
{
    int64_t avail = 0, total = 0;
    er_rc rc = ER_NOMEM;
    s->reserve_path = path_with(s->path, "-reserve");
    if (!s->reserve_path || !(s->dir_path = dir_of(s->path))) {
        er_fail(err, rc, "out of memory");
        goto fail;
    }
    rc = ER_OK;
    if (fs_space(s->dir_path, &avail, &total))
        log_warn("store", "cannot read the free space of %s: %s", s->dir_path, strerror(errno));
    s->reserve = total / 32;
    if (s->reserve < RESERVE_MIN) s->reserve = RESERVE_MIN;
    if (s->reserve > RESERVE_MAX) s->reserve = RESERVE_MAX;
    snprintf(s->secure_delete_sql, sizeof s->secure_delete_sql, "PRAGMA secure_delete=%d",
             (int)pragma_value(s->wdb, "PRAGMA secure_delete", 1));
    int pages = (int)(s->reserve / (4096 + WAL_FRAME_OVERHEAD));
    s->ckpt_pages = pages < WAL_CKPT_MAX ? pages : WAL_CKPT_MAX;
    sqlite3_wal_hook(s->wdb, wal_hook, s);
    if (!reserve_fill(s))
        log_warn("store",
                 "no room for the %lld-byte reserve %s: a full disk may need space "
                 "freed by hand",
                 (long long)s->reserve, s->reserve_path);
    store_space sp;
    store_space_get(s, &sp);
    /* The default cap must not promise more than the card holds: a full disk is recoverable
     * (store__space_full) but answers 507 meanwhile, while retention under the cap never does.
     * Only the default: a chosen cache_max_bytes is the operator's (warned about below). */
    if (s->max_bytes_default && sp.fs_total_bytes > 0 && s->max_bytes > sp.fs_room_bytes / 2) {
        int64_t half =
            sp.fs_room_bytes / 2 > CAP_DEFAULT_MIN ? sp.fs_room_bytes / 2 : CAP_DEFAULT_MIN;
        log_warn("store",
                 "cache_max_bytes: the default %lld is more than half of what this file system "
                 "can hold (%lld bytes: free + database - reserve): using %lld; set "
                 "cache_max_bytes to choose",
                 (long long)s->max_bytes, (long long)sp.fs_room_bytes, (long long)half);
        s->max_bytes = half;
        store_space_get(s, &sp);
    }
    log_msg(sp.cap_exceeds_fs ? LOG_WARN : LOG_INFO, "store",
            "database file system: %lld bytes free of %lld, database %lld bytes, reserve %lld; "
            "cache_max_bytes %lld%s",
            (long long)sp.fs_free_bytes, (long long)sp.fs_total_bytes, (long long)sp.db_bytes,
            (long long)s->reserve, (long long)s->max_bytes,
            sp.cap_exceeds_fs ? " exceeds what the file system can hold: the disk fills first "
                                "(ingest 507 until the rows the broker has are evicted)"
                              : "");
fail:
    return rc;
}

void store__space_close(store *s)
{
    free(s->reserve_path); /* the file stays: the next start finds its space */
    s->reserve_path = NULL;
    free(s->dir_path);
    s->dir_path = NULL;
}

static void checkpoint(store *s)
{
    int src = sqlite3_wal_checkpoint_v2(s->wdb, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    if (src != SQLITE_OK && src != SQLITE_BUSY)
        log_warn("store", "checkpoint on a full disk: %s", sqlite3_errmsg(s->wdb));
}

/* The freed pages back to the file system a few at a time: moving pages writes them to the
 * WAL, so each step is checkpointed away (truncating the file) before the next. */
static void vacuum_steps(store *s)
{
    for (int i = 0; i < VACUUM_STEPS_MAX; i++) {
        if (pragma_value(s->wdb, "PRAGMA freelist_count", 0) == 0) break;
        if (sqlite3_exec(s->wdb, "PRAGMA incremental_vacuum(" VACUUM_STEP ")", NULL, NULL, NULL) !=
            SQLITE_OK)
            break;
        checkpoint(s);
    }
}

/* The reserve fits with as much again left for writes (then the disk is not full any more). */
static bool room_for_reserve(store *s)
{
    int64_t avail = 0, total = 0;
    return fs_space(s->dir_path, &avail, &total) == ER_OK && avail >= 2 * s->reserve;
}

/* One eviction round: the oldest rows the broker has, EVICT_RESERVES reserves' worth. */
static er_rc evict_round(store *s, int64_t *evicted)
{
    int64_t before = atomic_load(&s->retention_deleted);
    s->room_bytes = EVICT_RESERVES * s->reserve;
    /* Debian's SQLite zero-fills every freed page (SECURE_DELETE): each evicted image would be
     * written to the WAL once more, which is the space that is missing. FAST zeroes only
     * b-tree pages; the freed pages are cut off by the incremental vacuum below. */
    sqlite3_exec(s->wdb, "PRAGMA secure_delete=FAST", NULL, NULL, NULL);
    er_rc rc = store__run_retention(s, true);
    sqlite3_exec(s->wdb, s->secure_delete_sql, NULL, NULL, NULL);
    s->room_bytes = 0;
    *evicted = atomic_load(&s->retention_deleted) - before;
    checkpoint(s);
    vacuum_steps(s);
    return rc;
}

void store__space_full(store *s)
{
    if (!s->reserve_path) return;
    int64_t now = util_mono_ms(), evicted = 0, round = 0;
    if (now < s->room_next_ms) return; /* at most once a second: no hot loop while full */
    s->room_next_ms = now + ROOM_SPACING_MS;
    bool had = s->reserve_held;
    er_rc rc = ER_OK;
    if (had) reserve_release(s);
    checkpoint(s);
    /* Rounds until the reserve is back: puts must never use up the space that makes the next
     * full disk recoverable (without it nothing could be freed). */
    for (int i = 0; i < ROOM_ROUNDS && !room_for_reserve(s); i++) {
        rc = evict_round(s, &round);
        evicted += round;
        if (rc || round == 0) break;
    }
    reserve_fill(s);                      /* with room to spare, or as the best that can be done */
    if (evicted > 0) s->ack_retry_at = 0; /* room: kept acks go now */
    log_ratelimited(LOG_WARN, "store", "disk_full",
                    "disk full: evicted %lld rows the broker has%s; reserve %s", (long long)evicted,
                    rc ? " (stopped by an error)" : "",
                    s->reserve_held ? "kept"
                    : had           ? "released (taken back once there is room)"
                                    : "already released");
}

/* Takes the reserve back once the file system has room for it, at most once a second. */
void store__space_tick(store *s)
{
    if (s->reserve_held || !s->reserve_path) return;
    int64_t now = util_mono_ms(), avail = 0, total = 0;
    if (now < s->reserve_next_ms) return;
    s->reserve_next_ms = now + ROOM_SPACING_MS;
    if (fs_space(s->dir_path, &avail, &total) || avail < s->reserve) return;
    if (reserve_fill(s)) log_info("store", "reserve %s taken back", s->reserve_path);
}

void store_space_get(store *s, store_space *out)
{
    memset(out, 0, sizeof *out);
    int64_t avail = 0, total = 0;
    if (fs_space(s->dir_path, &avail, &total)) return;
    const char *suffix[] = {"", "-wal"};
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        char *p = path_with(s->path, suffix[i]);
        struct stat sb;
        if (p && stat(p, &sb) == 0) out->db_bytes += (int64_t)sb.st_size;
        free(p);
    }
    out->fs_free_bytes = avail;
    out->fs_total_bytes = total;
    out->reserve_bytes = s->reserve;
    /* what the cache can grow to: the free space, what it uses now, not the reserve */
    out->fs_room_bytes = avail + out->db_bytes - s->reserve;
    out->cap_exceeds_fs = s->max_bytes <= 0 || s->max_bytes > out->fs_room_bytes;
}
