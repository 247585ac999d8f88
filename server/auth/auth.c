/* auth.c - see auth.h. The token table is built once in auth_create from cfg->tokens, then
 * token_file, then (only when neither gave a token) the generated file next to the database.
 * After creation the table is read-only, so auth_check needs no lock. */
#include "auth/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

#define AUTH_GENERATED_NAME "ei-relay.token"
#define AUTH_FILE_MAX (64 * 1024) /* a token file is a few lines; refuse anything huge */
#define AUTH_TOKEN_MAX 512

typedef struct auth_entry {
    char *token; /* owned */
    auth_role role;
} auth_entry;

struct auth {
    auth_entry *entries; /* owned */
    size_t n;
    char *generated; /* owned: the token file auth_create generated, NULL if none */
};

static er_rc add_token(auth *a, const char *token, size_t len, auth_role role)
{
    auth_entry *grown = realloc(a->entries, (a->n + 1) * sizeof *grown);
    if (!grown) return ER_NOMEM;
    a->entries = grown;
    char *copy = malloc(len + 1);
    if (!copy) return ER_NOMEM;
    memcpy(copy, token, len);
    copy[len] = '\0';
    grown[a->n].token = copy;
    grown[a->n].role = role;
    a->n++;
    return ER_OK;
}

static auth_role role_parse(const char *s, size_t len)
{
    if (len == 4 && strncmp(s, "read", 4) == 0) return AUTH_READ;
    if (len == 6 && strncmp(s, "ingest", 6) == 0) return AUTH_INGEST;
    if (len == 5 && strncmp(s, "admin", 5) == 0) return AUTH_ADMIN;
    return AUTH_NONE;
}

static bool is_token_char(char c)
{
    return c > 0x20 && c < 0x7f;
}

/* Parses token file text: one "TOKEN ROLE" per line, blank lines and '#' comments allowed.
 * Pure so the tests can feed it bad lines. */
static er_rc parse_token_text(auth *a, const char *text, size_t len, const char *name, er_err *err)
{
    er_rc rc = ER_OK;
    size_t pos = 0;
    int line_no = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        line_no++;
        const char *p = text + pos, *e = text + end;
        if (e > p && e[-1] == '\r') e--;
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (p < e && *p != '#') {
            const char *tok = p;
            while (p < e && is_token_char(*p))
                p++;
            size_t tok_len = (size_t)(p - tok);
            const char *sep = p;
            while (p < e && (*p == ' ' || *p == '\t'))
                p++;
            const char *role_s = p;
            while (p < e && is_token_char(*p))
                p++;
            auth_role role = role_parse(role_s, (size_t)(p - role_s));
            if (tok_len == 0 || sep == role_s || p != e || role == AUTH_NONE ||
                tok_len > AUTH_TOKEN_MAX) {
                rc = er_fail(err, ER_CONFIG,
                             "token_file %s line %d: expected \"TOKEN ROLE\" with ROLE "
                             "read, ingest or admin",
                             name, line_no);
                goto fail;
            }
            if (tok_len < CONFIG_TOKEN_MIN) {
                rc = er_fail(err, ER_CONFIG,
                             "token_file %s line %d: the token has %zu characters, at least %d "
                             "are needed",
                             name, line_no, tok_len, CONFIG_TOKEN_MIN);
                goto fail;
            }
            rc = add_token(a, tok, tok_len, role);
            if (rc) goto fail;
        }
        pos = end + 1;
    }
fail:
    return rc;
}

/* Reads a whole (small) file; *text is NUL-terminated and owned by the caller. */
static er_rc read_small_file(int fd, const char *name, char **text, size_t *len, er_err *err)
{
    er_rc rc = ER_OK;
    util_buf b = {0};
    char chunk[4096];
    for (;;) {
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            rc = er_fail(err, ER_IO, "cannot read token file %s: %s", name, strerror(errno));
            goto fail;
        }
        if (got == 0) break;
        if (b.len + (size_t)got > AUTH_FILE_MAX) {
            rc = er_fail(err, ER_CONFIG, "token file %s is larger than %d bytes", name,
                         AUTH_FILE_MAX);
            goto fail;
        }
        rc = util_buf_append(&b, chunk, (size_t)got);
        if (rc) goto fail;
    }
    rc = util_buf_append(&b, "", 0); /* makes data non-NULL for an empty file */
    if (rc) goto fail;
    *text = b.data;
    *len = b.len;
    return ER_OK;
