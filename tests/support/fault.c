/* fault.c - the counters and the three hooks of fault.h: the --wrap'ed allocators of the
 * project's code, SQLite's allocator and VFS, and cJSON's hooks. Test support only: linked into
 * the fault test binary, never into the product. */
#include "fault.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_alloc.h"

#define BIT(k) (1u << (k))
#define DISK_CHANGES (BIT(FAULT_WRITE) | BIT(FAULT_FULL)) /* the kinds that count writes */

static atomic_int g_kind = -1; /* the armed kind, -1 = none */
static atomic_long g_target, g_count;
static atomic_bool g_hit, g_paused;

/* One event that may fail if any kind in mask is armed: true = make it fail. */
static bool fault_take(unsigned mask)
{
    int k = atomic_load(&g_kind);
    if (k < 0 || !(mask & BIT(k)) || atomic_load(&g_paused)) return false;
    long c = atomic_fetch_add(&g_count, 1) + 1;
    long target = atomic_load(&g_target);
    if (target <= 0 || c < target || (c > target && k != FAULT_FULL)) return false;
    atomic_store(&g_hit, true);
    return true;
}

void fault_arm(fault_kind k, long n)
{
    atomic_store(&g_kind, -1);
    atomic_store(&g_count, 0);
    atomic_store(&g_target, n > 0 ? n : -1);
    atomic_store(&g_hit, false);
    atomic_store(&g_paused, false);
    atomic_store(&g_kind, (int)k);
}

void fault_pause(bool paused)
{
    atomic_store(&g_paused, paused);
}

long fault_disarm(void)
{
    atomic_store(&g_kind, -1);
    return atomic_load(&g_count);
}

bool fault_hit(void)
{
    return atomic_load(&g_hit);
}

const char *fault_kind_name(fault_kind k)
{
    static const char *const names[FAULT__N] = {"alloc", "io", "write", "full"};
    return k < FAULT__N ? names[k] : "?";
}

/* ---- the project's allocations: ld --wrap=malloc,... sends the core library's (and this
 * binary's) calls here; __real_* are libc's. ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n)
{
    return fault_take(BIT(FAULT_ALLOC)) ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fault_take(BIT(FAULT_ALLOC)) ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    /* realloc(p, 0) frees: not an allocation that can fail */
    if (p && n == 0) return __real_realloc(p, n);
    return fault_take(BIT(FAULT_ALLOC)) ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return fault_take(BIT(FAULT_ALLOC)) ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return fault_take(BIT(FAULT_ALLOC)) ? NULL : __real_strndup(s, n);
}

/* ---- SQLite's allocator: libc's malloc with a size header (SQLite asks for xSize) ---- */

#define SQ_HDR 16 /* keeps the 16-byte alignment of malloc */

static void *sq_malloc(int n)
{
    if (fault_take(BIT(FAULT_ALLOC))) return NULL;
    unsigned char *p = __real_malloc((size_t)n + SQ_HDR);
    if (!p) return NULL;
    memcpy(p, &n, sizeof n);
    return p + SQ_HDR;
}

static void sq_free(void *p)
{
    if (p) free((unsigned char *)p - SQ_HDR);
}

static void *sq_realloc(void *p, int n)
{
    if (fault_take(BIT(FAULT_ALLOC))) return NULL;
    unsigned char *q = __real_realloc((unsigned char *)p - SQ_HDR, (size_t)n + SQ_HDR);
    if (!q) return NULL;
    memcpy(q, &n, sizeof n);
    return q + SQ_HDR;
}

static int sq_size(void *p)
{
    int n;
    memcpy(&n, (unsigned char *)p - SQ_HDR, sizeof n);
    return n;
}

static int sq_roundup(int n)
{
    return (n + 7) & ~7;
}

static int sq_init(void *arg)
{
    (void)arg;
    return SQLITE_OK;
}

static void sq_shutdown(void *arg)
{
    (void)arg;
}

/* ---- SQLite's files: a VFS in front of the real default one ---- */

typedef struct ffile {
    sqlite3_file base;
    sqlite3_file *real; /* the real VFS's file, right after this struct (szOsFile) */
} ffile;

