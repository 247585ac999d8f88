/* store_db.c - the store's connections: opening the database file (and its directory), the
 * pragmas every connection gets, WAL, the schema migrations, preparing each connection's
 * statements, closing, and the pool that lends reader connections to reading threads.
 *
 * The writer connection is used by create (migrations) and then only by the writer thread; each
 * reader connection by one borrowing thread at a time (SQLITE_OPEN_NOMUTEX). */
#include "store/store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "store/migrations.h"

/* The writer's checkpoints are scheduled by store_space.c (a WAL hook in place of
 * wal_autocheckpoint): every 4000 pages (SQLite's default is 1000: the pages every commit
 * rewrites are copied into the database once per checkpoint rather than once per 1000 pages),
 * fewer on a small file system, and after every commit on a nearly full one. 4000 pages of
 * 4 KiB stay well under journal_size_limit. */
#define WRITER_PRAGMAS " PRAGMA journal_size_limit=67108864;"

/* SQLITE_FULL, or an I/O error whose cause was ENOSPC, is "disk full": the caller answers 507
 * and the next batch tries again. */
static er_rc map_sqlite(sqlite3 *db, int rc)
{
    int primary = rc & 0xff;
    if (primary == SQLITE_FULL) return ER_FULL;
    if (primary == SQLITE_IOERR && sqlite3_system_errno(db) == ENOSPC) return ER_FULL;
    if (primary == SQLITE_NOMEM) return ER_NOMEM;
    /* another process (an `ei-relay import` on the live database) held the lock past the busy
     * timeout: the request may simply be retried */
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return ER_BUSY;
    return ER_DB;
}

er_rc store__db_error(store *s, sqlite3 *db, int rc, const char *what)
{
    log_error("store", "%s: %s (%s)", what, sqlite3_errmsg(db), sqlite3_errstr(rc));
    if (db == s->wdb) s->wlast_src = rc; /* the writer's: why a transaction was lost */
    store__note_corrupt(s, db, rc, what);
    return map_sqlite(db, rc);
}

/* Opens one connection with the pragmas every connection gets. */
static er_rc conn_open(store *s, bool writer, sqlite3 **out, er_err *err)
{
    sqlite3 *db = NULL;
    char *errmsg = NULL;
    char sql[320];
    er_rc rc = ER_OK;
    /* the writer's WAL writes are gathered per commit (store_walbuf.c) */
    int osrc = sqlite3_open_v2(s->path, &db,
                               SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                               writer ? store__walbuf_name(s->walbuf) : NULL);
    if (osrc != SQLITE_OK) {
        rc = er_fail(err, ER_DB, "cannot open database %s: %s", s->path,
                     db ? sqlite3_errmsg(db) : sqlite3_errstr(osrc));
        goto fail;
    }
    sqlite3_extended_result_codes(db, 1);
    /* Until the file has passed the checks (open_writer), closing must neither checkpoint a
     * WAL into it nor delete the WAL: a corrupt file is moved aside exactly as it was found. */
    if (writer) sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    sqlite3_busy_timeout(db, s->busy_timeout_ms);
    /* journal_mode is checked separately below: it answers the mode it ended up in. The writer
     * runs without foreign key enforcement: the cascades are a trigger (schema/004_ingest.sql)
     * and the writer inserts child rows only right after their inference, so the per-row
     * parent probe and the statement journal it forces on a multi-row insert buy nothing. */
    snprintf(sql, sizeof sql,
             "PRAGMA synchronous=%s; PRAGMA foreign_keys=%s; PRAGMA busy_timeout=%d;"
             " PRAGMA temp_store=MEMORY;"
             " PRAGMA cache_size=%d;%s",
             s->sync_full ? "FULL" : "NORMAL", writer ? "OFF" : "ON", s->busy_timeout_ms,
             writer ? -4096 : -1024, writer ? WRITER_PRAGMAS : "");
    int src = sqlite3_exec(db, sql, NULL, NULL, &errmsg);
    if (src != SQLITE_OK) {
        /* the first statement that reads the file: random bytes fail here (SQLITE_NOTADB) */
        if (writer) store__note_bad(s, src, errmsg);
        rc =
            er_fail(err, ER_DB, "cannot configure database %s: %s", s->path, errmsg ? errmsg : "?");
        goto fail;
    }
    *out = db;
    db = NULL;
fail:
    sqlite3_free(errmsg);
    if (db) sqlite3_close(db);
    return rc;
}

