/* greengrass_internal.h - what the greengrass module's files share, not for other modules: the
 * run-as user and the file operations of greengrass-setup (greengrass_files.c) that the command
 * (greengrass_setup.c) builds on. Names shared between the files are gg__*. */
#ifndef EI_GREENGRASS_GREENGRASS_INTERNAL_H
#define EI_GREENGRASS_GREENGRASS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/rc.h"
#include "core/util.h"
#include "greengrass/greengrass.h"

#define GG_PEM_MAX (1024 * 1024) /* a key, a certificate, a CA bundle */
#define GG_GROUPS_MAX 64

/* The user the component runs as: who must be able to read what the relay reads. */
typedef struct gg_user {
    uid_t uid;
    gid_t gid;
    gid_t groups[GG_GROUPS_MAX]; /* every group it is in (gid too) */
    int n_groups;
    char name[64]; /* for messages: the name, or the number without a passwd entry */
} gg_user;

/* run_as: "USER[:GROUP]" by name or number (the group defaults to the user's own); NULL: the
 * owner and group of work_dir. ER_CONFIG when the user or group does not exist. */
er_rc gg__user_resolve(const char *run_as, const char *work_dir, gg_user *u, er_err *err);

/* True when u may read the file at path: search permission on every directory above it and
 * read permission on it, by the owner, group or other bits (root reads everything). ACLs are
 * not read: a file they would open to u is copied anyway, which costs nothing. */
bool gg__user_can_read(const gg_user *u, const char *path);

/* Reads a PEM file (a key, a certificate, a CA) named by key (the nucleus setting, for
 * messages): ER_IO when it cannot be read, ER_CONFIG when it holds no PEM block. */
er_rc gg__read_pem(const char *path, const char *key, util_buf *out, er_err *err);

/* Writes len bytes as dir/name atomically (a temporary file in dir, fsync, rename, fsync of the
 * directory), with mode, owned by u. dirfd is dir opened O_DIRECTORY; dir names it in errors.
 * Never follows a link a user planted in dir. */
er_rc gg__write_file(int dirfd, const char *dir, const char *name, const void *data, size_t len,
                     mode_t mode, const gg_user *u, er_err *err);

#endif