fail:
    util_buf_free(&b);
    return rc;
}

static er_rc load_token_file(auth *a, const char *path, er_err *err)
{
    er_rc rc = ER_OK;
    char *text = NULL;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = er_fail(err, ER_CONFIG, "cannot open token_file %s: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
        log_warn("auth",
                 "token file %s is readable by group or others (mode %03o); "
                 "chmod 600 it",
                 path, (unsigned)(st.st_mode & 0777));
    rc = read_small_file(fd, path, &text, &len, err);
    if (rc) goto fail;
    rc = parse_token_text(a, text, len, path, err);
fail:
    free(text);
    if (fd >= 0) close(fd);
    return rc;
}

/* Makes a new directory entry durable (best effort: some file systems refuse directory fsync). */
static void sync_parent_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, sizeof dir, ".");
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        if (n >= sizeof dir) return;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return;
    fsync(dfd);
    close(dfd);
}

/* "<dir of db_path>/ei-relay.token" */
static er_rc generated_path(const config *cfg, char *out, size_t size, er_err *err)
{
    const char *db = cfg->db_path ? cfg->db_path : "ei-relay.db";
    const char *slash = strrchr(db, '/');
    int n;
    if (!slash)
        n = snprintf(out, size, "%s", AUTH_GENERATED_NAME);
    else if (slash == db)
        n = snprintf(out, size, "/%s", AUTH_GENERATED_NAME);
    else
        n = snprintf(out, size, "%.*s/%s", (int)(slash - db), db, AUTH_GENERATED_NAME);
    if (n < 0 || (size_t)n >= size)
        return er_fail(err, ER_CONFIG, "db_path %s is too long for the token file name", db);
    return ER_OK;
}

/* Creates the token file with a fresh admin token, with mode 0600 from the start (never a
 * window where another user could read it). It is written under a temporary name, synced, and
 * then linked into place, so a power cut never leaves an empty token file that would lock
 * everyone out; link() also keeps creation exclusive. ER_EXISTS if the file appeared. */