static er_rc set_wal(sqlite3 *db, const char *path, er_err *err)
{
    sqlite3_stmt *st = NULL;
    er_rc rc = ER_OK;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = er_fail(err, ER_DB, "cannot set WAL mode on %s: %s", path, sqlite3_errmsg(db));
        goto fail;
    }
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    if (!mode || strcmp(mode, "wal") != 0) {
        rc = er_fail(err, ER_DB, "database %s refused WAL mode (got %s)", path, mode ? mode : "?");
        goto fail;
    }
fail:
    sqlite3_finalize(st);
    return rc;
}

static er_rc pragma_int(sqlite3 *db, const char *sql, int64_t *out, er_err *err)
{
    sqlite3_stmt *st = NULL;
    er_rc rc = ER_OK;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        rc = er_fail(err, ER_DB, "%s: %s", sql, sqlite3_errmsg(db));
        goto fail;
    }
    *out = sqlite3_column_int64(st, 0);
fail:
    sqlite3_finalize(st);
    return rc;
}

static size_t migrations_count(void)
{
    return store_migrations_count;
}

static const store_migration *migration_at(size_t i)
{
    return &store_migrations[i];
}

/* Applies every embedded migration newer than user_version, each in its own transaction
 * together with the user_version bump; refuses a database from a newer binary. */
static er_rc migrate(store *s, er_err *err)
{
    sqlite3 *db = s->wdb;
    char *errmsg = NULL;
    int64_t have = 0;
    int known = 0;
    er_rc rc = pragma_int(db, "PRAGMA user_version", &have, err);
    if (rc) goto fail;
    for (size_t i = 0; i < migrations_count(); i++) {
        if (migration_at(i)->version <= known) {
            rc = er_fail(err, ER_INTERNAL, "migration %s is out of order", migration_at(i)->name);
            goto fail;
        }
        known = migration_at(i)->version;
    }
    if (have > known) {
        /* a configuration matter (a downgrade, or db_path shared with a newer binary): a
         * restart cannot help and the file is another binary's data, so it is never moved */
        rc = er_fail(err, ER_CONFIG,
                     "database %s has schema version %" PRId64
                     ", newer than this ei-relay knows (%d): it was written by a newer ei-relay; "
                     "refusing to open it (run the newer version, or point db_path elsewhere)",
                     s->path, have, known);
        goto fail;
    }
    rc = store__check_file(s, have, err);
    if (rc) goto fail;
    rc = store__clean_take(s, err);
    if (rc) goto fail;
    if (have == 0) {
        /* Must precede the first CREATE TABLE to take effect. */
        if (sqlite3_exec(db, "PRAGMA auto_vacuum=INCREMENTAL", NULL, NULL, &errmsg) != SQLITE_OK) {
            rc = er_fail(err, ER_DB, "cannot set auto_vacuum: %s", errmsg ? errmsg : "?");
            goto fail;
        }
    }
    rc = set_wal(db, s->path, err);
    if (rc) goto fail;
    for (size_t i = 0; i < migrations_count(); i++) {
        const store_migration *m = migration_at(i);
        char bump[64];
        if (m->version <= have) continue;
        snprintf(bump, sizeof bump, "PRAGMA user_version=%d", m->version);
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &errmsg) != SQLITE_OK ||
            sqlite3_exec(db, m->sql, NULL, NULL, &errmsg) != SQLITE_OK ||
            sqlite3_exec(db, bump, NULL, NULL, &errmsg) != SQLITE_OK ||
            sqlite3_exec(db, "COMMIT", NULL, NULL, &errmsg) != SQLITE_OK) {
            rc = er_fail(err, ER_DB, "migration %s failed: %s", m->name, errmsg ? errmsg : "?");
            if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
        log_info("store", "applied migration %s", m->name);
    }
fail:
    sqlite3_free(errmsg);
    return rc;
}

static er_rc prepare_all(sqlite3 *db, const char *const *sql, sqlite3_stmt **st, int n, er_err *err)
{
    er_rc rc = ER_OK;
    for (int i = 0; i < n; i++) {
        if (sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i], NULL) !=
            SQLITE_OK) {
            rc = er_fail(err, ER_DB, "cannot prepare \"%.60s\": %s", sql[i], sqlite3_errmsg(db));
            goto fail;
        }
    }
fail:
    return rc;
}

/* False when the connection stayed open (its VFS must then stay registered). */
static bool close_conn(sqlite3 *db, sqlite3_stmt **st, int n)
{
    for (int i = 0; i < n; i++)
        sqlite3_finalize(st[i]);
    if (!db || sqlite3_close(db) == SQLITE_OK) return true;
    log_error("store", "closing connection: %s", sqlite3_errmsg(db));
    return false;
}

