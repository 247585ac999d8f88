/* store_walbuf.c - the writer connection's VFS: a thin wrapper around the default one that
 * gathers the writer's writes to the WAL file in memory and hands them to the real file as ONE
 * write when SQLite syncs it. SQLite writes each WAL frame as two writes (its 24-byte header,
 * then the page); on this project's targets every system call is dear, so a commit of ~15 puts
 * went from ~55 pwrite calls to one (to one per 128 KiB for a larger one).
 *
 * Why this loses nothing: with synchronous=FULL (the only mode the store uses this VFS in; with
 * NORMAL, SQLite publishes frames in the wal-index without a sync, so nothing may wait) SQLite
 * syncs the WAL at every commit BEFORE it publishes the commit's frames in the wal-index, and a
 * reader reads only published frames. The buffer is written out (in the order the bytes end up
 * the same as if each write had been made at once) before anything can observe the file:
 * xSync, xRead, xFileSize, xTruncate, xFileControl, xFetch, xClose; before a write that is not
 * inside or right after the buffered range; when the buffer would pass its cap (a large
 * commit: written out and continued); and before the connection gives up any shm lock (so a
 * transaction rolled back after a cache spill leaves nothing buffered once another writer may
 * take the write lock). A failed write-out is the error of the call that caused it (a commit's
 * xSync: SQLite rolls back, the put fails, nothing was acknowledged) and drops the buffer
 * (bytes no published frame covers).
 *
 * Files other than the main database and its WAL are opened straight into SQLite's memory with
 * the real VFS's own methods; the main database is wrapped only to see its shm unlocks.
 *
 * Ownership: store_walbuf_create makes and registers a VFS with a unique name (one per store,
 * used by its writer connection only, one thread at a time); store__walbuf_destroy unregisters
 * and frees it after the connection closed. */
#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>

#define WALBUF_FIRST (64 * 1024) /* the buffer's first size; it grows up to the cap */
/* A larger commit is written out in pieces of at most this. SQLite's unix VFS writes at most
 * 0x1ffff bytes per xWrite (seekAndWriteFd asserts it and masks the length: a longer one
 * writes the length modulo 128 KiB and fails as a short write). 31 frames of 4 KiB pages: more
 * than the ~15-put batches of durable ingest need. */
#define WALBUF_CAP 0x1ffff

typedef struct walfile walfile;

struct store_walbuf {
    sqlite3_vfs vfs; /* first: SQLite hands it back to the callbacks */
    sqlite3_vfs *real;
    walfile *wal; /* the WAL file open through this VFS, NULL when none */
    char name[48];
};

/* One open main database or WAL file; the real VFS's file right after it (szOsFile). */
struct walfile {
    sqlite3_file base;
    sqlite3_file *real;
    store_walbuf *wb;
    bool is_wal;
    unsigned char *buf; /* is_wal: the bytes of [off, off + len) not yet written; owned */
    size_t len, cap;
    sqlite3_int64 off;
};

#define REAL(f) (((walfile *)(f))->real)

/* Writes the buffer out as one write; on failure the bytes are dropped all the same. */
static int flush(walfile *w)
{
    if (!w->len) return SQLITE_OK;
    int rc = w->real->pMethods->xWrite(w->real, w->buf, (int)w->len, w->off);
    w->len = 0;
    return rc;
}

/* Room for need bytes in the buffer (need <= WALBUF_CAP); false when memory is short. */
static bool reserve(walfile *w, size_t need)
{
    if (need <= w->cap) return true;
    size_t cap = w->cap ? w->cap : WALBUF_FIRST;
    while (cap < need)
        cap *= 2;
    if (cap > WALBUF_CAP) cap = WALBUF_CAP;
    unsigned char *p = realloc(w->buf, cap);
    if (!p) return false;
    w->buf = p;
    w->cap = cap;
    return true;
}

static int f_close(sqlite3_file *f)
{
    walfile *w = (walfile *)f;
    int rc = w->is_wal ? flush(w) : SQLITE_OK;
    int crc = w->real->pMethods->xClose(w->real);
    if (w->is_wal) {
        free(w->buf);
        w->buf = NULL;
        w->cap = 0;
        if (w->wb->wal == w) w->wb->wal = NULL;
    }
    return rc != SQLITE_OK ? rc : crc;
}

static int f_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    walfile *w = (walfile *)f;
    int rc = w->is_wal ? flush(w) : SQLITE_OK;
    if (rc != SQLITE_OK) return rc;
    return w->real->pMethods->xRead(w->real, buf, n, off);
}

