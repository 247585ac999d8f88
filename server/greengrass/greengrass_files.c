/* greengrass_files.c - the file work of greengrass-setup (greengrass_internal.h): who the run-as
 * user is and what it can read, reading the PEM files the nucleus points at, and writing the
 * copies and greengrass.json atomically, owned by the run-as user. Runs as root in a directory
 * the run-as user owns, so nothing here follows a link that user could have planted. */
#include "greengrass/greengrass_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PW_BUF 16384 /* getpwnam_r/getgrnam_r scratch; an entry is far smaller */

/* A whole decimal number that fits an id, or -1. */
static long long id_number(const char *s)
{
    char *end;
    if (!*s || *s == '-' || *s == '+') return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    return *end || errno || v > 0x7fffffffULL ? -1 : (long long)v;
}

/* The user's name and groups from its passwd entry (none: only gid, and the number as name). */
static void fill_groups(gg_user *u, const struct passwd *pw)
{
    u->n_groups = 1;
    u->groups[0] = u->gid;
    if (!pw) {
        snprintf(u->name, sizeof u->name, "%lu", (unsigned long)u->uid);
        return;
    }
    snprintf(u->name, sizeof u->name, "%s", pw->pw_name);
    int n = GG_GROUPS_MAX;
    if (getgrouplist(pw->pw_name, u->gid, u->groups, &n) < 0) n = GG_GROUPS_MAX; /* the first */
    u->n_groups = n > 0 ? n : 1;
}

er_rc gg__user_resolve(const char *run_as, const char *work_dir, gg_user *u, er_err *err)
{
    char buf[PW_BUF], spec[128];
    struct passwd pwd, *pw = NULL;
    struct group grp, *gr = NULL;
    memset(u, 0, sizeof *u);
    if (!run_as) {
        struct stat st;
        if (stat(work_dir, &st) != 0)
            return er_fail(err, ER_IO, "--work-dir %s: %s", work_dir, strerror(errno));
        u->uid = st.st_uid;
        u->gid = st.st_gid;
        getpwuid_r(u->uid, &pwd, buf, sizeof buf, &pw);
        fill_groups(u, pw);
        return ER_OK;
    }
    if (snprintf(spec, sizeof spec, "%s", run_as) >= (int)sizeof spec)
        return er_fail(err, ER_CONFIG, "--run-as: too long");
    char *group = strchr(spec, ':');
    if (group) *group++ = '\0';
    long long id = id_number(spec);
    if (id >= 0)
        getpwuid_r((uid_t)id, &pwd, buf, sizeof buf, &pw);
    else
        getpwnam_r(spec, &pwd, buf, sizeof buf, &pw);
    if (!pw && id < 0) return er_fail(err, ER_CONFIG, "--run-as: no user \"%.60s\"", spec);
    if (!pw && !group)
        return er_fail(err, ER_CONFIG, "--run-as: user %lld has no passwd entry: give USER:GROUP",
                       id);
    u->uid = pw ? pw->pw_uid : (uid_t)id;
    u->gid = pw ? pw->pw_gid : 0;
    if (group && *group) {
        char gbuf[PW_BUF];
        long long gid = id_number(group);
        if (gid < 0 && (getgrnam_r(group, &grp, gbuf, sizeof gbuf, &gr) != 0 || !gr))
            return er_fail(err, ER_CONFIG, "--run-as: no group \"%.60s\"", group);
        u->gid = gid >= 0 ? (gid_t)gid : gr->gr_gid;
    }
    fill_groups(u, pw);
    return ER_OK;
}

/* Whether st's mode grants u the permission bit (4 read, 1 search): the owner's bits for the
 * owner, else the group's for a member, else the others'. */
static bool granted(const struct stat *st, const gg_user *u, unsigned bit)
{
    if (st->st_uid == u->uid) return st->st_mode & (bit << 6);
    for (int i = 0; i < u->n_groups; i++)
        if (st->st_gid == u->groups[i]) return st->st_mode & (bit << 3);
    return st->st_mode & bit;
}

/* Every directory on the way to path searchable, path itself a readable regular file. */
static bool chain_readable(const gg_user *u, const char *path)
{
    char p[PATH_MAX];
    struct stat st;
    if (path[0] != '/' || snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) return false;
    for (char *slash = strchr(p + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        bool ok = stat(p, &st) == 0 && S_ISDIR(st.st_mode) && granted(&st, u, 1);
        *slash = '/';
        if (!ok) return false;
    }
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && granted(&st, u, 4);
}

bool gg__user_can_read(const gg_user *u, const char *path)
{
    if (u->uid == 0) return true;
    /* the path as written (links on it must be reachable) and where it really leads */
    char *real = realpath(path, NULL);
    bool ok = real && chain_readable(u, path) && chain_readable(u, real);
    free(real);
    return ok;
}

er_rc gg__read_pem(const char *path, const char *key, util_buf *out, er_err *err)
{
    er_rc rc = util_read_file(path, GG_PEM_MAX, key, out, err);
    if (rc == ER_NOTFOUND) return ER_CONFIG; /* the nucleus points at nothing */
    if (rc) return rc == ER_NOMEM ? rc : ER_IO;
    if (!strstr(out->data, "-----BEGIN "))
        return er_fail(err, ER_CONFIG, "%s %s is not a PEM file (no -----BEGIN line)", key, path);
    return ER_OK;
}

er_rc gg__write_file(int dirfd, const char *dir, const char *name, const void *data, size_t len,
                     mode_t mode, const gg_user *u, er_err *err)
{
    const char *step = "create";
    er_rc rc = util_write_file_at(dirfd, name, data, len, mode, u->uid, u->gid, &step);
    if (rc == ER_OK) {
        fsync(dirfd); /* the rename itself survives a power cut */
        return ER_OK;
    }
    if (strcmp(step, "give") == 0)
        return er_fail(err, ER_IO, "cannot give %s/%s to %s (uid %lu, gid %lu): %s", dir, name,
                       u->name, (unsigned long)u->uid, (unsigned long)u->gid, strerror(errno));
    return er_fail(err, ER_IO, "cannot %s %s/%s: %s", step, dir, name, strerror(errno));
}
