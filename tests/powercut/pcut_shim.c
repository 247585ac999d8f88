/* pcut_shim.c - an LD_PRELOAD library for the power-cut test (tests/blackbox/test_crashloop.py):
 * it keeps an undo log of every write the process makes to the database and its WAL/rollback
 * journal that no fsync has made durable yet, so that after a kill -9 the test can put the files
 * back the way a power cut could leave them (harness/powercut.py: every unsynced write dropped,
 * or a seeded random subset of them).
 *
 * Environment: EI_PCUT_DB, the database path as the relay opens it (the files tracked are it,
 * <db>-wal and <db>-journal; the -shm file is rebuilt by SQLite after a crash and not tracked);
 * EI_PCUT_LOG, an existing directory for the undo logs (<basename>.undo, one per tracked file).
 * Unset: the shim does nothing. EI_PCUT_KILL_AT=N: the process kills itself (SIGKILL) right after
 * its N-th write to a tracked file, so the cut lands inside a commit or a checkpoint, between a
 * write and its fsync, where a kill from outside rarely does (SQLite's crash tests do the same).
 *
 * The model: before each write (write, pwrite, pwrite64, ftruncate) to a tracked file, a record
 * with the old bytes of the range and the file's old size is appended to the file's undo log (a
 * plain write: a kill -9 loses nothing the kernel has, so the log is complete at the cut); a
 * successful fsync/fdatasync of any descriptor of the file empties its log (fsync is per inode:
 * every write before it is durable). File creation, renames and unlinks are taken as durable
 * (metadata in ext4's journal). A mutex per file makes "log, then write" and "fsync, then empty
 * the log" atomic against the other threads.
 *
 * Record (native byte order): u32 magic 'PCUT', u32 kind (1 write, 2 truncate), u64 offset (for
 * a truncate: the new length), u64 length, u64 old size, then for a write `length` old bytes
 * (zeros where the range was past the end of the file). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define PCUT_MAGIC 0x54554350u /* "PCUT" */
#define PCUT_FILES 3           /* db, -wal, -journal */
#define PCUT_FDS 4096          /* descriptors above this are not tracked (the relay stays below) */
#define PCUT_PATH_MAX 4096

struct pcut_rec {
    uint32_t magic, kind;
    uint64_t off, len, old_size;
};

struct pcut_file {
    char path[PCUT_PATH_MAX];
    int undo_fd; /* -1 until the file is first opened */
    pthread_mutex_t mu;
};

static struct pcut_file files[PCUT_FILES];
static signed char fd_file[PCUT_FDS]; /* descriptor -> index in files + 1, 0 untracked */
static char log_dir[PCUT_PATH_MAX];
static int enabled;
static long kill_at;         /* 0: never */
static atomic_long n_writes; /* writes to tracked files so far */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;

static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

static void init(void)
{
    real_openat = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, "openat");
    real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
    real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    real_pwrite = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    real_pread = (ssize_t(*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, "pread");
    real_ftruncate = (int (*)(int, off_t))dlsym(RTLD_NEXT, "ftruncate");
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    const char *db = getenv("EI_PCUT_DB"), *dir = getenv("EI_PCUT_LOG");
    if (!db || !dir || !*db || !*dir || strlen(db) + 9 >= PCUT_PATH_MAX ||
        strlen(dir) + 1 >= PCUT_PATH_MAX)
        return;
    static const char *const suffix[PCUT_FILES] = {"", "-wal", "-journal"};
    for (int i = 0; i < PCUT_FILES; i++) {
        strcpy(files[i].path, db);
        strcat(files[i].path, suffix[i]);
        files[i].undo_fd = -1;
        pthread_mutex_init(&files[i].mu, NULL);
    }
    strcpy(log_dir, dir);
    const char *k = getenv("EI_PCUT_KILL_AT");
    kill_at = k ? strtol(k, NULL, 10) : 0;
    enabled = 1;
}

/* The tracked file a descriptor is open on, or NULL. */
static struct pcut_file *tracked(int fd)
{
    pthread_once(&once, init);
    if (!enabled || fd < 0 || fd >= PCUT_FDS) return NULL;
    pthread_mutex_lock(&table_mu);
    int i = fd_file[fd];
    pthread_mutex_unlock(&table_mu);
    return i ? &files[i - 1] : NULL;
}