static er_rc create_generated(auth *a, const char *path, er_err *err)
{
    er_rc rc = ER_OK;
    uint8_t raw[32];
    char token[65], text[160], tmp[4200];
    bool linked = false;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid()) >= sizeof tmp)
        return er_fail(err, ER_CONFIG, "token file path %s is too long", path);
    if (access(path, F_OK) == 0) return ER_EXISTS;
    rc = util_mkdir_parents(path, "token file", err); /* `ei-relay token` before the first start */
    if (rc) return rc;
    /* O_EXCL: never write through a name someone planted (a symlink, or a hard link to a file
     * elsewhere); such a leftover only loses its name, and the second try is exclusive too. */
    const int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
    int fd = open(tmp, flags, 0600);
    if (fd < 0 && errno == EEXIST && unlink(tmp) == 0) fd = open(tmp, flags, 0600);
    if (fd < 0) return er_fail(err, ER_IO, "cannot create token file %s: %s", tmp, strerror(errno));
    rc = util_random(raw, sizeof raw);
    if (rc) {
        er_fail(err, rc, "no random bytes for the admin token");
        goto fail;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(token + 2 * i, 3, "%02x", raw[i]);
    int n = snprintf(text, sizeof text,
                     "# ei-relay API tokens: one \"TOKEN ROLE\" per line (read|ingest|admin)\n"
                     "%s admin\n",
                     token);
    size_t done = 0;
    while (done < (size_t)n) {
        ssize_t w = write(fd, text + done, (size_t)n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            rc = er_fail(err, ER_IO, "cannot write token file %s: %s", path, strerror(errno));
            goto fail;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = er_fail(err, ER_IO, "cannot sync token file %s: %s", path, strerror(errno));
        goto fail;
    }
    if (link(tmp, path) != 0) {
        rc = errno == EEXIST
                 ? ER_EXISTS
                 : er_fail(err, ER_IO, "cannot create token file %s: %s", path, strerror(errno));
        goto fail;
    }
    linked = true;
    sync_parent_dir(path);
    rc = add_token(a, token, 64, AUTH_ADMIN);
    if (rc) goto fail;
    /* The token itself stays out of the log: logs outlive the terminal (journald, Greengrass
     * log files). `ei-relay token` prints it on demand. */
    log_warn("auth",
             "no tokens configured: generated an admin token in %s (mode 0600); "
             "'ei-relay token' prints it",
             path);
    a->generated = strdup(path); /* NULL when out of memory: then only the terminal misses it */
fail:
    close(fd);
    unlink(tmp);
    if (rc && linked) unlink(path);
    return rc;
}

er_rc auth_create(const config *cfg, auth **out, er_err *err)
{
    er_rc rc = ER_NOMEM;
    auth *a = calloc(1, sizeof *a);
    if (!a) goto fail;
    for (size_t i = 0; i < cfg->n_tokens; i++) {
        const char *t = cfg->tokens[i].token;
        if (!t || strlen(t) < CONFIG_TOKEN_MIN) { /* the loader checks too; this is the API */
            rc = er_fail(err, ER_CONFIG, "tokens[%zu]: shorter than %d characters", i,
                         CONFIG_TOKEN_MIN);
            goto fail;
        }
        rc = add_token(a, t, strlen(t), (auth_role)cfg->tokens[i].role);
        if (rc) goto fail;
    }
    if (cfg->token_file) {
        rc = load_token_file(a, cfg->token_file, err);
        if (rc) goto fail;
        if (a->n == 0) {
            rc = er_fail(err, ER_CONFIG, "token_file %s holds no token", cfg->token_file);
            goto fail;
        }
    }
    if (a->n == 0) {
        char path[4096];
        rc = generated_path(cfg, path, sizeof path, err);
        if (rc) goto fail;
        rc = create_generated(a, path, err);
        if (rc == ER_EXISTS) {
            rc = load_token_file(a, path, err);
            if (rc) goto fail;
            if (a->n == 0) {
                rc = er_fail(err, ER_CONFIG, "token file %s holds no token", path);
                goto fail;
            }
            log_info("auth", "no tokens configured; using the token(s) in %s", path);
        }
        if (rc) goto fail;
    }
    *out = a;
    return ER_OK;
fail:
    auth_destroy(a);
    return rc;
}

void auth_destroy(auth *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->n; i++) {
        /* wipe secrets before giving the memory back */
        volatile char *p = a->entries[i].token;
        while (*p)
            *p++ = 0;
        free(a->entries[i].token);
    }
    free(a->entries);
    free(a->generated);
    free(a);
}

const char *auth_admin_token(const auth *a)
{
    for (size_t i = 0; a && i < a->n; i++)
        if (a->entries[i].role == AUTH_ADMIN) return a->entries[i].token;
    return NULL;
}

const char *auth_generated_path(const auth *a)
{
    return a ? a->generated : NULL;
}

auth_role auth_check_token(const auth *a, const char *token)
{
    if (!a || !token || !*token) return AUTH_NONE;
    auth_role found = AUTH_NONE;
    /* Compare against every token, whatever matched earlier, so the time taken does not tell
     * which (or whether an earlier) entry matched. */
    for (size_t i = 0; i < a->n; i++) {
        bool eq = util_ct_equal(token, a->entries[i].token);
        if (eq && a->entries[i].role > found) found = a->entries[i].role;
    }
    return found;
}

bool auth_bearer(const char *authorization, const char **token, size_t *len)
{
    if (!authorization) return false;
    const char *p = authorization;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t')) return false;
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n == 0 || n > AUTH_TOKEN_MAX) return false;
    *token = p;
    *len = n;
    return true;
}

auth_role auth_check(const auth *a, const char *authorization)
{
    const char *p;
    size_t len;
    if (!auth_bearer(authorization, &p, &len)) return AUTH_NONE;
    char token[AUTH_TOKEN_MAX + 1];
    memcpy(token, p, len);
    token[len] = '\0';
    auth_role role = auth_check_token(a, token);
    memset(token, 0, sizeof token);
    return role;
}

bool auth_allows(auth_role have, auth_role need)
{
    if (need == AUTH_NONE) return true;
    if (have == AUTH_ADMIN) return true;
    /* ingest may only POST inferences, it does not imply read */
    return have == need;
}