static sqlite3_vfs *g_real;

#define REAL(f) (((ffile *)(f))->real)

/* The disk call of an event mask fails: errno for xGetLastError (the product tells a full disk
 * by it), and the code to return. */
static bool io_fails(unsigned mask, int eno)
{
    if (!fault_take(mask)) return false;
    errno = eno;
    return true;
}

static int f_close(sqlite3_file *f)
{
    return REAL(f)->pMethods->xClose(REAL(f));
}

static int f_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    if (io_fails(BIT(FAULT_IO), EIO)) return SQLITE_IOERR_READ;
    return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int f_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    if (io_fails(BIT(FAULT_IO), EIO)) return SQLITE_IOERR_WRITE;
    if (io_fails(DISK_CHANGES, ENOSPC)) return SQLITE_FULL;
    return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    if (io_fails(BIT(FAULT_IO), EIO)) return SQLITE_IOERR_TRUNCATE;
    if (io_fails(DISK_CHANGES, ENOSPC)) return SQLITE_IOERR_TRUNCATE;
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int f_sync(sqlite3_file *f, int flags)
{
    if (io_fails(BIT(FAULT_IO), EIO)) return SQLITE_IOERR_FSYNC;
    if (io_fails(DISK_CHANGES, ENOSPC)) return SQLITE_IOERR_FSYNC;
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int f_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    if (io_fails(BIT(FAULT_IO), EIO)) return SQLITE_IOERR_FSTAT;
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
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
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
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

static int f_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
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
    return REAL(f)->pMethods->xFetch(REAL(f), off, n, out);
}

static int f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods g_io = {3,
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
    (void)v;
    ffile *ff = (ffile *)f;
    ff->real = (sqlite3_file *)(ff + 1);
    int rc = g_real->xOpen(g_real, name, ff->real, flags, out);
    /* SQLite calls xClose only when pMethods is set: mirror the real file's */
    ff->base.pMethods = ff->real->pMethods ? &g_io : NULL;
    return rc;
}

static int v_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    (void)v;
    return g_real->xDelete(g_real, name, sync_dir);
}

static int v_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return g_real->xAccess(g_real, name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return g_real->xFullPathname(g_real, name, n, out);
}

static void *v_dlopen(sqlite3_vfs *v, const char *name)
{
    (void)v;
    return g_real->xDlOpen(g_real, name);
}

static void v_dlerror(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    g_real->xDlError(g_real, n, out);
}

static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    return g_real->xDlSym(g_real, h, sym);
}

static void v_dlclose(sqlite3_vfs *v, void *h)
{
    (void)v;
    g_real->xDlClose(g_real, h);
}

static int v_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return g_real->xRandomness(g_real, n, out);
}

static int v_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return g_real->xSleep(g_real, us);
}

static int v_current_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return g_real->xCurrentTime(g_real, out);
}

static int v_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return g_real->xGetLastError(g_real, n, out);
}

static int v_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return g_real->xCurrentTimeInt64(g_real, out);
}

static sqlite3_vfs g_vfs = {
    .iVersion = 2,
    .zName = "ei-fault",
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

bool fault_install(void)
{
    static const sqlite3_mem_methods mem = {sq_malloc,  sq_free, sq_realloc,  sq_size,
                                            sq_roundup, sq_init, sq_shutdown, NULL};
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &mem) != SQLITE_OK) {
        fprintf(stderr, "fault: SQLite refused the allocator (already initialised?)\n");
        return false;
    }
    g_real = sqlite3_vfs_find(NULL);
    if (!g_real || g_real->iVersion < 2) {
        fprintf(stderr, "fault: no default SQLite VFS to wrap\n");
        return false;
    }
    g_vfs.szOsFile = (int)sizeof(ffile) + g_real->szOsFile;
    g_vfs.mxPathname = g_real->mxPathname;
    if (sqlite3_vfs_register(&g_vfs, 1) != SQLITE_OK) {
        fprintf(stderr, "fault: cannot register the VFS\n");
        return false;
    }
    /* cJSON through the product's own hook: its malloc is wrapped like the rest */
    json_alloc_install();
    return true;
}
