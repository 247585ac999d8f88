/* guidfiles.c - see guidfiles.h. Files are written to a temporary name, fsynced and renamed,
 * so an interrupted export never leaves a half-written pair under a real guid name. */
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

static er_rc write_file_atomic(const char *dir, const char *name, const void *data, size_t len)
{
    char tmp[4096], final[4096];
    er_rc rc = ER_IO;
    int fd = -1;
    if ((size_t)snprintf(final, sizeof final, "%s/%s", dir, name) >= sizeof final ||
        (size_t)snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name) >= sizeof tmp)
        return ER_TOOBIG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) goto fail;
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = errno == ENOSPC ? ER_FULL : ER_IO;
            goto fail;
        }
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) != 0) goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, final) != 0) goto fail;
    return ER_OK;
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
    return rc;
}

typedef struct export_ctx {
    const char *dir;
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
    snprintf(name, sizeof name, "%s.json", inf->guid);
    rc = write_file_atomic(x->dir, name, json.data, json.len);
    if (rc) goto fail;
    if (inf->image.data) {
        snprintf(name, sizeof name, "%s.img", inf->guid);
        rc = write_file_atomic(x->dir, name, inf->image.data, inf->image.len);
        if (rc) goto fail;
    }
    x->stats->done++;
fail:
    if (rc) er_fail(x->err, rc, "cannot write %s/%s: %s", x->dir, name, strerror(errno));
    util_buf_free(&json);
    return rc;
}

er_rc guidfiles_export(store *st, const char *dir, const config *cfg, guidfiles_stats *stats,
                       er_err *err)
{
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        return er_fail(err, ER_IO, "cannot create %s: %s", dir, strerror(errno));
    export_ctx x = {.dir = dir, .cfg = cfg, .stats = stats, .err = err};
    er_rc rc = store_foreach(st, export_one, &x);
    if (rc) return rc;
    /* make the renames durable too */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return ER_OK;
}

/* Reads a whole regular file up to GUIDFILES_MAX_FILE; *data is malloc'ed (NUL-terminated). */
static er_rc read_file(const char *path, uint8_t **data, size_t *len)
{
    er_rc rc = ER_IO;
    uint8_t *buf = NULL;
    FILE *f = fopen(path, "rb");
    struct stat sb;
    if (!f) goto fail;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) goto fail;
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
    return rc;
}

static er_rc import_one(store *st, const char *dir, const char *json_name, const char *device,
                        guidfiles_stats *stats)
{
    char path[4096], stem[256];
    uint8_t *json = NULL, *img = NULL;
    size_t json_len = 0, img_len = 0;
    inference *inf = NULL;
    er_err err = {{0}};
    size_t stem_len = strlen(json_name) - strlen(".json");
    if (stem_len >= sizeof stem) return ER_TOOBIG;
    memcpy(stem, json_name, stem_len);
    stem[stem_len] = 0;

    snprintf(path, sizeof path, "%s/%s", dir, json_name);
    er_rc rc = read_file(path, &json, &json_len);
    if (rc) {
        er_fail(&err, rc, "cannot read the file");
        goto fail;
    }
    normalize_opts no = {.device = device, .source = "import", .now_ms = util_now_ms()};
    rc = normalize_json((const char *)json, json_len, &no, &inf, &err);
    if (rc) goto fail;
    /* The old components named the pair after the guid; keep it when the JSON has no id. */
    if (util_is_uuid(stem) && !strstr((const char *)json, "\"id\"")) {
        for (size_t i = 0; i <= UTIL_UUID_LEN; i++)
            inf->guid[i] = (char)(stem[i] >= 'A' && stem[i] <= 'F' ? stem[i] + 32 : stem[i]);
    }
    snprintf(path, sizeof path, "%s/%s.img", dir, stem);
    if (access(path, F_OK) == 0) {
        rc = read_file(path, &img, &img_len);
        if (rc) {
            er_fail(&err, rc, "cannot read %s.img", stem);
            goto fail;
        }
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
    if (device_name_resolve(cfg->device_name, cfg->device_mac_suffix, device, sizeof device))
        return er_fail(err, ER_CONFIG, "device_name is too long");
    DIR *d = opendir(dir);
    if (!d) return er_fail(err, ER_IO, "cannot open %s: %s", dir, strerror(errno));
    struct dirent *e;
    er_rc rc = ER_OK;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || n <= 5 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
        er_rc one = import_one(st, dir, e->d_name, device, stats);
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
