/* guidfiles.c - see guidfiles.h. Files are written to a temporary name, fsynced and renamed,
 * so an interrupted export never leaves a half-written pair under a real guid name.
 * Export often runs as root into a directory an operator names, so nothing here follows a link
 * someone could have planted there: the directory is opened once and checked (owned by this user
 * or root, not writable by everyone without the sticky bit), every file is created exclusively
 * relative to it (util_write_file_at) and import opens its inputs with O_NOFOLLOW, regular
 * files only. */
#include "tools/guidfiles.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/device.h"
#include "core/log.h"
#include "core/util.h"
#include "ingest/normalize.h"
#include "media/image.h"
#include "model/message.h"

#define GUIDFILES_MAX_FILE (64 * 1024 * 1024)

/* Opens dir (export: created first if missing) as a directory descriptor, refusing one that
 * another user could change under us: owned by someone other than this user or root, writable
 * by every user without the sticky bit, or reached through a symbolic link such a user owns. */
static er_rc open_dir_checked(const char *dir, int *out, er_err *err)
{
    struct stat ls, st;
    uid_t me = geteuid();
    int fd = -1;
    er_rc rc = ER_IO;
    if (lstat(dir, &ls) != 0) {
        er_fail(err, rc, "cannot open %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (S_ISLNK(ls.st_mode) && ls.st_uid != me && ls.st_uid != 0) {
        er_fail(err, rc = ER_INVALID,
                "refusing %s: a symbolic link owned by uid %lu (neither this user nor root)", dir,
                (unsigned long)ls.st_uid);
        goto fail;
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        er_fail(err, rc, "cannot open %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (st.st_uid != me && st.st_uid != 0) {
        er_fail(err, rc = ER_INVALID,
                "refusing %s: owned by uid %lu, neither this user (uid %lu) nor root; its owner "
                "could swap files in it while they are used",
                dir, (unsigned long)st.st_uid, (unsigned long)me);
        goto fail;
    }
    if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
        er_fail(err, rc = ER_INVALID, "refusing %s: every user may write to it (mode %03o)", dir,
                (unsigned)(st.st_mode & 0777));
        goto fail;
    }
    *out = fd;
    return ER_OK;
fail:
    if (fd >= 0) close(fd);
    return rc;
}

typedef struct export_ctx {
    const char *dir; /* for messages */
    int dirfd;
    const config *cfg;
    guidfiles_stats *stats;
    er_err *err;
} export_ctx;

static er_rc export_one(void *arg, const inference *inf)
{
    export_ctx *x = arg;
    util_buf json = {0};
    char name[64];
    message_opts mo = {.s3_bucket = x->cfg->s3_bucket, .full_fidelity = true};
    er_rc rc = message_inference_json(inf, &mo, &json);
    if (rc) goto fail;
    const char *step = "write";
    snprintf(name, sizeof name, "%s.json", inf->guid);
    rc = util_write_file_at(x->dirfd, name, json.data, json.len, 0600, (uid_t)-1, (gid_t)-1, &step);
    if (rc) goto fail;
    if (inf->image.data) {
        snprintf(name, sizeof name, "%s.img", inf->guid);
        rc = util_write_file_at(x->dirfd, name, inf->image.data, inf->image.len, 0600, (uid_t)-1,
                                (gid_t)-1, &step);
        if (rc) goto fail;
    }
    x->stats->done++;
fail:
    if (rc) er_fail(x->err, rc, "cannot %s %s/%s: %s", step, x->dir, name, strerror(errno));
    util_buf_free(&json);
    return rc;
}

er_rc guidfiles_export(store *st, const char *dir, const config *cfg, guidfiles_stats *stats,
                       er_err *err)
{
    int dfd = -1;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return er_fail(err, ER_IO, "cannot create %s: %s", dir, strerror(errno));
    er_rc rc = open_dir_checked(dir, &dfd, err);
    if (rc) return rc;
    export_ctx x = {.dir = dir, .dirfd = dfd, .cfg = cfg, .stats = stats, .err = err};
    rc = store_foreach(st, export_one, &x);
    fsync(dfd); /* make the renames durable too */
    close(dfd);
    return rc;
}

/* Reads the whole regular file name in dirfd up to GUIDFILES_MAX_FILE, never through a
 * symbolic link (ER_INVALID) or from a FIFO or device (ER_INVALID); ER_NOTFOUND when it does
 * not exist. *data is malloc'ed (NUL-terminated). */
static er_rc read_file(int dir_fd, const char *name, uint8_t **data, size_t *len)
{
    er_rc rc = ER_IO;
    uint8_t *buf = NULL;
    FILE *f = NULL;
    struct stat sb;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it */
    int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT ? ER_NOTFOUND : errno == ELOOP ? ER_INVALID : ER_IO;
        goto fail;
    }
    if (fstat(fd, &sb) != 0) goto fail;
    if (!S_ISREG(sb.st_mode)) {
        rc = ER_INVALID;
        goto fail;
    }
    if (!(f = fdopen(fd, "rb"))) goto fail;
    fd = -1;
    if (sb.st_size > GUIDFILES_MAX_FILE) {
        rc = ER_TOOBIG;
        goto fail;
    }
    buf = malloc((size_t)sb.st_size + 1);
    if (!buf) {
        rc = ER_NOMEM;
        goto fail;
    }
    size_t n = fread(buf, 1, (size_t)sb.st_size, f);
    if (n != (size_t)sb.st_size) goto fail;
    buf[n] = 0;
    *data = buf;
    *len = n;
    buf = NULL;
    rc = ER_OK;
fail:
    free(buf);
    if (f) fclose(f);
    if (fd >= 0) close(fd);
    return rc;
}