/* s->labels_from, the watermark migration 005 recorded (see schema/005_labels.sql). */
static er_rc labels_from_load(store *s, er_err *err)
{
    sqlite3_stmt *st = s->wst[WSTMT_META_GET];
    er_rc rc = ER_OK;
    sqlite3_bind_text(st, 1, "labels_packed_from", -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0)
        s->labels_from = sqlite3_column_int64(st, 0);
    else if (src == SQLITE_ROW || src == SQLITE_DONE)
        rc = er_fail(err, ER_DB, "database %s: meta labels_packed_from is missing or bad", s->path);
    else
        rc = er_fail(err, store__db_error(s, s->wdb, src, "reading meta"),
                     "database %s: cannot read meta: %s", s->path, sqlite3_errmsg(s->wdb));
    stmt_done(st);
    return rc;
}

/* The writer connection, checked and migrated; on corruption s->bad says why. */
static er_rc open_writer(store *s, er_err *err)
{
    er_rc rc = conn_open(s, true, &s->wdb, err);
    if (rc) goto fail;
    rc = migrate(s, err);
    /* a file SQLite cannot read fails in the first statement that reads it, wherever */
    if (rc == ER_DB) store__note_bad(s, sqlite3_extended_errcode(s->wdb), sqlite3_errmsg(s->wdb));
    /* a sound file (even one refused) is closed as usual: no empty -wal/-shm left behind */
    if (!s->bad[0]) sqlite3_db_config(s->wdb, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, NULL);
    if (rc) goto fail;
    rc = prepare_all(s->wdb, store__writer_sql, s->wst, WSTMT__N, err);
    if (rc) goto fail;
    rc = labels_from_load(s, err);
    if (rc) goto fail;
    store__age_open(s);
fail:
    return rc;
}

er_rc store__db_open(store *s, er_err *err)
{
    er_rc rc = util_mkdir_parents(s->path, "database", err);
    if (rc) goto fail;
    /* With synchronous=NORMAL SQLite publishes a commit's frames without syncing the WAL: the
     * writes must reach the file at once, so that mode keeps the default VFS. */
    if (s->sync_full) rc = store__walbuf_create(&s->walbuf, err);
    if (rc) goto fail;
    rc = open_writer(s, err);
    if (rc == ER_DB && s->bad[0] && s->recover) {
        close_conn(s->wdb, s->wst, WSTMT__N);
        s->wdb = NULL;
        memset(s->wst, 0, sizeof s->wst);
        rc = store__move_aside(s, err);
        if (rc) goto fail;
        rc = open_writer(s, err);
    } else if (rc == ER_DB && s->bad[0]) {
        rc = er_fail(err, ER_DB,
                     "database %s is corrupt or not a database (%s); left untouched (the service "
                     "moves it aside at start and creates a fresh one)",
                     s->path, s->bad);
    }
    if (rc) goto fail;

    s->readers = calloc((size_t)s->n_readers, sizeof *s->readers);
    s->free_idx = calloc((size_t)s->n_readers, sizeof *s->free_idx);
    if (!s->readers || !s->free_idx) {
        rc = er_fail(err, ER_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < s->n_readers; i++) {
        reader *r = &s->readers[i];
        r->owner = s;
        rc = conn_open(s, false, &r->db, err);
        if (rc) goto fail;
        rc = set_wal(r->db, s->path, err);
        if (rc) goto fail;
        rc = prepare_all(r->db, store__reader_sql, r->st, RSTMT__N, err);
        if (rc) goto fail;
        s->free_idx[s->n_free++] = i;
    }
fail:
    return rc;
}

void store__db_close(store *s)
{
    for (int i = 0; s->readers && i < s->n_readers; i++)
        close_conn(s->readers[i].db, s->readers[i].st, RSTMT__N);
    /* the age clock's last mark, when this run wrote any: a restart in this boot continues
     * from it to the ms */
    if (s->opened && !s->bad[0] && s->wdb && s->age_saved) store__age_save(s, store__age_now(s));
    store__clean_mark(s);
    if (close_conn(s->wdb, s->wst, WSTMT__N)) store__walbuf_destroy(s->walbuf);
    free(s->readers);
    free(s->free_idx);
}

/* ---- reader pool ---- */

reader *store__reader_get(store *s)
{
    pthread_mutex_lock(&s->pool_mu);
    while (s->n_free == 0)
        pthread_cond_wait(&s->pool_cv, &s->pool_mu);
    reader *r = &s->readers[s->free_idx[--s->n_free]];
    pthread_mutex_unlock(&s->pool_mu);
    return r;
}

void store__reader_put(store *s, reader *r)
{
    pthread_mutex_lock(&s->pool_mu);
    s->free_idx[s->n_free++] = (int)(r - s->readers);
    pthread_cond_signal(&s->pool_cv);
    pthread_mutex_unlock(&s->pool_mu);
}