/* After a successful open: tracks fd when path is one of the files (opens its undo log once). */
static void opened(const char *path, int fd)
{
    pthread_once(&once, init);
    if (!enabled || fd < 0 || fd >= PCUT_FDS || !path) return;
    for (int i = 0; i < PCUT_FILES; i++) {
        if (strcmp(path, files[i].path) != 0) continue;
        pthread_mutex_lock(&files[i].mu);
        if (files[i].undo_fd < 0) {
            char p[PCUT_PATH_MAX * 2];
            const char *base = strrchr(files[i].path, '/');
            base = base ? base + 1 : files[i].path;
            int n = snprintf(p, sizeof p, "%s/%s.undo", log_dir, base);
            if (n > 0 && (size_t)n < sizeof p) /* a cut path would log into another file */
                files[i].undo_fd =
                    real_openat(AT_FDCWD, p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        }
        pthread_mutex_unlock(&files[i].mu);
        pthread_mutex_lock(&table_mu);
        fd_file[fd] = (signed char)(i + 1);
        pthread_mutex_unlock(&table_mu);
        return;
    }
}

/* Appends one record (with the old bytes of [off, off+len) for a write). Caller holds f->mu.
 * A failure to log aborts: a silently incomplete log would make the test lie. */
static void log_change(struct pcut_file *f, int fd, uint32_t kind, uint64_t off, uint64_t len)
{
    struct stat sb;
    if (f->undo_fd < 0 || fstat(fd, &sb) != 0) abort();
    size_t n = kind == 1 ? (size_t)len : 0;
    unsigned char *buf = calloc(1, sizeof(struct pcut_rec) + n);
    if (!buf) abort();
    struct pcut_rec r = {PCUT_MAGIC, kind, off, len, (uint64_t)sb.st_size};
    memcpy(buf, &r, sizeof r);
    if (n && off < (uint64_t)sb.st_size) {
        size_t have = (uint64_t)sb.st_size - off < n ? (size_t)((uint64_t)sb.st_size - off) : n;
        if (real_pread(fd, buf + sizeof r, have, (off_t)off) < 0) abort();
    }
    size_t total = sizeof r + n, done = 0;
    while (done < total) {
        ssize_t w = real_write(f->undo_fd, buf + done, total - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) abort();
        done += (size_t)w;
    }
    free(buf);
}

/* After a write to a tracked file (f->mu held, so the log is complete): the N-th one is the cut. */
static void written(void)
{
    if (kill_at > 0 && atomic_fetch_add(&n_writes, 1) + 1 == kill_at) raise(SIGKILL);
}

/* open and openat: the real openat, then the descriptor tracked when it is one of the files. */
static int open_at(int dirfd, const char *path, int flags, mode_t mode)
{
    pthread_once(&once, init);
    int fd = real_openat(dirfd, path, flags, mode);
    if (path[0] == '/' || dirfd == AT_FDCWD) opened(path, fd);
    return fd;
}

/* The mode argument is there only with O_CREAT or O_TMPFILE. */
#define MODE_ARG(flags, last)                                                                      \
    va_list ap;                                                                                    \
    va_start(ap, last);                                                                            \
    mode_t mode = (flags) & (O_CREAT | O_TMPFILE) ? va_arg(ap, mode_t) : 0;                        \
    va_end(ap)

int open(const char *path, int flags, ...)
{
    MODE_ARG(flags, flags);
    return open_at(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char *path, int flags, ...)
{
    MODE_ARG(flags, flags);
    return open_at(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

int close(int fd)
{
    pthread_once(&once, init);
    if (enabled && fd >= 0 && fd < PCUT_FDS) {
        pthread_mutex_lock(&table_mu);
        fd_file[fd] = 0;
        pthread_mutex_unlock(&table_mu);
    }
    return real_close(fd);
}

ssize_t write(int fd, const void *data, size_t len)
{
    struct pcut_file *f = tracked(fd);
    if (!f) return real_write(fd, data, len);
    pthread_mutex_lock(&f->mu);
    off_t at = lseek(fd, 0, SEEK_CUR);
    if (at >= 0) log_change(f, fd, 1, (uint64_t)at, len);
    ssize_t rc = real_write(fd, data, len);
    written();
    pthread_mutex_unlock(&f->mu);
    return rc;
}

ssize_t pwrite(int fd, const void *data, size_t len, off_t off)
{
    struct pcut_file *f = tracked(fd);
    if (!f) return real_pwrite(fd, data, len, off);
    pthread_mutex_lock(&f->mu);
    log_change(f, fd, 1, (uint64_t)off, len);
    ssize_t rc = real_pwrite(fd, data, len, off);
    written();
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* 64-bit off_t: the two are the same call (as ftruncate64 and open64 below) */
_Static_assert(sizeof(off_t) == sizeof(off64_t), "pwrite64 aliases pwrite");
ssize_t pwrite64(int fd, const void *data, size_t len, off64_t off)
    __attribute__((alias("pwrite")));

int ftruncate(int fd, off_t len)
{
    struct pcut_file *f = tracked(fd);
    if (!f) return real_ftruncate(fd, len);
    pthread_mutex_lock(&f->mu);
    log_change(f, fd, 2, (uint64_t)len, 0);
    int rc = real_ftruncate(fd, len);
    written();
    pthread_mutex_unlock(&f->mu);
    return rc;
}

int ftruncate64(int fd, off64_t len) __attribute__((alias("ftruncate")));

/* fsync and fdatasync: once the data is durable, nothing logged so far can be lost. */
static int synced(int fd, int (*real)(int))
{
    struct pcut_file *f = tracked(fd);
    if (!f) return real(fd);
    pthread_mutex_lock(&f->mu);
    int rc = real(fd);
    if (rc == 0 && f->undo_fd >= 0 && real_ftruncate(f->undo_fd, 0) != 0) abort();
    pthread_mutex_unlock(&f->mu);
    return rc;
}

int fsync(int fd)
{
    pthread_once(&once, init);
    return synced(fd, real_fsync);
}

int fdatasync(int fd)
{
    pthread_once(&once, init);
    return synced(fd, real_fdatasync);
}