/* What a read_file failure means, for the log line. */
static const char *read_failure(er_rc rc)
{
    return rc == ER_INVALID  ? "not a regular file (symbolic links are not followed)"
           : rc == ER_TOOBIG ? "larger than 64 MiB"
                             : "cannot read it";
}

static er_rc import_one(store *st, const char *dir, int dir_fd, const char *json_name,
                        const char *device, const normalize_limits *lim, guidfiles_stats *stats)
{
    char name[300], stem[256];
    uint8_t *json = NULL, *img = NULL;
    size_t json_len = 0, img_len = 0;
    inference *inf = NULL;
    er_err err = {{0}};
    size_t stem_len = strlen(json_name) - strlen(".json");
    if (stem_len >= sizeof stem) return ER_TOOBIG;
    memcpy(stem, json_name, stem_len);
    stem[stem_len] = 0;

    er_rc rc = read_file(dir_fd, json_name, &json, &json_len);
    if (rc) {
        er_fail(&err, rc, "%s", read_failure(rc));
        goto fail;
    }
    normalize_opts no = {
        .device = device, .source = "import", .now_ms = util_now_ms(), .lim = *lim};
    rc = normalize_json((const char *)json, json_len, &no, &inf, &err);
    if (rc) goto fail;
    /* The old components named the pair after the guid; keep it when the JSON has no id. */
    if (util_is_uuid(stem) && !strstr((const char *)json, "\"id\"")) {
        for (size_t i = 0; i <= UTIL_UUID_LEN; i++)
            inf->guid[i] = (char)(stem[i] >= 'A' && stem[i] <= 'F' ? stem[i] + 32 : stem[i]);
    }
    snprintf(name, sizeof name, "%s.img", stem);
    rc = read_file(dir_fd, name, &img, &img_len);
    if (rc == ER_NOTFOUND) {
        rc = ER_OK; /* a result without an image */
    } else if (rc) {
        er_fail(&err, rc, "%s: %s", name, read_failure(rc));
        goto fail;
    } else {
        rc = media_probe(img, img_len, &inf->image, &err);
        if (rc) goto fail;
        free(inf->image.data);
        inf->image.data = img;
        inf->image.len = img_len;
        img = NULL;
    }
    store_put_result res;
    rc = store_put(st, inf, &res); /* takes inf */
    inf = NULL;
    if (rc == ER_OK) rc = res.rc;
    if (rc) {
        er_fail(&err, rc, "cannot store it (%s)", er_rc_name(rc));
        goto fail;
    }
    if (res.duplicate)
        stats->skipped++;
    else
        stats->done++;
fail:
    if (rc) {
        log_warn("import", "%s/%s: %s", dir, json_name, err.msg);
        stats->failed++;
    }
    inference_destroy(inf);
    free(json);
    free(img);
    return rc;
}

er_rc guidfiles_import(store *st, const char *dir, const config *cfg, guidfiles_stats *stats,
                       er_err *err)
{
    char device[256];
    const normalize_limits lim = normalize_limits_of(cfg);
    if (device_name_resolve(cfg->device_name, cfg->device_mac_suffix, device, sizeof device))
        return er_fail(err, ER_CONFIG, "device_name is too long");
    int dfd = -1;
    er_rc rc = open_dir_checked(dir, &dfd, err);
    if (rc) return rc;
    DIR *d = fdopendir(dfd); /* takes dfd */
    if (!d) {
        close(dfd);
        return er_fail(err, ER_IO, "cannot open %s: %s", dir, strerror(errno));
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || n <= 5 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
        er_rc one = import_one(st, dir, dirfd(d), e->d_name, device, &lim, stats);
        if (one == ER_FULL) { /* no point going on: every later put fails the same way */
            rc = er_fail(err, ER_FULL, "the disk is full; imported %lld so far",
                         (long long)stats->done);
            break;
        }
    }
    closedir(d);
    if (!rc && stats->failed)
        rc = er_fail(err, ER_INVALID, "%lld files could not be imported (see the log)",
                     (long long)stats->failed);
    return rc;
}