/* Gathered when it lands inside or right after the buffered range and the result stays under
 * the cap; otherwise the buffer is written out first and the write starts a new one (or, larger
 * than the cap, goes straight through). */
static int f_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    walfile *w = (walfile *)f;
    if (!w->is_wal || n <= 0) return w->real->pMethods->xWrite(w->real, buf, n, off);
    size_t amt = (size_t)n;
    bool joins = w->len && off >= w->off && off <= w->off + (sqlite3_int64)w->len;
    size_t at = joins ? (size_t)(off - w->off) : 0;
    if (!joins || at + amt > WALBUF_CAP) {
        int rc = flush(w);
        if (rc != SQLITE_OK) return rc;
        w->off = off;
        at = 0;
    }
    if (amt > WALBUF_CAP || !reserve(w, at + amt)) {
        int rc = flush(w);
        if (rc != SQLITE_OK) return rc;
        return w->real->pMethods->xWrite(w->real, buf, n, off);
    }
    memcpy(w->buf + at, buf, amt);
    if (at + amt > w->len) w->len = at + amt;
    return SQLITE_OK;
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    walfile *w = (walfile *)f;
    int rc = w->is_wal ? flush(w) : SQLITE_OK;
    if (rc != SQLITE_OK) return rc;
    return w->real->pMethods->xTruncate(w->real, size);
}

/* The commit's write-out: its error is the sync's, so the commit fails and rolls back. */
static int f_sync(sqlite3_file *f, int flags)
{
    walfile *w = (walfile *)f;
    int rc = w->is_wal ? flush(w) : SQLITE_OK;
    if (rc != SQLITE_OK) return rc;
    return w->real->pMethods->xSync(w->real, flags);
}

static int f_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    walfile *w = (walfile *)f;
    int rc = w->is_wal ? flush(w) : SQLITE_OK;
    if (rc != SQLITE_OK) return rc;
    return w->real->pMethods->xFileSize(w->real, size);
}

static int f_lock(sqlite3_file *f, int lock)
{
    return REAL(f)->pMethods->xLock(REAL(f), lock);
}

static int f_unlock(sqlite3_file *f, int lock)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}

static int f_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int f_file_control(sqlite3_file *f, int op, void *arg)
{
    walfile *w = (walfile *)f;
    int rc = w->is_wal ? flush(w) : SQLITE_OK;
    if (rc != SQLITE_OK) return rc;
    return w->real->pMethods->xFileControl(w->real, op, arg);
}

static int f_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int f_device_chars(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int f_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **out)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, out);
}

/* Before the main database's connection gives up a shm lock (the WAL write lock at the end of a
 * transaction among them), nothing of its WAL stays buffered: once it lets go, another writer
 * may write the WAL. After a commit the buffer is already empty; a rolled-back transaction's
 * spilled frames are written out as they would have been without the buffer (an error there
 * changes nothing: no published frame covers them). */
static int f_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    walfile *w = (walfile *)f;
    if ((flags & SQLITE_SHM_UNLOCK) && w->wb->wal) (void)flush(w->wb->wal);
    return w->real->pMethods->xShmLock(w->real, offset, n, flags);
}

static void f_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int f_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int f_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
    walfile *w = (walfile *)f;
    int rc = w->is_wal ? flush(w) : SQLITE_OK;
    if (rc != SQLITE_OK) return rc;
    return w->real->pMethods->xFetch(w->real, off, n, out);
}

static int f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods walbuf_io = {3,
                                             f_close,
                                             f_read,
                                             f_write,
                                             f_truncate,
                                             f_sync,
                                             f_file_size,
                                             f_lock,
                                             f_unlock,
                                             f_check_reserved,
                                             f_file_control,
                                             f_sector_size,
                                             f_device_chars,
                                             f_shm_map,
                                             f_shm_lock,
                                             f_shm_barrier,
                                             f_shm_unmap,
                                             f_fetch,
                                             f_unfetch};

static int v_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out)
{
    store_walbuf *wb = (store_walbuf *)v;
    bool is_wal = (flags & SQLITE_OPEN_WAL) && !wb->wal;
    if (!is_wal && !(flags & SQLITE_OPEN_MAIN_DB))
        return wb->real->xOpen(wb->real, name, f, flags, out);
    walfile *w = (walfile *)f;
    memset(w, 0, sizeof *w);
    w->real = (sqlite3_file *)(w + 1);
    w->wb = wb;
    int rc = wb->real->xOpen(wb->real, name, w->real, flags, out);
    /* SQLite calls xClose only when pMethods is set; the wrapper needs the real one's version */
    if (!w->real->pMethods) return rc;
    if (w->real->pMethods->iVersion < 3) {
        w->real->pMethods->xClose(w->real);
        return SQLITE_CANTOPEN;
    }
    w->base.pMethods = &walbuf_io;
    w->is_wal = is_wal;
    if (is_wal) wb->wal = w;
    return rc;
}

static int v_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    sqlite3_vfs *r = ((store_walbuf *)v)->real;
    return r->xDelete(r, name, sync_dir);
}

static int v_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    sqlite3_vfs *r = ((store_walbuf *)v)->real;
    return r->xAccess(r, name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    sqlite3_vfs *r = ((store_walbuf *)v)->real;
    return r->xFullPathname(r, name, n, out);
}

static void *v_dlopen(sqlite3_vfs *v, const char *name)
{
    sqlite3_vfs *r = ((store_walbuf *)v)->real;
    return r->xDlOpen(r, name);
}

static void v_dlerror(sqlite3_vfs *v, int n, char *out)
{
    sqlite3_vfs *r = ((store_walbuf *)v)->real;
    r->xDlError(r, n, out);
}

static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    sqlite3_vfs *r = ((store_walbuf *)v)->real;
    return r->xDlSym(r, h, sym);
}

static void v_dlclose(sqlite3_vfs *v, void *h)
{
    sqlite3_vfs *r = ((store_walbuf *)v)->real;
    r->xDlClose(r, h);
}

static int v_randomness(sqlite3_vfs *v, int n, char *out)
{
    sqlite3_vfs *r = ((store_walbuf *)v)->real;
    return r->xRandomness(r, n, out);
}

static int v_sleep(sqlite3_vfs *v, int us)
{
    sqlite3_vfs *r = ((store_walbuf *)v)->real;
    return r->xSleep(r, us);
}

static int v_current_time(sqlite3_vfs *v, double *out)
{
    sqlite3_vfs *r = ((store_walbuf *)v)->real;
    return r->xCurrentTime(r, out);
}

/* The store tells a full disk by the errno behind an I/O error: the real VFS's. */
static int v_last_error(sqlite3_vfs *v, int n, char *out)
{
    sqlite3_vfs *r = ((store_walbuf *)v)->real;
    return r->xGetLastError(r, n, out);
}

static int v_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    sqlite3_vfs *r = ((store_walbuf *)v)->real;
    return r->xCurrentTimeInt64(r, out);
}

er_rc store__walbuf_create(store_walbuf **out, er_err *err)
{
    store_walbuf *wb = NULL;
    er_rc rc = ER_OK;
    sqlite3_vfs *real = sqlite3_vfs_find(NULL);
    if (!real || real->iVersion < 2) {
        rc = er_fail(err, ER_DB, "no default SQLite VFS to wrap");
        goto fail;
    }
    wb = calloc(1, sizeof *wb);
    if (!wb) {
        rc = er_fail(err, ER_NOMEM, "out of memory");
        goto fail;
    }
    snprintf(wb->name, sizeof wb->name, "eir-walbuf-%p", (void *)wb);
    wb->real = real;
    wb->vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(walfile) + real->szOsFile,
        .mxPathname = real->mxPathname,
        .zName = wb->name,
        .xOpen = v_open,
        .xDelete = v_delete,
        .xAccess = v_access,
        .xFullPathname = v_full_pathname,
        .xDlOpen = v_dlopen,
        .xDlError = v_dlerror,
        .xDlSym = v_dlsym,
        .xDlClose = v_dlclose,
        .xRandomness = v_randomness,
        .xSleep = v_sleep,
        .xCurrentTime = v_current_time,
        .xGetLastError = v_last_error,
        .xCurrentTimeInt64 = v_current_time64,
    };
    int src = sqlite3_vfs_register(&wb->vfs, 0);
    if (src != SQLITE_OK) {
        rc = er_fail(err, src == SQLITE_NOMEM ? ER_NOMEM : ER_DB, "cannot register the WAL VFS: %s",
                     sqlite3_errstr(src));
        goto fail;
    }
    *out = wb;
    wb = NULL;
fail:
    free(wb);
    return rc;
}

const char *store__walbuf_name(const store_walbuf *wb)
{
    return wb ? wb->name : NULL;
}

void store__walbuf_destroy(store_walbuf *wb)
{
    if (!wb) return;
    sqlite3_vfs_unregister(&wb->vfs);
    free(wb);
}
